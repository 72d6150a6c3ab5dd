//! Acquires of whole images from FOREIGN while foreign fences are pending
//! on their dma-bufs.

use super::{error_line, kinds, output, passed, run, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Runs `image-acquire KIND MODE ASPECT FENCED` under the layer and
/// without it: under the layer it must pass, finished `early` as said;
/// without it (the control) it must fail with `stale` in its error, or,
/// when `stale` is empty, pass having finished early.
pub(crate) fn acquire_with_control(problems: &mut Problems, args: [&str; 4], early: bool, stale: &str) {
    let [kind, mode, aspect, fenced] = args;
    let argv = ["image-acquire", kind, mode, aspect, fenced];
    let what = argv.join(" ");
    let on = run(&argv, Layer::On, &[("DYNABUF_LOG", "debug")]);
    let was_early = on.value("early").as_deref() == Some("true");
    println!(
        "  {what}: {}",
        match passed(&on, "image_acquire_ok") {
            true => format!("exact, early={was_early}"),
            false => error_line(&on),
        }
    );
    let how = match (passed(&on, "image_acquire_ok"), was_early == early) {
        (false, _) => Some("failed"),
        (true, false) if early => Some("waited for a fence it should not wait for"),
        (true, false) => Some("did not wait"),
        (true, true) => None,
    };
    problems.check(how.is_none(), || {
        format!("{what}: under the layer the acquire {} {}", how.unwrap_or(""), output(&on))
    });
    let off = run(&argv, Layer::Off, &[]);
    let control_failed = match stale.is_empty() {
        true => passed(&off, "image_acquire_ok") && off.value("early").as_deref() == Some("true"),
        false => !off.ok && off.stderr.contains(stale),
    };
    problems.check(control_failed, || {
        format!(
            "{what}: without the layer the client should finish early and read {stale:?} {}",
            output(&off)
        )
    });
}

pub fn an_acquire_of_an_image_waits_for_foreign_write_fences_on_its_dma_bufs() -> TestResult {
    require_kernel_tier!();
    // Every kind: a foreign writer holds a write fence on each of the
    // image's dma-bufs and writes new content into it 300 ms after the
    // client's submission (the first plane's dma-buf 200 ms later than the
    // next), then signals; the client's GPU copies every plane to a
    // buffer after an acquire of the whole image (COLOR). Under the layer
    // it reads the new content; without it, the old.
    let mut problems = Problems::default();
    for kind in kinds()? {
        acquire_with_control(&mut problems, [&kind, "read", "color", "all"], false, "all old content");
    }
    problems.into_result()
}

pub fn an_acquire_of_an_image_for_writing_waits_before_it_writes() -> TestResult {
    require_kernel_tier!();
    // As above, but the GPU writes every plane (a copy from a buffer)
    // after the acquire: under the layer its texels come after the foreign
    // writer's and stay; without it the foreign writer's late write covers
    // them.
    let mut problems = Problems::default();
    for kind in ["rgba8:linear:whole", "rgba8:export:whole", "nv12:linear:whole", "yuv420-3p:linear:disjoint"]
    {
        acquire_with_control(&mut problems, [kind, "write", "color", "all"], false, "all new content");
    }
    let explicit = kinds()?.into_iter().find(|k| k.contains(":mod=")).unwrap_or_default();
    acquire_with_control(&mut problems, [&explicit, "write", "color", "all"], false, "all new content");
    problems.into_result()
}

pub fn a_layout_transition_in_an_acquire_waits_for_foreign_readers() -> TestResult {
    require_kernel_tier!();
    // A foreign *read* fence is pending; the client's acquire only reads
    // (destination access TRANSFER_READ). With a layout transition
    // (GENERAL to TRANSFER_SRC_OPTIMAL) the acquire writes the image, so
    // it must wait for the reader; without one it must not.
    let mut problems = Problems::default();
    for kind in ["rgba8:linear:whole", "nv12:linear:disjoint"] {
        acquire_with_control(&mut problems, [kind, "transition", "color", "all"], false, "");
        let argv = ["image-acquire", kind, "keep", "color", "all"];
        let keep = run(&argv, Layer::On, &[]);
        let early = keep.value("early").as_deref() == Some("true");
        println!("  {}: early={early}", argv.join(" "));
        problems.check(passed(&keep, "image_acquire_ok") && early, || {
            format!("{}: a read-only acquire waited for a reader {}", argv.join(" "), output(&keep))
        });
    }
    problems.into_result()
}
