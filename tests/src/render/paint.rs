//! The producer's graphics pipeline (`shaders/scene.vert` +
//! `shaders/scene.frag`): one render pass over the shared image that
//! clears it to [`CLEAR`], then draws the frame in [`PARTS`] draw calls: a
//! Julia set behind everything (the expensive part: up to `work`
//! iterations per pixel), then each blade of a pinwheel that turns with the
//! frame number. The image is in `COLOR_ATTACHMENT_OPTIMAL` throughout the
//! pass; the caller's barriers bring it there and take it away.

use ash::vk;

use super::shader_module;
use super::shared_image::FORMAT;
use crate::shaders;
use crate::vulkan::Client;
use crate::{Context, Error, Result};

/// The colour a frame is cleared to before anything is drawn: magenta
/// in the consumer's picture means it read a cleared, unpainted image.
pub const CLEAR: [f32; 4] = [1.0, 0.0, 1.0, 1.0];
/// Draw calls per frame: the background, then one per blade.
pub const PARTS: u32 = 7;

/// A render pass, framebuffer and pipeline drawing into one image.
#[derive(Debug)]
pub struct Painter {
    render_pass: vk::RenderPass,
    view: vk::ImageView,
    framebuffer: vk::Framebuffer,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    extent: vk::Extent2D,
}

impl Painter {
    pub fn new(c: &Client, image: vk::Image, width: u32, height: u32) -> Result<Self> {
        let extent = vk::Extent2D { width, height };
        let d = &c.device;
        let attachment = [vk::AttachmentDescription::default()
            .format(FORMAT)
            .samples(vk::SampleCountFlags::TYPE_1)
            .load_op(vk::AttachmentLoadOp::CLEAR)
            .store_op(vk::AttachmentStoreOp::STORE)
            .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
            .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
            .initial_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
            .final_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)];
        let colour_ref = [vk::AttachmentReference::default()
            .attachment(0)
            .layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)];
        let subpass = [vk::SubpassDescription::default()
            .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
            .color_attachments(&colour_ref)];
        let pass_info = vk::RenderPassCreateInfo::default().attachments(&attachment).subpasses(&subpass);
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(FORMAT)
            .subresource_range(super::COLOUR);
        let push = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT)
            .size(16)];
        // SAFETY: valid create infos; each object is owned by the result,
        // and on an error the partial painter destroys what was made.
        unsafe {
            let mut p = Painter {
                render_pass: d.create_render_pass(&pass_info, None).ctx("vkCreateRenderPass")?,
                view: vk::ImageView::null(),
                framebuffer: vk::Framebuffer::null(),
                layout: vk::PipelineLayout::null(),
                pipeline: vk::Pipeline::null(),
                extent,
            };
            let made = (|| -> Result<()> {
                p.view = d.create_image_view(&view_info, None).ctx("vkCreateImageView")?;
                let views = [p.view];
                let fb_info = vk::FramebufferCreateInfo::default()
                    .render_pass(p.render_pass)
                    .attachments(&views)
                    .width(width)
                    .height(height)
                    .layers(1);
                p.framebuffer = d.create_framebuffer(&fb_info, None).ctx("vkCreateFramebuffer")?;
                let layout_info = vk::PipelineLayoutCreateInfo::default().push_constant_ranges(&push);
                p.layout = d.create_pipeline_layout(&layout_info, None).ctx("vkCreatePipelineLayout")?;
                p.pipeline = pipeline(c, p.render_pass, p.layout, extent)?;
                Ok(())
            })();
            match made {
                Ok(()) => Ok(p),
                Err(e) => {
                    p.destroy_ref(c);
                    Err(e)
                }
            }
        }
    }

    /// Records frame `frame` (the image must be in
    /// `COLOR_ATTACHMENT_OPTIMAL`, owned by this queue family).
    pub fn record(&self, d: &ash::Device, cb: vk::CommandBuffer, frame: u32, work: u32) {
        let clear = [vk::ClearValue { color: vk::ClearColorValue { float32: CLEAR } }];
        let begin = vk::RenderPassBeginInfo::default()
            .render_pass(self.render_pass)
            .framebuffer(self.framebuffer)
            .render_area(vk::Rect2D { offset: vk::Offset2D::default(), extent: self.extent })
            .clear_values(&clear);
        // SAFETY: a command buffer in the recording state; objects of this device.
        unsafe {
            d.cmd_begin_render_pass(cb, &begin, vk::SubpassContents::INLINE);
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, self.pipeline);
            for part in 0..PARTS {
                let words = [frame, part, PARTS, work];
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                let stages = vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT;
                d.cmd_push_constants(cb, self.layout, stages, 0, &bytes);
                d.cmd_draw(cb, if part == 0 { 3 } else { 6 }, 1, 0, 0);
            }
            d.cmd_end_render_pass(cb);
        }
    }

    fn destroy_ref(&self, c: &Client) {
        // SAFETY: objects this painter owns (null ones are ignored); the
        // caller waited for their work.
        unsafe {
            c.device.destroy_pipeline(self.pipeline, None);
            c.device.destroy_pipeline_layout(self.layout, None);
            c.device.destroy_framebuffer(self.framebuffer, None);
            c.device.destroy_image_view(self.view, None);
            c.device.destroy_render_pass(self.render_pass, None);
        }
    }

    pub fn destroy(self, c: &Client) {
        self.destroy_ref(c);
    }
}

/// The graphics pipeline: no vertex input, a static viewport over the
/// whole image, no blending.
fn pipeline(
    c: &Client,
    render_pass: vk::RenderPass,
    layout: vk::PipelineLayout,
    extent: vk::Extent2D,
) -> Result<vk::Pipeline> {
    let vert = shader_module(c, shaders::SCENE_VERT)?;
    let frag = shader_module(c, shaders::SCENE_FRAG).inspect_err(|_| {
        // SAFETY: a module no pipeline uses yet.
        unsafe { c.device.destroy_shader_module(vert, None) }
    })?;
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(vert)
            .name(c"main"),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(frag)
            .name(c"main"),
    ];
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default();
    let assembly =
        vk::PipelineInputAssemblyStateCreateInfo::default().topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let viewport = [vk::Viewport {
        x: 0.0,
        y: 0.0,
        width: extent.width as f32,
        height: extent.height as f32,
        min_depth: 0.0,
        max_depth: 1.0,
    }];
    let scissor = [vk::Rect2D { offset: vk::Offset2D::default(), extent }];
    let viewport_state =
        vk::PipelineViewportStateCreateInfo::default().viewports(&viewport).scissors(&scissor);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .line_width(1.0);
    let multisample =
        vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(vk::SampleCountFlags::TYPE_1);
    let blend =
        [vk::PipelineColorBlendAttachmentState::default().color_write_mask(vk::ColorComponentFlags::RGBA)];
    let blend_state = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend);
    let info = [vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .vertex_input_state(&vertex_input)
        .input_assembly_state(&assembly)
        .viewport_state(&viewport_state)
        .rasterization_state(&raster)
        .multisample_state(&multisample)
        .color_blend_state(&blend_state)
        .layout(layout)
        .render_pass(render_pass)];
    // SAFETY: valid create infos whose pointers outlive the call; the
    // modules are no longer needed once the pipeline exists.
    unsafe {
        let pipeline = c.device.create_graphics_pipelines(vk::PipelineCache::null(), &info, None);
        c.device.destroy_shader_module(vert, None);
        c.device.destroy_shader_module(frag, None);
        let pipelines = pipeline.map_err(|(_, e)| Error(format!("vkCreateGraphicsPipelines: {e:?}")))?;
        Ok(pipelines[0])
    }
}
