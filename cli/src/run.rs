//! `dynabuf run`: APP as a child process under the layer, then a summary of
//! what the layer saw, and APP's exit status as ours.
//!
//! The child gets the loader's variables (`layer_env`), the `DYNABUF_*`
//! settings the options name (everything else the user set is inherited),
//! and `DYNABUF_STATS_FILE` pointing into a private directory (mode 0700)
//! that is removed before `run` exits, whatever APP did. While APP runs,
//! `run` ignores SIGINT and SIGQUIT (the terminal sends them to APP too;
//! `run` must live to report and clean up) and passes SIGTERM and SIGHUP
//! on to APP.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SigHandler, Signal};

use crate::layer_env;
use crate::settings_args;
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Eviction policy for dynamic attachments (DYNABUF_EVICT):
    /// off, every:N, idle:MS, budget:MIB.
    #[arg(long, value_name = "POLICY", value_parser = settings_args::evict)]
    evict: Option<String>,
    /// How foreign fences reach the GPU (DYNABUF_SYNC): auto, semaphore,
    /// thread, off.
    #[arg(long, value_name = "MODE", value_parser = settings_args::sync)]
    sync: Option<String>,
    /// Which dma-bufs a submission hands over (DYNABUF_SYNC_SCOPE):
    /// transfers, all.
    #[arg(long, value_name = "SCOPE", value_parser = settings_args::sync_scope)]
    sync_scope: Option<String>,
    /// How hazards are reported (DYNABUF_HAZARDS): off, warn, error.
    #[arg(long, value_name = "MODE", value_parser = settings_args::hazards)]
    hazards: Option<String>,
    /// Whether imports become dynamic attachments (DYNABUF_ATTACH):
    /// pinned, dynamic, auto.
    #[arg(long, value_name = "MODE", value_parser = settings_args::attach)]
    attach: Option<String>,
    /// The longest the layer waits for a peer's fence, in ms
    /// (DYNABUF_FENCE_TIMEOUT_MS).
    #[arg(long, value_name = "MS", value_parser = settings_args::fence_timeout_ms)]
    fence_timeout_ms: Option<String>,
    /// What the layer logs (DYNABUF_LOG): off, error, warn, info, debug,
    /// trace.
    #[arg(long, value_name = "LEVEL", value_parser = settings_args::log)]
    log: Option<String>,
    /// Also print every counter of every device, not only the summary.
    #[arg(long)]
    stats: bool,
    /// The application and its arguments (after `--`).
    #[arg(value_name = "APP", required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    app: Vec<OsString>,
}

impl RunArgs {
    /// The `DYNABUF_*` variables the options set.
    fn settings(&self) -> Vec<(&'static str, &str)> {
        [
            ("DYNABUF_EVICT", &self.evict),
            ("DYNABUF_SYNC", &self.sync),
            ("DYNABUF_SYNC_SCOPE", &self.sync_scope),
            ("DYNABUF_HAZARDS", &self.hazards),
            ("DYNABUF_ATTACH", &self.attach),
            ("DYNABUF_FENCE_TIMEOUT_MS", &self.fence_timeout_ms),
            ("DYNABUF_LOG", &self.log),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// A directory only this user can enter, removed with everything in it
/// when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> std::io::Result<PrivateDir> {
        let template = std::env::temp_dir().join("dynabuf-run.XXXXXX");
        // mkdtemp creates it with mode 0700.
        nix::unistd::mkdtemp(&template).map(PrivateDir).map_err(std::io::Error::from)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The child's pid while it runs, for [`forward`].
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill() is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, signal) };
    }
}

/// While the child runs: INT and QUIT ignored, TERM and HUP forwarded.
fn shield_signals() {
    for (signal, handler) in [
        (Signal::SIGINT, SigHandler::SigIgn),
        (Signal::SIGQUIT, SigHandler::SigIgn),
        (Signal::SIGTERM, SigHandler::Handler(forward)),
        (Signal::SIGHUP, SigHandler::Handler(forward)),
    ] {
        // SAFETY: the handlers are SIG_IGN or `forward`, which only loads
        // an atomic and calls kill(), both async-signal-safe. This is done
        // after spawning, so the child starts with the default dispositions.
        let _ = unsafe { nix::sys::signal::signal(signal, handler) };
    }
}

/// The exit code that stands for `status`: the child's own, or 128 + the
/// signal that ended it (as shells report it).
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// How `status` ended, in words, when it is not an exit.
fn describe_signal(status: ExitStatus) -> Option<String> {
    let signal = status.signal()?;
    let name =
        Signal::try_from(signal).map(|s| s.as_str().to_string()).unwrap_or_else(|_| signal.to_string());
    let core = if status.core_dumped() { ", core dumped" } else { "" };
    Some(format!("killed by signal {signal} ({name}){core}"))
}

pub fn main(args: RunArgs) -> ExitCode {
    let Some((app, app_args)) = args.app.split_first() else {
        eprintln!("dynabuf run: no application given (dynabuf run -- APP [ARGS])");
        return ExitCode::from(2);
    };
    let Some(found) = layer_env::find() else {
        eprintln!("dynabuf run: cannot find the layer ({}); looked at:", layer_env::MANIFEST);
        for p in layer_env::searched() {
            eprintln!("  {}", p.display());
        }
        eprintln!(
            "dynabuf run: build it (`cargo build --workspace` puts it next to this command) or install it \
             (scripts/install.sh)"
        );
        return ExitCode::from(2);
    };
    let dir = match PrivateDir::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "dynabuf run: cannot make a private directory in {}: {e}",
                std::env::temp_dir().display()
            );
            return ExitCode::from(2);
        }
    };
    let stats_file = dir.path().join("stats.jsonl");
    let user_stats_file = std::env::var_os("DYNABUF_STATS_FILE").filter(|f| !f.is_empty());

    let mut cmd = Command::new(app);
    cmd.args(app_args);
    layer_env::enable(&mut cmd, &found, |k| std::env::var_os(k));
    for (k, v) in args.settings() {
        cmd.env(k, v);
    }
    cmd.env("DYNABUF_STATS_FILE", &stats_file);

    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dynabuf run: cannot run {}: {e}", Path::new(app).display());
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            return ExitCode::from(code);
        }
    };
    CHILD.store(child.id() as i32, Ordering::Relaxed);
    shield_signals();
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("dynabuf run: cannot wait for {}: {e}", Path::new(app).display());
                return ExitCode::from(2);
            }
        }
    };
    CHILD.store(0, Ordering::Relaxed);

    let disabled =
        dynabuf::settings::resolve(|k| std::env::var(k).ok(), &Default::default(), &[]).settings.disabled;
    summary::print(&stats_file, args.stats, disabled);
    if let Some(to) = user_stats_file {
        append_stats(&stats_file, Path::new(&to));
    }
    if let Some(how) = describe_signal(status) {
        eprintln!("dynabuf run: {} {how}", Path::new(app).display());
    }
    drop(dir);
    ExitCode::from(exit_code(status))
}

/// Appends the run's statistics documents to the user's own
/// `DYNABUF_STATS_FILE` (JSON lines: never truncated, as the layer never
/// truncates it). Nothing to append when the application made no device.
fn append_stats(from: &Path, to: &Path) {
    let Ok(text) = std::fs::read(from) else { return };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(to)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &text));
    if let Err(e) = appended {
        eprintln!("dynabuf run: cannot append the statistics to {}: {e}", to.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through_and_signals_become_128_plus() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGSEGV)), 128 + 11);
        assert_eq!(
            describe_signal(ExitStatus::from_raw(libc::SIGKILL)).unwrap(),
            "killed by signal 9 (SIGKILL)"
        );
        assert!(describe_signal(ExitStatus::from_raw(1 << 8)).is_none());
    }

    #[test]
    fn a_private_dir_is_0700_and_gone_after_drop() {
        use std::os::unix::fs::PermissionsExt;
        let dir = PrivateDir::new().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        drop(dir);
        assert!(!path.exists());
    }
}
