//! DRM nodes through drm-rs: finding the node of a device, driver name and
//! capabilities, PRIME and GEM, and syncobjs. Raw ioctls only where drm-rs
//! is wrong or lacks one: importing a sync_file into an *existing* syncobj
//! (drm-rs's `fd_to_syncobj(.., true)` sends handle 0, which the kernel
//! rejects, and unwraps the returned handle).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drm::control::Device as _;
use drm::Device as _;

use super::{Op, SysError, SysResult};

pub use drm::buffer::Handle as GemHandle;
pub use drm::control::syncobj::Handle as Syncobj;

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

    /// The first node whose driver is `driver` (`vgem`, `virtio_gpu`, …).
    /// Minor numbers depend on module load order, so never guess them.
    pub fn open_driver(driver: &str, card: bool) -> SysResult<Node> {
        for path in dri_nodes() {
            let is_card = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("card"));
            if is_card != card {
                continue;
            }
            if let Ok(node) = Node::open(&path) {
                if node.driver_name().is_ok_and(|n| n == driver) {
                    return Ok(node);
                }
            }
        }
        Err(SysError::new("find DRM node by driver", nix::errno::Errno::ENOENT))
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    pub fn syncobj_create(&self, signalled: bool) -> SysResult<Syncobj> {
        self.create_syncobj(signalled).op("DRM_IOCTL_SYNCOBJ_CREATE")
    }

    pub fn syncobj_destroy(&self, s: Syncobj) -> SysResult<()> {
        self.destroy_syncobj(s).op("DRM_IOCTL_SYNCOBJ_DESTROY")
    }

    /// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` with `IMPORT_SYNC_FILE`: replaces
    /// the syncobj's fence with the sync_file's. The fd is not consumed.
    pub fn syncobj_import_sync_file(&self, s: Syncobj, sync_file: BorrowedFd<'_>) -> SysResult<()> {
        let mut arg = SyncobjHandleArg {
            handle: u32::from(s),
            flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: sync_file.as_raw_fd(),
            pad: 0,
        };
        // SAFETY: `arg` is the kernel's `struct drm_syncobj_handle` (its
        // first 16 bytes, which every kernel accepts), alive for the call.
        unsafe { ioctl_syncobj_fd_to_handle(self.file.as_raw_fd(), &mut arg) }
            .op("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(IMPORT_SYNC_FILE)")?;
        Ok(())
    }

    /// `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` with `EXPORT_SYNC_FILE`.
    pub fn syncobj_export_sync_file(&self, s: Syncobj) -> SysResult<OwnedFd> {
        self.syncobj_to_fd(s, true).op("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD(EXPORT_SYNC_FILE)")
    }

    /// Waits up to `timeout` for all of `objs` to signal. `Ok(false)` on
    /// time-out (ETIME).
    pub fn syncobj_wait_all(&self, objs: &[Syncobj], timeout: Duration) -> SysResult<bool> {
        let deadline = monotonic_now_ns().saturating_add(timeout.as_nanos().min(i64::MAX as u128) as i64);
        match self.syncobj_wait(objs, deadline, true, false) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) => Err(SysError::io("DRM_IOCTL_SYNCOBJ_WAIT", e)),
        }
    }

    /// Waits up to `timeout` for timeline `points` (for each of `objs`).
    pub fn syncobj_timeline_wait_all(
        &self,
        objs: &[Syncobj],
        points: &[u64],
        timeout: Duration,
    ) -> SysResult<bool> {
        let deadline = monotonic_now_ns().saturating_add(timeout.as_nanos().min(i64::MAX as u128) as i64);
        match self.syncobj_timeline_wait(objs, points, deadline, true, false, false) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) => Err(SysError::io("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", e)),
        }
    }

    /// `DRM_IOCTL_SYNCOBJ_TRANSFER`: `src` at `src_point` (0: its binary
    /// fence) becomes `dst`'s point `dst_point`.
    pub fn syncobj_transfer(
        &self,
        src: Syncobj,
        src_point: u64,
        dst: Syncobj,
        dst_point: u64,
    ) -> SysResult<()> {
        self.syncobj_timeline_transfer(src, dst, src_point, dst_point).op("DRM_IOCTL_SYNCOBJ_TRANSFER")
    }

    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`.
    pub fn syncobj_signal_point(&self, s: Syncobj, point: u64) -> SysResult<()> {
        self.syncobj_timeline_signal(&[s], &[point]).op("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL")
    }

    /// `DRM_IOCTL_SYNCOBJ_SIGNAL` (binary).
    pub fn syncobj_signal_now(&self, s: Syncobj) -> SysResult<()> {
        self.syncobj_signal(&[s]).op("DRM_IOCTL_SYNCOBJ_SIGNAL")
    }

    /// `DRM_IOCTL_SYNCOBJ_QUERY`: the last signalled timeline point.
    pub fn syncobj_query(&self, s: Syncobj) -> SysResult<u64> {
        let mut points = [0u64];
        self.syncobj_timeline_query(&[s], &mut points, false).op("DRM_IOCTL_SYNCOBJ_QUERY")?;
        Ok(points[0])
    }

    /// `DRM_IOCTL_SYNCOBJ_EVENTFD` (Linux 6.6+): `eventfd` becomes readable
    /// when `point` signals. Unsupported kernels give an error for which
    /// [`SysError::is_unsupported`] holds (or EINVAL).
    pub fn syncobj_eventfd_register(&self, s: Syncobj, point: u64, eventfd: BorrowedFd<'_>) -> SysResult<()> {
        self.syncobj_eventfd(s, point, eventfd, false).op("DRM_IOCTL_SYNCOBJ_EVENTFD")
    }
}

/// CLOCK_MONOTONIC now, in ns: DRM syncobj waits take absolute deadlines.
fn monotonic_now_ns() -> i64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec, a valid local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
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
