//! `hazard use-without-acquire provoke|twin VARIANT`: a submission that
//! uses an imported dma-buf the device does not hold.
//!
//! - `copy`: two submissions each copy the import into a local buffer;
//!   provoke: without barriers; twin: each between an acquire
//!   (TRANSFER_READ) and a release;
//! - `dispatch`: one dispatch with the import in a storage-buffer
//!   descriptor set, adding 1; provoke: without barriers; twin: between
//!   an acquire (read/write) and a release;
//! - `after-release` (provoke only): acquire, copy, release; then a second
//!   submission copies again without a new acquire;
//! - `split` (twin only): the acquire, the copy and the release each in a
//!   submission of their own;
//! - `batches` (twin only), `image-clear`: see the `more_uses` module;
//!   `render-pass`, `rendering`: see the `attachments` module.
//!
//! The CPU writes `7 + i` through the memfd first; every copy must read it.

use super::{copy, hazard_client, transfer, transfer_to_host, Role, SHARED_NAME};
use crate::robustness::{say, Udmabuf};
use ash::vk;
use dynabuf_client::compute::{Kernel, Shader, StorageBuffer};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::render::Commands;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};
use std::os::fd::AsFd;

const LEN: u32 = 1024;

pub(crate) fn run(role: Role, variant: &str) -> Result<()> {
    let c = hazard_client()?;
    match variant {
        "image-clear" => return super::more_uses::image_clear(&c, role),
        "render-pass" | "rendering" => return super::attachments::run(&c, role, variant == "rendering"),
        _ => {}
    }
    let buf = Udmabuf::new(LEN)?;
    buf.write(|i| 7 + i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), LEN)?;
    c.name(imported.memory, SHARED_NAME)?;
    let mut local = StorageBuffer::new(&c, LEN)?;
    let commands = Commands::new(&c)?;
    let outcome = match variant {
        "copy" | "after-release" | "split" => {
            copies(&c, &commands, role, variant, imported.buffer, &mut local)
        }
        "dispatch" => dispatch(&c, role, imported.buffer, &buf),
        "batches" if role == Role::Twin => {
            super::more_uses::batches(&c, imported.buffer, &mut local, LEN).map(|_| say("copies_ok=true"))
        }
        other => Err(Error(format!(
            "{other:?}: expected copy, dispatch, after-release, split, batches, image-clear, render-pass or rendering"
        ))),
    };
    commands.destroy(&c);
    local.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// Submits what `record` records and waits for it.
pub(crate) fn once(
    c: &Client,
    commands: &Commands,
    record: impl FnOnce(&ash::Device, vk::CommandBuffer),
) -> Result<()> {
    commands.begin(c)?;
    record(&c.device, commands.cb);
    commands.end(c)?;
    commands.submit(c)?;
    commands.wait(c)
}

fn copies(
    c: &Client,
    commands: &Commands,
    role: Role,
    variant: &str,
    shared: vk::Buffer,
    local: &mut StorageBuffer,
) -> Result<()> {
    let family = c.family;
    let read = vk::AccessFlags::TRANSFER_READ;
    let stage = vk::PipelineStageFlags::TRANSFER;
    let dst = local.buffer;
    let held = |d: &ash::Device, cb| {
        transfer(d, cb, shared, family, true, stage, read);
        copy(d, cb, shared, dst, LEN);
        transfer(d, cb, shared, family, false, stage, vk::AccessFlags::empty());
        transfer_to_host(d, cb);
    };
    let bare = |d: &ash::Device, cb| {
        copy(d, cb, shared, dst, LEN);
        transfer_to_host(d, cb);
    };
    match (role, variant) {
        (Role::Provoke, "copy") => {
            once(c, commands, bare)?;
            check(local, "first copy")?;
            once(c, commands, bare)?;
        }
        (Role::Twin, "copy") => {
            once(c, commands, held)?;
            check(local, "first copy")?;
            once(c, commands, held)?;
        }
        (Role::Provoke, "after-release") => {
            once(c, commands, held)?;
            check(local, "held copy")?;
            local.write(&vec![0; LEN as usize])?;
            once(c, commands, bare)?;
        }
        (Role::Twin, "split") => {
            once(c, commands, |d, cb| transfer(d, cb, shared, family, true, stage, read))?;
            once(c, commands, bare)?;
            once(c, commands, |d, cb| {
                transfer(d, cb, shared, family, false, stage, vk::AccessFlags::empty())
            })?;
        }
        (role, variant) => return Err(Error(format!("no {variant} {role:?} scenario"))),
    }
    check(local, "last copy")?;
    say("copies_ok=true");
    Ok(())
}

pub(crate) fn check(local: &mut StorageBuffer, what: &str) -> Result<()> {
    let words = local.read()?;
    match words.iter().enumerate().find(|(i, w)| **w != 7 + *i as u32) {
        Some((i, w)) => Err(Error(format!("{what}: local[{i}] = {w}, expected {}", 7 + i))),
        None => Ok(()),
    }
}

fn dispatch(c: &Client, role: Role, shared: vk::Buffer, buf: &Udmabuf) -> Result<()> {
    let kernel = Kernel::new(c, Shader::Increment)?;
    let kind = match role {
        Role::Provoke => AcquireKind::None,
        Role::Twin => AcquireKind::Write,
    };
    let job = dmabuf::foreign_job(c, &kernel, shared, kind, 1, LEN);
    let ran = job.as_ref().map_err(|e| Error(e.to_string())).and_then(|job| job.run(c, c.queues[0]));
    if let Ok(job) = job {
        job.destroy(c);
    }
    kernel.destroy(c);
    ran?;
    buf.expect("after the dispatch", |i| 8 + i)?;
    say("dispatch_ok=true");
    Ok(())
}
