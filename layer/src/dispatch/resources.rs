//! Safe wrappers for creating images and asking where the application's
//! buffers and images lie in memory. The safety argument is the module doc
//! of [`super::device`].

use ash::vk;

use super::Device;

impl Device {
    pub fn create_image(
        &self,
        info: &vk::ImageCreateInfo<'_>,
        allocator: Option<&vk::AllocationCallbacks<'_>>,
        image: &mut vk::Image,
    ) -> vk::Result {
        let Some(f) = self.fns.create_image else { return vk::Result::ERROR_INITIALIZATION_FAILED };
        crate::lock_order::assert_unlocked("create_image");
        // SAFETY: see the module doc; the application's create info, its
        // allocator (or null) and its out-handle.
        unsafe { f(self.handle, info, allocator.map_or(std::ptr::null(), |a| a), image) }
    }

    /// `vkGetBufferMemoryRequirements(buffer).size`, if it can be asked.
    pub fn buffer_size_in_memory(&self, buffer: vk::Buffer) -> Option<u64> {
        let f = self.fns.get_buffer_memory_requirements?;
        let mut reqs = vk::MemoryRequirements::default();
        crate::lock_order::assert_unlocked("buffer_size_in_memory");
        // SAFETY: see the module doc; the application's bound buffer.
        unsafe { f(self.handle, buffer, &mut reqs) };
        Some(reqs.size)
    }

    /// The memory requirement's size of `image`, or of one plane of a
    /// disjoint image (`VkImagePlaneMemoryRequirementsInfo`).
    pub fn image_size_in_memory(&self, image: vk::Image, plane: Option<vk::ImageAspectFlags>) -> Option<u64> {
        let f = self.fns.get_image_memory_requirements2?;
        let mut plane_info = vk::ImagePlaneMemoryRequirementsInfo::default();
        let mut info = vk::ImageMemoryRequirementsInfo2::default().image(image);
        if let Some(aspect) = plane {
            plane_info.plane_aspect = aspect;
            info = info.push_next(&mut plane_info);
        }
        let mut reqs = vk::MemoryRequirements2::default();
        crate::lock_order::assert_unlocked("image_size_in_memory");
        // SAFETY: see the module doc; the application's image, with a plane
        // aspect only for a disjoint one (the caller's knowledge).
        unsafe { f(self.handle, &info, &mut reqs) };
        Some(reqs.memory_requirements.size)
    }

    /// `vkGetImageSubresourceLayout` of mip 0, layer 0 of `aspect`; only for
    /// an image of `LINEAR` or DRM-format-modifier tiling.
    pub fn image_plane_layout(
        &self,
        image: vk::Image,
        aspect: vk::ImageAspectFlags,
    ) -> Option<vk::SubresourceLayout> {
        let f = self.fns.get_image_subresource_layout?;
        let sub = vk::ImageSubresource { aspect_mask: aspect, mip_level: 0, array_layer: 0 };
        let mut layout = vk::SubresourceLayout::default();
        crate::lock_order::assert_unlocked("image_plane_layout");
        // SAFETY: see the module doc; the caller asks only for images whose
        // tiling allows it.
        unsafe { f(self.handle, image, &sub, &mut layout) };
        Some(layout)
    }

    /// Whether the driver requires `image` to have memory dedicated to it
    /// (`VkMemoryDedicatedRequirements`); `true` when it cannot be asked.
    pub fn image_requires_dedicated(&self, image: vk::Image) -> bool {
        let Some(f) = self.fns.get_image_memory_requirements2 else { return true };
        let info = vk::ImageMemoryRequirementsInfo2::default().image(image);
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut reqs = vk::MemoryRequirements2::default().push_next(&mut dedicated);
        crate::lock_order::assert_unlocked("image_requires_dedicated");
        // SAFETY: see the module doc; the application's image and a valid
        // chain of out-structures that live across the call.
        unsafe { f(self.handle, &info, &mut reqs) };
        dedicated.requires_dedicated_allocation == vk::TRUE
    }
}
