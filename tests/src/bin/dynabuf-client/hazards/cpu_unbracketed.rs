//! `hazard cpu-unbracketed provoke|twin`: the CPU writes an imported
//! dma-buf through `vkMapMemory` (host-coherent memory) and a submission
//! (acquire, add 1, release) uses it; provoke: the mapping stays open
//! across the submission (the GPU's result read through it, then
//! unmapped); twin: unmapped before the submission. Prints
//! `host_coherent=B` (every host-visible memory type is coherent).

use super::{hazard_client, host_visible_is_coherent, Role, SHARED_NAME};
use crate::robustness::{say, Udmabuf};
use ash::vk;
use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::{Context, Error, Result};
use std::os::fd::AsFd;

const LEN: u32 = 1024;

pub(crate) fn run(role: Role, _variant: &str) -> Result<()> {
    let c = hazard_client()?;
    say(&format!("host_coherent={}", host_visible_is_coherent(&c)));
    let buf = Udmabuf::new(LEN)?;
    buf.write(|_| 0)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), LEN)?;
    c.name(imported.memory, SHARED_NAME)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, LEN)?;
    let memory = imported.memory;
    let mut mapped = false;
    let outcome = (|| {
        // SAFETY: host-visible memory of this device, not mapped, no GPU
        // work pending on it.
        let p = unsafe { c.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
            .ctx("vkMapMemory")?;
        mapped = true;
        // SAFETY: a live mapping of at least LEN u32s, page aligned.
        let words = unsafe { std::slice::from_raw_parts_mut(p.cast::<u32>(), LEN as usize) };
        for (i, w) in words.iter_mut().enumerate() {
            *w = 100 + i as u32;
        }
        if role == Role::Twin {
            // SAFETY: mapped above; the slice is not used again.
            unsafe { c.device.unmap_memory(memory) };
            mapped = false;
        }
        job.run(&c, c.queues[0])?;
        if mapped {
            // The GPU's result through the mapping the CPU kept open.
            if let Some((i, w)) = words.iter().enumerate().find(|(i, w)| **w != 101 + *i as u32) {
                return Err(Error(format!("the mapping: data[{i}] = {w}, expected {}", 101 + i)));
            }
            // SAFETY: mapped above; the slice is not used again.
            unsafe { c.device.unmap_memory(memory) };
            mapped = false;
        }
        buf.expect("the dma-buf after the job", |i| 101 + i)
    })();
    if mapped {
        // SAFETY: mapped above; the job was waited for (or never ran).
        unsafe { c.device.unmap_memory(memory) };
    }
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    drop(c);
    outcome?;
    say("cpu_unbracketed_ok=true");
    Ok(())
}
