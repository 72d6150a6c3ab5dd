//! Trampolines: `VK_EXT_debug_utils` messengers and object names, which the
//! layer watches (and passes on) so its hazard reports reach the
//! application's messengers naming objects as the application named them.

use std::ffi::CStr;

use ash::vk;

use super::{device_or_return, guard};
use crate::dispatch;

pub(super) unsafe extern "system" fn create_debug_utils_messenger(
    instance: vk::Instance,
    p_create_info: *const vk::DebugUtilsMessengerCreateInfoEXT<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_messenger: *mut vk::DebugUtilsMessengerEXT,
) -> vk::Result {
    guard("vkCreateDebugUtilsMessengerEXT", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a valid instance handle (Vulkan valid usage).
        let Some(inst) = (unsafe { dispatch::instance(instance) }) else {
            super::unknown_handle("vkCreateDebugUtilsMessengerEXT");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let Some(next) = inst.fns.create_debug_utils_messenger else {
            return vk::Result::ERROR_EXTENSION_NOT_PRESENT;
        };
        // SAFETY: the application's arguments, passed on unchanged to the
        // next layer's function for this name.
        let result = unsafe { next(instance, p_create_info, p_allocator, p_messenger) };
        // SAFETY: valid pointers per Vulkan valid usage; on success the
        // next layer wrote the handle.
        let written = unsafe { (p_create_info.as_ref(), p_messenger.as_ref()) };
        if let (vk::Result::SUCCESS, (Some(info), Some(handle))) = (result, written) {
            inst.messengers.created(*handle, info);
        }
        result
    })
}

pub(super) unsafe extern "system" fn destroy_debug_utils_messenger(
    instance: vk::Instance,
    messenger: vk::DebugUtilsMessengerEXT,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyDebugUtilsMessengerEXT", (), || {
        // SAFETY: a valid instance handle (Vulkan valid usage).
        let Some(inst) = (unsafe { dispatch::instance(instance) }) else {
            super::unknown_handle("vkDestroyDebugUtilsMessengerEXT");
            return;
        };
        inst.messengers.destroyed(messenger);
        if let Some(next) = inst.fns.destroy_debug_utils_messenger {
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { next(instance, messenger, p_allocator) };
        }
    })
}

pub(super) unsafe extern "system" fn set_debug_utils_object_name(
    device: vk::Device,
    p_name_info: *const vk::DebugUtilsObjectNameInfoEXT<'_>,
) -> vk::Result {
    guard("vkSetDebugUtilsObjectNameEXT", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        let dev = device_or_return!(
            "vkSetDebugUtilsObjectNameEXT",
            device,
            vk::Result::ERROR_INITIALIZATION_FAILED
        );
        // SAFETY: a valid pointer (Vulkan valid usage).
        let Some(info) = (unsafe { p_name_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if let Some(reporter) = &dev.state.hazards {
            // SAFETY: a null or NUL-terminated name (Vulkan valid usage).
            let name = (!info.p_object_name.is_null()).then(|| unsafe { CStr::from_ptr(info.p_object_name) });
            reporter.names.set(info, name);
        }
        dev.set_debug_utils_object_name(info)
    })
}
