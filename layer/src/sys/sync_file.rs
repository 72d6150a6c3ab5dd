//! sync_file fds (`linux/sync_file.h`): waiting, merging, status.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Op, SysError, SysResult};

/// Waits up to `timeout` for the fence to signal. `Ok(true)`: signalled;
/// `Ok(false)`: still pending when the time ran out.
pub fn wait(fence: BorrowedFd<'_>, timeout: Duration) -> SysResult<bool> {
    if !timeout.is_zero() {
        crate::lock_order::assert_unlocked("a sync_file wait");
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fence, PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                let events = fds[0].revents().unwrap_or(PollFlags::empty());
                if events.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) {
                    return Err(SysError::new("poll(sync_file)", nix::errno::Errno::EINVAL));
                }
                return Ok(true);
            }
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(e) => return Err(SysError::new("poll(sync_file)", e)),
        }
    }
}

#[repr(C)]
struct MergeData {
    name: [u8; 32],
    fd2: i32,
    fence: i32,
    flags: u32,
    pad: u32,
}

#[repr(C)]
struct FileInfo {
    name: [u8; 32],
    status: i32,
    flags: u32,
    num_fences: u32,
    pad: u32,
    sync_fence_info: u64,
}

const SYNC_IOC_MAGIC: u8 = b'>';
nix::ioctl_readwrite!(ioctl_merge, SYNC_IOC_MAGIC, 3, MergeData);
nix::ioctl_readwrite!(ioctl_file_info, SYNC_IOC_MAGIC, 4, FileInfo);

/// `SYNC_IOC_MERGE`: a new sync_file that signals when both have.
pub fn merge(a: BorrowedFd<'_>, b: BorrowedFd<'_>, name: &str) -> SysResult<OwnedFd> {
    let mut data = MergeData { name: [0; 32], fd2: b.as_raw_fd(), fence: -1, flags: 0, pad: 0 };
    let n = name.len().min(31);
    data.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: `data` is the kernel's `struct sync_merge_data`, alive for the
    // call; the kernel writes only `fence`.
    unsafe { ioctl_merge(a.as_raw_fd(), &mut data) }.op("SYNC_IOC_MERGE")?;
    // SAFETY: on success `data.fence` is a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fence) })
}

/// A sync_file's state (`SYNC_IOC_FILE_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Signalled,
    /// Signalled with an error (the errno the fence carries, negative).
    Error(i32),
}

/// `SYNC_IOC_FILE_INFO`: the fence's status and how many fences it holds.
pub fn status(fence: BorrowedFd<'_>) -> SysResult<(Status, u32)> {
    let mut info = FileInfo { name: [0; 32], status: 0, flags: 0, num_fences: 0, pad: 0, sync_fence_info: 0 };
    // SAFETY: `info` is the kernel's `struct sync_file_info`; with
    // `num_fences` 0 the kernel fills in only the header.
    unsafe { ioctl_file_info(fence.as_raw_fd(), &mut info) }.op("SYNC_IOC_FILE_INFO")?;
    let status = match info.status {
        0 => Status::Active,
        1 => Status::Signalled,
        e => Status::Error(e),
    };
    Ok((status, info.num_fences))
}

/// Waits until at least one of `fences` signals, `wake` becomes readable,
/// or `timeout` passes. Returns, per fence, whether it is done (signalled,
/// or in error: nothing more will come of it).
pub fn wait_any(fences: &[BorrowedFd<'_>], wake: BorrowedFd<'_>, timeout: Duration) -> SysResult<Vec<bool>> {
    let ms =
        PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    let mut fds: Vec<PollFd<'_>> = fences.iter().map(|f| PollFd::new(*f, PollFlags::POLLIN)).collect();
    fds.push(PollFd::new(wake, PollFlags::POLLIN));
    match poll(&mut fds, ms) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(SysError::new("poll(sync_files)", e)),
    }
    Ok(fds[..fences.len()].iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect())
}

/// An eventfd for waking a thread that polls it (POLLIN once woken):
/// unlike a pipe, writing to it never raises SIGPIPE, whoever has closed
/// their copy.
pub fn wake_fd() -> SysResult<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(SysError::new("eventfd", nix::errno::Errno::last()));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wakes the thread polling a [`wake_fd`].
pub fn wake(fd: BorrowedFd<'_>) {
    let _ = nix::unistd::write(fd, &1u64.to_ne_bytes());
}

/// Resets a [`wake_fd`] (or empties a pipe's read end).
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 64];
    while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

/// A non-blocking pipe (read end, write end): test stand-ins for
/// sync_files, which `poll()` reports readable the same way.
#[cfg(test)]
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(SysError::new("pipe2", nix::errno::Errno::last()));
    }
    // SAFETY: pipe2 succeeded: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
