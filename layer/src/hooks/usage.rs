//! For hazard reports: which external memory each recorded command uses.
//! Transfer commands name their buffers and images; render passes and
//! dynamic rendering their attachments' image views; descriptor binds the
//! sets' buffers, image views and texel buffer views. Views, framebuffers
//! and descriptor sets are looked through when they are created or
//! written, and kept only when they lead to external memory.
//!
//! These hooks are handed to the application only when `DYNABUF_HAZARDS`
//! is not `off` (see `entry`); each returns at once while the device has no
//! external memory.

use ash::vk;

use crate::dispatch::Device;
use crate::registry::usage_index::UsageIndex;
use crate::registry::{CommandEvent, Resource};
use crate::views::usage::{DescriptorTarget, DescriptorWrite};

/// Records that `cb` uses `uses` (resource, writes), keeping those bound to
/// external memory.
pub fn commands_use(dev: &Device, cb: vk::CommandBuffer, uses: &[(Resource, bool)]) {
    record_uses(dev, cb, uses, false);
}

/// As [`commands_use`]; `via_descriptor` marks the uses of bound
/// descriptor sets, which never count as writes (a storage descriptor may
/// be only read: counting it would report read-only consumers as writers
/// that never release).
fn record_uses(dev: &Device, cb: vk::CommandBuffer, uses: &[(Resource, bool)], via_descriptor: bool) {
    if dev.state.hazards.is_none() || !dev.state.has_dma_buf_memory() || uses.is_empty() {
        return;
    }
    let events: Vec<CommandEvent> = dev.state.with_memory(|t| {
        uses.iter()
            .filter(|(r, _)| t.is_bound(*r))
            .map(|&(resource, writes)| CommandEvent::Use {
                resource,
                writes: writes && !via_descriptor,
                via_descriptor,
            })
            .collect()
    });
    if !events.is_empty() {
        dev.state.with_commands(|log| log.record_events(cb, events));
    }
}

/// Runs `f` on the device's usage index, when hazards are on.
fn with_index<R: Default>(dev: &Device, f: impl FnOnce(&mut UsageIndex) -> R) -> R {
    match &dev.state.hazards {
        Some(r) => r.with_usage(f),
        None => R::default(),
    }
}

fn is_bound(dev: &Device, resource: Resource) -> bool {
    dev.state.has_dma_buf_memory() && dev.state.with_memory(|t| t.is_bound(resource))
}

pub fn image_view_created(dev: &Device, view: vk::ImageView, image: vk::Image) {
    let bound = is_bound(dev, Resource::Image(image));
    with_index(dev, |u| u.image_view(view, bound.then_some(image)));
}

pub fn buffer_view_created(dev: &Device, view: vk::BufferView, buffer: vk::Buffer) {
    let bound = is_bound(dev, Resource::Buffer(buffer));
    with_index(dev, |u| u.buffer_view(view, bound.then_some(buffer)));
}

pub fn framebuffer_created(dev: &Device, fb: vk::Framebuffer, views: &[vk::ImageView]) {
    with_index(dev, |u| u.framebuffer(fb, views));
}

/// Sets allocated (their handles' old contents are gone), or rewritten
/// through a descriptor update template (not looked through: forgotten).
pub fn descriptor_sets_allocated(dev: &Device, sets: &[vk::DescriptorSet]) {
    if dev.state.hazards.as_ref().is_some_and(|h| h.has_tracked_sets()) {
        with_index(dev, |u| u.sets_allocated(sets));
    }
}

/// `vkUpdateDescriptorSets`.
pub fn descriptors_updated(dev: &Device, writes: &[DescriptorWrite], copies: &[vk::CopyDescriptorSet<'_>]) {
    if dev.state.hazards.is_none() {
        return;
    }
    // Buffers are checked against the memory table first (a lower lock
    // level than the index's).
    let bound_buffers: Vec<bool> = writes
        .iter()
        .map(|w| match w.target {
            Some(DescriptorTarget::Buffer(b)) => is_bound(dev, Resource::Buffer(b)),
            _ => false,
        })
        .collect();
    with_index(dev, |u| {
        for (w, bound) in writes.iter().zip(bound_buffers) {
            let resource = match w.target {
                Some(DescriptorTarget::Buffer(b)) => bound.then_some(Resource::Buffer(b)),
                Some(DescriptorTarget::ImageView(v)) => u.image_of(v).map(Resource::Image),
                Some(DescriptorTarget::BufferView(v)) => u.buffer_of(v).map(Resource::Buffer),
                None => None,
            };
            u.descriptor(w.set, (w.binding, w.element), resource.map(|r| (r, w.writes)));
        }
        for c in copies {
            u.descriptors_copied(
                (c.src_set, c.src_binding, c.src_array_element),
                (c.dst_set, c.dst_binding, c.dst_array_element),
                c.descriptor_count,
            );
        }
    });
}

/// `vkCmdBindDescriptorSets`: the sets' resources are used by the draws and
/// dispatches that follow.
pub fn descriptor_sets_bound(dev: &Device, cb: vk::CommandBuffer, sets: &[vk::DescriptorSet]) {
    if !dev.state.hazards.as_ref().is_some_and(|h| h.has_tracked_sets()) {
        return;
    }
    let uses = with_index(dev, |u| u.resources_of_sets(sets));
    record_uses(dev, cb, &uses, true);
}

/// `vkCmdBeginRenderPass{,2}`: the framebuffer's attachments (or an
/// imageless framebuffer's views) are written.
pub fn render_pass_begun(
    dev: &Device,
    cb: vk::CommandBuffer,
    fb: vk::Framebuffer,
    imageless: &[vk::ImageView],
) {
    if dev.state.hazards.is_none() || !dev.state.has_dma_buf_memory() {
        return;
    }
    let images =
        with_index(
            dev,
            |u| if imageless.is_empty() { u.framebuffer_images(fb) } else { u.images_of(imageless) },
        );
    let uses: Vec<(Resource, bool)> = images.into_iter().map(|i| (Resource::Image(i), true)).collect();
    commands_use(dev, cb, &uses);
}

/// `vkCmdBeginRendering`: its attachments are written.
pub fn rendering_begun(dev: &Device, cb: vk::CommandBuffer, views: &[vk::ImageView]) {
    if dev.state.hazards.is_none() || !dev.state.has_dma_buf_memory() {
        return;
    }
    let images = with_index(dev, |u| u.images_of(views));
    let uses: Vec<(Resource, bool)> = images.into_iter().map(|i| (Resource::Image(i), true)).collect();
    commands_use(dev, cb, &uses);
}
