//! The layer through the real Vulkan loader on lavapipe: it is found,
//! enabled and in the call chain; it changes no result; it survives several
//! instances, devices and threads; its settings behave.

mod common;

use common::{client, run_program, skip, Layer};

const LAYER_LIB: &str = "libVkLayer_dynabuf.so";

#[test]
fn layer_is_enumerated_and_in_the_call_chain() {
    let run = client(&["probe"], Layer::On, &[]).expect_ok("probe");
    assert_eq!(run.value("layer_enumerated").as_deref(), Some("true"));
    for hooked in ["vkQueueSubmit", "vkCmdPipelineBarrier", "vkAllocateMemory"] {
        let object = run.value(hooked).unwrap();
        assert!(object.ends_with(LAYER_LIB), "{hooked} is served by {object}, not the layer");
    }
    // Unhooked functions go straight to the driver: the layer costs nothing.
    let dispatch = run.value("vkCmdDispatch").unwrap();
    assert!(!dispatch.ends_with(LAYER_LIB), "vkCmdDispatch should bypass the layer, is {dispatch}");
}

#[test]
fn layer_is_absent_unless_enabled() {
    let run = client(&["probe"], Layer::Off, &[]).expect_ok("probe");
    assert_eq!(run.value("layer_enumerated").as_deref(), Some("true"), "VK_LAYER_PATH should still list it");
    assert!(!run.value("vkQueueSubmit").unwrap().ends_with(LAYER_LIB));
    assert!(run.layer_lines().is_empty());
}

#[test]
fn compute_results_are_bit_identical_with_and_without_the_layer() {
    for (seed, count) in [("1", "64"), ("305419896", "65536"), ("4294967295", "100003")] {
        let off = client(&["compute", seed, count], Layer::Off, &[]).expect_ok("compute without layer");
        let on = client(&["compute", seed, count], Layer::On, &[]).expect_ok("compute with layer");
        assert_eq!(on.value("matches_cpu").as_deref(), Some("true"));
        assert_eq!(off.value("checksum"), on.value("checksum"), "seed {seed}, count {count}");
    }
}

#[test]
fn several_instances_and_devices_live_at_once() {
    let run = client(&["multi"], Layer::On, &[("DYNABUF_LOG", "info")]).expect_ok("multi");
    assert_eq!(run.value("ok").as_deref(), Some("true"));
    let attached = run.layer_lines().iter().filter(|l| l.contains("attached to dev")).count();
    assert_eq!(attached, 3, "{}", run.stderr);
}

#[test]
fn eight_threads_submit_a_thousand_times_each() {
    let run = client(&["threads", "8", "1000"], Layer::On, &[("DYNABUF_STATS", "1")]).expect_ok("threads");
    assert_eq!(run.value("submits").as_deref(), Some("8000"));
    assert!(run.stderr.contains("submits=8000 "), "layer should have seen 8000 submits:\n{}", run.stderr);
}

#[test]
fn disable_loads_but_hooks_nothing() {
    let envs = [("DYNABUF_DISABLE", "1"), ("DYNABUF_LOG", "info")];
    let run = client(&["probe"], Layer::On, &envs).expect_ok("probe");
    assert!(run.stderr.contains("DYNABUF_DISABLE=1: hooking nothing"), "{}", run.stderr);
    assert!(!run.value("vkQueueSubmit").unwrap().ends_with(LAYER_LIB));
    client(&["compute"], Layer::On, &envs).expect_ok("compute with a disabled layer");
}

#[test]
fn malformed_log_level_warns_once_and_the_application_runs() {
    let run = client(&["multi"], Layer::On, &[("DYNABUF_LOG", "loud")]).expect_ok("multi");
    let warnings: Vec<_> = run.layer_lines().into_iter().filter(|l| l.contains("DYNABUF_LOG")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    for part in ["\"loud\"", "off, error, warn, info, debug, trace", "default, warn"] {
        assert!(warnings[0].contains(part), "{}", warnings[0]);
    }
    assert!(!run.stdout.contains("dynabuf:"));
}

#[test]
fn log_file_takes_the_lines_and_stdout_stays_clean() {
    let path = std::env::temp_dir().join(format!("dynabuf-log-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let envs = [("DYNABUF_LOG", "debug"), ("DYNABUF_LOG_FILE", path.to_str().unwrap())];
    let run = client(&["external"], Layer::On, &envs).expect_ok("external");
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert!(run.layer_lines().is_empty(), "nothing on stderr with a log file: {}", run.stderr);
    assert!(!run.stdout.contains("dynabuf:"));
    assert!(log.lines().all(|l| l.starts_with("dynabuf: ")), "{log}");
    assert!(log.contains("loaded into instance"), "{log}");
    assert!(log.contains("imported OPAQUE_FD"), "{log}");
    assert!(log.contains("records Acquire"), "{log}");
}

#[test]
fn rust_log_is_not_the_layers() {
    let run = client(&["compute"], Layer::On, &[("RUST_LOG", "trace")]).expect_ok("compute");
    assert!(run.layer_lines().is_empty(), "{}", run.stderr);
}

#[test]
fn vulkaninfo_runs_under_the_layer() {
    let Some(vulkaninfo) = ["/usr/bin/vulkaninfo", "/usr/local/bin/vulkaninfo"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return skip("vulkaninfo_runs_under_the_layer", "vulkaninfo not installed (package vulkan-tools)");
    };
    let run = run_program(vulkaninfo, &[], Layer::On, &[("DYNABUF_LOG", "info")]);
    assert!(run.ok, "vulkaninfo failed:\n{}", run.stderr);
    assert!(run.stdout.contains("VK_LAYER_DYNABUF_dmabuf"), "vulkaninfo does not list the layer");
    assert!(run.stderr.contains("attached to dev"), "{}", run.stderr);
}

#[test]
fn extensions_the_layer_adds_stay_hidden_from_the_application() {
    let envs = [("DYNABUF_CLIENT_BARE", "1"), ("DYNABUF_LOG", "debug")];
    let bare = client(&["probe"], Layer::On, &envs).expect_ok("probe");
    assert!(
        bare.stderr.contains("enabled for the layer (hidden from the application)")
            && bare.stderr.contains("VK_KHR_external_memory_fd"),
        "{}",
        bare.stderr
    );
    assert_eq!(bare.value("vkGetMemoryFdKHR").as_deref(), Some("none"), "the application did not enable it");
    let asked = client(&["probe"], Layer::On, &[]).expect_ok("probe");
    assert!(
        asked.value("vkGetMemoryFdKHR").unwrap().ends_with(LAYER_LIB),
        "hooked when the application enabled it"
    );
}

#[test]
fn probe_reports_what_the_host_kernel_lacks() {
    let run = client(&["compute", "1", "64"], Layer::On, &[("DYNABUF_LOG", "info")]).expect_ok("compute");
    let line = run.layer_lines().into_iter().find(|l| l.contains("sync strategy")).expect("probe line");
    if dynabuf_client::kernel::udmabuf::available() {
        return common::skip(
            "probe_reports_what_the_host_kernel_lacks",
            "this kernel has udmabuf (the VM tier checks it)",
        );
    }
    // Without udmabuf, lavapipe neither exports dma-bufs nor offers SYNC_FD.
    assert!(line.contains("dma-buf export no"), "{line}");
    assert!(line.contains("SYNC_FD semaphore export no"), "{line}");
    assert!(line.contains("DRM node none"), "{line}");
}
