//! Walking `pNext` chains.
//!
//! A chain is a linked list of structures that each start with `sType` and
//! `pNext` (`VkBaseInStructure`). The walker reads only those two fields until
//! it finds the structure type asked for, then reinterprets that node as the
//! type that `sType` names.

use std::ffi::c_void;

use ash::vk;

/// A structure that can appear in a pNext chain, with the `sType` it carries.
///
/// # Safety
/// `STRUCTURE_TYPE` must be the `sType` value that the Vulkan specification
/// assigns to `Self`, and `Self` must be `#[repr(C)]` with the layout the
/// specification gives it (ash's generated types are).
pub unsafe trait Extends {
    const STRUCTURE_TYPE: vk::StructureType;
}

macro_rules! extends {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: ash's `$t` is the `#[repr(C)]` mirror of the Vulkan type and
        // its `STRUCTURE_TYPE` is the one the registry assigns it.
        unsafe impl Extends for vk::$t<'_> {
            const STRUCTURE_TYPE: vk::StructureType = <vk::$t<'static> as vk::TaggedStructure>::STRUCTURE_TYPE;
        }
    )*};
}

extends!(
    ImportMemoryFdInfoKHR,
    ExportMemoryAllocateInfo,
    MemoryDedicatedAllocateInfo,
    ExternalMemoryAcquireUnmodifiedEXT,
    TimelineSemaphoreSubmitInfo,
    DeviceGroupSubmitInfo,
    ProtectedSubmitInfo,
    BindImagePlaneMemoryInfo,
    ExternalMemoryImageCreateInfo,
    RenderPassAttachmentBeginInfo,
    LayerSettingsCreateInfoEXT,
    SemaphoreTypeCreateInfo,
    PhysicalDeviceFeatures2,
);

/// Iterates the raw nodes of a chain.
///
/// # Safety
/// `p_next` must be null or point to a valid chain of Vulkan structures (every
/// node starts with `sType`/`pNext` and the list ends with null), alive and
/// unchanged while the iterator is used.
pub unsafe fn nodes(p_next: *const c_void) -> impl Iterator<Item = *const vk::BaseInStructure<'static>> {
    let mut cur = p_next.cast::<vk::BaseInStructure<'static>>();
    std::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        let node = cur;
        // SAFETY: per this function's contract `cur` points to a live chain
        // node, and every node starts with a `VkBaseInStructure` header.
        cur = unsafe { (*node).p_next };
        Some(node)
    })
}

/// The first structure of type `T` in the chain that starts at `p_next`.
///
/// # Safety
/// As for [`nodes`]; the returned reference must not outlive the chain.
pub unsafe fn find<'a, T: Extends>(p_next: *const c_void) -> Option<&'a T> {
    // SAFETY: forwarded from this function's contract.
    let mut it = unsafe { nodes(p_next) };
    it.find(|&n| {
        // SAFETY: `n` is a live node header (contract of `nodes`).
        unsafe { (*n).s_type == T::STRUCTURE_TYPE }
    })
    .map(|n| {
        // SAFETY: the node's sType is `T::STRUCTURE_TYPE`, so by the contract
        // of `Extends` it is a `T`; it lives as long as the chain.
        unsafe { &*n.cast::<T>() }
    })
}
