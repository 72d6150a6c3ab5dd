//! The planes of the formats the image tests use: which aspect names each,
//! its texel size and extent, and the single-plane format a copy of it
//! uses.

use ash::vk;

/// One plane of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    /// `COLOR` for a single-plane format, `PLANE_i` otherwise.
    pub aspect: vk::ImageAspectFlags,
    /// Bytes per texel of the plane.
    pub texel_bytes: u32,
    pub width: u32,
    pub height: u32,
}

impl Plane {
    /// Bytes of one row of texels (without padding).
    pub fn row_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.texel_bytes)
    }

    /// Bytes of the plane's texels packed without padding.
    pub fn packed_bytes(&self) -> u64 {
        self.row_bytes() * u64::from(self.height)
    }
}

/// The aspect naming plane `i` of a multi-planar image.
pub fn plane_aspect(i: usize) -> vk::ImageAspectFlags {
    [vk::ImageAspectFlags::PLANE_0, vk::ImageAspectFlags::PLANE_1, vk::ImageAspectFlags::PLANE_2][i]
}

/// The planes of `format` at `width` x `height` (formats the tests use:
/// RGBA8, NV12, three-plane 4:2:0).
pub fn planes(format: vk::Format, width: u32, height: u32) -> Vec<Plane> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let plane =
        |i: usize, texel_bytes, width, height| Plane { aspect: plane_aspect(i), texel_bytes, width, height };
    match format {
        vk::Format::G8_B8R8_2PLANE_420_UNORM => vec![plane(0, 1, width, height), plane(1, 2, cw, ch)],
        vk::Format::G8_B8_R8_3PLANE_420_UNORM => {
            vec![plane(0, 1, width, height), plane(1, 1, cw, ch), plane(2, 1, cw, ch)]
        }
        _ => vec![Plane { aspect: vk::ImageAspectFlags::COLOR, texel_bytes: 4, width, height }],
    }
}

/// Whether `format` has several planes.
pub fn is_multi_planar(format: vk::Format) -> bool {
    planes(format, 2, 2).len() > 1
}

/// Every plane's aspect together (`COLOR` for a single-plane format).
pub fn all_planes(format: vk::Format) -> vk::ImageAspectFlags {
    planes(format, 2, 2).iter().fold(vk::ImageAspectFlags::empty(), |a, p| a | p.aspect)
}

/// A short name for a format in reports.
pub fn format_name(format: vk::Format) -> &'static str {
    match format {
        vk::Format::R8G8B8A8_UNORM => "rgba8",
        vk::Format::G8_B8R8_2PLANE_420_UNORM => "nv12",
        vk::Format::G8_B8_R8_3PLANE_420_UNORM => "yuv420-3p",
        _ => "other",
    }
}

/// The format a short name names.
pub fn format_named(name: &str) -> Option<vk::Format> {
    [vk::Format::R8G8B8A8_UNORM, vk::Format::G8_B8R8_2PLANE_420_UNORM, vk::Format::G8_B8_R8_3PLANE_420_UNORM]
        .into_iter()
        .find(|f| format_name(*f) == name)
}
