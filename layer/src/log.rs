//! Logging: `dynabuf:`-prefixed lines on stderr or in `DYNABUF_LOG_FILE`,
//! never on stdout. The level check is one relaxed atomic load, so a disabled
//! log line costs nothing measurable on a hot path.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

/// How much the layer logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub(crate) const ALL: [(&'static str, LogLevel); 6] = [
        ("off", LogLevel::Off),
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];

    /// The name users type.
    pub fn name(self) -> &'static str {
        Self::ALL[self as usize].0
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static SINK: OnceLock<Sink> = OnceLock::new();

#[derive(Debug)]
enum Sink {
    Stderr,
    File(Mutex<File>),
}

/// Sets the level (the settings do, when they load and when an
/// application's settings replace them).
pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Sends every later line to `path` (appended) instead of stderr. The
/// destination is chosen once per process: a second call changes nothing
/// and returns `false` (the lines keep going where they went). A file that
/// can't be opened is reported on stderr, and stderr is used.
pub fn to_file(path: &std::path::Path) -> bool {
    if SINK.get().is_some() {
        return false;
    }
    let sink = match File::options().create(true).append(true).open(path) {
        Ok(f) => Sink::File(Mutex::new(f)),
        Err(e) => {
            eprintln!("dynabuf: warning: cannot open log file {}: {e}; logging to stderr", path.display());
            Sink::Stderr
        }
    };
    SINK.set(sink).is_ok()
}

/// Whether lines go to a file chosen with [`to_file`].
pub fn to_a_file() -> bool {
    matches!(SINK.get(), Some(Sink::File(_)))
}

/// Whether a line at `level` would be written.
#[inline(always)]
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line (use the `log_*!` macros instead).
pub fn write(level: LogLevel, args: std::fmt::Arguments<'_>) {
    let line = format!("dynabuf: {}: {args}\n", level.name());
    match SINK.get() {
        Some(Sink::File(f)) => {
            // A poisoned lock only means another thread panicked mid-write;
            // the file is still usable.
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            let _ = f.write_all(line.as_bytes());
        }
        _ => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// `log_at!(LogLevel::Info, "fmt", args...)`
#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! log_error { ($($arg:tt)*) => { $crate::log_at!($crate::log::LogLevel::Error, $($arg)*) }; }
#[macro_export]
macro_rules! log_warn { ($($arg:tt)*) => { $crate::log_at!($crate::log::LogLevel::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! log_info { ($($arg:tt)*) => { $crate::log_at!($crate::log::LogLevel::Info, $($arg)*) }; }
#[macro_export]
macro_rules! log_debug { ($($arg:tt)*) => { $crate::log_at!($crate::log::LogLevel::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! log_trace { ($($arg:tt)*) => { $crate::log_at!($crate::log::LogLevel::Trace, $($arg)*) }; }
