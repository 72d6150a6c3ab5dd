//! For hazard reports: what the application's views, framebuffers and
//! descriptor sets lead to, so a recorded render pass or descriptor bind
//! can be turned into the resources it uses. Only what leads to external
//! memory is kept (the hooks filter before recording); a handle created
//! again forgets what its earlier object led to.

use std::collections::HashMap;

use ash::vk;

use super::memory::Resource;

/// A descriptor set's descriptors that lead to external memory:
/// (binding, array element) → the resource and whether shaders may write it.
type Descriptors = HashMap<(u32, u32), (Resource, bool)>;

/// Views, framebuffers and descriptor sets that lead to external memory.
#[derive(Debug, Default)]
pub struct UsageIndex {
    image_views: HashMap<vk::ImageView, vk::Image>,
    buffer_views: HashMap<vk::BufferView, vk::Buffer>,
    framebuffers: HashMap<vk::Framebuffer, Vec<vk::ImageView>>,
    sets: HashMap<vk::DescriptorSet, Descriptors>,
}

impl UsageIndex {
    /// An image view was created (`image`: `None` when it does not lead to
    /// external memory).
    pub fn image_view(&mut self, view: vk::ImageView, image: Option<vk::Image>) {
        match image {
            Some(i) => self.image_views.insert(view, i),
            None => self.image_views.remove(&view),
        };
    }

    pub fn buffer_view(&mut self, view: vk::BufferView, buffer: Option<vk::Buffer>) {
        match buffer {
            Some(b) => self.buffer_views.insert(view, b),
            None => self.buffer_views.remove(&view),
        };
    }

    pub fn image_of(&self, view: vk::ImageView) -> Option<vk::Image> {
        self.image_views.get(&view).copied()
    }

    pub fn buffer_of(&self, view: vk::BufferView) -> Option<vk::Buffer> {
        self.buffer_views.get(&view).copied()
    }

    /// A framebuffer was created with these attachments (kept only if one
    /// leads to external memory).
    pub fn framebuffer(&mut self, fb: vk::Framebuffer, views: &[vk::ImageView]) {
        if views.iter().any(|v| self.image_views.contains_key(v)) {
            self.framebuffers.insert(fb, views.to_vec());
        } else {
            self.framebuffers.remove(&fb);
        }
    }

    /// The images a framebuffer's attachments lead to.
    pub fn framebuffer_images(&self, fb: vk::Framebuffer) -> Vec<vk::Image> {
        self.framebuffers.get(&fb).map_or_else(Vec::new, |views| self.images_of(views))
    }

    /// The images these views lead to.
    pub fn images_of(&self, views: &[vk::ImageView]) -> Vec<vk::Image> {
        views.iter().filter_map(|v| self.image_of(*v)).collect()
    }

    /// Descriptor sets were allocated: whatever their handles led to before
    /// is gone.
    pub fn sets_allocated(&mut self, sets: &[vk::DescriptorSet]) {
        if !self.sets.is_empty() {
            for s in sets {
                self.sets.remove(s);
            }
        }
    }

    /// One descriptor was written (`target`: `None` when it does not lead to
    /// external memory).
    pub fn descriptor(&mut self, set: vk::DescriptorSet, slot: (u32, u32), target: Option<(Resource, bool)>) {
        match target {
            Some(t) => {
                self.sets.entry(set).or_default().insert(slot, t);
            }
            None => {
                if let Some(entries) = self.sets.get_mut(&set) {
                    entries.remove(&slot);
                    if entries.is_empty() {
                        self.sets.remove(&set);
                    }
                }
            }
        }
    }

    /// `VkCopyDescriptorSet`: `count` descriptors from `src` to `dst`.
    pub fn descriptors_copied(
        &mut self,
        src: (vk::DescriptorSet, u32, u32),
        dst: (vk::DescriptorSet, u32, u32),
        count: u32,
    ) {
        for i in 0..count {
            let from = self.sets.get(&src.0).and_then(|e| e.get(&(src.1, src.2.wrapping_add(i)))).copied();
            self.descriptor(dst.0, (dst.1, dst.2.wrapping_add(i)), from);
        }
    }

    /// How many descriptor sets lead to external memory.
    pub fn set_count(&self) -> usize {
        self.sets.len()
    }

    /// What bound descriptor sets lead to.
    pub fn resources_of_sets(&self, sets: &[vk::DescriptorSet]) -> Vec<(Resource, bool)> {
        sets.iter().filter_map(|s| self.sets.get(s)).flat_map(|e| e.values().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    #[test]
    fn views_framebuffers_and_sets_lead_to_resources_until_their_handles_are_reused() {
        let mut u = UsageIndex::default();
        let (view, other) = (vk::ImageView::from_raw(1), vk::ImageView::from_raw(2));
        let image = vk::Image::from_raw(10);
        u.image_view(view, Some(image));
        u.image_view(other, None);
        let fb = vk::Framebuffer::from_raw(5);
        u.framebuffer(fb, &[other, view]);
        assert_eq!(u.framebuffer_images(fb), [image]);
        u.framebuffer(vk::Framebuffer::from_raw(6), &[other]);
        assert!(u.framebuffer_images(vk::Framebuffer::from_raw(6)).is_empty());

        let set = vk::DescriptorSet::from_raw(7);
        let buffer = Resource::Buffer(vk::Buffer::from_raw(20));
        u.descriptor(set, (0, 0), Some((buffer, true)));
        u.descriptor(set, (1, 0), Some((Resource::Image(image), false)));
        assert_eq!(u.resources_of_sets(&[set]).len(), 2);
        u.descriptor(set, (1, 0), None);
        assert_eq!(u.resources_of_sets(&[set]), [(buffer, true)]);
        let copy = vk::DescriptorSet::from_raw(8);
        u.descriptors_copied((set, 0, 0), (copy, 3, 0), 1);
        assert_eq!(u.resources_of_sets(&[copy]), [(buffer, true)]);
        u.sets_allocated(&[set, copy]);
        assert!(u.resources_of_sets(&[set, copy]).is_empty());
    }
}
