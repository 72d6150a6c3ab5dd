//! What the layer reads of image creation and binding: whether an image is
//! created for dma-buf memory, and which plane a `vkBindImageMemory2`
//! binding is for.

use ash::vk;

use super::pnext;
use crate::registry::Planes;

/// Whether `info` creates an image that may be bound to dma-buf memory
/// (`VkExternalMemoryImageCreateInfo` naming the handle type).
///
/// # Safety
/// `info.p_next` must be a valid chain (Vulkan valid usage).
pub unsafe fn for_dma_buf(info: &vk::ImageCreateInfo<'_>) -> bool {
    // SAFETY: forwarded from this function's contract.
    let external: Option<&vk::ExternalMemoryImageCreateInfo<'_>> = unsafe { pnext::find(info.p_next) };
    external.is_some_and(|e| e.handle_types.contains(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT))
}

/// The planes `info` binds: one plane of a disjoint image
/// (`VkBindImagePlaneMemoryInfo`), or the whole image.
///
/// # Safety
/// `info.p_next` must be a valid chain (Vulkan valid usage).
pub unsafe fn planes_of(info: &vk::BindImageMemoryInfo<'_>) -> Planes {
    // SAFETY: forwarded from this function's contract.
    let plane: Option<&vk::BindImagePlaneMemoryInfo<'_>> = unsafe { pnext::find(info.p_next) };
    plane.map_or(Planes::ALL, |p| Planes::of_aspect(p.plane_aspect))
}
