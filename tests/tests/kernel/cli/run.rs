//! `dynabuf run` over a client that acquires and releases a udmabuf it
//! inherited: the summary names the buffer and counts its acquires and
//! releases (the control: with `--sync off` the layer hands nothing over
//! and the same run counts none).

use std::os::fd::{AsFd, AsRawFd};

use dynabuf::sys::dma_buf;
use dynabuf_client::env::{Layer, Validation};
use dynabuf_client::kernel::udmabuf;

use super::dynabuf_command;
use crate::common::{check_validation, finish, Run, CLIENT};
use crate::ensure;
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

/// `dynabuf run RUN_ARGS -- dynabuf-client cycles FD N`, the dma-buf
/// inherited at FD.
fn run_cycles(buf: std::os::fd::BorrowedFd<'_>, n: u32, run_args: &[&str]) -> Result<Run, String> {
    // SAFETY: F_DUPFD only reads the fd table; the copy is inheritable
    // (no CLOEXEC) and the kernel-tier harness spawns nothing else now.
    let fd = unsafe { libc::fcntl(buf.as_raw_fd(), libc::F_DUPFD, 10) };
    ensure!(fd >= 0, "F_DUPFD failed");
    let (fd_s, n_s) = (fd.to_string(), n.to_string());
    let mut args = vec!["run", "--stats"];
    args.extend(run_args);
    args.extend(["--", CLIENT, "cycles", &fd_s, &n_s]);
    let out = dynabuf_command(&args).and_then(|mut c| c.output().map_err(|e| format!("dynabuf run: {e}")));
    // SAFETY: our copy; the child had its own.
    unsafe { libc::close(fd) };
    let run = finish(out?);
    check_validation(&format!("dynabuf {}", args.join(" ")), Layer::On, Validation::from_env(), &run);
    ensure!(run.ok, "dynabuf run failed: {run:?}");
    Ok(run)
}

pub fn run_reports_the_dma_buf_and_its_acquires_and_releases() -> TestResult {
    require_kernel_tier!();
    let (buf, _memfd) = udmabuf::create(65536).check("udmabuf")?;
    let id = dma_buf::identity(buf.as_fd()).check("fstat")?;
    let n = 20;
    let run = run_cycles(buf.as_fd(), n, &[])?;
    // One job before the counted ones: n + 1 hand-overs, n + 1 imports.
    let jobs = n + 1;
    ensure!(run.value("first") == Some(jobs.to_string()), "{}", run.stdout);
    let s = &run.stderr;
    ensure!(s.contains("dynabuf run: summary, 1 device:"), "{s}");
    ensure!(s.contains("dma-bufs seen: 1 (65536 bytes)"), "{s}");
    ensure!(s.contains(&format!("acquires {jobs} (")) && s.contains(&format!("releases {jobs}\n")), "{s}");
    let line = format!(
        "dma-buf {}:{} (65536 bytes, udmabuf): imports {jobs}, exports 0, acquires {jobs} (",
        id.dev, id.ino
    );
    ensure!(s.contains(&line), "no {line:?} in:\n{s}");
    ensure!(s.contains(&format!("releases {jobs}, evictions 0")), "{s}");
    ensure!(s.contains("hazards: none"), "{s}");

    // Control: no implicit sync, no hand-overs counted; the buffer is
    // still seen.
    let off = run_cycles(buf.as_fd(), n, &["--sync", "off"])?;
    let s = &off.stderr;
    ensure!(s.contains("dma-bufs seen: 1 (65536 bytes)"), "{s}");
    ensure!(s.contains("acquires 0 (0 waited") && s.contains("releases 0\n"), "{s}");
    Ok(Outcome::Pass)
}
