//! Commands on shared images: ownership transfers between
//! `VK_QUEUE_FAMILY_FOREIGN_EXT` and the client's family naming the whole
//! image (`COLOR`) or planes (`PLANE_i`), with or without a layout
//! transition; per-plane copies to and from buffers; clears; and one-shot
//! command buffers (the demo's [`Commands`]) to record them in.

use ash::vk;

use super::{pixels, Plane};
use crate::compute::StorageBuffer;
use crate::render::host_read_barrier;
pub use crate::render::Commands;
use crate::vulkan::Client;
use crate::Result;

/// An ownership transfer of (planes of) an image between FOREIGN and the
/// client's queue family.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    /// `COLOR`, or `PLANE_i` bits of a multi-planar image.
    pub aspect: vk::ImageAspectFlags,
    pub old_layout: vk::ImageLayout,
    pub new_layout: vk::ImageLayout,
    /// The destination access of an acquire, the source access of a release.
    pub access: vk::AccessFlags,
}

impl Transfer {
    /// A transfer of `aspect` that keeps the image in `GENERAL`.
    pub fn general(aspect: vk::ImageAspectFlags, access: vk::AccessFlags) -> Self {
        let general = vk::ImageLayout::GENERAL;
        Transfer { aspect, old_layout: general, new_layout: general, access }
    }
}

fn range(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: aspect,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

fn layers(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceLayers {
    vk::ImageSubresourceLayers { aspect_mask: aspect, mip_level: 0, base_array_layer: 0, layer_count: 1 }
}

/// Records `barriers` between `src` and `dst` stages (`vkCmdPipelineBarrier`).
fn barrier(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    src: vk::PipelineStageFlags,
    dst: vk::PipelineStageFlags,
    barriers: &[vk::ImageMemoryBarrier<'_>],
) {
    // SAFETY: a command buffer in the recording state, images of this device.
    unsafe { d.cmd_pipeline_barrier(cb, src, dst, vk::DependencyFlags::empty(), &[], &[], barriers) }
}

/// Records an acquire of `image` from FOREIGN into `family`.
pub fn acquire(d: &ash::Device, cb: vk::CommandBuffer, image: vk::Image, family: u32, t: Transfer) {
    let b = vk::ImageMemoryBarrier::default()
        .dst_access_mask(t.access)
        .old_layout(t.old_layout)
        .new_layout(t.new_layout)
        .src_queue_family_index(vk::QUEUE_FAMILY_FOREIGN_EXT)
        .dst_queue_family_index(family)
        .image(image)
        .subresource_range(range(t.aspect));
    barrier(d, cb, vk::PipelineStageFlags::TOP_OF_PIPE, vk::PipelineStageFlags::TRANSFER, &[b]);
}

/// Records a release of `image` from `family` to FOREIGN.
pub fn release(d: &ash::Device, cb: vk::CommandBuffer, image: vk::Image, family: u32, t: Transfer) {
    let b = vk::ImageMemoryBarrier::default()
        .src_access_mask(t.access)
        .old_layout(t.old_layout)
        .new_layout(t.new_layout)
        .src_queue_family_index(family)
        .dst_queue_family_index(vk::QUEUE_FAMILY_FOREIGN_EXT)
        .image(image)
        .subresource_range(range(t.aspect));
    barrier(d, cb, vk::PipelineStageFlags::TRANSFER, vk::PipelineStageFlags::BOTTOM_OF_PIPE, &[b]);
}

/// Records a layout transition of `aspect` on the client's own queue
/// (no ownership transfer), ordered after earlier transfers.
pub fn transition(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    image: vk::Image,
    aspect: vk::ImageAspectFlags,
    layouts: (vk::ImageLayout, vk::ImageLayout),
) {
    let b = vk::ImageMemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE)
        .old_layout(layouts.0)
        .new_layout(layouts.1)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image)
        .subresource_range(range(aspect));
    barrier(d, cb, vk::PipelineStageFlags::TRANSFER, vk::PipelineStageFlags::TRANSFER, &[b]);
}

fn region(plane: &Plane, buffer_offset: u64) -> [vk::BufferImageCopy; 1] {
    [vk::BufferImageCopy::default()
        .buffer_offset(buffer_offset)
        .image_subresource(layers(plane.aspect))
        .image_extent(vk::Extent3D { width: plane.width, height: plane.height, depth: 1 })]
}

/// Copies `plane` of `image` (in `layout`) to `buffer` at `offset`, packed.
pub fn copy_to_buffer(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    (image, layout): (vk::Image, vk::ImageLayout),
    plane: &Plane,
    (buffer, offset): (vk::Buffer, u64),
) {
    // SAFETY: a command buffer in the recording state; the region lies in
    // both the image's plane and the buffer.
    unsafe { d.cmd_copy_image_to_buffer(cb, image, layout, buffer, &region(plane, offset)) }
}

/// Copies packed texels from `buffer` at `offset` into `plane` of `image`
/// (in `layout`).
pub fn copy_from_buffer(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    (buffer, offset): (vk::Buffer, u64),
    (image, layout): (vk::Image, vk::ImageLayout),
    plane: &Plane,
) {
    // SAFETY: a command buffer in the recording state; the region lies in
    // both the buffer and the image's plane.
    unsafe { d.cmd_copy_buffer_to_image(cb, buffer, image, layout, &region(plane, offset)) }
}

/// Clears a single-plane image (in `layout`) to `color`.
pub fn clear(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    (image, layout): (vk::Image, vk::ImageLayout),
    color: [f32; 4],
) {
    let value = vk::ClearColorValue { float32: color };
    // SAFETY: a command buffer in the recording state, an image of this
    // device with TRANSFER_DST usage in `layout`.
    unsafe { d.cmd_clear_color_image(cb, image, layout, &value, &[range(vk::ImageAspectFlags::COLOR)]) }
}

/// Records GPU work that takes a while before what follows it (a fill of
/// all of `scratch`, then a barrier): a peer that looks right after
/// `vkQueueSubmit` returns finds the later commands not yet run.
pub fn busy_work(d: &ash::Device, cb: vk::CommandBuffer, scratch: vk::Buffer) {
    let b = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE)];
    // SAFETY: a command buffer in the recording state and a buffer of this
    // device with TRANSFER_DST usage.
    unsafe {
        d.cmd_fill_buffer(cb, scratch, 0, vk::WHOLE_SIZE, 0x5ca7_c4ed);
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &b,
            &[],
            &[],
        )
    }
}

/// Makes the transfers' writes visible to the host.
pub fn to_host(d: &ash::Device, cb: vk::CommandBuffer) {
    host_read_barrier(d, cb, vk::PipelineStageFlags2::ALL_TRANSFER, vk::AccessFlags2::TRANSFER_WRITE);
}

/// A host-visible buffer holding every plane's packed texels, one plane
/// after the other: the source and destination of plane copies.
#[derive(Debug)]
pub struct Staging {
    pub buffer: StorageBuffer,
    /// Where each plane starts.
    pub offsets: Vec<u64>,
    lens: Vec<usize>,
}

impl Staging {
    pub fn new(c: &Client, planes: &[Plane]) -> Result<Self> {
        let lens: Vec<usize> = planes.iter().map(|p| p.packed_bytes() as usize).collect();
        let offsets =
            lens.iter().scan(0u64, |at, len| Some(std::mem::replace(at, *at + *len as u64))).collect();
        let total: usize = lens.iter().sum();
        let buffer = StorageBuffer::new(c, total.div_ceil(4) as u32)?;
        Ok(Staging { buffer, offsets, lens })
    }

    /// Plane `i`'s texels as the buffer holds them (after the GPU's copy).
    pub fn plane(&mut self, i: usize) -> Result<Vec<u8>> {
        let bytes = pixels::to_bytes(&self.buffer.read()?);
        let at = self.offsets[i] as usize;
        Ok(bytes[at..at + self.lens[i]].to_vec())
    }

    /// Puts `texels` as plane `i`'s.
    pub fn set_plane(&mut self, i: usize, texels: &[u8]) -> Result<()> {
        let mut bytes = pixels::to_bytes(&self.buffer.read()?);
        let at = self.offsets[i] as usize;
        bytes[at..at + self.lens[i]].copy_from_slice(&texels[..self.lens[i]]);
        self.buffer.write(&pixels::to_words(&bytes))
    }

    /// The buffer and plane `i`'s offset in it.
    pub fn at(&self, i: usize) -> (vk::Buffer, u64) {
        (self.buffer.buffer, self.offsets[i])
    }

    pub fn destroy(self, c: &Client) {
        self.buffer.destroy(c);
    }
}

/// A one-shot command buffer ([`Commands`]: its pool and fence) that `f`
/// records; submit it and wait for it with `Commands::submit` and
/// `Commands::wait`.
pub fn record(c: &Client, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<Commands> {
    let commands = Commands::new(c)?;
    let recorded = commands.begin(c).and_then(|_| {
        f(&c.device, commands.cb);
        commands.end(c)
    });
    match recorded {
        Ok(()) => Ok(commands),
        Err(e) => {
            commands.destroy(c);
            Err(e)
        }
    }
}

/// Records (with `f`), runs and waits for one command buffer.
pub fn run_once(c: &Client, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
    let commands = record(c, f)?;
    let ran = commands.submit(c).and_then(|_| commands.wait(c));
    commands.destroy(c);
    ran
}
