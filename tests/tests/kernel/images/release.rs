//! Releases of images to FOREIGN: a fence in every dma-buf the released
//! planes lie in, once per submission, and none in the others.

use super::{check_run, kinds, layer_lines, named_planes, run_scenarios, short, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Submissions per `image-release` scenario.
const ROUNDS: usize = 2;

/// Runs `image-release` with every `(KIND, ASPECT)` scenario under the
/// layer: the peer must read every round's pixels; each dma-buf behind a
/// released plane must get exactly one release fence per round (however
/// many of its planes were released) and every other dma-buf none. Then
/// without the layer (the control): the peer, looking right after
/// `vkQueueSubmit`, must read stale pixels in every scenario.
pub(crate) fn releases(problems: &mut Problems, list: &[(&str, &str)]) {
    let all: Vec<String> = list.iter().map(|(kind, aspect)| format!("{kind},{aspect}")).collect();
    let (on, said) = run_scenarios("image-release", &all, Layer::On, &[("DYNABUF_LOG", "debug")]);
    check_run(problems, &on, &said, "image-release under the layer");
    for ((scenario, (_, aspect)), s) in all.iter().zip(list).zip(&said) {
        let (bufs, planes) = (s.dma_bufs(), s.plane_bufs());
        let released: Vec<usize> = named_planes(aspect, planes.len()).iter().map(|&p| planes[p]).collect();
        let counts: Vec<usize> = bufs.iter().map(|b| layer_lines(&on, "published", b)).collect();
        println!("  {scenario}: {}; release fences per dma-buf {counts:?}", s.verdict());
        problems.check(s.ok(), || format!("{scenario}: under the layer {}", s.verdict()));
        problems.check(!bufs.is_empty(), || format!("{scenario}: no dma-buf named: {:?}", s.lines));
        for (k, buf) in bufs.iter().enumerate() {
            let want = if released.contains(&k) { ROUNDS } else { 0 };
            problems.check(counts[k] == want, || {
                let in_it: Vec<usize> = (0..planes.len()).filter(|&p| planes[p] == k).collect();
                format!(
                    "{scenario}: the layer published {} release fence(s) into buf{k} ({buf}, planes {in_it:?}), \
                     expected {want} ({ROUNDS} submissions releasing {aspect})",
                    counts[k]
                )
            });
        }
    }
    let (off, said) = run_scenarios("image-release", &all, Layer::Off, &[]);
    check_run(problems, &off, &said, "image-release without the layer");
    for (scenario, s) in all.iter().zip(&said) {
        println!("  {scenario} without the layer: {}", short(&s.verdict()));
        problems.check(!s.ok() && s.verdict().contains("the peer read plane"), || {
            format!("{scenario}: without the layer the peer should read stale pixels, it said {:?}", s.lines)
        });
    }
}

pub fn a_release_of_an_image_fences_every_dma_buf_it_is_bound_to() -> TestResult {
    require_kernel_tier!();
    // Every kind: two submissions, each acquiring the whole image (from
    // UNDEFINED), filling a 16 MiB buffer (GPU time), writing every plane
    // and releasing the whole image (COLOR). Right after each
    // vkQueueSubmit a peer polls each plane's dma-buf and reads the plane.
    let mut problems = Problems::default();
    let kinds = kinds()?;
    let list: Vec<(&str, &str)> = kinds.iter().map(|k| (k.as_str(), "color")).collect();
    releases(&mut problems, &list);
    problems.into_result()
}
