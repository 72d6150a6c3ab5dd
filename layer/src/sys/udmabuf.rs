//! udmabuf: a dma-buf made from a sealed memfd (`/dev/udmabuf`), the way to
//! get a real dma-buf without a GPU. The layer makes one only in its re-map
//! probe at `vkCreateDevice` (`hooks::remap_probe`); the `dynabuf` command
//! (`doctor`) and the tests and demo make them too.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::{Op, SysResult};

/// Where udmabuf lives.
pub const DEVICE: &str = "/dev/udmabuf";

/// Whether this kernel can make udmabufs here.
pub fn available() -> bool {
    std::fs::File::options().read(true).write(true).open(DEVICE).is_ok()
}

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
/// memfd. The memfd is returned too: it maps the same pages.
pub fn create(size: u64) -> SysResult<(OwnedFd, OwnedFd)> {
    let memfd = memfd_create(c"dynabuf-udmabuf", MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC)
        .op("memfd_create")?;
    nix::unistd::ftruncate(&memfd, size as i64).op("ftruncate")?;
    // udmabuf needs F_SEAL_SHRINK and refuses F_SEAL_WRITE.
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).op("fcntl(F_ADD_SEALS)")?;
    let dev = std::fs::File::options().read(true).write(true).open(DEVICE).op("open /dev/udmabuf")?;
    let arg = Create { memfd: memfd.as_raw_fd() as u32, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0, size };
    // SAFETY: `arg` is the kernel's `struct udmabuf_create`, read only.
    let fd = unsafe { ioctl_create(dev.as_fd().as_raw_fd(), &arg) }.op("UDMABUF_CREATE")?;
    // SAFETY: on success the ioctl returns a new dma-buf fd that we own.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, memfd))
}
