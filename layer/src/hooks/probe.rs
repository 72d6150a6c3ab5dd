//! The device probe at `vkCreateDevice`: what this device and kernel can do
//! for implicit sync, found by real round trips (as Mesa's WSI does), never
//! from version numbers. One `info` line says what was found and which
//! strategy follows.

use std::ffi::CStr;

use ash::vk;

use crate::dispatch::{Device, Instance};
use crate::registry::caps::{Capabilities, DrmFinding, Finding};
use crate::sys::{dma_buf, drm::Node};

const PROBE_SIZE: u64 = 4096;
const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// What the probe learned, and the DRM node it opened (kept for later use).
#[derive(Debug)]
pub struct Probed {
    pub caps: Capabilities,
    pub drm: Option<Node>,
}

/// Probes `dev`. `enabled` lists the device's enabled extensions (the
/// application's and the layer's); `queue_family` is a family the device
/// created a queue in.
pub fn probe(instance: &Instance, dev: &Device, enabled: &[&CStr], queue_family: Option<u32>) -> Probed {
    let has = |name: &CStr| enabled.contains(&name);
    let mut caps = Capabilities::default();
    let fd_ext = has(c"VK_KHR_external_memory_fd");
    if fd_ext && has(c"VK_EXT_external_memory_dma_buf") {
        probe_dma_buf(instance, dev, &mut caps);
    } else {
        let why = Finding::No("VK_EXT_external_memory_dma_buf or VK_KHR_external_memory_fd absent".into());
        caps.dma_buf_export = why.clone();
        caps.dma_buf_import = why;
        caps.sync_file_ioctls = Finding::Untested("no dma-buf to try on".into());
    }
    match (has(c"VK_KHR_external_semaphore_fd"), queue_family) {
        (true, Some(family)) => probe_sync_fd(instance, dev, family, &mut caps),
        (false, _) => {
            caps.sync_fd_export = Finding::No("VK_KHR_external_semaphore_fd absent".into());
            caps.sync_fd_import = caps.sync_fd_export.clone();
        }
        (true, None) => {
            caps.sync_fd_export = Finding::Untested("the device has no queue".into());
            caps.sync_fd_import = caps.sync_fd_export.clone();
        }
    }
    let (drm_finding, drm) = probe_drm(instance, dev);
    caps.drm = drm_finding;
    Probed { caps, drm }
}

/// Export a small dma-buf, check the kernel calls it one, try the sync-file
/// ioctls on it, and import it back.
fn probe_dma_buf(instance: &Instance, dev: &Device, caps: &mut Capabilities) {
    // Allocating exportable memory of a handle type the driver does not
    // offer is invalid (VUID-VkExportMemoryAllocateInfo-handleTypes-00656).
    let queryable = instance.has(vk::API_VERSION_1_1, c"VK_KHR_external_memory_capabilities");
    let features =
        if queryable { instance.external_buffer_features(dev.physical, DMA_BUF) } else { Default::default() };
    if !features.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE) {
        caps.dma_buf_export = Finding::No("the driver does not offer dma-buf export".into());
        caps.dma_buf_import = Finding::Untested("no dma-buf to import".into());
        caps.sync_file_ioctls = Finding::Untested("no dma-buf to try on".into());
        return;
    }
    let props = instance.memory_properties(dev.physical);
    let unusual = vk::MemoryPropertyFlags::PROTECTED | vk::MemoryPropertyFlags::DEVICE_COHERENT_AMD;
    let mut memory = vk::DeviceMemory::null();
    let mut last = vk::Result::ERROR_FEATURE_NOT_PRESENT;
    let types = props.memory_types[..(props.memory_type_count as usize).min(vk::MAX_MEMORY_TYPES)].iter();
    for memory_type in
        types.enumerate().filter(|(_, t)| !t.property_flags.intersects(unusual)).map(|(i, _)| i as u32)
    {
        let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(DMA_BUF);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(PROBE_SIZE)
            .memory_type_index(memory_type)
            .push_next(&mut export);
        last = dev.allocate_memory(&info, None, &mut memory);
        if last == vk::Result::SUCCESS {
            break;
        }
    }
    if last != vk::Result::SUCCESS {
        caps.dma_buf_export = Finding::No(format!("exportable allocation: {last:?}"));
        caps.dma_buf_import = Finding::Untested("no dma-buf to import".into());
        caps.sync_file_ioctls = Finding::Untested("no dma-buf to try on".into());
        return;
    }
    let exported = dev.export_memory_fd(memory, DMA_BUF);
    dev.free_memory(memory, None);
    let fd = match exported {
        Ok(fd) => fd,
        Err(e) => {
            caps.dma_buf_export = Finding::No(format!("vkGetMemoryFdKHR: {e:?}"));
            caps.dma_buf_import = Finding::Untested("no dma-buf to import".into());
            caps.sync_file_ioctls = Finding::Untested("no dma-buf to try on".into());
            return;
        }
    };
    caps.dma_buf_export = match dma_buf::info(std::os::fd::AsFd::as_fd(&fd)) {
        Ok(Some(_)) => Finding::Yes,
        Ok(None) => Finding::No("the exported fd is not a dma-buf".into()),
        Err(e) => Finding::No(e.to_string()),
    };
    caps.sync_file_ioctls = sync_file_round_trip(&fd);
    caps.dma_buf_import = import_round_trip(dev, fd);
}

fn sync_file_round_trip(fd: &std::os::fd::OwnedFd) -> Finding {
    use std::os::fd::AsFd;
    let sync = match dma_buf::export_sync_file(fd.as_fd(), dma_buf::Access::Read) {
        Ok(s) => s,
        Err(e) => return Finding::No(e.to_string()),
    };
    match dma_buf::import_sync_file(fd.as_fd(), sync.as_fd(), dma_buf::Access::Read) {
        Ok(()) => Finding::Yes,
        Err(e) => Finding::No(e.to_string()),
    }
}

fn import_round_trip(dev: &Device, fd: std::os::fd::OwnedFd) -> Finding {
    use std::os::fd::AsRawFd;
    let mut props = vk::MemoryFdPropertiesKHR::default();
    let r = dev.get_memory_fd_properties(DMA_BUF, fd.as_raw_fd(), &mut props);
    if r != vk::Result::SUCCESS {
        return Finding::No(format!("vkGetMemoryFdPropertiesKHR: {r:?}"));
    }
    let Some(memory_type) = (0..32).find(|t| props.memory_type_bits & (1 << t) != 0) else {
        return Finding::No("no memory type can import it".into());
    };
    let mut memory = vk::DeviceMemory::null();
    let r = dev.import_memory_fd(PROBE_SIZE, memory_type, DMA_BUF, fd, &mut memory);
    if r != vk::Result::SUCCESS {
        return Finding::No(format!("import: {r:?}"));
    }
    dev.free_memory(memory, None);
    Finding::Yes
}

/// Signal a SYNC_FD-exportable semaphore on a queue, export its sync_file,
/// import that into a second semaphore, and make a submission wait on it.
fn probe_sync_fd(instance: &Instance, dev: &Device, family: u32, caps: &mut Capabilities) {
    let features =
        instance.external_semaphore_features(dev.physical, vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    if !features.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE) {
        caps.sync_fd_export = Finding::No("the driver does not offer SYNC_FD export".into());
    }
    if !features.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE) {
        caps.sync_fd_import = Finding::No("the driver does not offer SYNC_FD import".into());
    }
    if !features.contains(
        vk::ExternalSemaphoreFeatureFlags::EXPORTABLE | vk::ExternalSemaphoreFeatureFlags::IMPORTABLE,
    ) {
        return;
    }
    let mut queue = vk::Queue::null();
    dev.get_device_queue(family, 0, &mut queue);
    // A queue got from the next layer is not yet dispatchable through the
    // chain: layers below (Khronos validation) find their state through
    // the loader's dispatch pointer in it, which the loader's own
    // vkGetDeviceQueue would have set.
    if let Err(r) = dev.make_dispatchable(vk::Handle::as_raw(queue)) {
        caps.sync_fd_export =
            Finding::Untested(format!("vkSetDeviceLoaderData for the probe's queue: {r:?}"));
        caps.sync_fd_import = caps.sync_fd_export.clone();
        return;
    }
    let mut objects = ProbeObjects { dev, semaphores: Vec::new(), fence: vk::Fence::null() };
    let (export, import) = objects.run(queue);
    caps.sync_fd_export = export;
    caps.sync_fd_import = import;
}

/// The probe's own Vulkan objects, destroyed on drop.
struct ProbeObjects<'a> {
    dev: &'a Device,
    semaphores: Vec<vk::Semaphore>,
    fence: vk::Fence,
}

impl ProbeObjects<'_> {
    fn semaphore(&mut self, exportable: bool) -> Result<vk::Semaphore, vk::Result> {
        let mut export = vk::ExportSemaphoreCreateInfo::default()
            .handle_types(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut info = vk::SemaphoreCreateInfo::default();
        if exportable {
            info = info.push_next(&mut export);
        }
        let mut s = vk::Semaphore::null();
        match self.dev.create_semaphore(&info, &mut s) {
            vk::Result::SUCCESS => {
                self.semaphores.push(s);
                Ok(s)
            }
            e => Err(e),
        }
    }

    fn submit_and_wait(&mut self, queue: vk::Queue, submit: vk::SubmitInfo<'_>) -> vk::Result {
        if self.fence == vk::Fence::null() {
            let r = self.dev.create_fence(&mut self.fence);
            if r != vk::Result::SUCCESS {
                return r;
            }
        }
        let r = self.dev.queue_submit(queue, &[submit], self.fence);
        if r != vk::Result::SUCCESS {
            return r;
        }
        self.dev.wait_for_fence(self.fence, 2_000_000_000)
    }

    fn run(&mut self, queue: vk::Queue) -> (Finding, Finding) {
        let no = |what: &str, r: vk::Result| Finding::No(format!("{what}: {r:?}"));
        let signalled = match self.semaphore(true) {
            Ok(s) => s,
            Err(e) => return (no("vkCreateSemaphore", e), Finding::Untested("no semaphore".into())),
        };
        let signal = [signalled];
        let r = self.submit_and_wait(queue, vk::SubmitInfo::default().signal_semaphores(&signal));
        if r != vk::Result::SUCCESS {
            return (no("signal submission", r), Finding::Untested("no sync_file".into()));
        }
        let fd = match self.dev.export_sync_fd(signalled) {
            Ok(fd) => fd,
            Err(e) => return (no("vkGetSemaphoreFdKHR", e), Finding::Untested("no sync_file".into())),
        };
        let waited = match self.semaphore(false) {
            Ok(s) => s,
            Err(e) => return (Finding::Yes, no("vkCreateSemaphore", e)),
        };
        let r = self.dev.import_sync_fd(waited, fd);
        if r != vk::Result::SUCCESS {
            return (Finding::Yes, no("vkImportSemaphoreFdKHR", r));
        }
        let wait = [waited];
        let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
        let r = self.submit_and_wait_fresh(
            queue,
            vk::SubmitInfo::default().wait_semaphores(&wait).wait_dst_stage_mask(&stages),
        );
        if r != vk::Result::SUCCESS {
            return (Finding::Yes, no("waiting submission", r));
        }
        (Finding::Yes, Finding::Yes)
    }

    /// As [`Self::submit_and_wait`] with a new fence (the first one is
    /// signalled and the layer has no reason to reset it).
    fn submit_and_wait_fresh(&mut self, queue: vk::Queue, submit: vk::SubmitInfo<'_>) -> vk::Result {
        self.dev.destroy_fence(self.fence);
        self.fence = vk::Fence::null();
        self.submit_and_wait(queue, submit)
    }
}

impl Drop for ProbeObjects<'_> {
    fn drop(&mut self) {
        if self.fence != vk::Fence::null() {
            // Nothing may still use the semaphores: wait (bounded) first.
            let _ = self.dev.wait_for_fence(self.fence, 2_000_000_000);
            self.dev.destroy_fence(self.fence);
        }
        for s in self.semaphores.drain(..) {
            self.dev.destroy_semaphore(s);
        }
    }
}

fn probe_drm(instance: &Instance, dev: &Device) -> (DrmFinding, Option<Node>) {
    let offered = instance.device_extensions(dev.physical);
    if !offered.iter().any(|e| e.as_c_str() == c"VK_EXT_physical_device_drm") {
        return (DrmFinding::None("no VK_EXT_physical_device_drm".into()), None);
    }
    if !instance.has(vk::API_VERSION_1_1, c"VK_KHR_get_physical_device_properties2") {
        return (
            DrmFinding::None("a Vulkan 1.0 instance without VK_KHR_get_physical_device_properties2".into()),
            None,
        );
    }
    let Some(props) = instance.drm_properties(dev.physical) else {
        return (DrmFinding::None("no vkGetPhysicalDeviceProperties2".into()), None);
    };
    let (major, minor) = if props.has_render != 0 {
        (props.render_major, props.render_minor)
    } else if props.has_primary != 0 {
        (props.primary_major, props.primary_minor)
    } else {
        return (DrmFinding::None("the device reports no DRM node".into()), None);
    };
    match Node::open_devnum(major as u64, minor as u64) {
        Ok(node) => {
            let finding = DrmFinding::Node {
                path: node.path().display().to_string(),
                driver: node.driver_name().unwrap_or_else(|e| format!("? ({e})")),
                syncobj: node.has_syncobj(),
                timeline: node.has_timeline_syncobj(),
            };
            (finding, Some(node))
        }
        Err(e) => (DrmFinding::None(format!("{major}:{minor}: {e}")), None),
    }
}
