//! Trampolines: device creation and destruction.
//!
//! At creation the layer enables the extensions it needs (dma-buf and fd
//! export, SYNC_FD semaphores) when the device has them and the
//! application did not ask for them, hides their functions from the
//! application, takes out `VK_EXT_external_memory_acquire_unmodified` where
//! it emulates it, and probes what the device and kernel can do. The
//! device's extension list gains that extension where the driver lacks it.

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use ash::vk;

use super::{guard, slice};
use crate::dispatch::hazard_reporter::HazardReporter;
use crate::dispatch::state::{DeviceState, QueueFamilies};
use crate::dispatch::{self, feature_chain, link, Device, Instance};
use crate::hooks::acquire_unmodified;
use crate::hooks::extensions::{self, Wanted};
use crate::hooks::probe;
use crate::{settings, LAYER_NAME};

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

        let settings = settings::get();
        // SAFETY: `info` is valid.
        let mut requested = unsafe { requested_extensions(info) };
        // SAFETY: the queue create infos the application passed.
        let queue_infos = unsafe { slice(info.p_queue_create_infos, info.queue_create_info_count) };
        let offered = instance.device_extensions(physical);
        let offered: Vec<&CStr> = offered.iter().map(|e| e.as_c_str()).collect();
        // The layer offers VK_EXT_external_memory_acquire_unmodified; the
        // driver must not be asked for it when it lacks it.
        let emulated = !settings.disabled && acquire_unmodified::emulates(&requested, &offered);
        if emulated {
            requested.retain(|n| *n != acquire_unmodified::NAME);
        }
        let app_names: Vec<*const c_char> = requested.iter().map(|n| n.as_ptr()).collect();
        let mut as_asked = *info;
        as_asked.enabled_extension_count = app_names.len() as u32;
        as_asked.pp_enabled_extension_names = app_names.as_ptr();
        let instance_extensions: Vec<&CStr> = instance.extensions.iter().map(|e| e.as_c_str()).collect();
        let ctx = extensions::Context {
            available: &offered,
            requested: &requested,
            instance_version: instance.api_version,
            instance_extensions: &instance_extensions,
            device_version: instance.effective_version(physical),
        };
        let mut added: Vec<&'static Wanted> =
            if settings.disabled { Vec::new() } else { extensions::to_add(&ctx) };
        let timeline = if settings.disabled {
            None
        } else {
            // SAFETY: `info` is valid and outlives the chain.
            unsafe { timeline_chain(instance, physical, info, &ctx, &mut added) }
        };
        let mut names: Vec<*const c_char> = requested.iter().map(|n| n.as_ptr()).collect();
        names.extend(added.iter().map(|w| w.name.as_ptr()));
        let mut with_ours = *info;
        with_ours.enabled_extension_count = names.len() as u32;
        with_ours.pp_enabled_extension_names = names.as_ptr();
        if let Some(t) = &timeline {
            with_ours.p_next = t.head();
        }

        // SAFETY: the application's arguments, with the extension list
        // extended by names, and the chain by structures, that live across
        // the call.
        let mut result = unsafe { next_create(physical, &with_ours, p_allocator, p_device) };
        let mut timeline_on = timeline.is_some();
        if result != vk::Result::SUCCESS && (!added.is_empty() || timeline_on) {
            log_warn!("vkCreateDevice with the layer's extensions and features failed ({result:?}); retrying as the application asked");
            added.clear();
            timeline_on = false;
            // SAFETY: `info` is alive; rewinding lets the chain be walked again.
            unsafe { link.rewind() };
            // SAFETY: the application's arguments, unchanged but for the
            // extension the layer emulates (`app_names` outlives the call).
            result = unsafe { next_create(physical, &as_asked, p_allocator, p_device) };
        }
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: on success the next layer wrote a valid device.
        let handle = unsafe { *p_device };
        let mut enabled = requested.clone();
        enabled.extend(added.iter().map(|w| w.name));
        let created = Created {
            handle,
            enabled: &enabled,
            added: &added,
            timeline: timeline_on,
            // SAFETY: `info` is valid.
            sparse_binding: unsafe { sparse_binding_enabled(info) },
            emulated,
            queue_infos,
            p_allocator,
        };
        register(instance, physical, &link, created, settings)
    })
}

/// Asks for the `timelineSemaphore` feature the sync engine needs, where
/// the device supports it and asking is valid (adding
/// `VK_KHR_timeline_semaphore` to `added` below Vulkan 1.2). `None`: the
/// device gets no timelines from the layer (implicit sync then stays off,
/// logged by the engine).
///
/// # Safety
/// `info` must be valid and outlive the returned chain.
unsafe fn timeline_chain(
    instance: &Instance,
    physical: vk::PhysicalDevice,
    info: &vk::DeviceCreateInfo<'_>,
    ctx: &extensions::Context<'_>,
    added: &mut Vec<&'static Wanted>,
) -> Option<feature_chain::TimelineChain> {
    if !instance.supports_timeline_semaphores(physical) {
        return None;
    }
    let has_extension = ctx.requested.contains(&extensions::TIMELINE.name);
    let add_extension = ctx.device_version < vk::API_VERSION_1_2 && !has_extension;
    if add_extension {
        let enabled: Vec<&CStr> = ctx.requested.iter().copied().chain(added.iter().map(|w| w.name)).collect();
        if !ctx.may_add(&extensions::TIMELINE, &enabled) {
            return None;
        }
    }
    // SAFETY: forwarded from this function's contract.
    let chain = unsafe { feature_chain::with_timeline_semaphores(info.p_next) };
    if chain.is_some() && add_extension {
        added.push(&extensions::TIMELINE);
    }
    chain
}

/// Whether the application enabled `sparseBinding` (in
/// `pEnabledFeatures` or a chained `VkPhysicalDeviceFeatures2`).
///
/// # Safety
/// `info` must be a valid `VkDeviceCreateInfo` (Vulkan valid usage).
unsafe fn sparse_binding_enabled(info: &vk::DeviceCreateInfo<'_>) -> bool {
    // SAFETY: null or a valid `VkPhysicalDeviceFeatures`, per valid usage.
    let plain = unsafe { info.p_enabled_features.as_ref() };
    // SAFETY: the application's valid chain.
    let chained = unsafe { crate::views::pnext::find::<vk::PhysicalDeviceFeatures2<'_>>(info.p_next) };
    plain.map(|f| f.sparse_binding) == Some(vk::TRUE)
        || chained.map(|f| f.features.sparse_binding) == Some(vk::TRUE)
}

/// What `vkCreateDevice` created, for [`register`].
struct Created<'a> {
    handle: vk::Device,
    enabled: &'a [&'a CStr],
    added: &'a [&'static Wanted],
    /// Whether `timelineSemaphore` is on (asked by the layer or the application).
    timeline: bool,
    /// Whether the application enabled `sparseBinding`.
    sparse_binding: bool,
    /// Whether the layer emulates `VK_EXT_external_memory_acquire_unmodified`.
    emulated: bool,
    queue_infos: &'a [vk::DeviceQueueCreateInfo<'a>],
    p_allocator: *const vk::AllocationCallbacks<'a>,
}

/// Builds, probes and publishes the state of a freshly created device.
fn register(
    instance: &Instance,
    physical: vk::PhysicalDevice,
    link: &link::DeviceLink,
    c: Created<'_>,
    // The settings `create_device` decided with (another thread's
    // vkCreateInstance may replace the process's meanwhile).
    settings: &'static settings::Settings,
) -> vk::Result {
    static ORDINAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let ordinal = ORDINAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    let (handle, p_allocator) = (c.handle, c.p_allocator);
    // A disabled layer counts nothing and writes no statistics.
    let mut state = DeviceState::new(
        format!("dev{ordinal} {}", instance.device_name(physical)),
        !settings.disabled && (settings.stats || settings.stats_file.is_some()),
    );
    state.stats_line = !settings.disabled && settings.stats;
    state.stats_file = if settings.disabled { None } else { settings.stats_file.clone() };
    state.stats_interval_ms = settings.stats_interval_ms;
    state.hidden = extensions::hidden_functions(c.added);
    if !settings.disabled {
        state.hazards =
            HazardReporter::new(state.name.clone(), settings.hazards, instance.messengers.clone())
                .map(Arc::new);
    }
    state.timeline = c.timeline;
    state.emulates_acquire_unmodified = c.emulated;
    state.queues = QueueFamilies::new(instance.queue_family_flags(physical), c.queue_infos);
    let props = instance.memory_properties(physical);
    state.memory_types = props.memory_types[..(props.memory_type_count as usize).min(vk::MAX_MEMORY_TYPES)]
        .iter()
        .map(|t| t.property_flags)
        .collect();
    // SAFETY: `next_gdpa` is the next layer's and `handle` its new device.
    let mut dev =
        unsafe { Device::new(handle, physical, link.next_gdpa, link.set_device_loader_data, state) };
    if !settings.disabled {
        // The probe needs a queue created without flags (a protected queue
        // is only reachable through vkGetDeviceQueue2).
        let probe_family = c
            .queue_infos
            .iter()
            .find(|q| q.flags.is_empty() && q.queue_count > 0)
            .map(|q| q.queue_family_index);
        let mut probed = probe::probe(instance, &dev, c.enabled, probe_family);
        let family_flags = instance.queue_family_flags(physical);
        let remap = crate::hooks::remap_probe::Context {
            sparse_binding_enabled: c.sparse_binding,
            queue_infos: c.queue_infos,
            family_flags: &family_flags,
            settings,
            dma_buf_import: &probed.caps.dma_buf_import,
        };
        probed.caps.remap = crate::hooks::remap_probe::probe(instance, &dev, &remap);
        let strategy = crate::sync::strategy::choose(&probed.caps, settings, c.timeline);
        log_info!("{}: {}; sync strategy: {strategy}", dev.state.name, probed.caps.summary());
        if !c.added.is_empty() {
            let names: Vec<_> = c.added.iter().map(|w| w.name.to_string_lossy()).collect();
            log_debug!(
                "{}: enabled for the layer (hidden from the application): {}",
                dev.state.name,
                names.join(", ")
            );
        }
        let engine = crate::sync::SyncEngine::new(&dev, strategy, settings);
        dev.state.set_sync(engine.map(|e| Box::new(e) as Box<dyn crate::dispatch::state::Engine>));
        dev.state.scope_all = settings.sync_scope == settings::SyncScope::All;
        if c.enabled.contains(&c"VK_EXT_memory_budget") {
            dev.state.memory_budget = instance.memory_budget(physical);
        }
        dev.state.caps = probed.caps;
        dev.state.drm = probed.drm;
        dev.state.dynamic = crate::hooks::attach::dynamic_support(&dev, settings);
    }
    // SAFETY: `handle` is a valid dispatchable handle.
    let key = unsafe { dispatch::key_of(handle) };
    if let Err(dev) = dispatch::devices().insert(key, Arc::new(dev)) {
        log_error!("vkCreateDevice: too many live devices ({})", dispatch::table::CAPACITY);
        dev.state.shutdown_sync(&dev);
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

/// `vkEnumerateDeviceExtensionProperties`: the driver's list (and the
/// layers' below) plus `VK_EXT_external_memory_acquire_unmodified` where it
/// is absent; for `pLayerName` naming this layer, its own device
/// extensions; for another layer, the next layer's answer.
pub(super) unsafe extern "system" fn enumerate_device_extension_properties(
    physical: vk::PhysicalDevice,
    p_layer_name: *const c_char,
    p_count: *mut u32,
    p_properties: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard("vkEnumerateDeviceExtensionProperties", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: the application passes a valid physical device handle.
        let Some(instance) = (unsafe { dispatch::instance(physical) }) else {
            super::unknown_handle("vkEnumerateDeviceExtensionProperties");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: null or a NUL-terminated string (Vulkan valid usage).
        let layer = (!p_layer_name.is_null()).then(|| unsafe { CStr::from_ptr(p_layer_name) });
        let list = match layer.filter(|n| !n.is_empty()) {
            None => match instance.device_extension_properties(physical) {
                Ok(below) => acquire_unmodified::offered(below),
                Err(e) => return e,
            },
            Some(n) if n == LAYER_NAME => acquire_unmodified::layer_extensions(),
            Some(_) => {
                let Some(f) = instance.next_enumerate_device_extension_properties() else {
                    return vk::Result::ERROR_LAYER_NOT_PRESENT;
                };
                // SAFETY: the application's arguments, unchanged.
                return unsafe { f(physical, p_layer_name, p_count, p_properties) };
            }
        };
        // SAFETY: a valid count pointer (Vulkan valid usage; null is refused).
        let Some(count) = (unsafe { p_count.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if p_properties.is_null() {
            *count = list.len() as u32;
            return vk::Result::SUCCESS;
        }
        let (n, result) = acquire_unmodified::fill(*count, list.len());
        // SAFETY: the application's array holds `*count` >= `n` elements.
        unsafe { std::ptr::copy_nonoverlapping(list.as_ptr(), p_properties, n) };
        *count = n as u32;
        result
    })
}
