//! DRM syncobj round trips on virtio_gpu (qemu's `virtio-gpu-pci`), with a
//! vgem fence as the foreign sync_file.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use dynabuf::sys::dma_buf::{self, Access};
use dynabuf::sys::drm::Node;
use dynabuf_client::kernel::open_driver;
use dynabuf_client::kernel::syncobj::Syncobjs;
use nix::poll::PollFlags;

use crate::ensure;
use crate::fixture::{poll_ready, signalled, vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

fn virtio_gpu() -> Result<Option<Node>, String> {
    match open_driver("virtio_gpu", false) {
        Ok(n) => Ok(Some(n)),
        Err(_) => Ok(None),
    }
}

pub fn syncobj_round_trips_on_virtio_gpu() -> TestResult {
    require_kernel_tier!();
    let Some(gpu) = virtio_gpu()? else {
        return Ok(Outcome::Skip("no virtio_gpu render node (qemu -device virtio-gpu-pci)".into()));
    };
    ensure!(gpu.has_syncobj() && gpu.has_timeline_syncobj(), "virtio_gpu should have (timeline) syncobjs");
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, 4096)?;
    let fence = vgem.attach(buf.handle, true).check("attach")?;
    let file = dma_buf::export_sync_file(buf.fd(), Access::Write).check("EXPORT_SYNC_FILE")?;

    let binary = gpu.syncobj_create(false).check("create")?;
    gpu.syncobj_import_sync_file(binary, file.as_fd()).check("import sync_file")?;
    let early = gpu.syncobj_wait_all(&[binary], Duration::from_millis(50)).check("wait")?;
    let exported_early = gpu.syncobj_export_sync_file(binary).check("export sync_file")?;
    let exported_was_pending = !signalled(exported_early.as_fd())?;
    vgem.signal(fence).check("signal")?;
    ensure!(!early, "the syncobj signalled before its fence (ETIME expected)");
    ensure!(exported_was_pending, "its exported sync_file signalled before the fence");
    ensure!(gpu.syncobj_wait_all(&[binary], Duration::from_secs(2)).check("wait")?, "never signalled");
    ensure!(signalled(exported_early.as_fd())?, "exported sync_file did not follow");

    let timeline = gpu.syncobj_create(false).check("create timeline")?;
    gpu.syncobj_transfer(binary, 0, timeline, 5).check("transfer to point 5")?;
    ensure!(
        gpu.syncobj_timeline_wait_all(&[timeline], &[5], Duration::from_secs(2)).check("timeline wait")?,
        "point 5"
    );
    ensure!(gpu.syncobj_query(timeline).check("query")? >= 5, "query after point 5");

    // An eventfd that becomes readable when point 9 signals.
    // SAFETY: eventfd returns a new fd (or -1, checked) that we own.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    ensure!(efd >= 0, "eventfd failed");
    // SAFETY: a fresh fd from eventfd, owned here.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    gpu.syncobj_eventfd_register(timeline, 9, efd.as_fd()).check("SYNCOBJ_EVENTFD")?;
    let before = poll_ready(efd.as_fd(), PollFlags::POLLIN)?;
    gpu.syncobj_signal_point(timeline, 9).check("signal point 9")?;
    let mut after = false;
    for _ in 0..200 {
        after = poll_ready(efd.as_fd(), PollFlags::POLLIN)?;
        if after {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ensure!(!before && after, "eventfd readable before {before}, after {after}");
    ensure!(gpu.syncobj_query(timeline).check("query")? == 9, "query after signalling point 9");

    gpu.syncobj_signal_now(binary).check("signal binary")?;
    gpu.syncobj_destroy(binary).check("destroy")?;
    gpu.syncobj_destroy(timeline).check("destroy")?;
    ensure!(gpu.syncobj_destroy(binary).is_err(), "destroying twice must fail");
    Ok(Outcome::Pass)
}

pub fn drm_nodes_are_found_by_driver_name() -> TestResult {
    require_kernel_tier!();
    let vgem_card = open_driver("vgem", true).check("vgem card")?;
    ensure!(vgem_card.driver_name().check("VERSION")? == "vgem", "driver name");
    ensure!(!vgem_card.has_syncobj(), "vgem has no syncobjs");
    let meta = std::fs::metadata(vgem_card.path()).check("stat")?;
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let again = Node::open_devnum(major, minor).check("open by device number")?;
    ensure!(again.path() == vgem_card.path(), "{} vs {}", again.path().display(), vgem_card.path().display());
    ensure!(open_driver("no-such-driver", false).is_err(), "found a driver that isn't there");
    Ok(Outcome::Pass)
}
