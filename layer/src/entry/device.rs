//! Trampolines: device creation and destruction.
//!
//! At creation the layer enables the extensions it needs (dma-buf and fd
//! export, SYNC_FD semaphores) when the device has them and the
//! application did not ask for them, hides their functions from the
//! application, and probes what the device and kernel can do.

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use ash::vk;

use super::{guard, slice};
use crate::config;
use crate::dispatch::{self, link, Device, Instance};
use crate::hooks::extensions::{self, Wanted};
use crate::hooks::probe;
use crate::hooks::state::DeviceState;

/// The application's extension names.
///
/// # Safety
/// `info` must be a valid `VkDeviceCreateInfo` (Vulkan valid usage).
unsafe fn requested_extensions<'a>(info: &'a vk::DeviceCreateInfo<'_>) -> Vec<&'a CStr> {
    // SAFETY: the array holds `enabled_extension_count` valid C strings.
    let names: &[*const c_char] =
        unsafe { slice(info.pp_enabled_extension_names, info.enabled_extension_count) };
    names
        .iter()
        .filter(|p| !p.is_null())
        // SAFETY: each non-null entry is a NUL-terminated string.
        .map(|&p| unsafe { CStr::from_ptr(p) })
        .collect()
}

pub(super) unsafe extern "system" fn create_device(
    physical: vk::PhysicalDevice,
    p_create_info: *const vk::DeviceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_device: *mut vk::Device,
) -> vk::Result {
    guard("vkCreateDevice", vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: the application passes a valid physical device handle.
        let Some(instance) = (unsafe { dispatch::instance(physical) }) else {
            log_error!("vkCreateDevice: physical device of an instance not created through this layer");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: the loader passes a valid create info (null is refused).
        let Some(info) = (unsafe { p_create_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: `info` is the loader's create info; its chain holds the
        // loader's link info, which this layer must advance.
        let Some(link) = (unsafe { link::take_device_link(info.p_next) }) else {
            log_error!("vkCreateDevice: the loader's layer link info is missing or malformed");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: a valid instance and a NUL-terminated name.
        let next = unsafe { (link.next_gipa)(instance.handle, c"vkCreateDevice".as_ptr()) };
        // SAFETY: the pointer returned for "vkCreateDevice" has that type.
        let Some(next_create) =
            (unsafe { std::mem::transmute::<vk::PFN_vkVoidFunction, Option<vk::PFN_vkCreateDevice>>(next) })
        else {
            log_error!("vkCreateDevice: the next layer has no vkCreateDevice");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };

        let settings = config::get();
        // SAFETY: `info` is valid.
        let requested = unsafe { requested_extensions(info) };
        let offered = instance.device_extensions(physical);
        let offered: Vec<&CStr> = offered.iter().map(|e| e.as_c_str()).collect();
        let mut added: Vec<&'static Wanted> =
            if settings.disabled { Vec::new() } else { extensions::to_add(&offered, &requested) };
        let mut names: Vec<*const c_char> = requested.iter().map(|n| n.as_ptr()).collect();
        names.extend(added.iter().map(|w| w.name.as_ptr()));
        let mut with_ours = *info;
        with_ours.enabled_extension_count = names.len() as u32;
        with_ours.pp_enabled_extension_names = names.as_ptr();

        // SAFETY: the application's arguments, with the extension list
        // extended by names that live across the call.
        let mut result = unsafe { next_create(physical, &with_ours, p_allocator, p_device) };
        if result != vk::Result::SUCCESS && !added.is_empty() {
            log_warn!("vkCreateDevice with the layer's extensions failed ({result:?}); retrying as the application asked");
            added.clear();
            // SAFETY: `info` is alive; rewinding lets the chain be walked again.
            unsafe { link.rewind() };
            // SAFETY: the application's arguments, unchanged.
            result = unsafe { next_create(physical, p_create_info, p_allocator, p_device) };
        }
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: on success the next layer wrote a valid device.
        let handle = unsafe { *p_device };
        let mut enabled = requested.clone();
        enabled.extend(added.iter().map(|w| w.name));
        // SAFETY: the queue create infos the application passed.
        let queue_family = unsafe { slice(info.p_queue_create_infos, info.queue_create_info_count) }
            .first()
            .map(|q| q.queue_family_index);
        register(instance, physical, handle, &link, &enabled, &added, queue_family, p_allocator)
    })
}

/// Builds, probes and publishes the state of a freshly created device.
#[allow(clippy::too_many_arguments)]
fn register(
    instance: &Instance,
    physical: vk::PhysicalDevice,
    handle: vk::Device,
    link: &link::DeviceLink,
    enabled: &[&CStr],
    added: &[&'static Wanted],
    queue_family: Option<u32>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) -> vk::Result {
    static ORDINAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let ordinal = ORDINAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let settings = config::get();
    let mut state =
        DeviceState::new(format!("dev{ordinal} {}", instance.device_name(physical)), settings.stats);
    state.hidden = extensions::hidden_functions(added);
    // SAFETY: `next_gdpa` is the next layer's and `handle` its new device.
    let mut dev =
        unsafe { Device::new(handle, physical, link.next_gdpa, link.set_device_loader_data, state) };
    if !settings.disabled {
        let probed = probe::probe(instance, &dev, enabled, queue_family);
        log_info!("{}: {}", dev.state.name, probed.caps.summary());
        if !added.is_empty() {
            let names: Vec<_> = added.iter().map(|w| w.name.to_string_lossy()).collect();
            log_debug!(
                "{}: enabled for the layer (hidden from the application): {}",
                dev.state.name,
                names.join(", ")
            );
        }
        dev.state.sync = crate::sync::SyncEngine::new(&dev, &probed.caps, settings);
        dev.state.scope_all = settings.sync_scope == config::SyncScope::All;
        if enabled.contains(&c"VK_EXT_memory_budget") {
            dev.state.memory_budget = instance.memory_budget(physical);
        }
        dev.state.caps = probed.caps;
        dev.state.drm = probed.drm;
    }
    // SAFETY: `handle` is a valid dispatchable handle.
    let key = unsafe { dispatch::key_of(handle) };
    if let Err(dev) = dispatch::devices().insert(key, Arc::new(dev)) {
        log_error!("vkCreateDevice: too many live devices ({})", dispatch::table::CAPACITY);
        // SAFETY: the application's allocator (or null), valid per usage.
        dev.destroy_device(unsafe { p_allocator.as_ref() });
        return vk::Result::ERROR_OUT_OF_HOST_MEMORY;
    }
    if let Some(dev) = dispatch::devices().get(key) {
        crate::hooks::device::created(dev);
    }
    vk::Result::SUCCESS
}

pub(super) unsafe extern "system" fn destroy_device(
    device: vk::Device,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyDevice", (), || {
        // SAFETY: a valid (or null) device handle, per Vulkan valid usage.
        let key = unsafe { dispatch::key_of(device) };
        let Some(dev) = dispatch::devices().remove(key) else {
            if device != vk::Device::null() {
                super::unknown_handle("vkDestroyDevice");
            }
            return;
        };
        crate::hooks::device::destroying(&dev);
        // SAFETY: the application's allocator (or null), valid per usage.
        dev.destroy_device(unsafe { p_allocator.as_ref() });
    })
}
