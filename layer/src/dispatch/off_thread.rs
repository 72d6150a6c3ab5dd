//! Handles for calling a device's functions from the layer's own threads
//! (the fence waiter, the release publisher) without holding the device's
//! state. Their owners join those threads before the device is destroyed.

use std::os::fd::{FromRawFd, OwnedFd};

use ash::vk;

/// Exports SYNC_FD fences of a device's semaphores from another thread
/// (the release publisher), without holding the device state.
#[derive(Clone, Copy, Debug)]
pub struct SyncFdExporter {
    pub(super) device: vk::Device,
    pub(super) get_fd: vk::PFN_vkGetSemaphoreFdKHR,
}

impl SyncFdExporter {
    /// As [`Device::export_sync_fd`]. The device must outlive every call:
    /// the owner joins the exporting thread before the device is destroyed.
    pub fn export(&self, semaphore: vk::Semaphore) -> Result<Option<OwnedFd>, vk::Result> {
        let info = vk::SemaphoreGetFdInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut fd = -1;
        crate::lock_order::assert_unlocked("vkGetSemaphoreFdKHR");
        // SAFETY: the device is alive (the owner's contract above) and the
        // semaphore is the layer's own, with a signal submitted.
        match unsafe { (self.get_fd)(self.device, &info, &mut fd) } {
            // SAFETY: a successful vkGetSemaphoreFdKHR returns a new fd (or
            // -1) that the caller owns.
            vk::Result::SUCCESS => Ok((fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })),
            e => Err(e),
        }
    }
}

/// Signals a device's timeline semaphores from another thread (the sync
/// waiter), without holding the device state.
#[derive(Clone, Copy, Debug)]
pub struct TimelineSignaller {
    pub(super) device: vk::Device,
    pub(super) signal: vk::PFN_vkSignalSemaphore,
}

impl TimelineSignaller {
    /// The device must outlive every call: the owner joins the signalling
    /// thread before the device is destroyed.
    pub fn signal(&self, semaphore: vk::Semaphore, value: u64) -> vk::Result {
        let info = vk::SemaphoreSignalInfo::default().semaphore(semaphore).value(value);
        // SAFETY: the device is alive (the owner's contract above) and the
        // semaphore is the layer's own timeline semaphore of this device.
        unsafe { (self.signal)(self.device, &info) }
    }
}
