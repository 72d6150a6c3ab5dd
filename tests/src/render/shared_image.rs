//! The demo's shared image: an RGBA8 colour image in dedicated memory that
//! one device allocates exportable and exports as an fd, and another
//! imports. Where the exporter has `VK_EXT_image_drm_format_modifier` and
//! can export it as a dma-buf, it is a `DRM_FORMAT_MODIFIER_EXT` image (a
//! modifier the driver picks from the list it supports) described the way a
//! compositor receives a dma-buf: modifier, plane offset and row pitch,
//! read back with `vkGetImageDrmFormatModifierPropertiesEXT` and
//! `vkGetImageSubresourceLayout(MEMORY_PLANE_0)`, and imported with
//! `VkImageDrmFormatModifierExplicitCreateInfoEXT`. Elsewhere (lavapipe
//! without `/dev/udmabuf`) it is an optimal-tiling image shared as an
//! `OPAQUE_FD`, which the importer creates identically.

use std::os::fd::{AsFd, OwnedFd};

use ash::vk;

use crate::external::{export_memory_fd, import_memory, importable_types};
use crate::vulkan::Client;
use crate::{Context, Error, Result};

pub const FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;
/// Both sides create the image with the same usage: the producer renders
/// into it, and both sample it.
const USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(
    vk::ImageUsageFlags::COLOR_ATTACHMENT.as_raw() | vk::ImageUsageFlags::SAMPLED.as_raw(),
);
const FEATURES: vk::FormatFeatureFlags = vk::FormatFeatureFlags::from_raw(
    vk::FormatFeatureFlags::COLOR_ATTACHMENT.as_raw() | vk::FormatFeatureFlags::SAMPLED_IMAGE.as_raw(),
);
const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
const OPAQUE_FD: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;

/// How the memory is laid out, as the importer must be told.
#[derive(Clone, Copy, Debug)]
pub enum Tiling {
    /// `DRM_FORMAT_MODIFIER_EXT` with this modifier and its one plane.
    Modifier { modifier: u64, offset: u64, row_pitch: u64 },
    /// `OPTIMAL`, shared as an opaque fd.
    Opaque,
}

/// What the importer needs besides the fd.
#[derive(Clone, Copy, Debug)]
pub struct Description {
    pub width: u32,
    pub height: u32,
    pub tiling: Tiling,
    /// The exported allocation's size.
    pub size: u64,
}

impl Description {
    pub fn handle_type(&self) -> vk::ExternalMemoryHandleTypeFlags {
        match self.tiling {
            Tiling::Modifier { .. } => DMA_BUF,
            Tiling::Opaque => OPAQUE_FD,
        }
    }
}

/// An image bound to dedicated external memory.
#[derive(Debug)]
pub struct SharedImage {
    pub image: vk::Image,
    pub memory: vk::DeviceMemory,
    pub desc: Description,
}

impl SharedImage {
    /// A `width`×`height` image in memory allocated exportable: a
    /// DRM-modifier dma-buf where the device can, else an opaque fd.
    pub fn exportable(c: &Client, width: u32, height: u32) -> Result<Self> {
        let modifiers = exportable_modifiers(c);
        let handle_type = if modifiers.is_empty() { OPAQUE_FD } else { DMA_BUF };
        if modifiers.is_empty() && !shareable(c, vk::ImageTiling::OPTIMAL, OPAQUE_FD, None) {
            return Err(Error("the producer can export this image neither as a dma-buf nor as an fd".into()));
        }
        let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(handle_type);
        let mut list =
            vk::ImageDrmFormatModifierListCreateInfoEXT::default().drm_format_modifiers(&modifiers);
        let info = image_info(width, height, !modifiers.is_empty()).push_next(&mut external);
        let info = if modifiers.is_empty() { info } else { info.push_next(&mut list) };
        let image = create_image(c, &info)?;
        // SAFETY: an image of this device.
        let req = unsafe { c.device.get_image_memory_requirements(image) };
        let memory = memory_type(c, req.memory_type_bits).and_then(|type_index| {
            crate::external::allocate_exportable_for_image(c, image, req.size, type_index, handle_type)
        });
        let placeholder = Description { width, height, tiling: Tiling::Opaque, size: req.size };
        let mut shared = bind(c, image, memory, placeholder)?;
        if !modifiers.is_empty() {
            shared.desc.tiling = modifier_layout(c, image).inspect_err(|_| shared.destroy_ref(c))?;
        }
        Ok(shared)
    }

    /// Exports the memory as a new fd (`vkGetMemoryFdKHR`).
    pub fn export_fd(&self, c: &Client) -> Result<OwnedFd> {
        export_memory_fd(c, self.memory, self.desc.handle_type())
    }

    /// The image `desc` describes, in memory imported from `fd` (which the
    /// driver takes on success and is closed on failure).
    pub fn import(c: &Client, fd: OwnedFd, desc: Description) -> Result<Self> {
        let handle_type = desc.handle_type();
        let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(handle_type);
        let (modifier, planes) = match desc.tiling {
            Tiling::Modifier { modifier, offset, row_pitch } => {
                (modifier, vec![vk::SubresourceLayout { offset, row_pitch, ..Default::default() }])
            }
            Tiling::Opaque => (0, vec![]),
        };
        let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
            .drm_format_modifier(modifier)
            .plane_layouts(&planes);
        let info = image_info(desc.width, desc.height, !planes.is_empty()).push_next(&mut external);
        let info = if planes.is_empty() { info } else { info.push_next(&mut explicit) };
        let image = create_image(c, &info)?;
        // SAFETY: an image of this device.
        let req = unsafe { c.device.get_image_memory_requirements(image) };
        let memory = importable_types(c, fd.as_fd(), handle_type)
            .ctx("vkGetMemoryFdPropertiesKHR")
            .and_then(|fd_types| memory_type(c, req.memory_type_bits & fd_types))
            .and_then(|type_index| {
                let dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
                import_memory(c, fd, handle_type, desc.size, type_index, dedicated)
                    .ctx("vkAllocateMemory(import)")
            });
        bind(c, image, memory, desc)
    }

    fn destroy_ref(&self, c: &Client) {
        // SAFETY: objects this image owns; the caller waited for its work.
        unsafe {
            c.device.destroy_image(self.image, None);
            c.device.free_memory(self.memory, None);
        }
    }

    pub fn destroy(self, c: &Client) {
        self.destroy_ref(c);
    }
}

/// The create info both sides use; `modifier`: DRM-format-modifier tiling
/// (the caller chains the modifier list or the explicit modifier).
fn image_info<'a>(width: u32, height: u32, modifier: bool) -> vk::ImageCreateInfo<'a> {
    let tiling = if modifier { vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT } else { vk::ImageTiling::OPTIMAL };
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(FORMAT)
        .extent(vk::Extent3D { width, height, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(tiling)
        .usage(USAGE)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
}

fn create_image(c: &Client, info: &vk::ImageCreateInfo<'_>) -> Result<vk::Image> {
    // SAFETY: a valid create info whose chain outlives the call.
    unsafe { c.device.create_image(info, None) }.ctx("vkCreateImage")
}

/// A memory type among `type_bits` (any: the host never maps this memory).
fn memory_type(c: &Client, type_bits: u32) -> Result<u32> {
    c.memory_type(type_bits, vk::MemoryPropertyFlags::empty())
        .ok_or_else(|| Error(format!("no memory type among {type_bits:#x} for the shared image")))
}

/// Binds `image` to `memory` (dedicated to it: exported and imported
/// images are, in Mesa's WSI and every compositor), or destroys what there
/// is.
fn bind(
    c: &Client,
    image: vk::Image,
    memory: Result<vk::DeviceMemory>,
    desc: Description,
) -> Result<SharedImage> {
    let memory = memory.inspect_err(|_| {
        // SAFETY: an unbound image nothing uses.
        unsafe { c.device.destroy_image(image, None) }
    })?;
    let shared = SharedImage { image, memory, desc };
    // SAFETY: an unbound image and dedicated memory large enough for it.
    unsafe { c.device.bind_image_memory(image, memory, 0) }
        .ctx("vkBindImageMemory")
        .inspect_err(|_| shared.destroy_ref(c))?;
    Ok(shared)
}

/// The modifiers the driver can render and sample an RGBA8 image in,
/// with one plane, exportable and importable as a dma-buf; none without
/// `VK_EXT_image_drm_format_modifier` or dma-buf export.
fn exportable_modifiers(c: &Client) -> Vec<u64> {
    if !c.has_extension(ash::ext::image_drm_format_modifier::NAME) {
        return vec![];
    }
    let all = crate::image::modifiers::offered(c, FORMAT);
    all.iter()
        .filter(|m| m.drm_format_modifier_plane_count == 1)
        .filter(|m| m.drm_format_modifier_tiling_features.contains(FEATURES))
        .map(|m| m.drm_format_modifier)
        .filter(|&m| shareable(c, vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT, DMA_BUF, Some(m)))
        .collect()
}

/// Whether an image of this module's format and usage with `tiling` (and
/// `modifier`) can be exported and imported as `handle_type`.
fn shareable(
    c: &Client,
    tiling: vk::ImageTiling,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    modifier: Option<u64>,
) -> bool {
    let mut external = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(handle_type);
    let mut with_modifier = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .drm_format_modifier(modifier.unwrap_or(0))
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(FORMAT)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(tiling)
        .usage(USAGE)
        .push_next(&mut external);
    if modifier.is_some() {
        info = info.push_next(&mut with_modifier);
    }
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: a physical device of this instance and valid structs.
    let ok = unsafe {
        c.instance.get_physical_device_image_format_properties2(c.physical, &info, &mut props).is_ok()
    };
    let both = vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    ok && external_props.external_memory_properties.external_memory_features.contains(both)
}

/// The modifier the driver chose for `image` and its plane's layout.
fn modifier_layout(c: &Client, image: vk::Image) -> Result<Tiling> {
    let ext = ash::ext::image_drm_format_modifier::Device::new(&c.instance, &c.device);
    let mut props = vk::ImageDrmFormatModifierPropertiesEXT::default();
    // SAFETY: a DRM-modifier image of this device, bound to memory.
    unsafe { ext.get_image_drm_format_modifier_properties(image, &mut props) }
        .ctx("vkGetImageDrmFormatModifierPropertiesEXT")?;
    let plane = vk::ImageSubresource::default().aspect_mask(vk::ImageAspectFlags::MEMORY_PLANE_0_EXT);
    // SAFETY: as above; MEMORY_PLANE_0 is the aspect of a one-plane modifier.
    let layout = unsafe { c.device.get_image_subresource_layout(image, plane) };
    Ok(Tiling::Modifier {
        modifier: props.drm_format_modifier,
        offset: layout.offset,
        row_pitch: layout.row_pitch,
    })
}
