//! `image-acquire`: an image acquired from FOREIGN while foreign fences
//! are pending on (some of) its dma-bufs.

use std::time::{Duration, Instant};

use ash::vk;
use dynabuf_client::image::commands::{self, OneShot, Staging, Transfer};
use dynabuf_client::image::pixels::{self, expect_plane};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{aspect_named, covered, fenced_bufs, image_client, Foreign, Kind};
use crate::robustness::say;

/// How long the foreign writer of the last fenced dma-buf holds its fence
/// after the submission; each earlier one holds it `STAGGER` longer.
const HOLD: Duration = Duration::from_millis(300);
const STAGGER: Duration = Duration::from_millis(200);

/// What the acquiring submission does with the planes it acquires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reads them (copy to a buffer): they must hold the foreign writer's
    /// content. A foreign write fence.
    Read,
    /// Writes them (copy from a buffer): the GPU's texels must survive the
    /// foreign writer's late write. A foreign write fence.
    Write,
    /// Reads them after an acquire with a layout transition (GENERAL →
    /// TRANSFER_SRC_OPTIMAL), which writes the image. A foreign read fence.
    Transition,
    /// Reads them after an acquire that keeps the layout and only reads. A
    /// foreign read fence.
    Keep,
}

/// `image-acquire KIND read|write|transition|keep ASPECT FENCED`: the CPU
/// fills the image's dma-bufs with [`pixels::old`]; a foreign fence (a
/// write fence for `read`/`write`, a read fence otherwise) is attached to
/// the dma-buf of every plane FENCED names (`all`, `p0`, `p1`, `p2`); the
/// client submits one command buffer that acquires ASPECT (`color`,
/// `planes`, `p0`, ...) from FOREIGN and copies each acquired plane to a
/// buffer (or, `write`, a buffer into it); 300 ms later (200 ms more for
/// each earlier fenced dma-buf) a foreign writer writes [`pixels::new`]
/// into each fenced dma-buf (for write fences) and signals. Prints `done
/// early=B` (B: the submission finished before the first fence signalled)
/// and checks the pixels: `read`: fenced planes hold the new content, the
/// others the old; `write`: the GPU's texels.
/// Ends with `image_acquire_ok=true`; a wrong texel fails.
pub fn cmd_image_acquire(args: &[String]) -> Result<()> {
    let kind = Kind::parse(args.first())?;
    let mode = match args.get(1).map(String::as_str) {
        Some("read") => Mode::Read,
        Some("write") => Mode::Write,
        Some("transition") => Mode::Transition,
        Some("keep") => Mode::Keep,
        other => return Err(Error(format!("mode {other:?}: expected read, write, transition or keep"))),
    };
    let aspect = aspect_named(kind.format, args.get(2).map_or("color", String::as_str))?;
    let c = image_client()?;
    let shared = Shared::new(&c, kind)?;
    let fenced = fenced_bufs(&shared, args.get(3).map_or("all", String::as_str))?;
    say(&format!("setup {} fenced={fenced:?}", shared.describe(&c)));
    let mut staging = Staging::new(&c, &shared.planes)?;
    let outcome = acquire(&c, &shared, &mut staging, mode, aspect, &fenced);
    staging.destroy(&c);
    shared.destroy(&c);
    outcome?;
    say("image_acquire_ok=true");
    Ok(())
}

fn acquire(
    c: &Client,
    shared: &Shared,
    staging: &mut Staging,
    mode: Mode,
    aspect: vk::ImageAspectFlags,
    fenced: &[usize],
) -> Result<()> {
    let planes = covered(shared, aspect);
    for &i in &planes {
        staging.set_plane(i, &pixels::gpu_plane(i, 0, &shared.planes[i]))?;
    }
    let (image, family) = (shared.image.image, c.family);
    let general = vk::ImageLayout::GENERAL;
    let (transfer, layout) = match mode {
        Mode::Read | Mode::Keep => (Transfer::general(aspect, vk::AccessFlags::TRANSFER_READ), general),
        Mode::Write => (Transfer::general(aspect, vk::AccessFlags::TRANSFER_WRITE), general),
        Mode::Transition => {
            let src = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
            let t = Transfer {
                old_layout: general,
                new_layout: src,
                ..Transfer::general(aspect, vk::AccessFlags::TRANSFER_READ)
            };
            (t, src)
        }
    };
    let shot = OneShot::record(c, |d, cb| {
        commands::acquire(d, cb, image, family, transfer);
        for &i in &planes {
            let plane = &shared.planes[i];
            match mode {
                Mode::Write => commands::copy_from_buffer(d, cb, staging.at(i), (image, layout), plane),
                _ => commands::copy_to_buffer(d, cb, (image, layout), plane, staging.at(i)),
            }
        }
        commands::to_host(d, cb);
    })?;
    let write_fence = matches!(mode, Mode::Read | Mode::Write);
    // Staggered: the first plane's dma-buf signals last, so a layer that
    // waited only for the last binding's dma-buf lets the GPU read too soon.
    let writers = fenced
        .iter()
        .enumerate()
        .map(|(k, &b)| {
            let hold = HOLD + STAGGER * (fenced.len() - 1 - k) as u32;
            Foreign::start(&shared.bufs[b], write_fence, hold, write_fence)
        })
        .collect::<Result<Vec<_>>>();
    let ran = writers.and_then(|writers| {
        let t = Instant::now();
        let submitted = shot.submit(c);
        let waited = submitted.and_then(|_| shot.wait(c));
        let done = Instant::now();
        // Every writer finishes (and signals) whatever happened above.
        let signals = writers.into_iter().map(Foreign::join).collect::<Result<Vec<_>>>()?;
        waited?;
        let early = signals.iter().min().is_some_and(|first| done < *first);
        say(&format!("done early={early} elapsed_ms={}", done.duration_since(t).as_millis()));
        Ok(())
    });
    shot.destroy(c);
    ran?;
    check(shared, staging, mode, &planes, fenced)
}

/// The pixels after the acquire: what each mode expects of each plane.
fn check(
    shared: &Shared,
    staging: &mut Staging,
    mode: Mode,
    planes: &[usize],
    fenced: &[usize],
) -> Result<()> {
    for &i in planes {
        let plane = &shared.planes[i];
        let (old, new) = (shared.plane_with(i, pixels::old)?, shared.plane_with(i, pixels::new)?);
        let gpu = pixels::gpu_plane(i, 0, plane);
        let others = [("old content", &old[..]), ("new content", &new[..]), ("the GPU's texels", &gpu[..])];
        match mode {
            Mode::Write => {
                let what = format!("plane {i} after the GPU's write and the foreign writer's");
                expect_plane(&what, plane, &shared.plane_now(i)?, &gpu, &others)?;
            }
            _ => {
                let fresh = mode == Mode::Read && fenced.contains(&shared.buf_index_of_plane(i));
                let want = if fresh { &new } else { &old };
                expect_plane(
                    &format!("plane {i} as the GPU read it"),
                    plane,
                    &staging.plane(i)?,
                    want,
                    &others,
                )?;
            }
        }
    }
    Ok(())
}
