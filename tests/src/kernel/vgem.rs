//! vgem fences: a fence a test can attach to any dma-buf and signal when it
//! chooses — the controllable foreign fence (this kernel has no sw_sync).
//! vgem signals a fence itself after 10 s; keep attach→signal short.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{Op, SysResult};
use dynabuf::sys::drm::{GemHandle, Node};

#[repr(C)]
struct FenceAttach {
    handle: u32,
    flags: u32,
    out_fence: u32,
    pad: u32,
}

#[repr(C)]
struct FenceSignal {
    fence: u32,
    flags: u32,
}

const VGEM_FENCE_WRITE: u32 = 1;
// DRM_COMMAND_BASE (0x40) + 1 and + 2.
nix::ioctl_readwrite!(ioctl_fence_attach, b'd', 0x41, FenceAttach);
nix::ioctl_write_ptr!(ioctl_fence_signal, b'd', 0x42, FenceSignal);

/// A vgem device.
#[derive(Debug)]
pub struct Vgem {
    node: Node,
}

/// A fence attached to a buffer, to be signalled with [`Vgem::signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence(u32);

impl Vgem {
    /// Opens vgem's card node (found by driver name).
    pub fn open() -> SysResult<Vgem> {
        Ok(Vgem { node: super::open_driver("vgem", true)? })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Imports a dma-buf (PRIME); close the handle with [`Vgem::close`].
    pub fn import(&self, dmabuf: BorrowedFd<'_>) -> SysResult<GemHandle> {
        self.node.prime_fd_to_handle(dmabuf)
    }

    pub fn close(&self, handle: GemHandle) -> SysResult<()> {
        self.node.gem_close(handle)
    }

    /// `DRM_IOCTL_VGEM_FENCE_ATTACH`: an unsignalled read (or write) fence
    /// on the buffer's reservation.
    pub fn attach(&self, handle: GemHandle, write: bool) -> SysResult<Fence> {
        let mut arg = FenceAttach {
            handle: u32::from(handle),
            flags: if write { VGEM_FENCE_WRITE } else { 0 },
            out_fence: 0,
            pad: 0,
        };
        // SAFETY: `arg` is the kernel's `struct drm_vgem_fence_attach`,
        // alive for the call; the kernel writes `out_fence`.
        unsafe { ioctl_fence_attach(self.node.as_fd().as_raw_fd(), &mut arg) }
            .op("DRM_IOCTL_VGEM_FENCE_ATTACH")?;
        Ok(Fence(arg.out_fence))
    }

    /// `DRM_IOCTL_VGEM_FENCE_SIGNAL`. ETIMEDOUT when vgem already signalled
    /// it on its own (10 s).
    pub fn signal(&self, fence: Fence) -> SysResult<()> {
        let arg = FenceSignal { fence: fence.0, flags: 0 };
        // SAFETY: `arg` is the kernel's `struct drm_vgem_fence_signal`, read only.
        unsafe { ioctl_fence_signal(self.node.as_fd().as_raw_fd(), &arg) }
            .op("DRM_IOCTL_VGEM_FENCE_SIGNAL")?;
        Ok(())
    }
}
