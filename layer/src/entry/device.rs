//! Trampolines: device creation and destruction.

use std::sync::Arc;

use ash::vk;

use super::guard;
use crate::config;
use crate::dispatch::{self, link, Device};
use crate::hooks::state::DeviceState;

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
        // SAFETY: the application's arguments, passed on unchanged.
        let result = unsafe { next_create(physical, p_create_info, p_allocator, p_device) };
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: on success the next layer wrote a valid device.
        let handle = unsafe { *p_device };
        static ORDINAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let ordinal = ORDINAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("dev{ordinal} {}", instance.device_name(physical));
        let state = DeviceState::new(name, config::get().stats);
        // SAFETY: `next_gdpa` is the next layer's and `handle` its new device.
        let dev = Arc::new(unsafe {
            Device::new(handle, physical, link.next_gdpa, link.set_device_loader_data, state)
        });
        // SAFETY: `handle` is a valid dispatchable handle.
        let key = unsafe { dispatch::key_of(handle) };
        if let Err(dev) = dispatch::devices().insert(key, dev) {
            log_error!("vkCreateDevice: too many live devices ({})", dispatch::table::CAPACITY);
            // SAFETY: the application's allocator (or null), valid per usage.
            dev.destroy_device(unsafe { p_allocator.as_ref() });
            return vk::Result::ERROR_OUT_OF_HOST_MEMORY;
        }
        if let Some(dev) = dispatch::devices().get(key) {
            crate::hooks::device::created(dev);
        }
        vk::Result::SUCCESS
    })
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
