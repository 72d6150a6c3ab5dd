//! Issue 11: re-mapping dynamic attachments (a `SPARSE_BINDING` buffer
//! bound to the dma-buf import) instead of copying them. What lavapipe
//! does in this VM (`dynabuf-client sparse-probe`, without the layer), and
//! that the layer's round trip at `vkCreateDevice` finds it and says so.

use crate::common::{client, run_unchecked, Layer, Validation, CLIENT};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

pub fn lavapipe_sparse_binding_of_dma_buf_memory_reads_zeros() -> TestResult {
    require_kernel_tier!();
    let run = client(&["sparse-probe"], Layer::Off, &[]);
    ensure!(run.ok, "sparse-probe failed:\n{}\n{}", run.stdout, run.stderr);
    // The properties promise it ...
    ensure!(run.value("sparse_binding_feature").as_deref() == Some("true"), "{}", run.stdout);
    let features = run.stdout.lines().find(|l| l.starts_with("dma_buf_sparse_buffer_features="));
    ensure!(features.is_some_and(|l| l.contains("IMPORTABLE")), "{}", run.stdout);
    // ... the binds succeed, and every dma-buf (or exportable) memory reads
    // zeros through a sparse buffer, at memory offset 0 and not, imported
    // udmabuf or lavapipe's own export; the GPU's writes never reach it.
    for name in [
        "udmabuf_sparse_offset0",
        "udmabuf_sparse_offset1",
        "exportable_sparse",
        "exported_imported_sparse",
        "opaque_fd_sparse",
    ] {
        ensure!(run.value(name).as_deref() == Some("zeros"), "{name}:\n{}", run.stdout);
    }
    ensure!(run.value("udmabuf_sparse_gpu_write").as_deref() == Some("unchanged"), "{}", run.stdout);
    // The controls: ordinary memory bound sparse, and the same imports
    // bound to ordinary buffers, read the content.
    for name in [
        "ordinary_sparse",
        "ordinary_sparse_offset1",
        "ordinary_plain",
        "udmabuf_plain",
        "udmabuf_plain_offset1",
        "exported_imported_plain",
    ] {
        ensure!(run.value(name).as_deref() == Some("ok"), "{name}:\n{}", run.stdout);
    }
    Ok(Outcome::Pass)
}

fn probe_line(
    envs: &[(&str, &str)],
    args: &[&str],
    validation: Option<Validation>,
) -> Result<String, String> {
    let mut all = vec![("DYNABUF_LOG", "info")];
    all.extend_from_slice(envs);
    let run = match validation {
        Some(v) => run_unchecked(CLIENT, args, Layer::On, v, &all),
        None => client(args, Layer::On, &all),
    };
    ensure!(run.ok, "{args:?} failed:\n{}\n{}", run.stdout, run.stderr);
    if validation.is_some() {
        let messages = run.validation_messages();
        ensure!(messages.is_empty(), "validation below the layer said:\n{messages:?}\n{}", run.stderr);
    }
    let lines = run.layer_lines();
    let line = lines
        .iter()
        .find(|l| l.contains("sync strategy"))
        .ok_or_else(|| format!("no probe line:\n{}", run.stderr))?;
    Ok(line.to_string())
}

pub fn the_probe_turns_remap_off_on_lavapipe_and_says_why() -> TestResult {
    require_kernel_tier!();
    let device_only = ["sparse-probe", "--device-only"];
    let dynamic = [("DYNABUF_ATTACH", "dynamic")];
    let line = probe_line(&dynamic, &device_only, None)?;
    let want = "remap no (sparse binding of an imported dma-buf read zeros)";
    ensure!(line.contains(want), "{want:?} not in {line}");
    // Silent under the Khronos validation layer.
    if dynabuf_client::env::validation_layer_dir().is_some() {
        let line = probe_line(&dynamic, &device_only, Some(Validation::Below))?;
        ensure!(line.contains(want), "with validation: {want:?} not in {line}");
    }
    // Not tried where it could not be used.
    for pinned in [[("DYNABUF_ATTACH", "pinned")], [("DYNABUF_ATTACH", "auto")]] {
        let line = probe_line(&pinned, &device_only, None)?;
        ensure!(line.contains("remap untested (imports stay pinned (DYNABUF_ATTACH))"), "{line}");
    }
    let line = probe_line(&dynamic, &["compute", "1", "64"], None)?;
    ensure!(line.contains("remap untested (sparseBinding not enabled)"), "{line}");
    Ok(Outcome::Pass)
}
