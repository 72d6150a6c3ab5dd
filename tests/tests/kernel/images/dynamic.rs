//! Images in *dynamic* attachments (issue 9 part 2): with
//! `DYNABUF_ATTACH=dynamic` the application's memory is a backing the layer
//! owns, the dma-buf an internal import the layer copies from at each
//! acquire and to at each release, and with `DYNABUF_EVICT=every:1` that
//! import is dropped at every submission and re-imported at the next.
//! `image-frames` runs hundreds of frames in which a foreign writer fills
//! the image's dma-bufs behind a write fence and the GPU acquires the
//! image, rewrites part of every plane from what it read and releases it;
//! the CPU checks every byte of every dma-buf each frame. The pinned
//! control must give the same per-frame checksums; without the layer the
//! GPU reads before the writer's content lands and the check fails.

use super::{check_run, run_scenarios, short, Problems, Scenario};
use crate::dynamic::stat;
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Frames per scenario.
const FRAMES: u64 = 200;

/// One `image-frames` scenario: KIND, ASPECT, and how many memories the
/// image has (dynamic attachments under `DYNABUF_ATTACH=dynamic`).
struct Frames {
    kind: &'static str,
    aspect: &'static str,
    memories: u64,
}

/// The `frame=F checksum=X` lines of a scenario, in order.
fn checksums(s: &Scenario) -> Vec<&str> {
    s.lines.iter().map(String::as_str).filter(|l| l.starts_with("frame=")).collect()
}

/// The layer's statistics lines of a run, for reports.
fn stats(stderr: &str) -> String {
    stderr.lines().filter(|l| l.contains("stats for")).collect::<Vec<_>>().join("\n")
}

/// Runs `list` in one client process each: dynamic and evicted at every
/// submission (every frame exact; the memories dynamic, re-validated and
/// copied in and out at every frame but at most the first), pinned (the
/// same checksums, nothing dynamic), and without the layer (every
/// scenario wrong).
fn frames(problems: &mut Problems, list: &[Frames]) {
    let all: Vec<String> = list.iter().map(|s| format!("{},{},{FRAMES}", s.kind, s.aspect)).collect();
    let memories: u64 = list.iter().map(|s| s.memories).sum();
    let dynamic = dynamic_frames(problems, &all, memories);
    let pinned_envs = [("DYNABUF_ATTACH", "pinned"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let (pinned, said_pinned) = run_scenarios("image-frames", &all, Layer::On, &pinned_envs);
    check_run(problems, &pinned, &said_pinned, "image-frames with pinned attachments");
    for ((scenario, d), p) in all.iter().zip(&dynamic).zip(&said_pinned) {
        println!("  {scenario} pinned: {}", p.verdict());
        problems.check(p.ok() && checksums(d) == checksums(p), || {
            let first = checksums(d).iter().zip(checksums(p)).position(|(a, b)| *a != b);
            format!(
                "{scenario}: pinned {}; per-frame checksums differ from dynamic's (first at {first:?}: {} against {})",
                p.verdict(),
                checksums(d).len(),
                checksums(p).len()
            )
        });
    }
    problems.check(stat(&pinned.stderr, "dynamic_attachments") == [0], || {
        format!("pinned: expected dynamic_attachments=0: {}", stats(&pinned.stderr))
    });
    let (off, said_off) = run_scenarios("image-frames", &all, Layer::Off, &[]);
    check_run(problems, &off, &said_off, "image-frames without the layer");
    for (scenario, s) in all.iter().zip(&said_off) {
        println!("  {scenario} without the layer: {}", short(&s.verdict()));
        problems.check(!s.ok() && s.verdict().starts_with("wrong: frame"), || {
            format!("{scenario}: without the layer a frame should be wrong, it said {:?}", s.verdict())
        });
    }
}

/// The dynamic run of [`frames`]: what its scenarios said, after checking
/// them and the layer's statistics (the images have `memories` memories).
fn dynamic_frames(problems: &mut Problems, all: &[String], memories: u64) -> Vec<Scenario> {
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let (run, said) = run_scenarios("image-frames", all, Layer::On, &envs);
    check_run(problems, &run, &said, "image-frames with dynamic attachments");
    for (scenario, s) in all.iter().zip(&said) {
        println!("  {scenario} dynamic: {} ({} exact frames)", s.verdict(), checksums(s).len());
        problems.check(s.ok() && checksums(s).len() as u64 == FRAMES, || {
            format!("{scenario}: with dynamic attachments {}", s.verdict())
        });
    }
    let counted = |key: &str| stat(&run.stderr, key).first().copied().unwrap_or(0);
    // (counter, how many, whether exactly that many or at least)
    let wanted = [
        ("dynamic_attachments", memories, true),
        ("revalidations", memories * (FRAMES - 1), false),
        ("copies_in", memories * FRAMES, false),
        ("copies_out", memories * FRAMES, false),
    ];
    let counts: Vec<String> = wanted.iter().map(|(key, ..)| format!("{key}={}", counted(key))).collect();
    println!("  dynamic: {} evictions={}", counts.join(" "), counted("evictions"));
    let short_of: Vec<String> = wanted
        .iter()
        .filter(|&&(key, want, exact)| if exact { counted(key) != want } else { counted(key) < want })
        .map(|&(key, want, exact)| {
            format!("{key}={} (expected {}{want})", counted(key), if exact { "" } else { "at least " })
        })
        .collect();
    problems.check(short_of.is_empty(), || {
        let pinned_because: Vec<&str> = run.stderr.lines().filter(|l| l.contains("stays pinned")).collect();
        format!(
            "with dynamic attachments the layer counted {}:\n{}\n{}",
            short_of.join(", "),
            stats(&run.stderr),
            pinned_because.join("\n")
        )
    });
    said
}

pub fn a_dynamic_drm_modifier_image_keeps_exact_pixels_over_200_evicted_frames() -> TestResult {
    require_kernel_tier!();
    // RGBA8 with the LINEAR modifier at an explicit layout (rows of 320
    // bytes: padding the GPU never writes), one dedicated import of a
    // udmabuf, acquired and released as COLOR. Plane 0 at offset 0:
    // lavapipe's memory requirements leave a plane offset out (pitch x
    // height), so at offset 256 the last row's end would lie past the
    // memory (and past a dynamic attachment's backing).
    let mut problems = Problems::default();
    frames(&mut problems, &[Frames { kind: "rgba8:mod=0/0/320:whole:64x64", aspect: "color", memories: 1 }]);
    problems.into_result()
}

pub fn a_dynamic_disjoint_nv12_image_in_two_dma_bufs_keeps_exact_pixels_over_200_evicted_frames() -> TestResult
{
    require_kernel_tier!();
    // Each plane in a udmabuf of its own: two dynamic attachments, one per
    // plane, acquired and released by barriers naming both planes.
    let mut problems = Problems::default();
    frames(&mut problems, &[Frames { kind: "nv12:linear:disjoint:64x64", aspect: "planes", memories: 2 }]);
    problems.into_result()
}

pub fn a_dynamic_disjoint_nv12_image_in_one_dma_buf_copies_only_each_planes_bytes() -> TestResult {
    require_kernel_tier!();
    // Both planes in ONE udmabuf at two page-aligned offsets, each bound to
    // its own import of it: two dynamic attachments of one dma-buf, each
    // copying only its plane's bytes (a memory that copied the whole
    // dma-buf back would overwrite the other plane's new texels, or the
    // writer's bytes between them, with stale ones). COLOR.
    let mut problems = Problems::default();
    frames(&mut problems, &[Frames { kind: "nv12:linear:disjoint-one:64x64", aspect: "color", memories: 2 }]);
    problems.into_result()
}
