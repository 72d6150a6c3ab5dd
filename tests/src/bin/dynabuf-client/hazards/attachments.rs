//! `hazard use-without-acquire provoke|twin render-pass|rendering`: a
//! 64×64 RGBA8 linear image imported from a udmabuf is a color
//! attachment cleared to green by its load op, in a render pass
//! (`vkCmdBeginRenderPass`) or with dynamic rendering
//! (`vkCmdBeginRendering`), no draw. Provoke: only a plain layout
//! transition before (no acquire, no release); twin: an acquire from
//! FOREIGN (transitioning it) before, a release after. The first texel is
//! checked through the memfd.

use super::{Role, SHARED_NAME};
use crate::robustness::{say, sys};
use ash::vk;
use dynabuf_client::external::{import_memory, importable_types};
use dynabuf_client::image::commands::run_once;
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

const SIZE: u32 = 64;
const GREEN: [f32; 4] = [0.0, 1.0, 0.0, 1.0];

/// The attachment and what the passes need of it.
struct Attachment {
    image: vk::Image,
    memory: vk::DeviceMemory,
    view: vk::ImageView,
    /// Where texel (0, 0) is in the dma-buf.
    offset: u64,
}

pub(crate) fn run(c: &Client, role: Role, dynamic: bool) -> Result<()> {
    let bytes = u64::from(SIZE * SIZE * 4).next_multiple_of(4096) * 2;
    let (dmabuf, memfd) = sys(udmabuf::create(bytes))?;
    let memfd = std::fs::File::from(memfd);
    let mut objects = (vk::RenderPass::null(), vk::Framebuffer::null());
    let attachment = import(c, &dmabuf)?;
    let outcome = (|| {
        c.name(attachment.memory, SHARED_NAME)?;
        let (image, family, view) = (attachment.image, c.family, attachment.view);
        if !dynamic {
            objects = render_pass(c, view)?;
        }
        let (pass, framebuffer) = objects;
        run_once(c, |d, cb| {
            barrier(d, cb, image, family, role, true);
            let area = vk::Rect2D {
                offset: vk::Offset2D::default(),
                extent: vk::Extent2D { width: SIZE, height: SIZE },
            };
            let clear = [vk::ClearValue { color: vk::ClearColorValue { float32: GREEN } }];
            // SAFETY: a command buffer in the recording state; the pass,
            // framebuffer and view are of this device and alive.
            unsafe {
                if dynamic {
                    let color = [vk::RenderingAttachmentInfo::default()
                        .image_view(view)
                        .image_layout(vk::ImageLayout::GENERAL)
                        .load_op(vk::AttachmentLoadOp::CLEAR)
                        .store_op(vk::AttachmentStoreOp::STORE)
                        .clear_value(clear[0])];
                    let info = vk::RenderingInfo::default()
                        .render_area(area)
                        .layer_count(1)
                        .color_attachments(&color);
                    d.cmd_begin_rendering(cb, &info);
                    d.cmd_end_rendering(cb);
                } else {
                    let info = vk::RenderPassBeginInfo::default()
                        .render_pass(pass)
                        .framebuffer(framebuffer)
                        .render_area(area)
                        .clear_values(&clear);
                    d.cmd_begin_render_pass(cb, &info, vk::SubpassContents::INLINE);
                    d.cmd_end_render_pass(cb);
                }
            }
            barrier(d, cb, image, family, role, false);
        })
    })();
    // SAFETY: the work is done (or was never submitted); objects of this
    // device, destroyed once.
    unsafe {
        c.device.destroy_framebuffer(objects.1, None);
        c.device.destroy_render_pass(objects.0, None);
        c.device.destroy_image_view(attachment.view, None);
        c.device.destroy_image(attachment.image, None);
        c.device.free_memory(attachment.memory, None);
    }
    outcome?;
    let mut texel = [0u8; 4];
    memfd.read_exact_at(&mut texel, attachment.offset).ctx("read memfd")?;
    if texel != [0, 255, 0, 255] {
        return Err(Error(format!("the first texel is {texel:?}, not green")));
    }
    say("attachment_ok=true");
    Ok(())
}

/// The image (color attachment, linear), its dedicated import and view.
fn import(c: &Client, dmabuf: &std::os::fd::OwnedFd) -> Result<Attachment> {
    let dma_buf = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(dma_buf);
    let info = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D { width: SIZE, height: SIZE, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(vk::ImageUsageFlags::COLOR_ATTACHMENT)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
        .push_next(&mut external);
    // SAFETY: a valid create info whose chain outlives the call.
    let image =
        unsafe { c.device.create_image(&info, None) }.ctx("vkCreateImage(color attachment, linear)")?;
    let imported = (|| {
        // SAFETY: an image of this device.
        let req = unsafe { c.device.get_image_memory_requirements(image) };
        let fd_types = importable_types(c, dmabuf.as_fd(), dma_buf).ctx("vkGetMemoryFdPropertiesKHR")?;
        let type_index = c
            .memory_type(req.memory_type_bits & fd_types, vk::MemoryPropertyFlags::empty())
            .ok_or_else(|| Error(format!("no memory type for {req:?} and {fd_types:#x}")))?;
        let dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
        let fd = dmabuf.try_clone().ctx("dup")?;
        let memory =
            import_memory(c, fd, dma_buf, req.size, type_index, dedicated).ctx("vkAllocateMemory(import)")?;
        // SAFETY: an unbound image and memory dedicated to it.
        if let Err(e) = unsafe { c.device.bind_image_memory(image, memory, 0) } {
            // SAFETY: unused memory.
            unsafe { c.device.free_memory(memory, None) };
            return Err(Error(format!("vkBindImageMemory: {e:?}")));
        }
        Ok(memory)
    })();
    let memory = imported.inspect_err(|_| {
        // SAFETY: an image without work or memory.
        unsafe { c.device.destroy_image(image, None) }
    })?;
    let color =
        vk::ImageSubresource { aspect_mask: vk::ImageAspectFlags::COLOR, mip_level: 0, array_layer: 0 };
    // SAFETY: a linear image of this device, bound.
    let offset = unsafe { c.device.get_image_subresource_layout(image, color) }.offset;
    let view_info = vk::ImageViewCreateInfo::default()
        .image(image)
        .view_type(vk::ImageViewType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .subresource_range(range());
    // SAFETY: a valid create info for a bound image of this device.
    match unsafe { c.device.create_image_view(&view_info, None) } {
        Ok(view) => Ok(Attachment { image, memory, view, offset }),
        Err(e) => {
            // SAFETY: unused objects of this device.
            unsafe {
                c.device.destroy_image(image, None);
                c.device.free_memory(memory, None);
            }
            Err(Error(format!("vkCreateImageView: {e:?}")))
        }
    }
}

fn range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// A render pass clearing one GENERAL color attachment, and its framebuffer.
fn render_pass(c: &Client, view: vk::ImageView) -> Result<(vk::RenderPass, vk::Framebuffer)> {
    let general = vk::ImageLayout::GENERAL;
    let attachment = [vk::AttachmentDescription::default()
        .format(vk::Format::R8G8B8A8_UNORM)
        .samples(vk::SampleCountFlags::TYPE_1)
        .load_op(vk::AttachmentLoadOp::CLEAR)
        .store_op(vk::AttachmentStoreOp::STORE)
        .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
        .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
        .initial_layout(general)
        .final_layout(general)];
    let reference = [vk::AttachmentReference { attachment: 0, layout: general }];
    let subpass = [vk::SubpassDescription::default()
        .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
        .color_attachments(&reference)];
    let info = vk::RenderPassCreateInfo::default().attachments(&attachment).subpasses(&subpass);
    // SAFETY: a valid create info.
    let pass = unsafe { c.device.create_render_pass(&info, None) }.ctx("vkCreateRenderPass")?;
    let views = [view];
    let info = vk::FramebufferCreateInfo::default()
        .render_pass(pass)
        .attachments(&views)
        .width(SIZE)
        .height(SIZE)
        .layers(1);
    // SAFETY: a valid create info: the view matches the pass's attachment.
    match unsafe { c.device.create_framebuffer(&info, None) } {
        Ok(framebuffer) => Ok((pass, framebuffer)),
        Err(e) => {
            // SAFETY: an unused render pass.
            unsafe { c.device.destroy_render_pass(pass, None) };
            Err(Error(format!("vkCreateFramebuffer: {e:?}")))
        }
    }
}

/// Before (`before`) or after the pass: the twin's acquire (from
/// UNDEFINED to GENERAL) or release; the provoking scenario's plain
/// transition (before only).
fn barrier(d: &ash::Device, cb: vk::CommandBuffer, image: vk::Image, family: u32, role: Role, before: bool) {
    let ignored = vk::QUEUE_FAMILY_IGNORED;
    let foreign = vk::QUEUE_FAMILY_FOREIGN_EXT;
    let write = vk::AccessFlags::COLOR_ATTACHMENT_WRITE;
    let stage = vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT;
    let b = vk::ImageMemoryBarrier::default().image(image).subresource_range(range());
    let (b, src, dst) = match (role, before) {
        (Role::Provoke, false) => return,
        (Role::Provoke, true) => (
            b.old_layout(vk::ImageLayout::UNDEFINED)
                .new_layout(vk::ImageLayout::GENERAL)
                .src_queue_family_index(ignored)
                .dst_queue_family_index(ignored)
                .dst_access_mask(write),
            vk::PipelineStageFlags::TOP_OF_PIPE,
            stage,
        ),
        (Role::Twin, true) => (
            b.old_layout(vk::ImageLayout::UNDEFINED)
                .new_layout(vk::ImageLayout::GENERAL)
                .src_queue_family_index(foreign)
                .dst_queue_family_index(family)
                .dst_access_mask(write),
            vk::PipelineStageFlags::TOP_OF_PIPE,
            stage,
        ),
        (Role::Twin, false) => (
            b.old_layout(vk::ImageLayout::GENERAL)
                .new_layout(vk::ImageLayout::GENERAL)
                .src_queue_family_index(family)
                .dst_queue_family_index(foreign)
                .src_access_mask(write),
            stage,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
        ),
    };
    // SAFETY: a command buffer in the recording state, an image of this device.
    unsafe { d.cmd_pipeline_barrier(cb, src, dst, vk::DependencyFlags::empty(), &[], &[], &[b]) };
}
