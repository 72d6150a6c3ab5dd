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
use dynabuf_client::image::commands::{self, Staging, Transfer};
use dynabuf_client::image::pixels::{self, expect_plane};
use dynabuf_client::image::planar::is_multi_planar;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{aspect_named, covered, image_client, scenarios, Kind, Tell};

/// Words of the buffer each submission fills before it writes the image
/// (16 MiB: tens of milliseconds under TCG), so that without the layer the
/// peer's look right after `vkQueueSubmit` (well within a millisecond)
/// comes before the image's write.
const SCRATCH_WORDS: u32 = 4 << 20;

/// Submissions per scenario.
const ROUNDS: u32 = 2;

/// `image-release SCENARIO...`, each `KIND,ASPECT`: two submissions, each
/// acquiring ASPECT from FOREIGN (from `UNDEFINED`: the content is the
/// client's to replace), filling a 16 MiB scratch buffer, writing the
/// planes ASPECT names (a clear for a single-plane image, a copy from a
/// buffer per plane otherwise; new texels each round) and releasing ASPECT
/// to FOREIGN. Right after each `vkQueueSubmit` returns the client, as a
/// peer, asks each released plane's dma-buf whether it is busy, waits
/// (`poll`, up to 10 s) for its writers, and checks the plane's pixels:
/// the round's. Says `round=R busy=N` per submission.
pub fn cmd_image_release(args: &[String]) -> Result<()> {
    let c = image_client()?;
    let scratch = StorageBuffer::new(&c, SCRATCH_WORDS)?;
    let outcome = scenarios(args, "image_release_ok", |tell, fields| {
        let kind = Kind::parse(fields.first())?;
        let aspect = aspect_named(kind.format, fields.get(1).copied().unwrap_or("color"))?;
        let shared = Shared::new(&c, kind)?;
        tell.say(&format!("setup {}", shared.describe(&c)));
        let outcome = Staging::new(&c, &shared.planes).and_then(|mut staging| {
            let r = (0..ROUNDS).try_for_each(|round| {
                release(&c, tell, &shared, &mut staging, scratch.buffer, aspect, round)
            });
            staging.destroy(&c);
            r
        });
        shared.destroy(&c);
        outcome
    });
    scratch.destroy(&c);
    outcome
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
    tell: Tell,
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
    let shot = commands::record(c, |d, cb| {
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
        let peeked = peer_reads(tell, shared, &planes, round);
        // Whatever the peer saw, the submission ends before the next.
        shot.wait(c).and(peeked)
    });
    shot.destroy(c);
    outcome
}

/// The peer, right after the submission: for each released plane, waits
/// for its dma-buf's writers and reads the plane at once; only then works
/// out what it should have read.
fn peer_reads(tell: Tell, shared: &Shared, planes: &[usize], round: u32) -> Result<()> {
    let t = Instant::now();
    let mut busy = 0;
    let mut seen = Vec::new();
    for &i in planes {
        let fd = shared.buf_of_plane(i).fd.as_fd();
        if !wait_for_writers(fd, Duration::ZERO)? {
            busy += 1;
            if !wait_for_writers(fd, Duration::from_secs(10))? {
                return Err(Error(format!("round {round}: plane {i}'s dma-buf stayed busy for 10 s")));
            }
        }
        seen.push((i, shared.plane_now(i)?, t.elapsed().as_micros()));
    }
    for (i, got, us) in seen {
        let old = shared.plane_with(i, pixels::old)?;
        let before = match round {
            0 => old.clone(),
            r => written(shared, i, r - 1),
        };
        let what = format!("round {round}: the peer read plane {i} {us} us after vkQueueSubmit");
        let others = [("old content", &old[..]), ("the previous round's", &before[..])];
        expect_plane(&what, &shared.planes[i], &got, &written(shared, i, round), &others)?;
    }
    tell.say(&format!("round={round} busy={busy} peer_us={}", t.elapsed().as_micros()));
    Ok(())
}
