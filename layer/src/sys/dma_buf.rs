//! dma-buf file descriptors: identity, what `/proc/self/fdinfo` says about
//! them, and the dma-buf ioctls (`linux/dma-buf.h`).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{Op, SysResult};

/// A dma-buf's identity: the kernel gives each dma-buf its own inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
}

/// `(st_dev, st_ino)` of any fd.
pub fn identity(fd: BorrowedFd<'_>) -> SysResult<Identity> {
    let st = nix::sys::stat::fstat(fd).op("fstat")?;
    Ok(Identity { dev: st.st_dev, ino: st.st_ino })
}

/// What `/proc/self/fdinfo/<fd>` says about a dma-buf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub size: u64,
    /// The exporter (`udmabuf`, `drm`, `system`, …).
    pub exporter: String,
    /// The name set with `DMA_BUF_SET_NAME`, if any.
    pub name: Option<String>,
}

/// Parses fdinfo text; `None` when it is not a dma-buf's (no `exp_name`).
pub fn parse_fdinfo(text: &str) -> Option<Info> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
    };
    let exporter = field("exp_name")?;
    let size = field("size")?.parse().ok()?;
    let name = field("name").filter(|n| !n.is_empty());
    Some(Info { size, exporter, name })
}

/// The dma-buf's size, exporter and name; `Ok(None)` when `fd` is open but
/// not a dma-buf.
pub fn info(fd: BorrowedFd<'_>) -> SysResult<Option<Info>> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).op("read fdinfo")?;
    Ok(parse_fdinfo(&text))
}

/// Which fences a sync-file export collects or an import adds
/// (`DMA_BUF_SYNC_READ`/`_WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Access {
    /// Export: the writers' fences (what a reader must wait for).
    /// Import: a read fence.
    Read = 1,
    /// Export: every fence (what a writer must wait for). Import: a write
    /// fence.
    Write = 2,
    /// Export: as `Write`. Import: as `Write`.
    ReadWrite = 3,
}

#[repr(C)]
struct SyncFileArg {
    flags: u32,
    fd: i32,
}

#[repr(C)]
struct SyncArg {
    flags: u64,
}

const DMA_BUF_BASE: u8 = b'b';
const DMA_BUF_NAME_LEN: usize = 32;
nix::ioctl_readwrite!(ioctl_export_sync_file, DMA_BUF_BASE, 2, SyncFileArg);
nix::ioctl_write_ptr!(ioctl_import_sync_file, DMA_BUF_BASE, 3, SyncFileArg);
nix::ioctl_write_ptr!(ioctl_sync, DMA_BUF_BASE, 0, SyncArg);
// DMA_BUF_SET_NAME is `_IOW('b', 1, const char *)`: the size is a pointer's.
nix::ioctl_write_ptr_bad!(
    ioctl_set_name,
    nix::request_code_write!(DMA_BUF_BASE, 1, std::mem::size_of::<*const u8>()),
    u8
);

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: a sync_file holding the buffer's fences
/// that `access` must wait for (an idle buffer gives a signalled one).
pub fn export_sync_file(dmabuf: BorrowedFd<'_>, access: Access) -> SysResult<OwnedFd> {
    crate::lock_order::assert_unlocked("DMA_BUF_IOCTL_EXPORT_SYNC_FILE");
    let mut arg = SyncFileArg { flags: access as u32, fd: -1 };
    // SAFETY: `arg` is the kernel's `struct dma_buf_export_sync_file`,
    // alive for the call; the kernel writes only `arg.fd`.
    unsafe { ioctl_export_sync_file(dmabuf.as_raw_fd(), &mut arg) }.op("DMA_BUF_IOCTL_EXPORT_SYNC_FILE")?;
    // SAFETY: on success `arg.fd` is a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// Whether `access` would have to wait now: `poll()` on the dma-buf itself
/// (POLLIN: no pending writers; POLLOUT: no pending fences at all). One
/// system call and no new fd, so the common idle case stays cheap.
pub fn is_idle(dmabuf: BorrowedFd<'_>, access: Access) -> SysResult<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let events = if access == Access::Read { PollFlags::POLLIN } else { PollFlags::POLLOUT };
    let mut fds = [PollFd::new(dmabuf, events)];
    let n = poll(&mut fds, PollTimeout::ZERO).op("poll(dma-buf)")?;
    Ok(n > 0 && fds[0].revents().is_some_and(|r| r.intersects(events)))
}

/// Waits up to `timeout` until `access` would not have to wait (`poll()`
/// on the dma-buf, as [`is_idle`]); `Ok(false)` when the time ran out.
pub fn wait_idle(dmabuf: BorrowedFd<'_>, access: Access, timeout: std::time::Duration) -> SysResult<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    if !timeout.is_zero() {
        crate::lock_order::assert_unlocked("a dma-buf wait");
    }
    let events = if access == Access::Read { PollFlags::POLLIN } else { PollFlags::POLLOUT };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(dmabuf, events)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(fds[0].revents().is_some_and(|r| r.intersects(events))),
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(e) => return Err(super::SysError::new("poll(dma-buf)", e)),
        }
    }
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: adds `sync_file`'s fence to the
/// buffer's reservation as a read or write fence. The fd is not consumed.
pub fn import_sync_file(dmabuf: BorrowedFd<'_>, sync_file: BorrowedFd<'_>, access: Access) -> SysResult<()> {
    crate::lock_order::assert_unlocked("DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
    let arg = SyncFileArg { flags: access as u32, fd: sync_file.as_raw_fd() };
    // SAFETY: `arg` is the kernel's `struct dma_buf_import_sync_file`,
    // alive for the call; the kernel only reads it.
    unsafe { ioctl_import_sync_file(dmabuf.as_raw_fd(), &arg) }.op("DMA_BUF_IOCTL_IMPORT_SYNC_FILE")?;
    Ok(())
}

/// `DMA_BUF_IOCTL_SYNC`: brackets CPU access to a mapping.
pub fn cpu_access(dmabuf: BorrowedFd<'_>, access: Access, start: bool) -> SysResult<()> {
    crate::lock_order::assert_unlocked("DMA_BUF_IOCTL_SYNC");
    const END: u64 = 1 << 2;
    let arg = SyncArg { flags: access as u64 | if start { 0 } else { END } };
    // SAFETY: `arg` is the kernel's `struct dma_buf_sync`, read only.
    unsafe { ioctl_sync(dmabuf.as_raw_fd(), &arg) }.op("DMA_BUF_IOCTL_SYNC")?;
    Ok(())
}

/// `DMA_BUF_SET_NAME`: names the buffer (shown in fdinfo and debugfs);
/// at most 31 bytes are kept.
pub fn set_name(dmabuf: BorrowedFd<'_>, name: &str) -> SysResult<()> {
    let mut buf = [0u8; DMA_BUF_NAME_LEN];
    let n = name.len().min(DMA_BUF_NAME_LEN - 1);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: `buf` is a NUL-terminated string alive for the call; the
    // kernel copies at most DMA_BUF_NAME_LEN bytes from it.
    unsafe { ioctl_set_name(dmabuf.as_raw_fd(), buf.as_ptr()) }.op("DMA_BUF_SET_NAME")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_of_a_dma_buf() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nsize:\t65536\ncount:\t2\nexp_name:\tudmabuf\nname:\tframe-7\n";
        let info = parse_fdinfo(text).unwrap();
        assert_eq!(info, Info { size: 65536, exporter: "udmabuf".into(), name: Some("frame-7".into()) });
        let unnamed = parse_fdinfo("size:\t4096\nexp_name:\tsystem\nname:\t\n").unwrap();
        assert_eq!(unnamed.name, None);
    }

    #[test]
    fn fdinfo_of_other_files() {
        assert!(parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t1\n").is_none());
        assert!(parse_fdinfo("size:\tlots\nexp_name:\tx\n").is_none());
    }

    #[test]
    fn dma_buf_ioctls_on_a_plain_file_fail_with_enotty() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&f);
        let e = export_sync_file(fd, Access::Read).unwrap_err();
        assert!(e.is_unsupported() || e.errno == nix::errno::Errno::EINVAL, "{e}");
        assert_eq!(info(fd).unwrap(), None);
    }
}
