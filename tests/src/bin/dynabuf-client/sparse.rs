//! `sparse-probe`: does binding a `SPARSE_BINDING` buffer to dma-buf memory
//! with `vkQueueBindSparse` show the dma-buf's content (issue 11: re-map
//! dynamic attachments instead of copying)? An experiment on its own
//! instance and device (the `sparseBinding` feature, a queue family with
//! `SPARSE_BINDING`), with variations: a udmabuf imported at memory offset 0
//! and at an aligned non-zero offset, memory this device allocated
//! exportable (bound directly, and exported then imported back), ordinary
//! memory as the control, and a non-sparse buffer bound to the same import.
//! Each variation prints `NAME=ok|zeros|wrong|error (...)` and
//! `NAME.bytes=` (the first 16 bytes copied out, hex). It fails only when a
//! control (ordinary memory, the non-sparse import) reads wrong. With
//! `--device-only` it creates the device and nothing else (the layer's
//! re-map probe runs on it).

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use ash::vk;
use dynabuf::sys::dma_buf::{self, Access};
use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::{Context, Error, Result};

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
const TIMEOUT_NS: u64 = 5_000_000_000;

/// The known content: byte `i` of the block at `offset` is this.
fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ 0xa5) as u8
}

fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(pattern_byte).collect()
}

struct Ctx {
    _entry: ash::Entry,
    instance: ash::Instance,
    physical: vk::PhysicalDevice,
    device: ash::Device,
    queue: vk::Queue,
    memory_fd: ash::khr::external_memory_fd::Device,
    pool: vk::CommandPool,
    fence: vk::Fence,
}

/// What one variation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A udmabuf written through its memfd, imported.
    Udmabuf,
    /// Memory this device allocated exportable as DMA_BUF, written through
    /// vkMapMemory, bound as it is.
    Exportable,
    /// The same, exported and imported back; the import is bound.
    ExportedImported,
    /// Memory allocated exportable as OPAQUE_FD (a memfd on lavapipe),
    /// written through vkMapMemory, bound as it is.
    OpaqueFd,
    /// Ordinary host-visible memory written through vkMapMemory.
    Ordinary,
}

#[derive(Clone, Copy, Debug)]
struct Variation {
    name: &'static str,
    source: Source,
    /// Bind at this many sparse blocks into the memory.
    offset_blocks: u64,
    sparse: bool,
}

const VARIATIONS: &[Variation] = &[
    Variation { name: "udmabuf_sparse_offset0", source: Source::Udmabuf, offset_blocks: 0, sparse: true },
    Variation { name: "udmabuf_sparse_offset1", source: Source::Udmabuf, offset_blocks: 1, sparse: true },
    Variation { name: "udmabuf_plain", source: Source::Udmabuf, offset_blocks: 0, sparse: false },
    Variation { name: "udmabuf_plain_offset1", source: Source::Udmabuf, offset_blocks: 1, sparse: false },
    Variation { name: "exportable_sparse", source: Source::Exportable, offset_blocks: 0, sparse: true },
    Variation {
        name: "exported_imported_sparse",
        source: Source::ExportedImported,
        offset_blocks: 0,
        sparse: true,
    },
    Variation {
        name: "exported_imported_plain",
        source: Source::ExportedImported,
        offset_blocks: 0,
        sparse: false,
    },
    Variation { name: "opaque_fd_sparse", source: Source::OpaqueFd, offset_blocks: 0, sparse: true },
    Variation { name: "ordinary_sparse", source: Source::Ordinary, offset_blocks: 0, sparse: true },
    Variation { name: "ordinary_sparse_offset1", source: Source::Ordinary, offset_blocks: 1, sparse: true },
    Variation { name: "ordinary_plain", source: Source::Ordinary, offset_blocks: 0, sparse: false },
];

pub fn cmd_sparse_probe(args: &[String]) -> Result<()> {
    let ctx = Ctx::new()?;
    if args.iter().any(|a| a == "--device-only") {
        ctx.destroy();
        return Ok(());
    }
    let outcome = ctx.run_all(args);
    ctx.destroy();
    outcome
}

impl Ctx {
    fn new() -> Result<Ctx> {
        // SAFETY: loads the system's libvulkan.so.1, the real loader.
        let entry = unsafe { ash::Entry::load() }.ctx("loading libvulkan.so.1")?;
        let app =
            vk::ApplicationInfo::default().application_name(c"sparse-probe").api_version(vk::API_VERSION_1_1);
        let info = vk::InstanceCreateInfo::default().application_info(&app);
        // SAFETY: a valid create info whose pointers outlive the call.
        let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
        // SAFETY: a live instance.
        let physical = *unsafe { instance.enumerate_physical_devices() }
            .ctx("vkEnumeratePhysicalDevices")?
            .first()
            .ok_or_else(|| Error("no physical device".into()))?;
        // SAFETY: a physical device of this instance.
        let (props, features, families) = unsafe {
            (
                instance.get_physical_device_properties(physical),
                instance.get_physical_device_features(physical),
                instance.get_physical_device_queue_family_properties(physical),
            )
        };
        println!("device={}", props.device_name_as_c_str().map(CStr::to_string_lossy).unwrap_or_default());
        println!("sparse_binding_feature={}", features.sparse_binding != 0);
        println!("sparse_residency_buffer_feature={}", features.sparse_residency_buffer != 0);
        let wanted = vk::QueueFlags::SPARSE_BINDING | vk::QueueFlags::TRANSFER;
        let family = families.iter().position(|f| f.queue_flags.contains(wanted));
        println!("sparse_family={}", family.map_or("none".into(), |f| f.to_string()));
        for (flags, name) in [
            (vk::BufferCreateFlags::SPARSE_BINDING, "dma_buf_sparse_buffer_features"),
            (vk::BufferCreateFlags::empty(), "dma_buf_buffer_features"),
        ] {
            let query = vk::PhysicalDeviceExternalBufferInfo::default()
                .flags(flags)
                .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
                .handle_type(DMA_BUF);
            let mut out = vk::ExternalBufferProperties::default();
            // SAFETY: a physical device of this Vulkan 1.1 instance.
            unsafe { instance.get_physical_device_external_buffer_properties(physical, &query, &mut out) };
            println!("{name}={:?}", out.external_memory_properties.external_memory_features);
        }
        let Some(family) = family.filter(|_| features.sparse_binding != 0) else {
            // SAFETY: nothing was created from the instance.
            unsafe { instance.destroy_instance(None) };
            return Err(Error("no sparseBinding or no SPARSE_BINDING queue family".into()));
        };
        let family = family as u32;
        let exts =
            [ash::khr::external_memory_fd::NAME.as_ptr(), ash::ext::external_memory_dma_buf::NAME.as_ptr()];
        let enabled = vk::PhysicalDeviceFeatures::default().sparse_binding(true);
        let priorities = [1.0f32];
        let queues =
            [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&priorities)];
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&exts)
            .enabled_features(&enabled);
        // SAFETY: a valid create info whose pointers outlive the call.
        let device = match unsafe { instance.create_device(physical, &info, None) } {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: nothing else was created from the instance.
                unsafe { instance.destroy_instance(None) };
                return Err(Error(format!("vkCreateDevice: {e:?}")));
            }
        };
        // SAFETY: the queue the create info asked for; valid create infos.
        let (queue, pool, fence) = unsafe {
            let queue = device.get_device_queue(family, 0);
            let pool = device
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(family), None)
                .ctx("vkCreateCommandPool")?;
            let fence = device.create_fence(&vk::FenceCreateInfo::default(), None).ctx("vkCreateFence")?;
            (queue, pool, fence)
        };
        let memory_fd = ash::khr::external_memory_fd::Device::new(&instance, &device);
        Ok(Ctx { _entry: entry, instance, physical, device, queue, memory_fd, pool, fence })
    }

    fn destroy(self) {
        // SAFETY: everything below was created here; waiting for idle first
        // means no work still uses it.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_fence(self.fence, None);
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }

    fn run_all(&self, args: &[String]) -> Result<()> {
        let sparse_req = self.requirements(true, true)?;
        let block = sparse_req.alignment.max(sparse_req.size);
        println!("sparse_block={block} sparse_alignment={}", sparse_req.alignment);
        let mut failed = Vec::new();
        for v in VARIATIONS.iter().filter(|v| args.is_empty() || args.iter().any(|a| a == v.name)) {
            let (word, bytes) = match self.variation(v, block) {
                Ok(got) => {
                    let want = pattern(block);
                    let word = if got == want {
                        "ok".to_string()
                    } else if got.iter().all(|&b| b == 0) {
                        "zeros".to_string()
                    } else {
                        let i = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(0);
                        format!("wrong (byte {i} = {:#04x}, expected {:#04x})", got[i], want[i])
                    };
                    (word, hex(&got[..16.min(got.len())]))
                }
                Err(e) => (format!("error ({e})"), String::new()),
            };
            println!("{}={word}", v.name);
            println!("{}.bytes={bytes}", v.name);
            let control = v.source == Source::Ordinary || (v.name == "udmabuf_plain");
            if control && word != "ok" {
                failed.push(v.name);
            }
        }
        if args.is_empty() || args.iter().any(|a| a == "udmabuf_sparse_gpu_write") {
            let mut objects = Objects::default();
            let word = match self.gpu_write(block, &mut objects) {
                Ok(got) if got.iter().all(|&b| b == 0xef) => "ok".to_string(),
                Ok(got) if got.iter().all(|&b| b == 0) => "unchanged".to_string(),
                Ok(got) => format!("wrong (first bytes {})", hex(&got[..16])),
                Err(e) => format!("error ({e})"),
            };
            objects.destroy(&self.device);
            println!("udmabuf_sparse_gpu_write={word}");
        }
        println!("expected.bytes={}", hex(&pattern(16)));
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error(format!("controls failed: {failed:?}")))
        }
    }

    fn buffer_info(size: u64, sparse: bool) -> vk::BufferCreateInfo<'static> {
        let flags =
            if sparse { vk::BufferCreateFlags::SPARSE_BINDING } else { vk::BufferCreateFlags::empty() };
        vk::BufferCreateInfo::default()
            .size(size)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .flags(flags)
    }

    fn create_buffer(&self, size: u64, sparse: bool, external: bool) -> Result<vk::Buffer> {
        self.create_buffer_for(
            size,
            sparse,
            if external { DMA_BUF } else { vk::ExternalMemoryHandleTypeFlags::empty() },
        )
    }

    fn create_buffer_for(
        &self,
        size: u64,
        sparse: bool,
        handles: vk::ExternalMemoryHandleTypeFlags,
    ) -> Result<vk::Buffer> {
        let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handles);
        let mut info = Self::buffer_info(size, sparse);
        if !handles.is_empty() {
            info = info.push_next(&mut ext);
        }
        // SAFETY: a valid create info.
        unsafe { self.device.create_buffer(&info, None) }.ctx("vkCreateBuffer")
    }

    fn requirements(&self, sparse: bool, external: bool) -> Result<vk::MemoryRequirements> {
        let b = self.create_buffer(4096, sparse, external)?;
        // SAFETY: a buffer of this device, destroyed right after.
        let req = unsafe {
            let r = self.device.get_buffer_memory_requirements(b);
            self.device.destroy_buffer(b, None);
            r
        };
        Ok(req)
    }

    fn memory_type(&self, bits: u32, flags: vk::MemoryPropertyFlags) -> Option<u32> {
        // SAFETY: a physical device of this instance.
        let props = unsafe { self.instance.get_physical_device_memory_properties(self.physical) };
        (0..props.memory_type_count)
            .find(|&i| bits & (1 << i) != 0 && props.memory_types[i as usize].property_flags.contains(flags))
    }

    /// Runs one variation: memory of `blocks + offset` blocks holding the
    /// pattern at the offset, a one-block buffer bound there (sparse or
    /// not), copied to a host-visible buffer; returns the bytes copied.
    fn variation(&self, v: &Variation, block: u64) -> Result<Vec<u8>> {
        let offset = v.offset_blocks * block;
        let total = offset + block;
        let mut objects = Objects::default();
        let result = self.variation_inner(v, block, offset, total, &mut objects);
        objects.destroy(&self.device);
        result
    }

    fn variation_inner(
        &self,
        v: &Variation,
        block: u64,
        offset: u64,
        total: u64,
        o: &mut Objects,
    ) -> Result<Vec<u8>> {
        let handles = match v.source {
            Source::Ordinary => vk::ExternalMemoryHandleTypeFlags::empty(),
            Source::OpaqueFd => vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD,
            _ => DMA_BUF,
        };
        let buffer = self.create_buffer_for(block, v.sparse, handles)?;
        o.buffers.push(buffer);
        // SAFETY: a buffer of this device.
        let req = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        let memory = match v.source {
            Source::Udmabuf => {
                let (dmabuf, memfd) = udmabuf::create(total).ctx("udmabuf")?;
                std::fs::File::from(memfd).write_all_at(&pattern(block), offset).ctx("write memfd")?;
                self.import(dmabuf, total, req.memory_type_bits)?
            }
            Source::Exportable | Source::ExportedImported | Source::OpaqueFd => {
                let ty = self
                    .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::HOST_VISIBLE)
                    .ok_or_else(|| Error("no host-visible type".into()))?;
                let handle = if v.source == Source::OpaqueFd {
                    vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD
                } else {
                    DMA_BUF
                };
                let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle);
                let info = vk::MemoryAllocateInfo::default()
                    .allocation_size(total)
                    .memory_type_index(ty)
                    .push_next(&mut export);
                // SAFETY: a valid allocate info.
                let m = unsafe { self.device.allocate_memory(&info, None) }.ctx("vkAllocateMemory export")?;
                o.memories.push(m);
                if v.source != Source::ExportedImported {
                    self.write_mapped(m, offset, &pattern(block))?;
                    m
                } else {
                    let info = vk::MemoryGetFdInfoKHR::default().memory(m).handle_type(DMA_BUF);
                    // SAFETY: exportable memory of this device.
                    let raw = unsafe { self.memory_fd.get_memory_fd(&info) }.ctx("vkGetMemoryFdKHR")?;
                    // SAFETY: vkGetMemoryFdKHR gave us this fd to own.
                    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
                    let mut map = Mapping::new(fd.as_fd(), total as usize)?;
                    dma_buf::cpu_access(fd.as_fd(), Access::ReadWrite, true).ctx("SYNC start")?;
                    // SAFETY: the mapping is `total` bytes.
                    let bytes = unsafe {
                        std::slice::from_raw_parts_mut(map.words().as_mut_ptr().cast::<u8>(), total as usize)
                    };
                    bytes[offset as usize..].copy_from_slice(&pattern(block));
                    dma_buf::cpu_access(fd.as_fd(), Access::ReadWrite, false).ctx("SYNC end")?;
                    drop(map);
                    self.import(fd, total, req.memory_type_bits)?
                }
            }
            Source::Ordinary => {
                let ty = self
                    .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::HOST_VISIBLE)
                    .ok_or_else(|| Error("no host-visible type".into()))?;
                let info = vk::MemoryAllocateInfo::default().allocation_size(total).memory_type_index(ty);
                // SAFETY: a valid allocate info.
                let m = unsafe { self.device.allocate_memory(&info, None) }.ctx("vkAllocateMemory")?;
                o.memories.push(m);
                self.write_mapped(m, offset, &pattern(block))?;
                m
            }
        };
        if !o.memories.contains(&memory) {
            o.memories.push(memory);
        }
        if v.sparse {
            let binds = [vk::SparseMemoryBind::default()
                .resource_offset(0)
                .size(block)
                .memory(memory)
                .memory_offset(offset)];
            let buffer_binds = [vk::SparseBufferMemoryBindInfo::default().buffer(buffer).binds(&binds)];
            let info = [vk::BindSparseInfo::default().buffer_binds(&buffer_binds)];
            // SAFETY: valid bind infos; the fence is unsignalled.
            unsafe {
                self.device.queue_bind_sparse(self.queue, &info, self.fence).ctx("vkQueueBindSparse")?;
                self.device.wait_for_fences(&[self.fence], true, TIMEOUT_NS).ctx("wait bind")?;
                self.device.reset_fences(&[self.fence]).ctx("reset")?;
            }
        } else {
            // SAFETY: an unbound buffer and memory of this device.
            unsafe { self.device.bind_buffer_memory(buffer, memory, offset) }.ctx("vkBindBufferMemory")?;
        }
        // The destination: ordinary host-visible memory.
        let dst = self.create_buffer(block, false, false)?;
        o.buffers.push(dst);
        // SAFETY: a buffer of this device.
        let dreq = unsafe { self.device.get_buffer_memory_requirements(dst) };
        let ty = self
            .memory_type(
                dreq.memory_type_bits,
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
            )
            .ok_or_else(|| Error("no host-visible coherent type".into()))?;
        let info = vk::MemoryAllocateInfo::default().allocation_size(dreq.size).memory_type_index(ty);
        // SAFETY: valid infos; objects of this device.
        let dmem = unsafe { self.device.allocate_memory(&info, None) }.ctx("vkAllocateMemory dst")?;
        o.memories.push(dmem);
        // SAFETY: an unbound buffer and fresh memory.
        unsafe { self.device.bind_buffer_memory(dst, dmem, 0) }.ctx("bind dst")?;
        self.write_mapped(dmem, 0, &vec![0x5a; block as usize])?;
        self.copy(buffer, dst, block)?;
        // SAFETY: host-visible coherent memory, mapped once and unmapped.
        unsafe {
            let p = self.device.map_memory(dmem, 0, block, vk::MemoryMapFlags::empty()).ctx("map dst")?;
            let got = std::slice::from_raw_parts(p.cast::<u8>(), block as usize).to_vec();
            self.device.unmap_memory(dmem);
            Ok(got)
        }
    }

    /// A zeroed udmabuf imported and bound sparse; the GPU fills the buffer
    /// with 0xef bytes; returns what the memfd then holds.
    fn gpu_write(&self, block: u64, o: &mut Objects) -> Result<Vec<u8>> {
        let buffer = self.create_buffer(block, true, true)?;
        o.buffers.push(buffer);
        // SAFETY: a buffer of this device.
        let req = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        let (dmabuf, memfd) = udmabuf::create(block).ctx("udmabuf")?;
        let memory = self.import(dmabuf, block, req.memory_type_bits)?;
        o.memories.push(memory);
        let binds = [vk::SparseMemoryBind::default().size(block).memory(memory)];
        let buffer_binds = [vk::SparseBufferMemoryBindInfo::default().buffer(buffer).binds(&binds)];
        let info = [vk::BindSparseInfo::default().buffer_binds(&buffer_binds)];
        // SAFETY: valid bind infos; the fence is unsignalled.
        unsafe {
            self.device.queue_bind_sparse(self.queue, &info, self.fence).ctx("vkQueueBindSparse")?;
            self.device.wait_for_fences(&[self.fence], true, TIMEOUT_NS).ctx("wait bind")?;
            self.device.reset_fences(&[self.fence]).ctx("reset")?;
        }
        self.record_and_wait(|d, cb| {
            // SAFETY: a recording command buffer and a bound buffer.
            unsafe { d.cmd_fill_buffer(cb, buffer, 0, block, 0xefef_efef) }
        })?;
        let mut back = vec![0u8; block as usize];
        std::fs::File::from(memfd).read_exact_at(&mut back, 0).ctx("read memfd")?;
        Ok(back)
    }

    fn import(&self, fd: OwnedFd, size: u64, bits: u32) -> Result<vk::DeviceMemory> {
        let mut props = vk::MemoryFdPropertiesKHR::default();
        // SAFETY: a dma-buf fd we own.
        unsafe { self.memory_fd.get_memory_fd_properties(DMA_BUF, fd.as_raw_fd(), &mut props) }
            .ctx("vkGetMemoryFdPropertiesKHR")?;
        let ty = self
            .memory_type(bits & props.memory_type_bits, vk::MemoryPropertyFlags::empty())
            .ok_or_else(|| Error("no memory type imports it".into()))?;
        let mut import = vk::ImportMemoryFdInfoKHR::default()
            .handle_type(DMA_BUF)
            .fd(std::os::fd::IntoRawFd::into_raw_fd(fd));
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(ty)
            .push_next(&mut import);
        // SAFETY: a valid import; on success the driver owns the fd.
        unsafe { self.device.allocate_memory(&info, None) }.map_err(|e| {
            // SAFETY: on failure the fd is still ours.
            unsafe { libc::close(import.fd) };
            Error(format!("import: {e:?}"))
        })
    }

    fn write_mapped(&self, memory: vk::DeviceMemory, offset: u64, data: &[u8]) -> Result<()> {
        // SAFETY: host-visible memory at least offset + len long, mapped once.
        unsafe {
            let p = self
                .device
                .map_memory(memory, offset, data.len() as u64, vk::MemoryMapFlags::empty())
                .ctx("vkMapMemory")?;
            std::ptr::copy_nonoverlapping(data.as_ptr(), p.cast::<u8>(), data.len());
            let range = vk::MappedMemoryRange::default().memory(memory).offset(offset).size(vk::WHOLE_SIZE);
            self.device.flush_mapped_memory_ranges(&[range]).ctx("flush")?;
            self.device.unmap_memory(memory);
        }
        Ok(())
    }

    fn copy(&self, src: vk::Buffer, dst: vk::Buffer, size: u64) -> Result<()> {
        self.record_and_wait(|d, cb| {
            // SAFETY: a recording command buffer and bound buffers.
            unsafe { d.cmd_copy_buffer(cb, src, dst, &[vk::BufferCopy::default().size(size)]) }
        })
    }

    fn record_and_wait(&self, record: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
        let info = vk::CommandBufferAllocateInfo::default().command_pool(self.pool).command_buffer_count(1);
        // SAFETY: valid infos; the command buffer is recorded, submitted
        // and waited for (bounded) before it is freed.
        unsafe {
            let cb = self.device.allocate_command_buffers(&info).ctx("vkAllocateCommandBuffers")?[0];
            let run = (|| -> Result<()> {
                self.device.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default()).ctx("begin")?;
                record(&self.device, cb);
                let barrier = vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                    .dst_access_mask(vk::AccessFlags::HOST_READ);
                self.device.cmd_pipeline_barrier(
                    cb,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::PipelineStageFlags::HOST,
                    vk::DependencyFlags::empty(),
                    &[barrier],
                    &[],
                    &[],
                );
                self.device.end_command_buffer(cb).ctx("end")?;
                let cbs = [cb];
                let submit = vk::SubmitInfo::default().command_buffers(&cbs);
                self.device.queue_submit(self.queue, &[submit], self.fence).ctx("vkQueueSubmit")?;
                self.device.wait_for_fences(&[self.fence], true, TIMEOUT_NS).ctx("wait copy")?;
                self.device.reset_fences(&[self.fence]).ctx("reset")
            })();
            self.device.free_command_buffers(self.pool, &[cb]);
            run
        }
    }
}

#[derive(Default)]
struct Objects {
    buffers: Vec<vk::Buffer>,
    memories: Vec<vk::DeviceMemory>,
}

impl Objects {
    fn destroy(self, device: &ash::Device) {
        // SAFETY: objects of this device no pending work uses (every
        // submission was waited for, or the device is idled first).
        unsafe {
            let _ = device.device_wait_idle();
            for b in self.buffers {
                device.destroy_buffer(b, None);
            }
            for m in self.memories {
                device.free_memory(m, None);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
