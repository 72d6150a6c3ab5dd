//! The layer's ABI: the three exported symbols the loader looks up, the
//! name→hook table behind `vkGetInstanceProcAddr`/`vkGetDeviceProcAddr`,
//! and the `extern "system"` trampolines (one file per area) that turn raw
//! Vulkan arguments into references and slices, find the object's state and
//! call the safe hooks under [`guard`].
//!
//! A function the layer does not hook resolves straight to the next layer's
//! pointer, so it costs nothing. A hooked device function is handed out only
//! when the next layer has it too, so the application sees exactly the
//! functions its driver offers.

mod command;
mod debug_utils;
mod device;
mod instance;
mod memory;
mod queue;
mod resource;
mod usage;
mod usage_objects;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ash::vk;

use crate::dispatch::loader_abi::{
    NegotiateLayerInterface, LAYER_INTERFACE_VERSION, LAYER_NEGOTIATE_INTERFACE_STRUCT,
};
use crate::{dispatch, settings};

/// Runs a hook body; a panic becomes a log line and `on_panic`, never an
/// unwind into the application.
#[inline(always)]
pub(crate) fn guard<R: std::fmt::Debug>(call: &'static str, on_panic: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log_error!("internal error in {call}: {what}; returning {on_panic:?} to the application");
            on_panic
        }
    }
}

/// Logs a call on a handle the layer has no state for (created before the
/// layer was loaded, or already destroyed).
#[cold]
pub(crate) fn unknown_handle(call: &str) {
    log_error!("{call}: handle not created through this layer; ignoring the call");
}

/// Finds the device state for a dispatchable handle, or logs and returns
/// `$ret` from the enclosing function.
macro_rules! device_or_return {
    ($call:literal, $handle:expr) => {
        $crate::entry::device_or_return!($call, $handle, ())
    };
    ($call:literal, $handle:expr, $ret:expr) => {
        // SAFETY: the application must pass a valid dispatchable handle
        // (Vulkan valid usage), which is all `dispatch::device` needs.
        match unsafe { $crate::dispatch::device($handle) } {
            Some(d) => d,
            None => {
                $crate::entry::unknown_handle($call);
                #[allow(clippy::unused_unit)]
                return $ret;
            }
        }
    };
}
pub(crate) use device_or_return;

pub(crate) use crate::views::slice;

/// Which names the layer answers for, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Chain plumbing on the instance: always the layer's, from
    /// `vkGetInstanceProcAddr` only.
    Instance,
    /// Chain plumbing on a device: always the layer's.
    DeviceChain,
    /// A device hook: the layer's unless `DYNABUF_DISABLE=1`, and only when
    /// the next layer has the function.
    Device,
    /// An instance hook of an extension (or one offering an extension,
    /// `vkEnumerateDeviceExtensionProperties`): as `Device`, from
    /// `vkGetInstanceProcAddr` only.
    InstanceExtension,
    /// A device hook that only watches for hazard reports: as `Device`, and
    /// only when `DYNABUF_HAZARDS` is not `off`.
    Watch,
}

impl Kind {
    /// Whether the layer answers for a hook of this kind, given the
    /// settings, when the next layer has the function.
    fn hooked(self) -> bool {
        let s = settings::get();
        match self {
            Kind::Instance | Kind::DeviceChain => true,
            Kind::Device | Kind::InstanceExtension => !s.disabled,
            Kind::Watch => !s.disabled && s.hazards != settings::HazardMode::Off,
        }
    }
}

struct Hook {
    name: &'static CStr,
    kind: Kind,
    ptr: unsafe extern "system" fn(),
}

macro_rules! hooks {
    ($( $name:literal => $kind:ident, $f:path as $pfn:ident; )*) => {
        &[$(
            Hook {
                name: $name,
                kind: Kind::$kind,
                // SAFETY: every Vulkan function pointer is returned through
                // `PFN_vkVoidFunction` and cast back by the caller to the type
                // its name gives, which is `$pfn`; `$f` has that type.
                ptr: unsafe { std::mem::transmute::<vk::$pfn, unsafe extern "system" fn()>($f) },
            },
        )*]
    };
}

static HOOKS: &[Hook] = hooks! {
    c"vkGetInstanceProcAddr" => Instance, get_instance_proc_addr as PFN_vkGetInstanceProcAddr;
    c"vkCreateInstance" => Instance, instance::create_instance as PFN_vkCreateInstance;
    c"vkDestroyInstance" => Instance, instance::destroy_instance as PFN_vkDestroyInstance;
    c"vkCreateDevice" => Instance, device::create_device as PFN_vkCreateDevice;
    c"vkGetDeviceProcAddr" => DeviceChain, get_device_proc_addr as PFN_vkGetDeviceProcAddr;
    c"vkDestroyDevice" => DeviceChain, device::destroy_device as PFN_vkDestroyDevice;
    c"vkGetDeviceQueue" => Device, queue::get_device_queue as PFN_vkGetDeviceQueue;
    c"vkGetDeviceQueue2" => Device, queue::get_device_queue2 as PFN_vkGetDeviceQueue2;
    c"vkQueueSubmit" => Device, queue::queue_submit as PFN_vkQueueSubmit;
    c"vkQueueSubmit2" => Device, queue::queue_submit2 as PFN_vkQueueSubmit2;
    c"vkQueueSubmit2KHR" => Device, queue::queue_submit2 as PFN_vkQueueSubmit2;
    c"vkAllocateMemory" => Device, memory::allocate_memory as PFN_vkAllocateMemory;
    c"vkFreeMemory" => Device, memory::free_memory as PFN_vkFreeMemory;
    c"vkGetMemoryFdKHR" => Device, memory::get_memory_fd as PFN_vkGetMemoryFdKHR;
    c"vkMapMemory" => Device, memory::map_memory as PFN_vkMapMemory;
    c"vkUnmapMemory" => Device, memory::unmap_memory as PFN_vkUnmapMemory;
    c"vkMapMemory2KHR" => Device, memory::map_memory2 as PFN_vkMapMemory2KHR;
    c"vkUnmapMemory2KHR" => Device, memory::unmap_memory2 as PFN_vkUnmapMemory2KHR;
    c"vkMapMemory2" => Device, memory::map_memory2 as PFN_vkMapMemory2KHR;
    c"vkUnmapMemory2" => Device, memory::unmap_memory2 as PFN_vkUnmapMemory2KHR;
    c"vkFlushMappedMemoryRanges" => Device, memory::flush_mapped_memory_ranges as PFN_vkFlushMappedMemoryRanges;
    c"vkInvalidateMappedMemoryRanges" => Device, memory::invalidate_mapped_memory_ranges as PFN_vkInvalidateMappedMemoryRanges;
    c"vkCmdExecuteCommands" => Device, command::cmd_execute_commands as PFN_vkCmdExecuteCommands;
    c"vkBindBufferMemory" => Device, resource::bind_buffer_memory as PFN_vkBindBufferMemory;
    c"vkBindImageMemory" => Device, resource::bind_image_memory as PFN_vkBindImageMemory;
    c"vkBindBufferMemory2" => Device, resource::bind_buffer_memory2 as PFN_vkBindBufferMemory2;
    c"vkBindBufferMemory2KHR" => Device, resource::bind_buffer_memory2 as PFN_vkBindBufferMemory2;
    c"vkBindImageMemory2" => Device, resource::bind_image_memory2 as PFN_vkBindImageMemory2;
    c"vkBindImageMemory2KHR" => Device, resource::bind_image_memory2 as PFN_vkBindImageMemory2;
    c"vkDestroyBuffer" => Device, resource::destroy_buffer as PFN_vkDestroyBuffer;
    c"vkCreateImage" => Device, resource::create_image as PFN_vkCreateImage;
    c"vkDestroyImage" => Device, resource::destroy_image as PFN_vkDestroyImage;
    c"vkAllocateCommandBuffers" => Device, command::allocate_command_buffers as PFN_vkAllocateCommandBuffers;
    c"vkFreeCommandBuffers" => Device, command::free_command_buffers as PFN_vkFreeCommandBuffers;
    c"vkBeginCommandBuffer" => Device, command::begin_command_buffer as PFN_vkBeginCommandBuffer;
    c"vkResetCommandBuffer" => Device, command::reset_command_buffer as PFN_vkResetCommandBuffer;
    c"vkResetCommandPool" => Device, command::reset_command_pool as PFN_vkResetCommandPool;
    c"vkDestroyCommandPool" => Device, command::destroy_command_pool as PFN_vkDestroyCommandPool;
    c"vkCmdPipelineBarrier" => Device, command::cmd_pipeline_barrier as PFN_vkCmdPipelineBarrier;
    c"vkCmdPipelineBarrier2" => Device, command::cmd_pipeline_barrier2 as PFN_vkCmdPipelineBarrier2;
    c"vkCmdPipelineBarrier2KHR" => Device, command::cmd_pipeline_barrier2 as PFN_vkCmdPipelineBarrier2;
    c"vkEnumerateDeviceExtensionProperties" => InstanceExtension, device::enumerate_device_extension_properties as PFN_vkEnumerateDeviceExtensionProperties;
    c"vkCreateDebugUtilsMessengerEXT" => InstanceExtension, debug_utils::create_debug_utils_messenger as PFN_vkCreateDebugUtilsMessengerEXT;
    c"vkDestroyDebugUtilsMessengerEXT" => InstanceExtension, debug_utils::destroy_debug_utils_messenger as PFN_vkDestroyDebugUtilsMessengerEXT;
    c"vkSetDebugUtilsObjectNameEXT" => Watch, debug_utils::set_debug_utils_object_name as PFN_vkSetDebugUtilsObjectNameEXT;
    c"vkCmdCopyBuffer" => Watch, usage::cmd_copy_buffer as PFN_vkCmdCopyBuffer;
    c"vkCmdCopyBuffer2" => Watch, usage::cmd_copy_buffer2 as PFN_vkCmdCopyBuffer2;
    c"vkCmdCopyBuffer2KHR" => Watch, usage::cmd_copy_buffer2 as PFN_vkCmdCopyBuffer2;
    c"vkCmdCopyImage" => Watch, usage::cmd_copy_image as PFN_vkCmdCopyImage;
    c"vkCmdCopyImage2" => Watch, usage::cmd_copy_image2 as PFN_vkCmdCopyImage2;
    c"vkCmdCopyImage2KHR" => Watch, usage::cmd_copy_image2 as PFN_vkCmdCopyImage2;
    c"vkCmdCopyBufferToImage" => Watch, usage::cmd_copy_buffer_to_image as PFN_vkCmdCopyBufferToImage;
    c"vkCmdCopyBufferToImage2" => Watch, usage::cmd_copy_buffer_to_image2 as PFN_vkCmdCopyBufferToImage2;
    c"vkCmdCopyBufferToImage2KHR" => Watch, usage::cmd_copy_buffer_to_image2 as PFN_vkCmdCopyBufferToImage2;
    c"vkCmdCopyImageToBuffer" => Watch, usage::cmd_copy_image_to_buffer as PFN_vkCmdCopyImageToBuffer;
    c"vkCmdCopyImageToBuffer2" => Watch, usage::cmd_copy_image_to_buffer2 as PFN_vkCmdCopyImageToBuffer2;
    c"vkCmdCopyImageToBuffer2KHR" => Watch, usage::cmd_copy_image_to_buffer2 as PFN_vkCmdCopyImageToBuffer2;
    c"vkCmdBlitImage" => Watch, usage::cmd_blit_image as PFN_vkCmdBlitImage;
    c"vkCmdBlitImage2" => Watch, usage::cmd_blit_image2 as PFN_vkCmdBlitImage2;
    c"vkCmdBlitImage2KHR" => Watch, usage::cmd_blit_image2 as PFN_vkCmdBlitImage2;
    c"vkCmdResolveImage" => Watch, usage::cmd_resolve_image as PFN_vkCmdResolveImage;
    c"vkCmdResolveImage2" => Watch, usage::cmd_resolve_image2 as PFN_vkCmdResolveImage2;
    c"vkCmdResolveImage2KHR" => Watch, usage::cmd_resolve_image2 as PFN_vkCmdResolveImage2;
    c"vkCmdFillBuffer" => Watch, usage::cmd_fill_buffer as PFN_vkCmdFillBuffer;
    c"vkCmdUpdateBuffer" => Watch, usage::cmd_update_buffer as PFN_vkCmdUpdateBuffer;
    c"vkCmdClearColorImage" => Watch, usage::cmd_clear_color_image as PFN_vkCmdClearColorImage;
    c"vkCmdClearDepthStencilImage" => Watch, usage::cmd_clear_depth_stencil_image as PFN_vkCmdClearDepthStencilImage;
    c"vkCmdBeginRendering" => Watch, usage::cmd_begin_rendering as PFN_vkCmdBeginRendering;
    c"vkCmdBeginRenderingKHR" => Watch, usage::cmd_begin_rendering as PFN_vkCmdBeginRendering;
    c"vkCmdBeginRenderPass" => Watch, usage::cmd_begin_render_pass as PFN_vkCmdBeginRenderPass;
    c"vkCmdBeginRenderPass2" => Watch, usage::cmd_begin_render_pass2 as PFN_vkCmdBeginRenderPass2;
    c"vkCmdBeginRenderPass2KHR" => Watch, usage::cmd_begin_render_pass2 as PFN_vkCmdBeginRenderPass2;
    c"vkCmdBindDescriptorSets" => Watch, usage::cmd_bind_descriptor_sets as PFN_vkCmdBindDescriptorSets;
    c"vkCreateImageView" => Watch, usage_objects::create_image_view as PFN_vkCreateImageView;
    c"vkCreateBufferView" => Watch, usage_objects::create_buffer_view as PFN_vkCreateBufferView;
    c"vkCreateFramebuffer" => Watch, usage_objects::create_framebuffer as PFN_vkCreateFramebuffer;
    c"vkAllocateDescriptorSets" => Watch, usage_objects::allocate_descriptor_sets as PFN_vkAllocateDescriptorSets;
    c"vkUpdateDescriptorSets" => Watch, usage_objects::update_descriptor_sets as PFN_vkUpdateDescriptorSets;
    c"vkSignalSemaphore" => Watch, usage_objects::signal_semaphore as PFN_vkSignalSemaphore;
    c"vkSignalSemaphoreKHR" => Watch, usage_objects::signal_semaphore as PFN_vkSignalSemaphore;
    c"vkCreateSemaphore" => Watch, usage_objects::create_semaphore as PFN_vkCreateSemaphore;
    c"vkUpdateDescriptorSetWithTemplate" => Watch, usage_objects::update_descriptor_set_with_template as PFN_vkUpdateDescriptorSetWithTemplate;
    c"vkUpdateDescriptorSetWithTemplateKHR" => Watch, usage_objects::update_descriptor_set_with_template as PFN_vkUpdateDescriptorSetWithTemplate;
};

fn find_hook(name: &CStr) -> Option<&'static Hook> {
    HOOKS.iter().find(|h| h.name == name)
}

/// The names of every function the layer hooks (for tests and docs).
pub fn hooked_names() -> impl Iterator<Item = &'static CStr> {
    HOOKS.iter().map(|h| h.name)
}

/// # Safety
/// Called by the loader with a valid `VkNegotiateLayerInterface`.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    p_version_struct: *mut NegotiateLayerInterface,
) -> vk::Result {
    guard("vkNegotiateLoaderLayerInterfaceVersion", vk::Result::ERROR_INITIALIZATION_FAILED, || {
        settings::get();
        // SAFETY: the loader passes a valid, writable struct (or null, which
        // `as_mut` turns into `None`).
        let Some(v) = (unsafe { p_version_struct.as_mut() }) else {
            log_error!("vkNegotiateLoaderLayerInterfaceVersion: null interface struct");
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if v.s_type != LAYER_NEGOTIATE_INTERFACE_STRUCT
            || v.loader_layer_interface_version < LAYER_INTERFACE_VERSION
        {
            log_error!(
                "loader offers layer interface version {} (sType {}); dynabuf needs version {LAYER_INTERFACE_VERSION}",
                v.loader_layer_interface_version,
                v.s_type
            );
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        v.loader_layer_interface_version = LAYER_INTERFACE_VERSION;
        v.pfn_get_instance_proc_addr = Some(get_instance_proc_addr);
        v.pfn_get_device_proc_addr = Some(get_device_proc_addr);
        v.pfn_get_physical_device_proc_addr = None;
        vk::Result::SUCCESS
    })
}

/// The layer's `vkGetInstanceProcAddr`.
///
/// # Safety
/// Vulkan's contract for `vkGetInstanceProcAddr`.
#[no_mangle]
pub unsafe extern "system" fn vkGetInstanceProcAddr(
    instance: vk::Instance,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { get_instance_proc_addr(instance, p_name) }
}

/// The layer's `vkGetDeviceProcAddr`.
///
/// # Safety
/// Vulkan's contract for `vkGetDeviceProcAddr`.
#[no_mangle]
pub unsafe extern "system" fn vkGetDeviceProcAddr(
    device: vk::Device,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { get_device_proc_addr(device, p_name) }
}

unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard("vkGetInstanceProcAddr", None, || {
        if p_name.is_null() {
            return None;
        }
        // SAFETY: a non-null name is a NUL-terminated string (Vulkan valid usage).
        let name = unsafe { CStr::from_ptr(p_name) };
        let hook = find_hook(name);
        if let Some(h) = hook.filter(|h| matches!(h.kind, Kind::Instance | Kind::DeviceChain)) {
            return Some(h.ptr);
        }
        // SAFETY: a non-null instance is a valid one (Vulkan valid usage).
        let inst = unsafe { dispatch::instance(instance) }?;
        let next = inst.next_proc_addr(name);
        match hook {
            Some(h) if h.kind.hooked() => next.map(|_| h.ptr),
            _ => next,
        }
    })
}

unsafe extern "system" fn get_device_proc_addr(
    device: vk::Device,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard("vkGetDeviceProcAddr", None, || {
        if p_name.is_null() {
            return None;
        }
        // SAFETY: a non-null name is a NUL-terminated string (Vulkan valid usage).
        let name = unsafe { CStr::from_ptr(p_name) };
        // SAFETY: a non-null device is a valid one (Vulkan valid usage).
        let dev = unsafe { dispatch::device(device) }?;
        if dev.state.hides(name) {
            return None;
        }
        let next = dev.next_proc_addr(name);
        match find_hook(name) {
            Some(h) if h.kind == Kind::DeviceChain => Some(h.ptr),
            Some(h) if h.kind == Kind::Device && h.kind.hooked() => next.map(|_| h.ptr),
            // Watching follows what the device decided at its creation.
            Some(h) if h.kind == Kind::Watch && dev.state.hazards.is_some() => next.map(|_| h.ptr),
            _ => next,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_are_unique_and_well_formed() {
        let names: Vec<_> = hooked_names().collect();
        for (i, n) in names.iter().enumerate() {
            assert!(n.to_str().unwrap().starts_with("vk"), "{n:?}");
            assert!(!names[..i].contains(n), "duplicate {n:?}");
        }
    }

    #[test]
    fn a_panicking_hook_returns_the_fallback_instead_of_unwinding() {
        let r = guard("vkTest", vk::Result::ERROR_UNKNOWN, || -> vk::Result { panic!("boom") });
        assert_eq!(r, vk::Result::ERROR_UNKNOWN);
        assert_eq!(guard("vkTest", vk::Result::ERROR_UNKNOWN, || vk::Result::SUCCESS), vk::Result::SUCCESS);
    }

    #[test]
    fn chain_plumbing_is_always_hooked() {
        for n in [c"vkCreateInstance", c"vkCreateDevice", c"vkDestroyDevice", c"vkGetDeviceProcAddr"] {
            assert_ne!(find_hook(n).unwrap().kind, Kind::Device);
        }
        assert!(find_hook(c"vkCmdDispatch").is_none());
    }
}
