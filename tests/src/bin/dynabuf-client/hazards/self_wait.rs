//! `hazard self-wait provoke|twin [above]`: two submissions on the one
//! queue. P waits for the application's timeline T at 1, then acquires a
//! udmabuf, adds 1000 and releases it; S, submitted right after, acquires
//! it, adds 1 and releases it:
//!
//! - provoke: S signals T = 1, so P's release (which S's acquire would
//!   wait for) can only finish after S; with `above`, S signals T = 2
//!   (which satisfies P's wait as well);
//! - twin: S signals nothing; the host signals T = 1 after both
//!   `vkQueueSubmit`s returned.
//!
//! Prints `submitted p_submit_ms=N s_submit_ms=N`, then waits (3 s) for S.
//! If S has not finished, the queue is deadlocked (`deadlock=true`; a
//! driver that runs a queue's submissions in order never runs S behind
//! P's wait): with `above` the host then signals T = 1 (valid: below S's
//! pending signal) and the work completes (`rescued=true`); with S
//! signalling T = 1 exactly nothing valid can unblock the queue, so the
//! client prints the messengers' reports and `deadlock_exit=true` and
//! exits at once, without touching the device again. When the work
//! completes, it checks the content (`i + 1001`) and prints
//! `self_wait_ok=true total_ms=N`.

use super::{capture, hazard_client, Role, SHARED_NAME};
use crate::robustness::{say, Udmabuf};
use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Shader};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const LEN: u32 = 1024;
/// How long S may take before the client calls the queue deadlocked.
const DEADLOCK: Duration = Duration::from_secs(3);

pub(crate) fn run(role: Role, variant: &str) -> Result<()> {
    let signal_value = match (role, variant) {
        (Role::Provoke, "") => Some(1u64),
        (Role::Provoke, "above") => Some(2),
        (Role::Twin, "") => None,
        (role, variant) => return Err(Error(format!("no {variant} {role:?} scenario"))),
    };
    let c = hazard_client()?;
    let buf = Udmabuf::new(LEN)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), LEN)?;
    c.name(imported.memory, SHARED_NAME)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let p = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1000, LEN)?;
    let s = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, LEN)?;
    let mut type_info =
        vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE).initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
    // SAFETY: a valid create info; the device has timelineSemaphore enabled.
    let timeline = unsafe { c.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore(timeline)")?;
    let outcome = submit_both(&c, &p, &s, timeline, signal_value).and_then(|t| {
        if !signalled(&c, &s, DEADLOCK)? {
            say("deadlock=true");
            if signal_value != Some(2) {
                // Nothing valid unblocks the queue: report and leave.
                capture::print_reports();
                say("deadlock_exit=true");
                // SAFETY: ends the process at once; no Vulkan call is made
                // on the deadlocked device (an orderly teardown would wait
                // for it forever).
                unsafe { libc::_exit(0) };
            }
            host_signal(&c, timeline, 1)?;
            say("rescued=true");
        }
        s.wait(&c)?;
        p.wait(&c)?;
        buf.expect("after P and S", |i| i + 1001)?;
        say(&format!("self_wait_ok=true total_ms={}", t.elapsed().as_millis()));
        Ok(())
    });
    // SAFETY: every submission that used it has completed (or failed to be made).
    unsafe { c.device.destroy_semaphore(timeline, None) };
    p.destroy(&c);
    s.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    drop(c);
    outcome
}

/// Submits P (waiting for T = 1) and S (signalling T = `signal_value`);
/// without a signal value the host signals T = 1 after both. Returns when
/// the first submit began.
fn submit_both(
    c: &Client,
    p: &Job,
    s: &Job,
    timeline: vk::Semaphore,
    signal_value: Option<u64>,
) -> Result<Instant> {
    let semaphores = [timeline];
    let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
    let one = [1u64];
    let p_cbs = [p.cb];
    let mut waits = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&one);
    let p_submit = vk::SubmitInfo::default()
        .wait_semaphores(&semaphores)
        .wait_dst_stage_mask(&stages)
        .command_buffers(&p_cbs)
        .push_next(&mut waits);
    let start = Instant::now();
    // SAFETY: a recorded command buffer, a timeline of this device whose
    // wait value a later signal reaches (wait-before-signal), an
    // unsignalled fence.
    unsafe { c.device.queue_submit(c.queues[0], &[p_submit], p.fence) }.ctx("vkQueueSubmit(P)")?;
    let p_ms = start.elapsed().as_millis();
    let s_cbs = [s.cb];
    let values = [signal_value.unwrap_or(0)];
    let mut signals = vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
    let s_submit = match signal_value {
        Some(_) => vk::SubmitInfo::default()
            .command_buffers(&s_cbs)
            .signal_semaphores(&semaphores)
            .push_next(&mut signals),
        None => vk::SubmitInfo::default().command_buffers(&s_cbs),
    };
    let t = Instant::now();
    // SAFETY: as above; the signal value is above the timeline's value.
    let submitted =
        unsafe { c.device.queue_submit(c.queues[0], &[s_submit], s.fence) }.ctx("vkQueueSubmit(S)");
    let s_ms = t.elapsed().as_millis();
    if let Err(e) = submitted {
        // P must not wait for ever.
        let _ = host_signal(c, timeline, 1);
        return Err(e);
    }
    say(&format!("submitted p_submit_ms={p_ms} s_submit_ms={s_ms}"));
    if signal_value.is_none() {
        host_signal(c, timeline, 1)?;
    }
    Ok(start)
}

fn host_signal(c: &Client, timeline: vk::Semaphore, value: u64) -> Result<()> {
    let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(value);
    // SAFETY: a timeline of this device, signalled above its value and
    // below any pending signal of it.
    unsafe { c.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore")
}

/// Whether `job`'s fence signals within `timeout` (left signalled).
fn signalled(c: &Client, job: &Job, timeout: Duration) -> Result<bool> {
    // SAFETY: a fence of this device; a bounded wait.
    match unsafe { c.device.wait_for_fences(&[job.fence], true, timeout.as_nanos() as u64) } {
        Ok(()) => Ok(true),
        Err(vk::Result::TIMEOUT) => Ok(false),
        Err(e) => Err(Error(format!("vkWaitForFences: {e:?}"))),
    }
}
