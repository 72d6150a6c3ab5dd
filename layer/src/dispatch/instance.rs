//! Per-instance state: the next layer's instance functions.

use ash::vk;

use super::fn_table::fn_table;

fn_table!(InstanceFns, vk::Instance, vk::PFN_vkGetInstanceProcAddr {
    destroy_instance: PFN_vkDestroyInstance = c"vkDestroyInstance";
    create_device: PFN_vkCreateDevice = c"vkCreateDevice";
    get_physical_device_properties: PFN_vkGetPhysicalDeviceProperties = c"vkGetPhysicalDeviceProperties";
    get_physical_device_properties2: PFN_vkGetPhysicalDeviceProperties2 = c"vkGetPhysicalDeviceProperties2" | c"vkGetPhysicalDeviceProperties2KHR";
    get_physical_device_memory_properties: PFN_vkGetPhysicalDeviceMemoryProperties = c"vkGetPhysicalDeviceMemoryProperties";
    get_physical_device_memory_properties2: PFN_vkGetPhysicalDeviceMemoryProperties2 = c"vkGetPhysicalDeviceMemoryProperties2" | c"vkGetPhysicalDeviceMemoryProperties2KHR";
    enumerate_device_extension_properties: PFN_vkEnumerateDeviceExtensionProperties = c"vkEnumerateDeviceExtensionProperties";
    get_external_semaphore_properties: PFN_vkGetPhysicalDeviceExternalSemaphoreProperties = c"vkGetPhysicalDeviceExternalSemaphoreProperties" | c"vkGetPhysicalDeviceExternalSemaphorePropertiesKHR";
    get_external_buffer_properties: PFN_vkGetPhysicalDeviceExternalBufferProperties = c"vkGetPhysicalDeviceExternalBufferProperties" | c"vkGetPhysicalDeviceExternalBufferPropertiesKHR";
    get_physical_device_features2: PFN_vkGetPhysicalDeviceFeatures2 = c"vkGetPhysicalDeviceFeatures2" | c"vkGetPhysicalDeviceFeatures2KHR";
    get_queue_family_properties: PFN_vkGetPhysicalDeviceQueueFamilyProperties = c"vkGetPhysicalDeviceQueueFamilyProperties";
    create_debug_utils_messenger: PFN_vkCreateDebugUtilsMessengerEXT = c"vkCreateDebugUtilsMessengerEXT";
    destroy_debug_utils_messenger: PFN_vkDestroyDebugUtilsMessengerEXT = c"vkDestroyDebugUtilsMessengerEXT";
});

/// One `VkInstance` created through this layer.
#[derive(Debug)]
pub struct Instance {
    pub handle: vk::Instance,
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    pub fns: InstanceFns,
    /// The application's `VkApplicationInfo::apiVersion` (1.0 when absent).
    pub api_version: u32,
    /// The instance extensions the application enabled.
    pub extensions: Vec<std::ffi::CString>,
    /// The application's debug messengers (shared with its devices).
    pub messengers: std::sync::Arc<super::debug_utils::Messengers>,
}

impl Instance {
    /// Builds the state for a freshly created instance.
    ///
    /// # Safety
    /// `next_gipa` must be the next layer's `vkGetInstanceProcAddr` and
    /// `handle` the instance it just created.
    pub unsafe fn new(
        handle: vk::Instance,
        next_gipa: vk::PFN_vkGetInstanceProcAddr,
        api_version: u32,
        extensions: Vec<std::ffi::CString>,
    ) -> Self {
        // SAFETY: forwarded from this function's contract.
        let fns = unsafe { InstanceFns::load(next_gipa, handle) };
        Instance { handle, next_gipa, fns, api_version, extensions, messengers: Default::default() }
    }

    /// Whether the application enabled instance extension `name`.
    pub fn has_extension(&self, name: &std::ffi::CStr) -> bool {
        self.extensions.iter().any(|e| e.as_c_str() == name)
    }

    /// Whether instance-level functionality of Vulkan `version` (or the
    /// instance extension that brought it, `name`) is available.
    pub fn has(&self, version: u32, name: &std::ffi::CStr) -> bool {
        self.api_version >= version || self.has_extension(name)
    }

    /// The physical device's own `apiVersion`.
    pub fn device_api_version(&self, physical: vk::PhysicalDevice) -> u32 {
        let Some(f) = self.fns.get_physical_device_properties else {
            return vk::API_VERSION_1_0;
        };
        let mut props = vk::PhysicalDeviceProperties::default();
        // SAFETY: a physical device of this instance and a valid out-struct.
        unsafe { f(physical, &mut props) };
        props.api_version
    }

    /// The Vulkan version device-level functionality may use: the lower of
    /// the instance's and the physical device's.
    pub fn effective_version(&self, physical: vk::PhysicalDevice) -> u32 {
        self.api_version.min(self.device_api_version(physical))
    }

    /// Whether the device supports the `timelineSemaphore` feature (asked
    /// only where `vkGetPhysicalDeviceFeatures2` may be called).
    pub fn supports_timeline_semaphores(&self, physical: vk::PhysicalDevice) -> bool {
        if !self.has(vk::API_VERSION_1_1, c"VK_KHR_get_physical_device_properties2") {
            return false;
        }
        let Some(f) = self.fns.get_physical_device_features2 else { return false };
        let mut timeline = vk::PhysicalDeviceTimelineSemaphoreFeatures::default();
        let mut features = vk::PhysicalDeviceFeatures2 {
            p_next: (&mut timeline as *mut vk::PhysicalDeviceTimelineSemaphoreFeatures<'_>).cast(),
            ..Default::default()
        };
        // SAFETY: a physical device of this instance and a valid chain of
        // out-structures that live across the call.
        unsafe { f(physical, &mut features) };
        timeline.timeline_semaphore == vk::TRUE
    }

    /// Whether the device supports the `sparseBinding` feature; `None`
    /// where `vkGetPhysicalDeviceFeatures2` may not be called.
    pub fn supports_sparse_binding(&self, physical: vk::PhysicalDevice) -> Option<bool> {
        if !self.has(vk::API_VERSION_1_1, c"VK_KHR_get_physical_device_properties2") {
            return None;
        }
        let f = self.fns.get_physical_device_features2?;
        let mut features = vk::PhysicalDeviceFeatures2::default();
        // SAFETY: a physical device of this instance and a valid
        // out-structure that lives across the call.
        unsafe { f(physical, &mut features) };
        Some(features.features.sparse_binding == vk::TRUE)
    }

    /// The queue flags of each queue family.
    pub fn queue_family_flags(&self, physical: vk::PhysicalDevice) -> Vec<vk::QueueFlags> {
        let Some(f) = self.fns.get_queue_family_properties else { return Vec::new() };
        let mut count = 0u32;
        // SAFETY: the two-call idiom with a valid count pointer and, second,
        // an array of `count` elements.
        unsafe {
            f(physical, &mut count, std::ptr::null_mut());
            let mut props = vec![vk::QueueFamilyProperties::default(); count as usize];
            f(physical, &mut count, props.as_mut_ptr());
            props.truncate(count as usize);
            props.iter().map(|p| p.queue_flags).collect()
        }
    }

    /// Whether memory of `handle_type` can back a transfer buffer that is
    /// exported or imported (`vkGetPhysicalDeviceExternalBufferProperties`).
    pub fn external_buffer_features(
        &self,
        physical: vk::PhysicalDevice,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
    ) -> vk::ExternalMemoryFeatureFlags {
        self.external_buffer_features_for(physical, handle_type, vk::BufferCreateFlags::empty())
    }

    /// As [`Self::external_buffer_features`], for a buffer created with `flags`.
    pub fn external_buffer_features_for(
        &self,
        physical: vk::PhysicalDevice,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
        flags: vk::BufferCreateFlags,
    ) -> vk::ExternalMemoryFeatureFlags {
        let Some(f) = self.fns.get_external_buffer_properties else { return Default::default() };
        let info = vk::PhysicalDeviceExternalBufferInfo::default()
            .flags(flags)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .handle_type(handle_type);
        let mut props = vk::ExternalBufferProperties::default();
        // SAFETY: a physical device of this instance and valid structs.
        unsafe { f(physical, &info, &mut props) };
        props.external_memory_properties.external_memory_features
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

    /// The device extensions the driver (and the layers below) offer.
    pub fn device_extensions(&self, physical: vk::PhysicalDevice) -> Vec<std::ffi::CString> {
        self.device_extension_properties(physical)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.extension_name_as_c_str().ok().map(std::ffi::CString::from))
            .collect()
    }

    /// `vkEnumerateDeviceExtensionProperties(physical, NULL, ...)` below the
    /// layer, all of it (the two-call idiom, again while the list grows, a
    /// few times at most).
    pub fn device_extension_properties(
        &self,
        physical: vk::PhysicalDevice,
    ) -> Result<Vec<vk::ExtensionProperties>, vk::Result> {
        let Some(f) = self.fns.enumerate_device_extension_properties else { return Ok(Vec::new()) };
        for _ in 0..4 {
            let mut count = 0u32;
            // SAFETY: a physical device of this instance and a valid count pointer.
            let r = unsafe { f(physical, std::ptr::null(), &mut count, std::ptr::null_mut()) };
            if r != vk::Result::SUCCESS {
                return Err(r);
            }
            let mut props = vec![vk::ExtensionProperties::default(); count as usize];
            // SAFETY: as above, with an array of `count` elements.
            let r = unsafe { f(physical, std::ptr::null(), &mut count, props.as_mut_ptr()) };
            match r {
                vk::Result::SUCCESS => {
                    props.truncate(count as usize);
                    return Ok(props);
                }
                vk::Result::INCOMPLETE => continue,
                e => return Err(e),
            }
        }
        Err(vk::Result::INCOMPLETE)
    }

    /// The next layer's `vkEnumerateDeviceExtensionProperties`.
    pub fn next_enumerate_device_extension_properties(
        &self,
    ) -> Option<vk::PFN_vkEnumerateDeviceExtensionProperties> {
        self.fns.enumerate_device_extension_properties
    }

    /// `VkPhysicalDeviceDrmPropertiesEXT`, when the device has
    /// `VK_EXT_physical_device_drm` (the caller checks).
    pub fn drm_properties(
        &self,
        physical: vk::PhysicalDevice,
    ) -> Option<vk::PhysicalDeviceDrmPropertiesEXT<'static>> {
        let f = self.fns.get_physical_device_properties2?;
        let mut drm = vk::PhysicalDeviceDrmPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceProperties2 {
            p_next: (&mut drm as *mut vk::PhysicalDeviceDrmPropertiesEXT<'_>).cast(),
            ..Default::default()
        };
        // SAFETY: a physical device of this instance and a valid chain of
        // out-structures that live across the call.
        unsafe { f(physical, &mut props) };
        drm.p_next = std::ptr::null_mut();
        Some(drm)
    }

    pub fn memory_properties(&self, physical: vk::PhysicalDevice) -> vk::PhysicalDeviceMemoryProperties {
        let mut props = vk::PhysicalDeviceMemoryProperties::default();
        if let Some(f) = self.fns.get_physical_device_memory_properties {
            // SAFETY: a physical device of this instance and a valid out struct.
            unsafe { f(physical, &mut props) };
        }
        props
    }

    /// What the driver says a semaphore of `handle_type` can do.
    pub fn external_semaphore_features(
        &self,
        physical: vk::PhysicalDevice,
        handle_type: vk::ExternalSemaphoreHandleTypeFlags,
    ) -> vk::ExternalSemaphoreFeatureFlags {
        let Some(f) = self.fns.get_external_semaphore_properties else { return Default::default() };
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(handle_type);
        let mut props = vk::ExternalSemaphoreProperties::default();
        // SAFETY: a physical device of this instance and valid structs.
        unsafe { f(physical, &info, &mut props) };
        props.external_semaphore_features
    }

    /// A handle for asking the device's memory budget (`VK_EXT_memory_budget`
    /// must be enabled on the device).
    pub fn memory_budget(&self, physical: vk::PhysicalDevice) -> Option<MemoryBudget> {
        Some(MemoryBudget { physical, query: self.fns.get_physical_device_memory_properties2? })
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

/// Asks a physical device for its heaps' budgets and usage.
#[derive(Clone, Copy, Debug)]
pub struct MemoryBudget {
    physical: vk::PhysicalDevice,
    query: vk::PFN_vkGetPhysicalDeviceMemoryProperties2,
}

impl MemoryBudget {
    /// Whether the heap of memory type `type_index` uses more than the
    /// driver's budget for it.
    pub fn over_budget(&self, type_index: u32) -> bool {
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceMemoryProperties2 {
            p_next: (&mut budget as *mut vk::PhysicalDeviceMemoryBudgetPropertiesEXT<'_>).cast(),
            ..Default::default()
        };
        // SAFETY: the physical device outlives its devices, which hold this;
        // the out-structures chain is valid for the call.
        unsafe { (self.query)(self.physical, &mut props) };
        let types = &props.memory_properties.memory_types;
        let Some(t) =
            types.get(type_index as usize).filter(|_| type_index < props.memory_properties.memory_type_count)
        else {
            return false;
        };
        let heap = t.heap_index as usize;
        match (budget.heap_budget.get(heap), budget.heap_usage.get(heap)) {
            (Some(&limit), Some(&usage)) => limit != 0 && usage > limit,
            _ => false,
        }
    }
}
