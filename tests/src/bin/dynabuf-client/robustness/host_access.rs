//! The `host-access` subcommand: mapping, flushing and unmapping a dynamic
//! attachment.

use super::{client_with, expect_words, say, Udmabuf};
use crate::arg;
use ash::vk;
use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};
use std::ffi::{c_void, CStr};
use std::os::fd::AsFd;

/// `host-access map|map2 [LEN]`: a udmabuf imported (a dynamic attachment
/// under `DYNABUF_EVICT`), used by acquire + add 1 + release jobs, and
/// written by the CPU through `vkMapMemory` (with
/// `vkFlushMappedMemoryRanges` and `vkInvalidateMappedMemoryRanges`, then
/// `vkUnmapMemory`), and with `map2` also through
/// `vkMapMemory2KHR`/`vkUnmapMemory2KHR` where the device has
/// VK_KHR_map_memory2 (the Khronos validation layer 1.3.239 crashes on
/// those, also without dynabuf: run `map2` without it). Checks through the
/// memfd that the CPU's writes are the dma-buf's content and that the GPU
/// sees them. Prints `host_access_ok=true submits=N map2=yes|no|unsupported`.
pub fn cmd_host_access(args: &[String]) -> Result<()> {
    let want_map2 = match args.first().map(String::as_str) {
        Some("map") => false,
        Some("map2") => true,
        other => return Err(Error(format!("{other:?}: expected map or map2"))),
    };
    let len = arg(args, 1, 1024);
    let extra: &[&CStr] = if want_map2 { &[ash::khr::map_memory2::NAME] } else { &[] };
    let (c, got) = client_with(extra)?;
    let map2 = (!got.is_empty()).then(|| ash::khr::map_memory2::Device::new(&c.instance, &c.device));
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let mut submits = 0;
    let outcome = (|| {
        let mut run = |want: u32| -> Result<()> {
            job.run(&c, c.queues[0])?;
            submits += 1;
            buf.expect(&format!("after submit {submits}"), |i| want + i)
        };
        run(1)?;
        let memory = imported.memory;
        // vkMapMemory: the CPU sees what the GPU wrote, and what it writes
        // is the dma-buf's content.
        // SAFETY: host-visible memory of this device, not mapped; no GPU
        // work on it is pending.
        let p = unsafe { c.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
            .ctx("vkMapMemory")?;
        host_write(&c, memory, p, len, "vkMapMemory", |i| 1 + i, |i| 100 + i)?;
        // SAFETY: mapped above.
        unsafe { c.device.unmap_memory(memory) };
        buf.expect("after vkUnmapMemory", |i| 100 + i)?;
        run(101)?;
        let Some(map2) = &map2 else {
            run(102)?;
            return Ok(if want_map2 { "unsupported" } else { "no" });
        };
        let info = vk::MemoryMapInfoKHR::default().memory(memory).offset(0).size(vk::WHOLE_SIZE);
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: as above, through VK_KHR_map_memory2 (enabled).
        let r = unsafe { (map2.fp().map_memory2_khr)(c.device.handle(), &info, &mut p) };
        if r != vk::Result::SUCCESS {
            return Err(Error(format!("vkMapMemory2KHR: {r:?}")));
        }
        host_write(&c, memory, p, len, "vkMapMemory2KHR", |i| 101 + i, |i| 200 + i)?;
        let unmap = vk::MemoryUnmapInfoKHR::default().memory(memory);
        // SAFETY: mapped above.
        let r = unsafe { (map2.fp().unmap_memory2_khr)(c.device.handle(), &unmap) };
        if r != vk::Result::SUCCESS {
            return Err(Error(format!("vkUnmapMemory2KHR: {r:?}")));
        }
        buf.expect("after vkUnmapMemory2KHR", |i| 200 + i)?;
        run(201)?;
        run(202)?;
        Ok("yes")
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    let map2 = outcome?;
    say(&format!("host_access_ok=true submits={submits} map2={map2}"));
    Ok(())
}

/// Through a mapping `p` of `memory`: checks it holds `now`, writes `new`,
/// flushes, invalidates, and checks again.
fn host_write(
    c: &Client,
    memory: vk::DeviceMemory,
    p: *mut c_void,
    len: u32,
    how: &str,
    now: impl Fn(u32) -> u32,
    new: impl Fn(u32) -> u32,
) -> Result<()> {
    // SAFETY: a live mapping of at least `len` u32s, aligned (the driver
    // maps at a page boundary); no GPU work on it is pending.
    let words = unsafe { std::slice::from_raw_parts_mut(p.cast::<u32>(), len as usize) };
    expect_words(&format!("{how}: the mapping"), words, &now)?;
    for (i, w) in words.iter_mut().enumerate() {
        *w = new(i as u32);
    }
    let range = [vk::MappedMemoryRange::default().memory(memory).offset(0).size(vk::WHOLE_SIZE)];
    // SAFETY: ranges of memory this process has mapped.
    unsafe {
        c.device.flush_mapped_memory_ranges(&range).ctx("vkFlushMappedMemoryRanges")?;
        c.device.invalidate_mapped_memory_ranges(&range).ctx("vkInvalidateMappedMemoryRanges")?;
    }
    expect_words(&format!("{how}: the mapping after flush + invalidate"), words, &new)
}
