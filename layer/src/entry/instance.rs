//! Trampolines: instance creation and destruction.

use std::sync::Arc;

use ash::vk;

use super::guard;
use crate::dispatch::{self, link, Instance};
use crate::{settings, LAYER_NAME};

pub(super) unsafe extern "system" fn create_instance(
    p_create_info: *const vk::InstanceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_instance: *mut vk::Instance,
) -> vk::Result {
    guard("vkCreateInstance", vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: the loader passes a valid create info (null is refused).
        let Some(info) = (unsafe { p_create_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // The application's settings (VK_EXT_layer_settings) before anything
        // else, so this call already follows them. The create info goes down
        // unchanged: the loader's terminator passes the driver only the
        // extensions it offers, and a layer below that reads its own
        // settings from the same structure sees the application's.
        // SAFETY: the application's create info chain, valid per usage.
        let app_settings = unsafe { crate::views::layer_settings::for_layer(info.p_next, LAYER_NAME) };
        let settings = settings::apply_application(&app_settings);
        // SAFETY: `info` is the loader's create info; its chain holds the
        // loader's link info, which this layer must advance.
        let Some(link) = (unsafe { link::take_instance_link(info.p_next) }) else {
            log_error!("vkCreateInstance: the loader's layer link info is missing or malformed");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: a null instance and a NUL-terminated name are valid
        // arguments for vkGetInstanceProcAddr on vkCreateInstance.
        let next = unsafe { (link.next_gipa)(vk::Instance::null(), c"vkCreateInstance".as_ptr()) };
        // SAFETY: the pointer returned for "vkCreateInstance" has that type.
        let Some(next_create) = (unsafe {
            std::mem::transmute::<vk::PFN_vkVoidFunction, Option<vk::PFN_vkCreateInstance>>(next)
        }) else {
            log_error!("vkCreateInstance: the next layer has no vkCreateInstance");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: the application's arguments, passed on unchanged.
        let result = unsafe { next_create(p_create_info, p_allocator, p_instance) };
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: on success the next layer wrote a valid instance.
        let handle = unsafe { *p_instance };
        // SAFETY: the application's create info, valid per usage.
        let (api_version, extensions) = unsafe { application_facts(info) };
        // SAFETY: `next_gipa` is the next layer's and `handle` its new instance.
        let state = Arc::new(unsafe { Instance::new(handle, link.next_gipa, api_version, extensions) });
        // SAFETY: `handle` is a valid dispatchable handle.
        let key = unsafe { dispatch::key_of(handle) };
        if let Err(state) = dispatch::instances().insert(key, state) {
            log_error!("vkCreateInstance: too many live instances ({})", dispatch::table::CAPACITY);
            state.destroy(None);
            return vk::Result::ERROR_OUT_OF_HOST_MEMORY;
        }
        log_info!(
            "{} {} loaded into instance {:#x}{}",
            LAYER_NAME.to_string_lossy(),
            env!("CARGO_PKG_VERSION"),
            vk::Handle::as_raw(handle),
            if settings.disabled { " (DYNABUF_DISABLE=1: hooking nothing)" } else { "" }
        );
        vk::Result::SUCCESS
    })
}

/// The application's API version (1.0 when it gave none) and the instance
/// extensions it enabled.
///
/// # Safety
/// `info` must be a valid `VkInstanceCreateInfo` (Vulkan valid usage).
unsafe fn application_facts(info: &vk::InstanceCreateInfo<'_>) -> (u32, Vec<std::ffi::CString>) {
    // SAFETY: null or a valid application info.
    let api_version = unsafe { info.p_application_info.as_ref() }
        .map(|a| a.api_version)
        .filter(|&v| v != 0)
        .unwrap_or(vk::API_VERSION_1_0);
    // SAFETY: the array holds `enabled_extension_count` valid C strings.
    let names = unsafe { super::slice(info.pp_enabled_extension_names, info.enabled_extension_count) };
    let extensions = names
        .iter()
        .filter(|p| !p.is_null())
        // SAFETY: each non-null entry is a NUL-terminated string.
        .map(|&p| unsafe { std::ffi::CStr::from_ptr(p) }.to_owned())
        .collect();
    (api_version, extensions)
}

pub(super) unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyInstance", (), || {
        // SAFETY: a valid (or null) instance handle, per Vulkan valid usage.
        let key = unsafe { dispatch::key_of(instance) };
        let Some(state) = dispatch::instances().remove(key) else {
            if instance != vk::Instance::null() {
                super::unknown_handle("vkDestroyInstance");
            }
            return;
        };
        // SAFETY: the application's allocator (or null), valid per usage.
        state.destroy(unsafe { p_allocator.as_ref() });
        log_debug!("instance {:#x} destroyed", vk::Handle::as_raw(instance));
    })
}
