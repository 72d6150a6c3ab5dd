//! Trampolines: recording commands and object creation watched only for
//! hazard reports (`hooks/usage.rs`). Each passes the application's
//! arguments on unchanged to the next layer's function for its name; they
//! are handed out only when `DYNABUF_HAZARDS` is not `off`. The watching
//! runs under its own panic guard, so a failure in it never drops the
//! application's command.

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::dispatch::Device;
use crate::hooks::usage;
use crate::registry::Resource;
use crate::views::usage as view;

/// Whether a recorded command must be looked at.
#[inline(always)]
fn watching(dev: &Device) -> bool {
    dev.state.hazards.is_some() && dev.state.has_dma_buf_memory()
}

/// No resource (a null buffer is bound to nothing).
const NOTHING: (Resource, bool) = (Resource::Buffer(vk::Buffer::null()), false);

fn buffer(b: vk::Buffer, writes: bool) -> (Resource, bool) {
    (Resource::Buffer(b), writes)
}

fn image(i: vk::Image, writes: bool) -> (Resource, bool) {
    (Resource::Image(i), writes)
}

/// A transfer command: `$uses` lists (resource, writes) from its arguments.
macro_rules! transfer_command {
    ($name:ident, $call:literal, $field:ident, ($($arg:ident: $ty:ty),*), $uses:expr) => {
        pub(super) unsafe extern "system" fn $name(cb: vk::CommandBuffer, $($arg: $ty),*) {
            guard($call, (), || {
                let dev = device_or_return!($call, cb);
                if watching(dev) {
                    // Its own guard: a failure to watch never drops the
                    // application's command.
                    guard($call, (), || {
                        let uses: [(Resource, bool); 2] = $uses;
                        usage::commands_use(dev, cb, &uses);
                    });
                }
                if let Some(f) = dev.usage_fns.$field {
                    crate::lock_order::assert_unlocked($call);
                    // SAFETY: the application's arguments, passed on
                    // unchanged to the next layer's function for this name.
                    unsafe { f(cb, $($arg),*) }
                }
            })
        }
    };
}

transfer_command!(cmd_copy_buffer, "vkCmdCopyBuffer", cmd_copy_buffer,
    (src: vk::Buffer, dst: vk::Buffer, n: u32, regions: *const vk::BufferCopy),
    [buffer(src, false), buffer(dst, true)]);
transfer_command!(cmd_copy_image, "vkCmdCopyImage", cmd_copy_image,
    (src: vk::Image, src_layout: vk::ImageLayout, dst: vk::Image, dst_layout: vk::ImageLayout, n: u32,
     regions: *const vk::ImageCopy),
    [image(src, false), image(dst, true)]);
transfer_command!(cmd_copy_buffer_to_image, "vkCmdCopyBufferToImage", cmd_copy_buffer_to_image,
    (src: vk::Buffer, dst: vk::Image, layout: vk::ImageLayout, n: u32, regions: *const vk::BufferImageCopy),
    [buffer(src, false), image(dst, true)]);
transfer_command!(cmd_copy_image_to_buffer, "vkCmdCopyImageToBuffer", cmd_copy_image_to_buffer,
    (src: vk::Image, layout: vk::ImageLayout, dst: vk::Buffer, n: u32, regions: *const vk::BufferImageCopy),
    [image(src, false), buffer(dst, true)]);
transfer_command!(cmd_blit_image, "vkCmdBlitImage", cmd_blit_image,
    (src: vk::Image, src_layout: vk::ImageLayout, dst: vk::Image, dst_layout: vk::ImageLayout, n: u32,
     regions: *const vk::ImageBlit, filter: vk::Filter),
    [image(src, false), image(dst, true)]);
transfer_command!(cmd_resolve_image, "vkCmdResolveImage", cmd_resolve_image,
    (src: vk::Image, src_layout: vk::ImageLayout, dst: vk::Image, dst_layout: vk::ImageLayout, n: u32,
     regions: *const vk::ImageResolve),
    [image(src, false), image(dst, true)]);
transfer_command!(cmd_fill_buffer, "vkCmdFillBuffer", cmd_fill_buffer,
    (dst: vk::Buffer, offset: vk::DeviceSize, size: vk::DeviceSize, data: u32),
    [buffer(dst, true), NOTHING]);
transfer_command!(cmd_update_buffer, "vkCmdUpdateBuffer", cmd_update_buffer,
    (dst: vk::Buffer, offset: vk::DeviceSize, size: vk::DeviceSize, data: *const std::ffi::c_void),
    [buffer(dst, true), NOTHING]);
transfer_command!(cmd_clear_color_image, "vkCmdClearColorImage", cmd_clear_color_image,
    (dst: vk::Image, layout: vk::ImageLayout, color: *const vk::ClearColorValue, n: u32,
     ranges: *const vk::ImageSubresourceRange),
    [image(dst, true), NOTHING]);
transfer_command!(cmd_clear_depth_stencil_image, "vkCmdClearDepthStencilImage", cmd_clear_depth_stencil_image,
    (dst: vk::Image, layout: vk::ImageLayout, value: *const vk::ClearDepthStencilValue, n: u32,
     ranges: *const vk::ImageSubresourceRange),
    [image(dst, true), NOTHING]);

// The `2` variants name their resources in one info structure, which the
// application must pass valid (Vulkan valid usage): reading it is what the
// `SAFETY` below each `as_ref` relies on.
transfer_command!(cmd_copy_buffer2, "vkCmdCopyBuffer2", cmd_copy_buffer2,
    (info: *const vk::CopyBufferInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [buffer(i.src_buffer, false), buffer(i.dst_buffer, true)]));
transfer_command!(cmd_copy_image2, "vkCmdCopyImage2", cmd_copy_image2,
    (info: *const vk::CopyImageInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [image(i.src_image, false), image(i.dst_image, true)]));
transfer_command!(cmd_copy_buffer_to_image2, "vkCmdCopyBufferToImage2", cmd_copy_buffer_to_image2,
    (info: *const vk::CopyBufferToImageInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [buffer(i.src_buffer, false), image(i.dst_image, true)]));
transfer_command!(cmd_copy_image_to_buffer2, "vkCmdCopyImageToBuffer2", cmd_copy_image_to_buffer2,
    (info: *const vk::CopyImageToBufferInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [image(i.src_image, false), buffer(i.dst_buffer, true)]));
transfer_command!(cmd_blit_image2, "vkCmdBlitImage2", cmd_blit_image2,
    (info: *const vk::BlitImageInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [image(i.src_image, false), image(i.dst_image, true)]));
transfer_command!(cmd_resolve_image2, "vkCmdResolveImage2", cmd_resolve_image2,
    (info: *const vk::ResolveImageInfo2<'_>),
    // SAFETY: a valid info (see above).
    unsafe { info.as_ref() }.map_or([NOTHING; 2], |i| [image(i.src_image, false), image(i.dst_image, true)]));

pub(super) unsafe extern "system" fn cmd_begin_rendering(
    cb: vk::CommandBuffer,
    p_info: *const vk::RenderingInfo<'_>,
) {
    guard("vkCmdBeginRendering", (), || {
        let dev = device_or_return!("vkCmdBeginRendering", cb);
        if watching(dev) {
            guard("vkCmdBeginRendering", (), || {
                // SAFETY: a valid rendering info (Vulkan valid usage).
                if let Some(info) = unsafe { p_info.as_ref() } {
                    // SAFETY: as above.
                    usage::rendering_begun(dev, cb, &unsafe { view::rendering_views(info) });
                }
            });
        }
        if let Some(f) = dev.usage_fns.cmd_begin_rendering {
            crate::lock_order::assert_unlocked("vkCmdBeginRendering");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(cb, p_info) }
        }
    })
}

/// The attachments a render pass begin writes.
///
/// # Safety
/// `p_begin` must be null or a valid `VkRenderPassBeginInfo`.
unsafe fn render_pass_begun(
    dev: &Device,
    cb: vk::CommandBuffer,
    p_begin: *const vk::RenderPassBeginInfo<'_>,
) {
    if !watching(dev) {
        return;
    }
    guard("vkCmdBeginRenderPass", (), || {
        // SAFETY: forwarded from this function's contract.
        if let Some(info) = unsafe { p_begin.as_ref() } {
            // SAFETY: as above.
            let imageless = unsafe { view::render_pass_views(info) };
            usage::render_pass_begun(dev, cb, info.framebuffer, &imageless);
        }
    });
}

pub(super) unsafe extern "system" fn cmd_begin_render_pass(
    cb: vk::CommandBuffer,
    p_begin: *const vk::RenderPassBeginInfo<'_>,
    contents: vk::SubpassContents,
) {
    guard("vkCmdBeginRenderPass", (), || {
        let dev = device_or_return!("vkCmdBeginRenderPass", cb);
        // SAFETY: the application's valid begin info.
        unsafe { render_pass_begun(dev, cb, p_begin) };
        if let Some(f) = dev.usage_fns.cmd_begin_render_pass {
            crate::lock_order::assert_unlocked("vkCmdBeginRenderPass");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(cb, p_begin, contents) }
        }
    })
}

pub(super) unsafe extern "system" fn cmd_begin_render_pass2(
    cb: vk::CommandBuffer,
    p_begin: *const vk::RenderPassBeginInfo<'_>,
    p_subpass: *const vk::SubpassBeginInfo<'_>,
) {
    guard("vkCmdBeginRenderPass2", (), || {
        let dev = device_or_return!("vkCmdBeginRenderPass2", cb);
        // SAFETY: the application's valid begin info.
        unsafe { render_pass_begun(dev, cb, p_begin) };
        if let Some(f) = dev.usage_fns.cmd_begin_render_pass2 {
            crate::lock_order::assert_unlocked("vkCmdBeginRenderPass2");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(cb, p_begin, p_subpass) }
        }
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn cmd_bind_descriptor_sets(
    cb: vk::CommandBuffer,
    bind_point: vk::PipelineBindPoint,
    layout: vk::PipelineLayout,
    first_set: u32,
    count: u32,
    p_sets: *const vk::DescriptorSet,
    dynamic_count: u32,
    p_dynamic: *const u32,
) {
    guard("vkCmdBindDescriptorSets", (), || {
        let dev = device_or_return!("vkCmdBindDescriptorSets", cb);
        if watching(dev) {
            guard("vkCmdBindDescriptorSets", (), || {
                // SAFETY: `p_sets` holds `count` sets (Vulkan valid usage).
                usage::descriptor_sets_bound(dev, cb, unsafe { slice(p_sets, count) });
            });
        }
        if let Some(f) = dev.usage_fns.cmd_bind_descriptor_sets {
            crate::lock_order::assert_unlocked("vkCmdBindDescriptorSets");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(cb, bind_point, layout, first_set, count, p_sets, dynamic_count, p_dynamic) }
        }
    })
}
