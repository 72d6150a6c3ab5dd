//! Safe wrappers for the objects the layer creates for itself on an
//! application's device: transfer buffers over whole memory objects, a
//! command pool per queue family, command buffers (made dispatchable through
//! the loader's `vkSetDeviceLoaderData`), and the copies recorded in them.
//! The safety argument is the module doc of [`super::device`]: every handle
//! passed is one the layer created on this device, or the application's,
//! valid per Vulkan usage.

use ash::vk;

use super::Device;

const MISSING: vk::Result = vk::Result::ERROR_INITIALIZATION_FAILED;

impl Device {
    /// An unbound transfer buffer of `size` bytes, created with `flags`
    /// (the caller checked the features they need), and its requirements.
    pub(super) fn new_transfer_buffer(
        &self,
        size: u64,
        external: bool,
        flags: vk::BufferCreateFlags,
    ) -> Result<(vk::Buffer, vk::MemoryRequirements), vk::Result> {
        let (Some(create), Some(reqs)) = (self.fns.create_buffer, self.fns.get_buffer_memory_requirements)
        else {
            return Err(MISSING);
        };
        let mut ext = vk::ExternalMemoryBufferCreateInfo::default()
            .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let mut info = vk::BufferCreateInfo::default()
            .size(size)
            .flags(flags)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST);
        if external {
            info = info.push_next(&mut ext);
        }
        let mut buffer = vk::Buffer::null();
        crate::lock_order::assert_unlocked("new_transfer_buffer");
        // SAFETY: see the module doc; a valid create info.
        let r = unsafe { create(self.handle, &info, std::ptr::null(), &mut buffer) };
        if r != vk::Result::SUCCESS {
            return Err(r);
        }
        let mut req = vk::MemoryRequirements::default();
        crate::lock_order::assert_unlocked("new_transfer_buffer");
        // SAFETY: the buffer just created.
        unsafe { reqs(self.handle, buffer, &mut req) };
        Ok((buffer, req))
    }

    /// A buffer covering `size` bytes for transfers, bound to `memory` (of
    /// type `memory_type`) at 0. `external` marks it as living in dma-buf
    /// memory (imported or exportable).
    pub fn transfer_buffer(
        &self,
        memory: vk::DeviceMemory,
        memory_type: u32,
        size: u64,
        external: bool,
    ) -> Result<vk::Buffer, vk::Result> {
        let (buffer, req) = self.new_transfer_buffer(size, external, vk::BufferCreateFlags::empty())?;
        // VUID-vkBindBufferMemory-memory-01035: the type must suit the buffer.
        if req.size > size || memory_type >= 32 || req.memory_type_bits & (1 << memory_type) == 0 {
            self.destroy_buffer(buffer, None);
            return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
        }
        let r = self.bind_buffer_memory(buffer, memory, 0);
        if r != vk::Result::SUCCESS {
            self.destroy_buffer(buffer, None);
            return Err(r);
        }
        Ok(buffer)
    }

    /// A resettable command pool for the layer's own command buffers.
    pub fn layer_command_pool(&self, family: u32) -> Result<vk::CommandPool, vk::Result> {
        let Some(f) = self.fns.create_command_pool else { return Err(MISSING) };
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        let mut pool = vk::CommandPool::null();
        crate::lock_order::assert_unlocked("layer_command_pool");
        // SAFETY: see the module doc.
        match unsafe { f(self.handle, &info, std::ptr::null(), &mut pool) } {
            vk::Result::SUCCESS => Ok(pool),
            e => Err(e),
        }
    }

    /// Makes a dispatchable object the layer got from below (a queue, a
    /// command buffer) callable through the chain: the loader's
    /// `vkSetDeviceLoaderData` writes its dispatch pointer.
    pub fn make_dispatchable(&self, object: u64) -> Result<(), vk::Result> {
        let set_loader_data = self.set_loader_data.ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
        if object == 0 {
            return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
        }
        // SAFETY: the loader's callback for dispatchable objects of this
        // device that the layer got from below; `object` is one.
        match unsafe { set_loader_data(self.handle, object as *mut std::ffi::c_void) } {
            vk::Result::SUCCESS => Ok(()),
            e => Err(e),
        }
    }

    /// A primary command buffer from `pool`, made dispatchable through the
    /// loader (a layer's own dispatchable objects need it).
    pub fn layer_command_buffer(&self, pool: vk::CommandPool) -> Result<vk::CommandBuffer, vk::Result> {
        let info = vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1);
        let mut cb = [vk::CommandBuffer::null()];
        let r = self.allocate_command_buffers(&info, &mut cb);
        if r != vk::Result::SUCCESS {
            return Err(r);
        }
        if let Err(r) = self.make_dispatchable(vk::Handle::as_raw(cb[0])) {
            self.free_command_buffers(pool, &cb);
            return Err(r);
        }
        Ok(cb[0])
    }

    /// Records, into `cb` (resubmittable while pending), `body` between
    /// two full memory barriers (all stages, all accesses), which order it
    /// after everything earlier in submission order and before everything
    /// later. With an empty body it is a *gate*: a layer batch's semaphore
    /// waits block its barrier, which then orders everything after it.
    fn record_between_full_barriers(&self, cb: vk::CommandBuffer, body: impl FnOnce()) -> vk::Result {
        let Some(end) = self.fns.end_command_buffer else { return MISSING };
        let begin =
            vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE);
        let r = self.begin_command_buffer(cb, &begin);
        if r != vk::Result::SUCCESS {
            return r;
        }
        let all = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
            .dst_access_mask(vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE)];
        let stage = vk::PipelineStageFlags::ALL_COMMANDS;
        self.cmd_pipeline_barrier(cb, stage, stage, vk::DependencyFlags::empty(), &all, &[], &[]);
        body();
        self.cmd_pipeline_barrier(cb, stage, stage, vk::DependencyFlags::empty(), &all, &[], &[]);
        crate::lock_order::assert_unlocked("vkEndCommandBuffer");
        // SAFETY: the command buffer is recording.
        unsafe { end(cb) }
    }

    /// Records, into `cb`, a copy of the bytes in `extent` from `src` to `dst` between
    /// full barriers.
    pub fn record_copy(
        &self,
        cb: vk::CommandBuffer,
        src: vk::Buffer,
        dst: vk::Buffer,
        extent: crate::registry::Span,
    ) -> vk::Result {
        let Some(copy) = self.fns.cmd_copy_buffer else { return MISSING };
        self.record_between_full_barriers(cb, || {
            let region = [vk::BufferCopy::default()
                .src_offset(extent.offset)
                .dst_offset(extent.offset)
                .size(extent.size)];
            crate::lock_order::assert_unlocked("vkCmdCopyBuffer");
            // SAFETY: see the module doc; a recording command buffer and two
            // transfer buffers holding `extent` (the caller clamps it to the memory).
            unsafe { copy(cb, src, dst, 1, region.as_ptr()) };
        })
    }

    /// Records the gate (see [`Self::record_between_full_barriers`]).
    pub fn record_gate(&self, cb: vk::CommandBuffer) -> vk::Result {
        self.record_between_full_barriers(cb, || {})
    }
}
