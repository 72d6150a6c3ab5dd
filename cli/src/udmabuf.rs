//! udmabuf: a dma-buf made from a sealed memfd (`/dev/udmabuf`), so that
//! `doctor` can try the dma-buf ioctls on a real buffer without a GPU. The
//! same ioctl as the test crate's `kernel::udmabuf` (the layer itself never
//! makes dma-bufs).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use dynabuf::sys::{Op, SysResult};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

/// Where udmabuf lives.
pub const DEVICE: &str = "/dev/udmabuf";

#[repr(C)]
struct Create {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

const UDMABUF_FLAGS_CLOEXEC: u32 = 1;
nix::ioctl_write_ptr!(ioctl_create, b'u', 0x42, Create);

/// A dma-buf of `size` bytes (a multiple of the page size) backed by a new
/// memfd, which is returned too.
pub fn create(size: u64) -> SysResult<(OwnedFd, OwnedFd)> {
    let memfd = memfd_create(c"dynabuf-doctor", MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC)
        .op("memfd_create")?;
    nix::unistd::ftruncate(&memfd, size as i64).op("ftruncate")?;
    // udmabuf needs F_SEAL_SHRINK and refuses F_SEAL_WRITE.
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).op("fcntl(F_ADD_SEALS)")?;
    let dev = std::fs::File::options().read(true).write(true).open(DEVICE).op("open /dev/udmabuf")?;
    let arg = Create { memfd: memfd.as_raw_fd() as u32, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0, size };
    // SAFETY: `arg` is the kernel's `struct udmabuf_create`, which the
    // ioctl only reads.
    let fd = unsafe { ioctl_create(dev.as_fd().as_raw_fd(), &arg) }.op("UDMABUF_CREATE")?;
    // SAFETY: on success the ioctl returns a new dma-buf fd that nothing
    // else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, memfd))
}
