//! Per-device state: the next layer's device functions, safe wrappers that
//! call down the chain, and the hooks' own state for the device.
//!
//! Every wrapper's safety rests on the same two facts: the handles and
//! structures it passes on came from the application through a trampoline,
//! which must pass valid ones (Vulkan valid usage), and the function pointer
//! was returned by the next layer for this device and this exact name.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use ash::vk;

use super::fn_table::fn_table;
use super::loader_abi::PfnSetDeviceLoaderData;
use super::off_thread::{SyncFdExporter, TimelineSignaller};
use super::state::DeviceState;

fn_table!(DeviceFns, vk::Device, vk::PFN_vkGetDeviceProcAddr {
    destroy_device: PFN_vkDestroyDevice = c"vkDestroyDevice";
    get_device_queue: PFN_vkGetDeviceQueue = c"vkGetDeviceQueue";
    get_device_queue2: PFN_vkGetDeviceQueue2 = c"vkGetDeviceQueue2";
    allocate_memory: PFN_vkAllocateMemory = c"vkAllocateMemory";
    free_memory: PFN_vkFreeMemory = c"vkFreeMemory";
    get_memory_fd: PFN_vkGetMemoryFdKHR = c"vkGetMemoryFdKHR";
    bind_buffer_memory: PFN_vkBindBufferMemory = c"vkBindBufferMemory";
    bind_image_memory: PFN_vkBindImageMemory = c"vkBindImageMemory";
    bind_buffer_memory2: PFN_vkBindBufferMemory2 = c"vkBindBufferMemory2" | c"vkBindBufferMemory2KHR";
    bind_image_memory2: PFN_vkBindImageMemory2 = c"vkBindImageMemory2" | c"vkBindImageMemory2KHR";
    destroy_buffer: PFN_vkDestroyBuffer = c"vkDestroyBuffer";
    destroy_image: PFN_vkDestroyImage = c"vkDestroyImage";
    create_image: PFN_vkCreateImage = c"vkCreateImage";
    get_image_memory_requirements2: PFN_vkGetImageMemoryRequirements2 = c"vkGetImageMemoryRequirements2" | c"vkGetImageMemoryRequirements2KHR";
    get_image_subresource_layout: PFN_vkGetImageSubresourceLayout = c"vkGetImageSubresourceLayout";
    allocate_command_buffers: PFN_vkAllocateCommandBuffers = c"vkAllocateCommandBuffers";
    free_command_buffers: PFN_vkFreeCommandBuffers = c"vkFreeCommandBuffers";
    begin_command_buffer: PFN_vkBeginCommandBuffer = c"vkBeginCommandBuffer";
    reset_command_buffer: PFN_vkResetCommandBuffer = c"vkResetCommandBuffer";
    reset_command_pool: PFN_vkResetCommandPool = c"vkResetCommandPool";
    destroy_command_pool: PFN_vkDestroyCommandPool = c"vkDestroyCommandPool";
    cmd_pipeline_barrier: PFN_vkCmdPipelineBarrier = c"vkCmdPipelineBarrier";
    cmd_pipeline_barrier2: PFN_vkCmdPipelineBarrier2 = c"vkCmdPipelineBarrier2" | c"vkCmdPipelineBarrier2KHR";
    queue_submit: PFN_vkQueueSubmit = c"vkQueueSubmit";
    queue_submit2: PFN_vkQueueSubmit2 = c"vkQueueSubmit2" | c"vkQueueSubmit2KHR";
    get_memory_fd_properties: PFN_vkGetMemoryFdPropertiesKHR = c"vkGetMemoryFdPropertiesKHR";
    create_semaphore: PFN_vkCreateSemaphore = c"vkCreateSemaphore";
    destroy_semaphore: PFN_vkDestroySemaphore = c"vkDestroySemaphore";
    get_semaphore_fd: PFN_vkGetSemaphoreFdKHR = c"vkGetSemaphoreFdKHR";
    import_semaphore_fd: PFN_vkImportSemaphoreFdKHR = c"vkImportSemaphoreFdKHR";
    create_fence: PFN_vkCreateFence = c"vkCreateFence";
    destroy_fence: PFN_vkDestroyFence = c"vkDestroyFence";
    wait_for_fences: PFN_vkWaitForFences = c"vkWaitForFences";
    get_semaphore_counter_value: PFN_vkGetSemaphoreCounterValue = c"vkGetSemaphoreCounterValue" | c"vkGetSemaphoreCounterValueKHR";
    signal_semaphore: PFN_vkSignalSemaphore = c"vkSignalSemaphore" | c"vkSignalSemaphoreKHR";
    wait_semaphores: PFN_vkWaitSemaphores = c"vkWaitSemaphores" | c"vkWaitSemaphoresKHR";
    create_buffer: PFN_vkCreateBuffer = c"vkCreateBuffer";
    get_buffer_memory_requirements: PFN_vkGetBufferMemoryRequirements = c"vkGetBufferMemoryRequirements";
    get_buffer_memory_requirements2: PFN_vkGetBufferMemoryRequirements2 = c"vkGetBufferMemoryRequirements2" | c"vkGetBufferMemoryRequirements2KHR";
    create_command_pool: PFN_vkCreateCommandPool = c"vkCreateCommandPool";
    queue_bind_sparse: PFN_vkQueueBindSparse = c"vkQueueBindSparse";
    end_command_buffer: PFN_vkEndCommandBuffer = c"vkEndCommandBuffer";
    cmd_copy_buffer: PFN_vkCmdCopyBuffer = c"vkCmdCopyBuffer";
    map_memory: PFN_vkMapMemory = c"vkMapMemory";
    unmap_memory: PFN_vkUnmapMemory = c"vkUnmapMemory";
    map_memory2: PFN_vkMapMemory2KHR = c"vkMapMemory2KHR" | c"vkMapMemory2";
    unmap_memory2: PFN_vkUnmapMemory2KHR = c"vkUnmapMemory2KHR" | c"vkUnmapMemory2";
    flush_mapped_memory_ranges: PFN_vkFlushMappedMemoryRanges = c"vkFlushMappedMemoryRanges";
    invalidate_mapped_memory_ranges: PFN_vkInvalidateMappedMemoryRanges = c"vkInvalidateMappedMemoryRanges";
    cmd_execute_commands: PFN_vkCmdExecuteCommands = c"vkCmdExecuteCommands";
    set_debug_utils_object_name: PFN_vkSetDebugUtilsObjectNameEXT = c"vkSetDebugUtilsObjectNameEXT";
});

/// One `VkDevice` created through this layer.
#[derive(Debug)]
pub struct Device {
    pub handle: vk::Device,
    pub physical: vk::PhysicalDevice,
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    /// The loader's callback that makes a dispatchable object the layer
    /// creates itself (a command buffer) callable through the chain.
    pub set_loader_data: Option<PfnSetDeviceLoaderData>,
    pub fns: DeviceFns,
    /// Functions watched only for hazard reports.
    pub usage_fns: super::usage_fns::UsageFns,
    pub state: DeviceState,
}

/// Hands `fd` to a Vulkan call that takes ownership on success. On failure
/// the specification leaves the fd with the caller, but some drivers
/// (lavapipe 25.0) close it anyway: it is closed here only if it is still
/// open and still names the same file, so nothing leaks and nothing is
/// closed twice.
pub fn hand_over_fd(fd: OwnedFd, call: impl FnOnce(RawFd) -> vk::Result) -> vk::Result {
    let before = crate::sys::dma_buf::identity(fd.as_fd()).ok();
    let raw = fd.into_raw_fd();
    let result = call(raw);
    if result != vk::Result::SUCCESS {
        // SAFETY: `raw` is only borrowed for fstat while we check whether it
        // is still the file we passed; nothing else in this process can
        // have been given this number while the call ran with it.
        let now = crate::sys::dma_buf::identity(unsafe { BorrowedFd::borrow_raw(raw) }).ok();
        if before.is_some() && now == before {
            // SAFETY: still open and still ours (the call failed and did not
            // take it), so we own it again and close it.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
    result
}

fn opt<T>(p: Option<&T>) -> *const T {
    p.map_or(std::ptr::null(), |r| r)
}

/// What a wrapper returns when the next layer lacks the function (it can't
/// happen for functions the layer exposes, which it only does when the next
/// layer has them; this keeps a bad chain from crashing the application).
const MISSING: vk::Result = vk::Result::ERROR_INITIALIZATION_FAILED;

impl Device {
    /// Builds the state for a freshly created device.
    ///
    /// # Safety
    /// `next_gdpa` must be the next layer's `vkGetDeviceProcAddr` and
    /// `handle` the device it just created.
    pub unsafe fn new(
        handle: vk::Device,
        physical: vk::PhysicalDevice,
        next_gdpa: vk::PFN_vkGetDeviceProcAddr,
        set_loader_data: Option<PfnSetDeviceLoaderData>,
        state: DeviceState,
    ) -> Self {
        // SAFETY: forwarded from this function's contract.
        let fns = unsafe { DeviceFns::load(next_gdpa, handle) };
        // Only a device that watches for hazards calls these.
        let usage_fns = if state.hazards.is_some() {
            // SAFETY: as above.
            unsafe { super::usage_fns::UsageFns::load(next_gdpa, handle) }
        } else {
            super::usage_fns::UsageFns::none()
        };
        Device { handle, physical, next_gdpa, set_loader_data, fns, usage_fns, state }
    }

    /// The next layer's pointer for `name` (null when it has none).
    pub fn next_proc_addr(&self, name: &std::ffi::CStr) -> vk::PFN_vkVoidFunction {
        // SAFETY: `handle` is live while this state is in the table, and
        // `name` is NUL-terminated.
        unsafe { (self.next_gdpa)(self.handle, name.as_ptr()) }
    }

    pub fn destroy_device(&self, allocator: Option<&vk::AllocationCallbacks<'_>>) {
        if let Some(f) = self.fns.destroy_device {
            crate::lock_order::assert_unlocked("destroy_device");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, opt(allocator)) }
        }
    }

    pub fn get_device_queue(&self, family: u32, index: u32, queue: &mut vk::Queue) {
        if let Some(f) = self.fns.get_device_queue {
            crate::lock_order::assert_unlocked("get_device_queue");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, family, index, queue) }
        }
    }

    pub fn get_device_queue2(&self, info: &vk::DeviceQueueInfo2<'_>, queue: &mut vk::Queue) {
        if let Some(f) = self.fns.get_device_queue2 {
            crate::lock_order::assert_unlocked("get_device_queue2");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, info, queue) }
        }
    }

    pub fn allocate_memory(
        &self,
        info: &vk::MemoryAllocateInfo<'_>,
        allocator: Option<&vk::AllocationCallbacks<'_>>,
        memory: &mut vk::DeviceMemory,
    ) -> vk::Result {
        let Some(f) = self.fns.allocate_memory else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("allocate_memory");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info, opt(allocator), memory) }
    }

    pub fn free_memory(&self, memory: vk::DeviceMemory, allocator: Option<&vk::AllocationCallbacks<'_>>) {
        if let Some(f) = self.fns.free_memory {
            crate::lock_order::assert_unlocked("free_memory");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, memory, opt(allocator)) }
        }
    }

    pub fn map_memory(
        &self,
        memory: vk::DeviceMemory,
        offset: u64,
        size: u64,
        flags: vk::MemoryMapFlags,
        data: &mut *mut std::ffi::c_void,
    ) -> vk::Result {
        let Some(f) = self.fns.map_memory else { return MISSING };
        crate::lock_order::assert_unlocked("map_memory");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, memory, offset, size, flags, data) }
    }

    pub fn unmap_memory(&self, memory: vk::DeviceMemory) {
        if let Some(f) = self.fns.unmap_memory {
            crate::lock_order::assert_unlocked("unmap_memory");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, memory) }
        }
    }

    pub fn map_memory2(
        &self,
        info: &vk::MemoryMapInfoKHR<'_>,
        data: &mut *mut std::ffi::c_void,
    ) -> vk::Result {
        let Some(f) = self.fns.map_memory2 else { return MISSING };
        crate::lock_order::assert_unlocked("map_memory2");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info, data) }
    }

    pub fn unmap_memory2(&self, info: &vk::MemoryUnmapInfoKHR<'_>) -> vk::Result {
        let Some(f) = self.fns.unmap_memory2 else { return MISSING };
        crate::lock_order::assert_unlocked("unmap_memory2");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info) }
    }

    pub fn flush_mapped_memory_ranges(&self, ranges: &[vk::MappedMemoryRange<'_>]) -> vk::Result {
        let Some(f) = self.fns.flush_mapped_memory_ranges else { return MISSING };
        crate::lock_order::assert_unlocked("flush_mapped_memory_ranges");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(self.handle, ranges.len() as u32, ranges.as_ptr()) }
    }

    pub fn invalidate_mapped_memory_ranges(&self, ranges: &[vk::MappedMemoryRange<'_>]) -> vk::Result {
        let Some(f) = self.fns.invalidate_mapped_memory_ranges else { return MISSING };
        crate::lock_order::assert_unlocked("invalidate_mapped_memory_ranges");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(self.handle, ranges.len() as u32, ranges.as_ptr()) }
    }

    #[inline]
    /// `vkSetDebugUtilsObjectNameEXT`.
    pub fn set_debug_utils_object_name(&self, info: &vk::DebugUtilsObjectNameInfoEXT<'_>) -> vk::Result {
        let Some(f) = self.fns.set_debug_utils_object_name else {
            return vk::Result::ERROR_EXTENSION_NOT_PRESENT;
        };
        crate::lock_order::assert_unlocked("set_debug_utils_object_name");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info) }
    }

    pub fn cmd_execute_commands(&self, cb: vk::CommandBuffer, secondaries: &[vk::CommandBuffer]) {
        if let Some(f) = self.fns.cmd_execute_commands {
            crate::lock_order::assert_unlocked("cmd_execute_commands");
            // SAFETY: see the module doc; the count is the slice's length.
            unsafe { f(cb, secondaries.len() as u32, secondaries.as_ptr()) }
        }
    }

    /// Whether the driver requires `buffer` to have memory dedicated to it
    /// (`VkMemoryDedicatedRequirements`); `false` when it cannot be asked.
    pub fn buffer_requires_dedicated(&self, buffer: vk::Buffer) -> bool {
        let Some(f) = self.fns.get_buffer_memory_requirements2 else { return false };
        let info = vk::BufferMemoryRequirementsInfo2::default().buffer(buffer);
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut reqs = vk::MemoryRequirements2 {
            p_next: (&mut dedicated as *mut vk::MemoryDedicatedRequirements<'_>).cast(),
            ..Default::default()
        };
        crate::lock_order::assert_unlocked("buffer_requires_dedicated");
        // SAFETY: see the module doc; the application's buffer and a valid
        // chain of out-structures that live across the call.
        unsafe { f(self.handle, &info, &mut reqs) };
        dedicated.requires_dedicated_allocation == vk::TRUE
    }

    pub fn get_memory_fd(&self, info: &vk::MemoryGetFdInfoKHR<'_>, fd: &mut i32) -> vk::Result {
        let Some(f) = self.fns.get_memory_fd else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("get_memory_fd");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info, fd) }
    }

    pub fn bind_buffer_memory(
        &self,
        buffer: vk::Buffer,
        memory: vk::DeviceMemory,
        offset: u64,
    ) -> vk::Result {
        let Some(f) = self.fns.bind_buffer_memory else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("bind_buffer_memory");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, buffer, memory, offset) }
    }

    pub fn bind_image_memory(&self, image: vk::Image, memory: vk::DeviceMemory, offset: u64) -> vk::Result {
        let Some(f) = self.fns.bind_image_memory else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("bind_image_memory");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, image, memory, offset) }
    }

    pub fn bind_buffer_memory2(&self, infos: &[vk::BindBufferMemoryInfo<'_>]) -> vk::Result {
        let Some(f) = self.fns.bind_buffer_memory2 else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("bind_buffer_memory2");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(self.handle, infos.len() as u32, infos.as_ptr()) }
    }

    pub fn bind_image_memory2(&self, infos: &[vk::BindImageMemoryInfo<'_>]) -> vk::Result {
        let Some(f) = self.fns.bind_image_memory2 else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("bind_image_memory2");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(self.handle, infos.len() as u32, infos.as_ptr()) }
    }

    pub fn destroy_buffer(&self, buffer: vk::Buffer, allocator: Option<&vk::AllocationCallbacks<'_>>) {
        if let Some(f) = self.fns.destroy_buffer {
            crate::lock_order::assert_unlocked("destroy_buffer");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, buffer, opt(allocator)) }
        }
    }

    pub fn destroy_image(&self, image: vk::Image, allocator: Option<&vk::AllocationCallbacks<'_>>) {
        if let Some(f) = self.fns.destroy_image {
            crate::lock_order::assert_unlocked("destroy_image");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, image, opt(allocator)) }
        }
    }

    /// `out` must have room for `info.command_buffer_count` handles.
    pub fn allocate_command_buffers(
        &self,
        info: &vk::CommandBufferAllocateInfo<'_>,
        out: &mut [vk::CommandBuffer],
    ) -> vk::Result {
        let Some(f) = self.fns.allocate_command_buffers else {
            return MISSING;
        };
        if out.len() < info.command_buffer_count as usize {
            return vk::Result::ERROR_UNKNOWN;
        }
        crate::lock_order::assert_unlocked("allocate_command_buffers");
        // SAFETY: see the module doc; `out` holds `command_buffer_count`
        // handles (checked above).
        unsafe { f(self.handle, info, out.as_mut_ptr()) }
    }

    pub fn free_command_buffers(&self, pool: vk::CommandPool, buffers: &[vk::CommandBuffer]) {
        if let Some(f) = self.fns.free_command_buffers {
            crate::lock_order::assert_unlocked("free_command_buffers");
            // SAFETY: see the module doc; the count is the slice's length.
            unsafe { f(self.handle, pool, buffers.len() as u32, buffers.as_ptr()) }
        }
    }

    pub fn begin_command_buffer(
        &self,
        cb: vk::CommandBuffer,
        info: &vk::CommandBufferBeginInfo<'_>,
    ) -> vk::Result {
        let Some(f) = self.fns.begin_command_buffer else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("begin_command_buffer");
        // SAFETY: see the module doc.
        unsafe { f(cb, info) }
    }

    pub fn reset_command_buffer(
        &self,
        cb: vk::CommandBuffer,
        flags: vk::CommandBufferResetFlags,
    ) -> vk::Result {
        let Some(f) = self.fns.reset_command_buffer else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("reset_command_buffer");
        // SAFETY: see the module doc.
        unsafe { f(cb, flags) }
    }

    pub fn reset_command_pool(&self, pool: vk::CommandPool, flags: vk::CommandPoolResetFlags) -> vk::Result {
        let Some(f) = self.fns.reset_command_pool else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("reset_command_pool");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, pool, flags) }
    }

    pub fn destroy_command_pool(
        &self,
        pool: vk::CommandPool,
        allocator: Option<&vk::AllocationCallbacks<'_>>,
    ) {
        if let Some(f) = self.fns.destroy_command_pool {
            crate::lock_order::assert_unlocked("destroy_command_pool");
            // SAFETY: see the module doc.
            unsafe { f(self.handle, pool, opt(allocator)) }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn cmd_pipeline_barrier(
        &self,
        cb: vk::CommandBuffer,
        src_stage: vk::PipelineStageFlags,
        dst_stage: vk::PipelineStageFlags,
        flags: vk::DependencyFlags,
        memory: &[vk::MemoryBarrier<'_>],
        buffers: &[vk::BufferMemoryBarrier<'_>],
        images: &[vk::ImageMemoryBarrier<'_>],
    ) {
        if let Some(f) = self.fns.cmd_pipeline_barrier {
            crate::lock_order::assert_unlocked("cmd_pipeline_barrier");
            // SAFETY: see the module doc; each count is its slice's length.
            unsafe {
                f(
                    cb,
                    src_stage,
                    dst_stage,
                    flags,
                    memory.len() as u32,
                    memory.as_ptr(),
                    buffers.len() as u32,
                    buffers.as_ptr(),
                    images.len() as u32,
                    images.as_ptr(),
                )
            }
        }
    }

    #[inline]
    pub fn cmd_pipeline_barrier2(&self, cb: vk::CommandBuffer, info: &vk::DependencyInfo<'_>) {
        if let Some(f) = self.fns.cmd_pipeline_barrier2 {
            crate::lock_order::assert_unlocked("cmd_pipeline_barrier2");
            // SAFETY: see the module doc.
            unsafe { f(cb, info) }
        }
    }

    pub fn get_memory_fd_properties(
        &self,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
        fd: i32,
        props: &mut vk::MemoryFdPropertiesKHR<'_>,
    ) -> vk::Result {
        let Some(f) = self.fns.get_memory_fd_properties else { return MISSING };
        crate::lock_order::assert_unlocked("get_memory_fd_properties");
        // SAFETY: see the module doc; `fd` is only inspected, not consumed.
        unsafe { f(self.handle, handle_type, fd, props) }
    }

    /// `vkGetMemoryFdKHR` for the layer's own use: the new fd, owned.
    pub fn export_memory_fd(
        &self,
        memory: vk::DeviceMemory,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
    ) -> Result<OwnedFd, vk::Result> {
        let info = vk::MemoryGetFdInfoKHR::default().memory(memory).handle_type(handle_type);
        let mut fd = -1;
        match self.get_memory_fd(&info, &mut fd) {
            // SAFETY: a successful vkGetMemoryFdKHR returns a new fd that the
            // caller owns.
            vk::Result::SUCCESS if fd >= 0 => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            vk::Result::SUCCESS => Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE),
            e => Err(e),
        }
    }

    /// Allocates memory imported from `fd` (consumed on success, closed on
    /// failure: see [`hand_over_fd`]).
    pub fn import_memory_fd(
        &self,
        size: u64,
        memory_type: u32,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
        fd: OwnedFd,
        memory: &mut vk::DeviceMemory,
    ) -> vk::Result {
        hand_over_fd(fd, |raw| {
            let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(handle_type).fd(raw);
            let info = vk::MemoryAllocateInfo::default()
                .allocation_size(size)
                .memory_type_index(memory_type)
                .push_next(&mut import);
            self.allocate_memory(&info, None, memory)
        })
    }

    /// `vkGetSemaphoreFdKHR(SYNC_FD)`: `None` when the driver returns -1
    /// (already signalled, which the specification allows).
    pub fn export_sync_fd(&self, semaphore: vk::Semaphore) -> Result<Option<OwnedFd>, vk::Result> {
        let info = vk::SemaphoreGetFdInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut fd = -1;
        match self.get_semaphore_fd(&info, &mut fd) {
            // SAFETY: a successful vkGetSemaphoreFdKHR returns a new fd (or
            // -1) that the caller owns.
            vk::Result::SUCCESS => Ok((fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })),
            e => Err(e),
        }
    }

    /// Imports a sync_file (or `None`: already signalled) into `semaphore`
    /// temporarily, for its next wait.
    pub fn import_sync_fd(&self, semaphore: vk::Semaphore, fd: Option<OwnedFd>) -> vk::Result {
        let import = |raw: RawFd| {
            let info = vk::ImportSemaphoreFdInfoKHR::default()
                .semaphore(semaphore)
                .flags(vk::SemaphoreImportFlags::TEMPORARY)
                .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
                .fd(raw);
            self.import_semaphore_fd(&info)
        };
        match fd {
            Some(fd) => hand_over_fd(fd, import),
            None => import(-1),
        }
    }

    pub fn create_semaphore(
        &self,
        info: &vk::SemaphoreCreateInfo<'_>,
        out: &mut vk::Semaphore,
    ) -> vk::Result {
        let Some(f) = self.fns.create_semaphore else { return MISSING };
        crate::lock_order::assert_unlocked("create_semaphore");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info, std::ptr::null(), out) }
    }

    pub fn destroy_semaphore(&self, semaphore: vk::Semaphore) {
        if let Some(f) = self.fns.destroy_semaphore {
            crate::lock_order::assert_unlocked("destroy_semaphore");
            // SAFETY: see the module doc; the layer's own semaphore, unused.
            unsafe { f(self.handle, semaphore, std::ptr::null()) }
        }
    }

    pub fn get_semaphore_fd(&self, info: &vk::SemaphoreGetFdInfoKHR<'_>, fd: &mut i32) -> vk::Result {
        let Some(f) = self.fns.get_semaphore_fd else { return MISSING };
        crate::lock_order::assert_unlocked("get_semaphore_fd");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info, fd) }
    }

    /// Imports a semaphore payload; on success the driver owns `info.fd`.
    pub fn import_semaphore_fd(&self, info: &vk::ImportSemaphoreFdInfoKHR<'_>) -> vk::Result {
        let Some(f) = self.fns.import_semaphore_fd else { return MISSING };
        crate::lock_order::assert_unlocked("import_semaphore_fd");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, info) }
    }

    /// A timeline semaphore starting at `initial`.
    pub fn create_timeline(&self, initial: u64) -> Result<vk::Semaphore, vk::Result> {
        let mut kind = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(initial);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
        let mut s = vk::Semaphore::null();
        match self.create_semaphore(&info, &mut s) {
            vk::Result::SUCCESS => Ok(s),
            e => Err(e),
        }
    }

    /// `vkGetSemaphoreCounterValue`.
    pub fn timeline_value(&self, semaphore: vk::Semaphore) -> Result<u64, vk::Result> {
        let Some(f) = self.fns.get_semaphore_counter_value else { return Err(MISSING) };
        let mut v = 0;
        crate::lock_order::assert_unlocked("timeline_value");
        // SAFETY: see the module doc; the layer's own timeline semaphore.
        match unsafe { f(self.handle, semaphore, &mut v) } {
            vk::Result::SUCCESS => Ok(v),
            e => Err(e),
        }
    }

    /// A handle for exporting SYNC_FD fences from the publisher thread.
    pub fn sync_fd_exporter(&self) -> Option<SyncFdExporter> {
        Some(SyncFdExporter { device: self.handle, get_fd: self.fns.get_semaphore_fd? })
    }

    /// A handle for signalling timelines from the waiter thread.
    pub fn signaller(&self) -> Option<TimelineSignaller> {
        Some(TimelineSignaller { device: self.handle, signal: self.fns.signal_semaphore? })
    }

    /// `vkSignalSemaphore` from the host.
    pub fn signal_timeline(&self, semaphore: vk::Semaphore, value: u64) -> vk::Result {
        let Some(f) = self.fns.signal_semaphore else { return MISSING };
        let info = vk::SemaphoreSignalInfo::default().semaphore(semaphore).value(value);
        crate::lock_order::assert_unlocked("signal_timeline");
        // SAFETY: see the module doc; the layer's own timeline semaphore.
        unsafe { f(self.handle, &info) }
    }

    /// `vkWaitSemaphores` on one timeline value, up to `timeout_ns`.
    pub fn wait_timeline(&self, semaphore: vk::Semaphore, value: u64, timeout_ns: u64) -> vk::Result {
        let Some(f) = self.fns.wait_semaphores else { return MISSING };
        let semaphores = [semaphore];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default().semaphores(&semaphores).values(&values);
        crate::lock_order::assert_unlocked("wait_timeline");
        // SAFETY: see the module doc; the layer's own timeline semaphore.
        unsafe { f(self.handle, &info, timeout_ns) }
    }

    pub fn create_fence(&self, out: &mut vk::Fence) -> vk::Result {
        let Some(f) = self.fns.create_fence else { return MISSING };
        let info = vk::FenceCreateInfo::default();
        crate::lock_order::assert_unlocked("create_fence");
        // SAFETY: see the module doc.
        unsafe { f(self.handle, &info, std::ptr::null(), out) }
    }

    pub fn destroy_fence(&self, fence: vk::Fence) {
        if let Some(f) = self.fns.destroy_fence {
            crate::lock_order::assert_unlocked("destroy_fence");
            // SAFETY: see the module doc; the layer's own fence, unused.
            unsafe { f(self.handle, fence, std::ptr::null()) }
        }
    }

    pub fn wait_for_fence(&self, fence: vk::Fence, timeout_ns: u64) -> vk::Result {
        let Some(f) = self.fns.wait_for_fences else { return MISSING };
        crate::lock_order::assert_unlocked("wait_for_fence");
        // SAFETY: see the module doc; one fence.
        unsafe { f(self.handle, 1, &fence, vk::TRUE, timeout_ns) }
    }

    #[inline]
    pub fn queue_submit(
        &self,
        queue: vk::Queue,
        submits: &[vk::SubmitInfo<'_>],
        fence: vk::Fence,
    ) -> vk::Result {
        let Some(f) = self.fns.queue_submit else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("queue_submit");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(queue, submits.len() as u32, submits.as_ptr(), fence) }
    }

    #[inline]
    pub fn queue_submit2(
        &self,
        queue: vk::Queue,
        submits: &[vk::SubmitInfo2<'_>],
        fence: vk::Fence,
    ) -> vk::Result {
        let Some(f) = self.fns.queue_submit2 else {
            return MISSING;
        };
        crate::lock_order::assert_unlocked("queue_submit2");
        // SAFETY: see the module doc; the count is the slice's length.
        unsafe { f(queue, submits.len() as u32, submits.as_ptr(), fence) }
    }
}
