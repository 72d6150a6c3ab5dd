//! What the application's recording commands and descriptor writes touch,
//! read out of their raw structures for hazard reports: image views of a
//! render pass or dynamic rendering, the resources a descriptor write
//! points at.

use ash::vk;

use super::slice;

/// What one descriptor points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorTarget {
    Buffer(vk::Buffer),
    ImageView(vk::ImageView),
    BufferView(vk::BufferView),
}

/// One descriptor of a `VkWriteDescriptorSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorWrite {
    pub set: vk::DescriptorSet,
    pub binding: u32,
    pub element: u32,
    /// `None` for samplers and for descriptor types the layer ignores.
    pub target: Option<DescriptorTarget>,
    /// Whether shaders may write through it (storage descriptors).
    pub writes: bool,
}

/// How shaders use a descriptor type: `Some(writes)` for the ones that
/// reach memory through a buffer, image view or texel buffer view.
fn reaches_memory(t: vk::DescriptorType) -> Option<bool> {
    match t {
        vk::DescriptorType::STORAGE_BUFFER
        | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
        | vk::DescriptorType::STORAGE_IMAGE
        | vk::DescriptorType::STORAGE_TEXEL_BUFFER => Some(true),
        vk::DescriptorType::UNIFORM_BUFFER
        | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
        | vk::DescriptorType::SAMPLED_IMAGE
        | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
        | vk::DescriptorType::INPUT_ATTACHMENT
        | vk::DescriptorType::UNIFORM_TEXEL_BUFFER => Some(false),
        _ => None,
    }
}

/// Every descriptor the writes set.
///
/// # Safety
/// `writes` must be valid `VkWriteDescriptorSet`s (Vulkan valid usage: the
/// array that the descriptor type selects holds `descriptor_count`
/// elements).
pub unsafe fn descriptor_writes(writes: &[vk::WriteDescriptorSet<'_>]) -> Vec<DescriptorWrite> {
    let mut out = Vec::new();
    for w in writes {
        let Some(writes) = reaches_memory(w.descriptor_type) else { continue };
        let n = w.descriptor_count;
        let targets: Vec<Option<DescriptorTarget>> = match w.descriptor_type {
            vk::DescriptorType::STORAGE_BUFFER
            | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
            | vk::DescriptorType::UNIFORM_BUFFER
            | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC => {
                // SAFETY: for buffer types `p_buffer_info` holds `n` elements.
                unsafe { slice(w.p_buffer_info, n) }
                    .iter()
                    .map(|b| (b.buffer != vk::Buffer::null()).then_some(DescriptorTarget::Buffer(b.buffer)))
                    .collect()
            }
            vk::DescriptorType::STORAGE_TEXEL_BUFFER | vk::DescriptorType::UNIFORM_TEXEL_BUFFER => {
                // SAFETY: for texel buffer types `p_texel_buffer_view` holds `n`.
                unsafe { slice(w.p_texel_buffer_view, n) }
                    .iter()
                    .map(|v| (*v != vk::BufferView::null()).then_some(DescriptorTarget::BufferView(*v)))
                    .collect()
            }
            _ => {
                // SAFETY: for image types `p_image_info` holds `n` elements.
                unsafe { slice(w.p_image_info, n) }
                    .iter()
                    .map(|i| {
                        (i.image_view != vk::ImageView::null())
                            .then_some(DescriptorTarget::ImageView(i.image_view))
                    })
                    .collect()
            }
        };
        out.extend(targets.into_iter().enumerate().map(|(i, target)| DescriptorWrite {
            set: w.dst_set,
            binding: w.dst_binding,
            element: w.dst_array_element.wrapping_add(i as u32),
            target,
            writes,
        }));
    }
    out
}

/// The image views a dynamic rendering instance draws into (and resolves
/// into).
///
/// # Safety
/// `info` must be a valid `VkRenderingInfo` (Vulkan valid usage).
pub unsafe fn rendering_views(info: &vk::RenderingInfo<'_>) -> Vec<vk::ImageView> {
    // SAFETY: `p_color_attachments` holds `color_attachment_count` elements.
    let colors = unsafe { slice(info.p_color_attachments, info.color_attachment_count) };
    // SAFETY: null or valid attachment infos.
    let others = unsafe { [info.p_depth_attachment.as_ref(), info.p_stencil_attachment.as_ref()] };
    colors
        .iter()
        .chain(others.into_iter().flatten())
        .flat_map(|a| [a.image_view, a.resolve_image_view])
        .filter(|v| *v != vk::ImageView::null())
        .collect()
}

/// The image views of an imageless framebuffer, given at
/// `vkCmdBeginRenderPass` (`VkRenderPassAttachmentBeginInfo`).
///
/// # Safety
/// `info` must be a valid `VkRenderPassBeginInfo` with a valid chain.
pub unsafe fn render_pass_views(info: &vk::RenderPassBeginInfo<'_>) -> Vec<vk::ImageView> {
    // SAFETY: the application's valid chain.
    let found: Option<&vk::RenderPassAttachmentBeginInfo<'_>> = unsafe { super::pnext::find(info.p_next) };
    // SAFETY: `p_attachments` holds `attachment_count` views.
    found.map(|a| unsafe { slice(a.p_attachments, a.attachment_count) }.to_vec()).unwrap_or_default()
}

/// A timeline semaphore's initial value, `None` for a binary semaphore.
///
/// # Safety
/// `info` must be a valid `VkSemaphoreCreateInfo` with a valid chain.
pub unsafe fn timeline_initial_value(info: &vk::SemaphoreCreateInfo<'_>) -> Option<u64> {
    // SAFETY: the application's valid chain.
    let t: Option<&vk::SemaphoreTypeCreateInfo<'_>> = unsafe { super::pnext::find(info.p_next) };
    t.filter(|t| t.semaphore_type == vk::SemaphoreType::TIMELINE).map(|t| t.initial_value)
}
