//! The device extensions the layer enables for itself, and hiding them from
//! an application that did not ask for them.

use std::ffi::CStr;

#[derive(Debug)]
/// An extension the layer wants, with the device functions it brings (which
/// `vkGetDeviceProcAddr` keeps hidden when only the layer enabled it).
pub struct Wanted {
    pub name: &'static CStr,
    pub functions: &'static [&'static CStr],
}

/// What the layer enables when the device has it: dma-buf import/export,
/// fd export, SYNC_FD semaphores (with the 1.0 extensions they need), and
/// memory budgets (for `DYNABUF_EVICT=budget`).
pub const WANTED: &[Wanted] = &[
    Wanted { name: c"VK_KHR_external_memory", functions: &[] },
    Wanted { name: c"VK_KHR_external_semaphore", functions: &[] },
    Wanted {
        name: c"VK_KHR_external_memory_fd",
        functions: &[c"vkGetMemoryFdKHR", c"vkGetMemoryFdPropertiesKHR"],
    },
    Wanted { name: c"VK_EXT_external_memory_dma_buf", functions: &[] },
    Wanted {
        name: c"VK_KHR_external_semaphore_fd",
        functions: &[c"vkGetSemaphoreFdKHR", c"vkImportSemaphoreFdKHR"],
    },
];

/// The extensions to add: wanted, offered by the device, not asked for.
pub fn to_add(available: &[&CStr], requested: &[&CStr]) -> Vec<&'static Wanted> {
    WANTED.iter().filter(|w| available.contains(&w.name) && !requested.contains(&w.name)).collect()
}

/// The functions to hide from the application after adding `added`.
pub fn hidden_functions(added: &[&'static Wanted]) -> Vec<&'static CStr> {
    added.iter().flat_map(|w| w.functions.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_only_what_is_offered_and_not_asked_for() {
        let available = [c"VK_KHR_external_memory_fd", c"VK_KHR_external_semaphore_fd", c"VK_KHR_swapchain"];
        let requested = [c"VK_KHR_external_memory_fd"];
        let added = to_add(&available, &requested);
        let names: Vec<_> = added.iter().map(|w| w.name).collect();
        assert_eq!(names, vec![c"VK_KHR_external_semaphore_fd"]);
        assert_eq!(hidden_functions(&added), vec![c"vkGetSemaphoreFdKHR", c"vkImportSemaphoreFdKHR"]);
    }
}
