//! The layer's CPU cost on its hot paths, against the same calls without it,
//! in one process: two instances on the same driver, one with
//! `VK_LAYER_DYNABUF_dmabuf` enabled by name and one without, measured in
//! interleaved rounds (median of round medians).
//!
//! `cargo bench -p dynabuf-tests --bench overhead` (after
//! `cargo build --release -p dynabuf`; `scripts/bench.sh` does both).
//! `DYNABUF_BENCH_ROUNDS` sets the number of rounds (default 21).

use std::ffi::CString;
use std::hint::black_box;

use ash::vk;
use dynabuf_client::env::{set_process_env, LAYER_NAME};
use dynabuf_client::measure::{interleaved, ns_per_iter};
use dynabuf_client::vulkan::{object_of, Client, ClientOptions};
use dynabuf_client::{Context, Result};

/// One client's objects for the measurements.
struct Bench {
    client: Client,
    pool: vk::CommandPool,
    submit_cb: vk::CommandBuffer,
    record_cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    memory_type: u32,
}

const SUBMITS_PER_SAMPLE: u32 = 200;
const ALLOCS_PER_SAMPLE: u32 = 200;
const BARRIERS_PER_SAMPLE: u32 = 1000;

impl Bench {
    fn new(layers: Vec<CString>) -> Result<Self> {
        let client = Client::new(&ClientOptions { layers, queues: 1, ..Default::default() })?;
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
            let buffer = d
                .create_buffer(
                    &vk::BufferCreateInfo::default().size(4096).usage(vk::BufferUsageFlags::STORAGE_BUFFER),
                    None,
                )
                .ctx("vkCreateBuffer")?;
            let req = d.get_buffer_memory_requirements(buffer);
            let memory_type =
                client.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()).unwrap_or(0);
            // The submitted command buffer: one small barrier, resubmittable
            // while pending.
            let submit_cb = cbs[0];
            d.begin_command_buffer(
                submit_cb,
                &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE),
            )
            .ctx("vkBeginCommandBuffer")?;
            let barrier = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE)
                .dst_access_mask(vk::AccessFlags::SHADER_READ)];
            d.cmd_pipeline_barrier(
                submit_cb,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::DependencyFlags::empty(),
                &barrier,
                &[],
                &[],
            );
            d.end_command_buffer(submit_cb).ctx("vkEndCommandBuffer")?;
            Ok(Bench { client, pool, submit_cb, record_cb: cbs[1], buffer, memory_type })
        }
    }

    fn submit(&self) -> f64 {
        let d = &self.client.device;
        let q = self.client.queues[0];
        let cbs = [self.submit_cb];
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

    fn alloc_free(&self) -> f64 {
        let d = &self.client.device;
        let info =
            vk::MemoryAllocateInfo::default().allocation_size(4096).memory_type_index(self.memory_type);
        ns_per_iter(ALLOCS_PER_SAMPLE, || {
            // SAFETY: a valid allocate info; the memory is freed at once.
            unsafe {
                let m = d.allocate_memory(&info, None).expect("vkAllocateMemory");
                d.free_memory(black_box(m), None);
            }
        })
    }

    fn barrier(&self) -> f64 {
        let d = &self.client.device;
        let cb = self.record_cb;
        let barrier = [vk::BufferMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE)
            .dst_access_mask(vk::AccessFlags::SHADER_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .buffer(self.buffer)
            .size(vk::WHOLE_SIZE)];
        // SAFETY: a command buffer of a RESET_COMMAND_BUFFER pool, not pending.
        unsafe {
            d.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .expect("vkBeginCommandBuffer");
        }
        let ns = ns_per_iter(BARRIERS_PER_SAMPLE, || {
            // SAFETY: a command buffer in the recording state.
            unsafe {
                d.cmd_pipeline_barrier(
                    cb,
                    vk::PipelineStageFlags::COMPUTE_SHADER,
                    vk::PipelineStageFlags::COMPUTE_SHADER,
                    vk::DependencyFlags::empty(),
                    &[],
                    &barrier,
                    &[],
                )
            }
        });
        // SAFETY: as above; not timed.
        unsafe {
            d.end_command_buffer(cb).expect("vkEndCommandBuffer");
            d.reset_command_buffer(cb, vk::CommandBufferResetFlags::empty()).expect("vkResetCommandBuffer");
        }
        ns
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let d = &self.client.device;
        // SAFETY: objects this bench owns; the device is idle after waiting.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_buffer(self.buffer, None);
            d.destroy_command_pool(self.pool, None);
        }
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    set_process_env();
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(21);
    let without = Bench::new(vec![])?;
    let with = Bench::new(vec![CString::new(LAYER_NAME).expect("layer name")])?;
    let in_chain = with.client.device_proc_addr(c"vkQueueSubmit").and_then(object_of).unwrap_or_default();
    assert!(
        in_chain.ends_with("libVkLayer_dynabuf.so"),
        "the layer is not in the chain ({in_chain}); build it first"
    );
    println!("device: {}", with.client.device_name());
    println!("layer: {in_chain}");
    println!("rounds: {rounds} (interleaved; median of round medians)");
    println!();
    println!("{:<40} {:>12} {:>12} {:>8}", "operation (per call)", "without ns", "with ns", "ratio");
    type Op = fn(&Bench) -> f64;
    let ops: [(&str, Op, u32); 3] = [
        ("vkQueueSubmit (1 small command buffer)", Bench::submit, SUBMITS_PER_SAMPLE),
        ("vkAllocateMemory + vkFreeMemory (4 KiB)", Bench::alloc_free, ALLOCS_PER_SAMPLE),
        ("vkCmdPipelineBarrier (1 buffer barrier)", Bench::barrier, BARRIERS_PER_SAMPLE),
    ];
    for (name, op, _) in ops {
        let (mut a, mut b) = (|| op(&without), || op(&with));
        let r = interleaved(rounds, 7, &mut [&mut a, &mut b]);
        println!("{:<40} {:>12.1} {:>12.1} {:>8.3}", name, r[0], r[1], r[1] / r[0]);
    }
    Ok(())
}
