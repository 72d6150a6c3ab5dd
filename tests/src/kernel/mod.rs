//! Kernel helpers only the tests and the demo need, kept out of the
//! shipped layer: [`udmabuf`] (real dma-bufs without a GPU), [`vgem`]
//! (fences a test can attach and signal) and [`syncobj`] (DRM syncobj
//! wrappers for the kernel tier's syncobj tests). Errors are the layer's
//! [`SysError`], naming the ioctl and errno.

pub mod syncobj;
pub mod udmabuf;
pub mod vgem;

pub use dynabuf::sys::{Op, SysError, SysResult};

/// The first DRM node whose driver is `driver` (`vgem`, `virtio_gpu`, …),
/// a card node or a render node. Minor numbers depend on module load
/// order, so never guess them.
pub fn open_driver(driver: &str, card: bool) -> SysResult<dynabuf::sys::drm::Node> {
    let mut nodes: Vec<std::path::PathBuf> = std::fs::read_dir("/dev/dri")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    nodes.sort();
    let prefix = if card { "card" } else { "renderD" };
    for path in nodes {
        if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            continue;
        }
        if let Ok(node) = dynabuf::sys::drm::Node::open(&path) {
            if node.driver_name().is_ok_and(|n| n == driver) {
                return Ok(node);
            }
        }
    }
    Err(SysError::new("find DRM node by driver", nix::errno::Errno::ENOENT))
}
