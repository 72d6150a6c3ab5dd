//! External memory objects of one device and the resources bound to them.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use ash::vk;

use super::dma_bufs::DmaBufKey;

/// A buffer or an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Buffer(vk::Buffer),
    Image(vk::Image),
}

/// How a memory object is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalKind {
    /// Imported from an fd (`VkImportMemoryFdInfoKHR`) of this handle type.
    Import(vk::ExternalMemoryHandleTypeFlags),
    /// Allocated exportable (`VkExportMemoryAllocateInfo`) as these types.
    Exportable(vk::ExternalMemoryHandleTypeFlags),
}

impl ExternalKind {
    /// Whether the memory is (or can become) a dma-buf.
    pub fn is_dma_buf(self) -> bool {
        let (ExternalKind::Import(t) | ExternalKind::Exportable(t)) = self;
        t.contains(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)
    }
}

/// The dma-buf behind a memory object, and the layer's own fd for it (a
/// dup of the imported fd, or of the exported one), used for the sync-file
/// ioctls.
#[derive(Clone, Debug)]
pub struct DmaBufRef {
    pub key: DmaBufKey,
    pub fd: Arc<OwnedFd>,
}

/// One external memory object.
#[derive(Clone, Debug)]
pub struct ExternalMemory {
    pub kind: ExternalKind,
    pub size: u64,
    pub memory_type: u32,
    /// `VkMemoryDedicatedAllocateInfo`: the resource the memory is dedicated to.
    pub dedicated_to: Option<Resource>,
    /// Handle types exported so far through `vkGetMemoryFdKHR`.
    pub exported_as: vk::ExternalMemoryHandleTypeFlags,
    /// Resources bound to this memory, in binding order.
    pub bound: Vec<Resource>,
    /// The dma-buf, once the layer knows it (import of a dma-buf, or export
    /// as one).
    pub dma_buf: Option<DmaBufRef>,
    /// Set for a dynamic attachment (the memory handle is the backing).
    pub dynamic: Option<super::dynamic::Dynamic>,
}

impl ExternalMemory {
    pub fn new(kind: ExternalKind, size: u64, memory_type: u32, dedicated_to: Option<Resource>) -> Self {
        ExternalMemory {
            kind,
            size,
            memory_type,
            dedicated_to,
            exported_as: vk::ExternalMemoryHandleTypeFlags::empty(),
            bound: Vec::new(),
            dma_buf: None,
            dynamic: None,
        }
    }
}

/// All external memory of one device, with a reverse index from resource to
/// memory so destroying a resource finds its binding without a scan.
#[derive(Debug, Default)]
pub struct MemoryTable {
    memories: HashMap<vk::DeviceMemory, ExternalMemory>,
    bound_to: HashMap<Resource, vk::DeviceMemory>,
}

impl MemoryTable {
    pub fn len(&self) -> usize {
        self.memories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }

    pub fn get(&self, memory: vk::DeviceMemory) -> Option<&ExternalMemory> {
        self.memories.get(&memory)
    }

    pub fn insert(&mut self, memory: vk::DeviceMemory, record: ExternalMemory) {
        if let Some(old) = self.memories.insert(memory, record) {
            // A handle value reused after a free the layer missed: forget the
            // stale bindings too.
            for r in old.bound {
                self.bound_to.remove(&r);
            }
        }
    }

    /// Forgets `memory` and its bindings. Returns what was tracked.
    pub fn remove(&mut self, memory: vk::DeviceMemory) -> Option<ExternalMemory> {
        let record = self.memories.remove(&memory)?;
        for r in &record.bound {
            self.bound_to.remove(r);
        }
        Some(record)
    }

    /// Records that `resource` is bound to `memory`, when `memory` is tracked.
    /// Returns whether it was.
    pub fn bind(&mut self, resource: Resource, memory: vk::DeviceMemory) -> bool {
        let Some(record) = self.memories.get_mut(&memory) else {
            return false;
        };
        record.bound.push(resource);
        self.bound_to.insert(resource, memory);
        true
    }

    /// Forgets `resource`'s binding. Returns the memory it was bound to.
    pub fn unbind(&mut self, resource: Resource) -> Option<vk::DeviceMemory> {
        let memory = self.bound_to.remove(&resource)?;
        if let Some(record) = self.memories.get_mut(&memory) {
            record.bound.retain(|r| *r != resource);
        }
        Some(memory)
    }

    /// The tracked memory `resource` is bound to.
    pub fn memory_of(&self, resource: Resource) -> Option<vk::DeviceMemory> {
        self.bound_to.get(&resource).copied()
    }

    /// The dma-buf behind the memory `resource` is bound to.
    pub fn dma_buf_of(&self, resource: Resource) -> Option<&DmaBufRef> {
        self.memories.get(self.bound_to.get(&resource)?)?.dma_buf.as_ref()
    }

    /// Every dma-buf of the device with its memory (for
    /// `DYNABUF_SYNC_SCOPE=all`).
    pub fn dma_bufs(&self) -> impl Iterator<Item = (vk::DeviceMemory, &DmaBufRef)> {
        self.memories.iter().filter_map(|(m, r)| Some((*m, r.dma_buf.as_ref()?)))
    }

    /// The dynamic attachment state of `memory`, if it is one.
    pub fn dynamic_mut(&mut self, memory: vk::DeviceMemory) -> Option<&mut super::dynamic::Dynamic> {
        self.memories.get_mut(&memory)?.dynamic.as_mut()
    }

    /// The dynamic attachment of `memory`, if it is still the one of
    /// `generation`.
    pub fn dynamic_of(
        &mut self,
        memory: vk::DeviceMemory,
        generation: u64,
    ) -> Option<&mut super::dynamic::Dynamic> {
        self.dynamic_mut(memory).filter(|d| d.generation == generation)
    }

    /// Every dynamic attachment of the device.
    pub fn dynamics_mut(&mut self) -> impl Iterator<Item = (vk::DeviceMemory, &mut super::dynamic::Dynamic)> {
        self.memories.iter_mut().filter_map(|(m, r)| Some((*m, r.dynamic.as_mut()?)))
    }

    /// Records the dma-buf behind `memory`. Returns whether it is tracked.
    pub fn set_dma_buf(&mut self, memory: vk::DeviceMemory, dma_buf: DmaBufRef) -> bool {
        let Some(record) = self.memories.get_mut(&memory) else { return false };
        record.dma_buf.get_or_insert(dma_buf);
        true
    }

    /// Records an export through `vkGetMemoryFdKHR`. Returns whether the
    /// memory is tracked.
    pub fn exported(&mut self, memory: vk::DeviceMemory, as_type: vk::ExternalMemoryHandleTypeFlags) -> bool {
        let Some(record) = self.memories.get_mut(&memory) else {
            return false;
        };
        record.exported_as |= as_type;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    fn mem(n: u64) -> vk::DeviceMemory {
        vk::DeviceMemory::from_raw(n)
    }
    fn buf(n: u64) -> Resource {
        Resource::Buffer(vk::Buffer::from_raw(n))
    }
    fn dma_import() -> ExternalMemory {
        ExternalMemory::new(
            ExternalKind::Import(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT),
            4096,
            0,
            None,
        )
    }

    #[test]
    fn bind_only_to_tracked_memory() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        assert!(t.bind(buf(10), mem(1)));
        assert!(!t.bind(buf(11), mem(2)));
        assert_eq!(t.memory_of(buf(10)), Some(mem(1)));
        assert_eq!(t.memory_of(buf(11)), None);
    }

    #[test]
    fn freeing_memory_drops_exactly_its_bindings() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        t.insert(mem(2), dma_import());
        t.bind(buf(10), mem(1));
        t.bind(Resource::Image(vk::Image::from_raw(20)), mem(1));
        t.bind(buf(30), mem(2));
        let gone = t.remove(mem(1)).unwrap();
        assert_eq!(gone.bound.len(), 2);
        assert_eq!(t.memory_of(buf(10)), None);
        assert_eq!(t.memory_of(buf(30)), Some(mem(2)));
        assert_eq!(t.len(), 1);
        assert!(t.remove(mem(1)).is_none());
    }

    #[test]
    fn destroying_a_resource_unbinds_it() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        t.bind(buf(10), mem(1));
        t.bind(buf(11), mem(1));
        assert_eq!(t.unbind(buf(10)), Some(mem(1)));
        assert_eq!(t.get(mem(1)).unwrap().bound, vec![buf(11)]);
        assert_eq!(t.unbind(buf(10)), None);
    }

    #[test]
    fn exports_accumulate_and_kinds_classify() {
        let mut t = MemoryTable::default();
        let kind = ExternalKind::Exportable(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
        assert!(!kind.is_dma_buf());
        t.insert(mem(3), ExternalMemory::new(kind, 64, 1, None));
        assert!(t.exported(mem(3), vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD));
        assert!(!t.exported(mem(4), vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD));
        assert_eq!(t.get(mem(3)).unwrap().exported_as, vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
        assert!(dma_import().kind.is_dma_buf());
    }

    #[test]
    fn a_reused_handle_is_not_the_attachment_of_an_older_generation() {
        use crate::registry::dynamic::{Dynamic, Internal};
        let internal = || Internal::new(vk::DeviceMemory::from_raw(9), vk::Buffer::from_raw(9));
        let mut t = MemoryTable::default();
        let mut first = dma_import();
        first.dynamic = Some(Dynamic::new(64, 0, vk::Buffer::null(), internal()));
        t.insert(mem(1), first);
        let old = t.dynamic_mut(mem(1)).unwrap().generation;
        assert!(t.dynamic_of(mem(1), old).is_some());
        // Freed, and the handle comes back for another allocation.
        t.remove(mem(1));
        let mut second = dma_import();
        second.dynamic = Some(Dynamic::new(64, 0, vk::Buffer::null(), internal()));
        t.insert(mem(1), second);
        assert!(t.dynamic_of(mem(1), old).is_none(), "work on the old attachment must not land here");
    }

    #[test]
    fn reinserting_a_handle_forgets_stale_bindings() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        t.bind(buf(10), mem(1));
        t.insert(mem(1), dma_import());
        assert_eq!(t.memory_of(buf(10)), None);
    }
}
