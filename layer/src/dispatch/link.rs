//! Finding the next layer in the chain at instance and device creation.

use std::ffi::c_void;

use ash::vk;

use super::loader_abi::{
    LayerCreateInfo, LayerDeviceLink, LayerFunction, LayerInstanceLink, PfnSetDeviceLoaderData,
    LOADER_DEVICE_CREATE_INFO, LOADER_INSTANCE_CREATE_INFO,
};
use crate::views::pnext;

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
    /// The link node as this layer left it, to restore before calling down
    /// a second time (layers below advance it again on each call).
    info: *mut LayerCreateInfo,
    after_take: *mut c_void,
}

impl DeviceLink {
    /// Puts the chain back as it was right after [`take_device_link`], so
    /// `vkCreateDevice` can be called down again.
    ///
    /// # Safety
    /// The create info this link came from must still be alive.
    pub unsafe fn rewind(&self) {
        // SAFETY: `info` points into the caller's live create-info chain
        // (this function's contract).
        unsafe { (*self.info).u[0] = self.after_take };
    }
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
    let info = unsafe { find_create_info(p_next, LOADER_INSTANCE_CREATE_INFO, LayerFunction::LINK_INFO) }?;
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
    let info = unsafe { find_create_info(p_next, LOADER_DEVICE_CREATE_INFO, LayerFunction::LINK_INFO) }?;
    // SAFETY: `info` is the loader's `VkLayerDeviceCreateInfo` with function
    // LINK_INFO, so `u[0]` is its `pLayerInfo` (null or a link).
    let link = unsafe { (*info).u[0].cast::<LayerDeviceLink>().as_ref() }?;
    let next_gipa = link.pfn_next_get_instance_proc_addr?;
    let next_gdpa = link.pfn_next_get_device_proc_addr?;
    // SAFETY: as in `take_instance_link`.
    unsafe { (*info).u[0] = link.p_next.cast() };
    // SAFETY: forwarded from this function's contract.
    let loader_data =
        unsafe { find_create_info(p_next, LOADER_DEVICE_CREATE_INFO, LayerFunction::LOADER_DATA_CALLBACK) };
    let set_device_loader_data = loader_data.and_then(|info| {
        // SAFETY: with function LOADER_DATA_CALLBACK, `u[0]` is the loader's
        // `pfnSetDeviceLoaderData`, a function pointer or null.
        unsafe { std::mem::transmute::<*mut c_void, Option<PfnSetDeviceLoaderData>>((*info).u[0]) }
    });
    // SAFETY: as above.
    let after_take = unsafe { (*info).u[0] };
    Some(DeviceLink { next_gipa, next_gdpa, set_device_loader_data, info, after_take })
}

#[cfg(test)]
mod tests {
    use super::super::loader_abi::{LayerDeviceLink, LayerInstanceLink};
    use super::*;

    unsafe extern "system" fn fake_gipa(
        _: vk::Instance,
        _: *const std::ffi::c_char,
    ) -> vk::PFN_vkVoidFunction {
        None
    }
    unsafe extern "system" fn fake_gdpa(_: vk::Device, _: *const std::ffi::c_char) -> vk::PFN_vkVoidFunction {
        None
    }

    #[test]
    fn missing_link_info_is_refused() {
        // SAFETY: a null chain and a chain of one unrelated structure are valid.
        unsafe {
            assert!(take_instance_link(std::ptr::null()).is_none());
            let other = vk::ExportMemoryAllocateInfo::default();
            assert!(take_device_link((&other as *const vk::ExportMemoryAllocateInfo<'_>).cast()).is_none());
        }
    }

    #[test]
    fn link_info_with_no_next_layer_is_refused() {
        let info = LayerCreateInfo {
            s_type: LOADER_INSTANCE_CREATE_INFO,
            p_next: std::ptr::null(),
            function: LayerFunction::LINK_INFO,
            u: [std::ptr::null_mut(); 2],
        };
        // SAFETY: a valid one-node chain.
        assert!(unsafe { take_instance_link((&info as *const LayerCreateInfo).cast()) }.is_none());
    }

    #[test]
    fn taking_a_link_advances_the_chain() {
        let mut second = LayerInstanceLink {
            p_next: std::ptr::null_mut(),
            pfn_next_get_instance_proc_addr: Some(fake_gipa),
            pfn_next_get_physical_device_proc_addr: None,
        };
        let second_ptr: *mut LayerInstanceLink = &mut second;
        let mut first = LayerInstanceLink {
            p_next: second_ptr,
            pfn_next_get_instance_proc_addr: Some(fake_gipa),
            pfn_next_get_physical_device_proc_addr: None,
        };
        let info = LayerCreateInfo {
            s_type: LOADER_INSTANCE_CREATE_INFO,
            p_next: std::ptr::null(),
            function: LayerFunction::LINK_INFO,
            u: [(&mut first as *mut LayerInstanceLink).cast(), std::ptr::null_mut()],
        };
        let chain = (&info as *const LayerCreateInfo).cast();
        // SAFETY: a valid chain whose links outlive the calls.
        unsafe {
            assert!(take_instance_link(chain).is_some());
            assert_eq!(info.u[0], second_ptr.cast());
            assert!(take_instance_link(chain).is_some());
            assert!(take_instance_link(chain).is_none(), "the chain is used up");
        }
    }

    #[test]
    fn device_link_needs_both_proc_addrs() {
        let mut link = LayerDeviceLink {
            p_next: std::ptr::null_mut(),
            pfn_next_get_instance_proc_addr: Some(fake_gipa),
            pfn_next_get_device_proc_addr: None,
        };
        let link_ptr: *mut LayerDeviceLink = &mut link;
        let info = LayerCreateInfo {
            s_type: LOADER_DEVICE_CREATE_INFO,
            p_next: std::ptr::null(),
            function: LayerFunction::LINK_INFO,
            u: [link_ptr.cast(), std::ptr::null_mut()],
        };
        let chain = (&info as *const LayerCreateInfo).cast();
        // SAFETY: a valid chain whose link outlives the calls.
        unsafe {
            assert!(take_device_link(chain).is_none());
            (*link_ptr).pfn_next_get_device_proc_addr = Some(fake_gdpa);
            let l = take_device_link(chain).expect("complete link");
            assert!(l.set_device_loader_data.is_none());
        }
    }
}
