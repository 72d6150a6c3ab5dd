//! More `hazard use-without-acquire` variants: an image clear, and an
//! acquire in an earlier batch of the same `vkQueueSubmit`.
//!
//! - `image-clear`: a 64×64 RGBA8 linear image imported from a udmabuf is
//!   cleared to red (`vkCmdClearColorImage`); provoke: after a plain
//!   layout transition, no acquire (and no release); twin: after an
//!   acquire from FOREIGN that transitions it, released after. The first
//!   texel is checked through the memfd;
//! - `batches` (twin): one `vkQueueSubmit` of three batches: the acquire,
//!   the copy of the import into a local buffer, the release.

use super::use_without_acquire::check;
use super::{copy, transfer, transfer_to_host, Role, SHARED_NAME};
use crate::robustness::{say, sys};
use ash::vk;
use dynabuf_client::compute::StorageBuffer;
use dynabuf_client::image::commands::{acquire, clear, release, run_once, transition, Commands, Transfer};
use dynabuf_client::image::{requirements_of, Binding, ExternalImage, ImageSpec, Tiling, RGBA8};
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

pub(crate) fn image_clear(c: &Client, role: Role) -> Result<()> {
    let spec = ImageSpec { format: RGBA8, width: 64, height: 64, tiling: Tiling::Linear, disjoint: false };
    let size = requirements_of(c, &spec)?.first().map(|r| r.size).unwrap_or(0);
    let (dmabuf, memfd) = sys(udmabuf::create(size.next_multiple_of(4096)))?;
    let memfd = std::fs::File::from(memfd);
    memfd.write_all_at(&vec![0u8; size as usize], 0).ctx("write memfd")?;
    let img = ExternalImage::import(c, spec, &[Binding { fd: dmabuf.as_fd(), offset: 0 }])?;
    let offset = img.layouts.first().map_or(0, |l| l.offset);
    let (image, family) = (img.image, c.family);
    let color = vk::ImageAspectFlags::COLOR;
    let general = vk::ImageLayout::GENERAL;
    let write = vk::AccessFlags::TRANSFER_WRITE;
    let ran = c.name(img.memories[0], SHARED_NAME).and_then(|_| {
        run_once(c, |d, cb| {
            match role {
                Role::Provoke => transition(d, cb, image, color, (vk::ImageLayout::UNDEFINED, general)),
                Role::Twin => {
                    let t = Transfer {
                        old_layout: vk::ImageLayout::UNDEFINED,
                        ..Transfer::general(color, write)
                    };
                    acquire(d, cb, image, family, t);
                }
            }
            clear(d, cb, (image, general), [1.0, 0.0, 0.0, 1.0]);
            if role == Role::Twin {
                release(d, cb, image, family, Transfer::general(color, write));
            }
        })
    });
    img.destroy(c);
    ran?;
    let mut texel = [0u8; 4];
    memfd.read_exact_at(&mut texel, offset).ctx("read memfd")?;
    if texel != [255, 0, 0, 255] {
        return Err(Error(format!("the first texel is {texel:?}, not red")));
    }
    say("image_clear_ok=true");
    Ok(())
}

/// The acquire, the copy and the release in three batches of one submit.
pub(crate) fn batches(c: &Client, shared: vk::Buffer, local: &mut StorageBuffer, len: u32) -> Result<()> {
    let (family, dst) = (c.family, local.buffer);
    let stage = vk::PipelineStageFlags::TRANSFER;
    let mut all: Vec<Commands> = Vec::new();
    let outcome = (|| {
        for part in 0..3 {
            let commands = Commands::new(c)?;
            commands.begin(c)?;
            let (d, cb) = (&c.device, commands.cb);
            match part {
                0 => transfer(d, cb, shared, family, true, stage, vk::AccessFlags::TRANSFER_READ),
                1 => {
                    copy(d, cb, shared, dst, len);
                    transfer_to_host(d, cb);
                }
                _ => transfer(d, cb, shared, family, false, stage, vk::AccessFlags::empty()),
            }
            commands.end(c)?;
            all.push(commands);
        }
        let cbs: Vec<[vk::CommandBuffer; 1]> = all.iter().map(|cmd| [cmd.cb]).collect();
        let submits: Vec<vk::SubmitInfo> =
            cbs.iter().map(|cb| vk::SubmitInfo::default().command_buffers(cb)).collect();
        // SAFETY: recorded command buffers of this device; the queue is
        // used by this thread only; waited for right after.
        unsafe {
            c.device.queue_submit(c.queues[0], &submits, vk::Fence::null()).ctx("vkQueueSubmit")?;
            c.device.queue_wait_idle(c.queues[0]).ctx("vkQueueWaitIdle")
        }
    })();
    for commands in all {
        commands.destroy(c);
    }
    outcome?;
    check(local, "the copy in the second batch")
}
