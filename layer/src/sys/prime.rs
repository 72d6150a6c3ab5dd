//! Whose buffer is it? PRIME-importing a dma-buf into a device's DRM node
//! tells whether the device can reach it at all; the kernel then either
//! hands back the device's own GEM object (a *self-import*: the buffer is
//! the device's) or attaches the device to another exporter's buffer. The
//! exporter's name (fdinfo `exp_name`) names the driver for exporters with
//! their own name (`udmabuf`, `i915`, `virtio_gpu`, …) but is `drm` for
//! every driver using the GEM PRIME helpers; for those the attachment list
//! of debugfs (`dma_buf/bufinfo`) says whether the import attached the
//! device, where it can be read.

use std::os::fd::BorrowedFd;

use super::dma_buf_debugfs;
use super::drm::Node;

/// The exporter name of the GEM PRIME helpers, shared by many drivers.
const GEM_PRIME_HELPERS: &str = "drm";

/// Whether a dma-buf is a device's own buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    /// The device's own buffer: evicting its attachment would gain nothing.
    Local(&'static str),
    /// Another device's (or a non-GPU exporter's).
    Foreign(&'static str),
    /// The kernel did not say (the exporter uses the GEM PRIME helpers and
    /// debugfs cannot be read).
    Unknown,
}

impl Whose {
    pub fn is_local(self) -> bool {
        matches!(self, Whose::Local(_))
    }
}

/// Decides from what the kernel said. `imported`: the PRIME import into
/// the node succeeded. `attached`: the devices debugfs lists as attached to
/// the buffer after that import (`None`: unreadable). `node_device`: the
/// node's device as `dev_name()` prints it.
pub fn decide(
    imported: bool,
    exporter: &str,
    node_driver: &str,
    attached: Option<&[String]>,
    node_device: Option<&str>,
) -> Whose {
    if !imported {
        return Whose::Foreign("the device cannot import it");
    }
    let attached_here = match (attached, node_device) {
        (Some(list), Some(dev)) => Some(list.iter().any(|a| a == dev)),
        _ => None,
    };
    match attached_here {
        Some(true) => Whose::Foreign("the kernel attached the device to it as an importer"),
        Some(false) if exporter == GEM_PRIME_HELPERS || exporter == node_driver => {
            Whose::Local("a self-import: the device's own GEM object, no attachment")
        }
        Some(false) => Whose::Foreign("exported by another driver"),
        // Another device of the same driver exports under the same name:
        // only the kernel's list could tell.
        None if exporter == GEM_PRIME_HELPERS || exporter == node_driver => Whose::Unknown,
        None => Whose::Foreign("exported by another driver"),
    }
}

/// PRIME-imports `dmabuf` (whose fdinfo exporter is `exporter`) into a
/// DRM file of its own on the node at `path`, reads the kernel's verdict,
/// and closes the file (which drops the handle and any attachment). A file
/// per question: the node gives one handle per buffer per file, so two
/// threads asking about one buffer through a shared file would close each
/// other's handle between import and verdict.
pub fn whose(path: &std::path::Path, dmabuf: BorrowedFd<'_>, exporter: &str, ino: u64) -> Whose {
    let Ok(node) = Node::open(path) else { return Whose::Unknown };
    let imported = node.prime_fd_to_handle(dmabuf).is_ok();
    let driver = node.driver_name().unwrap_or_default();
    let attached = imported.then(|| dma_buf_debugfs::read(ino)).flatten().map(|b| b.attached);
    let device = node.device_name();
    decide(imported, exporter, &driver, attached.as_deref(), device.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_kernel_decides_whose_buffer_it_is() {
        // vgem's buffer, imported into vgem: a self-import, no attachment.
        let none = list(&[]);
        assert!(decide(true, "drm", "vgem", Some(&none), Some("vgem")).is_local());
        // Imported into virtio_gpu: the kernel attaches the GPU.
        let gpu = list(&["0000:00:02.0"]);
        assert!(matches!(
            decide(true, "drm", "virtio_gpu", Some(&gpu), Some("0000:00:02.0")),
            Whose::Foreign(_)
        ));
        // Or the import fails: foreign either way.
        assert!(matches!(decide(false, "drm", "virtio_gpu", None, None), Whose::Foreign(_)));
        // A named exporter without debugfs.
        assert!(matches!(decide(true, "udmabuf", "vgem", None, Some("vgem")), Whose::Foreign(_)));
        assert_eq!(decide(true, "i915", "i915", None, None), Whose::Unknown, "maybe another i915 device");
        assert!(decide(true, "i915", "i915", Some(&none), Some("0000:00:02.0")).is_local());
        // The GEM helpers' name without debugfs: the kernel did not say.
        assert_eq!(decide(true, "drm", "vgem", None, Some("vgem")), Whose::Unknown);
        // Another device of the same driver, attached: foreign.
        assert!(matches!(decide(true, "i915", "i915", Some(&gpu), Some("0000:00:02.0")), Whose::Foreign(_)));
    }
}
