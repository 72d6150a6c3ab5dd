//! What hazard watching (`DYNABUF_HAZARDS`, default `warn`) costs on hot
//! paths, in one process on one driver: three clients, created in this
//! order, one without the layer, one with the layer and `hazards=off`, one
//! with `hazards=warn` (each instance passes its own setting in a
//! `VkLayerSettingsCreateInfoEXT`; a device decides at `vkCreateDevice`).
//! Measured in interleaved rounds (median of round medians): an empty
//! submission, recording `vkCmdCopyBuffer`, binding one descriptor set,
//! first on devices without external memory, then after each device
//! allocated exportable memory and exported it (`vkGetMemoryFdKHR`), and
//! last with one descriptor set written with a buffer in that memory.
//!
//! `cargo bench -p dynabuf-tests --bench hazard_overhead` (after
//! `cargo build --release -p dynabuf`). `DYNABUF_BENCH_ROUNDS` sets the
//! number of rounds (default 21). `DYNABUF_HAZARDS` in the environment
//! would override both layered clients' settings: it must be unset. The
//! export is a dma-buf where lavapipe makes one (in `tests/vm/run.sh`'s VM,
//! which has udmabuf), else an opaque fd (this host).

use std::ffi::{CStr, CString};
use std::hint::black_box;
use std::os::fd::OwnedFd;

use ash::vk;
use dynabuf_client::env::{set_process_env, LAYER_NAME};
use dynabuf_client::external::ExternalBuffer;
use dynabuf_client::measure::{interleaved, ns_per_iter};
use dynabuf_client::vulkan::{object_of, Client, ClientOptions, LayerSetting, SettingValue};
use dynabuf_client::{Context, Error, Result};

const SUBMITS_PER_SAMPLE: u32 = 200;
const COMMANDS_PER_SAMPLE: u32 = 1000;
/// Bytes in each ordinary buffer; every copy moves 256 of them.
const BUFFER_BYTES: u64 = 4096;
const SAMPLES: usize = 7;

/// The exported memory of phase 2 and 3: a buffer bound to it, its fd (kept
/// open: the memory stays exported), a command buffer that copies into it.
struct Exported {
    buffer: ExternalBuffer,
    _fd: OwnedFd,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    /// Copies into the exported memory, resubmittable while pending.
    writing_cb: vk::CommandBuffer,
    /// A descriptor set whose storage buffer is `buffer` (phase 3).
    set: Option<vk::DescriptorSet>,
}

/// One client's objects.
struct Bench {
    client: Client,
    pool: vk::CommandPool,
    /// Empty, resubmittable while pending.
    empty_cb: vk::CommandBuffer,
    record_cb: vk::CommandBuffer,
    src: vk::Buffer,
    dst: vk::Buffer,
    memory: vk::DeviceMemory,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    descriptor_pool: vk::DescriptorPool,
    /// A storage-buffer set naming `src`.
    set: vk::DescriptorSet,
    exported: Option<Exported>,
}

fn hazards(mode: &str) -> ClientOptions {
    ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("layer name")],
        queues: 1,
        layer_settings: vec![LayerSetting {
            layer: CString::new(LAYER_NAME).expect("layer name"),
            name: c"hazards".into(),
            value: SettingValue::String(CString::new(mode).expect("mode")),
        }],
        ..Default::default()
    }
}

impl Bench {
    fn new(opts: &ClientOptions) -> Result<Self> {
        let client = Client::new(opts)?;
        let d = &client.device;
        // SAFETY: valid create infos; the objects are destroyed in Drop.
        unsafe {
            let pool = d
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(client.family)
                        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                    None,
                )
                .ctx("vkCreateCommandPool")?;
            let cbs = d
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(2),
                )
                .ctx("vkAllocateCommandBuffers")?;
            let usage = vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST
                | vk::BufferUsageFlags::STORAGE_BUFFER;
            let info = vk::BufferCreateInfo::default().size(BUFFER_BYTES).usage(usage);
            let src = d.create_buffer(&info, None).ctx("vkCreateBuffer")?;
            let dst = d.create_buffer(&info, None).ctx("vkCreateBuffer")?;
            let req = d.get_buffer_memory_requirements(src);
            let stride = req.size.next_multiple_of(req.alignment.max(1));
            let memory_type = client
                .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL)
                .or_else(|| client.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
                .ok_or_else(|| Error("no memory type for a buffer".into()))?;
            let memory = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(2 * stride)
                        .memory_type_index(memory_type),
                    None,
                )
                .ctx("vkAllocateMemory")?;
            d.bind_buffer_memory(src, memory, 0).ctx("vkBindBufferMemory")?;
            d.bind_buffer_memory(dst, memory, stride).ctx("vkBindBufferMemory")?;

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
            let set_layouts = [set_layout];
            let layout = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts),
                    None,
                )
                .ctx("vkCreatePipelineLayout")?;
            let sizes = [vk::DescriptorPoolSize::default()
                .ty(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(2)];
            let descriptor_pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default().max_sets(2).pool_sizes(&sizes),
                    None,
                )
                .ctx("vkCreateDescriptorPool")?;
            let set = d
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(descriptor_pool)
                        .set_layouts(&set_layouts),
                )
                .ctx("vkAllocateDescriptorSets")?[0];
            write_set(d, set, src);

            let empty_cb = cbs[0];
            d.begin_command_buffer(
                empty_cb,
                &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE),
            )
            .ctx("vkBeginCommandBuffer")?;
            d.end_command_buffer(empty_cb).ctx("vkEndCommandBuffer")?;
            Ok(Bench {
                client,
                pool,
                empty_cb,
                record_cb: cbs[1],
                src,
                dst,
                memory,
                set_layout,
                layout,
                descriptor_pool,
                set,
                exported: None,
            })
        }
    }

    /// Allocates exportable memory (dma-buf where the driver exports one,
    /// else an opaque fd), exports it and records a command buffer that
    /// copies into it.
    fn export(&mut self) -> Result<()> {
        let c = &self.client;
        let mut last = Error("no external memory handle type".into());
        for handle_type in
            [vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT, vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD]
        {
            let buffer = match ExternalBuffer::exportable(c, (BUFFER_BYTES / 4) as u32, handle_type) {
                Ok(b) => b,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let fd = match buffer.export_fd(c) {
                Ok(fd) => fd,
                Err(e) => {
                    buffer.destroy(c);
                    last = e;
                    continue;
                }
            };
            let d = &c.device;
            // SAFETY: a pool of this device; the command buffer is freed with it.
            let writing_cb = unsafe {
                let cb = d
                    .allocate_command_buffers(
                        &vk::CommandBufferAllocateInfo::default()
                            .command_pool(self.pool)
                            .command_buffer_count(1),
                    )
                    .ctx("vkAllocateCommandBuffers")?[0];
                d.begin_command_buffer(
                    cb,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE),
                )
                .ctx("vkBeginCommandBuffer")?;
                d.cmd_copy_buffer(cb, self.src, buffer.buffer, &[vk::BufferCopy::default().size(256)]);
                d.end_command_buffer(cb).ctx("vkEndCommandBuffer")?;
                cb
            };
            self.exported = Some(Exported { buffer, _fd: fd, handle_type, writing_cb, set: None });
            return Ok(());
        }
        Err(last)
    }

    /// Allocates a second descriptor set, naming the exported buffer.
    fn write_exported_set(&mut self) -> Result<()> {
        let d = &self.client.device;
        let ex = self.exported.as_mut().ok_or_else(|| Error("nothing exported".into()))?;
        let layouts = [self.set_layout];
        // SAFETY: a pool with room for a second set; a buffer of this device.
        let set = unsafe {
            d.allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(self.descriptor_pool)
                    .set_layouts(&layouts),
            )
        }
        .ctx("vkAllocateDescriptorSets")?[0];
        write_set(d, set, ex.buffer.buffer);
        ex.set = Some(set);
        Ok(())
    }

    fn exported(&self) -> &Exported {
        self.exported.as_ref().expect("exported memory")
    }

    fn submit_cb(&self, cb: vk::CommandBuffer) -> f64 {
        let d = &self.client.device;
        let q = self.client.queues[0];
        let cbs = [cb];
        let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
        let ns = ns_per_iter(SUBMITS_PER_SAMPLE, || {
            // SAFETY: a recorded SIMULTANEOUS_USE command buffer on its queue.
            let r = unsafe { d.queue_submit(q, &submit, vk::Fence::null()) };
            black_box(r).expect("vkQueueSubmit");
        });
        // SAFETY: the queue belongs to this device. Not timed.
        unsafe { d.queue_wait_idle(q) }.expect("vkQueueWaitIdle");
        ns
    }

    fn submit_empty(&self) -> f64 {
        self.submit_cb(self.empty_cb)
    }

    fn submit_writing(&self) -> f64 {
        self.submit_cb(self.exported().writing_cb)
    }

    /// Nanoseconds per call of `command`, recorded `COMMANDS_PER_SAMPLE`
    /// times into one command buffer (begun before, ended and reset after,
    /// not timed).
    fn record(&self, mut command: impl FnMut(&ash::Device, vk::CommandBuffer)) -> f64 {
        let d = &self.client.device;
        let cb = self.record_cb;
        // SAFETY: a command buffer of a RESET_COMMAND_BUFFER pool, not pending.
        unsafe {
            d.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .expect("vkBeginCommandBuffer");
        }
        let ns = ns_per_iter(COMMANDS_PER_SAMPLE, || command(d, cb));
        // SAFETY: as above; not timed.
        unsafe {
            d.end_command_buffer(cb).expect("vkEndCommandBuffer");
            d.reset_command_buffer(cb, vk::CommandBufferResetFlags::empty()).expect("vkResetCommandBuffer");
        }
        ns
    }

    fn copy_to(&self, dst: vk::Buffer) -> f64 {
        let region = [vk::BufferCopy::default().size(256)];
        let src = self.src;
        // SAFETY: a command buffer in the recording state; buffers of this
        // device with TRANSFER usage, regions inside both.
        self.record(|d, cb| unsafe { d.cmd_copy_buffer(cb, src, black_box(dst), &region) })
    }

    fn copy(&self) -> f64 {
        self.copy_to(self.dst)
    }

    fn copy_to_exported(&self) -> f64 {
        self.copy_to(self.exported().buffer.buffer)
    }

    fn bind_set(&self, set: vk::DescriptorSet) -> f64 {
        let sets = [set];
        let layout = self.layout;
        // SAFETY: a command buffer in the recording state; a set of the
        // layout's set 0, written.
        self.record(|d, cb| unsafe {
            d.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, layout, 0, black_box(&sets), &[])
        })
    }

    fn bind(&self) -> f64 {
        self.bind_set(self.set)
    }

    fn bind_exported(&self) -> f64 {
        self.bind_set(self.exported().set.expect("exported set"))
    }

    /// The shared object `name` resolves to on this device.
    fn resolves(&self, name: &CStr) -> String {
        self.client.device_proc_addr(name).and_then(object_of).unwrap_or_default()
    }
}

fn write_set(d: &ash::Device, set: vk::DescriptorSet, buffer: vk::Buffer) {
    let info = [vk::DescriptorBufferInfo::default().buffer(buffer).range(vk::WHOLE_SIZE)];
    let write = [vk::WriteDescriptorSet::default()
        .dst_set(set)
        .dst_binding(0)
        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
        .buffer_info(&info)];
    // SAFETY: a set of this device with a storage-buffer binding 0; a
    // buffer of this device with STORAGE_BUFFER usage.
    unsafe { d.update_descriptor_sets(&write, &[]) };
}

impl Drop for Bench {
    fn drop(&mut self) {
        let d = &self.client.device;
        // SAFETY: objects this bench owns; the device is idle after waiting.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_command_pool(self.pool, None);
            d.destroy_descriptor_pool(self.descriptor_pool, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
            d.destroy_buffer(self.src, None);
            d.destroy_buffer(self.dst, None);
            d.free_memory(self.memory, None);
        }
        if let Some(ex) = self.exported.take() {
            ex.buffer.destroy(&self.client);
        }
    }
}

type Op = fn(&Bench) -> f64;

/// Measures each of `ops` over the three clients, interleaved, and prints
/// ns per call and the ratios warn/off and off/no layer.
fn measure(rounds: usize, benches: &[Bench; 3], ops: &[(&str, Op)]) {
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation (per call)", "no layer", "off", "warn", "warn/off", "off/none"
    );
    for &(name, op) in ops {
        let [none, off, warn] = benches;
        let (mut a, mut b, mut c) = (|| op(none), || op(off), || op(warn));
        let r = interleaved(rounds, SAMPLES, &mut [&mut a, &mut b, &mut c]);
        println!(
            "{:<52} {:>9.1} {:>9.1} {:>9.1} {:>9.3} {:>9.3}",
            name,
            r[0],
            r[1],
            r[2],
            r[2] / r[1],
            r[1] / r[0]
        );
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    set_process_env();
    if std::env::var_os("DYNABUF_HAZARDS").is_some()
        || std::env::var_os("VK_DYNABUF_DMABUF_HAZARDS").is_some()
    {
        return Err(Error("unset DYNABUF_HAZARDS: the environment overrides each client's setting".into()));
    }
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(21);
    // In this order: the layer's settings are process-wide, and each device
    // takes them at its creation from the latest instance's.
    let none = Bench::new(&ClientOptions { queues: 1, ..Default::default() })?;
    let off = Bench::new(&hazards("off"))?;
    let warn = Bench::new(&hazards("warn"))?;
    let mut benches = [none, off, warn];

    let layer = benches[1].resolves(c"vkQueueSubmit");
    if !layer.ends_with("libVkLayer_dynabuf.so") || benches[2].resolves(c"vkQueueSubmit") != layer {
        return Err(Error(format!("the layer is not in the chain ({layer}); build it first")));
    }
    let copy: Vec<String> = benches.iter().map(|b| b.resolves(c"vkCmdCopyBuffer")).collect();
    if copy[1] != copy[0] || copy[2] != layer {
        return Err(Error(format!("vkCmdCopyBuffer resolves to {copy:?}: hazards=off/warn not applied")));
    }
    println!("device: {}", benches[0].client.device_name());
    println!("layer: {layer}");
    println!("vkCmdCopyBuffer: no layer and off {}, warn {}", copy[1], copy[2]);
    println!("rounds: {rounds} (interleaved; median of round medians; {SAMPLES} samples per round)");

    println!("\n1. devices without external memory");
    let ops: [(&str, Op); 3] = [
        ("vkQueueSubmit (1 empty command buffer)", Bench::submit_empty),
        ("vkCmdCopyBuffer (ordinary buffers)", Bench::copy),
        ("vkCmdBindDescriptorSets (1 set)", Bench::bind),
    ];
    measure(rounds, &benches, &ops);

    for b in &mut benches {
        b.export()?;
    }
    let handle_type = benches[2].exported().handle_type;
    println!("\n2. each device exported one allocation ({handle_type:?}, fd kept open)");
    let ops: [(&str, Op); 5] = [
        ("vkCmdCopyBuffer (ordinary buffers)", Bench::copy),
        ("vkCmdBindDescriptorSets (1 set, ordinary buffer)", Bench::bind),
        ("vkQueueSubmit (1 empty command buffer)", Bench::submit_empty),
        ("vkCmdCopyBuffer (destination in exported memory)", Bench::copy_to_exported),
        ("vkQueueSubmit (1 copy into exported memory)", Bench::submit_writing),
    ];
    measure(rounds, &benches, &ops);

    for b in &mut benches {
        b.write_exported_set()?;
    }
    println!("\n3. and one more descriptor set names a buffer in the exported memory");
    let ops: [(&str, Op); 2] = [
        ("vkCmdBindDescriptorSets (1 set, ordinary buffer)", Bench::bind),
        ("vkCmdBindDescriptorSets (1 set, exported buffer)", Bench::bind_exported),
    ];
    measure(rounds, &benches, &ops);
    Ok(())
}
