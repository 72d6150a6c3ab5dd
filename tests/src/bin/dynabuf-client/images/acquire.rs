//! `image-acquire`: an image acquired from FOREIGN while foreign fences
//! are pending on (some of) its dma-bufs.

use std::time::{Duration, Instant};

use ash::vk;
use dynabuf_client::image::commands::{self, Staging, Transfer};
use dynabuf_client::image::pixels::{self, expect_plane};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{aspect_named, covered, fenced_bufs, image_client, scenarios, Foreign, Kind, Tell};

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

/// `image-acquire SCENARIO...`, each `KIND,MODE,ASPECT,FENCED` (MODE:
/// `read`, `write`, `transition` or `keep`): the CPU fills the image's
/// dma-bufs with [`pixels::old`]; a foreign fence (a write fence for
/// `read`/`write`, a read fence otherwise) is attached to the dma-buf of
/// every plane FENCED names (`all`, `p0`, `p1`, `p2`); the client submits
/// one command buffer that acquires ASPECT (`color`, `planes`, `p0`,
/// `p0+p2`, ...) from FOREIGN and copies each acquired plane to a buffer
/// (or, `write`, a buffer into it); 300 ms later (200 ms more for each
/// earlier fenced dma-buf) a foreign writer writes [`pixels::new`] into
/// each fenced dma-buf (for write fences) and signals. Says `done early=B`
/// (B: the submission finished before the first fence signalled) and
/// checks the pixels: `read`: fenced planes hold the new content, the
/// others the old; `write`: the GPU's texels.
pub fn cmd_image_acquire(args: &[String]) -> Result<()> {
    let c = image_client()?;
    scenarios(args, "image_acquire_ok", |tell, fields| {
        let kind = Kind::parse(fields.first())?;
        let mode = match fields.get(1).copied() {
            Some("read") => Mode::Read,
            Some("write") => Mode::Write,
            Some("transition") => Mode::Transition,
            Some("keep") => Mode::Keep,
            other => return Err(Error(format!("mode {other:?}: expected read, write, transition or keep"))),
        };
        let aspect = aspect_named(kind.format, fields.get(2).copied().unwrap_or("color"))?;
        let shared = Shared::new(&c, kind)?;
        let outcome = fenced_bufs(&shared, fields.get(3).copied().unwrap_or("all")).and_then(|fenced| {
            tell.say(&format!("setup {} fenced={fenced:?}", shared.describe(&c)));
            let mut staging = Staging::new(&c, &shared.planes)?;
            let r = acquire(&c, tell, &shared, &mut staging, mode, aspect, &fenced);
            staging.destroy(&c);
            r
        });
        shared.destroy(&c);
        outcome
    })
}

fn acquire(
    c: &Client,
    tell: Tell,
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
    // The image has been in GENERAL since its first use (content kept).
    shared.to_general(c)?;
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
    let shot = commands::record(c, |d, cb| {
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
        tell.say(&format!("done early={early} elapsed_ms={}", done.duration_since(t).as_millis()));
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
