//! DRM syncobjs on a node (drm-rs), for the kernel tier's syncobj tests.
//! The layer itself does not use them yet. Raw ioctls only where drm-rs is
//! wrong or lacks one: importing a sync_file into an *existing* syncobj
//! (drm-rs's `fd_to_syncobj(.., true)` sends handle 0, which the kernel
//! rejects, and unwraps the returned handle).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use drm::control::Device as _;
use dynabuf::sys::drm::Node;

use super::{Op, SysError, SysResult};

pub use drm::control::syncobj::Handle as Syncobj;

/// Syncobj operations on a DRM node.
pub trait Syncobjs {
    fn syncobj_create(&self, signalled: bool) -> SysResult<Syncobj>;
    fn syncobj_destroy(&self, s: Syncobj) -> SysResult<()>;
    /// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` with `IMPORT_SYNC_FILE`: replaces
    /// the syncobj's fence with the sync_file's. The fd is not consumed.
    fn syncobj_import_sync_file(&self, s: Syncobj, sync_file: BorrowedFd<'_>) -> SysResult<()>;
    /// `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` with `EXPORT_SYNC_FILE`.
    fn syncobj_export_sync_file(&self, s: Syncobj) -> SysResult<OwnedFd>;
    /// Waits up to `timeout` for all of `objs` to signal. `Ok(false)` on
    /// time-out (ETIME).
    fn syncobj_wait_all(&self, objs: &[Syncobj], timeout: Duration) -> SysResult<bool>;
    /// Waits up to `timeout` for timeline `points` (for each of `objs`).
    fn syncobj_timeline_wait_all(
        &self,
        objs: &[Syncobj],
        points: &[u64],
        timeout: Duration,
    ) -> SysResult<bool>;
    /// `DRM_IOCTL_SYNCOBJ_TRANSFER`: `src` at `src_point` (0: its binary
    /// fence) becomes `dst`'s point `dst_point`.
    fn syncobj_transfer(&self, src: Syncobj, src_point: u64, dst: Syncobj, dst_point: u64) -> SysResult<()>;
    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`.
    fn syncobj_signal_point(&self, s: Syncobj, point: u64) -> SysResult<()>;
    /// `DRM_IOCTL_SYNCOBJ_SIGNAL` (binary).
    fn syncobj_signal_now(&self, s: Syncobj) -> SysResult<()>;
    /// `DRM_IOCTL_SYNCOBJ_QUERY`: the last signalled timeline point.
    fn syncobj_query(&self, s: Syncobj) -> SysResult<u64>;
    /// `DRM_IOCTL_SYNCOBJ_EVENTFD` (Linux 6.6+): `eventfd` becomes readable
    /// when `point` signals.
    fn syncobj_eventfd_register(&self, s: Syncobj, point: u64, eventfd: BorrowedFd<'_>) -> SysResult<()>;
}

/// CLOCK_MONOTONIC now, in ns: DRM syncobj waits take absolute deadlines.
fn monotonic_now_ns() -> i64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec, a valid local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

fn deadline(timeout: Duration) -> i64 {
    monotonic_now_ns().saturating_add(timeout.as_nanos().min(i64::MAX as u128) as i64)
}

#[repr(C)]
struct SyncobjHandleArg {
    handle: u32,
    flags: u32,
    fd: i32,
    pad: u32,
}

const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;
nix::ioctl_readwrite!(ioctl_syncobj_fd_to_handle, b'd', 0xC2, SyncobjHandleArg);

impl Syncobjs for Node {
    fn syncobj_create(&self, signalled: bool) -> SysResult<Syncobj> {
        self.create_syncobj(signalled).op("DRM_IOCTL_SYNCOBJ_CREATE")
    }

    fn syncobj_destroy(&self, s: Syncobj) -> SysResult<()> {
        self.destroy_syncobj(s).op("DRM_IOCTL_SYNCOBJ_DESTROY")
    }

    fn syncobj_import_sync_file(&self, s: Syncobj, sync_file: BorrowedFd<'_>) -> SysResult<()> {
        let mut arg = SyncobjHandleArg {
            handle: u32::from(s),
            flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: sync_file.as_raw_fd(),
            pad: 0,
        };
        // SAFETY: `arg` is the kernel's `struct drm_syncobj_handle` (its
        // first 16 bytes, which every kernel accepts), alive for the call.
        unsafe { ioctl_syncobj_fd_to_handle(self.as_fd().as_raw_fd(), &mut arg) }
            .op("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(IMPORT_SYNC_FILE)")?;
        Ok(())
    }

    fn syncobj_export_sync_file(&self, s: Syncobj) -> SysResult<OwnedFd> {
        self.syncobj_to_fd(s, true).op("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD(EXPORT_SYNC_FILE)")
    }

    fn syncobj_wait_all(&self, objs: &[Syncobj], timeout: Duration) -> SysResult<bool> {
        match self.syncobj_wait(objs, deadline(timeout), true, false) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) => Err(SysError::io("DRM_IOCTL_SYNCOBJ_WAIT", e)),
        }
    }

    fn syncobj_timeline_wait_all(
        &self,
        objs: &[Syncobj],
        points: &[u64],
        timeout: Duration,
    ) -> SysResult<bool> {
        match self.syncobj_timeline_wait(objs, points, deadline(timeout), true, false, false) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) => Err(SysError::io("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", e)),
        }
    }

    fn syncobj_transfer(&self, src: Syncobj, src_point: u64, dst: Syncobj, dst_point: u64) -> SysResult<()> {
        self.syncobj_timeline_transfer(src, dst, src_point, dst_point).op("DRM_IOCTL_SYNCOBJ_TRANSFER")
    }

    fn syncobj_signal_point(&self, s: Syncobj, point: u64) -> SysResult<()> {
        self.syncobj_timeline_signal(&[s], &[point]).op("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL")
    }

    fn syncobj_signal_now(&self, s: Syncobj) -> SysResult<()> {
        self.syncobj_signal(&[s]).op("DRM_IOCTL_SYNCOBJ_SIGNAL")
    }

    fn syncobj_query(&self, s: Syncobj) -> SysResult<u64> {
        let mut points = [0u64];
        self.syncobj_timeline_query(&[s], &mut points, false).op("DRM_IOCTL_SYNCOBJ_QUERY")?;
        Ok(points[0])
    }

    fn syncobj_eventfd_register(&self, s: Syncobj, point: u64, eventfd: BorrowedFd<'_>) -> SysResult<()> {
        self.syncobj_eventfd(s, point, eventfd, false).op("DRM_IOCTL_SYNCOBJ_EVENTFD")
    }
}
