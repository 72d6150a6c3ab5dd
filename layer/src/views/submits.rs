//! Safe read-only views of application structures whose arrays are raw
//! pointers, built once in a trampoline (where the pointers are vouched for)
//! and read in safe hooks.

use ash::vk;

use super::{pnext, slice};

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

    /// Whether the layer may add its own command buffers to batch `i`:
    /// not when a `VkDeviceGroupSubmitInfo` counts the batch's command
    /// buffers, nor in a protected batch (the layer's are unprotected).
    pub fn takes_layer_command_buffers(&self, i: usize) -> bool {
        match *self {
            Submits::V1(infos) => {
                let Some(info) = infos.get(i) else { return false };
                // SAFETY: the constructor's contract covers the pNext chain.
                let group: Option<&vk::DeviceGroupSubmitInfo<'_>> = unsafe { pnext::find(info.p_next) };
                // SAFETY: as above.
                let protected: Option<&vk::ProtectedSubmitInfo<'_>> = unsafe { pnext::find(info.p_next) };
                group.is_none() && !protected.is_some_and(|p| p.protected_submit == vk::TRUE)
            }
            Submits::V2(infos) => {
                infos.get(i).is_some_and(|info| !info.flags.contains(vk::SubmitFlags::PROTECTED))
            }
        }
    }

    /// Batch `i`'s command buffer infos (`vkQueueSubmit2`).
    pub fn v2_command_buffer_infos(&self, i: usize) -> &'a [vk::CommandBufferSubmitInfo<'a>] {
        match *self {
            Submits::V2(infos) => infos.get(i).map_or(&[], |info| {
                // SAFETY: the constructor's contract vouches for the array.
                unsafe { slice(info.p_command_buffer_infos, info.command_buffer_info_count) }
            }),
            Submits::V1(_) => &[],
        }
    }

    /// Batch `i`'s signal infos (`vkQueueSubmit2`).
    pub fn v2_signals(&self, i: usize) -> &'a [vk::SemaphoreSubmitInfo<'a>] {
        match *self {
            Submits::V2(infos) => infos.get(i).map_or(&[], |info| {
                // SAFETY: the constructor's contract vouches for the array.
                unsafe { slice(info.p_signal_semaphore_infos, info.signal_semaphore_info_count) }
            }),
            Submits::V1(_) => &[],
        }
    }

    /// Every semaphore the submission waits on, with the value (0 where no
    /// timeline value is given: a binary semaphore).
    pub fn waits(&self) -> Vec<(vk::Semaphore, u64)> {
        self.semaphores(true)
    }

    /// Every semaphore the submission signals, with the value (0 for a
    /// binary semaphore).
    pub fn signals(&self) -> Vec<(vk::Semaphore, u64)> {
        self.semaphores(false)
    }

    fn semaphores(&self, waits: bool) -> Vec<(vk::Semaphore, u64)> {
        let mut out = Vec::new();
        match *self {
            Submits::V1(infos) => {
                for s in infos {
                    // SAFETY: the constructor's contract vouches for the
                    // arrays and the pNext chain.
                    let timeline: Option<&vk::TimelineSemaphoreSubmitInfo<'_>> =
                        unsafe { pnext::find(s.p_next) };
                    let (semaphores, values) = if waits {
                        // SAFETY: as above.
                        let sems = unsafe { slice(s.p_wait_semaphores, s.wait_semaphore_count) };
                        // SAFETY: as above (the value array, when given, has
                        // one value per wait semaphore).
                        let values = timeline.map_or(&[][..], |t| unsafe {
                            slice(t.p_wait_semaphore_values, t.wait_semaphore_value_count)
                        });
                        (sems, values)
                    } else {
                        // SAFETY: as above.
                        let sems = unsafe { slice(s.p_signal_semaphores, s.signal_semaphore_count) };
                        // SAFETY: as above.
                        let values = timeline.map_or(&[][..], |t| unsafe {
                            slice(t.p_signal_semaphore_values, t.signal_semaphore_value_count)
                        });
                        (sems, values)
                    };
                    out.extend(
                        semaphores
                            .iter()
                            .enumerate()
                            .map(|(i, &sem)| (sem, values.get(i).copied().unwrap_or(0))),
                    );
                }
            }
            Submits::V2(infos) => {
                for s in infos {
                    // SAFETY: the constructor's contract vouches for the arrays.
                    let list = unsafe {
                        if waits {
                            slice(s.p_wait_semaphore_infos, s.wait_semaphore_info_count)
                        } else {
                            slice(s.p_signal_semaphore_infos, s.signal_semaphore_info_count)
                        }
                    };
                    out.extend(list.iter().map(|i| (i.semaphore, i.value)));
                }
            }
        }
        out
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
