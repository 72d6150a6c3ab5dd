//! Subcommands where the layer hands dma-bufs over: read-only acquires never
//! released, how long `vkQueueSubmit` blocks, acquires in secondary command
//! buffers, two devices handing over without waiting.

use super::{expect_words, say, DMA_BUF};
use crate::{arg, inherited_fd, line_from_stdin};
use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf::{self, foreign_acquire, wait_for_writers, AcquireKind};
use dynabuf_client::external::{ownership_barrier, ExternalBuffer};
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// `read-acquire FD LEN`: imports dma-buf FD; on each `go` line submits a
/// job whose only ownership transfer is a read-only acquire (FOREIGN →
/// local, destination access SHADER_READ; no release) around a dispatch of
/// no elements, waits for it and prints `done round=N`. Any other line ends.
pub fn cmd_read_acquire(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let push = Push { seed: 0, count: 0 };
    let job = dmabuf::acquire_job(&c, &kernel, imported.buffer, AcquireKind::Read, push, false)?;
    say("ready");
    let mut round = 0;
    let outcome = (|| {
        while line_from_stdin() == "go" {
            job.run(&c, c.queues[0])?;
            round += 1;
            say(&format!("done round={round}"));
        }
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `submit-timing FD LEN release|acquire-only`: imports dma-buf FD, prints
/// `ready`; on `go` submits acquire (write) + add 1000 (+ release), timing
/// only `vkQueueSubmit` (`submitted submit_ms=N`), then waits for the job
/// and prints `done first=V total_ms=M` (from before the submit).
pub fn cmd_submit_timing(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let release = match args.get(2).map(String::as_str) {
        Some("release") => true,
        Some("acquire-only") => false,
        other => return Err(Error(format!("mode {other:?}: expected release or acquire-only"))),
    };
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let push = Push { seed: 1000, count: len };
    let job = dmabuf::acquire_job(&c, &kernel, imported.buffer, AcquireKind::Write, push, release)?;
    say("ready");
    let outcome = (|| {
        if line_from_stdin() != "go" {
            return Err(Error("expected go".into()));
        }
        let t = Instant::now();
        job.submit(&c, c.queues[0])?;
        say(&format!("submitted submit_ms={}", t.elapsed().as_millis()));
        job.wait(&c)?;
        let total = t.elapsed().as_millis();
        let first = dmabuf::first_value(&c, &imported)?;
        say(&format!("done first={first} total_ms={total}"));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `acquire-secondary FD LEN read|write DISPATCH`: as `acquire`, with the
/// acquire barrier recorded in a secondary command buffer that the primary
/// executes (`vkCmdExecuteCommands`) before its dispatch and release.
pub fn cmd_acquire_secondary(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let kind = match args.get(2).map(String::as_str) {
        Some("read") => AcquireKind::Read,
        _ => AcquireKind::Write,
    };
    let count = if arg(args, 3, 1) == 0 { 0 } else { len };
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let d = &c.device;
    // SAFETY: valid create and allocate infos; the pool is destroyed below,
    // after the job that executes its command buffer.
    let pool = unsafe {
        d.create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(family), None)
    }
    .ctx("vkCreateCommandPool")?;
    let outcome = (|| {
        // SAFETY: a pool of this device.
        let secondary = unsafe {
            d.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(pool)
                    .level(vk::CommandBufferLevel::SECONDARY)
                    .command_buffer_count(1),
            )
        }
        .ctx("vkAllocateCommandBuffers")?[0];
        let inheritance = vk::CommandBufferInheritanceInfo::default();
        // SAFETY: a fresh secondary command buffer, begun, recorded and ended.
        unsafe {
            d.begin_command_buffer(
                secondary,
                &vk::CommandBufferBeginInfo::default().inheritance_info(&inheritance),
            )
            .ctx("vkBeginCommandBuffer(secondary)")?;
            foreign_acquire(d, secondary, buffer, family, kind);
            d.end_command_buffer(secondary).ctx("vkEndCommandBuffer(secondary)")?;
        }
        let job = Job::with_barriers(
            &c,
            &kernel,
            buffer,
            Push { seed: 1000, count },
            // SAFETY: a primary in the recording state and an ended
            // secondary of the same queue family.
            |d, cb| unsafe { d.cmd_execute_commands(cb, &[secondary]) },
            |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false),
        )?;
        say("ready");
        let ran = (|| {
            if line_from_stdin() != "go" {
                return Err(Error("expected go".into()));
            }
            let t = Instant::now();
            job.run(&c, c.queues[0])?;
            let first = dmabuf::first_value(&c, &imported)?;
            say(&format!("done first={first} elapsed_ms={}", t.elapsed().as_millis()));
            Ok(())
        })();
        job.destroy(&c);
        ran
    })();
    // SAFETY: the job that used the pool's command buffer has finished.
    unsafe { d.destroy_command_pool(pool, None) };
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `two-devices FRAMES LEN wait|nowait`: a producer device exports a
/// dma-buf and a consumer device in the same process imports it; each
/// frame the producer fills it on its GPU and releases it, the consumer
/// acquires it, adds `frame + 1` and releases it, and the producer checks
/// every value. `wait`: each waits for its own fence before the other goes;
/// `nowait`: both submit back to back and the producer's CPU check first
/// `poll()`s the dma-buf, so only the released fences order anything.
pub fn cmd_two_devices(args: &[String]) -> Result<()> {
    let frames = arg(args, 0, 20);
    let len = arg(args, 1, 4096);
    let nowait = match args.get(2).map(String::as_str) {
        None | Some("wait") => false,
        Some("nowait") => true,
        Some(other) => return Err(Error(format!("{other:?}: expected wait or nowait"))),
    };
    let producer = Client::new(&ClientOptions::default())?;
    let consumer = Client::new(&ClientOptions::default())?;
    let shared = ExternalBuffer::exportable(&producer, len, DMA_BUF)?;
    let fd = shared.export_fd(&producer)?;
    let imported = ExternalBuffer::import(&consumer, fd.try_clone().ctx("dup")?, len, DMA_BUF)
        .map_err(|e| Error(format!("consumer import: {e:?}")))?;
    let fill = Kernel::new(&producer, Shader::Fill)?;
    let add = Kernel::new(&consumer, Shader::Increment)?;
    let outcome = (|| -> Result<()> {
        for frame in 0..frames {
            let seed = 0x9e37_79b9u32.wrapping_mul(frame + 1);
            let (pb, pf) = (shared.buffer, producer.family);
            let produce = Job::with_barriers(
                &producer,
                &fill,
                pb,
                Push { seed, count: len },
                |_, _| {},
                |d, cb| ownership_barrier(d, cb, pb, vk::QUEUE_FAMILY_FOREIGN_EXT, pf, false),
            )?;
            let (cbuf, cf) = (imported.buffer, consumer.family);
            let consume = Job::with_barriers(
                &consumer,
                &add,
                cbuf,
                Push { seed: frame + 1, count: len },
                |d, cb| foreign_acquire(d, cb, cbuf, cf, AcquireKind::Write),
                |d, cb| ownership_barrier(d, cb, cbuf, vk::QUEUE_FAMILY_FOREIGN_EXT, cf, false),
            )?;
            let (mut produced, mut consumed) = (false, false);
            let mut result = (|| {
                if nowait {
                    produce.submit(&producer, producer.queues[0])?;
                    produced = true;
                    consume.submit(&consumer, consumer.queues[0])?;
                    consumed = true;
                    if !wait_for_writers(fd.as_fd(), Duration::from_secs(10))? {
                        return Err(Error(format!("frame {frame}: the dma-buf stayed busy for 10 s")));
                    }
                } else {
                    produce.run(&producer, producer.queues[0])?;
                    consume.run(&consumer, consumer.queues[0])?;
                }
                let seen = shared.host_access(&producer, None)?;
                expect_words(&format!("frame {frame}: the producer reads"), &seen, |i| {
                    fill_expected(i, seed).wrapping_add(frame + 1)
                })
            })();
            // Whatever happened, nothing submitted may still run below.
            for (submitted, job, c) in [(produced, &produce, &producer), (consumed, &consume, &consumer)] {
                if submitted {
                    result = result.and(job.wait(c));
                }
            }
            produce.destroy(&producer);
            consume.destroy(&consumer);
            result?;
        }
        Ok(())
    })();
    fill.destroy(&producer);
    add.destroy(&consumer);
    imported.destroy(&consumer);
    shared.destroy(&producer);
    outcome?;
    say(&format!("frames={frames} len={len} two_devices_ok=true"));
    Ok(())
}
