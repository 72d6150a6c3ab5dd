//! Releases of images to FOREIGN: a fence in every dma-buf the released
//! planes lie in, once per submission, and none in the others.

use super::{
    dma_bufs, error_line, handovers, kinds, named_planes, output, passed, plane_bufs, publications, run,
    Problems,
};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Submissions per `image-release` run.
const ROUNDS: usize = 3;

/// Runs `image-release KIND ASPECT` under the layer: the peer must read
/// every round's pixels; each dma-buf behind a released plane must get
/// exactly one release fence per round and every other dma-buf none; each
/// submission must hand over each dma-buf once (it acquires what it
/// releases). Then without the layer (the control): the peer, looking
/// right after `vkQueueSubmit`, must read stale pixels.
pub(crate) fn release_with_control(problems: &mut Problems, kind: &str, aspect: &str) {
    let rounds = ROUNDS.to_string();
    let argv = ["image-release", kind, aspect, &rounds];
    let what = argv.join(" ");
    let on = run(&argv, Layer::On, &[("DYNABUF_LOG", "debug")]);
    let (bufs, planes) = (dma_bufs(&on), plane_bufs(&on));
    let released: Vec<usize> = named_planes(aspect, planes.len()).iter().map(|&p| planes[p]).collect();
    let counts: Vec<usize> = bufs.iter().map(|b| publications(&on, b)).collect();
    println!(
        "  {what}: {}; release fences per dma-buf {counts:?}",
        if passed(&on, "image_release_ok") { "exact".to_string() } else { error_line(&on) }
    );
    problems.check(passed(&on, "image_release_ok"), || format!("{what} under the layer {}", output(&on)));
    problems
        .check(!bufs.is_empty(), || format!("{what}: no dma-buf named on the setup line {}", output(&on)));
    for (k, buf) in bufs.iter().enumerate() {
        let want = if released.contains(&k) { ROUNDS } else { 0 };
        problems.check(counts[k] == want, || {
            format!(
                "{what}: the layer published {} release fence(s) into buf{k} ({buf}), expected {want} (planes in \
                 it: {:?}, released: {aspect}) {}",
                counts[k],
                (0..planes.len()).filter(|&p| planes[p] == k).collect::<Vec<_>>(),
                output(&on)
            )
        });
    }
    let mut distinct = released.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let each_once = vec![(distinct.len(), distinct.len()); ROUNDS];
    problems.check(handovers(&on) == each_once, || {
        format!(
            "{what}: each submission should acquire and release each of its {} dma-buf(s) once, the layer \
             handed over {:?} {}",
            distinct.len(),
            handovers(&on),
            output(&on)
        )
    });
    let off = run(&argv, Layer::Off, &[]);
    let stale = !off.ok && off.stderr.contains("the peer read plane");
    problems.check(stale, || {
        format!("{what}: without the layer the peer should read stale pixels {}", output(&off))
    });
}

pub fn a_release_of_an_image_fences_every_dma_buf_it_is_bound_to() -> TestResult {
    require_kernel_tier!();
    // Every kind: three submissions, each acquiring the whole image (from
    // UNDEFINED), filling a 32 MiB buffer (GPU time), writing every plane
    // and releasing the whole image (COLOR). Right after each
    // vkQueueSubmit a peer polls each plane's dma-buf and reads the plane.
    let mut problems = Problems::default();
    for kind in kinds()? {
        release_with_control(&mut problems, &kind, "color");
    }
    problems.into_result()
}
