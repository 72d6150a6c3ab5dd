//! The images, jobs and barriers `image_overhead` measures: an image (or
//! buffer) over a shared 4 MiB or 64 MiB dma-buf, the small job each
//! submission runs, and its ownership transfers.

use ash::vk;
use dynabuf_client::env::LAYER_NAME;
use dynabuf_client::external::{import_memory, importable_types};
use dynabuf_client::render::Commands;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use std::ffi::CString;
use std::os::fd::BorrowedFd;

use super::{DMA_BUF, MOD_LINEAR, REGION, REGION_BYTES, RGBA8};

/// How the image's texels are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tiling {
    /// DRM format modifier `LINEAR`, explicit layout (offset 0, tight rows).
    DrmLinear,
    /// `VK_IMAGE_TILING_LINEAR`.
    Linear,
}

impl Tiling {
    pub(crate) fn of(c: &Client) -> Tiling {
        match c.has_extension(ash::ext::image_drm_format_modifier::NAME) {
            true => Tiling::DrmLinear,
            false => Tiling::Linear,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tiling::DrmLinear => "DRM format modifier LINEAR, explicit layout",
            Tiling::Linear => "VK_IMAGE_TILING_LINEAR",
        }
    }
}

pub(crate) fn client() -> Result<Client> {
    Client::new(&ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("name")],
        extra_extensions: vec![
            CString::from(ash::ext::image_drm_format_modifier::NAME),
            CString::from(ash::khr::image_format_list::NAME),
        ],
        ..Default::default()
    })
}

/// An RGBA8 image and the memory it is bound to (at offset 0).
pub(crate) struct Image {
    pub(crate) image: vk::Image,
    pub(crate) memory: vk::DeviceMemory,
}

impl Image {
    pub(crate) fn create(c: &Client, side: u32, tiling: Tiling, external: bool) -> Result<vk::Image> {
        let mut external_info = vk::ExternalMemoryImageCreateInfo::default().handle_types(DMA_BUF);
        let layout = [vk::SubresourceLayout { row_pitch: u64::from(side) * 4, ..Default::default() }];
        let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
            .drm_format_modifier(MOD_LINEAR)
            .plane_layouts(&layout);
        let mut info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(RGBA8)
            .extent(vk::Extent3D { width: side, height: side, depth: 1 })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        if external {
            info = info.push_next(&mut external_info);
        }
        info = match tiling {
            Tiling::Linear => info.tiling(vk::ImageTiling::LINEAR),
            Tiling::DrmLinear => {
                info.tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT).push_next(&mut explicit)
            }
        };
        // SAFETY: a valid create info whose chain outlives the call.
        unsafe { c.device.create_image(&info, None) }.ctx("vkCreateImage")
    }

    /// Binds `image` to the memory `allocate` returns for its requirements,
    /// or destroys it.
    pub(crate) fn bound(
        c: &Client,
        image: vk::Image,
        allocate: impl FnOnce(vk::MemoryRequirements) -> Result<vk::DeviceMemory>,
    ) -> Result<Image> {
        // SAFETY: an image of this device.
        let req = unsafe { c.device.get_image_memory_requirements(image) };
        let memory = match allocate(req) {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: the image is unused.
                unsafe { c.device.destroy_image(image, None) };
                return Err(e);
            }
        };
        let this = Image { image, memory };
        // SAFETY: an unbound image and memory large enough for it.
        if let Err(e) = unsafe { c.device.bind_image_memory(image, memory, 0) } {
            this.destroy(c);
            return Err(Error(format!("vkBindImageMemory: {e:?}")));
        }
        Ok(this)
    }

    /// A `side` x `side` image imported from the dma-buf `fd` of `size`
    /// bytes: the whole dma-buf, not dedicated to the image.
    pub(crate) fn import(
        c: &Client,
        fd: BorrowedFd<'_>,
        size: u64,
        side: u32,
        tiling: Tiling,
    ) -> Result<Image> {
        let image = Self::create(c, side, tiling, true)?;
        Self::bound(c, image, |req| {
            if req.size > size {
                return Err(Error(format!("the image needs {} bytes, the dma-buf has {size}", req.size)));
            }
            let types = importable_types(c, fd, DMA_BUF).ctx("vkGetMemoryFdPropertiesKHR")?;
            let index = c
                .memory_type(req.memory_type_bits & types, vk::MemoryPropertyFlags::empty())
                .ok_or_else(|| Error(format!("no memory type for {req:?} and the dma-buf's {types:#x}")))?;
            let fd = fd.try_clone_to_owned().ctx("dup")?;
            import_memory(c, fd, DMA_BUF, size, index, vk::MemoryDedicatedAllocateInfo::default())
                .ctx("vkAllocateMemory(import)")
        })
    }

    /// The same image in ordinary memory.
    pub(crate) fn ordinary(c: &Client, side: u32, tiling: Tiling) -> Result<Image> {
        let image = Self::create(c, side, tiling, false)?;
        Self::bound(c, image, |req| {
            let index = c
                .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty())
                .ok_or_else(|| Error(format!("no memory type for {req:?}")))?;
            let info = vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(index);
            // SAFETY: a valid allocate info.
            unsafe { c.device.allocate_memory(&info, None) }.ctx("vkAllocateMemory")
        })
    }

    pub(crate) fn destroy(self, c: &Client) {
        // SAFETY: objects this owns; the caller waited for their work.
        unsafe {
            c.device.destroy_image(self.image, None);
            c.device.free_memory(self.memory, None);
        }
    }
}

/// What a job reads from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Buffer(vk::Buffer),
    Image(vk::Image),
}

pub(crate) const WHOLE_IMAGE: vk::ImageSubresourceRange = vk::ImageSubresourceRange {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    base_mip_level: 0,
    level_count: 1,
    base_array_layer: 0,
    layer_count: 1,
};

/// Records an ownership transfer of `target` between FOREIGN and `family`
/// (an acquire when `acquire`, else a release), the image staying in
/// `GENERAL` (from `from` at an acquire); the job only reads it.
pub(crate) fn transfer(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    target: Target,
    family: u32,
    acquire: bool,
    from: vk::ImageLayout,
) {
    let foreign = vk::QUEUE_FAMILY_FOREIGN_EXT;
    let (src, dst) = if acquire { (foreign, family) } else { (family, foreign) };
    // The release names a write (over-specifying is valid): a dynamic
    // attachment then copies both ways at each submission, which is what
    // `image_overhead` measures (it copies out only what was written).
    let (src_access, dst_access) = match acquire {
        true => (vk::AccessFlags::empty(), vk::AccessFlags::TRANSFER_READ),
        false => (vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::empty()),
    };
    let (src_stage, dst_stage) = match acquire {
        true => (vk::PipelineStageFlags::TOP_OF_PIPE, vk::PipelineStageFlags::TRANSFER),
        false => (vk::PipelineStageFlags::TRANSFER, vk::PipelineStageFlags::BOTTOM_OF_PIPE),
    };
    let (buffers, images) = match target {
        Target::Buffer(buffer) => (
            vec![vk::BufferMemoryBarrier::default()
                .src_access_mask(src_access)
                .dst_access_mask(dst_access)
                .src_queue_family_index(src)
                .dst_queue_family_index(dst)
                .buffer(buffer)
                .size(vk::WHOLE_SIZE)],
            vec![],
        ),
        Target::Image(image) => (
            vec![],
            vec![vk::ImageMemoryBarrier::default()
                .src_access_mask(src_access)
                .dst_access_mask(dst_access)
                .old_layout(if acquire { from } else { vk::ImageLayout::GENERAL })
                .new_layout(vk::ImageLayout::GENERAL)
                .src_queue_family_index(src)
                .dst_queue_family_index(dst)
                .image(image)
                .subresource_range(WHOLE_IMAGE)],
        ),
    };
    // SAFETY: a command buffer in the recording state, resources of this device.
    unsafe {
        d.cmd_pipeline_barrier(cb, src_stage, dst_stage, vk::DependencyFlags::empty(), &[], &buffers, &images)
    }
}

/// The small job: copies 1 KiB of `target` into `staging`.
pub(crate) fn small_copy(d: &ash::Device, cb: vk::CommandBuffer, target: Target, staging: vk::Buffer) {
    // SAFETY: a command buffer in the recording state; the regions lie in
    // the resources (at least 4 MiB each), the image is in GENERAL.
    unsafe {
        match target {
            Target::Buffer(buffer) => {
                let region = [vk::BufferCopy { src_offset: 0, dst_offset: 0, size: REGION_BYTES }];
                d.cmd_copy_buffer(cb, buffer, staging, &region)
            }
            Target::Image(image) => {
                let region = [vk::BufferImageCopy::default()
                    .image_subresource(vk::ImageSubresourceLayers {
                        aspect_mask: vk::ImageAspectFlags::COLOR,
                        mip_level: 0,
                        base_array_layer: 0,
                        layer_count: 1,
                    })
                    .image_extent(vk::Extent3D { width: REGION, height: REGION, depth: 1 })];
                d.cmd_copy_image_to_buffer(cb, image, vk::ImageLayout::GENERAL, staging, &region)
            }
        }
    }
}

/// A recorded job, submitted and waited for as often as needed.
pub(crate) struct Job(Commands);

impl Job {
    /// The small job on `target`: between an acquire and a release when
    /// `handover`, on its own otherwise.
    pub(crate) fn new(c: &Client, target: Target, handover: bool, staging: vk::Buffer) -> Result<Job> {
        Self::record(c, |d, cb| {
            if handover {
                transfer(d, cb, target, c.family, true, vk::ImageLayout::GENERAL);
            }
            small_copy(d, cb, target, staging);
            if handover {
                transfer(d, cb, target, c.family, false, vk::ImageLayout::GENERAL);
            }
        })
    }

    pub(crate) fn record(c: &Client, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<Job> {
        let commands = Commands::new(c)?;
        let recorded = commands.begin(c).and_then(|_| {
            f(&c.device, commands.cb);
            commands.end(c)
        });
        match recorded {
            Ok(()) => Ok(Job(commands)),
            Err(e) => {
                commands.destroy(c);
                Err(e)
            }
        }
    }

    pub(crate) fn run(&self, c: &Client) -> Result<()> {
        self.0.submit(c)?;
        self.0.wait(c)
    }

    pub(crate) fn destroy(self, c: &Client) {
        self.0.destroy(c);
    }
}

/// Puts an image into `GENERAL` once: for a shared one an acquire from
/// `UNDEFINED` and a release, for an ordinary one a plain transition.
pub(crate) fn to_general(c: &Client, image: vk::Image, shared: bool) -> Result<()> {
    let job = Job::record(c, |d, cb| {
        let target = Target::Image(image);
        if shared {
            transfer(d, cb, target, c.family, true, vk::ImageLayout::UNDEFINED);
            transfer(d, cb, target, c.family, false, vk::ImageLayout::GENERAL);
            return;
        }
        let b = [vk::ImageMemoryBarrier::default()
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
            .old_layout(vk::ImageLayout::UNDEFINED)
            .new_layout(vk::ImageLayout::GENERAL)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(image)
            .subresource_range(WHOLE_IMAGE)];
        // SAFETY: a command buffer in the recording state, an image of this device.
        unsafe {
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TOP_OF_PIPE,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &b,
            )
        }
    })?;
    let ran = job.run(c);
    job.destroy(c);
    ran
}
