//! The stats file (`DYNABUF_STATS_FILE`): JSON lines, one document each.
//! Several devices and processes may share one file: it is opened with
//! `O_APPEND` for each document and each document goes out in one
//! `write(2)`, so documents never interleave. With
//! `DYNABUF_STATS_INTERVAL_MS`, a thread per device appends one more
//! document every interval until the device is destroyed.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::DeviceStats;

/// Appends `line` and a newline to `path` in one `write(2)` (the file is
/// created if missing, mode 0666 less the umask).
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    // One call: a retry of the rest could land after another writer's
    // document. A regular file takes the whole buffer unless the disk is
    // full.
    let written = file.write(&bytes)?;
    if written != bytes.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write ({written} of {} bytes)", bytes.len()),
        ));
    }
    Ok(())
}

/// One device's documents in the stats file: numbers them and reports the
/// first failure only.
#[derive(Debug)]
pub struct StatsFile {
    path: PathBuf,
    device: String,
    sequence: AtomicU64,
    warned: AtomicBool,
}

impl StatsFile {
    pub fn new(path: PathBuf, device: String) -> Self {
        StatsFile { path, device, sequence: AtomicU64::new(0), warned: AtomicBool::new(false) }
    }

    /// Appends the current document of `stats`.
    pub fn write(&self, stats: &DeviceStats, is_final: bool) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let line = stats.document(&self.device, sequence, is_final).to_json_line();
        if let Err(e) = append_line(&self.path, &line) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                log_warn!(
                    "{}: cannot write statistics to {}: {e} (further failures are not logged)",
                    self.device,
                    self.path.display()
                );
            }
        }
    }
}

/// The thread that appends a document every interval.
#[derive(Debug)]
pub struct Periodic {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts the thread; `None` (logged) if it cannot start.
    pub fn start(stats: Arc<DeviceStats>, file: Arc<StatsFile>, interval: Duration) -> Option<Periodic> {
        let (stop, stopped) = channel::<()>();
        let spawned = std::thread::Builder::new().name("dynabuf-stats".into()).spawn(move || {
            // Ends when the sender is dropped (or sends).
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                file.write(&stats, false);
            }
        });
        match spawned {
            Ok(t) => Some(Periodic { stop: Some(stop), thread: Some(t) }),
            Err(e) => {
                log_warn!("cannot start the statistics thread: {e}; only the final document is written");
                None
            }
        }
    }

    /// Stops the thread and waits for it (a document it is writing is
    /// finished first).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A device's stats file and its periodic writer.
#[derive(Debug)]
pub struct StatsOutput {
    file: Arc<StatsFile>,
    periodic: Option<Periodic>,
}

impl StatsOutput {
    /// Starts writing `stats` to `path`: periodically when `interval` is
    /// not zero, and once more at [`StatsOutput::finish`].
    pub fn start(stats: &Arc<DeviceStats>, path: PathBuf, device: &str, interval: Duration) -> StatsOutput {
        let file = Arc::new(StatsFile::new(path, device.to_string()));
        let periodic = (!interval.is_zero()).then(|| Periodic::start(stats.clone(), file.clone(), interval));
        StatsOutput { file, periodic: periodic.flatten() }
    }

    /// Stops the periodic writer and appends the final document.
    pub fn finish(self, stats: &DeviceStats) {
        if let Some(p) = self.periodic {
            p.stop();
        }
        self.file.write(stats, true);
    }
}
