//! Can this device re-map a dynamic attachment instead of copying it
//! (issue 11: a `SPARSE_BINDING` buffer whose binds move between the
//! layer's backing and a fresh dma-buf import)? Found by a round trip at
//! `vkCreateDevice`, never from the properties: lavapipe 25.0 reports
//! dma-buf import for sparse buffers and `vkQueueBindSparse` to an import
//! succeeds, yet a copy out of the buffer then reads zeros. The round
//! trip: a udmabuf of one page holding a known pattern, imported, bound
//! sparse to a fresh buffer, copied to host-visible memory and compared.
//! Every object is freed; every wait is bounded by the fence timeout.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use ash::vk;

use crate::dispatch::{Device, Instance};
use crate::registry::caps::Finding;
use crate::settings::Settings;
use crate::sys::udmabuf;

const PAGE: u64 = 4096;
const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// What the device was created with, for [`probe`].
#[derive(Debug)]
pub struct Context<'a> {
    /// Whether the device has `sparseBinding` enabled (by the application).
    pub sparse_binding_enabled: bool,
    /// The queues the device was created with.
    pub queue_infos: &'a [vk::DeviceQueueCreateInfo<'a>],
    /// The queue flags of each family of the physical device.
    pub family_flags: &'a [vk::QueueFlags],
    pub settings: &'a Settings,
    /// The probe's finding for dma-buf import.
    pub dma_buf_import: &'a Finding,
}

/// The byte at `i` of the probe's page.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ 0xa5) as u8
}

/// Whether dynamic attachments on `dev` could be re-mapped.
pub fn probe(instance: &Instance, dev: &Device, ctx: &Context<'_>) -> Finding {
    if !ctx.settings.dynamic_attachments() {
        return Finding::Untested("imports stay pinned (DYNABUF_ATTACH)".into());
    }
    if instance.supports_sparse_binding(dev.physical) == Some(false) {
        return Finding::No("the device has no sparseBinding".into());
    }
    if !ctx.sparse_binding_enabled {
        return Finding::Untested("sparseBinding not enabled".into());
    }
    let copies = vk::QueueFlags::TRANSFER | vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let family = ctx.queue_infos.iter().map(|q| (q.flags, q.queue_count, q.queue_family_index)).find(
        |&(flags, count, family)| {
            let family_flags = ctx.family_flags.get(family as usize).copied().unwrap_or_default();
            flags.is_empty()
                && count > 0
                && family_flags.contains(vk::QueueFlags::SPARSE_BINDING)
                && family_flags.intersects(copies)
        },
    );
    let Some((_, _, family)) = family else {
        return Finding::Untested("no queue that binds sparse and copies".into());
    };
    if !ctx.dma_buf_import.yes() {
        return Finding::Untested("no dma-buf import".into());
    }
    let features =
        instance.external_buffer_features_for(dev.physical, DMA_BUF, vk::BufferCreateFlags::SPARSE_BINDING);
    if !features.contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE) {
        return Finding::No("the driver does not offer dma-buf import for sparse buffers".into());
    }
    if !udmabuf::available() {
        return Finding::Untested(format!("no {} to make a dma-buf with known content", udmabuf::DEVICE));
    }
    let timeout_ns = ctx.settings.fence_timeout_ms.saturating_mul(1_000_000);
    let mut objects = Objects::default_for(dev, timeout_ns);
    match objects.round_trip(instance, family) {
        Ok(got) => judge(&got),
        Err(why) => Finding::No(why),
    }
}

/// What the copy read, against the pattern.
fn judge(got: &[u8]) -> Finding {
    let wrong = (0..PAGE).find(|&i| got.get(i as usize) != Some(&pattern(i)));
    match wrong {
        None => Finding::Yes,
        Some(_) if got.iter().all(|&b| b == 0) => {
            Finding::No("sparse binding of an imported dma-buf read zeros".into())
        }
        Some(i) => Finding::No(format!(
            "sparse binding of an imported dma-buf read other bytes (byte {i} = {:#04x}, expected {:#04x})",
            got.get(i as usize).copied().unwrap_or_default(),
            pattern(i)
        )),
    }
}

/// The round trip's Vulkan objects, freed on drop (after a bounded wait
/// for the work that uses them; leaked if it does not finish).
struct Objects<'a> {
    dev: &'a Device,
    timeout_ns: u64,
    buffers: Vec<vk::Buffer>,
    memories: Vec<vk::DeviceMemory>,
    /// Each fence, and whether a submission that succeeded holds it.
    fences: Vec<(vk::Fence, bool)>,
    pool: Option<vk::CommandPool>,
    cb: Option<vk::CommandBuffer>,
}

impl<'a> Objects<'a> {
    fn default_for(dev: &'a Device, timeout_ns: u64) -> Self {
        Objects {
            dev,
            timeout_ns,
            buffers: Vec::new(),
            memories: Vec::new(),
            fences: Vec::new(),
            pool: None,
            cb: None,
        }
    }

    fn fence(&mut self) -> Result<vk::Fence, String> {
        let mut fence = vk::Fence::null();
        match self.dev.create_fence(&mut fence) {
            vk::Result::SUCCESS => {
                self.fences.push((fence, false));
                Ok(fence)
            }
            r => Err(format!("vkCreateFence: {r:?}")),
        }
    }

    /// `fence` was handed to a successful submission: dropping waits for it.
    fn submitted(&mut self, fence: vk::Fence) {
        if let Some(f) = self.fences.iter_mut().find(|f| f.0 == fence) {
            f.1 = true;
        }
    }

    fn wait(&self, fence: vk::Fence, what: &str) -> Result<(), String> {
        match self.dev.wait_for_fence(fence, self.timeout_ns) {
            vk::Result::SUCCESS => Ok(()),
            r => Err(format!("waiting for the {what}: {r:?}")),
        }
    }

    /// The probe's page as the copy out of the sparse buffer read it.
    fn round_trip(&mut self, instance: &Instance, family: u32) -> Result<Vec<u8>, String> {
        let dev = self.dev;
        let mut queue = vk::Queue::null();
        dev.get_device_queue(family, 0, &mut queue);
        dev.make_dispatchable(vk::Handle::as_raw(queue))
            .map_err(|r| format!("vkSetDeviceLoaderData for the probe's queue: {r:?}"))?;
        let (mut sparse, mut req) =
            dev.sparse_buffer(PAGE, true).map_err(|r| format!("sparse vkCreateBuffer: {r:?}"))?;
        // One sparse block (a whole number of pages) holding the pattern; the
        // buffer is as large as what is bound (a bind may not reach past the
        // resource), so a driver with larger blocks gets a larger buffer.
        let bound = req.size.max(req.alignment).max(PAGE).next_multiple_of(PAGE);
        if bound > PAGE {
            // Never bound nor used: destroyed at once.
            dev.destroy_buffer(sparse, None);
            (sparse, req) =
                dev.sparse_buffer(bound, true).map_err(|r| format!("sparse vkCreateBuffer: {r:?}"))?;
        }
        self.buffers.push(sparse);
        let bound = bound.max(req.size);
        let (dmabuf, memfd) = udmabuf::create(bound).map_err(|e| format!("udmabuf: {e}"))?;
        let content: Vec<u8> = (0..PAGE).map(pattern).collect();
        std::fs::File::from(memfd)
            .write_all_at(&content, 0)
            .map_err(|e| format!("writing the memfd: {e}"))?;
        let mut props = vk::MemoryFdPropertiesKHR::default();
        let r = dev.get_memory_fd_properties(DMA_BUF, dmabuf.as_raw_fd(), &mut props);
        if r != vk::Result::SUCCESS {
            return Err(format!("vkGetMemoryFdPropertiesKHR: {r:?}"));
        }
        let bits = props.memory_type_bits & req.memory_type_bits;
        let memory_type =
            (0..32).find(|t| bits & (1 << t) != 0).ok_or("no memory type imports it for a sparse buffer")?;
        let mut imported = vk::DeviceMemory::null();
        let r = dev.import_memory_fd(bound, memory_type, DMA_BUF, dmabuf, &mut imported);
        if r != vk::Result::SUCCESS {
            return Err(format!("import: {r:?}"));
        }
        self.memories.push(imported);
        let fence = self.fence()?;
        let r = dev.bind_sparse_buffer(queue, sparse, imported, bound, fence);
        if r != vk::Result::SUCCESS {
            return Err(format!("vkQueueBindSparse: {r:?}"));
        }
        self.submitted(fence);
        self.wait(fence, "sparse bind")?;
        let (readback, readback_memory) = self.host_buffer(instance)?;
        let pool = dev.layer_command_pool(family).map_err(|r| format!("vkCreateCommandPool: {r:?}"))?;
        self.pool = Some(pool);
        let cb = dev.layer_command_buffer(pool).map_err(|r| format!("vkAllocateCommandBuffers: {r:?}"))?;
        self.cb = Some(cb);
        let r = dev.record_copy_for_host(cb, sparse, readback, PAGE);
        if r != vk::Result::SUCCESS {
            return Err(format!("recording the copy: {r:?}"));
        }
        let fence = self.fence()?;
        let cbs = [cb];
        let r = dev.queue_submit(queue, &[vk::SubmitInfo::default().command_buffers(&cbs)], fence);
        if r != vk::Result::SUCCESS {
            return Err(format!("vkQueueSubmit: {r:?}"));
        }
        self.submitted(fence);
        self.wait(fence, "copy")?;
        dev.read_mapped(readback_memory, PAGE).map_err(|r| format!("vkMapMemory: {r:?}"))
    }

    /// A buffer of one page bound to host-visible, host-coherent memory.
    fn host_buffer(&mut self, instance: &Instance) -> Result<(vk::Buffer, vk::DeviceMemory), String> {
        let wanted = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let unusual = vk::MemoryPropertyFlags::PROTECTED | vk::MemoryPropertyFlags::DEVICE_COHERENT_AMD;
        let props = instance.memory_properties(self.dev.physical);
        let types = props.memory_types[..(props.memory_type_count as usize).min(vk::MAX_MEMORY_TYPES)].iter();
        let mut last = vk::Result::ERROR_FEATURE_NOT_PRESENT;
        for (index, _) in types
            .enumerate()
            .filter(|(_, t)| t.property_flags.contains(wanted) && !t.property_flags.intersects(unusual))
        {
            let info =
                vk::MemoryAllocateInfo::default().allocation_size(PAGE).memory_type_index(index as u32);
            let mut memory = vk::DeviceMemory::null();
            last = self.dev.allocate_memory(&info, None, &mut memory);
            if last != vk::Result::SUCCESS {
                continue;
            }
            self.memories.push(memory);
            match self.dev.transfer_buffer(memory, index as u32, PAGE, false) {
                Ok(buffer) => {
                    self.buffers.push(buffer);
                    return Ok((buffer, memory));
                }
                Err(r) => last = r,
            }
        }
        Err(format!("no host-visible buffer to read back into: {last:?}"))
    }
}

impl Drop for Objects<'_> {
    fn drop(&mut self) {
        let dev = self.dev;
        let idle = self
            .fences
            .iter()
            .filter(|f| f.1)
            .all(|&(f, _)| dev.wait_for_fence(f, self.timeout_ns) == vk::Result::SUCCESS);
        if !idle {
            // Freeing what pending work uses is invalid: leak it.
            log_warn!("{}: the re-map probe's work did not finish; its objects are leaked", dev.state.name);
            return;
        }
        if let (Some(pool), Some(cb)) = (self.pool, self.cb) {
            dev.free_command_buffers(pool, &[cb]);
        }
        if let Some(pool) = self.pool {
            dev.destroy_command_pool(pool, None);
        }
        for b in self.buffers.drain(..) {
            dev.destroy_buffer(b, None);
        }
        for m in self.memories.drain(..) {
            dev.free_memory(m, None);
        }
        for (f, _) in self.fences.drain(..) {
            dev.destroy_fence(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_other_bytes_are_told_apart() {
        let right: Vec<u8> = (0..PAGE).map(pattern).collect();
        assert_eq!(judge(&right), Finding::Yes);
        assert_eq!(
            judge(&[0; PAGE as usize]),
            Finding::No("sparse binding of an imported dma-buf read zeros".into())
        );
        let mut off = right.clone();
        off[9] ^= 1;
        assert!(matches!(judge(&off), Finding::No(why) if why.contains("byte 9")));
        assert!(matches!(judge(&right[..10]), Finding::No(_)));
    }
}
