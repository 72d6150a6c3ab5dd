//! Subcommands for the kernel tier's hazard and CPU-access tests
//! (`tests/tests/kernel/hazards.rs`, `cpu_sync.rs`): sharing mistakes the
//! layer reports to the application's debug messengers
//! (`DYNABUF_HAZARDS`), each provoked and in a correct twin, and CPU
//! access to mapped dma-buf memory bracketed with `DMA_BUF_IOCTL_SYNC`
//! (`DYNABUF_CPU_SYNC`).
//!
//! `hazard KIND provoke|twin [VARIANT]` runs one scenario on a udmabuf
//! the client makes (and vgem fences it attaches itself), with
//! `VK_EXT_debug_utils` enabled, two messengers (every severity; errors
//! only), the shared memory named `shared-dma-buf` and the queue
//! `client-queue`; after the device and its messengers are gone it prints
//! one `hazard=ID severity=S ... objects=TYPE:NAME,...` line per message
//! whose `pMessageIdName` starts with `DYNABUF-`, `errors_only=N` and
//! `hazards=N`, then `scenario_ok=true` when the scenario's own checks
//! (content, timings) held.

mod attachments;
mod capture;
mod cpu_sync;
mod cpu_unbracketed;
mod fence_timeout;
mod more_uses;
mod self_wait;
mod use_without_acquire;
mod written_never_released;

pub use cpu_sync::cmd_cpu_sync;

use ash::vk;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Error, Result};

use crate::robustness::say;

/// The name the scenarios give the shared memory.
pub(crate) const SHARED_NAME: &std::ffi::CStr = c"shared-dma-buf";
/// The name they give the queue.
pub(crate) const QUEUE_NAME: &std::ffi::CStr = c"client-queue";

/// A provoking scenario or its correct twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Provoke,
    Twin,
}

/// `hazard use-without-acquire|written-never-released|cpu-unbracketed|self-wait|fence-timeout
/// provoke|twin [VARIANT]`.
pub fn cmd_hazard(args: &[String]) -> Result<()> {
    let role = match args.get(1).map(String::as_str) {
        Some("provoke") => Role::Provoke,
        Some("twin") => Role::Twin,
        other => return Err(Error(format!("{other:?}: expected provoke or twin"))),
    };
    let variant = args.get(2).map_or("", String::as_str);
    let outcome = match args.first().map(String::as_str) {
        Some("use-without-acquire") => use_without_acquire::run(role, variant),
        Some("written-never-released") => written_never_released::run(role, variant),
        Some("cpu-unbracketed") => cpu_unbracketed::run(role, variant),
        Some("self-wait") => self_wait::run(role, variant),
        Some("fence-timeout") => fence_timeout::run(role, variant),
        other => Err(Error(format!(
            "{other:?}: expected use-without-acquire, written-never-released, cpu-unbracketed, self-wait or \
             fence-timeout"
        ))),
    };
    // Every client of the scenario is gone: its reports are all in.
    capture::print_reports();
    outcome?;
    say("scenario_ok=true");
    Ok(())
}

/// A client with `VK_EXT_debug_utils`, the messengers of [`capture`], the
/// `timelineSemaphore` and `dynamicRendering` features, and its queue named.
pub(crate) fn hazard_client() -> Result<Client> {
    let c = Client::new(&ClientOptions {
        debug_utils: true,
        timeline: true,
        dynamic_rendering: true,
        ..Default::default()
    })?;
    capture::install(&c)?;
    c.name(c.queues[0], QUEUE_NAME)?;
    Ok(c)
}

/// Whether every host-visible memory type of the device is host-coherent
/// (lavapipe's are).
pub(crate) fn host_visible_is_coherent(c: &Client) -> bool {
    // SAFETY: a physical device of this instance.
    let props = unsafe { c.instance.get_physical_device_memory_properties(c.physical) };
    props.memory_types[..props.memory_type_count as usize]
        .iter()
        .filter(|t| t.property_flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE))
        .all(|t| t.property_flags.contains(vk::MemoryPropertyFlags::HOST_COHERENT))
}

/// Records an ownership transfer of `buffer` from FOREIGN to `family`
/// (`acquire`) or back, for `stage` and `access` on the local side.
pub(crate) fn transfer(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    family: u32,
    acquire: bool,
    stage: vk::PipelineStageFlags,
    access: vk::AccessFlags,
) {
    let foreign = vk::QUEUE_FAMILY_FOREIGN_EXT;
    let barrier = vk::BufferMemoryBarrier::default().buffer(buffer).size(vk::WHOLE_SIZE);
    let (barrier, src, dst) = if acquire {
        let b =
            barrier.src_queue_family_index(foreign).dst_queue_family_index(family).dst_access_mask(access);
        (b, vk::PipelineStageFlags::TOP_OF_PIPE, stage)
    } else {
        let b =
            barrier.src_queue_family_index(family).dst_queue_family_index(foreign).src_access_mask(access);
        (b, stage, vk::PipelineStageFlags::BOTTOM_OF_PIPE)
    };
    // SAFETY: a command buffer in the recording state, a buffer of this device.
    unsafe { d.cmd_pipeline_barrier(cb, src, dst, vk::DependencyFlags::empty(), &[], &[barrier], &[]) };
}

/// Makes transfer writes visible to the host.
pub(crate) fn transfer_to_host(d: &ash::Device, cb: vk::CommandBuffer) {
    let barrier = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ)];
    // SAFETY: a command buffer in the recording state.
    unsafe {
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &barrier,
            &[],
            &[],
        )
    };
}

/// Records a copy of the first `len` u32s of `src` into `dst`.
pub(crate) fn copy(d: &ash::Device, cb: vk::CommandBuffer, src: vk::Buffer, dst: vk::Buffer, len: u32) {
    let region = [vk::BufferCopy::default().size(u64::from(len) * 4)];
    // SAFETY: a command buffer in the recording state; both buffers hold
    // `len` u32s and have the transfer usages.
    unsafe { d.cmd_copy_buffer(cb, src, dst, &region) };
}

/// Records a fill of `buffer` with `value`.
pub(crate) fn fill(d: &ash::Device, cb: vk::CommandBuffer, buffer: vk::Buffer, value: u32) {
    // SAFETY: a command buffer in the recording state; a buffer with
    // TRANSFER_DST usage.
    unsafe { d.cmd_fill_buffer(cb, buffer, 0, vk::WHOLE_SIZE, value) };
}
