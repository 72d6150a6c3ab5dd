//! Safe wrappers for what the re-map probe (`hooks::remap_probe`) does on
//! a fresh device: a `SPARSE_BINDING` buffer, a `vkQueueBindSparse` of it,
//! a copy read back from the host, and a read of mapped memory. The safety
//! argument is the module doc of [`super::device`]: every handle passed is
//! one the layer created on this device.

use ash::vk;

use super::Device;

const MISSING: vk::Result = vk::Result::ERROR_INITIALIZATION_FAILED;

impl Device {
    /// An unbound transfer buffer of `size` bytes created `SPARSE_BINDING`
    /// (for dma-buf memory when `external`), and its requirements.
    pub fn sparse_buffer(
        &self,
        size: u64,
        external: bool,
    ) -> Result<(vk::Buffer, vk::MemoryRequirements), vk::Result> {
        self.new_transfer_buffer(size, external, vk::BufferCreateFlags::SPARSE_BINDING)
    }

    /// `vkQueueBindSparse` of `size` bytes of `buffer` at 0 to `memory` at
    /// 0, signalling `fence`.
    pub fn bind_sparse_buffer(
        &self,
        queue: vk::Queue,
        buffer: vk::Buffer,
        memory: vk::DeviceMemory,
        size: u64,
        fence: vk::Fence,
    ) -> vk::Result {
        let Some(f) = self.fns.queue_bind_sparse else { return MISSING };
        let binds =
            [vk::SparseMemoryBind::default().resource_offset(0).size(size).memory(memory).memory_offset(0)];
        let buffer_binds = [vk::SparseBufferMemoryBindInfo::default().buffer(buffer).binds(&binds)];
        let info = [vk::BindSparseInfo::default().buffer_binds(&buffer_binds)];
        crate::lock_order::assert_unlocked("vkQueueBindSparse");
        // SAFETY: see the module doc; a queue of a family with
        // SPARSE_BINDING (the caller chose it), a sparse buffer and memory
        // of this device, arrays that live across the call.
        unsafe { f(queue, 1, info.as_ptr(), fence) }
    }

    /// Records into `cb` a copy of `size` bytes from `src` to `dst` and a
    /// barrier making the copy's writes visible to host reads.
    pub fn record_copy_for_host(
        &self,
        cb: vk::CommandBuffer,
        src: vk::Buffer,
        dst: vk::Buffer,
        size: u64,
    ) -> vk::Result {
        let (Some(copy), Some(end)) = (self.fns.cmd_copy_buffer, self.fns.end_command_buffer) else {
            return MISSING;
        };
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        let r = self.begin_command_buffer(cb, &begin);
        if r != vk::Result::SUCCESS {
            return r;
        }
        let region = [vk::BufferCopy::default().size(size)];
        crate::lock_order::assert_unlocked("vkCmdCopyBuffer");
        // SAFETY: see the module doc; a recording command buffer and two
        // bound buffers of at least `size` bytes.
        unsafe { copy(cb, src, dst, 1, region.as_ptr()) };
        let to_host = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        self.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &to_host,
            &[],
            &[],
        );
        crate::lock_order::assert_unlocked("vkEndCommandBuffer");
        // SAFETY: the command buffer is recording.
        unsafe { end(cb) }
    }

    /// The first `size` bytes of host-visible, host-coherent `memory`
    /// (mapped, copied, unmapped).
    pub fn read_mapped(&self, memory: vk::DeviceMemory, size: u64) -> Result<Vec<u8>, vk::Result> {
        let mut data = std::ptr::null_mut();
        let r = self.map_memory(memory, 0, size, vk::MemoryMapFlags::empty(), &mut data);
        if r != vk::Result::SUCCESS {
            return Err(r);
        }
        if data.is_null() {
            self.unmap_memory(memory);
            return Err(vk::Result::ERROR_MEMORY_MAP_FAILED);
        }
        // SAFETY: a successful vkMapMemory of `size` bytes; nothing writes
        // the memory while it is read (the copy that wrote it was waited for).
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec();
        self.unmap_memory(memory);
        Ok(bytes)
    }
}
