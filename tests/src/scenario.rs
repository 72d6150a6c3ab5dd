//! The demo's scenario: a producer device renders frames into an image it
//! exports (a DRM-format-modifier dma-buf where it can), a consumer device
//! that imported the same memory samples each frame into a buffer the host
//! reads. Both record the ownership transfers Vulkan asks for (release to
//! and acquire from `VK_QUEUE_FAMILY_FOREIGN_EXT`) and do no sync-file
//! work; the application submits the consumer's work right after the
//! producer's, without waiting in between, so only implicit sync (the
//! layer) keeps the consumer from sampling a frame still being drawn.
//! The producer also samples each frame itself with the same pass, in its
//! own command buffer after drawing, so what the consumer saw can be
//! checked texel by texel.

use std::ffi::CString;
use std::time::Instant;

use ash::vk;

use crate::compute::StorageBuffer;
use crate::render::paint::{Painter, PARTS};
use crate::render::sample::Scanout;
use crate::render::shared_image::{Description, SharedImage, Tiling};
use crate::render::{host_read_barrier, image_barrier, Commands, Transition};
use crate::vulkan::{Client, ClientOptions};
use crate::{Error, Result};

const FOREIGN: u32 = vk::QUEUE_FAMILY_FOREIGN_EXT;
const IGNORED: u32 = vk::QUEUE_FAMILY_IGNORED;

/// What the demo's clients enable besides the client's usual extensions.
pub fn client_options() -> ClientOptions {
    let extra = [ash::ext::image_drm_format_modifier::NAME, ash::ext::queue_family_foreign::NAME];
    ClientOptions {
        extra_extensions: extra.iter().map(|&e| CString::from(e)).collect(),
        ..Default::default()
    }
}

/// The frames to show and how heavy each is.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub frames: u32,
    pub width: u32,
    pub height: u32,
    /// Julia-set iterations per pixel at most (the producer's cost).
    pub paint_work: u32,
    /// Hash rounds per texel before the consumer samples it.
    pub scan_work: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { frames: 12, width: 128, height: 128, paint_work: 400, scan_work: 2000 }
    }
}

/// One frame: what the producer rendered (sampled on its own device) and
/// what the consumer sampled, RGBA8 texels as little-endian words, row by
/// row.
#[derive(Debug)]
pub struct Frame {
    pub produced: Vec<u32>,
    pub seen: Vec<u32>,
    /// From the producer's submission to both devices' completion.
    pub millis: f64,
}

impl Frame {
    /// How many texels the consumer saw differently from the producer.
    pub fn differing(&self) -> usize {
        self.produced.iter().zip(&self.seen).filter(|(a, b)| a != b).count()
    }

    /// What happened to frame `n`, in a line.
    pub fn describe(&self, n: u32) -> String {
        let seen = match self.differing() {
            0 => "exactly the producer's frame".to_string(),
            d => format!("{d} of {} texels differ from the producer's frame", self.produced.len()),
        };
        format!(
            "frame {n}: producer drew {PARTS} draw calls, consumer sampled it: {seen} ({:.0} ms)",
            self.millis
        )
    }
}

/// What [`show_frames`] did.
#[derive(Debug)]
pub struct Shown {
    pub desc: Description,
    /// Whether the application waited for the producer itself (shared
    /// memory that is no dma-buf: nothing for implicit sync to work on).
    pub app_waited: bool,
    pub frames: Vec<Frame>,
}

/// One device's part: its image (exported or imported), the sampling pass
/// and the buffer it samples into, its commands.
struct Side {
    image: SharedImage,
    texels: StorageBuffer,
    scanout: Scanout,
    commands: Commands,
}

impl Side {
    /// Takes `image`, destroyed with the rest on failure.
    fn new(c: &Client, image: SharedImage, w: u32, h: u32) -> Result<Self> {
        let texels = StorageBuffer::new(c, w * h);
        let scanout = match &texels {
            Ok(t) => Scanout::new(c, image.image, w, h, t.buffer),
            Err(_) => Err(Error("no buffer to sample into".into())),
        };
        match (texels, scanout, Commands::new(c)) {
            (Ok(texels), Ok(scanout), Ok(commands)) => Ok(Side { image, texels, scanout, commands }),
            (texels, scanout, commands) => {
                let errors = [
                    texels.map(|t| t.destroy(c)).err(),
                    scanout.map(|s| s.destroy(c)).err(),
                    commands.map(|m| m.destroy(c)).err(),
                ];
                image.destroy(c);
                Err(errors.into_iter().flatten().next().expect("one of them failed"))
            }
        }
    }

    fn destroy(self, c: &Client) {
        self.commands.destroy(c);
        self.scanout.destroy(c);
        self.texels.destroy(c);
        self.image.destroy(c);
    }
}

/// Both sides and the producer's painter.
struct Scene {
    produce: Side,
    consume: Side,
    painter: Painter,
}

/// Renders `opts.frames` frames on `producer`, has `consumer` sample each,
/// and returns both sides' pictures. `say` hears one line per step.
pub fn show_frames(
    producer: &Client,
    consumer: &Client,
    opts: Options,
    say: &mut dyn FnMut(String),
) -> Result<Shown> {
    let (w, h) = (opts.width, opts.height);
    let shared = SharedImage::exportable(producer, w, h)?;
    let desc = shared.desc;
    say(match desc.tiling {
        Tiling::Modifier { modifier, offset, row_pitch } => format!(
            "producer: {w}x{h} RGBA8 image exportable as a dma-buf, DRM format modifier {modifier:#x}, \
             plane 0 at offset {offset}, row pitch {row_pitch}, {} bytes",
            desc.size
        ),
        Tiling::Opaque => format!(
            "producer: {w}x{h} RGBA8 image exportable as an opaque fd only (no dma-buf export here), {} bytes",
            desc.size
        ),
    });
    let imported = match shared.export_fd(producer).and_then(|fd| SharedImage::import(consumer, fd, desc)) {
        Ok(i) => i,
        Err(e) => {
            shared.destroy(producer);
            return Err(e);
        }
    };
    say(format!("consumer: imported it as {:?} with the producer's layout", desc.handle_type()));
    let mut scene = Scene::new(producer, consumer, shared, imported, w, h)?;
    let app_waited = desc.handle_type() != vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    if app_waited {
        say("no dma-buf, so nothing for implicit sync: the application waits for the producer itself".into());
    }
    let frames: Result<Vec<_>> = scene.ready_import(consumer).and_then(|_| {
        // llvmpipe compiles shaders at their first draw and dispatch, which
        // under emulation takes seconds: a warm-up frame the application
        // waits for, not shown, keeps that out of the frames that race.
        scene.frame(producer, consumer, 0, true, opts, true)?;
        say("warm-up frame drawn and sampled, the application waiting (shaders compile at first use)".into());
        (0..opts.frames)
            .map(|f| {
                let shown = scene.frame(producer, consumer, f, false, opts, app_waited)?;
                say(shown.describe(f));
                Ok(shown)
            })
            .collect()
    });
    scene.destroy(producer, consumer);
    Ok(Shown { desc, app_waited, frames: frames? })
}

impl Scene {
    fn new(
        producer: &Client,
        consumer: &Client,
        shared: SharedImage,
        imported: SharedImage,
        w: u32,
        h: u32,
    ) -> Result<Self> {
        let produce = match Side::new(producer, shared, w, h) {
            Ok(side) => side,
            Err(e) => {
                imported.destroy(consumer);
                return Err(e);
            }
        };
        let consume = match Side::new(consumer, imported, w, h) {
            Ok(side) => side,
            Err(e) => {
                produce.destroy(producer);
                return Err(e);
            }
        };
        match Painter::new(producer, produce.image.image, w, h) {
            Ok(painter) => Ok(Scene { produce, consume, painter }),
            Err(e) => {
                produce.destroy(producer);
                consume.destroy(consumer);
                Err(e)
            }
        }
    }

    /// Records, submits and reads back frame `frame` (`first`: the
    /// producer's first use of the image); `app_waits`: the application
    /// waits for the producer before submitting the consumer's work.
    fn frame(
        &mut self,
        producer: &Client,
        consumer: &Client,
        frame: u32,
        first: bool,
        opts: Options,
        app_waits: bool,
    ) -> Result<Frame> {
        self.record_producer(producer, frame, first, opts)?;
        self.record_consumer(consumer, opts)?;
        let start = Instant::now();
        self.produce.commands.submit(producer)?;
        if app_waits {
            self.produce.commands.wait(producer)?;
        }
        self.consume.commands.submit(consumer)?;
        self.consume.commands.wait(consumer)?;
        if !app_waits {
            self.produce.commands.wait(producer)?;
        }
        let millis = start.elapsed().as_secs_f64() * 1e3;
        // Both fences waited: the host may read both buffers.
        Ok(Frame { produced: self.produce.texels.read()?, seen: self.consume.texels.read()?, millis })
    }

    /// Acquire (or, at the first use, a first layout), paint, sample for
    /// the host, release.
    fn record_producer(&self, c: &Client, frame: u32, first: bool, opts: Options) -> Result<()> {
        let (d, cb, image, family) =
            (&c.device, self.produce.commands.cb, self.produce.image.image, c.family);
        self.produce.commands.begin(c)?;
        let (colour_out, compute) =
            (vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT, vk::PipelineStageFlags2::COMPUTE_SHADER);
        let colour_write = vk::AccessFlags2::COLOR_ATTACHMENT_WRITE;
        let (old, families) = match first {
            true => (vk::ImageLayout::UNDEFINED, (IGNORED, IGNORED)),
            false => (vk::ImageLayout::GENERAL, (FOREIGN, family)),
        };
        let layouts = (old, vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL);
        let access = (vk::AccessFlags2::NONE, colour_write);
        let stages = (vk::PipelineStageFlags2::NONE, colour_out);
        image_barrier(d, cb, image, Transition { layouts, families, access, stages });
        self.painter.record(d, cb, frame, opts.paint_work);
        let layouts = (vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL, vk::ImageLayout::GENERAL);
        let access = (colour_write, vk::AccessFlags2::SHADER_SAMPLED_READ);
        image_barrier(
            d,
            cb,
            image,
            Transition { layouts, families: (IGNORED, IGNORED), access, stages: (colour_out, compute) },
        );
        self.produce.scanout.record(d, cb, 0);
        self.release_and_finish(c, &self.produce)
    }

    /// Acquire for reading, sample, release (the image unwritten).
    fn record_consumer(&self, c: &Client, opts: Options) -> Result<()> {
        let (d, cb, image, family) =
            (&c.device, self.consume.commands.cb, self.consume.image.image, c.family);
        self.consume.commands.begin(c)?;
        let layouts = (vk::ImageLayout::GENERAL, vk::ImageLayout::GENERAL);
        let access = (vk::AccessFlags2::NONE, vk::AccessFlags2::SHADER_SAMPLED_READ);
        let stages = (vk::PipelineStageFlags2::NONE, vk::PipelineStageFlags2::COMPUTE_SHADER);
        image_barrier(d, cb, image, Transition { layouts, families: (FOREIGN, family), access, stages });
        self.consume.scanout.record(d, cb, opts.scan_work);
        self.release_and_finish(c, &self.consume)
    }

    /// Ends `side`'s recording after its sampling pass: releases the image
    /// (in `GENERAL`) to the outside and makes the sampled texels visible
    /// to the host.
    fn release_and_finish(&self, c: &Client, side: &Side) -> Result<()> {
        let (d, cb) = (&c.device, side.commands.cb);
        let compute = vk::PipelineStageFlags2::COMPUTE_SHADER;
        let layouts = (vk::ImageLayout::GENERAL, vk::ImageLayout::GENERAL);
        let none = (vk::AccessFlags2::NONE, vk::AccessFlags2::NONE);
        let stages = (compute, vk::PipelineStageFlags2::NONE);
        image_barrier(
            d,
            cb,
            side.image.image,
            Transition { layouts, families: (c.family, FOREIGN), access: none, stages },
        );
        host_read_barrier(d, cb, compute, vk::AccessFlags2::SHADER_STORAGE_WRITE);
        side.commands.end(c)
    }

    /// Before the first frame (the image holds nothing yet): the consumer
    /// takes its fresh import out of `UNDEFINED` (implicitly owning it, as
    /// a first use does) and hands it to the outside, so that every frame
    /// acquires it in `GENERAL`, keeping what the producer drew.
    fn ready_import(&self, c: &Client) -> Result<()> {
        let (d, cb, image, family) =
            (&c.device, self.consume.commands.cb, self.consume.image.image, c.family);
        self.consume.commands.begin(c)?;
        let none = (vk::AccessFlags2::NONE, vk::AccessFlags2::NONE);
        let all = (vk::PipelineStageFlags2::ALL_COMMANDS, vk::PipelineStageFlags2::ALL_COMMANDS);
        let layouts = (vk::ImageLayout::UNDEFINED, vk::ImageLayout::GENERAL);
        image_barrier(
            d,
            cb,
            image,
            Transition { layouts, families: (IGNORED, IGNORED), access: none, stages: all },
        );
        let layouts = (vk::ImageLayout::GENERAL, vk::ImageLayout::GENERAL);
        image_barrier(
            d,
            cb,
            image,
            Transition { layouts, families: (family, FOREIGN), access: none, stages: all },
        );
        self.consume.commands.end(c)?;
        self.consume.commands.submit(c)?;
        self.consume.commands.wait(c)
    }

    fn destroy(self, producer: &Client, consumer: &Client) {
        self.painter.destroy(producer);
        self.produce.destroy(producer);
        self.consume.destroy(consumer);
    }
}
