//! What lavapipe supports of the image kinds the tests share, asked and
//! tried without the layer.

use super::{kinds, output, passed, run, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// Planar formats with a DRM format modifier: lavapipe offers the LINEAR
/// modifier for them but cannot create such an image.
const PLANAR_MODIFIER_KINDS: [&str; 2] = ["nv12:mod=0:whole", "yuv420-3p:mod=0:whole"];

pub fn lavapipe_supports_the_image_kinds_the_tests_share() -> TestResult {
    require_kernel_tier!();
    let mut problems = Problems::default();
    let probe = run(&["image-probe"], Layer::Off, &[]);
    problems.check(passed(&probe, "image_probe_ok"), || format!("image-probe {}", output(&probe)));
    for line in probe.stdout.lines().filter(|l| l.starts_with("format=") || l.starts_with("device=")) {
        println!("  {line}");
    }
    let has = |needle: &str| probe.stdout.lines().any(|l| l.contains(needle));
    problems.check(has("image_drm_format_modifier=true"), || {
        format!("the device offers no VK_EXT_image_drm_format_modifier:\n{}", probe.stdout)
    });
    for format in ["nv12", "yuv420-3p"] {
        for what in ["linear_dma_buf=", "linear_disjoint_dma_buf="] {
            let line = format!("format={format} {what}");
            problems.check(
                probe.stdout.lines().any(|l| l.starts_with(&line) && l.contains("IMPORTABLE")),
                || {
                    format!(
                        "{format}: a linear image in dma-buf memory ({what}) is not importable:\n{}",
                        probe.stdout
                    )
                },
            );
        }
        // If this changes, the planar kinds should gain modifier tiling.
        let refused = format!("format={format} modifier=0x0 planes=");
        problems.check(
            probe
                .stdout
                .lines()
                .any(|l| l.starts_with(&refused) && l.contains("import=ERROR_FORMAT_NOT_SUPPORTED")),
            || format!("{format} with the LINEAR modifier is no longer refused: test it:\n{}", probe.stdout),
        );
    }
    let kinds = kinds()?;
    for kind in &kinds {
        let ops = run(&["image-ops", kind], Layer::Off, &[]);
        let lines: Vec<&str> =
            ops.stdout.lines().filter(|l| l.starts_with("op=") && !l.ends_with("start")).collect();
        let all_ok = !lines.is_empty() && lines.iter().all(|l| l.ends_with(" ok"));
        println!(
            "  {kind}: {}",
            if all_ok { "every copy (and clear) exact".to_string() } else { lines.join("; ") }
        );
        if let Some(reported) = ops.stdout.lines().find(|l| l.starts_with("plane=0 reported")) {
            if kind.contains("/256/") {
                println!("    chosen offset 256, pitch 320; the driver reports {reported}");
            }
        }
        problems
            .check(passed(&ops, "image_ops_ok") && all_ok, || format!("image-ops {kind} {}", output(&ops)));
    }
    for kind in PLANAR_MODIFIER_KINDS {
        let ops = run(&["image-ops", kind], Layer::Off, &[]);
        let refused = !ops.ok && ops.stderr.contains("planar drm formats are not supported");
        println!(
            "  {kind}: {}",
            if refused { "refused (planar drm formats are not supported)" } else { "accepted" }
        );
        problems
            .check(refused, || format!("image-ops {kind} is no longer refused: test it {}", output(&ops)));
    }
    problems.into_result()
}
