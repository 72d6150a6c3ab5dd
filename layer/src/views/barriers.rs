//! The buffer and image barriers of `vkCmdPipelineBarrier{,2}`, read through
//! their pNext chains: whether an acquire carries
//! `VkExternalMemoryAcquireUnmodifiedEXT`, and copies of the arrays without
//! that structure for a driver that lacks the extension (the layer offers it
//! there itself: `hooks::acquire_unmodified`).
//!
//! The copies never write the application's memory: a barrier whose chain
//! holds the structure is copied, and so is every chain node before it
//! (its `pNext` must change); the nodes after it are shared. Only nodes of
//! a known type can be copied (their size is known); a chain where an
//! unknown structure precedes it is left as it is, with a warning once.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use ash::vk;

use super::pnext;

const UNMODIFIED: vk::StructureType = vk::StructureType::EXTERNAL_MEMORY_ACQUIRE_UNMODIFIED_EXT;

/// A barrier structure that may carry `VkExternalMemoryAcquireUnmodifiedEXT`.
pub trait ChainedBarrier: Copy {
    fn p_next(&self) -> *const c_void;
    fn set_p_next(&mut self, p_next: *const c_void);
}

macro_rules! chained {
    ($($t:ident),*) => {$(
        impl ChainedBarrier for vk::$t<'_> {
            #[inline]
            fn p_next(&self) -> *const c_void {
                self.p_next
            }
            fn set_p_next(&mut self, p_next: *const c_void) {
                self.p_next = p_next;
            }
        }
    )*};
}

chained!(BufferMemoryBarrier, BufferMemoryBarrier2, ImageMemoryBarrier, ImageMemoryBarrier2);

/// One barrier of a [`Barriers`] array.
#[derive(Clone, Copy, Debug)]
pub struct Chained<'a, T>(&'a T);

impl<'a, T: ChainedBarrier> Chained<'a, T> {
    #[inline]
    pub fn get(&self) -> &'a T {
        self.0
    }

    /// `VkExternalMemoryAcquireUnmodifiedEXT::acquireUnmodifiedMemory` in
    /// the barrier's chain (`false` without the structure).
    pub fn acquire_unmodified(&self) -> bool {
        let p_next = self.0.p_next();
        if p_next.is_null() {
            return false;
        }
        // SAFETY: `Barriers::new`'s contract: the chain is valid for `'a`.
        let found = unsafe { pnext::find::<vk::ExternalMemoryAcquireUnmodifiedEXT>(p_next) };
        found.is_some_and(|s| s.acquire_unmodified_memory == vk::TRUE)
    }
}

/// One barrier array of a barrier command, its chains vouched for.
#[derive(Clone, Copy, Debug)]
pub struct Barriers<'a, T> {
    items: &'a [T],
}

impl<'a, T: ChainedBarrier> Barriers<'a, T> {
    /// # Safety
    /// Every barrier's `pNext` must be null or a valid chain of Vulkan
    /// structures (Vulkan valid usage), alive and unchanged for `'a`.
    #[inline]
    pub unsafe fn new(items: &'a [T]) -> Self {
        Barriers { items }
    }

    #[inline]
    pub fn as_slice(&self) -> &'a [T] {
        self.items
    }

    pub fn iter(&self) -> impl Iterator<Item = Chained<'a, T>> + 'a {
        self.items.iter().map(Chained)
    }

    /// A copy of the array without `VkExternalMemoryAcquireUnmodifiedEXT`
    /// in any chain; `None` when no chain holds one (nothing is allocated
    /// then) or none can be changed.
    pub fn without_acquire_unmodified(&self) -> Option<Stripped<T>> {
        let holds = |b: &T| {
            // SAFETY: `new`'s contract: the chain is valid for `'a`.
            !b.p_next().is_null()
                && unsafe { pnext::nodes(b.p_next()) }.any(|n| {
                    // SAFETY: `n` is a live node header.
                    unsafe { (*n).s_type == UNMODIFIED }
                })
        };
        let first = self.items.iter().position(holds)?;
        let mut out = Stripped { barriers: self.items.to_vec(), nodes: Vec::new() };
        let mut changed = false;
        for b in &mut out.barriers[first..] {
            if !holds(b) {
                continue;
            }
            // SAFETY: as above.
            let chain: Vec<*const vk::BaseInStructure<'static>> =
                unsafe { pnext::nodes(b.p_next()) }.collect();
            // SAFETY: each is a live node header.
            let types: Vec<vk::StructureType> = chain.iter().map(|&n| unsafe { (*n).s_type }).collect();
            match plan(&types) {
                Plan::Keep => {}
                Plan::Unknown(t) => warn_unknown(t),
                Plan::CopyBefore(last) => {
                    // SAFETY: a live node; the chain goes on after it unchanged.
                    let mut next = unsafe { (*chain[last]).p_next }.cast::<c_void>();
                    for &n in chain[..last].iter().rev() {
                        // SAFETY: a live node of the type its sType names.
                        let Some(mut copy) = (unsafe { Node::copy(n) }) else { continue };
                        copy.set_next(next);
                        let copy = Box::new(copy);
                        next = copy.as_ptr();
                        out.nodes.push(copy);
                    }
                    b.set_p_next(next);
                    changed = true;
                }
            }
        }
        changed.then_some(out)
    }
}

/// What taking `VkExternalMemoryAcquireUnmodifiedEXT` out of a chain whose
/// structures have `types` (in chain order) takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The chain does not hold it.
    Keep,
    /// Copy the nodes before index `n` (the last one that is the
    /// structure), dropping the structure wherever it is among them, and
    /// link the last copy to what follows node `n`.
    CopyBefore(usize),
    /// A structure of this unknown type precedes it: it cannot be copied.
    Unknown(vk::StructureType),
}

/// The pure part of [`Barriers::without_acquire_unmodified`].
pub fn plan(types: &[vk::StructureType]) -> Plan {
    let Some(last) = types.iter().rposition(|t| *t == UNMODIFIED) else { return Plan::Keep };
    match types[..last].iter().find(|&&t| t != UNMODIFIED && !Node::known(t)) {
        Some(&t) => Plan::Unknown(t),
        None => Plan::CopyBefore(last),
    }
}

fn warn_unknown(t: vk::StructureType) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log_warn!(
            "a barrier's pNext chain holds {t:?}, unknown to the layer, before \
             VkExternalMemoryAcquireUnmodifiedEXT: passed down as it is (the layer cannot copy a \
             structure of unknown size, and must not write the application's); a layer below may \
             report the structure of an extension the driver was not asked for"
        );
    }
}

/// A copy of a chain node of a type a barrier's chain may hold before the
/// structure (`VkSampleLocationsInfoEXT` on image barriers).
#[derive(Debug)]
enum Node {
    SampleLocations(vk::SampleLocationsInfoEXT<'static>),
}

impl Node {
    fn known(t: vk::StructureType) -> bool {
        t == vk::StructureType::SAMPLE_LOCATIONS_INFO_EXT
    }

    /// # Safety
    /// `n` must point to a live structure of the type its sType names.
    unsafe fn copy(n: *const vk::BaseInStructure<'static>) -> Option<Node> {
        // SAFETY: a live node header (this function's contract).
        match unsafe { (*n).s_type } {
            vk::StructureType::SAMPLE_LOCATIONS_INFO_EXT => {
                // SAFETY: the node is a `VkSampleLocationsInfoEXT` (its sType).
                Some(Node::SampleLocations(unsafe { *n.cast::<vk::SampleLocationsInfoEXT<'static>>() }))
            }
            _ => None,
        }
    }

    fn set_next(&mut self, next: *const c_void) {
        match self {
            Node::SampleLocations(s) => s.p_next = next,
        }
    }

    fn as_ptr(&self) -> *const c_void {
        match self {
            Node::SampleLocations(s) => (s as *const vk::SampleLocationsInfoEXT<'_>).cast(),
        }
    }
}

/// A barrier array without `VkExternalMemoryAcquireUnmodifiedEXT`, and the
/// chain nodes it had to copy (boxed: the barriers point into them).
#[derive(Debug)]
pub struct Stripped<T> {
    barriers: Vec<T>,
    // Boxed: the Vec grows while earlier copies are already linked to.
    #[allow(clippy::vec_box)]
    nodes: Vec<Box<Node>>,
}

impl<T> Stripped<T> {
    pub fn barriers(&self) -> &[T] {
        &self.barriers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: vk::StructureType = vk::StructureType::SAMPLE_LOCATIONS_INFO_EXT;
    const OTHER: vk::StructureType = vk::StructureType::MEMORY_DEDICATED_ALLOCATE_INFO;

    #[test]
    fn plans() {
        assert_eq!(plan(&[]), Plan::Keep);
        assert_eq!(plan(&[SAMPLES]), Plan::Keep);
        assert_eq!(plan(&[UNMODIFIED]), Plan::CopyBefore(0));
        assert_eq!(plan(&[UNMODIFIED, OTHER]), Plan::CopyBefore(0));
        assert_eq!(plan(&[SAMPLES, UNMODIFIED, OTHER]), Plan::CopyBefore(1));
        assert_eq!(plan(&[UNMODIFIED, SAMPLES, UNMODIFIED]), Plan::CopyBefore(2));
        assert_eq!(plan(&[OTHER, UNMODIFIED]), Plan::Unknown(OTHER));
    }

    fn types_of(p_next: *const c_void) -> Vec<vk::StructureType> {
        // SAFETY: the tests' chains are alive while walked.
        unsafe { pnext::nodes(p_next) }.map(|n| unsafe { (*n).s_type }).collect()
    }

    #[test]
    fn strips_without_touching_the_applications_structures() {
        let mut unmodified =
            vk::ExternalMemoryAcquireUnmodifiedEXT::default().acquire_unmodified_memory(true);
        let mut samples =
            vk::SampleLocationsInfoEXT::default().sample_locations_per_pixel(vk::SampleCountFlags::TYPE_4);
        let images = [
            vk::ImageMemoryBarrier::default(),
            vk::ImageMemoryBarrier::default().push_next(&mut unmodified).push_next(&mut samples),
        ];
        // ash's push_next puts each new structure first: samples, unmodified.
        assert_eq!(types_of(images[1].p_next), [SAMPLES, UNMODIFIED]);
        // SAFETY: the chains above are alive for the test.
        let view = unsafe { Barriers::new(&images[..]) };
        assert!(!view.iter().next().unwrap().acquire_unmodified());
        assert!(view.iter().nth(1).unwrap().acquire_unmodified());
        let stripped = view.without_acquire_unmodified().expect("a copy");
        let copy = stripped.barriers();
        assert!(copy[0].p_next.is_null());
        assert_eq!(types_of(copy[1].p_next), [SAMPLES]);
        assert_ne!(copy[1].p_next, images[1].p_next, "the sample locations are a copy");
        // SAFETY: the copy lives in `stripped`.
        let s = unsafe { &*copy[1].p_next.cast::<vk::SampleLocationsInfoEXT<'_>>() };
        assert_eq!(s.sample_locations_per_pixel, vk::SampleCountFlags::TYPE_4);
        // The application's chain is as it was.
        assert_eq!(types_of(images[1].p_next), [SAMPLES, UNMODIFIED]);
    }

    #[test]
    fn the_first_structure_needs_no_copy_and_no_structure_no_allocation() {
        let mut unmodified =
            vk::ExternalMemoryAcquireUnmodifiedEXT::default().acquire_unmodified_memory(true);
        let buffers = [vk::BufferMemoryBarrier2::default().push_next(&mut unmodified)];
        // SAFETY: alive for the test.
        let view = unsafe { Barriers::new(&buffers[..]) };
        let stripped = view.without_acquire_unmodified().expect("a copy");
        assert!(stripped.barriers()[0].p_next.is_null());
        assert!(stripped.nodes.is_empty());
        let plain = [vk::BufferMemoryBarrier2::default()];
        // SAFETY: no chain.
        assert!(unsafe { Barriers::new(&plain[..]) }.without_acquire_unmodified().is_none());
    }

    #[test]
    fn an_unknown_predecessor_leaves_the_chain() {
        let mut unmodified = vk::ExternalMemoryAcquireUnmodifiedEXT::default();
        // Not a valid barrier chain, but a structure the layer cannot copy.
        let mut other = vk::MemoryDedicatedAllocateInfo::default();
        let mut images = [vk::ImageMemoryBarrier::default()];
        unmodified.p_next = std::ptr::null();
        other.p_next = (&unmodified as *const vk::ExternalMemoryAcquireUnmodifiedEXT<'_>).cast();
        images[0].p_next = (&mut other as *mut vk::MemoryDedicatedAllocateInfo<'_>).cast();
        // SAFETY: alive for the test.
        let view = unsafe { Barriers::new(&images[..]) };
        assert!(!view.iter().next().unwrap().acquire_unmodified());
        assert!(view.without_acquire_unmodified().is_none());
    }
}
