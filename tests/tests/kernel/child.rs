//! A test client running as a separate process under the layer, talking
//! line by line: the test says when to go and watches when it is done, so
//! it can tell whether the GPU waited for a fence. With
//! `DYNABUF_TEST_VALIDATION=below` the child also runs the validation layer
//! below dynabuf, and [`Child::finish`] fails the child when validation
//! reported what it does not report alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use dynabuf_client::env::validation::{self, LineFilter};
use dynabuf_client::env::{vulkan_env_with, Layer, Validation};

pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Validation messages that came on stdout (kept out of `lines`).
    stdout_messages: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// The command line, for reports.
    what: String,
    layer: Layer,
    validation: Validation,
    /// The validation report, once [`Child::finish`] made it.
    report: Option<Result<(), String>>,
}

/// Spawns `dynabuf-client <sub> <fd> <rest...>` with `fd` inherited.
pub fn spawn(
    sub: &str,
    fd: BorrowedFd<'_>,
    rest: &[&str],
    layer: Layer,
    envs: &[(&str, &str)],
) -> Result<Child, String> {
    spawn_with(sub, &[fd], rest, layer, envs)
}

/// As [`spawn`], with several inherited fds (their numbers come first).
pub fn spawn_with(
    sub: &str,
    fds: &[BorrowedFd<'_>],
    rest: &[&str],
    layer: Layer,
    envs: &[(&str, &str)],
) -> Result<Child, String> {
    // Inheritable copies of the fds, at numbers the child is told.
    let mut inheritable = Vec::new();
    for fd in fds {
        // SAFETY: F_DUPFD only reads the fd table and returns a new
        // descriptor (or -1); the kernel-tier harness is single-threaded,
        // so no other spawn can inherit it by accident.
        let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 10) };
        if n < 0 {
            return Err("F_DUPFD failed".into());
        }
        inheritable.push(n);
    }
    let validation = Validation::from_env();
    let what = std::iter::once(format!("dynabuf-client {sub}"))
        .chain(inheritable.iter().map(|n| n.to_string()))
        .chain(rest.iter().map(|r| r.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynabuf-client"));
    vulkan_env_with(&mut cmd, layer, validation)
        .arg(sub)
        .args(inheritable.iter().map(|n| n.to_string()))
        .args(rest);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let spawned = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    for n in inheritable {
        // SAFETY: `n` is ours; the child has its own copy now.
        unsafe { libc::close(n) };
    }
    let mut child = spawned.map_err(|e| format!("spawn dynabuf-client: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, lines) = channel();
    // Validation logs to stderr; should a message come on stdout all the
    // same, it stays out of the line protocol and is still checked.
    let stdout_messages = std::thread::spawn(move || {
        let mut filter = LineFilter::default();
        let mut messages = String::new();
        let mut receiver_gone = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if filter.is_message(&line) {
                messages.push_str(&line);
                messages.push('\n');
            } else if !receiver_gone {
                receiver_gone = tx.send(line).is_err();
            }
        }
        messages
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Ok(Child {
        stdin: child.stdin.take(),
        child,
        lines,
        stdout_messages: Some(stdout_messages),
        stderr: Some(stderr),
        what,
        layer,
        validation,
        report: None,
    })
}

impl Child {
    /// The next stdout line within `timeout`; `Ok(None)` when none came.
    pub fn line(&mut self, timeout: Duration) -> Result<Option<String>, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Ok(Some(l)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("the child exited early:\n{}", self.finish().1))
            }
        }
    }

    pub fn expect_line(&mut self, starts: &str, timeout: Duration) -> Result<String, String> {
        match self.line(timeout)? {
            Some(l) if l.starts_with(starts) => Ok(l),
            Some(l) => Err(format!("expected {starts:?}, got {l:?}")),
            None => Err(format!("no {starts:?} within {timeout:?}:\n{}", self.finish().1)),
        }
    }

    pub fn say(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).map_err(|e| format!("write to child: {e}"))
    }

    /// Waits for the child; returns (success, stderr). Under
    /// `DYNABUF_TEST_VALIDATION` a child with validation messages that
    /// validation alone does not produce has not succeeded, and the
    /// returned stderr starts with the report (also on later calls).
    pub fn finish(&mut self) -> (bool, String) {
        self.finish_and_say(true)
    }

    /// [`Child::finish`]; `say`: print how a failed child ended.
    fn finish_and_say(&mut self, say: bool) -> (bool, String) {
        drop(self.stdin.take());
        let status = self.child.wait();
        let ok = status.as_ref().is_ok_and(|s| s.success());
        let err = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if self.report.is_none() {
            if !ok && say {
                // In the test's output even where the test prints only stderr.
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                eprintln!("{}: {status}", self.what);
            }
            let on_stdout = self.stdout_messages.take().and_then(|h| h.join().ok()).unwrap_or_default();
            self.report =
                Some(validation::check(&self.what, self.layer, self.validation, &[&err, &on_stdout]));
        }
        match &self.report {
            Some(Err(report)) => (false, format!("{report}--- client stderr\n{err}")),
            _ => (ok, err),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.stdin.is_some() || self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.finish_and_say(false);
        }
    }
}

/// `key=value` from a line.
pub fn value(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
}
