//! External memory: buffers allocated exportable and exported as an fd, and
//! buffers imported from an fd, through `VK_KHR_external_memory_fd` (and
//! `VK_EXT_external_memory_dma_buf` for dma-bufs), mapped for host access.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use ash::vk;

use crate::vulkan::Client;
use crate::{Context, Error, Result};

/// A buffer bound to dedicated external memory of `len` u32s.
#[derive(Debug)]
pub struct ExternalBuffer {
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
    pub handle_type: vk::ExternalMemoryHandleTypeFlags,
    pub len: u32,
    pub size: u64,
}

fn buffer_info<'a>(
    size: u64,
    external: &'a mut vk::ExternalMemoryBufferCreateInfo<'a>,
) -> vk::BufferCreateInfo<'a> {
    vk::BufferCreateInfo::default()
        .size(size)
        .usage(
            vk::BufferUsageFlags::STORAGE_BUFFER
                | vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST,
        )
        .push_next(external)
}

impl ExternalBuffer {
    /// A buffer in fresh memory allocated exportable as `handle_type`.
    pub fn exportable(c: &Client, len: u32, handle_type: vk::ExternalMemoryHandleTypeFlags) -> Result<Self> {
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type);
        let size = u64::from(len) * 4;
        // SAFETY: a valid create info.
        let buffer = unsafe { c.device.create_buffer(&buffer_info(size, &mut external), None) }
            .ctx("vkCreateBuffer")?;
        // SAFETY: a buffer of this device.
        let req = unsafe { c.device.get_buffer_memory_requirements(buffer) };
        let Some(type_index) = c.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::HOST_VISIBLE)
        else {
            // SAFETY: the buffer is unused.
            unsafe { c.device.destroy_buffer(buffer, None) };
            return Err(Error("no host-visible memory type for an exportable buffer".into()));
        };
        let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type);
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(buffer);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(type_index)
            .push_next(&mut export)
            .push_next(&mut dedicated);
        // SAFETY: a valid allocate info whose chain outlives the call.
        let memory = unsafe { c.device.allocate_memory(&info, None) };
        Self::bound(c, buffer, memory, handle_type, len, req.size).map_err(Error::from)
    }

    /// A buffer in memory imported from `fd`. On success the driver owns the
    /// fd; on failure it is closed here and the driver's error returned.
    pub fn import(
        c: &Client,
        fd: OwnedFd,
        len: u32,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
    ) -> std::result::Result<Self, vk::Result> {
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type);
        let size = u64::from(len) * 4;
        // SAFETY: a valid create info.
        let buffer = unsafe { c.device.create_buffer(&buffer_info(size, &mut external), None) }?;
        // SAFETY: a buffer of this device.
        let req = unsafe { c.device.get_buffer_memory_requirements(buffer) };
        let fd_bits = match importable_types(c, fd.as_fd(), handle_type) {
            Ok(bits) => bits,
            Err(e) => {
                // SAFETY: the buffer is unused.
                unsafe { c.device.destroy_buffer(buffer, None) };
                return Err(e);
            }
        };
        let Some(type_index) =
            c.memory_type(req.memory_type_bits & fd_bits, vk::MemoryPropertyFlags::HOST_VISIBLE)
        else {
            // SAFETY: the buffer is unused.
            unsafe { c.device.destroy_buffer(buffer, None) };
            return Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
        };
        let dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(buffer);
        let memory = import_memory(c, fd, handle_type, req.size, type_index, dedicated);
        Self::bound(c, buffer, memory, handle_type, len, req.size).map_err(|e| e.vk)
    }

    /// Binds `buffer` to `memory` (the result of allocating it), or
    /// destroys what there is.
    fn bound(
        c: &Client,
        buffer: vk::Buffer,
        memory: std::result::Result<vk::DeviceMemory, vk::Result>,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
        len: u32,
        size: u64,
    ) -> std::result::Result<Self, FinishError> {
        let memory = match memory {
            Ok(m) => m,
            Err(vk) => {
                // SAFETY: the buffer is unused.
                unsafe { c.device.destroy_buffer(buffer, None) };
                return Err(FinishError { vk, what: "vkAllocateMemory" });
            }
        };
        // SAFETY: an unbound buffer and memory large enough for it.
        if let Err(vk) = unsafe { c.device.bind_buffer_memory(buffer, memory, 0) } {
            // SAFETY: both are unused.
            unsafe {
                c.device.destroy_buffer(buffer, None);
                c.device.free_memory(memory, None);
            }
            return Err(FinishError { vk, what: "vkBindBufferMemory" });
        }
        Ok(ExternalBuffer { buffer, memory, handle_type, len, size })
    }

    /// Exports the memory as a new fd (`vkGetMemoryFdKHR`).
    pub fn export_fd(&self, c: &Client) -> Result<OwnedFd> {
        export_memory_fd(c, self.memory, self.handle_type)
    }

    /// Reads (`data == None`) or writes the content through a host mapping.
    pub fn host_access(&self, c: &Client, data: Option<&[u32]>) -> Result<Vec<u32>> {
        // SAFETY: host-visible memory of this device, not mapped elsewhere;
        // the caller has waited for GPU work on it.
        unsafe {
            let p = c
                .device
                .map_memory(self.memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                .ctx("vkMapMemory")?
                .cast::<u32>();
            let words = std::slice::from_raw_parts_mut(p, self.len as usize);
            if let Some(d) = data {
                words.copy_from_slice(&d[..self.len as usize]);
            }
            let out = words.to_vec();
            c.device.unmap_memory(self.memory);
            Ok(out)
        }
    }

    pub fn destroy(self, c: &Client) {
        // SAFETY: objects this buffer owns; the caller waited for its work.
        unsafe {
            c.device.destroy_buffer(self.buffer, None);
            c.device.free_memory(self.memory, None);
        }
    }
}

struct FinishError {
    vk: vk::Result,
    what: &'static str,
}

impl From<FinishError> for Error {
    fn from(e: FinishError) -> Self {
        Error(format!("{}: {:?}", e.what, e.vk))
    }
}

/// Records an ownership transfer of `buffer` between `outside` (FOREIGN or
/// EXTERNAL) and `family`: an acquire when `acquire`, else a release.
pub fn ownership_barrier(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    outside: u32,
    family: u32,
    acquire: bool,
) {
    let (src, dst) = if acquire { (outside, family) } else { (family, outside) };
    let barrier = [vk::BufferMemoryBarrier::default()
        .src_access_mask(if acquire { vk::AccessFlags::empty() } else { vk::AccessFlags::SHADER_WRITE })
        .dst_access_mask(if acquire {
            vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE
        } else {
            vk::AccessFlags::empty()
        })
        .src_queue_family_index(src)
        .dst_queue_family_index(dst)
        .buffer(buffer)
        .size(vk::WHOLE_SIZE)];
    let (src_stage, dst_stage) = if acquire {
        (vk::PipelineStageFlags::TOP_OF_PIPE, vk::PipelineStageFlags::COMPUTE_SHADER)
    } else {
        (vk::PipelineStageFlags::COMPUTE_SHADER, vk::PipelineStageFlags::BOTTOM_OF_PIPE)
    };
    // SAFETY: a command buffer in the recording state and a buffer of this device.
    unsafe {
        d.cmd_pipeline_barrier(cb, src_stage, dst_stage, vk::DependencyFlags::empty(), &[], &barrier, &[])
    };
}

/// The memory types `fd` can be imported as: what
/// `vkGetMemoryFdPropertiesKHR` says for a dma-buf, any for other handle
/// types.
pub fn importable_types(
    c: &Client,
    fd: BorrowedFd<'_>,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
) -> std::result::Result<u32, vk::Result> {
    match (handle_type, &c.memory_fd) {
        (vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT, Some(ext)) => {
            let mut props = vk::MemoryFdPropertiesKHR::default();
            // SAFETY: a valid fd (borrowed for the call) and out struct.
            unsafe { ext.get_memory_fd_properties(handle_type, fd.as_raw_fd(), &mut props) }?;
            Ok(props.memory_type_bits)
        }
        _ => Ok(!0),
    }
}

/// Imports `fd` as `size` bytes of memory type `type_index`, dedicated to
/// the resource `dedicated` names (none when it names none). On success
/// the driver owns the fd; on failure it is closed here (if the driver did
/// not) and the driver's error returned.
pub fn import_memory(
    c: &Client,
    fd: OwnedFd,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    size: u64,
    type_index: u32,
    mut dedicated: vk::MemoryDedicatedAllocateInfo<'_>,
) -> std::result::Result<vk::DeviceMemory, vk::Result> {
    let identity = file_identity(fd.as_raw_fd());
    let raw = fd.into_raw_fd();
    let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(handle_type).fd(raw);
    let mut info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(type_index)
        .push_next(&mut import);
    if dedicated.buffer != vk::Buffer::null() || dedicated.image != vk::Image::null() {
        info = info.push_next(&mut dedicated);
    }
    // SAFETY: a valid allocate info whose chain outlives the call.
    unsafe { c.device.allocate_memory(&info, None) }.inspect_err(|_| {
        // A failed import leaves the fd with the application (the spec),
        // but lavapipe 25.0 closes it anyway: close it only if it is still
        // open and still the same file.
        if identity.is_some() && file_identity(raw) == identity {
            // SAFETY: `raw` is still open and names the file we passed, so
            // the driver did not take it; we own it again.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    })
}

/// Exports `memory` (allocated exportable as `handle_type`) as a new fd
/// (`vkGetMemoryFdKHR`).
pub fn export_memory_fd(
    c: &Client,
    memory: vk::DeviceMemory,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
) -> Result<OwnedFd> {
    let ext = c.memory_fd.as_ref().ok_or_else(|| Error("VK_KHR_external_memory_fd not enabled".into()))?;
    let info = vk::MemoryGetFdInfoKHR::default().memory(memory).handle_type(handle_type);
    // SAFETY: memory of this device allocated exportable as this type.
    let fd = unsafe { ext.get_memory_fd(&info) }.ctx("vkGetMemoryFdKHR")?;
    // SAFETY: a successful vkGetMemoryFdKHR returns a new fd the caller owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Allocates `size` bytes of memory type `type_index` exportable as
/// `handle_type` and dedicated to `image`.
pub fn allocate_exportable_for_image(
    c: &Client,
    image: vk::Image,
    size: u64,
    type_index: u32,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
) -> Result<vk::DeviceMemory> {
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(type_index)
        .push_next(&mut export)
        .push_next(&mut dedicated);
    // SAFETY: a valid allocate info whose chain outlives the call.
    unsafe { c.device.allocate_memory(&info, None) }.ctx("vkAllocateMemory(export)")
}

/// `(st_dev, st_ino)` of an open fd, or `None` when it is not open.
pub fn file_identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: fstat only writes the stat buffer, which is a valid local.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// The number of open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
