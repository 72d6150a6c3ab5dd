//! `image-frames`: many frames of one image shared with a foreign writer,
//! for dynamic attachments (`DYNABUF_ATTACH=dynamic`, evicted at every
//! submission) against pinned ones and no layer at all: each frame the
//! foreign writer puts new content into every dma-buf behind a write
//! fence, the GPU acquires the image, transforms part of it and releases
//! it, and the CPU, once the dma-bufs' fences have signalled, checks every
//! byte of every dma-buf.

use std::time::Duration;

use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader, StorageBuffer};
use dynabuf_client::dmabuf::wait_for_writers;
use dynabuf_client::image::commands::{self, Staging, Transfer};
use dynabuf_client::image::pixels::{self, plane_bytes, to_bytes, to_words};
use dynabuf_client::image::{Plane, PlaneLayout};
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{aspect_named, image_client, scenarios, Foreign, Kind, Tell};

/// How long the foreign writer holds its fence before it writes a frame.
const HOLD: Duration = Duration::from_millis(15);

/// The words the foreign writer puts into every dma-buf in frame `f`.
fn content(f: u32) -> impl Fn(u32) -> u32 + Send + 'static {
    move |i| fill_expected(i, 0xd1ce_0000 ^ f.wrapping_mul(0x9e37_79b9))
}

/// What the GPU adds to every word it transforms in frame `f`: every byte
/// of a word changes (each addend byte is 1..=200, a carry at most 1).
fn addend(f: u32) -> u32 {
    (f % 200 + 1) * 0x0101_0101
}

/// The texels of a plane the GPU writes back in frame `f`: the whole plane
/// every fourth frame, else a quarter of it at a frame-dependent place.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

fn rect(plane: &Plane, f: u32) -> Rect {
    let (pw, ph) = (plane.width, plane.height);
    if f % 4 == 0 {
        return Rect { x: 0, y: 0, w: pw, h: ph };
    }
    let (w, h) = (pw / 2, ph / 2);
    Rect { x: (f * 5) % (pw - w + 1), y: (f * 3) % (ph - h + 1), w, h }
}

/// `image-frames SCENARIO...`, each `KIND,ASPECT,FRAMES`: FRAMES frames
/// on one imported image. Each frame a foreign writer (a thread holding a
/// vgem write fence on each of the image's dma-bufs for 15 ms) writes
/// [`content`]; one submission acquires ASPECT (`color`, `planes`) from
/// FOREIGN, copies every plane to a buffer, adds [`addend`] to its words,
/// copies the frame's [`rect`] of each plane back and releases ASPECT to
/// FOREIGN. Right after `vkQueueSubmit` the CPU, as a peer, waits (`poll`)
/// for each dma-buf's writers and reads it: every byte must be the
/// frame's content, but for the rectangles, the content plus the addend.
/// Says `frame=F checksum=X` (of every dma-buf's bytes) per exact frame;
/// a scenario ends at its first wrong frame.
pub fn cmd_image_frames(args: &[String]) -> Result<()> {
    let c = image_client()?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    // llvmpipe compiles a shader when it first runs it: seconds under TCG,
    // longer than the layer waits for its release fence's export (then
    // published late, and the peer would find the dma-buf idle too soon).
    warm_up(&c, &kernel)?;
    let outcome = scenarios(args, "image_frames_ok", |tell, fields| {
        let kind = Kind::parse(fields.first())?;
        let aspect = aspect_named(kind.format, fields.get(1).copied().unwrap_or("color"))?;
        let frames: u32 = fields
            .get(2)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error(format!("FRAMES {:?}: expected a number", fields.get(2))))?;
        let shared = Shared::new(&c, kind)?;
        tell.say(&format!("setup {}", shared.describe(&c)));
        let outcome = Staging::new(&c, &shared.planes).and_then(|staging| {
            let r = shared.to_general(&c).and_then(|_| {
                (0..frames).try_for_each(|f| frame(&c, tell, &shared, &staging, &kernel, aspect, f))
            });
            staging.destroy(&c);
            r
        });
        shared.destroy(&c);
        outcome
    });
    kernel.destroy(&c);
    outcome
}

/// Runs `kernel` once on a buffer of its own.
fn warm_up(c: &Client, kernel: &Kernel) -> Result<()> {
    let buffer = StorageBuffer::new(c, 64)?;
    let ran = Job::new(c, kernel, buffer.buffer, Push { seed: 1, count: 64 }).and_then(|job| {
        let r = job.run(c, c.queues[0]);
        job.destroy(c);
        r
    });
    buffer.destroy(c);
    ran
}

/// Records a memory dependency between two (stage, access) scopes.
fn dependency(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    src: (vk::PipelineStageFlags, vk::AccessFlags),
    dst: (vk::PipelineStageFlags, vk::AccessFlags),
) {
    let b = [vk::MemoryBarrier::default().src_access_mask(src.1).dst_access_mask(dst.1)];
    // SAFETY: a command buffer in the recording state.
    unsafe { d.cmd_pipeline_barrier(cb, src.0, dst.0, vk::DependencyFlags::empty(), &b, &[], &[]) }
}

/// The copy of `rect` of `plane` from its packed texels at `offset`.
fn rect_region(plane: &Plane, offset: u64, r: Rect) -> vk::BufferImageCopy {
    let first = u64::from(r.y * plane.width + r.x) * u64::from(plane.texel_bytes);
    vk::BufferImageCopy::default()
        .buffer_offset(offset + first)
        .buffer_row_length(plane.width)
        .buffer_image_height(plane.height)
        .image_subresource(vk::ImageSubresourceLayers {
            aspect_mask: plane.aspect,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        })
        .image_offset(vk::Offset3D { x: r.x as i32, y: r.y as i32, z: 0 })
        .image_extent(vk::Extent3D { width: r.w, height: r.h, depth: 1 })
}

/// One frame's submission: acquire, planes to the staging buffer, add,
/// the rectangles back, release.
fn record(
    c: &Client,
    shared: &Shared,
    staging: &Staging,
    kernel: &Kernel,
    aspect: vk::ImageAspectFlags,
    f: u32,
) -> Result<Job> {
    let (image, family, general) = (shared.image.image, c.family, vk::ImageLayout::GENERAL);
    let rw = vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE;
    let words = (staging.buffer.len, staging.buffer.buffer);
    let transfer = |access| (vk::PipelineStageFlags::TRANSFER, access);
    let shader = |access| (vk::PipelineStageFlags::COMPUTE_SHADER, access);
    let planes = &shared.planes;
    Job::with_barriers(
        c,
        kernel,
        words.1,
        Push { seed: addend(f), count: words.0 },
        |d, cb| {
            commands::acquire(d, cb, image, family, Transfer::general(aspect, rw));
            for (i, plane) in planes.iter().enumerate() {
                commands::copy_to_buffer(d, cb, (image, general), plane, staging.at(i));
            }
            let all = vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE;
            dependency(d, cb, transfer(vk::AccessFlags::TRANSFER_WRITE), shader(all));
        },
        |d, cb| {
            dependency(
                d,
                cb,
                shader(vk::AccessFlags::SHADER_WRITE),
                transfer(vk::AccessFlags::TRANSFER_READ),
            );
            for (i, plane) in planes.iter().enumerate() {
                let region = [rect_region(plane, staging.offsets[i], rect(plane, f))];
                // SAFETY: a command buffer in the recording state; the
                // region lies in both the staging buffer and the plane.
                unsafe { d.cmd_copy_buffer_to_image(cb, words.1, image, general, &region) };
            }
            commands::release(
                d,
                cb,
                image,
                family,
                Transfer::general(aspect, vk::AccessFlags::TRANSFER_WRITE),
            );
        },
    )
}

/// Runs frame `f` and checks it.
fn frame(
    c: &Client,
    tell: Tell,
    shared: &Shared,
    staging: &Staging,
    kernel: &Kernel,
    aspect: vk::ImageAspectFlags,
    f: u32,
) -> Result<()> {
    let job = record(c, shared, staging, kernel, aspect, f)?;
    let seen = shared
        .bufs
        .iter()
        .map(|b| Foreign::writing(b, true, HOLD, Some(content(f))))
        .collect::<Result<Vec<_>>>()
        .and_then(|writers| {
            let seen = job.submit(c, c.queues[0]).and_then(|_| peer_reads(shared, f));
            // Whatever the peer saw, the GPU and the writers finish first.
            let waited = job.wait(c);
            let joined = writers.into_iter().map(Foreign::join).collect::<Result<Vec<_>>>();
            waited.and(joined).and(seen)
        });
    job.destroy(c);
    let seen = seen?;
    let want = expected(shared, f)?;
    for (k, (got, want)) in seen.iter().zip(&want).enumerate() {
        if got != want {
            return Err(Error(format!("frame {f}: {}", wrong(shared, k, got, want, f)?)));
        }
    }
    let sum = seen
        .iter()
        .flatten()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    tell.say(&format!("frame={f} checksum={sum:#x}"));
    Ok(())
}

/// The peer, right after the submission: waits (up to 10 s) for each
/// dma-buf's writers and reads it at once.
fn peer_reads(shared: &Shared, f: u32) -> Result<Vec<Vec<u8>>> {
    let mut seen = Vec::new();
    for (k, b) in shared.bufs.iter().enumerate() {
        if !wait_for_writers(std::os::fd::AsFd::as_fd(&b.fd), Duration::from_secs(10))? {
            return Err(Error(format!("frame {f}: buf{k} stayed busy for 10 s")));
        }
        seen.push(b.read()?);
    }
    Ok(seen)
}

/// Each dma-buf's bytes after frame `f`: the frame's content, the planes'
/// rectangles plus the addend.
fn expected(shared: &Shared, f: u32) -> Result<Vec<Vec<u8>>> {
    let mut all: Vec<Vec<u8>> = shared.bufs.iter().map(|b| pixels::pattern(content(f), b.size)).collect();
    for (i, plane) in shared.planes.iter().enumerate() {
        let (layout, bytes) = (&shared.image.layouts[i], &mut all[shared.buf_index_of_plane(i)]);
        let texels = plane_bytes(bytes, plane, layout)?;
        let added =
            to_bytes(&to_words(&texels).iter().map(|w| w.wrapping_add(addend(f))).collect::<Vec<_>>());
        let r = rect(plane, f);
        let tb = plane.texel_bytes as usize;
        let row = plane.row_bytes() as usize;
        for y in r.y as usize..(r.y + r.h) as usize {
            let texel_at = layout.offset as usize + y * layout.row_pitch as usize + r.x as usize * tb;
            let packed_at = y * row + r.x as usize * tb;
            let n = r.w as usize * tb;
            bytes[texel_at..texel_at + n].copy_from_slice(&added[packed_at..packed_at + n]);
        }
    }
    Ok(all)
}

/// What is wrong in dma-buf `k`: how many bytes, in which planes (or
/// outside them), the first one, and whether it holds the frame's content
/// as the writer left it (the GPU's write is missing) or the previous
/// frame's result (stale).
fn wrong(shared: &Shared, k: usize, got: &[u8], want: &[u8], f: u32) -> Result<String> {
    let where_ = |at: usize| -> String {
        for (i, plane) in shared.planes.iter().enumerate() {
            let l: &PlaneLayout = &shared.image.layouts[i];
            let rel = at as u64;
            if shared.buf_index_of_plane(i) != k || rel < l.offset {
                continue;
            }
            let (y, x) = ((rel - l.offset) / l.row_pitch, (rel - l.offset) % l.row_pitch);
            if y < u64::from(plane.height) && x < plane.row_bytes() {
                return format!("plane {i} texel ({}, {y})", x / u64::from(plane.texel_bytes));
            }
        }
        "outside every plane".into()
    };
    let bad: Vec<usize> = (0..want.len()).filter(|&b| got.get(b) != want.get(b)).collect();
    let mut per_place = std::collections::BTreeMap::<String, usize>::new();
    for &b in &bad {
        *per_place.entry(where_(b).split(" texel").next().unwrap_or_default().to_string()).or_default() += 1;
    }
    let first = bad[0];
    let raw = pixels::pattern(content(f), want.len() as u64);
    let before = match f {
        0 => Vec::new(),
        p => expected(shared, p - 1)?.swap_remove(k),
    };
    let holds = |name: &str, other: &[u8]| {
        let n = bad.iter().filter(|&&b| other.get(b) == got.get(b)).count();
        format!("{n} hold {name}")
    };
    Ok(format!(
        "buf{k}: {} of {} bytes wrong {per_place:?}; first at byte {first} ({}): {:#04x}, expected {:#04x}; \
         of the wrong bytes {}, {}",
        bad.len(),
        want.len(),
        where_(first),
        got[first],
        want[first],
        holds("the frame's content without the GPU's write", &raw),
        holds("the previous frame's result", &before)
    ))
}
