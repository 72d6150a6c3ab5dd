//! Fault injection, a test knob (off by default, read once per process):
//! `DYNABUF_FAULT=<point>[:<count>],...` makes the layer's own call at each
//! named point fail, every time or for the first `count` calls, so tests
//! can reach the paths real drivers and kernels rarely take. Points:
//!
//! | point | what fails | as |
//! | --- | --- | --- |
//! | `reimport` | re-importing an invalidated attachment | `VK_ERROR_OUT_OF_DEVICE_MEMORY` |
//! | `backing` | allocating a dynamic attachment's backing | `VK_ERROR_OUT_OF_DEVICE_MEMORY` |
//! | `sync_fd_export` | `vkGetSemaphoreFdKHR` of a release | `VK_ERROR_TOO_MANY_OBJECTS` |
//! | `export_sync_file` | `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` of an acquire | `ENOMEM` |
//! | `import_sync_file` | `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` of a release | `ENOMEM` |
//!
//! An unknown point is reported once on stderr and ignored.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use ash::vk;

use crate::sys::{Errno, SysError};

/// A place where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Reimport,
    Backing,
    SyncFdExport,
    ExportSyncFile,
    ImportSyncFile,
}

const POINTS: [(&str, Point); 5] = [
    ("reimport", Point::Reimport),
    ("backing", Point::Backing),
    ("sync_fd_export", Point::SyncFdExport),
    ("export_sync_file", Point::ExportSyncFile),
    ("import_sync_file", Point::ImportSyncFile),
];

/// Per point: how many more calls fail (`u64::MAX`: all).
struct Faults([AtomicU64; 5]);

/// Parses the knob's value.
fn parse(value: &str) -> (Faults, Vec<String>) {
    let faults = Faults(Default::default());
    let mut unknown = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, count) = match item.split_once(':') {
            Some((n, c)) => (n.trim(), c.trim().parse::<u64>().ok()),
            None => (item, Some(u64::MAX)),
        };
        match (POINTS.iter().position(|(p, _)| *p == name), count) {
            (Some(i), Some(c)) => faults.0[i].store(c, Ordering::Relaxed),
            _ => unknown.push(item.to_string()),
        }
    }
    (faults, unknown)
}

fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let value = std::env::var("DYNABUF_FAULT").unwrap_or_default();
        let (faults, unknown) = parse(&value);
        if !unknown.is_empty() {
            eprintln!(
                "dynabuf: warn: DYNABUF_FAULT: ignoring {unknown:?}; points are {}",
                POINTS.map(|(n, _)| n).join(", ")
            );
        }
        faults
    })
}

fn fires(faults: &Faults, point: Point) -> bool {
    let i = POINTS.iter().position(|(_, p)| *p == point).unwrap_or(0);
    let left = &faults.0[i];
    let mut now = left.load(Ordering::Relaxed);
    loop {
        if now == 0 {
            return false;
        }
        let next = if now == u64::MAX { now } else { now - 1 };
        match left.compare_exchange_weak(now, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(seen) => now = seen,
        }
    }
}

/// The Vulkan error to return at `point`, when a fault is injected there.
pub fn injected(point: Point) -> Option<vk::Result> {
    fires(faults(), point).then(|| {
        log_warn!("DYNABUF_FAULT: injected a failure at {point:?}");
        match point {
            Point::SyncFdExport => vk::Result::ERROR_TOO_MANY_OBJECTS,
            _ => vk::Result::ERROR_OUT_OF_DEVICE_MEMORY,
        }
    })
}

/// The system error to return at `point`, when a fault is injected there.
pub fn injected_errno(point: Point) -> Option<SysError> {
    fires(faults(), point).then(|| SysError::new("DYNABUF_FAULT", Errno::ENOMEM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fire_always_or_a_number_of_times() {
        let (f, unknown) = parse("reimport, sync_fd_export:2, bogus, backing:x");
        assert_eq!(unknown, vec!["bogus".to_string(), "backing:x".to_string()]);
        assert!((0..5).all(|_| fires(&f, Point::Reimport)));
        assert!(fires(&f, Point::SyncFdExport) && fires(&f, Point::SyncFdExport));
        assert!(!fires(&f, Point::SyncFdExport));
        assert!(!fires(&f, Point::Backing));
    }

    #[test]
    fn nothing_fires_by_default() {
        let (f, unknown) = parse("");
        assert!(unknown.is_empty());
        assert!(POINTS.iter().all(|&(_, p)| !fires(&f, p)));
    }
}
