//! The device extensions the layer enables for itself, and hiding them from
//! an application that did not ask for them.
//!
//! An extension is added only where enabling it is valid: the device offers
//! it, it is not already core at the version the device is used at, and
//! every extension it depends on is enabled too (instance extensions by the
//! application, since a layer cannot add those after the fact; device
//! extensions by the application or by the layer, earlier in [`WANTED`]).
//! Otherwise Khronos validation reports
//! `VUID-vkCreateDevice-ppEnabledExtensionNames-01387`.

use std::ffi::CStr;

use ash::vk;

#[derive(Debug)]
/// An extension the layer wants, with the device functions it brings (which
/// `vkGetDeviceProcAddr` keeps hidden when only the layer enabled it).
pub struct Wanted {
    pub name: &'static CStr,
    pub functions: &'static [&'static CStr],
    /// The Vulkan version that made it core (then it is not added).
    pub core_in: u32,
    /// The instance extension it needs where the instance is Vulkan 1.0.
    pub instance_needs: Option<&'static CStr>,
    /// Device extensions it needs (unless core at the device's version).
    pub device_needs: &'static [&'static CStr],
}

const NEVER: u32 = u32::MAX;

/// What the layer enables when the device has it: dma-buf import/export,
/// fd export, SYNC_FD semaphores (with the 1.0 extensions they need), in
/// dependency order. Timeline semaphores are handled with their feature
/// (see `entry::device`).
pub const WANTED: &[Wanted] = &[
    Wanted {
        name: c"VK_KHR_external_memory",
        functions: &[],
        core_in: vk::API_VERSION_1_1,
        instance_needs: Some(c"VK_KHR_external_memory_capabilities"),
        device_needs: &[],
    },
    Wanted {
        name: c"VK_KHR_external_semaphore",
        functions: &[],
        core_in: vk::API_VERSION_1_1,
        instance_needs: Some(c"VK_KHR_external_semaphore_capabilities"),
        device_needs: &[],
    },
    Wanted {
        name: c"VK_KHR_external_memory_fd",
        functions: &[c"vkGetMemoryFdKHR", c"vkGetMemoryFdPropertiesKHR"],
        core_in: NEVER,
        instance_needs: None,
        device_needs: &[c"VK_KHR_external_memory"],
    },
    Wanted {
        name: c"VK_EXT_external_memory_dma_buf",
        functions: &[],
        core_in: NEVER,
        instance_needs: None,
        device_needs: &[c"VK_KHR_external_memory_fd"],
    },
    Wanted {
        name: c"VK_KHR_external_semaphore_fd",
        functions: &[c"vkGetSemaphoreFdKHR", c"vkImportSemaphoreFdKHR"],
        core_in: NEVER,
        instance_needs: None,
        device_needs: &[c"VK_KHR_external_semaphore"],
    },
    // Heap budgets, for DYNABUF_EVICT=budget.
    Wanted {
        name: c"VK_EXT_memory_budget",
        functions: &[],
        core_in: NEVER,
        instance_needs: Some(c"VK_KHR_get_physical_device_properties2"),
        device_needs: &[],
    },
];

/// `VK_KHR_timeline_semaphore`, added where the device is used below
/// Vulkan 1.2 and the layer turns the feature on.
pub const TIMELINE: Wanted = Wanted {
    name: c"VK_KHR_timeline_semaphore",
    functions: &[c"vkGetSemaphoreCounterValueKHR", c"vkWaitSemaphoresKHR", c"vkSignalSemaphoreKHR"],
    core_in: vk::API_VERSION_1_2,
    instance_needs: Some(c"VK_KHR_get_physical_device_properties2"),
    device_needs: &[],
};

/// What decides whether an extension may be added.
#[derive(Debug)]
pub struct Context<'a> {
    /// Extensions the device offers.
    pub available: &'a [&'a CStr],
    /// Extensions the application asked for.
    pub requested: &'a [&'a CStr],
    /// The application's instance API version.
    pub instance_version: u32,
    /// Instance extensions the application enabled.
    pub instance_extensions: &'a [&'a CStr],
    /// The version device-level functionality is used at (the lower of the
    /// instance's and the physical device's).
    pub device_version: u32,
}

impl Context<'_> {
    /// Whether the instance has `needs` (core since 1.1 for all the layer
    /// asks of it).
    fn instance_has(&self, needs: Option<&CStr>) -> bool {
        needs.map_or(true, |n| {
            self.instance_version >= vk::API_VERSION_1_1 || self.instance_extensions.contains(&n)
        })
    }

    /// Whether `w` may be added given what is enabled so far.
    pub fn may_add(&self, w: &Wanted, enabled: &[&CStr]) -> bool {
        let core = |name: &CStr| {
            WANTED
                .iter()
                .chain([&TIMELINE])
                .find(|x| x.name == name)
                .is_some_and(|x| self.device_version >= x.core_in)
        };
        self.available.contains(&w.name)
            && !self.requested.contains(&w.name)
            && self.device_version < w.core_in
            && self.instance_has(w.instance_needs)
            && w.device_needs.iter().all(|d| core(d) || enabled.contains(d))
    }
}

/// The extensions to add: wanted, valid to enable, offered by the device,
/// not asked for.
pub fn to_add(ctx: &Context<'_>) -> Vec<&'static Wanted> {
    let mut enabled: Vec<&CStr> = ctx.requested.to_vec();
    let mut added = Vec::new();
    for w in WANTED {
        if ctx.may_add(w, &enabled) {
            enabled.push(w.name);
            added.push(w);
        }
    }
    added
}

/// The functions to hide from the application after adding `added`.
pub fn hidden_functions(added: &[&'static Wanted]) -> Vec<&'static CStr> {
    added.iter().flat_map(|w| w.functions.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(added: &[&Wanted]) -> Vec<&'static CStr> {
        added.iter().map(|w| w.name).collect()
    }

    const ALL: &[&CStr] = &[
        c"VK_KHR_external_memory",
        c"VK_KHR_external_semaphore",
        c"VK_KHR_external_memory_fd",
        c"VK_EXT_external_memory_dma_buf",
        c"VK_KHR_external_semaphore_fd",
        c"VK_KHR_swapchain",
        c"VK_EXT_memory_budget",
    ];

    #[test]
    fn adds_only_what_is_offered_and_not_asked_for() {
        let available = [c"VK_KHR_external_memory_fd", c"VK_KHR_external_semaphore_fd", c"VK_KHR_swapchain"];
        let requested = [c"VK_KHR_external_memory_fd"];
        let ctx = Context {
            available: &available,
            requested: &requested,
            instance_version: vk::API_VERSION_1_3,
            instance_extensions: &[],
            device_version: vk::API_VERSION_1_3,
        };
        let added = to_add(&ctx);
        assert_eq!(names(&added), vec![c"VK_KHR_external_semaphore_fd"]);
        assert_eq!(hidden_functions(&added), vec![c"vkGetSemaphoreFdKHR", c"vkImportSemaphoreFdKHR"]);
    }

    #[test]
    fn core_extensions_are_not_added_at_1_1_and_later() {
        let ctx = Context {
            available: ALL,
            requested: &[],
            instance_version: vk::API_VERSION_1_1,
            instance_extensions: &[],
            device_version: vk::API_VERSION_1_1,
        };
        assert_eq!(
            names(&to_add(&ctx)),
            vec![
                c"VK_KHR_external_memory_fd",
                c"VK_EXT_external_memory_dma_buf",
                c"VK_KHR_external_semaphore_fd",
                c"VK_EXT_memory_budget",
            ]
        );
    }

    /// vkcube's case: a 1.0 instance without the `*_capabilities`
    /// extensions can have none of them (VUID-01387).
    #[test]
    fn a_vulkan_1_0_instance_without_capabilities_extensions_gets_nothing() {
        let ctx = Context {
            available: ALL,
            requested: &[c"VK_KHR_swapchain"],
            instance_version: vk::API_VERSION_1_0,
            instance_extensions: &[c"VK_KHR_surface"],
            device_version: vk::API_VERSION_1_0,
        };
        assert!(to_add(&ctx).is_empty());
    }

    #[test]
    fn a_vulkan_1_0_instance_with_one_capabilities_extension_gets_that_side() {
        let ctx = Context {
            available: ALL,
            requested: &[],
            instance_version: vk::API_VERSION_1_0,
            instance_extensions: &[c"VK_KHR_external_memory_capabilities"],
            device_version: vk::API_VERSION_1_0,
        };
        assert_eq!(
            names(&to_add(&ctx)),
            vec![c"VK_KHR_external_memory", c"VK_KHR_external_memory_fd", c"VK_EXT_external_memory_dma_buf"]
        );
    }

    #[test]
    fn timeline_extension_only_below_1_2_with_properties2() {
        let available = [c"VK_KHR_timeline_semaphore"];
        let mut ctx = Context {
            available: &available,
            requested: &[],
            instance_version: vk::API_VERSION_1_0,
            instance_extensions: &[],
            device_version: vk::API_VERSION_1_0,
        };
        assert!(!ctx.may_add(&TIMELINE, &[]));
        ctx.instance_version = vk::API_VERSION_1_1;
        ctx.device_version = vk::API_VERSION_1_1;
        assert!(ctx.may_add(&TIMELINE, &[]));
        ctx.device_version = vk::API_VERSION_1_2;
        assert!(!ctx.may_add(&TIMELINE, &[]));
    }
}
