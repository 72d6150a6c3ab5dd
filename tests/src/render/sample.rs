//! The consumer's compute pass (`shaders/sample.comp`): a sampler and a
//! combined image sampler over the imported image (in `GENERAL` layout),
//! nearest filtering at texel centres, so each texel lands unchanged as
//! one RGBA8 word in a storage buffer the host reads. `work` slows each
//! invocation down before it samples, so the dispatch reads the image over
//! a while, as a display scans out.

use ash::vk;

use super::shader_module;
use super::shared_image::FORMAT;
use crate::shaders;
use crate::vulkan::Client;
use crate::{Context, Error, Result};

/// A compute pipeline sampling one image into one buffer.
#[derive(Debug)]
pub struct Scanout {
    sampler: vk::Sampler,
    view: vk::ImageView,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    pool: vk::DescriptorPool,
    set: vk::DescriptorSet,
    extent: vk::Extent2D,
}

impl Scanout {
    /// Samples `image` (`width`×`height`) into `out`, one u32 per texel.
    pub fn new(c: &Client, image: vk::Image, width: u32, height: u32, out: vk::Buffer) -> Result<Self> {
        let d = &c.device;
        let mut s = Scanout {
            sampler: vk::Sampler::null(),
            view: vk::ImageView::null(),
            set_layout: vk::DescriptorSetLayout::null(),
            layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
            pool: vk::DescriptorPool::null(),
            set: vk::DescriptorSet::null(),
            extent: vk::Extent2D { width, height },
        };
        let sampler_info = vk::SamplerCreateInfo::default()
            .mag_filter(vk::Filter::NEAREST)
            .min_filter(vk::Filter::NEAREST)
            .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
            .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE);
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(FORMAT)
            .subresource_range(super::COLOUR);
        let bindings = [
            vk::DescriptorSetLayoutBinding::default()
                .binding(0)
                .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE),
            vk::DescriptorSetLayoutBinding::default()
                .binding(1)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE),
        ];
        let sizes = [
            vk::DescriptorPoolSize::default()
                .ty(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
                .descriptor_count(1),
            vk::DescriptorPoolSize::default().ty(vk::DescriptorType::STORAGE_BUFFER).descriptor_count(1),
        ];
        let push = [vk::PushConstantRange::default().stage_flags(vk::ShaderStageFlags::COMPUTE).size(16)];
        // SAFETY: valid create infos; every object is owned by the result,
        // and on an error the partial one destroys what was made.
        let made = (|| -> Result<()> {
            unsafe {
                s.sampler = d.create_sampler(&sampler_info, None).ctx("vkCreateSampler")?;
                s.view = d.create_image_view(&view_info, None).ctx("vkCreateImageView")?;
                let set_info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
                s.set_layout =
                    d.create_descriptor_set_layout(&set_info, None).ctx("vkCreateDescriptorSetLayout")?;
                let set_layouts = [s.set_layout];
                let layout_info = vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&set_layouts)
                    .push_constant_ranges(&push);
                s.layout = d.create_pipeline_layout(&layout_info, None).ctx("vkCreatePipelineLayout")?;
                let module = shader_module(c, shaders::SAMPLE)?;
                let stage = vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::COMPUTE)
                    .module(module)
                    .name(c"main");
                let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(s.layout)];
                let pipeline = d.create_compute_pipelines(vk::PipelineCache::null(), &info, None);
                d.destroy_shader_module(module, None);
                s.pipeline = pipeline.map_err(|(_, e)| Error(format!("vkCreateComputePipelines: {e:?}")))?[0];
                let pool_info = vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes);
                s.pool = d.create_descriptor_pool(&pool_info, None).ctx("vkCreateDescriptorPool")?;
                let alloc = vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(s.pool)
                    .set_layouts(&set_layouts);
                s.set = d.allocate_descriptor_sets(&alloc).ctx("vkAllocateDescriptorSets")?[0];
                let image_info = [vk::DescriptorImageInfo::default()
                    .sampler(s.sampler)
                    .image_view(s.view)
                    .image_layout(vk::ImageLayout::GENERAL)];
                let buffer_info = [vk::DescriptorBufferInfo::default().buffer(out).range(vk::WHOLE_SIZE)];
                let writes = [
                    vk::WriteDescriptorSet::default()
                        .dst_set(s.set)
                        .dst_binding(0)
                        .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
                        .image_info(&image_info),
                    vk::WriteDescriptorSet::default()
                        .dst_set(s.set)
                        .dst_binding(1)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(&buffer_info),
                ];
                d.update_descriptor_sets(&writes, &[]);
            }
            Ok(())
        })();
        match made {
            Ok(()) => Ok(s),
            Err(e) => {
                s.destroy_ref(c);
                Err(e)
            }
        }
    }

    /// Records the dispatch (the image must be in `GENERAL` layout, owned by
    /// this queue family).
    pub fn record(&self, d: &ash::Device, cb: vk::CommandBuffer, work: u32) {
        let vk::Extent2D { width, height } = self.extent;
        let bytes: Vec<u8> = [width, height, work, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
        // SAFETY: a command buffer in the recording state; objects of this device.
        unsafe {
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            d.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, self.layout, 0, &[self.set], &[]);
            d.cmd_push_constants(cb, self.layout, vk::ShaderStageFlags::COMPUTE, 0, &bytes);
            d.cmd_dispatch(cb, width.div_ceil(8), height.div_ceil(8), 1);
        }
    }

    fn destroy_ref(&self, c: &Client) {
        // SAFETY: objects this owns (null ones are ignored; the set goes
        // with its pool); the caller waited for their work.
        unsafe {
            c.device.destroy_descriptor_pool(self.pool, None);
            c.device.destroy_pipeline(self.pipeline, None);
            c.device.destroy_pipeline_layout(self.layout, None);
            c.device.destroy_descriptor_set_layout(self.set_layout, None);
            c.device.destroy_image_view(self.view, None);
            c.device.destroy_sampler(self.sampler, None);
        }
    }

    pub fn destroy(self, c: &Client) {
        self.destroy_ref(c);
    }
}
