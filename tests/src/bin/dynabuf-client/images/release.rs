//! `image-release`: an image the GPU writes and releases to FOREIGN, read
//! by a peer that looks at the dma-bufs right after `vkQueueSubmit`
//! returns, waiting for their fences as any non-Vulkan reader would
//! (`poll`) before it reads the pixels.
//!
//! lavapipe's SYNC_FD export returns only once the submission has run up
//! to its signal, so under the layer `vkQueueSubmit` returns with the
//! release fence already in the dma-buf (the layer's debug log names each
//! dma-buf it publishes into); a GPU wait inside the submission (an event,
//! a semaphore) would make the layer publish late (`blocking` tests).
//! Without the layer, the peek catches the GPU before it has written.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use ash::vk;
use dynabuf_client::compute::StorageBuffer;
use dynabuf_client::dmabuf::wait_for_writers;
use dynabuf_client::image::commands::{self, OneShot, Staging, Transfer};
use dynabuf_client::image::pixels::{self, expect_plane};
use dynabuf_client::image::planar::is_multi_planar;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{aspect_named, covered, image_client, Kind};
use crate::arg;
use crate::robustness::say;

/// Words of the buffer each submission fills before it writes the image
/// (32 MiB: tens of milliseconds under TCG), so that without the layer the
/// peer's look right after `vkQueueSubmit` comes before the image's write.
const SCRATCH_WORDS: u32 = 8 << 20;

/// `image-release KIND ASPECT [ROUNDS]`: ROUNDS (default 3) submissions,
/// each acquiring ASPECT from FOREIGN (from `UNDEFINED`: the content is
/// the client's to replace), filling a 32 MiB scratch buffer, writing the
/// planes ASPECT names (a clear for a
/// single-plane image, a copy from a buffer per plane otherwise; new
/// texels each round) and releasing ASPECT to FOREIGN. Right after each
/// `vkQueueSubmit` returns the client, as a peer, asks each released
/// plane's dma-buf whether it is busy, waits (`poll`, up to 10 s) for its
/// writers, and checks the plane's pixels: the round's. Prints
/// `round=R busy=N` and, at the end, `image_release_ok=true`; a wrong texel
/// fails.
pub fn cmd_image_release(args: &[String]) -> Result<()> {
    let kind = Kind::parse(args.first())?;
    let aspect = aspect_named(kind.format, args.get(1).map_or("color", String::as_str))?;
    let rounds = arg(args, 2, 3);
    let c = image_client()?;
    let shared = Shared::new(&c, kind)?;
    say(&format!("setup {}", shared.describe(&c)));
    let mut staging = Staging::new(&c, &shared.planes)?;
    let scratch = StorageBuffer::new(&c, SCRATCH_WORDS);
    let outcome = scratch.and_then(|scratch| {
        let r = (0..rounds)
            .try_for_each(|round| release(&c, &shared, &mut staging, scratch.buffer, aspect, round));
        scratch.destroy(&c);
        r
    });
    staging.destroy(&c);
    shared.destroy(&c);
    outcome?;
    say("image_release_ok=true");
    Ok(())
}

/// What the GPU writes into plane `i` in `round`.
fn written(shared: &Shared, i: usize, round: u32) -> Vec<u8> {
    let plane = &shared.planes[i];
    match is_multi_planar(shared.kind.format) {
        true => pixels::gpu_plane(i, round, plane),
        false => pixels::cleared(plane, pixels::clear_color(round)),
    }
}

fn release(
    c: &Client,
    shared: &Shared,
    staging: &mut Staging,
    scratch: vk::Buffer,
    aspect: vk::ImageAspectFlags,
    round: u32,
) -> Result<()> {
    let planes = covered(shared, aspect);
    for &i in &planes {
        staging.set_plane(i, &written(shared, i, round))?;
    }
    let (image, family, general) = (shared.image.image, c.family, vk::ImageLayout::GENERAL);
    let acquire = Transfer {
        old_layout: vk::ImageLayout::UNDEFINED,
        ..Transfer::general(aspect, vk::AccessFlags::TRANSFER_WRITE)
    };
    let shot = OneShot::record(c, |d, cb| {
        commands::acquire(d, cb, image, family, acquire);
        commands::busy_work(d, cb, scratch);
        for &i in &planes {
            match is_multi_planar(shared.kind.format) {
                true => commands::copy_from_buffer(d, cb, staging.at(i), (image, general), &shared.planes[i]),
                false => commands::clear(d, cb, (image, general), pixels::clear_color(round)),
            }
        }
        commands::release(d, cb, image, family, Transfer::general(aspect, vk::AccessFlags::TRANSFER_WRITE));
    })?;
    let outcome = shot.submit(c).and_then(|_| {
        let peeked = peer_reads(shared, &planes, round);
        // Whatever the peer saw, the submission ends before the next.
        shot.wait(c).and(peeked)
    });
    shot.destroy(c);
    outcome
}

/// The peer, right after the submission: for each released plane, waits
/// for its dma-buf's writers and reads the plane.
fn peer_reads(shared: &Shared, planes: &[usize], round: u32) -> Result<()> {
    let t = Instant::now();
    let mut busy = 0;
    for &i in planes {
        let fd = shared.buf_of_plane(i).fd.as_fd();
        if !wait_for_writers(fd, Duration::ZERO)? {
            busy += 1;
            if !wait_for_writers(fd, Duration::from_secs(10))? {
                return Err(Error(format!("round {round}: plane {i}'s dma-buf stayed busy for 10 s")));
            }
        }
        let old = shared.plane_with(i, pixels::old)?;
        let before = match round {
            0 => old.clone(),
            r => written(shared, i, r - 1),
        };
        let what = format!(
            "round {round}: the peer read plane {i} {} us after vkQueueSubmit",
            t.elapsed().as_micros()
        );
        let others = [("old content", &old[..]), ("the previous round's", &before[..])];
        expect_plane(&what, &shared.planes[i], &shared.plane_now(i)?, &written(shared, i, round), &others)?;
    }
    say(&format!("round={round} busy={busy}"));
    Ok(())
}
