//! Per-instance and per-device state, keyed by dispatch key.
//!
//! Every dispatchable handle (instance, physical device, device, queue,
//! command buffer) points to an object whose first word is the loader's
//! dispatch table pointer. All handles of one instance share the instance's
//! key; a device, its queues and its command buffers share the device's key.
//! That key is what the tables here are indexed by, so any hook finds its
//! state from whatever handle it was given, without wrapping handles.

pub mod debug_utils;
pub mod device;
pub mod feature_chain;
pub mod fn_table;
pub mod hazard_reporter;
pub mod instance;
pub mod link;
pub mod loader_abi;
pub mod off_thread;
pub mod own_objects;
pub mod remap_objects;
pub mod resources;
pub mod state;
pub mod table;
pub mod usage_fns;

use ash::vk::Handle;

pub use device::Device;
pub use instance::Instance;
use table::SlotTable;

static INSTANCES: SlotTable<Instance> = SlotTable::new();
static DEVICES: SlotTable<Device> = SlotTable::new();

/// The dispatch key of a dispatchable handle.
///
/// # Safety
/// `handle` must be a valid dispatchable Vulkan handle (instance, physical
/// device, device, queue or command buffer) created through the loader.
#[inline(always)]
pub unsafe fn key_of(handle: impl Handle) -> usize {
    let p = handle.as_raw() as *const usize;
    if p.is_null() {
        return 0;
    }
    // SAFETY: a valid dispatchable handle is a pointer to an object whose
    // first word is the loader's dispatch table pointer (vk_layer.h,
    // "Dispatchable object" layout that the loader enforces).
    unsafe { p.read() }
}

/// The instance state for a handle of that instance (instance or physical
/// device).
///
/// # Safety
/// As for [`key_of`].
#[inline]
pub unsafe fn instance(handle: impl Handle) -> Option<&'static Instance> {
    // SAFETY: forwarded from this function's contract.
    INSTANCES.get(unsafe { key_of(handle) })
}

/// The device state for a handle of that device (device, queue, command
/// buffer).
///
/// # Safety
/// As for [`key_of`].
#[inline]
pub unsafe fn device(handle: impl Handle) -> Option<&'static Device> {
    // SAFETY: forwarded from this function's contract.
    DEVICES.get(unsafe { key_of(handle) })
}

/// The tables themselves, for creation and destruction.
pub fn instances() -> &'static SlotTable<Instance> {
    &INSTANCES
}

pub fn devices() -> &'static SlotTable<Device> {
    &DEVICES
}
