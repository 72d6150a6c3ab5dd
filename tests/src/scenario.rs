//! The sharing scenario the demo and the tests run: a producer device
//! writes a buffer on its GPU and releases it to the outside; a consumer
//! device, which imported the same memory through an fd, acquires it, adds
//! to every element on its GPU and releases it back; the producer checks
//! the result. Both sides record the ownership transfers Vulkan asks for and
//! do no sync-file work themselves.

use ash::vk;

use crate::compute::{Job, Kernel, Push, Shader};
use crate::external::{ownership_barrier, ExternalBuffer};
use crate::shaders::fill_expected;
use crate::vulkan::Client;
use crate::{Error, Result};

/// The best handle type the producer can export a storage buffer as:
/// `DMA_BUF` where the driver can (lavapipe: only where `/dev/udmabuf`
/// exists), else `OPAQUE_FD`.
pub fn export_type(c: &Client) -> Option<vk::ExternalMemoryHandleTypeFlags> {
    let candidates =
        [vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT, vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD];
    candidates.into_iter().find(|&t| {
        let info = vk::PhysicalDeviceExternalBufferInfo::default()
            .usage(vk::BufferUsageFlags::STORAGE_BUFFER)
            .handle_type(t);
        let mut props = vk::ExternalBufferProperties::default();
        // SAFETY: a physical device of this instance and valid structs.
        unsafe { c.instance.get_physical_device_external_buffer_properties(c.physical, &info, &mut props) };
        let f = props.external_memory_properties.external_memory_features;
        f.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE)
    })
}

/// What [`share_frames`] did.
#[derive(Debug)]
pub struct Shared {
    pub handle_type: vk::ExternalMemoryHandleTypeFlags,
    pub frames: u32,
    pub len: u32,
}

/// Runs `frames` producer→consumer→producer round trips over one shared
/// buffer of `len` u32s, checking every frame. `say` hears one line per step.
pub fn share_frames(
    producer: &Client,
    consumer: &Client,
    len: u32,
    frames: u32,
    say: &mut dyn FnMut(String),
) -> Result<Shared> {
    let handle_type =
        export_type(producer).ok_or_else(|| Error("the producer cannot export memory".into()))?;
    let shared = ExternalBuffer::exportable(producer, len, handle_type)?;
    say(format!("producer: allocated {} bytes exportable as {handle_type:?}", shared.size));
    let fd = shared.export_fd(producer)?;
    say("producer: exported it as an fd".to_string());
    let imported = ExternalBuffer::import(consumer, fd, len, handle_type)
        .map_err(|e| Error(format!("consumer import: {e:?}")))?;
    say("consumer: imported the fd into its own device".to_string());

    let fill = Kernel::new(producer, Shader::Fill)?;
    let add = Kernel::new(consumer, Shader::Increment)?;
    let outcome = (|| -> Result<()> {
        for frame in 0..frames {
            let seed = 0x9e37_79b9u32.wrapping_mul(frame + 1);
            let (pb, pf) = (shared.buffer, producer.family);
            let produce = Job::with_barriers(
                producer,
                &fill,
                pb,
                Push { seed, count: len },
                |_, _| {},
                |d, cb| ownership_barrier(d, cb, pb, vk::QUEUE_FAMILY_EXTERNAL, pf, false),
            )?;
            let (cbuf, cf) = (imported.buffer, consumer.family);
            let consume = Job::with_barriers(
                consumer,
                &add,
                cbuf,
                Push { seed: frame + 1, count: len },
                |d, cb| ownership_barrier(d, cb, cbuf, vk::QUEUE_FAMILY_EXTERNAL, cf, true),
                |d, cb| ownership_barrier(d, cb, cbuf, vk::QUEUE_FAMILY_EXTERNAL, cf, false),
            )?;
            let result = produce
                .run(producer, producer.queues[0])
                .and_then(|_| consume.run(consumer, consumer.queues[0]));
            produce.destroy(producer);
            consume.destroy(consumer);
            result?;
            let seen = shared.host_access(producer, None)?;
            if let Some(i) =
                (0..len).find(|&i| seen[i as usize] != fill_expected(i, seed).wrapping_add(frame + 1))
            {
                return Err(Error(format!(
                    "frame {frame}: producer reads data[{i}] = {:#x}, expected {:#x}",
                    seen[i as usize],
                    fill_expected(i, seed).wrapping_add(frame + 1)
                )));
            }
            say(format!(
                "frame {frame}: producer filled, consumer added {}, producer verified {len} values",
                frame + 1
            ));
        }
        Ok(())
    })();
    fill.destroy(producer);
    add.destroy(consumer);
    imported.destroy(consumer);
    shared.destroy(producer);
    outcome.map(|_| Shared { handle_type, frames, len })
}
