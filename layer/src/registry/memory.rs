//! External memory objects of one device and the resources bound to them.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use ash::vk;

use super::dma_bufs::DmaBufKey;
use super::images::ImageInfo;
use super::planes::Planes;
pub use super::span::Span;

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
    /// Whether the application holds a mapping of it (between `vkMapMemory`
    /// and `vkUnmapMemory`).
    pub host_mapped: bool,
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
            host_mapped: false,
        }
    }
}

/// One binding of (part of) a resource.
#[derive(Clone, Copy, Debug)]
struct Binding {
    memory: vk::DeviceMemory,
    planes: Planes,
    /// Where it lies in the memory; `None` when the layer did not ask
    /// (pinned memory, where nothing is copied).
    span: Option<Span>,
}

/// All external memory of one device, with a reverse index from resource to
/// its bindings (one, or one per plane of a disjoint image) so destroying a
/// resource finds them without a scan, and the images created for external
/// memory.
#[derive(Debug, Default)]
pub struct MemoryTable {
    memories: HashMap<vk::DeviceMemory, ExternalMemory>,
    bound_to: HashMap<Resource, Vec<Binding>>,
    images: HashMap<vk::Image, ImageInfo>,
    /// How many of the device's memories import each dma-buf.
    imports_of: HashMap<DmaBufKey, u32>,
    /// How many memories have a dma-buf (the sum of `imports_of`).
    with_dma_buf: usize,
    /// How many memories are dynamic attachments.
    dynamic: usize,
}

/// What a dynamic attachment's copies cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyExtent {
    /// The whole memory: the device's only memory of its dma-buf.
    Whole,
    /// The bytes its resources occupy: another memory of the device imports
    /// the same dma-buf (a disjoint image's planes at two offsets), and
    /// each must copy only its own bytes or it would write the other's
    /// back stale.
    Part(Span),
    /// Nothing: it shares its dma-buf with another memory and nothing is
    /// bound to it, so it has no bytes of its own.
    Nothing,
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

    pub fn get_mut(&mut self, memory: vk::DeviceMemory) -> Option<&mut ExternalMemory> {
        self.memories.get_mut(&memory)
    }

    pub fn insert(&mut self, memory: vk::DeviceMemory, record: ExternalMemory) {
        self.dynamic += usize::from(record.dynamic.is_some());
        if let Some(old) = self.memories.insert(memory, record) {
            self.dynamic -= usize::from(old.dynamic.is_some());
            // A handle value reused after a free the layer missed: forget the
            // stale bindings too.
            for r in old.bound {
                self.forget_binding(r, memory);
            }
            if let Some(d) = old.dma_buf {
                self.count_import(d.key, false);
            }
        }
    }

    fn forget_binding(&mut self, resource: Resource, memory: vk::DeviceMemory) {
        if let Some(list) = self.bound_to.get_mut(&resource) {
            list.retain(|b| b.memory != memory);
            if list.is_empty() {
                self.bound_to.remove(&resource);
            }
        }
    }

    /// Forgets `memory` and its bindings. Returns what was tracked.
    pub fn remove(&mut self, memory: vk::DeviceMemory) -> Option<ExternalMemory> {
        let record = self.memories.remove(&memory)?;
        self.dynamic -= usize::from(record.dynamic.is_some());
        for r in &record.bound {
            self.forget_binding(*r, memory);
        }
        if let Some(d) = &record.dma_buf {
            self.count_import(d.key, false);
        }
        Some(record)
    }

    fn count_import(&mut self, key: DmaBufKey, added: bool) {
        let n = self.imports_of.entry(key).or_insert(0);
        if added {
            *n += 1;
            self.with_dma_buf += 1;
        } else {
            if *n > 0 {
                self.with_dma_buf = self.with_dma_buf.saturating_sub(1);
            }
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.imports_of.remove(&key);
            }
        }
    }

    /// How many memories are dynamic attachments.
    pub fn dynamic_count(&self) -> usize {
        self.dynamic
    }

    /// How many memories are known to import or export a dma-buf.
    pub fn dma_buf_memory_count(&self) -> usize {
        self.with_dma_buf
    }

    /// What the copies of dynamic attachment `memory` (of `size` bytes)
    /// cover; see [`CopyExtent`].
    pub fn copy_extent(&self, memory: vk::DeviceMemory, size: u64) -> CopyExtent {
        let shared = self
            .memories
            .get(&memory)
            .and_then(|r| r.dma_buf.as_ref())
            .is_some_and(|d| self.imports_of.get(&d.key).is_some_and(|n| *n > 1));
        if !shared {
            return CopyExtent::Whole;
        }
        let has_bindings = self.memories.get(&memory).is_some_and(|r| !r.bound.is_empty());
        let whole = Span { offset: 0, size };
        match self.extent_of(memory) {
            _ if !has_bindings => CopyExtent::Nothing,
            // Bindings the driver placed past the memory's end (invalid)
            // copy all of it.
            Some(e) if whole.contains(e) => CopyExtent::Part(e),
            _ => CopyExtent::Whole,
        }
    }

    /// Records that `planes` of `resource` (all of it, unless a plane of a
    /// disjoint image) are bound to `memory`, when `memory` is tracked.
    /// Returns whether it was.
    pub fn bind(
        &mut self,
        resource: Resource,
        memory: vk::DeviceMemory,
        planes: Planes,
        span: Option<Span>,
    ) -> bool {
        let Some(record) = self.memories.get_mut(&memory) else {
            return false;
        };
        if !record.bound.contains(&resource) {
            record.bound.push(resource);
        }
        let list = self.bound_to.entry(resource).or_default();
        match list.iter_mut().find(|b| b.memory == memory) {
            Some(b) => {
                b.planes = b.planes.union(planes);
                b.span = b.span.zip(span).map(|(a, b)| a.cover(b));
            }
            None => list.push(Binding { memory, planes, span }),
        }
        true
    }

    /// The bytes of `memory` its bound resources occupy; `None` for all of
    /// it (nothing bound, or a binding whose place is unknown).
    pub fn extent_of(&self, memory: vk::DeviceMemory) -> Option<Span> {
        let record = self.memories.get(&memory)?;
        let mut spans = record
            .bound
            .iter()
            .flat_map(|r| self.bound_to.get(r).into_iter().flatten())
            .filter(|b| b.memory == memory)
            .map(|b| b.span);
        let first = spans.next()??;
        spans.try_fold(first, |acc, s| Some(acc.cover(s?)))
    }

    /// Whether `memory` is a dynamic attachment (its bindings' places are
    /// worth asking the driver for).
    pub fn is_dynamic(&self, memory: vk::DeviceMemory) -> bool {
        self.memories.get(&memory).is_some_and(|r| r.dynamic.is_some())
    }

    /// An image created for external memory.
    pub fn image_created(&mut self, image: vk::Image, info: ImageInfo) {
        self.images.insert(image, info);
    }

    pub fn image_info(&self, image: vk::Image) -> Option<ImageInfo> {
        self.images.get(&image).copied()
    }

    /// Forgets `resource`'s bindings. Returns the memories it was bound to.
    /// Also forgets an image's creation record.
    pub fn unbind(&mut self, resource: Resource) -> Vec<vk::DeviceMemory> {
        if let Resource::Image(i) = resource {
            self.images.remove(&i);
        }
        let list = self.bound_to.remove(&resource).unwrap_or_default();
        for b in &list {
            if let Some(record) = self.memories.get_mut(&b.memory) {
                record.bound.retain(|r| *r != resource);
            }
        }
        list.into_iter().map(|b| b.memory).collect()
    }

    /// Whether any part of `resource` is bound to tracked memory.
    pub fn is_bound(&self, resource: Resource) -> bool {
        self.bound_to.contains_key(&resource)
    }

    /// The tracked memories that hold `planes` of `resource`, each once,
    /// with the dma-buf behind each (if known).
    pub fn bindings_of(
        &self,
        resource: Resource,
        planes: Planes,
    ) -> impl Iterator<Item = (vk::DeviceMemory, &ExternalMemory)> + '_ {
        self.bound_to
            .get(&resource)
            .into_iter()
            .flatten()
            .filter(move |b| b.planes.overlaps(planes))
            .filter_map(|b| Some((b.memory, self.memories.get(&b.memory)?)))
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
        if record.dma_buf.is_none() {
            let key = dma_buf.key;
            record.dma_buf = Some(dma_buf);
            self.count_import(key, true);
        }
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

    fn memory_of(t: &MemoryTable, r: Resource) -> Option<vk::DeviceMemory> {
        let all: Vec<_> = t.bindings_of(r, Planes::ALL).map(|(m, _)| m).collect();
        assert!(all.len() <= 1);
        all.first().copied()
    }
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
        assert!(t.bind(buf(10), mem(1), Planes::ALL, None));
        assert!(!t.bind(buf(11), mem(2), Planes::ALL, None));
        assert_eq!(memory_of(&t, buf(10)), Some(mem(1)));
        assert_eq!(memory_of(&t, buf(11)), None);
    }

    #[test]
    fn freeing_memory_drops_exactly_its_bindings() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        t.insert(mem(2), dma_import());
        t.bind(buf(10), mem(1), Planes::ALL, None);
        t.bind(Resource::Image(vk::Image::from_raw(20)), mem(1), Planes::ALL, None);
        t.bind(buf(30), mem(2), Planes::ALL, None);
        let gone = t.remove(mem(1)).unwrap();
        assert_eq!(gone.bound.len(), 2);
        assert_eq!(memory_of(&t, buf(10)), None);
        assert_eq!(memory_of(&t, buf(30)), Some(mem(2)));
        assert_eq!(t.len(), 1);
        assert!(t.remove(mem(1)).is_none());
    }

    #[test]
    fn destroying_a_resource_unbinds_it() {
        let mut t = MemoryTable::default();
        t.insert(mem(1), dma_import());
        t.bind(buf(10), mem(1), Planes::ALL, None);
        t.bind(buf(11), mem(1), Planes::ALL, None);
        assert_eq!(t.unbind(buf(10)), vec![mem(1)]);
        assert_eq!(t.get(mem(1)).unwrap().bound, vec![buf(11)]);
        assert!(t.unbind(buf(10)).is_empty());
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
        t.bind(buf(10), mem(1), Planes::ALL, None);
        t.insert(mem(1), dma_import());
        assert_eq!(memory_of(&t, buf(10)), None);
    }

    #[test]
    fn a_disjoint_image_has_one_binding_per_plane_and_barriers_pick_theirs() {
        use vk::ImageAspectFlags as A;
        let mut t = MemoryTable::default();
        let image = Resource::Image(vk::Image::from_raw(20));
        t.insert(mem(1), dma_import());
        t.insert(mem(2), dma_import());
        assert!(t.bind(image, mem(1), Planes::of_aspect(A::PLANE_0), None));
        assert!(t.bind(image, mem(2), Planes::of_aspect(A::PLANE_1), None));
        let picked = |t: &MemoryTable, aspect| {
            t.bindings_of(image, Planes::of_aspect(aspect)).map(|(m, _)| m).collect::<Vec<_>>()
        };
        assert_eq!(picked(&t, A::PLANE_0), vec![mem(1)]);
        assert_eq!(picked(&t, A::PLANE_1), vec![mem(2)]);
        assert_eq!(picked(&t, A::COLOR), vec![mem(1), mem(2)]);
        assert_eq!(picked(&t, A::PLANE_2), Vec::<vk::DeviceMemory>::new());
        // Freeing one plane's memory keeps the other binding.
        t.remove(mem(1));
        assert_eq!(picked(&t, A::COLOR), vec![mem(2)]);
        assert_eq!(t.unbind(image), vec![mem(2)]);
        assert!(!t.is_bound(image));
    }

    #[test]
    fn two_planes_in_one_memory_are_one_binding() {
        use vk::ImageAspectFlags as A;
        let mut t = MemoryTable::default();
        let image = Resource::Image(vk::Image::from_raw(20));
        t.insert(mem(1), dma_import());
        t.bind(image, mem(1), Planes::of_aspect(A::PLANE_0), None);
        t.bind(image, mem(1), Planes::of_aspect(A::PLANE_1), None);
        assert_eq!(t.bindings_of(image, Planes::ALL).count(), 1);
        assert_eq!(t.bindings_of(image, Planes::of_aspect(A::PLANE_1)).count(), 1);
        assert_eq!(t.get(mem(1)).unwrap().bound, vec![image]);
    }

    /// Two imports of one dma-buf holding a disjoint image's planes at two
    /// offsets: each copies only the bytes of its own plane, so neither
    /// overwrites the other's in the dma-buf.
    #[test]
    fn the_extent_of_a_memory_covers_exactly_its_bindings() {
        use vk::ImageAspectFlags as A;
        let mut t = MemoryTable::default();
        let image = Resource::Image(vk::Image::from_raw(20));
        t.insert(mem(1), dma_import());
        t.insert(mem(2), dma_import());
        assert_eq!(t.extent_of(mem(1)), None, "nothing bound: all of it");
        t.bind(image, mem(1), Planes::of_aspect(A::PLANE_0), Some(Span { offset: 0, size: 1024 }));
        t.bind(image, mem(2), Planes::of_aspect(A::PLANE_1), Some(Span { offset: 1024, size: 512 }));
        assert_eq!(t.extent_of(mem(1)), Some(Span { offset: 0, size: 1024 }));
        assert_eq!(t.extent_of(mem(2)), Some(Span { offset: 1024, size: 512 }));
        t.bind(buf(10), mem(1), Planes::ALL, Some(Span { offset: 2048, size: 16 }));
        assert_eq!(t.extent_of(mem(1)), Some(Span { offset: 0, size: 2064 }));
        t.bind(buf(11), mem(1), Planes::ALL, None);
        assert_eq!(t.extent_of(mem(1)), None, "a binding of unknown place: all of it");
        assert!(Span { offset: 0, size: 10 }.contains(Span { offset: 2, size: 8 }));
        assert!(!Span { offset: 0, size: 10 }.contains(Span { offset: 2, size: 9 }));
    }

    /// The device's only memory of a dma-buf copies all of it; two memories
    /// of one dma-buf (a disjoint image's planes at two offsets) copy only
    /// their own bytes, and one with nothing bound copies nothing.
    #[test]
    fn copies_cover_the_whole_memory_unless_the_dma_buf_is_imported_twice() {
        use vk::ImageAspectFlags as A;
        let fd = || Arc::new(std::fs::File::open("/dev/null").map(OwnedFd::from).unwrap());
        let key = DmaBufKey { dev: 1, ino: 7 };
        let mut t = MemoryTable::default();
        let image = Resource::Image(vk::Image::from_raw(20));
        t.insert(mem(1), dma_import());
        t.set_dma_buf(mem(1), DmaBufRef { key, fd: fd() });
        t.bind(image, mem(1), Planes::of_aspect(A::PLANE_0), Some(Span { offset: 0, size: 1024 }));
        assert_eq!(t.copy_extent(mem(1), 4096), CopyExtent::Whole);
        t.insert(mem(2), dma_import());
        t.set_dma_buf(mem(2), DmaBufRef { key, fd: fd() });
        assert_eq!(t.copy_extent(mem(1), 4096), CopyExtent::Part(Span { offset: 0, size: 1024 }));
        assert_eq!(t.copy_extent(mem(2), 4096), CopyExtent::Nothing);
        t.bind(image, mem(2), Planes::of_aspect(A::PLANE_1), Some(Span { offset: 1024, size: 512 }));
        assert_eq!(t.copy_extent(mem(2), 4096), CopyExtent::Part(Span { offset: 1024, size: 512 }));
        t.bind(buf(9), mem(2), Planes::ALL, None);
        assert_eq!(t.copy_extent(mem(2), 4096), CopyExtent::Whole, "a binding of unknown place");
        t.remove(mem(2));
        assert_eq!(t.copy_extent(mem(1), 4096), CopyExtent::Whole);
    }
}
