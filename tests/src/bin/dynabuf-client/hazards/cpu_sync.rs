//! `cpu-sync map|map-reader|map-exported|invalidate|flush|timeout|cycles [LEN] [N]`:
//! host access to dma-buf memory while a peer (a vgem write fence this
//! process attaches, a "foreign writer" thread) still writes it. The
//! memory holds `1 + i`; the writer writes `5000 + i` after 300 ms and
//! then signals its fence.
//!
//! - `map`: `vkMapMemory` of an imported udmabuf while the fence is
//!   pending; prints `call_ms=N first=V` (V: the first word read right
//!   after the call returned);
//! - `map-reader`: the same behind a vgem *read* fence held 300 ms (the
//!   content unchanged);
//! - `map-exported`: the same for memory allocated exportable as a
//!   dma-buf and exported (the writer writes through the dma-buf);
//! - `invalidate`: mapped first (no fence), then
//!   `vkInvalidateMappedMemoryRanges` while the fence is pending;
//!   `call_ms`, `first` as above;
//! - `flush`: as `invalidate`, with `vkFlushMappedMemoryRanges` first
//!   (`flush_ms=N`: how long it took; `call_ms` counts from before it);
//! - `timeout`: `vkMapMemory` behind a fence nobody signals (until the
//!   call returned); then an acquire/add-1/release job, whose result is
//!   checked (`after_ok=true`). The client's stderr has
//!   `client: vkMapMemory begins` / `client: vkMapMemory returned` around
//!   the call;
//! - `cycles`: `map` first, then N (default 2000) map + flush +
//!   invalidate + unmap cycles; prints `fds_before=A fds_after=B`.

use crate::arg;
use crate::robustness::{say, ForeignWriter, HeldFence, Udmabuf};
use ash::vk;
use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{self, AcquireKind, Mapping};
use dynabuf_client::external::{open_fds, ExternalBuffer};
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the foreign writer holds its fence.
const HELD: Duration = Duration::from_millis(300);

fn late(i: u32) -> u32 {
    5000 + i
}

pub fn cmd_cpu_sync(args: &[String]) -> Result<()> {
    let mode = args.first().map_or("", String::as_str);
    let len = arg(args, 1, 1024);
    let c = Client::new(&ClientOptions::default())?;
    match mode {
        "map" | "cycles" | "map-reader" => {
            let buf = Udmabuf::new(len)?;
            buf.write(|i| 1 + i)?;
            let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
            // A reader's fence (map-reader) changes nothing in the content.
            let reader = mode == "map-reader";
            let content = (!reader).then_some(late as fn(u32) -> u32);
            let outcome =
                map_behind_writer(&c, imported.memory, || ForeignWriter::start(&buf, !reader, HELD, content))
                    .and_then(|_| {
                        if mode == "cycles" {
                            cycles(&c, imported.memory, arg(args, 2, 2000))
                        } else {
                            Ok(())
                        }
                    });
            imported.destroy(&c);
            outcome
        }
        "map-exported" => {
            let shared = ExternalBuffer::exportable(&c, len, vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)?;
            let outcome = shared.export_fd(&c).and_then(|fd| {
                shared.host_access(&c, Some(&(0..len).map(|i| 1 + i).collect::<Vec<_>>()))?;
                map_behind_writer(&c, shared.memory, || writer_through(fd, len))
            });
            shared.destroy(&c);
            outcome
        }
        "invalidate" | "flush" => {
            let buf = Udmabuf::new(len)?;
            buf.write(|i| 1 + i)?;
            let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
            let outcome = range_call_behind_writer(&c, imported.memory, mode == "flush", &buf);
            imported.destroy(&c);
            outcome
        }
        "timeout" => timeout(&c, len),
        other => Err(Error(format!(
            "{other:?}: expected map, map-reader, map-exported, invalidate, flush, timeout or cycles"
        ))),
    }
}

/// Something that signals a fence when joined or finished.
trait Writer {
    fn finish(self) -> Result<()>;
}

impl Writer for ForeignWriter {
    fn finish(self) -> Result<()> {
        self.join().map(|_| ())
    }
}

/// A foreign writer on an exported dma-buf: a vgem write fence now, and a
/// thread that writes `late(i)` through a mapping of the dma-buf after
/// [`HELD`] and then signals.
struct ThroughDmaBuf(std::thread::JoinHandle<Result<()>>);

impl Writer for ThroughDmaBuf {
    fn finish(self) -> Result<()> {
        self.0.join().map_err(|_| Error("the foreign writer panicked".into()))?
    }
}

fn writer_through(fd: OwnedFd, len: u32) -> Result<ThroughDmaBuf> {
    let fence = HeldFence::on(fd.as_fd(), true)?;
    Ok(ThroughDmaBuf(std::thread::spawn(move || {
        std::thread::sleep(HELD);
        let mut map = Mapping::new(fd.as_fd(), len as usize * 4)?;
        for (i, w) in map.words().iter_mut().enumerate() {
            *w = late(i as u32);
        }
        drop(map);
        fence.signal()
    })))
}

/// `vkMapMemory` of `memory` while `start()`'s writer holds its fence.
fn map_behind_writer<W: Writer>(
    c: &Client,
    memory: vk::DeviceMemory,
    start: impl FnOnce() -> Result<W>,
) -> Result<()> {
    let writer = start()?;
    let t = Instant::now();
    // SAFETY: host-visible memory of this device, not mapped, no GPU work.
    let mapped = unsafe { c.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) };
    let call_ms = t.elapsed().as_millis();
    // SAFETY: on success a live mapping of at least one u32, page aligned.
    let first = mapped.map(|p| unsafe { p.cast::<u32>().read_volatile() });
    let finished = writer.finish();
    if first.is_ok() {
        // SAFETY: mapped above.
        unsafe { c.device.unmap_memory(memory) };
    }
    let first = first.ctx("vkMapMemory")?;
    finished?;
    say(&format!("call_ms={call_ms} first={first}"));
    Ok(())
}

/// Maps `memory` (no fence yet), then (flushes and) invalidates it while
/// a foreign writer holds its fence.
fn range_call_behind_writer(c: &Client, memory: vk::DeviceMemory, flush: bool, buf: &Udmabuf) -> Result<()> {
    // SAFETY: as in `map_behind_writer`.
    let p = unsafe { c.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
        .ctx("vkMapMemory")?;
    let outcome = (|| {
        let writer = ForeignWriter::start(buf, true, HELD, Some(late))?;
        let range = [vk::MappedMemoryRange::default().memory(memory).offset(0).size(vk::WHOLE_SIZE)];
        let t = Instant::now();
        // SAFETY: a range of memory this process has mapped.
        let flushed = flush.then(|| unsafe { c.device.flush_mapped_memory_ranges(&range) });
        let flush_ms = t.elapsed().as_millis();
        // SAFETY: as above.
        let r = unsafe { c.device.invalidate_mapped_memory_ranges(&range) };
        let call_ms = t.elapsed().as_millis();
        // SAFETY: a live mapping of at least one u32, page aligned.
        let first = unsafe { p.cast::<u32>().read_volatile() };
        writer.join()?;
        flushed.transpose().ctx("vkFlushMappedMemoryRanges")?;
        r.ctx("vkInvalidateMappedMemoryRanges")?;
        let flush_ms = if flush { format!("flush_ms={flush_ms} ") } else { String::new() };
        say(&format!("{flush_ms}call_ms={call_ms} first={first}"));
        Ok(())
    })();
    // SAFETY: mapped above.
    unsafe { c.device.unmap_memory(memory) };
    outcome
}

/// `n` map + flush + invalidate + unmap cycles; fd counts around them.
fn cycles(c: &Client, memory: vk::DeviceMemory, n: u32) -> Result<()> {
    let range = [vk::MappedMemoryRange::default().memory(memory).offset(0).size(vk::WHOLE_SIZE)];
    let before = open_fds();
    for _ in 0..n {
        // SAFETY: as in `map_behind_writer`; unmapped at the end of the cycle.
        unsafe {
            let p: *mut c_void = c
                .device
                .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                .ctx("vkMapMemory")?;
            p.cast::<u32>().write_volatile(p.cast::<u32>().read_volatile());
            let done = c
                .device
                .flush_mapped_memory_ranges(&range)
                .and_then(|_| c.device.invalidate_mapped_memory_ranges(&range));
            c.device.unmap_memory(memory);
            done.ctx("flush/invalidate")?;
        }
    }
    say(&format!("cycles={n} fds_before={before} fds_after={}", open_fds()));
    Ok(())
}

/// `vkMapMemory` behind a fence that is signalled only after the call
/// returned; then a job on the same memory.
fn timeout(c: &Client, len: u32) -> Result<()> {
    let buf = Udmabuf::new(len)?;
    buf.write(|i| 1 + i)?;
    let imported = dmabuf::import_fd(c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(c, Shader::Increment)?;
    let outcome = (|| {
        let fence = HeldFence::attach(&buf, true)?;
        eprintln!("client: vkMapMemory begins");
        let t = Instant::now();
        // SAFETY: as in `map_behind_writer`.
        let mapped =
            unsafe { c.device.map_memory(imported.memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) };
        let call_ms = t.elapsed().as_millis();
        eprintln!("client: vkMapMemory returned");
        if mapped.is_ok() {
            // SAFETY: mapped above.
            unsafe { c.device.unmap_memory(imported.memory) };
        }
        fence.signal()?;
        mapped.ctx("vkMapMemory")?;
        say(&format!("call_ms={call_ms}"));
        // The application goes on: a job on the same memory.
        let job = dmabuf::foreign_job(c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
        let ran = job.run(c, c.queues[0]);
        job.destroy(c);
        ran?;
        buf.expect("after the job", |i| 2 + i)?;
        say("after_ok=true");
        Ok(())
    })();
    kernel.destroy(c);
    imported.destroy(c);
    outcome
}
