//! The pNext structures of a `VkMemoryAllocateInfo` the layer cares about.

use ash::vk;

use super::pnext;
use crate::registry::{ExternalKind, Resource};

/// See the module doc.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocationChain<'a> {
    pub import_fd: Option<&'a vk::ImportMemoryFdInfoKHR<'a>>,
    pub export: Option<&'a vk::ExportMemoryAllocateInfo<'a>>,
    pub dedicated: Option<&'a vk::MemoryDedicatedAllocateInfo<'a>>,
    /// The chain holds structures other than the three above.
    pub other_structures: bool,
}

impl<'a> AllocationChain<'a> {
    /// Reads the chain of `info`.
    ///
    /// # Safety
    /// `info.p_next` must be a valid chain (Vulkan valid usage) that
    /// outlives `'a`.
    pub unsafe fn of(info: &'a vk::MemoryAllocateInfo<'a>) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let import_fd: Option<&vk::ImportMemoryFdInfoKHR<'_>> = pnext::find(info.p_next);
            let export: Option<&vk::ExportMemoryAllocateInfo<'_>> = pnext::find(info.p_next);
            let dedicated: Option<&vk::MemoryDedicatedAllocateInfo<'_>> = pnext::find(info.p_next);
            let known = usize::from(import_fd.is_some())
                + usize::from(export.is_some())
                + usize::from(dedicated.is_some());
            AllocationChain {
                import_fd,
                export,
                dedicated,
                other_structures: pnext::nodes(info.p_next).count() > known,
            }
        }
    }

    /// How the memory will be shared, if at all.
    pub fn external_kind(&self) -> Option<ExternalKind> {
        if let Some(i) = self.import_fd.filter(|i| !i.handle_type.is_empty()) {
            return Some(ExternalKind::Import(i.handle_type));
        }
        self.export.filter(|e| !e.handle_types.is_empty()).map(|e| ExternalKind::Exportable(e.handle_types))
    }

    /// The resource the memory is dedicated to.
    pub fn dedicated_to(&self) -> Option<Resource> {
        let d = self.dedicated?;
        if d.image != vk::Image::null() {
            Some(Resource::Image(d.image))
        } else if d.buffer != vk::Buffer::null() {
            Some(Resource::Buffer(d.buffer))
        } else {
            None
        }
    }
}
