//! Whose buffer is it (`dynabuf::sys::prime`): the layer PRIME-imports a
//! dma-buf into a device's DRM node and asks the kernel whether the node
//! got its own GEM object back (a self-import: the device's buffer) or was
//! attached to another exporter's. lavapipe has no DRM node, so this tier
//! asks vgem and virtio_gpu directly: a buffer vgem exports is local to
//! vgem and foreign to virtio_gpu; a udmabuf is foreign to both.

use std::os::fd::{AsFd, BorrowedFd};

use dynabuf::sys::dma_buf;
use dynabuf::sys::drm::Node;
use dynabuf::sys::prime::{self, Whose};
use dynabuf_client::kernel::{open_driver, udmabuf};

use crate::ensure;
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

const DEBUGFS: &str = "/sys/kernel/debug";

/// Mounts debugfs where the guest has not (the VM runs as root); the
/// verdict for GEM-helper exports needs its attachment list.
fn debugfs_mounted() -> bool {
    let list = std::path::Path::new(dynabuf::sys::dma_buf_debugfs::BUFINFO);
    if !list.exists() {
        let _ = std::process::Command::new("mount").args(["-t", "debugfs", "debugfs", DEBUGFS]).status();
    }
    list.exists()
}

fn verdict(node: &Node, fd: BorrowedFd<'_>) -> Result<Whose, String> {
    let info = dma_buf::info(fd).check("fdinfo")?.ok_or("not a dma-buf")?;
    let ino = dma_buf::identity(fd).check("fstat")?.ino;
    Ok(prime::whose(node.path(), fd, &info.exporter, ino))
}

/// A dumb buffer vgem exports as a dma-buf (its card node creates dumb
/// buffers; the render node does not).
fn vgem_export(card: &Node) -> Result<std::os::fd::OwnedFd, String> {
    use drm::control::Device as _;
    let dumb = card
        .create_dumb_buffer((64, 64), drm::buffer::DrmFourcc::Xrgb8888, 32)
        .map_err(|e| format!("CREATE_DUMB: {e}"))?;
    let fd = card.prime_handle_to_fd(drm::buffer::Buffer::handle(&dumb)).check("PRIME_HANDLE_TO_FD")?;
    card.destroy_dumb_buffer(dumb).map_err(|e| format!("DESTROY_DUMB: {e}"))?;
    Ok(fd)
}

pub fn a_vgem_buffer_is_local_to_vgem_and_foreign_to_virtio_gpu() -> TestResult {
    require_kernel_tier!();
    ensure!(debugfs_mounted(), "no {} in the VM", dynabuf::sys::dma_buf_debugfs::BUFINFO);
    let vgem_card = open_driver("vgem", true).check("vgem card node")?;
    let vgem_render = open_driver("vgem", false).check("vgem render node")?;
    let gpu = open_driver("virtio_gpu", false).check("virtio_gpu render node")?;
    let exported = vgem_export(&vgem_card)?;
    let exporter = dma_buf::info(exported.as_fd()).check("fdinfo")?.ok_or("not a dma-buf")?.exporter;
    // The GEM helpers' name says nothing of which device: only the kernel's
    // attachment list does.
    ensure!(exporter == "drm", "vgem's exporter name is {exporter:?}");
    let on_vgem = verdict(&vgem_render, exported.as_fd())?;
    ensure!(on_vgem.is_local(), "vgem's own buffer on vgem: {on_vgem:?}");
    let on_gpu = verdict(&gpu, exported.as_fd())?;
    ensure!(matches!(on_gpu, Whose::Foreign(_)), "vgem's buffer on virtio_gpu: {on_gpu:?}");
    // Control: a udmabuf is no device's own buffer, on either node.
    let (u, _memfd) = udmabuf::create(65536).check("udmabuf")?;
    for node in [&vgem_render, &gpu] {
        let w = verdict(node, u.as_fd())?;
        ensure!(matches!(w, Whose::Foreign(_)), "a udmabuf on {}: {w:?}", node.path().display());
    }
    // Control: without the attachment list, a GEM-helper export is unknown,
    // not guessed local.
    ensure!(
        prime::decide(true, &exporter, "vgem", None, vgem_render.device_name().as_deref()) == Whose::Unknown,
        "decided without the kernel's list"
    );
    Ok(Outcome::Pass)
}
