//! Trampolines: views, framebuffers and descriptor sets, looked through
//! for hazard reports (`hooks/usage.rs`), and the host's timeline signals
//! (`hooks/hazards.rs`, self-waits); all passed on unchanged, and handed
//! out only when `DYNABUF_HAZARDS` is not `off`.

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::hooks::usage;
use crate::views::usage as view;

/// A `vkCreate*` whose new object is looked at once created: `$look`
/// gets the device, the application's create info and the new handle.
macro_rules! created_then_looked_at {
    ($name:ident, $call:literal, $field:ident, $info:ty, $out:ty, $look:expr) => {
        pub(super) unsafe extern "system" fn $name(
            device: vk::Device,
            p_info: *const $info,
            p_allocator: *const vk::AllocationCallbacks<'_>,
            p_out: *mut $out,
        ) -> vk::Result {
            guard($call, vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
                let dev = device_or_return!($call, device, vk::Result::ERROR_INITIALIZATION_FAILED);
                let Some(f) = dev.usage_fns.$field else { return vk::Result::ERROR_INITIALIZATION_FAILED };
                crate::lock_order::assert_unlocked($call);
                // SAFETY: the application's arguments, passed on unchanged.
                let r = unsafe { f(device, p_info, p_allocator, p_out) };
                // SAFETY: valid pointers (Vulkan valid usage); on success the
                // new handle was written.
                let written = unsafe { (p_info.as_ref(), p_out.as_ref()) };
                if let (vk::Result::SUCCESS, (Some(info), Some(out))) = (r, written) {
                    let look: fn(&crate::dispatch::Device, &$info, $out) = $look;
                    // Its own guard: the object exists whatever happens here.
                    guard($call, (), || look(dev, info, *out));
                }
                r
            })
        }
    };
}

created_then_looked_at!(
    create_image_view,
    "vkCreateImageView",
    create_image_view,
    vk::ImageViewCreateInfo<'_>,
    vk::ImageView,
    |dev, info, view| usage::image_view_created(dev, view, info.image)
);
created_then_looked_at!(
    create_buffer_view,
    "vkCreateBufferView",
    create_buffer_view,
    vk::BufferViewCreateInfo<'_>,
    vk::BufferView,
    |dev, info, view| usage::buffer_view_created(dev, view, info.buffer)
);
created_then_looked_at!(
    create_framebuffer,
    "vkCreateFramebuffer",
    create_framebuffer,
    vk::FramebufferCreateInfo<'_>,
    vk::Framebuffer,
    |dev, info, fb| {
        // An imageless framebuffer has no views (they come at begin).
        let views = if info.flags.contains(vk::FramebufferCreateFlags::IMAGELESS) {
            &[][..]
        } else {
            // SAFETY: `p_attachments` holds `attachment_count` views (Vulkan
            // valid usage of the info passed to vkCreateFramebuffer).
            unsafe { slice(info.p_attachments, info.attachment_count) }
        };
        usage::framebuffer_created(dev, fb, views)
    }
);
created_then_looked_at!(
    create_semaphore,
    "vkCreateSemaphore",
    create_semaphore,
    vk::SemaphoreCreateInfo<'_>,
    vk::Semaphore,
    // SAFETY: the application's valid create info and chain.
    |dev, info, semaphore| crate::hooks::hazards::semaphore_created(dev, semaphore, unsafe {
        view::timeline_initial_value(info)
    })
);

pub(super) unsafe extern "system" fn allocate_descriptor_sets(
    device: vk::Device,
    p_info: *const vk::DescriptorSetAllocateInfo<'_>,
    p_sets: *mut vk::DescriptorSet,
) -> vk::Result {
    guard("vkAllocateDescriptorSets", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        let dev =
            device_or_return!("vkAllocateDescriptorSets", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        let Some(f) = dev.usage_fns.allocate_descriptor_sets else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        crate::lock_order::assert_unlocked("vkAllocateDescriptorSets");
        // SAFETY: the application's arguments, passed on unchanged.
        let r = unsafe { f(device, p_info, p_sets) };
        // SAFETY: a valid info; on success `p_sets` holds one set per layout.
        if let (vk::Result::SUCCESS, Some(info)) = (r, unsafe { p_info.as_ref() }) {
            // SAFETY: as above.
            let sets = unsafe { slice(p_sets, info.descriptor_set_count) };
            guard("vkAllocateDescriptorSets", (), || usage::descriptor_sets_allocated(dev, sets));
        }
        r
    })
}

pub(super) unsafe extern "system" fn update_descriptor_sets(
    device: vk::Device,
    write_count: u32,
    p_writes: *const vk::WriteDescriptorSet<'_>,
    copy_count: u32,
    p_copies: *const vk::CopyDescriptorSet<'_>,
) {
    guard("vkUpdateDescriptorSets", (), || {
        let dev = device_or_return!("vkUpdateDescriptorSets", device);
        // SAFETY: `p_writes` holds `write_count` valid writes and `p_copies`
        // `copy_count` copies (Vulkan valid usage).
        let (writes, copies) = unsafe { (slice(p_writes, write_count), slice(p_copies, copy_count)) };
        if dev.state.has_dma_buf_memory() || dev.state.hazards.as_ref().is_some_and(|h| h.has_tracked_sets())
        {
            guard("vkUpdateDescriptorSets", (), || {
                // SAFETY: valid writes, as above.
                usage::descriptors_updated(dev, &unsafe { view::descriptor_writes(writes) }, copies);
            });
        }
        if let Some(f) = dev.usage_fns.update_descriptor_sets {
            crate::lock_order::assert_unlocked("vkUpdateDescriptorSets");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(device, write_count, p_writes, copy_count, p_copies) }
        }
    })
}

pub(super) unsafe extern "system" fn signal_semaphore(
    device: vk::Device,
    p_info: *const vk::SemaphoreSignalInfo<'_>,
) -> vk::Result {
    guard("vkSignalSemaphore", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        let dev = device_or_return!("vkSignalSemaphore", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        let Some(f) = dev.usage_fns.signal_semaphore else { return vk::Result::ERROR_INITIALIZATION_FAILED };
        crate::lock_order::assert_unlocked("vkSignalSemaphore");
        // SAFETY: the application's arguments, passed on unchanged.
        let r = unsafe { f(device, p_info) };
        // SAFETY: a valid signal info (Vulkan valid usage).
        if let (vk::Result::SUCCESS, Some(info)) = (r, unsafe { p_info.as_ref() }) {
            guard("vkSignalSemaphore", (), || {
                crate::hooks::hazards::host_signalled(dev, info.semaphore, info.value)
            });
        }
        r
    })
}

pub(super) unsafe extern "system" fn update_descriptor_set_with_template(
    device: vk::Device,
    set: vk::DescriptorSet,
    template: vk::DescriptorUpdateTemplate,
    p_data: *const std::ffi::c_void,
) {
    guard("vkUpdateDescriptorSetWithTemplate", (), || {
        let dev = device_or_return!("vkUpdateDescriptorSetWithTemplate", device);
        // Templates are not looked through: the set forgets what it led to.
        guard("vkUpdateDescriptorSetWithTemplate", (), || usage::descriptor_sets_allocated(dev, &[set]));
        if let Some(f) = dev.usage_fns.update_descriptor_set_with_template {
            crate::lock_order::assert_unlocked("vkUpdateDescriptorSetWithTemplate");
            // SAFETY: the application's arguments, passed on unchanged.
            unsafe { f(device, set, template, p_data) }
        }
    })
}
