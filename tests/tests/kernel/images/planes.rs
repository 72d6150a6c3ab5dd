//! Disjoint multi-planar images whose planes lie in different dma-bufs (or
//! at two offsets of one): barriers naming the whole image or single
//! planes synchronise exactly the dma-bufs of the planes they name.

use super::acquire::acquire_with_control;
use super::release::release_with_control;
use super::{handovers, output, passed, run, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

const NV12: &str = "nv12:linear:disjoint";
const YUV: &str = "yuv420-3p:linear:disjoint";
const STALE: &str = "all old content";

pub fn an_acquire_of_a_whole_disjoint_image_waits_for_a_fence_on_any_planes_dma_buf() -> TestResult {
    require_kernel_tier!();
    // Only one plane's dma-buf carries the foreign write fence (and gets
    // the new content); the acquire names the whole image, as COLOR or as
    // every plane bit, and must wait for it whichever plane it is.
    let mut problems = Problems::default();
    for (kind, fenced, aspect) in [
        (NV12, "p0", "color"),
        (NV12, "p1", "color"),
        (NV12, "p0", "planes"),
        (NV12, "p1", "planes"),
        (YUV, "p0", "color"),
        (YUV, "p1", "color"),
        (YUV, "p2", "planes"),
    ] {
        acquire_with_control(&mut problems, [kind, "read", aspect, fenced], false, STALE);
    }
    problems.into_result()
}

pub fn an_acquire_naming_one_plane_waits_only_for_that_planes_dma_buf() -> TestResult {
    require_kernel_tier!();
    // PLANE_1 acquired, plane 1's dma-buf fenced: wait. PLANE_0 acquired,
    // plane 1's dma-buf fenced: plane 0's dma-buf is idle, do not wait.
    // PLANE_0 of an image whose planes share one dma-buf: that dma-buf is
    // plane 0's too, wait.
    let mut problems = Problems::default();
    acquire_with_control(&mut problems, [NV12, "read", "p1", "p1"], false, STALE);
    acquire_with_control(&mut problems, [NV12, "read", "p0", "p0"], false, STALE);
    acquire_with_control(&mut problems, [YUV, "read", "p0+p2", "p2"], false, STALE);
    acquire_with_control(&mut problems, ["nv12:linear:disjoint-one", "read", "p0", "all"], false, STALE);
    for (kind, aspect, fenced) in [(NV12, "p0", "p1"), (YUV, "p1", "p0"), (YUV, "p0+p1", "p2")] {
        let argv = ["image-acquire", kind, "read", aspect, fenced];
        let on = run(&argv, Layer::On, &[]);
        let early = on.value("early").as_deref() == Some("true");
        println!("  {}: early={early}", argv.join(" "));
        problems.check(passed(&on, "image_acquire_ok") && early, || {
            format!("{}: the acquire waited for another plane's dma-buf {}", argv.join(" "), output(&on))
        });
    }
    problems.into_result()
}

pub fn a_release_naming_planes_fences_only_their_dma_bufs() -> TestResult {
    require_kernel_tier!();
    // The GPU writes and releases only the planes named; the other planes'
    // dma-bufs must get no fence.
    let mut problems = Problems::default();
    for (kind, aspect) in [(NV12, "p0"), (NV12, "p1"), (NV12, "planes"), (YUV, "p0+p2"), (YUV, "p1")] {
        release_with_control(&mut problems, kind, aspect);
    }
    problems.into_result()
}

pub fn planes_sharing_one_dma_buf_hand_it_over_once() -> TestResult {
    require_kernel_tier!();
    // Each plane is bound to its own import of the same dma-buf, at its
    // own offset: two (three) memories, one dma-buf. A release of the
    // whole image publishes one fence per submission into it (checked by
    // the release helper), and an acquire waits for it once.
    let mut problems = Problems::default();
    for kind in ["nv12:linear:disjoint-one", "yuv420-3p:linear:disjoint-one"] {
        release_with_control(&mut problems, kind, "color");
        let argv = ["image-acquire", kind, "read", "color", "all"];
        let on = run(&argv, Layer::On, &[("DYNABUF_LOG", "debug")]);
        let waits = on
            .stderr
            .lines()
            .filter(|l| {
                l.starts_with("dynabuf:") && l.contains("acquire of dma-buf") && l.contains("pending fence")
            })
            .count();
        println!("  {}: handovers {:?}, waits {waits}", argv.join(" "), handovers(&on));
        problems.check(passed(&on, "image_acquire_ok"), || format!("{} {}", argv.join(" "), output(&on)));
        problems.check(handovers(&on) == [(1, 0)] && waits == 1, || {
            format!(
                "{}: the submission should acquire the one dma-buf once and wait for its fence once \
                 (handovers {:?}, waits {waits}) {}",
                argv.join(" "),
                handovers(&on),
                output(&on)
            )
        });
    }
    problems.into_result()
}
