//! What the layer knows of an image that may be bound to dma-buf memory: how
//! its planes are laid out, so a dynamic attachment copies exactly the bytes
//! its resources occupy.

use ash::vk;

/// An image created for external memory (`VkExternalMemoryImageCreateInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its memory layout is explicit and can be asked plane by plane with
    /// `vkGetImageSubresourceLayout` (`LINEAR` or a DRM format modifier).
    pub tiling: vk::ImageTiling,
    /// Planes of its format (1 for single-plane formats).
    pub planes: u32,
    /// `VK_IMAGE_CREATE_DISJOINT_BIT`: each plane bound to its own memory.
    pub disjoint: bool,
    /// Array layers (a plane's layout describes layer 0; the others follow
    /// at its array pitch).
    pub layers: u32,
}

impl ImageInfo {
    pub fn new(info: &vk::ImageCreateInfo<'_>) -> Self {
        ImageInfo {
            tiling: info.tiling,
            planes: plane_count(info.format),
            disjoint: info.flags.contains(vk::ImageCreateFlags::DISJOINT),
            layers: info.array_layers.max(1),
        }
    }

    /// The bytes of a plane whose layer 0 has `layout`, over every layer.
    pub fn plane_bytes(&self, layout: &vk::SubresourceLayout) -> u64 {
        layout.array_pitch.saturating_mul(u64::from(self.layers - 1)).saturating_add(layout.size)
    }

    /// Whether `vkGetImageSubresourceLayout` may be asked (valid usage: only
    /// for these tilings).
    pub fn has_explicit_layout(&self) -> bool {
        matches!(self.tiling, vk::ImageTiling::LINEAR | vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
    }

    /// The aspect that names plane `i` in `vkGetImageSubresourceLayout`:
    /// `MEMORY_PLANE_i` for a DRM format modifier, `PLANE_i` for a linear
    /// multi-planar format, `COLOR` for a linear single-plane one.
    pub fn plane_aspect(&self, i: u32) -> vk::ImageAspectFlags {
        const MEMORY: [vk::ImageAspectFlags; 4] = [
            vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_3_EXT,
        ];
        const FORMAT: [vk::ImageAspectFlags; 3] =
            [vk::ImageAspectFlags::PLANE_0, vk::ImageAspectFlags::PLANE_1, vk::ImageAspectFlags::PLANE_2];
        let i = i as usize;
        if self.tiling == vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT {
            MEMORY[i.min(3)]
        } else if self.planes > 1 {
            FORMAT[i.min(2)]
        } else {
            vk::ImageAspectFlags::COLOR
        }
    }
}

/// The number of planes of `format`: 2 or 3 for the multi-planar YCbCr
/// formats, 1 for every other.
pub fn plane_count(format: vk::Format) -> u32 {
    use vk::Format as F;
    match format {
        F::G8_B8_R8_3PLANE_420_UNORM
        | F::G8_B8_R8_3PLANE_422_UNORM
        | F::G8_B8_R8_3PLANE_444_UNORM
        | F::G10X6_B10X6_R10X6_3PLANE_420_UNORM_3PACK16
        | F::G10X6_B10X6_R10X6_3PLANE_422_UNORM_3PACK16
        | F::G10X6_B10X6_R10X6_3PLANE_444_UNORM_3PACK16
        | F::G12X4_B12X4_R12X4_3PLANE_420_UNORM_3PACK16
        | F::G12X4_B12X4_R12X4_3PLANE_422_UNORM_3PACK16
        | F::G12X4_B12X4_R12X4_3PLANE_444_UNORM_3PACK16
        | F::G16_B16_R16_3PLANE_420_UNORM
        | F::G16_B16_R16_3PLANE_422_UNORM
        | F::G16_B16_R16_3PLANE_444_UNORM => 3,
        F::G8_B8R8_2PLANE_420_UNORM
        | F::G8_B8R8_2PLANE_422_UNORM
        | F::G8_B8R8_2PLANE_444_UNORM
        | F::G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16
        | F::G10X6_B10X6R10X6_2PLANE_422_UNORM_3PACK16
        | F::G10X6_B10X6R10X6_2PLANE_444_UNORM_3PACK16
        | F::G12X4_B12X4R12X4_2PLANE_420_UNORM_3PACK16
        | F::G12X4_B12X4R12X4_2PLANE_422_UNORM_3PACK16
        | F::G12X4_B12X4R12X4_2PLANE_444_UNORM_3PACK16
        | F::G16_B16R16_2PLANE_420_UNORM
        | F::G16_B16R16_2PLANE_422_UNORM
        | F::G16_B16R16_2PLANE_444_UNORM => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_and_the_aspects_that_name_them() {
        let info = |format, tiling, flags| {
            ImageInfo::new(
                &vk::ImageCreateInfo::default().format(format).tiling(tiling).flags(flags).array_layers(1),
            )
        };
        let nv12 = info(
            vk::Format::G8_B8R8_2PLANE_420_UNORM,
            vk::ImageTiling::LINEAR,
            vk::ImageCreateFlags::DISJOINT,
        );
        assert_eq!((nv12.planes, nv12.disjoint, nv12.has_explicit_layout()), (2, true, true));
        assert_eq!(nv12.plane_aspect(1), vk::ImageAspectFlags::PLANE_1);
        let rgba = info(
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT,
            vk::ImageCreateFlags::empty(),
        );
        assert_eq!(rgba.planes, 1);
        assert_eq!(rgba.plane_aspect(0), vk::ImageAspectFlags::MEMORY_PLANE_0_EXT);
        let linear = info(vk::Format::R8G8B8A8_UNORM, vk::ImageTiling::LINEAR, vk::ImageCreateFlags::empty());
        assert_eq!(linear.plane_aspect(0), vk::ImageAspectFlags::COLOR);
        let optimal = info(
            vk::Format::G8_B8_R8_3PLANE_420_UNORM,
            vk::ImageTiling::OPTIMAL,
            vk::ImageCreateFlags::empty(),
        );
        assert_eq!(optimal.planes, 3);
        assert!(!optimal.has_explicit_layout());
    }

    #[test]
    fn a_plane_of_an_array_spans_every_layer() {
        let info = ImageInfo::new(
            &vk::ImageCreateInfo::default()
                .format(vk::Format::G8_B8R8_2PLANE_420_UNORM)
                .tiling(vk::ImageTiling::LINEAR)
                .array_layers(3),
        );
        let layout =
            vk::SubresourceLayout { offset: 0, size: 100, row_pitch: 10, array_pitch: 128, depth_pitch: 0 };
        assert_eq!(info.plane_bytes(&layout), 356);
    }
}
