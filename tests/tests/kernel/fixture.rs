//! What the kernel-tier tests share: a check that the kernel can make
//! dma-bufs and vgem fences, udmabuf buffers imported into vgem, and
//! "is this busy?" questions asked the way a peer would ask them.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use dynabuf::sys::dma_buf::{self, Access};
use dynabuf::sys::drm::GemHandle;
use dynabuf::sys::sync_file;
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::kernel::vgem::Vgem;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::harness::Check;

/// Why this machine can't run the kernel tier, if it can't.
pub fn missing() -> Option<String> {
    if !udmabuf::available() {
        return Some("no /dev/udmabuf: this kernel cannot make dma-bufs (the VM tier runs this test)".into());
    }
    if let Err(e) = Vgem::open() {
        return Some(format!("no vgem device ({e}): the VM tier loads it"));
    }
    None
}

/// Returns `Skip` from the test when the kernel tier is unavailable here.
#[macro_export]
macro_rules! require_kernel_tier {
    () => {
        if let Some(why) = $crate::fixture::missing() {
            return Ok($crate::harness::Outcome::Skip(why));
        }
    };
}

/// A udmabuf dma-buf, imported into vgem so fences can be attached to it.
pub struct Buf {
    pub dmabuf: OwnedFd,
    pub handle: GemHandle,
}

impl Buf {
    pub fn new(vgem: &Vgem, size: u64) -> Result<Buf, String> {
        // The udmabuf holds the memfd's pages itself; the memfd can go.
        let (dmabuf, _memfd) = udmabuf::create(size).check("udmabuf")?;
        let handle = vgem.import(dmabuf.as_fd()).check("vgem PRIME import")?;
        Ok(Buf { dmabuf, handle })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dmabuf.as_fd()
    }

    /// Whether an `EXPORT_SYNC_FILE(access)` fence is still pending.
    pub fn busy_for(&self, access: Access) -> Result<bool, String> {
        let fence = dma_buf::export_sync_file(self.fd(), access).check("EXPORT_SYNC_FILE")?;
        Ok(!sync_file::wait(fence.as_fd(), Duration::ZERO).check("poll sync_file")?)
    }
}

pub fn vgem() -> Result<Vgem, String> {
    Vgem::open().check("open vgem")
}

/// Whether `poll(dmabuf, events)` reports it ready now (dma-buf poll:
/// POLLIN waits for writers, POLLOUT for every fence).
pub fn poll_ready(fd: BorrowedFd<'_>, events: PollFlags) -> Result<bool, String> {
    let mut fds = [PollFd::new(fd, events)];
    let n = poll(&mut fds, PollTimeout::ZERO).check("poll dma-buf")?;
    Ok(n > 0 && fds[0].revents().is_some_and(|r| r.intersects(events)))
}

/// Whether a sync_file has signalled.
pub fn signalled(fence: BorrowedFd<'_>) -> Result<bool, String> {
    sync_file::wait(fence, Duration::ZERO).check("poll sync_file")
}
