//! DRM nodes through drm-rs: finding the node of a device, driver name and
//! capabilities, PRIME and GEM.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use drm::control::Device as _;
use drm::Device as _;

use super::{Op, SysError, SysResult};

pub use drm::buffer::Handle as GemHandle;

/// An open DRM node (card or render).
#[derive(Debug)]
pub struct Node {
    file: File,
    path: PathBuf,
}

impl AsFd for Node {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl drm::Device for Node {}
impl drm::control::Device for Node {}

fn dri_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    // Render nodes first: they need no DRM master and allow what we do.
    nodes.sort_by_key(|p| (!p.to_string_lossy().contains("renderD"), p.clone()));
    nodes.retain(|p| {
        p.file_name().is_some_and(|n| {
            n.to_string_lossy().starts_with("renderD") || n.to_string_lossy().starts_with("card")
        })
    });
    nodes
}

impl Node {
    /// Opens a node by path.
    pub fn open(path: &Path) -> SysResult<Node> {
        let file = File::options().read(true).write(true).open(path).op("open DRM node")?;
        Ok(Node { file, path: path.to_path_buf() })
    }

    /// The node with device number (`major`, `minor`), as
    /// `VkPhysicalDeviceDrmPropertiesEXT` gives them.
    pub fn open_devnum(major: u64, minor: u64) -> SysResult<Node> {
        let want = nix::sys::stat::makedev(major, minor);
        let path = dri_nodes()
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.rdev() == want))
            .ok_or(SysError::new("find DRM node by device number", nix::errno::Errno::ENOENT))?;
        Node::open(&path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's device as the kernel's `dev_name()` prints it (the
    /// basename of `/sys/dev/char/MAJOR:MINOR/device`, e.g. `0000:00:02.0`).
    pub fn device_name(&self) -> Option<String> {
        let rdev = self.file.metadata().ok()?.rdev();
        let link =
            format!("/sys/dev/char/{}:{}/device", nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let target = std::fs::read_link(link).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// `DRM_IOCTL_VERSION`'s driver name.
    pub fn driver_name(&self) -> SysResult<String> {
        let d = self.get_driver().op("DRM_IOCTL_VERSION")?;
        Ok(d.name().to_string_lossy().into_owned())
    }

    fn cap(&self, cap: drm::DriverCapability) -> bool {
        self.get_driver_capability(cap).is_ok_and(|v| v != 0)
    }

    /// `DRM_CAP_SYNCOBJ`.
    pub fn has_syncobj(&self) -> bool {
        self.cap(drm::DriverCapability::SyncObj)
    }

    /// `DRM_CAP_SYNCOBJ_TIMELINE`.
    pub fn has_timeline_syncobj(&self) -> bool {
        self.cap(drm::DriverCapability::TimelineSyncObj)
    }

    /// `DRM_IOCTL_PRIME_FD_TO_HANDLE`: the GEM handle of a dma-buf on this
    /// node (the same handle for the same buffer; close it once per call
    /// with [`Node::gem_close`]).
    pub fn prime_fd_to_handle(&self, dmabuf: BorrowedFd<'_>) -> SysResult<GemHandle> {
        self.prime_fd_to_buffer(dmabuf).op("DRM_IOCTL_PRIME_FD_TO_HANDLE")
    }

    /// `DRM_IOCTL_PRIME_HANDLE_TO_FD`, close-on-exec and read-write.
    pub fn prime_handle_to_fd(&self, handle: GemHandle) -> SysResult<OwnedFd> {
        const FLAGS: u32 = (libc::O_CLOEXEC | libc::O_RDWR) as u32;
        self.buffer_to_prime_fd(handle, FLAGS).op("DRM_IOCTL_PRIME_HANDLE_TO_FD")
    }

    /// `DRM_IOCTL_GEM_CLOSE`.
    pub fn gem_close(&self, handle: GemHandle) -> SysResult<()> {
        self.close_buffer(handle).op("DRM_IOCTL_GEM_CLOSE")
    }
}
