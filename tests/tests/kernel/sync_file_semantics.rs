//! The semantics of igt's `tests/dmabuf_sync_file.c`, with vgem fences as
//! the foreign fence: which fences a sync-file export collects, what an
//! import makes the buffer busy for, merging, and bounded waits.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use dynabuf::sys::dma_buf::{self, Access};
use dynabuf::sys::sync_file::{self, Status};
use nix::poll::PollFlags;

use crate::ensure;
use crate::fixture::{poll_ready, signalled, vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

const SIZE: u64 = 64 * 1024;

pub fn udmabuf_is_a_dma_buf_with_identity_size_and_name() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let b = Buf::new(&vgem, SIZE)?;
    let info = dma_buf::info(a.fd()).check("fdinfo")?.ok_or("fdinfo says it is not a dma-buf")?;
    ensure!(info.size == SIZE && info.exporter == "udmabuf", "fdinfo: {info:?}");
    dma_buf::set_name(a.fd(), "dynabuf-test").check("DMA_BUF_SET_NAME")?;
    let named = dma_buf::info(a.fd()).check("fdinfo")?.ok_or("not a dma-buf")?;
    ensure!(named.name.as_deref() == Some("dynabuf-test"), "name: {named:?}");
    let dup = a.dmabuf.try_clone().check("dup")?;
    let id = |fd| dma_buf::identity(fd).check("fstat");
    ensure!(id(a.fd())? == id(dup.as_fd())?, "a dup is the same buffer");
    ensure!(id(a.fd())? != id(b.fd())?, "two udmabufs are two buffers");
    let null = std::fs::File::open("/dev/null").check("/dev/null")?;
    ensure!(dma_buf::info(null.as_fd()).check("fdinfo")?.is_none(), "/dev/null is no dma-buf");
    Ok(Outcome::Pass)
}

pub fn an_idle_buffer_exports_signalled_fences() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    for access in [Access::Read, Access::Write, Access::ReadWrite] {
        let fence = dma_buf::export_sync_file(a.fd(), access).check("EXPORT_SYNC_FILE")?;
        ensure!(signalled(fence.as_fd())?, "{access:?} export of an idle buffer is pending");
        let (status, _) = sync_file::status(fence.as_fd()).check("SYNC_IOC_FILE_INFO")?;
        ensure!(status == Status::Signalled, "status {status:?}");
    }
    Ok(Outcome::Pass)
}

pub fn export_read_waits_only_for_writers() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let fence = vgem.attach(a.handle, false).check("attach read fence")?;
    let readers_wait = a.busy_for(Access::Read)?;
    let write_export = dma_buf::export_sync_file(a.fd(), Access::Write).check("EXPORT_SYNC_FILE(WRITE)")?;
    let writers_wait = !signalled(write_export.as_fd())?;
    let (pollin, pollout) = (poll_ready(a.fd(), PollFlags::POLLIN)?, poll_ready(a.fd(), PollFlags::POLLOUT)?);
    vgem.signal(fence).check("signal")?;
    ensure!(!readers_wait, "a read fence must not block an EXPORT_SYNC_FILE(READ)");
    ensure!(writers_wait, "a read fence must block an EXPORT_SYNC_FILE(WRITE)");
    ensure!(pollin && !pollout, "dma-buf poll with a read fence: POLLIN {pollin}, POLLOUT {pollout}");
    ensure!(
        sync_file::wait(write_export.as_fd(), Duration::from_secs(2)).check("wait")?,
        "export never signalled"
    );
    ensure!(!a.busy_for(Access::Write)?, "idle after signal");
    Ok(Outcome::Pass)
}

pub fn export_write_waits_for_writers_and_readers() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let fence = vgem.attach(a.handle, true).check("attach write fence")?;
    let read_export = dma_buf::export_sync_file(a.fd(), Access::Read).check("EXPORT_SYNC_FILE(READ)")?;
    let (read_busy, write_busy) = (!signalled(read_export.as_fd())?, a.busy_for(Access::Write)?);
    let pollin = poll_ready(a.fd(), PollFlags::POLLIN)?;
    vgem.signal(fence).check("signal")?;
    ensure!(read_busy && write_busy, "a write fence blocks both (read {read_busy}, write {write_busy})");
    ensure!(!pollin, "dma-buf POLLIN must wait for a writer");
    ensure!(
        sync_file::wait(read_export.as_fd(), Duration::from_secs(2)).check("wait")?,
        "export never signalled"
    );
    Ok(Outcome::Pass)
}

/// A pending sync_file from a vgem write fence on a second buffer.
fn pending_sync_file(
    vgem: &dynabuf_client::kernel::vgem::Vgem,
) -> Result<(Buf, dynabuf_client::kernel::vgem::Fence, std::os::fd::OwnedFd), String> {
    let src = Buf::new(vgem, SIZE)?;
    let fence = vgem.attach(src.handle, true).check("attach")?;
    let file = dma_buf::export_sync_file(src.fd(), Access::Write).check("EXPORT_SYNC_FILE")?;
    Ok((src, fence, file))
}

pub fn import_read_fence_blocks_only_writers() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let (_src, fence, file) = pending_sync_file(&vgem)?;
    dma_buf::import_sync_file(a.fd(), file.as_fd(), Access::Read).check("IMPORT_SYNC_FILE(READ)")?;
    let (read_busy, write_busy) = (a.busy_for(Access::Read)?, a.busy_for(Access::Write)?);
    vgem.signal(fence).check("signal")?;
    ensure!(!read_busy, "an imported read fence must not block readers");
    ensure!(write_busy, "an imported read fence must block writers");
    ensure!(signalled(file.as_fd())?, "the sync_file stays usable after import (not consumed)");
    Ok(Outcome::Pass)
}

pub fn import_write_fence_blocks_everyone() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let (_src, fence, file) = pending_sync_file(&vgem)?;
    dma_buf::import_sync_file(a.fd(), file.as_fd(), Access::Write).check("IMPORT_SYNC_FILE(WRITE)")?;
    let (read_busy, write_busy) = (a.busy_for(Access::Read)?, a.busy_for(Access::Write)?);
    vgem.signal(fence).check("signal")?;
    ensure!(
        read_busy && write_busy,
        "an imported write fence blocks both (read {read_busy}, write {write_busy})"
    );
    ensure!(!a.busy_for(Access::Write)?, "idle after signal");
    Ok(Outcome::Pass)
}

pub fn merged_fence_signals_when_both_have() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let (_a, fa, file_a) = pending_sync_file(&vgem)?;
    let (_b, fb, file_b) = pending_sync_file(&vgem)?;
    let merged = sync_file::merge(file_a.as_fd(), file_b.as_fd(), "dynabuf-merge").check("SYNC_IOC_MERGE")?;
    let (status, n) = sync_file::status(merged.as_fd()).check("SYNC_IOC_FILE_INFO")?;
    vgem.signal(fa).check("signal a")?;
    let after_one = signalled(merged.as_fd())?;
    vgem.signal(fb).check("signal b")?;
    ensure!(status == Status::Active && n == 2, "merged: {status:?} with {n} fences");
    ensure!(!after_one, "the merge signalled with one fence pending");
    ensure!(sync_file::wait(merged.as_fd(), Duration::from_secs(2)).check("wait")?, "merge never signalled");
    Ok(Outcome::Pass)
}

pub fn waits_are_bounded_by_their_timeout() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let (_a, fence, file) = pending_sync_file(&vgem)?;
    let t = Instant::now();
    let done = sync_file::wait(file.as_fd(), Duration::from_millis(150)).check("wait")?;
    let waited = t.elapsed();
    vgem.signal(fence).check("signal")?;
    ensure!(!done, "a pending fence reported signalled");
    ensure!(
        waited >= Duration::from_millis(140) && waited < Duration::from_secs(3),
        "waited {waited:?} for 150 ms"
    );
    ensure!(sync_file::wait(file.as_fd(), Duration::ZERO).check("wait")?, "not signalled after signal");
    Ok(Outcome::Pass)
}

pub fn cpu_access_is_bracketed() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    dma_buf::cpu_access(a.fd(), Access::ReadWrite, true).check("DMA_BUF_IOCTL_SYNC start")?;
    dma_buf::cpu_access(a.fd(), Access::ReadWrite, false).check("DMA_BUF_IOCTL_SYNC end")?;
    let null = std::fs::File::open("/dev/null").check("/dev/null")?;
    let e =
        dma_buf::cpu_access(null.as_fd(), Access::Read, true).err().ok_or("SYNC on /dev/null succeeded")?;
    ensure!(e.is_unsupported() || e.errno == nix::errno::Errno::EINVAL, "{e}");
    Ok(Outcome::Pass)
}

pub fn prime_import_gives_one_handle_per_buffer() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let a = Buf::new(&vgem, SIZE)?;
    let again = vgem.import(a.fd()).check("second PRIME import")?;
    ensure!(again == a.handle, "the same buffer gave handles {:?} and {:?}", a.handle, again);
    vgem.close(a.handle).check("GEM_CLOSE")?;
    let e = vgem.close(a.handle).err().ok_or("closing a closed handle succeeded")?;
    ensure!(e.errno == nix::errno::Errno::EINVAL, "{e}");
    let fd = vgem
        .node()
        .prime_handle_to_fd(vgem.import(a.fd()).check("re-import")?)
        .check("PRIME_HANDLE_TO_FD")?;
    ensure!(
        dma_buf::identity(fd.as_fd()).check("fstat")? == dma_buf::identity(a.fd()).check("fstat")?,
        "round trip"
    );
    Ok(Outcome::Pass)
}
