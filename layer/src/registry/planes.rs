//! Which planes of an image a binding or a barrier concerns.
//!
//! A *disjoint* multi-planar image (`VK_IMAGE_CREATE_DISJOINT_BIT`) binds
//! each plane to memory of its own (`VkBindImagePlaneMemoryInfo`), possibly
//! in different dma-bufs; a barrier may name one plane (`PLANE_i`) or the
//! whole image (`COLOR`, or every plane bit). Buffers and non-disjoint
//! images are one binding that every barrier concerns.

use ash::vk;

/// A set of plane indices (bit i: plane i), or every plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Planes(u8);

impl Planes {
    /// The whole resource: a buffer, a non-disjoint image, or a barrier
    /// naming no particular plane.
    pub const ALL: Planes = Planes(u8::MAX);

    /// The planes an aspect mask names: `PLANE_i` and `MEMORY_PLANE_i_EXT`
    /// name plane i; any other aspect (`COLOR`, depth, stencil) names the
    /// whole image, as does an empty mask.
    pub fn of_aspect(aspect: vk::ImageAspectFlags) -> Planes {
        const BY_PLANE: [[vk::ImageAspectFlags; 2]; 4] = [
            [vk::ImageAspectFlags::PLANE_0, vk::ImageAspectFlags::MEMORY_PLANE_0_EXT],
            [vk::ImageAspectFlags::PLANE_1, vk::ImageAspectFlags::MEMORY_PLANE_1_EXT],
            [vk::ImageAspectFlags::PLANE_2, vk::ImageAspectFlags::MEMORY_PLANE_2_EXT],
            [vk::ImageAspectFlags::empty(), vk::ImageAspectFlags::MEMORY_PLANE_3_EXT],
        ];
        let plane_bits = BY_PLANE.iter().flatten().fold(vk::ImageAspectFlags::empty(), |a, b| a | *b);
        if aspect.is_empty() || !(aspect & !plane_bits).is_empty() {
            return Planes::ALL;
        }
        let mut set = 0u8;
        for (i, names) in BY_PLANE.iter().enumerate() {
            if names.iter().any(|n| !n.is_empty() && aspect.contains(*n)) {
                set |= 1 << i;
            }
        }
        Planes(set)
    }

    /// The one plane of the set, if it names exactly one.
    pub fn single(self) -> Option<u32> {
        (self.0.count_ones() == 1).then(|| self.0.trailing_zeros())
    }

    /// Both sets.
    #[inline]
    pub fn union(self, other: Planes) -> Planes {
        Planes(self.0 | other.0)
    }

    /// Whether the two sets share a plane.
    #[inline]
    pub fn overlaps(self, other: Planes) -> bool {
        self.0 & other.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vk::ImageAspectFlags as A;

    #[test]
    fn plane_bits_name_planes_and_everything_else_names_the_whole_image() {
        let p0 = Planes::of_aspect(A::PLANE_0);
        let p1 = Planes::of_aspect(A::PLANE_1);
        assert!(!p0.overlaps(p1));
        assert!(Planes::of_aspect(A::MEMORY_PLANE_1_EXT).overlaps(p1));
        assert!(!Planes::of_aspect(A::MEMORY_PLANE_1_EXT).overlaps(p0));
        assert_eq!(p1.single(), Some(1));
        assert_eq!(Planes::ALL.single(), None);
        let both = Planes::of_aspect(A::PLANE_0 | A::PLANE_1);
        assert_eq!(both.single(), None);
        assert!(both.overlaps(p0) && both.overlaps(p1));
        assert!(!both.overlaps(Planes::of_aspect(A::PLANE_2)));
        for whole in [A::COLOR, A::empty(), A::DEPTH | A::STENCIL, A::COLOR | A::PLANE_0] {
            let w = Planes::of_aspect(whole);
            assert_eq!(w, Planes::ALL, "{whole:?}");
            assert!(w.overlaps(p0) && w.overlaps(p1));
        }
    }
}
