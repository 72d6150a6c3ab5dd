//! `copies MODE FRAMES [LEN]`: a dynamic attachment handed over FRAMES
//! times, each frame waited for and checked word by word, so the layer's
//! statistics (`DYNABUF_STATS=1`) show which copies it needed:
//!
//! * `reader-unmodified`: the dma-buf's content never changes; each frame
//!   acquires it for transfer reads with `VkExternalMemoryAcquireUnmodifiedEXT`,
//!   copies it into a host-visible buffer and releases it with a source
//!   access that writes nothing;
//! * `reader`: the same without the structure, and a peer (this process,
//!   through the udmabuf's memfd) changes the content before every frame;
//! * `writer-unmodified`: each frame acquires with the structure (the peer
//!   only reads), adds 1 to every word and releases with SHADER_WRITE; the
//!   peer checks the dma-buf after every frame; `writer`: the same without
//!   the structure;
//! * `filler`: each frame acquires for transfer reads only, then (behind a
//!   barrier of its own) fills the buffer with `vkCmdFillBuffer`, and
//!   releases with a source access that writes nothing: only a watched
//!   command says it wrote. Prints `stale_frames=N`, the frames whose fill
//!   the peer did not see after the release; `shader-filler`: the same
//!   with the increment shader writing through a storage descriptor
//!   (which the layer does not count as a write).

use ash::vk;
use dynabuf_client::compute::{Kernel, Push, Shader, StorageBuffer};
use dynabuf_client::dmabuf;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;

use super::{expect_words, say, Udmabuf};
use crate::arg;
use dynabuf_client::dmabuf::foreign_transfer as transfer;

const EXTENSION: &std::ffi::CStr = c"VK_EXT_external_memory_acquire_unmodified";

/// One command buffer and fence, submitted and waited for each frame.
struct Frame {
    pool: vk::CommandPool,
    cb: vk::CommandBuffer,
    fence: vk::Fence,
}

impl Frame {
    fn record(c: &Client, body: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<Frame> {
        let d = &c.device;
        // SAFETY: valid create infos; every object is owned by the Frame.
        unsafe {
            let pool = d
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(c.family), None)
                .ctx("vkCreateCommandPool")?;
            let cb = d
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1),
                )
                .ctx("vkAllocateCommandBuffers")?[0];
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).ctx("vkCreateFence")?;
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default()).ctx("vkBeginCommandBuffer")?;
            body(d, cb);
            d.end_command_buffer(cb).ctx("vkEndCommandBuffer")?;
            Ok(Frame { pool, cb, fence })
        }
    }

    fn run(&self, c: &Client) -> Result<()> {
        let cbs = [self.cb];
        let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
        // SAFETY: a recorded command buffer and an unsignalled fence of this
        // device; the frame is not pending (each run waits for it).
        unsafe {
            c.device.queue_submit(c.queues[0], &submit, self.fence).ctx("vkQueueSubmit")?;
            c.device.wait_for_fences(&[self.fence], true, 10_000_000_000).ctx("vkWaitForFences")?;
            c.device.reset_fences(&[self.fence]).ctx("vkResetFences")
        }
    }

    fn destroy(self, c: &Client) {
        // SAFETY: objects this frame owns; `run` waited for its work.
        unsafe {
            c.device.destroy_fence(self.fence, None);
            c.device.destroy_command_pool(self.pool, None);
        }
    }
}

pub fn cmd_copies(args: &[String]) -> Result<()> {
    let mode = args.first().map(String::as_str).unwrap_or("reader-unmodified");
    let frames = arg(args, 1, 20);
    let len = arg(args, 2, 4096);
    let c = Client::new(&ClientOptions { acquire_unmodified: true, ..Default::default() })?;
    let offered = c.has_extension(EXTENSION);
    let unmodified = mode.ends_with("-unmodified");
    if unmodified && !offered {
        return Err(Error(format!("{} is not offered on this device", EXTENSION.to_string_lossy())));
    }
    let shared = Udmabuf::new(len)?;
    shared.write(|i| 7 * i + 1)?;
    let imported = dmabuf::import_fd(&c, shared.dmabuf.as_fd(), len)?;
    let family = c.family;
    let outcome = match mode {
        "reader" | "reader-unmodified" => {
            let mut readback = StorageBuffer::new(&c, len)?;
            let bytes = u64::from(len) * 4;
            let frame = Frame::record(&c, |d, cb| {
                let read = vk::AccessFlags::TRANSFER_READ;
                transfer(
                    d,
                    cb,
                    imported.buffer,
                    family,
                    true,
                    read,
                    vk::PipelineStageFlags::TRANSFER,
                    unmodified,
                );
                let region = [vk::BufferCopy::default().size(bytes)];
                // SAFETY: recording; both buffers of this device, `bytes` long.
                unsafe { d.cmd_copy_buffer(cb, imported.buffer, readback.buffer, &region) };
                let none = vk::AccessFlags::empty();
                transfer(
                    d,
                    cb,
                    imported.buffer,
                    family,
                    false,
                    none,
                    vk::PipelineStageFlags::TRANSFER,
                    false,
                );
                let to_host = [vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                    .dst_access_mask(vk::AccessFlags::HOST_READ)];
                // SAFETY: recording.
                unsafe {
                    d.cmd_pipeline_barrier(
                        cb,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::PipelineStageFlags::HOST,
                        vk::DependencyFlags::empty(),
                        &to_host,
                        &[],
                        &[],
                    )
                };
            })?;
            let run = (|| -> Result<()> {
                for f in 0..frames {
                    if !unmodified {
                        shared.write(|i| 7 * i + 1 + f)?;
                    }
                    frame.run(&c)?;
                    let bias = if unmodified { 0 } else { f };
                    expect_words(&format!("frame {f}"), &readback.read()?, |i| 7 * i + 1 + bias)?;
                }
                Ok(())
            })();
            frame.destroy(&c);
            readback.destroy(&c);
            run
        }
        "writer" | "writer-unmodified" => {
            let kernel = Kernel::new(&c, Shader::Increment)?;
            let job = dynabuf_client::compute::Job::with_barriers(
                &c,
                &kernel,
                imported.buffer,
                Push { seed: 1, count: len },
                |d, cb| {
                    let rw = vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE;
                    transfer(
                        d,
                        cb,
                        imported.buffer,
                        family,
                        true,
                        rw,
                        vk::PipelineStageFlags::COMPUTE_SHADER,
                        unmodified,
                    )
                },
                |d, cb| {
                    let w = vk::AccessFlags::SHADER_WRITE;
                    transfer(
                        d,
                        cb,
                        imported.buffer,
                        family,
                        false,
                        w,
                        vk::PipelineStageFlags::COMPUTE_SHADER,
                        false,
                    )
                },
            )?;
            let run = (|| -> Result<()> {
                for f in 0..frames {
                    job.run(&c, c.queues[0])?;
                    shared.expect(&format!("frame {f}"), |i| 7 * i + 2 + f)?;
                }
                Ok(())
            })();
            job.destroy(&c);
            kernel.destroy(&c);
            run
        }
        "filler" => {
            let bytes = u64::from(len) * 4;
            let mut stale = 0;
            let run = (|| -> Result<()> {
                for f in 0..frames {
                    let value = 1000 + f;
                    let frame = Frame::record(&c, |d, cb| {
                        let read = vk::AccessFlags::TRANSFER_READ;
                        let stage = vk::PipelineStageFlags::TRANSFER;
                        transfer(d, cb, imported.buffer, family, true, read, stage, false);
                        let to_write = [vk::MemoryBarrier::default()
                            .src_access_mask(vk::AccessFlags::TRANSFER_READ)
                            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)];
                        let written = [vk::MemoryBarrier::default()
                            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .dst_access_mask(vk::AccessFlags::MEMORY_READ)];
                        // SAFETY: recording; a buffer of this device, `bytes` long.
                        unsafe {
                            d.cmd_pipeline_barrier(
                                cb,
                                stage,
                                stage,
                                vk::DependencyFlags::empty(),
                                &to_write,
                                &[],
                                &[],
                            );
                            d.cmd_fill_buffer(cb, imported.buffer, 0, bytes, value);
                            d.cmd_pipeline_barrier(
                                cb,
                                stage,
                                stage,
                                vk::DependencyFlags::empty(),
                                &written,
                                &[],
                                &[],
                            );
                        }
                        transfer(
                            d,
                            cb,
                            imported.buffer,
                            family,
                            false,
                            vk::AccessFlags::empty(),
                            stage,
                            false,
                        );
                    })?;
                    let r = frame.run(&c);
                    frame.destroy(&c);
                    r?;
                    if shared.read()?.iter().any(|&w| w != value) {
                        stale += 1;
                    }
                }
                Ok(())
            })();
            say(&format!("stale_frames={stale}"));
            run
        }
        "shader-filler" => {
            let kernel = Kernel::new(&c, Shader::Increment)?;
            let stage = vk::PipelineStageFlags::COMPUTE_SHADER;
            let barrier = |d: &ash::Device, cb, src, dst| {
                let m = [vk::MemoryBarrier::default().src_access_mask(src).dst_access_mask(dst)];
                // SAFETY: recording.
                unsafe {
                    d.cmd_pipeline_barrier(cb, stage, stage, vk::DependencyFlags::empty(), &m, &[], &[])
                };
            };
            let job = dynabuf_client::compute::Job::with_barriers(
                &c,
                &kernel,
                imported.buffer,
                Push { seed: 1, count: len },
                |d, cb| {
                    transfer(
                        d,
                        cb,
                        imported.buffer,
                        family,
                        true,
                        vk::AccessFlags::SHADER_READ,
                        stage,
                        false,
                    );
                    barrier(d, cb, vk::AccessFlags::SHADER_READ, vk::AccessFlags::SHADER_WRITE);
                },
                |d, cb| {
                    barrier(d, cb, vk::AccessFlags::SHADER_WRITE, vk::AccessFlags::MEMORY_READ);
                    transfer(d, cb, imported.buffer, family, false, vk::AccessFlags::empty(), stage, false);
                },
            )?;
            let mut stale = 0;
            let run = (|| -> Result<()> {
                for f in 0..frames {
                    job.run(&c, c.queues[0])?;
                    let now = shared.read()?;
                    if now.iter().enumerate().any(|(i, &w)| w != 7 * i as u32 + 2 + f) {
                        stale += 1;
                    }
                }
                Ok(())
            })();
            job.destroy(&c);
            kernel.destroy(&c);
            say(&format!("stale_frames={stale}"));
            run
        }
        other => Err(Error(format!("copies: unknown mode {other}"))),
    };
    imported.destroy(&c);
    outcome?;
    say(&format!("copies_mode={mode} frames={frames} offered={offered} copies_ok=true"));
    Ok(())
}
