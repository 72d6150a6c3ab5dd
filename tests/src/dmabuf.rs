//! Real dma-bufs through Vulkan: a udmabuf imported into a device and a
//! device's memory exported as a dma-buf, with the content checked from the
//! CPU side through the memfd or a mapping of the dma-buf itself.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

use crate::kernel::udmabuf;
use ash::vk;
use dynabuf::sys::dma_buf::{self, Access};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::compute::{Job, Kernel, Push, Shader};
use crate::external::{ownership_barrier, ExternalBuffer};
use crate::shaders::fill_expected;
use crate::vulkan::Client;
use crate::{Context, Error, Result};

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// A shared mapping of a dma-buf.
pub struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Self> {
        let n = NonZeroUsize::new(len).ok_or_else(|| Error("empty mapping".into()))?;
        // SAFETY: a fresh shared mapping of `len` bytes of a dma-buf the
        // caller keeps open; nothing else aliases it in this process.
        let ptr = unsafe {
            mmap(None, n, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0)
        }
        .ctx("mmap dma-buf")?;
        Ok(Mapping { ptr, len })
    }

    pub fn words(&mut self) -> &mut [u32] {
        // SAFETY: the mapping is `len` bytes, page aligned, alive while self is.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u32>(), self.len / 4) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// CPU writes a udmabuf, the device imports it, adds `add` on its GPU
/// between an acquire from and a release to FOREIGN, and the CPU reads the
/// result through the memfd.
pub fn import_round_trip(c: &Client, len: u32, add: u32) -> Result<()> {
    let bytes = u64::from(len) * 4;
    let (dmabuf, memfd) = udmabuf::create(bytes.next_multiple_of(4096)).ctx("udmabuf")?;
    let memfd = std::fs::File::from(memfd);
    let pattern: Vec<u8> = (0..len).flat_map(|i| (i * 3).to_le_bytes()).collect();
    memfd.write_all_at(&pattern, 0).ctx("write memfd")?;
    let imported = ExternalBuffer::import(c, dmabuf.try_clone().ctx("dup")?, len, DMA_BUF)
        .map_err(|e| Error(format!("import dma-buf: {e:?}")))?;
    let kernel = Kernel::new(c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let job = Job::with_barriers(
        c,
        &kernel,
        buffer,
        Push { seed: add, count: len },
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, true),
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false),
    )?;
    let ran = job.run(c, c.queues[0]);
    job.destroy(c);
    kernel.destroy(c);
    imported.destroy(c);
    ran?;
    let mut back = vec![0u8; pattern.len()];
    memfd.read_exact_at(&mut back, 0).ctx("read memfd")?;
    for i in 0..len as usize {
        let v = u32::from_le_bytes([back[4 * i], back[4 * i + 1], back[4 * i + 2], back[4 * i + 3]]);
        if v != i as u32 * 3 + add {
            return Err(Error(format!("data[{i}] = {v}, expected {}", i as u32 * 3 + add)));
        }
    }
    Ok(())
}

/// The device fills exportable memory on its GPU and exports it as a
/// dma-buf; the CPU checks it through a mapping of the dma-buf, writes new
/// values (inside DMA_BUF_IOCTL_SYNC), and the GPU sees them. Returns the
/// exporter name the kernel reports.
pub fn export_round_trip(c: &Client, len: u32, seed: u32) -> Result<String> {
    let shared = ExternalBuffer::exportable(c, len, DMA_BUF)?;
    let fill = Kernel::new(c, Shader::Fill)?;
    let add = Kernel::new(c, Shader::Increment)?;
    let (buffer, family) = (shared.buffer, c.family);
    let release =
        |d: &ash::Device, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false);
    let acquire =
        |d: &ash::Device, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, true);
    let outcome = (|| -> Result<String> {
        let produce = Job::with_barriers(c, &fill, buffer, Push { seed, count: len }, |_, _| {}, release)?;
        let ran = produce.run(c, c.queues[0]);
        produce.destroy(c);
        ran?;
        let fd = shared.export_fd(c)?;
        let info = dma_buf::info(fd.as_fd())
            .ctx("fdinfo")?
            .ok_or_else(|| Error("exported fd is not a dma-buf".into()))?;
        let mut map = Mapping::new(fd.as_fd(), (u64::from(len) * 4) as usize)?;
        dma_buf::cpu_access(fd.as_fd(), Access::ReadWrite, true).ctx("DMA_BUF_IOCTL_SYNC start")?;
        let words = map.words();
        if let Some(i) = (0..len).find(|&i| words[i as usize] != fill_expected(i, seed)) {
            return Err(Error(format!(
                "mapping: data[{i}] = {:#x}, expected {:#x}",
                words[i as usize],
                fill_expected(i, seed)
            )));
        }
        for (i, w) in words.iter_mut().enumerate() {
            *w = i as u32;
        }
        dma_buf::cpu_access(fd.as_fd(), Access::ReadWrite, false).ctx("DMA_BUF_IOCTL_SYNC end")?;
        let consume = Job::with_barriers(c, &add, buffer, Push { seed: 5, count: len }, acquire, release)?;
        let ran = consume.run(c, c.queues[0]);
        consume.destroy(c);
        ran?;
        dma_buf::cpu_access(fd.as_fd(), Access::Read, true).ctx("DMA_BUF_IOCTL_SYNC start")?;
        let bad = map.words().iter().enumerate().find(|(i, w)| **w != *i as u32 + 5).map(|(i, w)| (i, *w));
        dma_buf::cpu_access(fd.as_fd(), Access::Read, false).ctx("DMA_BUF_IOCTL_SYNC end")?;
        if let Some((i, w)) = bad {
            return Err(Error(format!(
                "after the CPU's write, the GPU saw data[{i}] = {w}, expected {}",
                i + 5
            )));
        }
        Ok(info.exporter)
    })();
    fill.destroy(c);
    add.destroy(c);
    shared.destroy(c);
    outcome
}

/// Which kind of acquire a child records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireKind {
    /// Destination access SHADER_READ only.
    Read,
    /// SHADER_READ | SHADER_WRITE.
    Write,
    /// As `Read`, with `VkExternalMemoryAcquireUnmodifiedEXT{acquireUnmodifiedMemory: TRUE}`
    /// chained to the barrier: nobody changed the memory since this device
    /// released it (the device should enable
    /// `VK_EXT_external_memory_acquire_unmodified`: [`crate::vulkan::ClientOptions::acquire_unmodified`]).
    ReadUnmodified,
    /// No ownership transfer at all (an application that records none).
    None,
}

/// A job over an imported dma-buf: acquire from FOREIGN (read-only or
/// not), add `add` to `count` values, release to FOREIGN.
pub fn foreign_job(
    c: &Client,
    kernel: &Kernel,
    buffer: vk::Buffer,
    kind: AcquireKind,
    add: u32,
    count: u32,
) -> Result<Job> {
    if kind == AcquireKind::None {
        return Job::new(c, kernel, buffer, Push { seed: add, count });
    }
    acquire_job(c, kernel, buffer, kind, Push { seed: add, count }, true)
}

/// A job over an imported dma-buf: acquire from FOREIGN (`kind`), run
/// `kernel` with `push`, and release to FOREIGN when `release`.
pub fn acquire_job(
    c: &Client,
    kernel: &Kernel,
    buffer: vk::Buffer,
    kind: AcquireKind,
    push: Push,
    release: bool,
) -> Result<Job> {
    let family = c.family;
    Job::with_barriers(
        c,
        kernel,
        buffer,
        push,
        |d, cb| foreign_acquire(d, cb, buffer, family, kind),
        |d, cb| {
            if release {
                ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false)
            }
        },
    )
}

/// Records an acquire of `buffer` from FOREIGN into `family`, read-only
/// (destination access SHADER_READ) for [`AcquireKind::Read`] and
/// [`AcquireKind::ReadUnmodified`] (which chains
/// `VkExternalMemoryAcquireUnmodifiedEXT`), else reading and writing;
/// nothing for [`AcquireKind::None`].
pub fn foreign_acquire(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    family: u32,
    kind: AcquireKind,
) {
    let dst = match kind {
        AcquireKind::None => return,
        AcquireKind::Read | AcquireKind::ReadUnmodified => vk::AccessFlags::SHADER_READ,
        AcquireKind::Write => vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE,
    };
    let mut unmodified = vk::ExternalMemoryAcquireUnmodifiedEXT::default().acquire_unmodified_memory(true);
    let mut barrier = vk::BufferMemoryBarrier::default()
        .dst_access_mask(dst)
        .src_queue_family_index(vk::QUEUE_FAMILY_FOREIGN_EXT)
        .dst_queue_family_index(family)
        .buffer(buffer)
        .size(vk::WHOLE_SIZE);
    if kind == AcquireKind::ReadUnmodified {
        barrier = barrier.push_next(&mut unmodified);
    }
    let barrier = [barrier];
    // SAFETY: a command buffer in the recording state, a buffer of this device.
    unsafe {
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::DependencyFlags::empty(),
            &[],
            &barrier,
            &[],
        )
    }
}

/// Imports the dma-buf behind `fd` (the caller's fd stays open).
pub fn import_fd(c: &Client, fd: BorrowedFd<'_>, len: u32) -> Result<ExternalBuffer> {
    ExternalBuffer::import(c, fd.try_clone_to_owned().ctx("dup")?, len, DMA_BUF)
        .map_err(|e| Error(format!("import dma-buf: {e:?}")))
}

/// Reads the first value of an imported buffer through a host mapping.
pub fn first_value(c: &Client, b: &ExternalBuffer) -> Result<u32> {
    Ok(b.host_access(c, None)?.first().copied().unwrap_or(0))
}

/// Waits up to `timeout` until `poll(POLLIN)` reports the dma-buf ready:
/// every write fence in it has signalled (what a reader that knows nothing
/// of Vulkan waits for). `Ok(false)`: still busy at the timeout.
pub fn wait_for_writers(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) => return Ok(n > 0 && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error(format!("poll(dma-buf): {e}"))),
        }
    }
}

/// Records an ownership transfer of `buffer` between `family` and FOREIGN:
/// an acquire with destination access `access` (carrying
/// `VkExternalMemoryAcquireUnmodifiedEXT` when `unmodified`), or a release
/// with source access `access`, ordered against `stage`.
#[allow(clippy::too_many_arguments)]
pub fn foreign_transfer(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    family: u32,
    acquire: bool,
    access: vk::AccessFlags,
    stage: vk::PipelineStageFlags,
    unmodified: bool,
) {
    let mut said = vk::ExternalMemoryAcquireUnmodifiedEXT::default().acquire_unmodified_memory(true);
    let (src_family, dst_family) =
        if acquire { (vk::QUEUE_FAMILY_FOREIGN_EXT, family) } else { (family, vk::QUEUE_FAMILY_FOREIGN_EXT) };
    let mut barrier = vk::BufferMemoryBarrier::default()
        .src_queue_family_index(src_family)
        .dst_queue_family_index(dst_family)
        .buffer(buffer)
        .size(vk::WHOLE_SIZE);
    barrier = if acquire { barrier.dst_access_mask(access) } else { barrier.src_access_mask(access) };
    if unmodified {
        barrier = barrier.push_next(&mut said);
    }
    let (src_stage, dst_stage) = if acquire {
        (vk::PipelineStageFlags::TOP_OF_PIPE, stage)
    } else {
        (stage, vk::PipelineStageFlags::BOTTOM_OF_PIPE)
    };
    // SAFETY: a command buffer in the recording state, a buffer of this
    // device; the structure in the chain outlives the call.
    unsafe {
        d.cmd_pipeline_barrier(cb, src_stage, dst_stage, vk::DependencyFlags::empty(), &[], &[barrier], &[])
    };
}
