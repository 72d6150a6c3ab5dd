//! `VK_EXT_external_memory_acquire_unmodified` for every driver.
//!
//! The extension adds no function, only a structure an application chains
//! to an acquire barrier to say that nobody changed the memory since the
//! device released it (the layer then skips a dynamic attachment's copy-in).
//! The layer reads the structure on every driver, so it offers the
//! extension on every device: where the driver lacks it, the layer lists it
//! in `vkEnumerateDeviceExtensionProperties`, takes it out of the enabled
//! list at `vkCreateDevice` (the device *emulates* it) and takes the
//! structure out of barrier chains before calling down
//! (`hooks::command`), so nothing below sees an extension it was not asked
//! for. Where the driver has it, everything passes through untouched.

use std::ffi::CStr;

use ash::vk;

pub const NAME: &CStr = ash::ext::external_memory_acquire_unmodified::NAME;
pub const SPEC_VERSION: u32 = ash::ext::external_memory_acquire_unmodified::SPEC_VERSION;

/// The extension's properties, as the layer offers them.
pub fn properties() -> vk::ExtensionProperties {
    let mut p = vk::ExtensionProperties { spec_version: SPEC_VERSION, ..Default::default() };
    for (dst, &src) in p.extension_name.iter_mut().zip(NAME.to_bytes()) {
        *dst = src as std::ffi::c_char;
    }
    p
}

/// The device extensions of the layer itself (`pLayerName` is the layer's
/// name; the manifests' `device_extensions` say the same).
pub fn layer_extensions() -> Vec<vk::ExtensionProperties> {
    vec![properties()]
}

/// What the application sees for `pLayerName` NULL: the list from below,
/// with the extension appended where it is absent.
pub fn offered(mut below: Vec<vk::ExtensionProperties>) -> Vec<vk::ExtensionProperties> {
    if !below.iter().any(|p| p.extension_name_as_c_str() == Ok(NAME)) {
        below.push(properties());
    }
    below
}

/// Whether the layer emulates the extension on a device: the application
/// enabled it and the driver does not offer it.
pub fn emulates(requested: &[&CStr], offered_below: &[&CStr]) -> bool {
    requested.contains(&NAME) && !offered_below.contains(&NAME)
}

/// The two-call idiom: how many of `len` elements fit in an array of
/// `capacity`, and the result to return (`VK_INCOMPLETE` when not all).
pub fn fill(capacity: u32, len: usize) -> (usize, vk::Result) {
    let n = (capacity as usize).min(len);
    (n, if n < len { vk::Result::INCOMPLETE } else { vk::Result::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &CStr) -> vk::ExtensionProperties {
        let mut p = vk::ExtensionProperties::default();
        for (dst, &src) in p.extension_name.iter_mut().zip(name.to_bytes()) {
            *dst = src as std::ffi::c_char;
        }
        p
    }

    #[test]
    fn appended_once_and_only_when_absent() {
        let below = vec![named(c"VK_KHR_swapchain")];
        let seen = offered(below);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].extension_name_as_c_str(), Ok(NAME));
        assert_eq!(seen[1].spec_version, 1);
        assert_eq!(offered(seen.clone()).len(), 2, "the driver's own entry is kept, nothing added");
        assert_eq!(layer_extensions()[0].extension_name_as_c_str(), Ok(NAME));
    }

    #[test]
    fn emulated_only_when_asked_for_and_missing_below() {
        assert!(emulates(&[NAME], &[c"VK_KHR_swapchain"]));
        assert!(!emulates(&[NAME], &[NAME]));
        assert!(!emulates(&[], &[]));
    }

    #[test]
    fn the_two_call_idiom() {
        assert_eq!(fill(0, 3), (0, vk::Result::INCOMPLETE));
        assert_eq!(fill(2, 3), (2, vk::Result::INCOMPLETE));
        assert_eq!(fill(3, 3), (3, vk::Result::SUCCESS));
        assert_eq!(fill(9, 3), (3, vk::Result::SUCCESS));
    }
}
