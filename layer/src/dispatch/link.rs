//! Finding the next layer in the chain at instance and device creation.

use std::ffi::c_void;

use ash::vk;

use super::loader_abi::{
    LayerCreateInfo, LayerDeviceLink, LayerFunction, LayerInstanceLink, PfnSetDeviceLoaderData,
    LOADER_DEVICE_CREATE_INFO, LOADER_INSTANCE_CREATE_INFO,
};
use crate::pnext;

/// The next layer's entry points for an instance being created.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLink {
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
}

/// The next layer's entry points for a device being created.
#[derive(Debug, Clone, Copy)]
pub struct DeviceLink {
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    pub set_device_loader_data: Option<PfnSetDeviceLoaderData>,
}

/// Finds the loader's create info with `s_type` and `function`.
///
/// # Safety
/// `p_next` must be a valid pNext chain (see [`pnext::nodes`]).
unsafe fn find_create_info(
    p_next: *const c_void,
    s_type: vk::StructureType,
    function: LayerFunction,
) -> Option<*mut LayerCreateInfo> {
    // SAFETY: forwarded from this function's contract.
    let mut nodes = unsafe { pnext::nodes(p_next) };
    nodes
        .find(|&n| {
            // SAFETY: `n` is a live chain node; a node whose sType is one of
            // the loader's create-info types is a `LayerCreateInfo`.
            unsafe { (*n).s_type == s_type && (*n.cast::<LayerCreateInfo>()).function == function }
        })
        .map(|n| n.cast::<LayerCreateInfo>().cast_mut())
}

/// Takes this layer's link out of an instance create info's chain and
/// advances the chain for the next layer, as every layer must before calling
/// down. `None` when the loader's link info is missing or malformed.
///
/// # Safety
/// `p_next` must be the `pNext` of a valid `VkInstanceCreateInfo` handed to
/// this layer by the loader; the loader owns the link nodes and expects each
/// layer to advance `pLayerInfo` in place.
pub unsafe fn take_instance_link(p_next: *const c_void) -> Option<InstanceLink> {
    // SAFETY: forwarded from this function's contract.
    let info = unsafe {
        find_create_info(
            p_next,
            LOADER_INSTANCE_CREATE_INFO,
            LayerFunction::LINK_INFO,
        )
    }?;
    // SAFETY: `info` is the loader's `VkLayerInstanceCreateInfo` with
    // function LINK_INFO, so `u[0]` is its `pLayerInfo` (null or a link).
    let link = unsafe { (*info).u[0].cast::<LayerInstanceLink>().as_ref() }?;
    let next_gipa = link.pfn_next_get_instance_proc_addr?;
    // SAFETY: as above; advancing `pLayerInfo` is what the loader expects of
    // each layer (vk_layer.h, "Layer interface").
    unsafe { (*info).u[0] = link.p_next.cast() };
    Some(InstanceLink { next_gipa })
}

/// As [`take_instance_link`], for `VkDeviceCreateInfo`; also picks up the
/// loader's `vkSetDeviceLoaderData`, needed to dispatch objects the layer
/// creates itself.
///
/// # Safety
/// As for [`take_instance_link`], with a `VkDeviceCreateInfo`.
pub unsafe fn take_device_link(p_next: *const c_void) -> Option<DeviceLink> {
    // SAFETY: forwarded from this function's contract.
    let info =
        unsafe { find_create_info(p_next, LOADER_DEVICE_CREATE_INFO, LayerFunction::LINK_INFO) }?;
    // SAFETY: `info` is the loader's `VkLayerDeviceCreateInfo` with function
    // LINK_INFO, so `u[0]` is its `pLayerInfo` (null or a link).
    let link = unsafe { (*info).u[0].cast::<LayerDeviceLink>().as_ref() }?;
    let next_gipa = link.pfn_next_get_instance_proc_addr?;
    let next_gdpa = link.pfn_next_get_device_proc_addr?;
    // SAFETY: as in `take_instance_link`.
    unsafe { (*info).u[0] = link.p_next.cast() };
    // SAFETY: forwarded from this function's contract.
    let loader_data = unsafe {
        find_create_info(
            p_next,
            LOADER_DEVICE_CREATE_INFO,
            LayerFunction::LOADER_DATA_CALLBACK,
        )
    };
    let set_device_loader_data = loader_data.and_then(|info| {
        // SAFETY: with function LOADER_DATA_CALLBACK, `u[0]` is the loader's
        // `pfnSetDeviceLoaderData`, a function pointer or null.
        unsafe { std::mem::transmute::<*mut c_void, Option<PfnSetDeviceLoaderData>>((*info).u[0]) }
    });
    Some(DeviceLink {
        next_gipa,
        next_gdpa,
        set_device_loader_data,
    })
}
