//! Subcommands about what the application chains to or waits for in its
//! submissions: `pNext` chains, timeline waits signalled after the call.

use super::{client_with, say, ForeignWriter, Udmabuf};
use crate::arg;
use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf::{self, wait_for_writers, AcquireKind};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// The `pNext` chains `pnext` puts on the acquiring batch.
#[derive(Clone, Copy, Debug)]
enum Chain {
    Timeline,
    DeviceGroup,
    Both,
}

/// `pnext release|acquire-only [LEN]`: a dma-buf with a pending foreign
/// write fence (vgem, signalled 300 ms later just after new content is
/// written) is acquired by a `vkQueueSubmit` batch whose `pNext` chains a
/// `VkTimelineSemaphoreSubmitInfo` signalling an application timeline
/// semaphore, a `VkDeviceGroupSubmitInfo` (device masks 1), or both; the
/// GPU adds 1000 (and releases). Checks the content and the timeline's
/// value after each; prints `chain=... ok` lines and `pnext_ok=true`.
pub fn cmd_pnext(args: &[String]) -> Result<()> {
    let release = match args.first().map(String::as_str) {
        Some("release") => true,
        Some("acquire-only") => false,
        other => return Err(Error(format!("mode {other:?}: expected release or acquire-only"))),
    };
    let len = arg(args, 1, 1024);
    let (c, _) = client_with(&[])?;
    let buf = Udmabuf::new(len)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let push = Push { seed: 1000, count: len };
    let job = dmabuf::acquire_job(&c, &kernel, imported.buffer, AcquireKind::Write, push, release)?;
    let mut type_info =
        vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE).initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
    // SAFETY: a valid create info; the device has timelineSemaphore enabled.
    let timeline = unsafe { c.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore(timeline)")?;
    let outcome = (|| {
        for (n, chain) in [Chain::Timeline, Chain::DeviceGroup, Chain::Both].into_iter().enumerate() {
            let value = n as u64 + 1;
            buf.write(|i| i)?;
            let writer = ForeignWriter::start(&buf, true, Duration::from_millis(300), Some(|i| 5000 + i))?;
            let submitted = submit_chained(&c, &job, chain, timeline, value);
            let signalled = writer.join()?;
            submitted?;
            job.wait(&c)?;
            let done = Instant::now();
            buf.expect(&format!("{chain:?}"), |i| 6000 + i)?;
            let wanted = match chain {
                Chain::DeviceGroup => value - 1,
                _ => value,
            };
            // Wait for the value (bounded) rather than read the counter the
            // moment the fence signals: Mesa's runtime installs the timeline
            // points of a deferred (wait-before-signal) submission from its
            // submit thread, and the counter can lag the fence by a moment.
            let semaphores = [timeline];
            let values = [wanted];
            let wait = vk::SemaphoreWaitInfo::default().semaphores(&semaphores).values(&values);
            // SAFETY: a timeline semaphore of this device; a bounded wait.
            let _ = unsafe { c.device.wait_semaphores(&wait, 2_000_000_000) };
            // SAFETY: a timeline semaphore of this device.
            let reached = unsafe { c.device.get_semaphore_counter_value(timeline) }
                .ctx("vkGetSemaphoreCounterValue")?;
            if reached != wanted {
                return Err(Error(format!(
                    "{chain:?}: the application's timeline is at {reached}, not {wanted}"
                )));
            }
            if matches!(chain, Chain::DeviceGroup) {
                // Keep the values in step: signal from the host.
                let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(value);
                // SAFETY: a timeline of this device, signalled to a higher value.
                unsafe { c.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore")?;
            }
            let first = buf.read()?[0];
            let after = done.saturating_duration_since(signalled).as_millis();
            say(&format!("chain={chain:?} ok first={first} timeline={reached} done_after_signal_ms={after}"));
        }
        Ok(())
    })();
    // SAFETY: every submission that used it has completed.
    unsafe { c.device.destroy_semaphore(timeline, None) };
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome?;
    say("pnext_ok=true");
    Ok(())
}

/// Submits `job` with `chain` on its batch (signalling `timeline` to
/// `value` where the chain has timeline values).
fn submit_chained(c: &Client, job: &Job, chain: Chain, timeline: vk::Semaphore, value: u64) -> Result<()> {
    let cbs = [job.cb];
    let signal = [timeline];
    let values = [value];
    let masks = [1u32];
    let indices = [0u32];
    let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
    let mut group = vk::DeviceGroupSubmitInfo::default().command_buffer_device_masks(&masks);
    let mut group_signalling = vk::DeviceGroupSubmitInfo::default()
        .command_buffer_device_masks(&masks)
        .signal_semaphore_device_indices(&indices);
    let base = vk::SubmitInfo::default().command_buffers(&cbs);
    let submit = match chain {
        Chain::Timeline => base.signal_semaphores(&signal).push_next(&mut timeline_info),
        Chain::DeviceGroup => base.push_next(&mut group),
        Chain::Both => {
            base.signal_semaphores(&signal).push_next(&mut timeline_info).push_next(&mut group_signalling)
        }
    };
    // SAFETY: a recorded command buffer, valid chains alive for the call,
    // and an unsignalled fence; the job is not pending.
    unsafe { c.device.queue_submit(c.queues[0], &[submit], job.fence) }.ctx("vkQueueSubmit")
}

/// `timeline-release [same|ahead|before-import] [LEN]`: a release whose
/// work sits behind a wait for an application timeline semaphore at value
/// 1, which nobody has signalled yet:
/// - `same` (default): ONE `vkQueueSubmit` whose batch waits for the
///   timeline and acquires (FOREIGN → local) a udmabuf, adds 1000 and
///   releases it (local → FOREIGN);
/// - `ahead`: an earlier `vkQueueSubmit` on the same queue, made after the
///   import, is a batch that only waits for the timeline; the job's own
///   submission waits on nothing;
/// - `before-import`: as `ahead`, but the waiting batch is submitted
///   before the udmabuf is imported (while the device shares nothing).
///
/// Only after the job's `vkQueueSubmit` returns does the client signal the
/// timeline from the host (`vkSignalSemaphore`); then it waits for its
/// fence and checks the content through the memfd. Prints `submitted
/// submit_ms=N ready_before_signal=B` as soon as the submit returns (B:
/// whether a peer's `poll()` finds the dma-buf ready then, before any of
/// the work can have run), then `timeline_release_ok=true submit_ms=N
/// total_ms=M`. A layer that waited, inside `vkQueueSubmit`, for the
/// release's work to be submitted (`vkGetSemaphoreFdKHR` of a SYNC_FD
/// behind a wait-before-signal) would never return: the signal it waits
/// for comes after the call.
pub fn cmd_timeline_release(args: &[String]) -> Result<()> {
    let mode = args.first().map_or("same", String::as_str);
    if !["same", "ahead", "before-import"].contains(&mode) {
        return Err(Error(format!("{mode:?}: expected same, ahead or before-import")));
    }
    let len = arg(args, 1, 4096);
    let (c, _) = client_with(&[])?;
    let mut type_info =
        vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE).initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
    // SAFETY: a valid create info; the device has timelineSemaphore enabled.
    let timeline = unsafe { c.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore(timeline)")?;
    let waits = [timeline];
    let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
    let values = [1u64];
    let mut waiting = false;
    // A batch that only waits for the timeline.
    let wait_alone = |waiting: &mut bool| -> Result<()> {
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&waits)
            .wait_dst_stage_mask(&stages)
            .push_next(&mut timeline_info);
        // SAFETY: a timeline of this device with a wait value its host
        // signal below reaches (wait-before-signal).
        unsafe { c.device.queue_submit(c.queues[0], &[submit], vk::Fence::null()) }
            .ctx("vkQueueSubmit(wait)")?;
        *waiting = true;
        Ok(())
    };
    let signal_and_drain = || {
        let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(1);
        // SAFETY: a timeline of this device, signalled to a higher value; a
        // failed signal leaves the waits to time out.
        let _ = unsafe { c.device.signal_semaphore(&signal) };
        // SAFETY: the device's queue; waits for everything submitted.
        let _ = unsafe { c.device.queue_wait_idle(c.queues[0]) };
    };
    if mode == "before-import" {
        if let Err(e) = wait_alone(&mut waiting) {
            // SAFETY: nothing was submitted that uses it.
            unsafe { c.device.destroy_semaphore(timeline, None) };
            return Err(e);
        }
    }
    let outcome = (|| {
        let buf = Udmabuf::new(len)?;
        buf.write(|i| i)?;
        let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
        let kernel = Kernel::new(&c, Shader::Increment)?;
        let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1000, len);
        let ran = job.as_ref().map_err(|e| Error(e.to_string())).and_then(|job| {
            if mode == "ahead" {
                wait_alone(&mut waiting)?;
            }
            let cbs = [job.cb];
            let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
            let submit = match mode {
                "same" => vk::SubmitInfo::default()
                    .wait_semaphores(&waits)
                    .wait_dst_stage_mask(&stages)
                    .command_buffers(&cbs)
                    .push_next(&mut timeline_info),
                _ => vk::SubmitInfo::default().command_buffers(&cbs),
            };
            let t = Instant::now();
            // SAFETY: a recorded command buffer, a timeline of this device
            // with a wait value its host signal below reaches
            // (wait-before-signal), and an unsignalled fence; the job is
            // not pending.
            unsafe { c.device.queue_submit(c.queues[0], &[submit], job.fence) }.ctx("vkQueueSubmit")?;
            waiting = true;
            let submit_ms = t.elapsed().as_millis();
            // As a peer would see it now: none of the work can have run.
            let ready = wait_for_writers(buf.dmabuf.as_fd(), Duration::ZERO)?;
            say(&format!("submitted submit_ms={submit_ms} ready_before_signal={ready}"));
            let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(1);
            // SAFETY: a timeline of this device, signalled to a higher value.
            unsafe { c.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore")?;
            job.wait(&c)?;
            waiting = false;
            let total_ms = t.elapsed().as_millis();
            buf.expect("after the job", |i| i + 1000)?;
            say(&format!("timeline_release_ok=true submit_ms={submit_ms} total_ms={total_ms}"));
            Ok(())
        });
        if waiting {
            // Whatever failed, nothing may still wait on the timeline below.
            signal_and_drain();
            waiting = false;
        }
        if let Ok(job) = job {
            job.destroy(&c);
        }
        kernel.destroy(&c);
        imported.destroy(&c);
        ran
    })();
    if waiting {
        signal_and_drain();
    }
    // SAFETY: every submission that used it has completed.
    unsafe { c.device.destroy_semaphore(timeline, None) };
    outcome
}
