//! Subcommands that compose several hand-overs of one dma-buf in one
//! submission, for comparison with a pinned attachment.

use super::{expect_words, say, Udmabuf};
use crate::arg;
use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf::{self, foreign_acquire, AcquireKind};
use dynabuf_client::external::{ownership_barrier, ExternalBuffer};
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;

/// A wrapping FNV-1a hash of the words: one number to compare runs by.
fn checksum(words: &[u32]) -> u64 {
    words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ u64::from(*w)).wrapping_mul(0x0100_0000_01b3))
}

/// What one batch of [`cmd_release_acquire`] and [`cmd_first_release`]
/// records around its dispatch.
#[derive(Clone, Copy)]
struct Step {
    shader: Shader,
    /// Fill's seed, or Increment's addend.
    seed: u32,
    /// How many values the dispatch touches.
    count: u32,
    acquire: bool,
    release: bool,
}

/// Submits `steps` as ONE `vkQueueSubmit`, one batch (and command buffer)
/// each, over `imported`; waits for it.
fn submit_steps(c: &Client, imported: &ExternalBuffer, steps: &[Step]) -> Result<()> {
    let fill = Kernel::new(c, Shader::Fill)?;
    let add = Kernel::new(c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let mut jobs = Vec::new();
    let outcome = (|| {
        for s in steps {
            let kernel = if s.shader == Shader::Fill { &fill } else { &add };
            let job = Job::with_barriers(
                c,
                kernel,
                buffer,
                Push { seed: s.seed, count: s.count },
                |d, cb| {
                    if s.acquire {
                        foreign_acquire(d, cb, buffer, family, AcquireKind::Write)
                    }
                },
                |d, cb| {
                    if s.release {
                        ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false)
                    }
                },
            )?;
            jobs.push(job);
        }
        let cbs: Vec<[vk::CommandBuffer; 1]> = jobs.iter().map(|j| [j.cb]).collect();
        let submits: Vec<vk::SubmitInfo> =
            cbs.iter().map(|cb| vk::SubmitInfo::default().command_buffers(cb)).collect();
        let last = jobs.last().ok_or_else(|| Error("no steps".into()))?;
        // SAFETY: recorded command buffers and an unsignalled fence of this
        // device; none of the jobs is pending.
        unsafe { c.device.queue_submit(c.queues[0], &submits, last.fence) }.ctx("vkQueueSubmit")?;
        last.wait(c)
    })();
    for job in jobs {
        job.destroy(c);
    }
    fill.destroy(c);
    add.destroy(c);
    outcome
}

/// The CPU's view of a fresh udmabuf before import, in both subcommands
/// below: no zero, nothing a shader computes here.
fn pattern(i: u32) -> u32 {
    0xa500_0000 | (i * 3)
}

/// One scenario of [`cmd_release_acquire`] and [`cmd_first_release`]:
/// a fresh udmabuf filled with [`pattern`], imported, `steps` submitted at
/// once, and the content the CPU then reads checked against `want`.
/// Prints `NAME=ok checksum=X`.
fn scenario(c: &Client, name: &str, len: u32, steps: &[Step], want: impl Fn(u32) -> u32) -> Result<()> {
    let buf = Udmabuf::new(len)?;
    buf.write(pattern)?;
    let imported = dmabuf::import_fd(c, buf.dmabuf.as_fd(), len)?;
    let ran = submit_steps(c, &imported, steps);
    imported.destroy(c);
    ran?;
    let words = buf.read()?;
    expect_words(name, &words, want)?;
    say(&format!("{name}=ok checksum={:#x}", checksum(&words)));
    Ok(())
}

/// `release-acquire [LEN]`: ONE `vkQueueSubmit` of three batches on a
/// fresh import of a udmabuf holding [`pattern`] (run with
/// `DYNABUF_ATTACH=dynamic`: copies in at each acquire, out at each
/// release):
/// - `all_three`: each batch acquires, adds (1, 10, 100) and releases;
/// - `fill_acquire_release`: batch 0 acquires, fills (seed 7) and
///   releases; batch 1 acquires and adds 10; batch 2 adds 100 and releases.
///
/// A batch whose copy-in read the dma-buf before the previous batch's
/// writes were copied out would lose them. The CPU checks the exact
/// composition through the memfd; prints `release_acquire_ok=true`.
pub fn cmd_release_acquire(args: &[String]) -> Result<()> {
    let len = arg(args, 0, 4096);
    let c = Client::new(&ClientOptions::default())?;
    let add = |seed, acquire, release| Step { shader: Shader::Increment, seed, count: len, acquire, release };
    scenario(&c, "all_three", len, &[add(1, true, true), add(10, true, true), add(100, true, true)], |i| {
        pattern(i).wrapping_add(111)
    })?;
    let fill = Step { shader: Shader::Fill, seed: 7, count: len, acquire: true, release: true };
    scenario(&c, "fill_acquire_release", len, &[fill, add(10, true, false), add(100, false, true)], |i| {
        fill_expected(i, 7).wrapping_add(110)
    })?;
    say("release_acquire_ok=true");
    Ok(())
}

/// `first-release [LEN]`: the first submission on a fresh import of a
/// udmabuf holding [`pattern`] writes only its first half (fill, seed 9,
/// count LEN/2) and releases it, with no acquire (run with
/// `DYNABUF_ATTACH=dynamic`: the backing never had the dma-buf's content):
/// - `release_only`: that one batch;
/// - `release_then_acquire`: that batch, then a second in the same
///   submission that acquires, adds 1 to every value and releases.
///
/// The CPU checks through the memfd that the first half holds the GPU's
/// values and the second the original pattern (plus 1 after the second
/// batch). Prints `first_release_ok=true`.
pub fn cmd_first_release(args: &[String]) -> Result<()> {
    let len = arg(args, 0, 4096);
    let half = len / 2;
    let c = Client::new(&ClientOptions::default())?;
    let write_half = Step { shader: Shader::Fill, seed: 9, count: half, acquire: false, release: true };
    let gpu_or_pattern = move |i: u32| if i < half { fill_expected(i, 9) } else { pattern(i) };
    scenario(&c, "release_only", len, &[write_half], gpu_or_pattern)?;
    let add = Step { shader: Shader::Increment, seed: 1, count: len, acquire: true, release: true };
    scenario(&c, "release_then_acquire", len, &[write_half, add], |i| gpu_or_pattern(i).wrapping_add(1))?;
    say("first_release_ok=true");
    Ok(())
}
