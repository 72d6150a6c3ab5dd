//! `hazard fence-timeout provoke|twin [acquire-only]`: an acquire (with
//! a release in the same submission, or alone with `acquire-only`) of a
//! udmabuf carrying a vgem write fence; the GPU adds 1000. Provoke: the
//! fence is held until the job is done (the layer gives up after
//! `DYNABUF_FENCE_TIMEOUT_MS`) and then signalled; the content is
//! `i + 1000`. Twin: a foreign writer writes `5000 + i` and signals the
//! fence after 50 ms; the content is `6000 + i`. Prints `job_ms=N`. Then
//! an empty batch is submitted (where the layer delivers what its waiter
//! thread saw to the messengers).

use super::{hazard_client, Role, SHARED_NAME};
use crate::robustness::{say, ForeignWriter, HeldFence, Udmabuf};
use ash::vk;
use dynabuf_client::compute::Push;
use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const LEN: u32 = 1024;

pub(crate) fn run(role: Role, variant: &str) -> Result<()> {
    let release = match variant {
        "" => true,
        "acquire-only" => false,
        other => return Err(Error(format!("{other:?}: expected nothing or acquire-only"))),
    };
    let c = hazard_client()?;
    let buf = Udmabuf::new(LEN)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), LEN)?;
    c.name(imported.memory, SHARED_NAME)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let push = Push { seed: 1000, count: LEN };
    let job = dmabuf::acquire_job(&c, &kernel, imported.buffer, AcquireKind::Write, push, release)?;
    let outcome = (|| {
        let t = Instant::now();
        let expected_base = match role {
            Role::Provoke => {
                let fence = HeldFence::attach(&buf, true)?;
                let ran = job.run(&c, c.queues[0]);
                let job_ms = t.elapsed().as_millis();
                fence.signal()?;
                ran?;
                say(&format!("job_ms={job_ms}"));
                1000
            }
            Role::Twin => {
                let writer = ForeignWriter::start(&buf, true, Duration::from_millis(50), Some(|i| 5000 + i))?;
                let ran = job.run(&c, c.queues[0]);
                let job_ms = t.elapsed().as_millis();
                writer.join()?;
                ran?;
                say(&format!("job_ms={job_ms}"));
                6000
            }
        };
        buf.expect("after the job", |i| expected_base + i)?;
        // A next submission (an empty batch): the layer hands a timeout its
        // waiter thread saw to the messengers there, on the application's
        // thread.
        // SAFETY: an empty batch on the client's queue, waited for at once.
        unsafe {
            c.device
                .queue_submit(c.queues[0], &[vk::SubmitInfo::default()], vk::Fence::null())
                .ctx("vkQueueSubmit(empty)")?;
            c.device.queue_wait_idle(c.queues[0]).ctx("vkQueueWaitIdle")
        }
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    drop(c);
    outcome?;
    say("fence_timeout_ok=true");
    Ok(())
}
