//! Turning on a device feature the layer needs (`timelineSemaphore`) in a
//! `VkDeviceCreateInfo` chain the application owns and the layer must not
//! write.
//!
//! Three cases: the application's chain already enables it (nothing to
//! do); it has no structure that could (the layer puts its own
//! `VkPhysicalDeviceTimelineSemaphoreFeatures` first); or it has one that
//! says `VK_FALSE` (`VkPhysicalDeviceVulkan12Features` or
//! `VkPhysicalDeviceTimelineSemaphoreFeatures`: the two may not both be
//! chained). In the last case the layer copies the chain's nodes up to and
//! including that structure, flips the bit in its copy and links the copies
//! to the rest of the application's chain. A node it cannot copy (a
//! structure type whose size it does not know) before that point makes it
//! give up: the device is created as asked, without timelines.

use std::ffi::c_void;

use ash::vk;

use super::loader_abi::{LayerCreateInfo, LOADER_DEVICE_CREATE_INFO};
use crate::views::pnext;

/// The size of a chain structure the layer knows how to copy.
fn known_size(s_type: vk::StructureType) -> Option<usize> {
    macro_rules! sizes {
        ($($t:ident),* $(,)?) => {
            $(
                if s_type == <vk::$t<'static> as vk::TaggedStructure>::STRUCTURE_TYPE {
                    return Some(std::mem::size_of::<vk::$t<'static>>());
                }
            )*
        };
    }
    if s_type == LOADER_DEVICE_CREATE_INFO {
        return Some(std::mem::size_of::<LayerCreateInfo>());
    }
    sizes!(
        PhysicalDeviceFeatures2,
        PhysicalDeviceVulkan11Features,
        PhysicalDeviceVulkan12Features,
        PhysicalDeviceVulkan13Features,
        PhysicalDeviceTimelineSemaphoreFeatures,
        PhysicalDeviceBufferDeviceAddressFeatures,
        PhysicalDeviceDescriptorIndexingFeatures,
        PhysicalDeviceDynamicRenderingFeatures,
        PhysicalDeviceSynchronization2Features,
        PhysicalDevice8BitStorageFeatures,
        PhysicalDevice16BitStorageFeatures,
        PhysicalDeviceShaderFloat16Int8Features,
        PhysicalDeviceScalarBlockLayoutFeatures,
        PhysicalDeviceVulkanMemoryModelFeatures,
        PhysicalDeviceHostQueryResetFeatures,
        PhysicalDeviceImagelessFramebufferFeatures,
        PhysicalDeviceUniformBufferStandardLayoutFeatures,
        PhysicalDeviceSeparateDepthStencilLayoutsFeatures,
        PhysicalDeviceSamplerYcbcrConversionFeatures,
        PhysicalDeviceMultiviewFeatures,
        PhysicalDeviceShaderDrawParametersFeatures,
        PhysicalDeviceProtectedMemoryFeatures,
        PhysicalDeviceVariablePointersFeatures,
        PhysicalDeviceMaintenance4Features,
        PhysicalDeviceExtendedDynamicStateFeaturesEXT,
        PhysicalDeviceRobustness2FeaturesEXT,
        PhysicalDeviceImageRobustnessFeatures,
        PhysicalDeviceShaderAtomicInt64Features,
        PhysicalDeviceSubgroupSizeControlFeatures,
        PhysicalDeviceInlineUniformBlockFeatures,
        PhysicalDevicePipelineCreationCacheControlFeatures,
        PhysicalDeviceZeroInitializeWorkgroupMemoryFeatures,
        PhysicalDeviceShaderIntegerDotProductFeatures,
        PhysicalDeviceShaderTerminateInvocationFeatures,
        PhysicalDeviceShaderDemoteToHelperInvocationFeatures,
        PhysicalDeviceTextureCompressionASTCHDRFeatures,
        PhysicalDevicePrivateDataFeatures,
        DeviceGroupDeviceCreateInfo,
        DevicePrivateDataCreateInfo,
        DeviceMemoryOverallocationCreateInfoAMD,
    );
    None
}

const VULKAN_12: vk::StructureType = vk::StructureType::PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
const TIMELINE: vk::StructureType = vk::StructureType::PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES;

/// A device create-info chain with `timelineSemaphore` on. Keeps the
/// layer's copies alive; [`Self::head`] is the `pNext` to pass down.
#[derive(Debug)]
pub struct TimelineChain {
    head: *const c_void,
    /// The layer's own structure, when it was put first.
    _ours: Option<Box<vk::PhysicalDeviceTimelineSemaphoreFeatures<'static>>>,
    /// Copies of the application's nodes (8-byte aligned storage).
    _copies: Vec<Box<[u64]>>,
}

impl TimelineChain {
    pub fn head(&self) -> *const c_void {
        self.head
    }
}

/// Where `timelineSemaphore` is switched, in a feature structure of type
/// `s_type`.
///
/// # Safety
/// `node` must point to a structure of type `s_type`, one of the two above.
unsafe fn timeline_field(node: *mut c_void, s_type: vk::StructureType) -> *mut vk::Bool32 {
    if s_type == VULKAN_12 {
        // SAFETY: the node is a `VkPhysicalDeviceVulkan12Features`.
        unsafe {
            std::ptr::addr_of_mut!(
                (*node.cast::<vk::PhysicalDeviceVulkan12Features<'static>>()).timeline_semaphore
            )
        }
    } else {
        // SAFETY: the node is a `VkPhysicalDeviceTimelineSemaphoreFeatures`.
        unsafe {
            std::ptr::addr_of_mut!(
                (*node.cast::<vk::PhysicalDeviceTimelineSemaphoreFeatures<'static>>()).timeline_semaphore
            )
        }
    }
}

/// A chain equal to `p_next` with `timelineSemaphore` enabled, or `None`
/// when the layer cannot make one (see the module doc).
///
/// # Safety
/// `p_next` must be the `pNext` of a valid `VkDeviceCreateInfo`, alive and
/// unchanged while the returned chain is used.
pub unsafe fn with_timeline_semaphores(p_next: *const c_void) -> Option<TimelineChain> {
    // SAFETY: forwarded from this function's contract.
    let nodes: Vec<_> = unsafe { pnext::nodes(p_next) }.collect();
    // SAFETY: every node is live and starts with a header.
    let target = nodes.iter().position(|&n| unsafe { (*n).s_type == VULKAN_12 || (*n).s_type == TIMELINE });
    let Some(target) = target else {
        let mut ours =
            Box::new(vk::PhysicalDeviceTimelineSemaphoreFeatures::default().timeline_semaphore(true));
        ours.p_next = p_next.cast_mut();
        let head = (&*ours as *const vk::PhysicalDeviceTimelineSemaphoreFeatures<'_>).cast();
        return Some(TimelineChain { head, _ours: Some(ours), _copies: Vec::new() });
    };
    // SAFETY: the target node is live and of the type its sType names.
    let s_type = unsafe { (*nodes[target]).s_type };
    // SAFETY: as above; only read.
    if unsafe { *timeline_field(nodes[target].cast_mut().cast(), s_type) } == vk::TRUE {
        return Some(TimelineChain { head: p_next, _ours: None, _copies: Vec::new() });
    }
    let mut copies: Vec<Box<[u64]>> = Vec::with_capacity(target + 1);
    for &node in &nodes[..=target] {
        // SAFETY: a live node header.
        let size = known_size(unsafe { (*node).s_type })?;
        let mut copy = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        // SAFETY: the node is `size` bytes long (its sType says so) and the
        // copy has room for them; the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(node.cast::<u8>(), copy.as_mut_ptr().cast::<u8>(), size) };
        if let Some(previous) = copies.last_mut() {
            let header = previous.as_mut_ptr().cast::<vk::BaseOutStructure<'static>>();
            // SAFETY: every copy starts with a structure header.
            unsafe { (*header).p_next = copy.as_mut_ptr().cast() };
        }
        copies.push(copy);
    }
    let last = copies.last_mut()?.as_mut_ptr().cast::<c_void>();
    // SAFETY: the last copy is the target structure, of type `s_type`.
    unsafe { *timeline_field(last, s_type) = vk::TRUE };
    let head = copies.first()?.as_ptr().cast();
    Some(TimelineChain { head, _ours: None, _copies: copies })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline_on(head: *const c_void) -> bool {
        // SAFETY: test chains built below.
        let mut it = unsafe { pnext::nodes(head) };
        // SAFETY: each node is a live header of a test chain.
        it.any(|n| unsafe {
            let t = (*n).s_type;
            (t == VULKAN_12 || t == TIMELINE) && *timeline_field(n.cast_mut().cast(), t) == vk::TRUE
        })
    }

    #[test]
    fn an_empty_chain_gets_the_layers_structure() {
        // SAFETY: a null chain.
        let c = unsafe { with_timeline_semaphores(std::ptr::null()) }.unwrap();
        assert!(timeline_on(c.head()));
    }

    #[test]
    fn a_disabled_vulkan12_structure_is_copied_and_the_original_untouched() {
        let mut tail = vk::PhysicalDeviceMultiviewFeatures::default();
        let mut v12 = vk::PhysicalDeviceVulkan12Features::default().buffer_device_address(true);
        v12.p_next = (&mut tail as *mut vk::PhysicalDeviceMultiviewFeatures<'_>).cast();
        let f2 = vk::PhysicalDeviceFeatures2 {
            p_next: (&mut v12 as *mut vk::PhysicalDeviceVulkan12Features<'_>).cast(),
            ..Default::default()
        };
        let head = (&f2 as *const vk::PhysicalDeviceFeatures2<'_>).cast();
        // SAFETY: a valid chain on the stack.
        let c = unsafe { with_timeline_semaphores(head) }.unwrap();
        assert!(timeline_on(c.head()));
        assert_eq!(v12.timeline_semaphore, vk::FALSE);
        assert_ne!(c.head(), head);
        // The copies lead to the application's tail, and keep its other fields.
        // SAFETY: the layer's copy chain.
        let nodes: Vec<_> = unsafe { pnext::nodes(c.head()) }.collect();
        assert_eq!(nodes.len(), 3);
        assert_eq!(
            nodes[2].cast::<c_void>(),
            (&tail as *const vk::PhysicalDeviceMultiviewFeatures<'_>).cast()
        );
        // SAFETY: the second node is the copy of `v12`.
        let copy = unsafe { &*nodes[1].cast::<vk::PhysicalDeviceVulkan12Features<'_>>() };
        assert_eq!(copy.buffer_device_address, vk::TRUE);
        assert_eq!(copy.timeline_semaphore, vk::TRUE);
    }

    #[test]
    fn an_enabled_structure_leaves_the_chain_alone() {
        let t = vk::PhysicalDeviceTimelineSemaphoreFeatures::default().timeline_semaphore(true);
        let head = (&t as *const vk::PhysicalDeviceTimelineSemaphoreFeatures<'_>).cast();
        // SAFETY: a valid chain on the stack.
        let c = unsafe { with_timeline_semaphores(head) }.unwrap();
        assert_eq!(c.head(), head);
    }

    #[test]
    fn an_unknown_structure_before_the_target_gives_up() {
        let mut t = vk::PhysicalDeviceTimelineSemaphoreFeatures::default();
        let unknown = vk::PhysicalDeviceMeshShaderFeaturesEXT {
            p_next: (&mut t as *mut vk::PhysicalDeviceTimelineSemaphoreFeatures<'_>).cast(),
            ..Default::default()
        };
        let head = (&unknown as *const vk::PhysicalDeviceMeshShaderFeaturesEXT<'_>).cast();
        // SAFETY: a valid chain on the stack.
        assert!(unsafe { with_timeline_semaphores(head) }.is_none());
    }
}
