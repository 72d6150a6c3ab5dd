//! Graphics for the demo: a shared colour image (exported by one device,
//! imported by another), the producer's graphics pipeline that paints a
//! frame into it, and the consumer's compute pass that samples it.
//!
//! * [`shared_image`]: the image, as a DRM-format-modifier dma-buf where
//!   the device can (or an opaque fd), exported and imported;
//! * [`paint`]: render pass, framebuffer and graphics pipeline of
//!   `shaders/scene.{vert,frag}`;
//! * [`sample`]: sampler, descriptors and compute pipeline of
//!   `shaders/sample.comp`;
//! * [`Commands`] and [`image_barrier`]: what both record with.

pub mod paint;
pub mod sample;
pub mod shared_image;

use ash::vk;

use crate::vulkan::Client;
use crate::{Context, Result};

/// A shader module of SPIR-V bytes (destroy it once the pipeline exists).
pub fn shader_module(c: &Client, spv: &[u8]) -> Result<vk::ShaderModule> {
    let code = crate::shaders::words(spv);
    // SAFETY: valid SPIR-V compiled by build.rs.
    unsafe { c.device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None) }
        .ctx("vkCreateShaderModule")
}

/// One image layout transition and/or queue-family ownership transfer of
/// the whole colour image: `(from, to)` pairs of layouts, families,
/// accesses and stages.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub layouts: (vk::ImageLayout, vk::ImageLayout),
    pub families: (u32, u32),
    pub access: (vk::AccessFlags2, vk::AccessFlags2),
    pub stages: (vk::PipelineStageFlags2, vk::PipelineStageFlags2),
}

/// Records `t` on `image` (`vkCmdPipelineBarrier2`).
pub fn image_barrier(d: &ash::Device, cb: vk::CommandBuffer, image: vk::Image, t: Transition) {
    let barrier = [vk::ImageMemoryBarrier2::default()
        .src_stage_mask(t.stages.0)
        .dst_stage_mask(t.stages.1)
        .src_access_mask(t.access.0)
        .dst_access_mask(t.access.1)
        .old_layout(t.layouts.0)
        .new_layout(t.layouts.1)
        .src_queue_family_index(t.families.0)
        .dst_queue_family_index(t.families.1)
        .image(image)
        .subresource_range(COLOUR)];
    // SAFETY: a command buffer in the recording state and an image of this
    // device; synchronization2 is enabled by every Client.
    unsafe { d.cmd_pipeline_barrier2(cb, &vk::DependencyInfo::default().image_memory_barriers(&barrier)) };
}

/// The one mip level and layer of a colour image.
pub const COLOUR: vk::ImageSubresourceRange = vk::ImageSubresourceRange {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    base_mip_level: 0,
    level_count: 1,
    base_array_layer: 0,
    layer_count: 1,
};

/// A command pool with one command buffer and a fence: begin, record,
/// submit, wait, and again.
#[derive(Debug)]
pub struct Commands {
    pool: vk::CommandPool,
    pub cb: vk::CommandBuffer,
    fence: vk::Fence,
}

impl Commands {
    pub fn new(c: &Client) -> Result<Self> {
        let d = &c.device;
        // SAFETY: valid create infos; the objects are owned by the result.
        unsafe {
            let pool = d
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(c.family), None)
                .ctx("vkCreateCommandPool")?;
            let info = vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1);
            let cb = d.allocate_command_buffers(&info).ctx("vkAllocateCommandBuffers")?[0];
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).ctx("vkCreateFence")?;
            Ok(Commands { pool, cb, fence })
        }
    }

    /// Resets the pool and begins recording (the last submission is done).
    pub fn begin(&self, c: &Client) -> Result<()> {
        // SAFETY: the command buffer is not pending (`wait` ran or it was
        // never submitted).
        unsafe {
            c.device
                .reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .ctx("vkResetCommandPool")?;
            c.device
                .begin_command_buffer(self.cb, &vk::CommandBufferBeginInfo::default())
                .ctx("vkBeginCommandBuffer")
        }
    }

    pub fn end(&self, c: &Client) -> Result<()> {
        // SAFETY: a command buffer in the recording state.
        unsafe { c.device.end_command_buffer(self.cb) }.ctx("vkEndCommandBuffer")
    }

    /// Submits the recorded command buffer on the client's first queue.
    pub fn submit(&self, c: &Client) -> Result<()> {
        let cbs = [self.cb];
        let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
        // SAFETY: a recorded command buffer, an unsignalled fence of this
        // device, and a queue only this thread uses.
        unsafe { c.device.queue_submit(c.queues[0], &submit, self.fence) }.ctx("vkQueueSubmit")
    }

    /// Waits (up to 10 s) for the submission and resets the fence.
    pub fn wait(&self, c: &Client) -> Result<()> {
        // SAFETY: this object's fence, of this device.
        unsafe {
            c.device.wait_for_fences(&[self.fence], true, 10_000_000_000).ctx("vkWaitForFences")?;
            c.device.reset_fences(&[self.fence]).ctx("vkResetFences")
        }
    }

    pub fn destroy(self, c: &Client) {
        // SAFETY: objects this owns; the caller waited for their work.
        unsafe {
            c.device.destroy_fence(self.fence, None);
            c.device.destroy_command_pool(self.pool, None);
        }
    }
}

/// Makes the writes of `stage`/`access` visible to the host.
pub fn host_read_barrier(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    stage: vk::PipelineStageFlags2,
    access: vk::AccessFlags2,
) {
    let barrier = [vk::MemoryBarrier2::default()
        .src_stage_mask(stage)
        .src_access_mask(access)
        .dst_stage_mask(vk::PipelineStageFlags2::HOST)
        .dst_access_mask(vk::AccessFlags2::HOST_READ)];
    // SAFETY: a command buffer in the recording state.
    unsafe { d.cmd_pipeline_barrier2(cb, &vk::DependencyInfo::default().memory_barriers(&barrier)) };
}
