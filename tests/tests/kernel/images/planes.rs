//! Disjoint multi-planar images whose planes lie in different dma-bufs (or
//! at two offsets of one): barriers naming the whole image or single
//! planes synchronise exactly the dma-bufs of the planes they name.

use super::acquire::{acquires, Acquire, Control};
use super::release::releases;
use super::{check_run, layer_lines, run_scenarios, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

const NV12: &str = "nv12:linear:disjoint";
const YUV: &str = "yuv420-3p:linear:disjoint";
const STALE: Control = Control::Stale("all old content");

pub fn an_acquire_of_a_whole_disjoint_image_waits_for_a_fence_on_any_planes_dma_buf() -> TestResult {
    require_kernel_tier!();
    // Only one plane's dma-buf carries the foreign write fence (and gets
    // the new content); the acquire names the whole image, as COLOR or as
    // every plane bit, and must wait for it whichever plane it is.
    let mut problems = Problems::default();
    let list: Vec<Acquire> = [
        (NV12, "color", "p0"),
        (NV12, "color", "p1"),
        (NV12, "planes", "p0"),
        (NV12, "planes", "p1"),
        (YUV, "color", "p0"),
        (YUV, "color", "p1"),
        (YUV, "planes", "p2"),
    ]
    .iter()
    .map(|(kind, aspect, fenced)| Acquire::new([kind, "read", aspect, fenced], false, STALE))
    .collect();
    acquires(&mut problems, &list);
    problems.into_result()
}

pub fn an_acquire_naming_one_plane_waits_only_for_that_planes_dma_buf() -> TestResult {
    require_kernel_tier!();
    // PLANE_1 acquired, plane 1's dma-buf fenced: wait. PLANE_0 acquired,
    // plane 1's dma-buf fenced: plane 0's dma-buf is idle, do not wait.
    // PLANE_0 of an image whose planes share one dma-buf: that dma-buf is
    // plane 0's too, wait.
    let mut problems = Problems::default();
    let list = [
        Acquire::new([NV12, "read", "p1", "p1"], false, STALE),
        Acquire::new([NV12, "read", "p0", "p0"], false, STALE),
        Acquire::new([YUV, "read", "p0+p2", "p2"], false, STALE),
        Acquire::new(["nv12:linear:disjoint-one", "read", "p0", "all"], false, STALE),
        Acquire::new([NV12, "read", "p0", "p1"], true, Control::None),
        Acquire::new([YUV, "read", "p1", "p0"], true, Control::None),
        Acquire::new([YUV, "read", "p0+p1", "p2"], true, Control::None),
    ];
    acquires(&mut problems, &list);
    problems.into_result()
}

pub fn a_release_naming_planes_fences_only_their_dma_bufs() -> TestResult {
    require_kernel_tier!();
    // The GPU writes and releases only the planes named; the other planes'
    // dma-bufs must get no fence.
    let mut problems = Problems::default();
    releases(&mut problems, &[(NV12, "p0"), (NV12, "p1"), (NV12, "planes"), (YUV, "p0+p2"), (YUV, "p1")]);
    problems.into_result()
}

pub fn planes_sharing_one_dma_buf_hand_it_over_once() -> TestResult {
    require_kernel_tier!();
    // Each plane is bound to its own import of the same dma-buf, at its
    // own offset: two (three) memories, one dma-buf. A release of the
    // whole image publishes one fence per submission into it (checked by
    // `releases`), and an acquire waits for its fence once.
    let mut problems = Problems::default();
    let kinds = ["nv12:linear:disjoint-one", "yuv420-3p:linear:disjoint-one"];
    releases(&mut problems, &kinds.map(|k| (k, "color")));
    let all: Vec<String> = kinds.iter().map(|k| format!("{k},read,color,all")).collect();
    let (on, said) = run_scenarios("image-acquire", &all, Layer::On, &[("DYNABUF_LOG", "debug")]);
    check_run(&mut problems, &on, &said, "image-acquire under the layer");
    for (scenario, s) in all.iter().zip(&said) {
        let bufs = s.dma_bufs();
        let waits: Vec<usize> = bufs.iter().map(|b| layer_lines(&on, "pending fence", b)).collect();
        println!("  {scenario}: {}, waits per dma-buf {waits:?}", s.verdict());
        problems.check(s.ok() && waits == [1], || {
            format!(
                "{scenario}: the acquire should wait for its one dma-buf's fence once: waits {waits:?}, {:?}",
                s.lines
            )
        });
    }
    problems.into_result()
}
