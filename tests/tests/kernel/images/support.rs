//! What lavapipe supports of the image kinds the tests share, asked and
//! tried without the layer.

use super::{kinds, output, passed, run, run_scenarios, validation_report, Problems, Scenario};
use crate::common::Run;
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Planar formats with a DRM format modifier: lavapipe offers the LINEAR
/// modifier for them but cannot create such an image.
const PLANAR_MODIFIER_KINDS: [&str; 2] = ["nv12:mod=0:whole", "yuv420-3p:mod=0:whole"];
/// What lavapipe says when it refuses them.
const PLANAR_REFUSED: &str = "planar drm formats are not supported";

pub fn lavapipe_supports_the_image_kinds_the_tests_share() -> TestResult {
    require_kernel_tier!();
    let mut problems = Problems::default();
    let probe = run(&["image-probe"], Layer::Off, &[]);
    problems.check(passed(&probe, "image_probe_ok"), || format!("image-probe {}", output(&probe)));
    check_probe(&mut problems, &probe);
    let kinds = kinds()?;
    let (ops, said) = run_scenarios("image-ops", &kinds, Layer::Off, &[]);
    if let Some(report) = validation_report(&ops) {
        problems.check(false, || format!("image-ops: {report}"));
    }
    for (kind, s) in kinds.iter().zip(&said) {
        let done: Vec<&str> = ops_done(s);
        let all_ok = s.ok() && !done.is_empty() && done.iter().all(|l| l.ends_with(" ok"));
        println!(
            "  {kind}: {}",
            if all_ok { "every copy (and clear) exact".into() } else { done.join("; ") }
        );
        if let Some(reported) = s.lines.iter().find(|l| l.starts_with("plane=0 reported")) {
            if kind.contains("/256/") {
                println!("    chosen offset 256, pitch 320; the driver reports {reported}");
            }
        }
        problems.check(all_ok, || format!("image-ops {kind}: {:?}", s.lines));
    }
    // These create images the format query refuses (validation says so):
    // only lavapipe's answer counts. If it changes, the planar kinds should
    // gain modifier tiling.
    let refused_kinds = PLANAR_MODIFIER_KINDS.map(String::from);
    let (refusals, said) = run_scenarios("image-ops", &refused_kinds, Layer::Off, &[]);
    for (kind, s) in refused_kinds.iter().zip(&said) {
        let refused =
            !s.ok() && s.verdict().contains("vkCreateImage") && refusals.stderr.contains(PLANAR_REFUSED);
        println!(
            "  {kind}: {}",
            if refused { "refused (planar drm formats are not supported)" } else { "accepted" }
        );
        problems.check(refused, || format!("image-ops {kind} is no longer refused: test it: {:?}", s.lines));
    }
    problems.into_result()
}

/// What `image-probe` must say for the tests to hold.
fn check_probe(problems: &mut Problems, probe: &Run) {
    let lines: Vec<&str> =
        probe.stdout.lines().filter(|l| l.starts_with("format=") || l.starts_with("device=")).collect();
    for line in &lines {
        println!("  {line}");
    }
    let has = |start: &str, needle: &str| lines.iter().any(|l| l.starts_with(start) && l.contains(needle));
    problems.check(has("device=", "image_drm_format_modifier=true"), || {
        format!("the device offers no VK_EXT_image_drm_format_modifier:\n{}", probe.stdout)
    });
    // Why validation sees no format features on modifier images
    // (MODIFIER_FEATURES_UNSEEN): if lavapipe lists them now, drop that.
    problems.check(has("format=rgba8 modifiers=1", "list2=[]"), || {
        format!(
            "lavapipe now fills VkDrmFormatModifierPropertiesList2EXT: drop MODIFIER_FEATURES_UNSEEN\n{}",
            probe.stdout
        )
    });
    for format in ["nv12", "yuv420-3p"] {
        for what in ["linear_dma_buf=", "linear_disjoint_dma_buf="] {
            problems.check(has(&format!("format={format} {what}"), "IMPORTABLE"), || {
                format!(
                    "{format}: a linear image in dma-buf memory ({what}) is not importable:\n{}",
                    probe.stdout
                )
            });
        }
        problems.check(
            has(&format!("format={format} modifier=0x0 "), "import=ERROR_FORMAT_NOT_SUPPORTED"),
            || format!("{format} with the LINEAR modifier is no longer refused: test it:\n{}", probe.stdout),
        );
    }
}

/// The operations a scenario of `image-ops` finished (`op=... ok|wrong`).
fn ops_done(s: &Scenario) -> Vec<&str> {
    s.lines.iter().map(String::as_str).filter(|l| l.starts_with("op=") && !l.ends_with("start")).collect()
}
