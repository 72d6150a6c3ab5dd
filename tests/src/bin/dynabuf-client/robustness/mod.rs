//! Subcommands for the kernel tier's robustness tests
//! (`tests/tests/kernel/robustness.rs`): read-only acquires that never
//! release, how long `vkQueueSubmit` blocks, acquires recorded in secondary
//! command buffers, application `pNext` chains on submits, host access to
//! dynamic attachments, the layer's fault injection (`DYNABUF_FAULT`), and
//! two devices handing a dma-buf over without waiting for their own fences.
//!
//! Subcommands that need a foreign fence while they run on their own
//! attach it themselves with vgem (the layer only sees the dma-buf's
//! fences, whoever holds them), so the tests can run them in one go.

mod content;
mod copies;
mod faults;
mod handover;
mod host_access;
mod submits;

use ash::vk;
use dynabuf_client::kernel::vgem::Vgem;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

pub use content::*;
pub use copies::*;
pub use faults::*;
pub use handover::*;
pub use host_access::*;
pub use submits::*;

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

pub(crate) fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

pub(crate) fn sys<T>(r: std::result::Result<T, dynabuf::sys::SysError>) -> Result<T> {
    r.map_err(|e| Error(e.to_string()))
}

/// A udmabuf of `len` u32s made by this process, with its memfd (the same
/// pages) for checking the content from the CPU.
pub(crate) struct Udmabuf {
    pub(crate) dmabuf: OwnedFd,
    pub(crate) memfd: std::fs::File,
    pub(crate) len: u32,
}

impl Udmabuf {
    pub(crate) fn new(len: u32) -> Result<Self> {
        let bytes = (u64::from(len) * 4).next_multiple_of(4096);
        let (dmabuf, memfd) = sys(dynabuf_client::kernel::udmabuf::create(bytes))?;
        Ok(Udmabuf { dmabuf, memfd: memfd.into(), len })
    }

    pub(crate) fn write(&self, value: impl Fn(u32) -> u32) -> Result<()> {
        write_words(&self.memfd, self.len, value)
    }

    pub(crate) fn read(&self) -> Result<Vec<u32>> {
        read_words(&self.memfd, self.len)
    }

    /// `Err` naming the first value that is not `want(i)`.
    pub(crate) fn expect(&self, what: &str, want: impl Fn(u32) -> u32) -> Result<()> {
        expect_words(what, &self.read()?, want)
    }
}

fn write_words(f: &std::fs::File, len: u32, value: impl Fn(u32) -> u32) -> Result<()> {
    let bytes: Vec<u8> = (0..len).flat_map(|i| value(i).to_le_bytes()).collect();
    f.write_all_at(&bytes, 0).ctx("write memfd")
}

/// The first `len` u32s of the memfd, read in one go (quick enough, even
/// in a debug build under TCG, to catch a GPU that is still writing).
fn read_words(f: &std::fs::File, len: u32) -> Result<Vec<u32>> {
    let mut words = vec![0u32; len as usize];
    // SAFETY: a byte view of exactly the vector's initialised elements; u32
    // has no padding and every bit pattern is a valid u32.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) };
    f.read_exact_at(bytes, 0).ctx("read memfd")?;
    if cfg!(target_endian = "big") {
        words.iter_mut().for_each(|w| *w = u32::from_le(*w));
    }
    Ok(words)
}

fn first_wrong(words: &[u32], want: impl Fn(u32) -> u32) -> Option<(usize, u32, u32)> {
    words.iter().enumerate().find(|(i, w)| **w != want(*i as u32)).map(|(i, w)| (i, *w, want(i as u32)))
}

fn expect_words(what: &str, words: &[u32], want: impl Fn(u32) -> u32) -> Result<()> {
    match first_wrong(words, want) {
        Some((i, got, expected)) => Err(Error(format!("{what}: data[{i}] = {got}, expected {expected}"))),
        None => Ok(()),
    }
}

/// A client whose device also enables `extra` extensions (where offered)
/// and the `timelineSemaphore` feature. Returns it and the extra extensions
/// it got.
fn client_with(extra: &[&CStr]) -> Result<(Client, Vec<CString>)> {
    let extra_extensions: Vec<CString> = extra.iter().map(|e| CString::from(*e)).collect();
    let c = Client::new(&ClientOptions {
        extra_extensions: extra_extensions.clone(),
        timeline: true,
        ..Default::default()
    })?;
    let got = extra_extensions.into_iter().filter(|e| c.extensions.contains(e)).collect();
    Ok((c, got))
}

/// A write (or read) fence that vgem attaches to a dma-buf now, and a
/// thread that, after `delay`, writes `content` through the memfd and
/// then signals it: a foreign writer finishing its frame.
pub(crate) struct ForeignWriter {
    thread: std::thread::JoinHandle<Result<Instant>>,
}

impl ForeignWriter {
    pub(crate) fn start(
        buf: &Udmabuf,
        write: bool,
        delay: Duration,
        content: Option<fn(u32) -> u32>,
    ) -> Result<Self> {
        let vgem = sys(Vgem::open())?;
        let handle = sys(vgem.import(buf.dmabuf.as_fd()))?;
        let fence = sys(vgem.attach(handle, write))?;
        let memfd = buf.memfd.try_clone().ctx("dup memfd")?;
        let len = buf.len;
        let thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            if let Some(value) = content {
                write_words(&memfd, len, value)?;
            }
            let at = Instant::now();
            sys(vgem.signal(fence))?;
            let _ = vgem.close(handle);
            Ok(at)
        });
        Ok(ForeignWriter { thread })
    }

    /// When the fence was signalled.
    pub(crate) fn join(self) -> Result<Instant> {
        self.thread.join().map_err(|_| Error("the foreign writer panicked".into()))?
    }
}

/// A foreign fence (vgem) on a dma-buf, held until [`HeldFence::signal`].
pub(crate) struct HeldFence {
    vgem: Vgem,
    handle: dynabuf::sys::drm::GemHandle,
    fence: dynabuf_client::kernel::vgem::Fence,
}

impl HeldFence {
    pub(crate) fn attach(buf: &Udmabuf, write: bool) -> Result<Self> {
        Self::on(buf.dmabuf.as_fd(), write)
    }

    /// A write (or read) fence on the dma-buf behind `fd`.
    pub(crate) fn on(fd: std::os::fd::BorrowedFd<'_>, write: bool) -> Result<Self> {
        let vgem = sys(Vgem::open())?;
        let handle = sys(vgem.import(fd))?;
        let fence = sys(vgem.attach(handle, write))?;
        Ok(HeldFence { vgem, handle, fence })
    }

    pub(crate) fn signal(self) -> Result<()> {
        sys(self.vgem.signal(self.fence))?;
        let _ = self.vgem.close(self.handle);
        Ok(())
    }
}
