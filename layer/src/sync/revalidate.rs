//! Re-validation: making a dynamic attachment resident for a use (the
//! kernel's `dma_buf_map_attachment`): re-import an invalidated attachment
//! from the layer's fd, and record its copies for the queue family that
//! will use it.
//!
//! The lock rule (`lock_order`): the attachment is taken out of the
//! memory table (`Moving`) under the lock, the driver calls run without
//! it, and the result is put back under it again. A thread that finds the
//! attachment `Moving` waits for it (bounded) instead of seeing a
//! half-built import.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use ash::vk;

use crate::dispatch::Device;
use crate::registry::dynamic::{Copies, Dynamic, Internal, Use};
use crate::registry::{CopyExtent, DmaBufKey, Span};
use crate::sys::dma_buf;

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// How long a thread waits for another to finish moving an attachment: an
/// eviction waits at most the fence timeout for the GPU, so twice that.
fn busy_deadline(timeout: Duration) -> Instant {
    Instant::now() + timeout * 2 + Duration::from_millis(100)
}

/// Frees an internal import and what the layer made over it. Every use of
/// it must have retired.
pub fn drop_internal(dev: &Device, internal: Internal) {
    for c in &internal.copies {
        dev.destroy_command_pool(c.pool, None);
    }
    dev.destroy_buffer(internal.buffer, None);
    dev.free_memory(internal.memory, None);
}

/// Records the two copies of `internal` for queue family `family`.
fn record_copies(
    dev: &Device,
    backing_buffer: vk::Buffer,
    extent: Span,
    internal: &mut Internal,
    family: u32,
) -> Result<Copies, vk::Result> {
    let pool = dev.layer_command_pool(family)?;
    let recorded = (|| {
        let copy_in = dev.layer_command_buffer(pool)?;
        let copy_out = dev.layer_command_buffer(pool)?;
        match dev.record_copy(copy_in, internal.buffer, backing_buffer, extent) {
            vk::Result::SUCCESS => {}
            e => return Err(e),
        }
        match dev.record_copy(copy_out, backing_buffer, internal.buffer, extent) {
            vk::Result::SUCCESS => Ok(Copies { family, extent, pool, copy_in, copy_out }),
            e => Err(e),
        }
    })();
    match recorded {
        Ok(c) => {
            internal.copies.push(c);
            Ok(c)
        }
        Err(e) => {
            dev.destroy_command_pool(pool, None);
            Err(e)
        }
    }
}

/// Re-imports an invalidated attachment from the layer's fd, after checking
/// the fd still names the same buffer of at least the same size.
fn reimport(
    dev: &Device,
    size: u64,
    memory_type: u32,
    key: DmaBufKey,
    fd: &OwnedFd,
) -> Result<Internal, vk::Result> {
    let id = dma_buf::identity(fd.as_fd()).map_err(|e| e.to_vk())?;
    let now = dma_buf::info(fd.as_fd()).map_err(|e| e.to_vk())?.map(|i| i.size).unwrap_or(0);
    if id.dev != key.dev || id.ino != key.ino || now < size {
        log_error!("{}: {key} changed under its fd (size {now}); it cannot be re-validated", dev.state.name);
        return Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
    }
    if let Some(e) = crate::fault::injected(crate::fault::Point::Reimport) {
        return Err(e);
    }
    let dup = fd.try_clone().map_err(|_| vk::Result::ERROR_TOO_MANY_OBJECTS)?;
    let mut memory = vk::DeviceMemory::null();
    let r = dev.import_memory_fd(size, memory_type, DMA_BUF, dup, &mut memory);
    if r != vk::Result::SUCCESS {
        return Err(r);
    }
    match dev.transfer_buffer(memory, memory_type, size, true) {
        Ok(buffer) => Ok(Internal::new(memory, buffer)),
        Err(e) => {
            dev.free_memory(memory, None);
            Err(e)
        }
    }
}

/// What the table says of an attachment when a use begins.
struct Snapshot {
    begun: Use,
    generation: u64,
    size: u64,
    memory_type: u32,
    backing_buffer: vk::Buffer,
    /// The bytes to copy (what the attachment's resources occupy).
    extent: Span,
    key: DmaBufKey,
    fd: std::sync::Arc<OwnedFd>,
}

fn begin(
    dev: &Device,
    memory: vk::DeviceMemory,
    start: impl FnOnce(&mut Dynamic, Span) -> Use,
) -> Option<Snapshot> {
    dev.state.with_memory(|t| {
        let (key, fd) = t.get(memory).and_then(|r| r.dma_buf.as_ref()).map(|d| (d.key, d.fd.clone()))?;
        let size = t.dynamic_mut(memory)?.size;
        let extent = match t.copy_extent(memory, size) {
            CopyExtent::Part(e) => e,
            CopyExtent::Whole | CopyExtent::Nothing => Span { offset: 0, size },
        };
        let d = t.dynamic_mut(memory)?;
        Some(Snapshot {
            generation: d.generation,
            begun: start(d, extent),
            extent,
            size: d.size,
            memory_type: d.memory_type,
            backing_buffer: d.backing_buffer,
            key,
            fd,
        })
    })
}

/// Puts the outcome of a move back (with `put`); when the application
/// freed the memory meanwhile (invalid, but possible), the import goes.
fn end(
    dev: &Device,
    (memory, generation): (vk::DeviceMemory, u64),
    result: Option<Internal>,
    put: impl FnOnce(&mut Dynamic, Option<Internal>),
) -> bool {
    let leftover = dev.state.with_memory(|t| match t.dynamic_of(memory, generation) {
        Some(d) => {
            put(d, result);
            None
        }
        None => Some(result),
    });
    match leftover {
        None => true,
        Some(r) => {
            if let Some(i) = r {
                drop_internal(dev, i);
            }
            false
        }
    }
}

fn counted(d: &mut Dynamic, r: Option<Internal>) {
    d.end_work(r, true)
}

fn uncounted(d: &mut Dynamic, r: Option<Internal>) {
    d.end_work(r, false)
}

/// Makes the attachment of `memory` resident with copies for `family`, and
/// counts the caller's submission in flight (end it with
/// `Dynamic::finish_use`, naming the generation returned). `Ok(None)`: not
/// a dynamic attachment (any more), or one with no bytes of its own to copy
/// (`CopyExtent::Nothing`).
/// On failure the attachment stays invalidated and consistent, and a later
/// submission can try again.
pub fn for_submission(
    dev: &Device,
    memory: vk::DeviceMemory,
    family: u32,
    timeout: Duration,
) -> Result<Option<(Copies, u64)>, vk::Result> {
    let deadline = busy_deadline(timeout);
    let nothing = dev.state.with_memory(|t| {
        t.get(memory).and_then(|r| r.dynamic.as_ref()).map(|d| d.size).map(|size| t.copy_extent(memory, size))
    }) == Some(CopyExtent::Nothing);
    if nothing {
        return Ok(None);
    }
    loop {
        let Some(s) = begin(dev, memory, |d, extent| d.begin_use(family, extent)) else { return Ok(None) };
        let taken = match s.begun {
            Use::Ready(c) => return Ok(Some((c, s.generation))),
            Use::Busy if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            Use::Busy | Use::Mapped(_) => {
                log_warn!("{}: {} stayed busy in another thread past the timeout", dev.state.name, s.key);
                return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
            }
            Use::Work(taken) => taken,
        };
        let was_resident = taken.is_some();
        let mut internal = match taken {
            Some(i) => i,
            None => match reimport(dev, s.size, s.memory_type, s.key, &s.fd) {
                Ok(i) => {
                    dev.state.count(|st| &st.revalidations);
                    dev.state.with_stats(|st| st.revalidated(s.key));
                    log_debug!("{}: {} re-validated (re-imported)", dev.state.name, s.key);
                    i
                }
                Err(e) => {
                    end(dev, (memory, s.generation), None, uncounted);
                    return Err(e);
                }
            },
        };
        return match record_copies(dev, s.backing_buffer, s.extent, &mut internal, family) {
            Ok(c) => match end(dev, (memory, s.generation), Some(internal), counted) {
                true => Ok(Some((c, s.generation))),
                false => Ok(None),
            },
            Err(e) if was_resident => {
                end(dev, (memory, s.generation), Some(internal), uncounted);
                Err(e)
            }
            Err(e) => {
                drop_internal(dev, internal);
                end(dev, (memory, s.generation), None, uncounted);
                Err(e)
            }
        };
    }
}

/// Makes the attachment of `memory` resident and mapped (kept resident
/// until unmapped); returns the internal import to map. `Ok(None)`: not a
/// dynamic attachment.
pub fn for_mapping(
    dev: &Device,
    memory: vk::DeviceMemory,
    timeout: Duration,
) -> Result<Option<vk::DeviceMemory>, vk::Result> {
    let deadline = busy_deadline(timeout);
    loop {
        let Some(s) = begin(dev, memory, |d, _| d.begin_map()) else { return Ok(None) };
        match s.begun {
            Use::Mapped(m) => return Ok(Some(m)),
            Use::Busy if Instant::now() < deadline => std::thread::sleep(Duration::from_micros(200)),
            Use::Busy | Use::Ready(_) | Use::Work(Some(_)) => {
                return Err(vk::Result::ERROR_MEMORY_MAP_FAILED)
            }
            Use::Work(None) => {
                let i = match reimport(dev, s.size, s.memory_type, s.key, &s.fd) {
                    Ok(i) => i,
                    Err(e) => {
                        end(dev, (memory, s.generation), None, uncounted);
                        return Err(e);
                    }
                };
                dev.state.count(|st| &st.revalidations);
                dev.state.with_stats(|st| st.revalidated(s.key));
                let m = i.memory;
                return Ok(end(dev, (memory, s.generation), Some(i), Dynamic::end_map_work).then_some(m));
            }
        }
    }
}
