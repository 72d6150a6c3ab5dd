//! The thread bridge: a per-device thread polls pending sync_files, each
//! for at most the fence timeout, and signals a timeline semaphore the
//! waiting batch waits on. The submitting thread never blocks; a fence that
//! never signals costs the GPU at most the timeout, and a warning names the
//! buffer.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ash::vk;

use super::{Bridge, SemaphorePool, Wait};
use crate::dispatch::device::TimelineSignaller;
use crate::dispatch::Device;
use crate::sys::sync_file;

struct Job {
    file: OwnedFd,
    value: u64,
    deadline: Instant,
    what: String,
}

#[derive(Debug)]
struct Channel {
    sender: Option<Sender<Job>>,
    next: u64,
    thread: Option<JoinHandle<()>>,
}

/// See the module doc.
#[derive(Debug)]
pub struct ThreadBridge {
    timeline: vk::Semaphore,
    timeout: Duration,
    channel: Mutex<Channel>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("value", &self.value).field("what", &self.what).finish()
    }
}

impl ThreadBridge {
    /// Creates the timeline semaphore and starts the thread.
    pub fn new(dev: &Device, timeout: Duration, name: &str) -> Result<Self, vk::Result> {
        let signaller = dev.signaller().ok_or(vk::Result::ERROR_FEATURE_NOT_PRESENT)?;
        let timeline = dev.create_timeline(0)?;
        let (sender, receiver) = channel::<Job>();
        let device_name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("dynabuf-waiter".into())
            .spawn(move || run(receiver, signaller, timeline, device_name));
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => {
                log_error!("{name}: cannot start the fence waiter thread: {e}");
                dev.destroy_semaphore(timeline);
                return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
            }
        };
        Ok(ThreadBridge {
            timeline,
            timeout,
            channel: Mutex::new(Channel { sender: Some(sender), next: 0, thread: Some(thread) }),
        })
    }
}

fn run(
    jobs: std::sync::mpsc::Receiver<Job>,
    signaller: TimelineSignaller,
    timeline: vk::Semaphore,
    device: String,
) {
    for job in jobs {
        let left = job.deadline.saturating_duration_since(Instant::now());
        match sync_file::wait(job.file.as_fd(), left) {
            Ok(true) => {}
            Ok(false) => log_warn!(
                "{device}: the fence on {} did not signal within DYNABUF_FENCE_TIMEOUT_MS; \
                 letting the GPU go on without it",
                job.what
            ),
            Err(e) => {
                log_warn!("{device}: waiting for the fence on {}: {e}; letting the GPU go on", job.what)
            }
        }
        let r = signaller.signal(timeline, job.value);
        if r != vk::Result::SUCCESS {
            log_error!("{device}: vkSignalSemaphore({}) failed: {r:?}", job.value);
        }
    }
}

impl Bridge for ThreadBridge {
    fn wait_for(
        &self,
        _dev: &Device,
        _pool: &SemaphorePool,
        file: OwnedFd,
        what: &str,
    ) -> Result<Wait, vk::Result> {
        let mut ch = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = ch.sender.clone() else { return Err(vk::Result::ERROR_DEVICE_LOST) };
        ch.next += 1;
        let value = ch.next;
        let job = Job { file, value, deadline: Instant::now() + self.timeout, what: what.to_string() };
        sender.send(job).map_err(|_| vk::Result::ERROR_DEVICE_LOST)?;
        Ok(Wait { semaphore: self.timeline, value })
    }

    fn is_timeline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "thread"
    }

    fn shutdown(&self, dev: &Device) {
        let thread = {
            let mut ch = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
            ch.sender = None;
            ch.thread.take()
        };
        // Every queued job ends within the fence timeout.
        if let Some(t) = thread {
            let _ = t.join();
        }
        dev.destroy_semaphore(self.timeline);
    }
}
