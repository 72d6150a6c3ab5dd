//! Subcommands run with `DYNABUF_FAULT`: failures injected into the layer's
//! own calls.

use super::{expect_words, say, HeldFence, Udmabuf};
use crate::arg;
use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{self, wait_for_writers, AcquireKind};
use dynabuf_client::external::open_fds;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// `fault-reimport ROUNDS [LEN]` (run with `DYNABUF_FAULT=reimport:1` and
/// `DYNABUF_EVICT=every:1`): the first acquire + add 1 + release submission
/// must fail (`faulted=...`), then ROUNDS + 1 succeed with exact content;
/// fd counts around the last ROUNDS.
pub fn cmd_fault_reimport(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 20);
    let len = arg(args, 1, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let outcome = (|| {
        let faulted = job.submit(&c, c.queues[0]);
        let result = faulted.as_ref().err().map_or_else(|| "no".into(), |e| e.to_string());
        say(&format!("faulted={}", result.trim_start_matches("vkQueueSubmit: ")));
        if faulted.is_ok() {
            job.wait(&c)?;
        }
        // The failed submission ran nothing.
        buf.expect("after the failed submission", |i| i)?;
        job.run(&c, c.queues[0])?;
        buf.expect("after the retry", |i| i + 1)?;
        let before = open_fds();
        for _ in 0..rounds {
            job.run(&c, c.queues[0])?;
        }
        let after = open_fds();
        buf.expect("after the rounds", |i| i + 1 + rounds)?;
        say(&format!("rounds={rounds} fds_before={before} fds_after={after} content_ok=true"));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `release-peek ROUNDS [LEN]`: ROUNDS acquire + add 1 + release
/// submissions; right after each `vkQueueSubmit` returns, before waiting
/// for its own fence, the client looks at the dma-buf as a peer would:
/// `poll(POLLIN)` (ready: no write fence pending) and the content through
/// the memfd. `early=N`: rounds where the dma-buf was ready but the content
/// unfinished (a peer would read a frame still being written). Exact
/// content after every round; fd counts from round 2 on.
pub fn cmd_release_peek(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 50);
    let len = arg(args, 1, 1 << 16);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let (mut early, mut busy, mut before, mut after) = (0, 0, 0, 0);
    let outcome = (|| -> Result<()> {
        let mut expected: Vec<u32> = (0..len).collect();
        for round in 1..=rounds {
            if round == 2 {
                before = open_fds();
            }
            expected.iter_mut().for_each(|w| *w += 1);
            job.submit(&c, c.queues[0])?;
            // As a peer: is the dma-buf ready, and what does it hold now?
            let ready = wait_for_writers(buf.dmabuf.as_fd(), Duration::ZERO)?;
            let finished = buf.read()? == expected;
            busy += u32::from(!ready);
            early += u32::from(ready && !finished);
            job.wait(&c)?;
            let now = buf.read()?;
            if now != expected {
                expect_words(&format!("round {round}"), &now, |i| i + round)?;
            }
        }
        after = open_fds();
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome?;
    say(&format!("rounds={rounds} early={early} busy={busy} fds_before={before} fds_after={after}"));
    Ok(())
}

/// `sync-file-fault ROUNDS reader|none [LEN]`: ROUNDS acquire (write) +
/// add 1 + release submissions, each waited for; with `reader`, a foreign
/// read fence (vgem) stays pending on the dma-buf throughout (a reader that
/// never writes: the content stays the client's). Exact content; fd counts
/// around the rounds; `elapsed_ms` of the rounds.
pub fn cmd_sync_file_fault(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 20);
    let reader = match args.get(1).map(String::as_str) {
        Some("reader") => true,
        Some("none") => false,
        other => return Err(Error(format!("{other:?}: expected reader or none"))),
    };
    let len = arg(args, 2, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let outcome = (|| {
        job.run(&c, c.queues[0])?;
        let before = open_fds();
        // Signalled after the rounds (vgem would signal it by itself after 10 s).
        let reading = match reader {
            true => Some(HeldFence::attach(&buf, false)?),
            false => None,
        };
        let t = Instant::now();
        for _ in 0..rounds {
            job.run(&c, c.queues[0])?;
        }
        let elapsed = t.elapsed().as_millis();
        let reader_busy = dma_buf_busy_for_writers(buf.dmabuf.as_fd())?;
        if let Some(r) = reading {
            r.signal()?;
        }
        let after = open_fds();
        buf.expect("after the rounds", |i| i + 1 + rounds)?;
        say(&format!(
            "rounds={rounds} elapsed_ms={elapsed} reader_pending_during_rounds={reader_busy} fds_before={before} \
             fds_after={after} content_ok=true"
        ));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// Whether a writer would have to wait (any fence pending: POLLOUT not ready).
fn dma_buf_busy_for_writers(fd: BorrowedFd<'_>) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    let n = poll(&mut fds, PollTimeout::ZERO).ctx("poll(dma-buf)")?;
    Ok(!(n > 0 && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLOUT))))
}
