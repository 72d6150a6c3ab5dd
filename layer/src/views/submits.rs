//! Safe read-only views of application structures whose arrays are raw
//! pointers, built once in a trampoline (where the pointers are vouched for)
//! and read in safe hooks.

use ash::vk;

use super::slice;

/// The submissions of one `vkQueueSubmit` or `vkQueueSubmit2` call.
#[derive(Clone, Copy, Debug)]
pub enum Submits<'a> {
    V1(&'a [vk::SubmitInfo<'a>]),
    V2(&'a [vk::SubmitInfo2<'a>]),
}

impl<'a> Submits<'a> {
    /// # Safety
    /// Every `SubmitInfo`'s array pointers must be valid for their counts
    /// for `'a` (Vulkan valid usage of `vkQueueSubmit`).
    pub unsafe fn v1(infos: &'a [vk::SubmitInfo<'a>]) -> Self {
        Submits::V1(infos)
    }

    /// # Safety
    /// As for [`Submits::v1`], for `vkQueueSubmit2`.
    pub unsafe fn v2(infos: &'a [vk::SubmitInfo2<'a>]) -> Self {
        Submits::V2(infos)
    }

    /// How many batches.
    pub fn len(&self) -> usize {
        match self {
            Submits::V1(i) => i.len(),
            Submits::V2(i) => i.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The command buffers of batch `i`.
    pub fn batch_command_buffers(&self, i: usize) -> Vec<vk::CommandBuffer> {
        match *self {
            Submits::V1(infos) => {
                // SAFETY: the constructor's contract vouches for the arrays.
                unsafe { slice(infos[i].p_command_buffers, infos[i].command_buffer_count) }.to_vec()
            }
            Submits::V2(infos) => {
                // SAFETY: the constructor's contract vouches for the arrays.
                unsafe { slice(infos[i].p_command_buffer_infos, infos[i].command_buffer_info_count) }
                    .iter()
                    .map(|c| c.command_buffer)
                    .collect()
            }
        }
    }

    /// Every command buffer submitted, in order.
    pub fn command_buffers(&self) -> Box<dyn Iterator<Item = vk::CommandBuffer> + 'a> {
        match *self {
            Submits::V1(infos) => Box::new(infos.iter().flat_map(|s| {
                // SAFETY: the constructor's contract vouches for the array.
                unsafe { slice(s.p_command_buffers, s.command_buffer_count) }.iter().copied()
            })),
            Submits::V2(infos) => Box::new(infos.iter().flat_map(|s| {
                // SAFETY: the constructor's contract vouches for the array.
                unsafe { slice(s.p_command_buffer_infos, s.command_buffer_info_count) }
                    .iter()
                    .map(|c| c.command_buffer)
            })),
        }
    }
}
