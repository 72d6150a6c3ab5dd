//! Images in dma-bufs: RGBA8 images with `LINEAR` or DRM-format-modifier
//! tiling and multi-planar YCbCr images (NV12, three-plane 4:2:0), whole
//! or with `DISJOINT` planes, imported from one or several dma-bufs (one
//! dma-buf may back several planes, at different offsets) or exported with
//! a modifier the driver picks; each plane's layout in its dma-buf is what
//! the CPU side needs to check pixels.
//!
//! * [`planar`]: the planes of a format (aspect, texel size, extent);
//! * [`modifiers`]: the modifiers a device offers for a format, and the
//!   modifier and layout of an exported image;
//! * [`commands`]: ownership-transfer barriers naming planes, copies and
//!   clears, one-shot command buffers;
//! * [`pixels`]: the CPU's view of a plane in a dma-buf's bytes.

pub mod commands;
pub mod modifiers;
pub mod pixels;
pub mod planar;

use std::os::fd::BorrowedFd;

use ash::vk;

use crate::external::{export_memory_fd, import_memory, importable_types};
use crate::vulkan::Client;
use crate::{Context, Error, Result};

pub use planar::Plane;

/// 8-bit RGBA, one plane.
pub const RGBA8: vk::Format = vk::Format::R8G8B8A8_UNORM;
/// NV12: a Y plane and an interleaved CbCr plane at half resolution.
pub const NV12: vk::Format = vk::Format::G8_B8R8_2PLANE_420_UNORM;
/// Three planes, Y, Cb and Cr, the chroma ones at half resolution.
pub const YUV420_3P: vk::Format = vk::Format::G8_B8_R8_3PLANE_420_UNORM;

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// How an image's texels are laid out in memory.
#[derive(Clone, Debug)]
pub enum Tiling {
    /// `VK_IMAGE_TILING_LINEAR`: the driver picks the layout.
    Linear,
    /// `VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT` with this modifier and
    /// these plane layouts (`VkImageDrmFormatModifierExplicitCreateInfoEXT`).
    Explicit { modifier: u64, planes: Vec<vk::SubresourceLayout> },
    /// `VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT`, the driver picking one of
    /// these (`VkImageDrmFormatModifierListCreateInfoEXT`); exportable only.
    AnyOf(Vec<u64>),
}

/// An image's format, size, tiling and whether its planes are disjoint.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub format: vk::Format,
    pub width: u32,
    pub height: u32,
    pub tiling: Tiling,
    /// `VK_IMAGE_CREATE_DISJOINT_BIT`: each plane bound to memory of its own.
    pub disjoint: bool,
}

impl ImageSpec {
    /// The image's planes.
    pub fn planes(&self) -> Vec<Plane> {
        planar::planes(self.format, self.width, self.height)
    }
}

/// Where a plane lies in the dma-buf it is bound to (bind offset included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Which of the image's bindings (dma-bufs) holds the plane.
    pub binding: usize,
    pub offset: u64,
    pub row_pitch: u64,
    pub size: u64,
}

/// A dma-buf an image (or one plane of it) is bound to, at `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub fd: BorrowedFd<'a>,
    pub offset: u64,
}

/// An image bound to imported or exportable dma-buf memory: one memory for
/// the image, or one per plane of a disjoint image.
#[derive(Debug)]
pub struct ExternalImage {
    pub image: vk::Image,
    pub spec: ImageSpec,
    pub memories: Vec<vk::DeviceMemory>,
    /// Each plane's layout, in plane order.
    pub layouts: Vec<PlaneLayout>,
}

fn create_image(c: &Client, spec: &ImageSpec) -> Result<vk::Image> {
    let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(DMA_BUF);
    let explicit_layouts;
    let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default();
    let mut list = vk::ImageDrmFormatModifierListCreateInfoEXT::default();
    let mut info = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(spec.format)
        .extent(vk::Extent3D { width: spec.width, height: spec.height, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
        .push_next(&mut external);
    if spec.disjoint {
        info = info.flags(vk::ImageCreateFlags::DISJOINT);
    }
    info = match &spec.tiling {
        Tiling::Linear => info.tiling(vk::ImageTiling::LINEAR),
        Tiling::Explicit { modifier, planes } => {
            // The plane sizes must be 0 here (the driver works them out).
            explicit_layouts =
                planes.iter().map(|l| vk::SubresourceLayout { size: 0, ..*l }).collect::<Vec<_>>();
            explicit = explicit.drm_format_modifier(*modifier).plane_layouts(&explicit_layouts);
            info.tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT).push_next(&mut explicit)
        }
        Tiling::AnyOf(modifiers) => {
            list = list.drm_format_modifiers(modifiers);
            info.tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT).push_next(&mut list)
        }
    };
    // SAFETY: a valid create info whose chain outlives the call.
    unsafe { c.device.create_image(&info, None) }.ctx("vkCreateImage")
}

/// The memory requirements of the image (`plane: None`) or of one plane of
/// a disjoint image.
pub fn requirements(
    c: &Client,
    image: vk::Image,
    plane: Option<vk::ImageAspectFlags>,
) -> vk::MemoryRequirements {
    let mut plane_info = vk::ImagePlaneMemoryRequirementsInfo::default();
    let mut info = vk::ImageMemoryRequirementsInfo2::default().image(image);
    if let Some(aspect) = plane {
        plane_info = plane_info.plane_aspect(aspect);
        info = info.push_next(&mut plane_info);
    }
    let mut out = vk::MemoryRequirements2::default();
    // SAFETY: an image of this device; a plane aspect only for a disjoint one.
    unsafe { c.device.get_image_memory_requirements2(&info, &mut out) };
    out.memory_requirements
}

/// The memory requirements of an image made as `spec` says: one entry, or
/// one per plane of a disjoint image (from an image made and destroyed
/// here), so an importer can size and place its dma-bufs first.
pub fn requirements_of(c: &Client, spec: &ImageSpec) -> Result<Vec<vk::MemoryRequirements>> {
    let image = create_image(c, spec)?;
    let reqs = match spec.disjoint {
        true => spec.planes().iter().map(|p| requirements(c, image, Some(p.aspect))).collect(),
        false => vec![requirements(c, image, None)],
    };
    // SAFETY: an unbound image of this device, never used.
    unsafe { c.device.destroy_image(image, None) };
    Ok(reqs)
}

/// The size of the dma-buf behind `fd` (its end, through `lseek`).
pub fn dma_buf_size(fd: BorrowedFd<'_>) -> Result<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: lseek on a borrowed open fd changes only its file offset.
    let end = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
    // SAFETY: as above; back to the start for any reader of the same file.
    unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) };
    u64::try_from(end).map_err(|_| Error("lseek(dma-buf): not seekable".into()))
}

impl ExternalImage {
    /// An image imported from dma-bufs: `bindings` has one entry for the
    /// whole image (a dedicated import of the image's size), or one per
    /// plane of a disjoint image (the same dma-buf may come twice; each
    /// imports its whole dma-buf).
    pub fn import(c: &Client, spec: ImageSpec, bindings: &[Binding<'_>]) -> Result<Self> {
        let planes = spec.planes();
        let wanted = if spec.disjoint { planes.len() } else { 1 };
        if bindings.len() != wanted {
            return Err(Error(format!("{} bindings for {wanted} memories", bindings.len())));
        }
        let image = create_image(c, &spec)?;
        let mut this = ExternalImage { image, spec, memories: Vec::new(), layouts: Vec::new() };
        let outcome = (|| {
            for (i, b) in bindings.iter().enumerate() {
                let aspect = this.spec.disjoint.then(|| planes[i].aspect);
                let req = requirements(c, image, aspect);
                let fd_types = importable_types(c, b.fd, DMA_BUF).ctx("vkGetMemoryFdPropertiesKHR")?;
                let type_index = c
                    .memory_type(req.memory_type_bits & fd_types, vk::MemoryPropertyFlags::empty())
                    .ok_or_else(|| {
                        Error(format!("no memory type for binding {i}: {req:?}, fd {fd_types:#x}"))
                    })?;
                // A dedicated import is exactly the image's size; a plane's
                // import is the whole dma-buf (planes may sit at offsets).
                let (size, dedicated) = match this.spec.disjoint {
                    true => (dma_buf_size(b.fd)?, vk::MemoryDedicatedAllocateInfo::default()),
                    false => (req.size, vk::MemoryDedicatedAllocateInfo::default().image(image)),
                };
                let fd = b.fd.try_clone_to_owned().ctx("dup")?;
                let memory = import_memory(c, fd, DMA_BUF, size, type_index, dedicated)
                    .ctx(&format!("vkAllocateMemory(import binding {i}, {size} bytes)"))?;
                this.memories.push(memory);
            }
            let offsets: Vec<u64> = bindings.iter().map(|b| b.offset).collect();
            this.bind(c, &offsets)
        })();
        match outcome {
            Ok(()) => Ok(this),
            Err(e) => {
                this.destroy(c);
                Err(e)
            }
        }
    }

    /// An image in fresh memory allocated exportable as a dma-buf (one
    /// memory; `spec` not disjoint).
    pub fn exportable(c: &Client, spec: ImageSpec) -> Result<Self> {
        let image = create_image(c, &spec)?;
        let mut this = ExternalImage { image, spec, memories: Vec::new(), layouts: Vec::new() };
        let outcome = (|| {
            let req = requirements(c, image, None);
            let type_index = c
                .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty())
                .ok_or_else(|| Error(format!("no memory type for {req:?}")))?;
            let memory =
                crate::external::allocate_exportable_for_image(c, image, req.size, type_index, DMA_BUF)?;
            this.memories.push(memory);
            this.bind(c, &[0])
        })();
        match outcome {
            Ok(()) => Ok(this),
            Err(e) => {
                this.destroy(c);
                Err(e)
            }
        }
    }

    /// Binds the memories at `offsets` (`VkBindImagePlaneMemoryInfo` per
    /// plane when disjoint) and reads each plane's layout.
    fn bind(&mut self, c: &Client, offsets: &[u64]) -> Result<()> {
        let planes = self.spec.planes();
        let mut plane_infos: Vec<_> =
            planes.iter().map(|p| vk::BindImagePlaneMemoryInfo::default().plane_aspect(p.aspect)).collect();
        let mut infos = Vec::new();
        for (i, plane_info) in plane_infos.iter_mut().enumerate().take(self.memories.len()) {
            let info = vk::BindImageMemoryInfo::default()
                .image(self.image)
                .memory(self.memories[i])
                .memory_offset(offsets[i]);
            infos.push(if self.spec.disjoint { info.push_next(plane_info) } else { info });
        }
        // SAFETY: an unbound image and memories large enough, chains alive.
        unsafe { c.device.bind_image_memory2(&infos) }.ctx("vkBindImageMemory2")?;
        self.layouts = (0..planes.len())
            .map(|i| {
                // lavapipe (25.0) places an explicit layout's plane at its
                // offset but reports offset 0 for it: the importer's own
                // layout is the truth.
                let l = match &self.spec.tiling {
                    Tiling::Explicit { planes, .. } => planes[i],
                    _ => self.reported_layout(c, i),
                };
                let binding = if self.spec.disjoint { i } else { 0 };
                PlaneLayout {
                    binding,
                    offset: offsets[binding] + l.offset,
                    row_pitch: l.row_pitch,
                    size: l.size,
                }
            })
            .collect();
        Ok(())
    }

    /// Plane `i`'s layout as the driver reports it
    /// (`vkGetImageSubresourceLayout` with `MEMORY_PLANE_i_EXT` for
    /// DRM-format-modifier tiling, else `COLOR` or `PLANE_i`), relative to
    /// its binding.
    pub fn reported_layout(&self, c: &Client, i: usize) -> vk::SubresourceLayout {
        const MEMORY_PLANES: [vk::ImageAspectFlags; 3] = [
            vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
        ];
        let aspect = match self.spec.tiling {
            Tiling::Linear => self.spec.planes()[i].aspect,
            _ => MEMORY_PLANES[i],
        };
        let sub = vk::ImageSubresource { aspect_mask: aspect, mip_level: 0, array_layer: 0 };
        // SAFETY: a bound image of this device and one of its aspects.
        unsafe { c.device.get_image_subresource_layout(self.image, sub) }
    }

    /// The (single) memory of an exportable image as a new dma-buf fd.
    pub fn export_fd(&self, c: &Client) -> Result<std::os::fd::OwnedFd> {
        let memory = *self.memories.first().ok_or_else(|| Error("the image has no memory".into()))?;
        export_memory_fd(c, memory, DMA_BUF)
    }

    pub fn destroy(self, c: &Client) {
        // SAFETY: objects this image owns; the caller waited for its work.
        unsafe {
            c.device.destroy_image(self.image, None);
            for m in self.memories {
                c.device.free_memory(m, None);
            }
        }
    }
}
