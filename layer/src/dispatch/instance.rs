//! Per-instance state: the next layer's instance functions.

use ash::vk;

use super::fn_table::fn_table;

fn_table!(InstanceFns, vk::Instance, vk::PFN_vkGetInstanceProcAddr {
    destroy_instance: PFN_vkDestroyInstance = c"vkDestroyInstance";
    create_device: PFN_vkCreateDevice = c"vkCreateDevice";
    get_physical_device_properties: PFN_vkGetPhysicalDeviceProperties = c"vkGetPhysicalDeviceProperties";
});

/// One `VkInstance` created through this layer.
#[derive(Debug)]
pub struct Instance {
    pub handle: vk::Instance,
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    pub fns: InstanceFns,
}

impl Instance {
    /// Builds the state for a freshly created instance.
    ///
    /// # Safety
    /// `next_gipa` must be the next layer's `vkGetInstanceProcAddr` and
    /// `handle` the instance it just created.
    pub unsafe fn new(handle: vk::Instance, next_gipa: vk::PFN_vkGetInstanceProcAddr) -> Self {
        // SAFETY: forwarded from this function's contract.
        let fns = unsafe { InstanceFns::load(next_gipa, handle) };
        Instance { handle, next_gipa, fns }
    }

    /// The next layer's pointer for `name` (null when it has none).
    pub fn next_proc_addr(&self, name: &std::ffi::CStr) -> vk::PFN_vkVoidFunction {
        // SAFETY: `handle` is live while this state is in the table, and
        // `name` is NUL-terminated.
        unsafe { (self.next_gipa)(self.handle, name.as_ptr()) }
    }

    /// The device's name as the driver reports it (for log lines).
    pub fn device_name(&self, physical: vk::PhysicalDevice) -> String {
        let Some(f) = self.fns.get_physical_device_properties else {
            return "?".into();
        };
        let mut props = vk::PhysicalDeviceProperties::default();
        // SAFETY: `physical` belongs to this instance (the caller found this
        // state through its dispatch key) and `props` is a valid out-struct.
        unsafe { f(physical, &mut props) };
        props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Calls the next `vkDestroyInstance`.
    pub fn destroy(&self, allocator: Option<&vk::AllocationCallbacks<'_>>) {
        if let Some(f) = self.fns.destroy_instance {
            // SAFETY: the application is destroying this instance (the
            // trampoline's contract); `allocator` is the one it passed.
            unsafe { f(self.handle, allocator.map_or(std::ptr::null(), |a| a)) }
        }
    }
}
