//! Every raw kernel interface the layer uses, as documented safe wrappers:
//! dma-buf ([`dma_buf`]), sync_file ([`sync_file`]), DRM through drm-rs
//! ([`drm`]). What only tests need (udmabuf, vgem, syncobjs) lives in the
//! test crate.
//!
//! Errors carry the operation (ioctl or system call) and the errno; they map
//! to a `VkResult` in one place, [`SysError::to_vk`], as DESIGN.md says.

pub mod dma_buf;
pub mod dma_buf_debugfs;
pub mod drm;
pub mod prime;
pub mod sync_file;
pub mod udmabuf;

use ash::vk;
pub use nix::errno::Errno;

/// A failed system call: which one, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysError {
    pub op: &'static str,
    pub errno: Errno,
}

impl SysError {
    pub fn new(op: &'static str, errno: Errno) -> Self {
        SysError { op, errno }
    }

    /// From an `io::Error` (drm-rs reports those).
    pub fn io(op: &'static str, e: std::io::Error) -> Self {
        SysError { op, errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) }
    }

    /// Whether the kernel lacks the interface (rather than refusing this use).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.errno, Errno::ENOTTY | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::ENODEV)
    }

    /// The `VkResult` this error stands for at the Vulkan boundary.
    pub fn to_vk(&self) -> vk::Result {
        match self.errno {
            Errno::ENOTTY | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EBADF => {
                vk::Result::ERROR_FEATURE_NOT_PRESENT
            }
            Errno::ETIME | Errno::ETIMEDOUT => vk::Result::TIMEOUT,
            Errno::ENOMEM => vk::Result::ERROR_OUT_OF_HOST_MEMORY,
            Errno::EMFILE | Errno::ENFILE => vk::Result::ERROR_TOO_MANY_OBJECTS,
            _ => vk::Result::ERROR_UNKNOWN,
        }
    }
}

impl std::fmt::Display for SysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({:?})", self.op, self.errno.desc(), self.errno)
    }
}

impl std::error::Error for SysError {}

pub type SysResult<T> = Result<T, SysError>;

/// `fcntl(fd, F_DUPFD_CLOEXEC)`: a new close-on-exec fd for the same file.
/// Takes a raw number because the layer is handed raw fds by Vulkan calls
/// (an import's fd, an export's result); a closed number gives EBADF.
pub fn dup_raw(fd: std::os::fd::RawFd) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only reads the fd table; on any integer it
    // either fails (EBADF) or returns a new descriptor.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(SysError::new("fcntl(F_DUPFD_CLOEXEC)", Errno::last()));
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}

/// Turns `nix`'s and std's results into ours, naming the operation (the
/// test crate's kernel helpers use it too).
pub trait Op<T> {
    fn op(self, op: &'static str) -> SysResult<T>;
}

impl<T> Op<T> for nix::Result<T> {
    fn op(self, op: &'static str) -> SysResult<T> {
        self.map_err(|e| SysError::new(op, e))
    }
}

impl<T> Op<T> for std::io::Result<T> {
    fn op(self, op: &'static str) -> SysResult<T> {
        self.map_err(|e| SysError::io(op, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_vk_as_designed() {
        let e = |errno| SysError::new("X", errno).to_vk();
        assert_eq!(e(Errno::ENOTTY), vk::Result::ERROR_FEATURE_NOT_PRESENT);
        assert_eq!(e(Errno::ENOSYS), vk::Result::ERROR_FEATURE_NOT_PRESENT);
        assert_eq!(e(Errno::EBADF), vk::Result::ERROR_FEATURE_NOT_PRESENT);
        assert_eq!(e(Errno::ETIME), vk::Result::TIMEOUT);
        assert_eq!(e(Errno::EINVAL), vk::Result::ERROR_UNKNOWN);
        let text = SysError::new("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", Errno::ENOTTY).to_string();
        assert!(text.starts_with("DMA_BUF_IOCTL_EXPORT_SYNC_FILE: ") && text.ends_with("(ENOTTY)"), "{text}");
    }
}
