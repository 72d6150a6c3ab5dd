//! Storage buffers and the compute shaders from `shaders/`: enough to put
//! real work on a queue and read a checkable result back.

use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
use gpu_allocator::MemoryLocation;

use crate::shaders;
use crate::vulkan::Client;
use crate::{Context, Error, Result};

/// Which shader a [`Kernel`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shader {
    /// `data[i] = hash(i, seed)`.
    Fill,
    /// `data[i] += seed`.
    Increment,
}

/// Push constants shared by every shader: `(seed, count)`.
#[derive(Clone, Copy, Debug)]
pub struct Push {
    pub seed: u32,
    pub count: u32,
}

/// A compute pipeline over one storage buffer at set 0, binding 0.
#[derive(Debug)]
pub struct Kernel {
    pub pipeline: vk::Pipeline,
    pub layout: vk::PipelineLayout,
    pub set_layout: vk::DescriptorSetLayout,
}

impl Kernel {
    pub fn new(c: &Client, shader: Shader) -> Result<Self> {
        let code = shaders::words(match shader {
            Shader::Fill => shaders::FILL,
            Shader::Increment => shaders::INCREMENT,
        });
        let d = &c.device;
        // SAFETY: valid create infos; every object made here is owned by the
        // returned Kernel (or destroyed before an error returns).
        unsafe {
            let module = d
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
                .ctx("vkCreateShaderModule")?;
            let binding = [vk::DescriptorSetLayoutBinding::default()
                .binding(0)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)];
            let set_layout = d
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&binding),
                    None,
                )
                .ctx("vkCreateDescriptorSetLayout")?;
            let ranges =
                [vk::PushConstantRange::default().stage_flags(vk::ShaderStageFlags::COMPUTE).size(8)];
            let set_layouts = [set_layout];
            let layout = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default()
                        .set_layouts(&set_layouts)
                        .push_constant_ranges(&ranges),
                    None,
                )
                .ctx("vkCreatePipelineLayout")?;
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(c"main");
            let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout)];
            let pipeline = d.create_compute_pipelines(vk::PipelineCache::null(), &info, None);
            d.destroy_shader_module(module, None);
            let pipeline = pipeline.map_err(|(_, e)| Error(format!("vkCreateComputePipelines: {e:?}")))?[0];
            Ok(Kernel { pipeline, layout, set_layout })
        }
    }

    pub fn destroy(self, c: &Client) {
        // SAFETY: objects this kernel owns; the caller waited for its work.
        unsafe {
            c.device.destroy_pipeline(self.pipeline, None);
            c.device.destroy_pipeline_layout(self.layout, None);
            c.device.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// A host-visible storage buffer of `len` u32s.
#[derive(Debug)]
pub struct StorageBuffer {
    pub buffer: vk::Buffer,
    pub allocation: Option<Allocation>,
    pub len: u32,
}

impl StorageBuffer {
    pub fn new(c: &Client, len: u32) -> Result<Self> {
        let info = vk::BufferCreateInfo::default().size(u64::from(len) * 4).usage(
            vk::BufferUsageFlags::STORAGE_BUFFER
                | vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST,
        );
        // SAFETY: a valid create info.
        let buffer = unsafe { c.device.create_buffer(&info, None) }.ctx("vkCreateBuffer")?;
        // SAFETY: a buffer of this device.
        let requirements = unsafe { c.device.get_buffer_memory_requirements(buffer) };
        let allocation = c
            .allocator
            .lock()
            .map_err(|_| Error("allocator lock poisoned".into()))?
            .allocate(&AllocationCreateDesc {
                name: "storage",
                requirements,
                location: MemoryLocation::CpuToGpu,
                linear: true,
                allocation_scheme: AllocationScheme::GpuAllocatorManaged,
            })
            .ctx("gpu-allocator allocate")?;
        // SAFETY: unbound buffer, memory of this device large enough.
        unsafe { c.device.bind_buffer_memory(buffer, allocation.memory(), allocation.offset()) }
            .ctx("vkBindBufferMemory")?;
        let mut b = StorageBuffer { buffer, allocation: Some(allocation), len };
        b.write(&vec![0; len as usize])?;
        Ok(b)
    }

    fn mapped(&mut self) -> Result<&mut [u8]> {
        let n = self.len as usize * 4;
        let a = self.allocation.as_mut().ok_or_else(|| Error("buffer freed".into()))?;
        let s = a.mapped_slice_mut().ok_or_else(|| Error("buffer not host-mapped".into()))?;
        Ok(&mut s[..n])
    }

    /// The buffer's content (the caller has waited for the GPU).
    pub fn read(&mut self) -> Result<Vec<u32>> {
        Ok(self.mapped()?.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    pub fn write(&mut self, data: &[u32]) -> Result<()> {
        let m = self.mapped()?;
        for (dst, v) in m.chunks_exact_mut(4).zip(data) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    pub fn destroy(mut self, c: &Client) {
        // SAFETY: a buffer this object owns; the caller waited for its work.
        unsafe { c.device.destroy_buffer(self.buffer, None) };
        if let (Some(a), Ok(mut alloc)) = (self.allocation.take(), c.allocator.lock()) {
            let _ = alloc.free(a);
        }
    }
}

/// A recorded dispatch of a kernel over a buffer, with its own pool,
/// command buffer, descriptor set and fence: submit it as often as needed.
#[derive(Debug)]
pub struct Job {
    pub pool: vk::CommandPool,
    pub cb: vk::CommandBuffer,
    pub fence: vk::Fence,
    descriptor_pool: vk::DescriptorPool,
}

impl Job {
    pub fn new(c: &Client, kernel: &Kernel, buffer: vk::Buffer, push: Push) -> Result<Self> {
        Self::with_barriers(c, kernel, buffer, push, |_, _| {}, |_, _| {})
    }

    /// As [`Job::new`], calling `before(device, cb)` before the dispatch and
    /// `after(device, cb)` after it (to record ownership transfers, say).
    pub fn with_barriers(
        c: &Client,
        kernel: &Kernel,
        buffer: vk::Buffer,
        push: Push,
        before: impl FnOnce(&ash::Device, vk::CommandBuffer),
        after: impl FnOnce(&ash::Device, vk::CommandBuffer),
    ) -> Result<Self> {
        let d = &c.device;
        // SAFETY: valid create infos; all objects are owned by the Job.
        unsafe {
            let pool = d
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(c.family), None)
                .ctx("vkCreateCommandPool")?;
            let cb = d
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1),
                )
                .ctx("vkAllocateCommandBuffers")?[0];
            let sizes = [vk::DescriptorPoolSize::default()
                .ty(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)];
            let descriptor_pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes),
                    None,
                )
                .ctx("vkCreateDescriptorPool")?;
            let layouts = [kernel.set_layout];
            let set = d
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(descriptor_pool)
                        .set_layouts(&layouts),
                )
                .ctx("vkAllocateDescriptorSets")?[0];
            let buffer_info = [vk::DescriptorBufferInfo::default().buffer(buffer).range(vk::WHOLE_SIZE)];
            let write = [vk::WriteDescriptorSet::default()
                .dst_set(set)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&buffer_info)];
            d.update_descriptor_sets(&write, &[]);
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).ctx("vkCreateFence")?;

            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default()).ctx("vkBeginCommandBuffer")?;
            before(d, cb);
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
            d.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, kernel.layout, 0, &[set], &[]);
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&push.seed.to_le_bytes());
            bytes[4..].copy_from_slice(&push.count.to_le_bytes());
            d.cmd_push_constants(cb, kernel.layout, vk::ShaderStageFlags::COMPUTE, 0, &bytes);
            d.cmd_dispatch(cb, push.count.div_ceil(64), 1, 1);
            after(d, cb);
            let to_host = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ)];
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &to_host,
                &[],
                &[],
            );
            d.end_command_buffer(cb).ctx("vkEndCommandBuffer")?;
            Ok(Job { pool, cb, fence, descriptor_pool })
        }
    }

    /// Submits the job and waits for it (up to 10 s).
    pub fn run(&self, c: &Client, queue: vk::Queue) -> Result<()> {
        self.submit(c, queue)?;
        self.wait(c)
    }

    /// Submits the job; [`Job::wait`] before submitting it again. With
    /// `DYNABUF_CLIENT_SUBMIT2=1` it uses `vkQueueSubmit2`.
    pub fn submit(&self, c: &Client, queue: vk::Queue) -> Result<()> {
        let cbs = [self.cb];
        if std::env::var_os("DYNABUF_CLIENT_SUBMIT2").is_some_and(|v| v == "1") {
            let infos = [vk::CommandBufferSubmitInfo::default().command_buffer(self.cb)];
            let submit = [vk::SubmitInfo2::default().command_buffer_infos(&infos)];
            // SAFETY: as below; synchronization2 is enabled on the device.
            return unsafe { c.device.queue_submit2(queue, &submit, self.fence) }.ctx("vkQueueSubmit2");
        }
        let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
        // SAFETY: a recorded command buffer and an unsignalled fence of this
        // device; the caller serialises use of `queue` (Vulkan's external
        // synchronisation rule), and the job is not pending (`wait` ran).
        unsafe { c.device.queue_submit(queue, &submit, self.fence) }.ctx("vkQueueSubmit")
    }

    /// Waits (up to 10 s) for the last submission and resets the fence.
    pub fn wait(&self, c: &Client) -> Result<()> {
        // SAFETY: this job's fence, of this device.
        unsafe {
            c.device.wait_for_fences(&[self.fence], true, 10_000_000_000).ctx("vkWaitForFences")?;
            c.device.reset_fences(&[self.fence]).ctx("vkResetFences")?;
        }
        Ok(())
    }

    pub fn destroy(self, c: &Client) {
        // SAFETY: objects this job owns; `run` waited for its work.
        unsafe {
            c.device.destroy_fence(self.fence, None);
            c.device.destroy_descriptor_pool(self.descriptor_pool, None);
            c.device.destroy_command_pool(self.pool, None);
        }
    }
}

/// Runs `fill.comp` once over a fresh buffer of `count` u32s and returns it.
pub fn fill_once(c: &Client, queue: vk::Queue, seed: u32, count: u32) -> Result<Vec<u32>> {
    let kernel = Kernel::new(c, Shader::Fill)?;
    let mut buffer = StorageBuffer::new(c, count)?;
    let job = Job::new(c, &kernel, buffer.buffer, Push { seed, count })?;
    let result = job.run(c, queue).and_then(|_| buffer.read());
    job.destroy(c);
    buffer.destroy(c);
    kernel.destroy(c);
    result
}
