//! The next layer's recording and object-creation functions the layer
//! watches only for hazard reports (`hooks/usage.rs`); the trampolines in
//! `entry/usage.rs` call them with the application's arguments unchanged.

use ash::vk;

use super::fn_table::fn_table;

fn_table!(UsageFns, vk::Device, vk::PFN_vkGetDeviceProcAddr {
    cmd_copy_buffer: PFN_vkCmdCopyBuffer = c"vkCmdCopyBuffer";
    cmd_copy_buffer2: PFN_vkCmdCopyBuffer2 = c"vkCmdCopyBuffer2" | c"vkCmdCopyBuffer2KHR";
    cmd_copy_image: PFN_vkCmdCopyImage = c"vkCmdCopyImage";
    cmd_copy_image2: PFN_vkCmdCopyImage2 = c"vkCmdCopyImage2" | c"vkCmdCopyImage2KHR";
    cmd_copy_buffer_to_image: PFN_vkCmdCopyBufferToImage = c"vkCmdCopyBufferToImage";
    cmd_copy_buffer_to_image2: PFN_vkCmdCopyBufferToImage2 = c"vkCmdCopyBufferToImage2" | c"vkCmdCopyBufferToImage2KHR";
    cmd_copy_image_to_buffer: PFN_vkCmdCopyImageToBuffer = c"vkCmdCopyImageToBuffer";
    cmd_copy_image_to_buffer2: PFN_vkCmdCopyImageToBuffer2 = c"vkCmdCopyImageToBuffer2" | c"vkCmdCopyImageToBuffer2KHR";
    cmd_blit_image: PFN_vkCmdBlitImage = c"vkCmdBlitImage";
    cmd_blit_image2: PFN_vkCmdBlitImage2 = c"vkCmdBlitImage2" | c"vkCmdBlitImage2KHR";
    cmd_resolve_image: PFN_vkCmdResolveImage = c"vkCmdResolveImage";
    cmd_resolve_image2: PFN_vkCmdResolveImage2 = c"vkCmdResolveImage2" | c"vkCmdResolveImage2KHR";
    cmd_fill_buffer: PFN_vkCmdFillBuffer = c"vkCmdFillBuffer";
    cmd_update_buffer: PFN_vkCmdUpdateBuffer = c"vkCmdUpdateBuffer";
    cmd_clear_color_image: PFN_vkCmdClearColorImage = c"vkCmdClearColorImage";
    cmd_clear_depth_stencil_image: PFN_vkCmdClearDepthStencilImage = c"vkCmdClearDepthStencilImage";
    cmd_begin_rendering: PFN_vkCmdBeginRendering = c"vkCmdBeginRendering" | c"vkCmdBeginRenderingKHR";
    cmd_begin_render_pass: PFN_vkCmdBeginRenderPass = c"vkCmdBeginRenderPass";
    cmd_begin_render_pass2: PFN_vkCmdBeginRenderPass2 = c"vkCmdBeginRenderPass2" | c"vkCmdBeginRenderPass2KHR";
    cmd_bind_descriptor_sets: PFN_vkCmdBindDescriptorSets = c"vkCmdBindDescriptorSets";
    create_image_view: PFN_vkCreateImageView = c"vkCreateImageView";
    create_buffer_view: PFN_vkCreateBufferView = c"vkCreateBufferView";
    create_framebuffer: PFN_vkCreateFramebuffer = c"vkCreateFramebuffer";
    allocate_descriptor_sets: PFN_vkAllocateDescriptorSets = c"vkAllocateDescriptorSets";
    update_descriptor_sets: PFN_vkUpdateDescriptorSets = c"vkUpdateDescriptorSets";
    signal_semaphore: PFN_vkSignalSemaphore = c"vkSignalSemaphore" | c"vkSignalSemaphoreKHR";
    create_semaphore: PFN_vkCreateSemaphore = c"vkCreateSemaphore";
    update_descriptor_set_with_template: PFN_vkUpdateDescriptorSetWithTemplate = c"vkUpdateDescriptorSetWithTemplate" | c"vkUpdateDescriptorSetWithTemplateKHR";
});
