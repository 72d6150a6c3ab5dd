//! Safe read-only views of Vulkan structures the application passes: the
//! pNext walker, the submissions of a `vkQueueSubmit{,2}` call, the
//! allocation chain of a `vkAllocateMemory`, the barriers of a barrier
//! command (and copies without `VkExternalMemoryAcquireUnmodifiedEXT`), and
//! the application's layer settings at `vkCreateInstance`. They sit at the bottom of the
//! layering so that `entry` builds them (where the raw pointers are vouched
//! for) and `hooks` and `sync` read them. Unsafe code lives here, each
//! constructor stating what it relies on.

pub mod allocation;
pub mod barriers;
pub mod images;
pub mod layer_settings;
pub mod pnext;
pub mod submits;
pub mod usage;

pub use allocation::AllocationChain;
pub use submits::Submits;

/// A slice from a Vulkan (pointer, count) pair; empty when the count is 0.
///
/// # Safety
/// When `count` is non-zero, `ptr` must point to `count` valid, initialised
/// `T`s that outlive `'a` (Vulkan valid usage for array parameters).
#[inline(always)]
pub unsafe fn slice<'a, T>(ptr: *const T, count: u32) -> &'a [T] {
    if count == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: forwarded from this function's contract.
        unsafe { std::slice::from_raw_parts(ptr, count as usize) }
    }
}
