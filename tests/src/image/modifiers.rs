//! DRM format modifiers (`VK_EXT_image_drm_format_modifier`): which a
//! device offers for a format, whether an image with one can be imported
//! from a dma-buf, the layout an importer chooses, and the modifier and
//! layout an exported image got.

use ash::vk;

use super::{ExternalImage, Plane, DMA_BUF};
use crate::vulkan::Client;
use crate::{Context, Result};

/// `DRM_FORMAT_MOD_LINEAR`.
pub const LINEAR: u64 = 0;

/// The modifiers the device offers for `format`
/// (`VkDrmFormatModifierPropertiesListEXT`), with their plane counts and
/// features.
pub fn offered(c: &Client, format: vk::Format) -> Vec<vk::DrmFormatModifierPropertiesEXT> {
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: a physical device of this instance and a valid out chain.
    unsafe { c.instance.get_physical_device_format_properties2(c.physical, format, &mut props) };
    let n = list.drm_format_modifier_count as usize;
    let mut out = vec![vk::DrmFormatModifierPropertiesEXT::default(); n];
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default().drm_format_modifier_properties(&mut out);
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: as above, with room for `n` entries.
    unsafe { c.instance.get_physical_device_format_properties2(c.physical, format, &mut props) };
    let n = list.drm_format_modifier_count as usize;
    out.truncate(n);
    out
}

/// The modifiers the device lists for `format` in
/// `VkDrmFormatModifierPropertiesList2EXT` (`VK_KHR_format_feature_flags2`,
/// where validation looks for a modifier image's features), with their
/// tiling features.
pub fn offered2(c: &Client, format: vk::Format) -> Vec<(u64, vk::FormatFeatureFlags2)> {
    let mut list = vk::DrmFormatModifierPropertiesList2EXT::default();
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: a physical device of this instance and a valid out chain.
    unsafe { c.instance.get_physical_device_format_properties2(c.physical, format, &mut props) };
    let n = list.drm_format_modifier_count as usize;
    let mut out = vec![vk::DrmFormatModifierProperties2EXT::default(); n];
    let mut list =
        vk::DrmFormatModifierPropertiesList2EXT::default().drm_format_modifier_properties(&mut out);
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: as above, with room for `n` entries.
    unsafe { c.instance.get_physical_device_format_properties2(c.physical, format, &mut props) };
    let n = list.drm_format_modifier_count as usize;
    out.truncate(n);
    out.iter().map(|m| (m.drm_format_modifier, m.drm_format_modifier_tiling_features)).collect()
}

/// Whether a transfer-only 2D image of `format` with `modifier` can live
/// in dma-buf memory (`vkGetPhysicalDeviceImageFormatProperties2`): the
/// result, and the external memory features when it can.
pub fn importable(
    c: &Client,
    format: vk::Format,
    modifier: u64,
) -> std::result::Result<vk::ExternalMemoryFeatureFlags, vk::Result> {
    let mut drm = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .drm_format_modifier(modifier)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut external = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(DMA_BUF);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .push_next(&mut drm)
        .push_next(&mut external);
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: a physical device of this instance, valid in and out chains.
    unsafe { c.instance.get_physical_device_image_format_properties2(c.physical, &info, &mut props) }?;
    Ok(external_props.external_memory_properties.external_memory_features)
}

/// The layout an importer chooses for a single-plane image: `(offset,
/// row pitch)`, or by default rows of `plane.row_bytes()` rounded up to 256
/// bytes from offset 0.
pub fn chosen_layout(plane: &Plane, layout: Option<(u64, u64)>) -> vk::SubresourceLayout {
    let (offset, row_pitch) = layout.unwrap_or((0, plane.row_bytes().next_multiple_of(256)));
    vk::SubresourceLayout {
        offset,
        row_pitch,
        size: row_pitch * u64::from(plane.height),
        ..Default::default()
    }
}

/// The modifier an image got (`vkGetImageDrmFormatModifierPropertiesEXT`).
pub fn modifier_of(c: &Client, image: &ExternalImage) -> Result<u64> {
    let ext = ash::ext::image_drm_format_modifier::Device::new(&c.instance, &c.device);
    let mut props = vk::ImageDrmFormatModifierPropertiesEXT::default();
    // SAFETY: an image of this device created with DRM-format-modifier tiling.
    unsafe { ext.get_image_drm_format_modifier_properties(image.image, &mut props) }
        .ctx("vkGetImageDrmFormatModifierPropertiesEXT")?;
    Ok(props.drm_format_modifier)
}
