//! `hazard written-never-released provoke|twin VARIANT`: a dma-buf the
//! GPU wrote and the device lets go of without releasing it.
//!
//! - `free`: acquire (TRANSFER_WRITE), fill; provoke: no release, then
//!   `vkFreeMemory`; twin: release, then free;
//! - `update` (provoke): acquire, `vkCmdUpdateBuffer` of 16 words, no
//!   release, then free;
//! - `reacquire` (provoke): acquire, fill, no release; a second submission
//!   acquires it again (and copies it out, and releases);
//! - `destroy` (provoke): acquire, fill, no release; the memory is never
//!   freed and the device is destroyed (invalid Vulkan in itself: the
//!   memory is still allocated at `vkDestroyDevice`, which the validation
//!   layer rightly reports, so tests run it without);
//! - `exported`: memory allocated exportable as a dma-buf and exported;
//!   filled, then freed; twin: released before the free;
//! - `acquire-write`: only an acquire whose destination access writes
//!   (TRANSFER_WRITE), no release, then free (the layer counts an
//!   acquire's own access as no write: a twin);
//! - `acquire-read` (twin): a read-only acquire and a copy out, never
//!   released, then free (a reader owes no release).
//!
//! Each checks the dma-buf's content through the memfd (or a mapping).

use super::use_without_acquire::once;
use super::{copy, fill, hazard_client, transfer, transfer_to_host, Role, SHARED_NAME};
use crate::robustness::{say, Udmabuf};
use ash::vk;
use dynabuf_client::compute::StorageBuffer;
use dynabuf_client::dmabuf;
use dynabuf_client::external::ExternalBuffer;
use dynabuf_client::render::Commands;
use dynabuf_client::{Error, Result};
use std::os::fd::AsFd;

const LEN: u32 = 1024;
const FILLED: u32 = 0x5eed;
/// How many words `update` writes with `vkCmdUpdateBuffer`.
const UPDATED: u32 = 16;

fn bytes_of(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub(crate) fn run(role: Role, variant: &str) -> Result<()> {
    if variant == "exported" {
        return exported(role);
    }
    let c = hazard_client()?;
    let buf = Udmabuf::new(LEN)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), LEN)?;
    c.name(imported.memory, SHARED_NAME)?;
    let commands = Commands::new(&c)?;
    let mut local = StorageBuffer::new(&c, LEN)?;
    let (family, shared, dst) = (c.family, imported.buffer, local.buffer);
    let stage = vk::PipelineStageFlags::TRANSFER;
    let write = vk::AccessFlags::TRANSFER_WRITE;
    let outcome = (|| {
        let acquire_fill = |d: &ash::Device, cb, release: bool| {
            transfer(d, cb, shared, family, true, stage, write);
            fill(d, cb, shared, FILLED);
            if release {
                transfer(d, cb, shared, family, false, stage, write);
            }
        };
        match (role, variant) {
            (Role::Provoke, "free" | "destroy") => once(&c, &commands, |d, cb| acquire_fill(d, cb, false))?,
            (Role::Twin, "free") => once(&c, &commands, |d, cb| acquire_fill(d, cb, true))?,
            (Role::Provoke, "update") => once(&c, &commands, |d, cb| {
                transfer(d, cb, shared, family, true, stage, write);
                let words = [FILLED; UPDATED as usize];
                // SAFETY: a command buffer in the recording state; 64 bytes
                // at offset 0 of a TRANSFER_DST buffer.
                unsafe { d.cmd_update_buffer(cb, shared, 0, &bytes_of(&words)) };
            })?,
            (Role::Provoke, "reacquire") => {
                once(&c, &commands, |d, cb| acquire_fill(d, cb, false))?;
                once(&c, &commands, |d, cb| {
                    transfer(d, cb, shared, family, true, stage, vk::AccessFlags::TRANSFER_READ);
                    copy(d, cb, shared, dst, LEN);
                    transfer(d, cb, shared, family, false, stage, vk::AccessFlags::empty());
                    transfer_to_host(d, cb);
                })?;
                if local.read()?.iter().any(|w| *w != FILLED) {
                    return Err(Error("the second submission did not copy the filled values".into()));
                }
            }
            (_, "acquire-write") => {
                once(&c, &commands, |d, cb| transfer(d, cb, shared, family, true, stage, write))?
            }
            (Role::Twin, "acquire-read") => once(&c, &commands, |d, cb| {
                transfer(d, cb, shared, family, true, stage, vk::AccessFlags::TRANSFER_READ);
                copy(d, cb, shared, dst, LEN);
                transfer_to_host(d, cb);
            })?,
            (role, variant) => return Err(Error(format!("no {variant} {role:?} scenario"))),
        }
        match variant {
            "acquire-write" | "acquire-read" => buf.expect("the dma-buf", |i| i),
            "update" => buf.expect("the dma-buf", |i| if i < UPDATED { FILLED } else { i }),
            _ => buf.expect("the dma-buf", |_| FILLED),
        }
    })();
    commands.destroy(&c);
    local.destroy(&c);
    if variant == "destroy" && outcome.is_ok() {
        // The memory stays allocated until the device goes away.
        // SAFETY: the buffer's work is done; only the buffer is destroyed.
        unsafe { c.device.destroy_buffer(imported.buffer, None) };
    } else {
        imported.destroy(&c);
    }
    drop(c);
    outcome?;
    say("written_ok=true");
    Ok(())
}

/// Memory this device allocated exportable as a dma-buf and exported.
fn exported(role: Role) -> Result<()> {
    let c = hazard_client()?;
    let dma_buf = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let shared = ExternalBuffer::exportable(&c, LEN, dma_buf)?;
    let outcome = (|| {
        c.name(shared.memory, SHARED_NAME)?;
        let fd = shared.export_fd(&c)?;
        let commands = Commands::new(&c)?;
        let (family, buffer) = (c.family, shared.buffer);
        let ran = once(&c, &commands, |d, cb| {
            fill(d, cb, buffer, FILLED);
            if role == Role::Twin {
                let write = vk::AccessFlags::TRANSFER_WRITE;
                transfer(d, cb, buffer, family, false, vk::PipelineStageFlags::TRANSFER, write);
            }
        });
        commands.destroy(&c);
        ran?;
        let mut map = dmabuf::Mapping::new(fd.as_fd(), LEN as usize * 4)?;
        if map.words().iter().any(|w| *w != FILLED) {
            return Err(Error("the exported dma-buf does not hold the filled values".into()));
        }
        Ok(())
    })();
    shared.destroy(&c);
    drop(c);
    outcome?;
    say("written_ok=true");
    Ok(())
}
