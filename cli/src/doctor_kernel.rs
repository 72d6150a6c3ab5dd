//! The kernel's side of `doctor`: its version, udmabuf, the dma-buf
//! sync-file ioctls tried on a real dma-buf, DRM nodes and debugfs. Every
//! check is a real round trip through the layer's own wrappers
//! (`dynabuf::sys`), never a guess from a version number.

use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use dynabuf::sys::dma_buf::{self, Access};
use dynabuf::sys::drm::Node;
use dynabuf::sys::{dma_buf_debugfs, Errno, SysError};

use crate::doctor::Check;
use dynabuf::sys::udmabuf;

/// `(major, minor)` of a kernel release such as `6.12.9+bpo-amd64`.
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn kernel() -> Check {
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned());
    let Ok(release) = release else {
        return Check::no("kernel", "uname failed", "none: this is not Linux as dynabuf knows it");
    };
    match version(&release) {
        Some(v) if v >= (6, 0) => Check::ok("kernel", format!("Linux {release}")),
        Some(_) => Check::no(
            "kernel",
            format!("Linux {release}: older than 6.0, no DMA_BUF_IOCTL_EXPORT/IMPORT_SYNC_FILE"),
            "Linux 6.0 or later (implicit sync needs the sync-file ioctls)",
        ),
        None => Check::ok("kernel", format!("Linux {release} (version not understood)")),
    }
}

/// A 4 KiB udmabuf and its check line.
fn udmabuf_check() -> (Check, Option<OwnedFd>) {
    const WHAT: &str = "udmabuf";
    if !Path::new(udmabuf::DEVICE).exists() {
        let fix =
            "a kernel with CONFIG_UDMABUF (modprobe udmabuf); without it only a GPU driver makes dma-bufs";
        return (Check::no(WHAT, "/dev/udmabuf absent", fix), None);
    }
    match udmabuf::create(4096) {
        Ok((dmabuf, _memfd)) => {
            let exporter = dma_buf::info(dmabuf.as_fd()).ok().flatten().map(|i| i.exporter);
            let found = format!(
                "/dev/udmabuf made a 4 KiB dma-buf from a memfd (exporter {})",
                exporter.as_deref().unwrap_or("unknown")
            );
            (Check::ok(WHAT, found), Some(dmabuf))
        }
        Err(e) if e.errno == Errno::EACCES || e.errno == Errno::EPERM => (
            Check::no(
                WHAT,
                format!("/dev/udmabuf present but {e}"),
                "access to /dev/udmabuf (root, or a udev rule)",
            ),
            None,
        ),
        Err(e) => (Check::no(WHAT, format!("/dev/udmabuf present but {e}"), "check dmesg"), None),
    }
}

/// What a failed sync-file ioctl means.
fn sync_file_failure(e: &SysError) -> Check {
    let fix = if e.is_unsupported() { "Linux 6.0 or later" } else { "check dmesg" };
    Check::no("sync-file ioctls", format!("{e} on a udmabuf"), fix)
}

/// EXPORT_SYNC_FILE (READ and WRITE) and IMPORT_SYNC_FILE on `dmabuf`.
fn sync_file_check(dmabuf: Option<&OwnedFd>) -> Check {
    let Some(dmabuf) = dmabuf else {
        return Check::no(
            "sync-file ioctls",
            "untried: no dma-buf to try DMA_BUF_IOCTL_EXPORT/IMPORT_SYNC_FILE on",
            "make /dev/udmabuf available (the check needs a dma-buf)",
        );
    };
    let fd = dmabuf.as_fd();
    let exported = dma_buf::export_sync_file(fd, Access::Read)
        .and_then(|_| dma_buf::export_sync_file(fd, Access::Write));
    let fence = match exported {
        Ok(f) => f,
        Err(e) => return sync_file_failure(&e),
    };
    if let Err(e) = dma_buf::import_sync_file(fd, fence.as_fd(), Access::Write) {
        return sync_file_failure(&e);
    }
    Check::ok(
        "sync-file ioctls",
        "DMA_BUF_IOCTL_EXPORT_SYNC_FILE (read, write) and IMPORT_SYNC_FILE work on a udmabuf",
    )
}

fn dri_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> =
        std::fs::read_dir("/dev/dri").map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    nodes.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("card") || n.starts_with("renderD"))
    });
    nodes.sort();
    nodes
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One line per DRM node: driver, device, syncobj caps.
fn drm_checks() -> Vec<Check> {
    let nodes = dri_nodes();
    if nodes.is_empty() {
        return vec![Check::no(
            "DRM nodes",
            "none in /dev/dri",
            "a GPU driver (for the kernel tier's tests: modprobe vgem; qemu: -device virtio-gpu-pci)",
        )];
    }
    nodes
        .iter()
        .map(|path| {
            let what = format!("DRM {}", path.display());
            match Node::open(path) {
                Ok(node) => {
                    let driver = node.driver_name().unwrap_or_else(|e| format!("driver unknown ({e})"));
                    let device = node.device_name().map(|d| format!(" ({d})")).unwrap_or_default();
                    Check::ok(
                        what,
                        format!(
                            "{driver}{device}, DRM_CAP_SYNCOBJ {}, DRM_CAP_SYNCOBJ_TIMELINE {}",
                            yes_no(node.has_syncobj()),
                            yes_no(node.has_timeline_syncobj())
                        ),
                    )
                }
                Err(e) => Check::no(
                    what,
                    format!("cannot open: {e}"),
                    "membership of its group (render, video) or root",
                ),
            }
        })
        .collect()
}

fn debugfs_check() -> Check {
    const WHAT: &str = "debugfs bufinfo";
    match std::fs::read_to_string(dma_buf_debugfs::BUFINFO) {
        Ok(text) => Check::ok(
            WHAT,
            format!("{} readable ({} dma-buf(s) listed)", dma_buf_debugfs::BUFINFO, dma_buf_debugfs::parse(&text).len()),
        ),
        Err(e) if e.kind() == ErrorKind::NotFound && !Path::new("/sys/kernel/debug/dma_buf").exists() => Check::no(
            WHAT,
            format!("{} absent (debugfs not mounted?)", dma_buf_debugfs::BUFINFO),
            "mount -t debugfs none /sys/kernel/debug, as root; ls and the layer then see attached devices",
        ),
        Err(e) => Check::no(
            WHAT,
            format!("{}: {e}", dma_buf_debugfs::BUFINFO),
            "run as root to see attached devices and fences",
        ),
    }
}

/// The kernel's checks, in order.
pub fn checks() -> Vec<Check> {
    let mut out = vec![kernel()];
    let (udmabuf, dmabuf) = udmabuf_check();
    out.push(udmabuf);
    out.push(sync_file_check(dmabuf.as_ref()));
    out.extend(drm_checks());
    out.push(debugfs_check());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_are_read_from_releases() {
        assert_eq!(version("6.12.9+bpo-amd64"), Some((6, 12)));
        assert_eq!(version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(version("6.1"), Some((6, 1)));
        assert_eq!(version("weird"), None);
    }
}
