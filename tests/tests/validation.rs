//! The validation layer below dynabuf (`DYNABUF_TEST_VALIDATION=below`)
//! really runs, really sits below the layer, and its messages reach the
//! tests from every process; and validation alone reports for our clients
//! exactly what the allowlist says (the control). These tests run the
//! validation layer whatever `DYNABUF_TEST_VALIDATION` says; without it
//! installed they fail when it was asked for, and are recorded as skipped
//! otherwise (`scripts/test.sh` fails on that skip).

mod common;

use common::{check_validation, run_unchecked, skip, Layer, Run, Validation, CLIENT};
use dynabuf_client::env::validation::{self, ALLOWLIST};
use dynabuf_client::env::{validation_layer_dir, LAYER_NAME, VALIDATION_LAYER};

const CANARY: &str = env!("CARGO_BIN_EXE_dynabuf-validation-canary");
const CANARY_ID: &str = "VUID-VkBufferCreateInfo-usage-requiredbitmask";

/// Whether the validation layer is installed; if not, fails the test when
/// `DYNABUF_TEST_VALIDATION` asked for it, records a skip otherwise.
fn validation_installed(test: &str) -> bool {
    if validation_layer_dir().is_some() {
        return true;
    }
    assert_eq!(
        Validation::from_env(),
        Validation::Off,
        "DYNABUF_TEST_VALIDATION asks for {VALIDATION_LAYER}, which is not installed (package \
         vulkan-validationlayers; scripts/setup-host.sh installs it)"
    );
    skip(test, "the Khronos validation layer is not installed (package vulkan-validationlayers)");
    false
}

/// The layers of the call chain the loader printed after `header`
/// (`VK_LOADER_DEBUG=layer`), nearest the application first.
fn callstack(stderr: &str, header: &str) -> Vec<String> {
    stderr
        .lines()
        .skip_while(|l| !l.contains(header))
        .skip(1)
        .map(|l| l.split_once("LAYER:").map_or(l, |(_, rest)| rest).trim())
        .take_while(|t| !t.starts_with("<Drivers>") && !t.starts_with("<Device>"))
        .filter(|t| t.starts_with("VK_LAYER_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn validation_is_loaded_below_the_layer() {
    if !validation_installed("validation_is_loaded_below_the_layer") {
        return;
    }
    let debug = [("VK_LOADER_DEBUG", "layer")];
    // Under the layer: dynabuf nearest the application, validation below it.
    // (Its messages are the other tests' business.)
    let on = run_unchecked(CLIENT, &["probe"], Layer::On, Validation::Below, &debug).expect_ok("probe");
    for header in ["vkCreateInstance layer callstack", "vkCreateDevice layer callstack"] {
        assert_eq!(callstack(&on.stderr, header), [LAYER_NAME, VALIDATION_LAYER], "{header}:\n{}", on.stderr);
    }
    let submit = on.value("vkQueueSubmit").unwrap();
    assert!(submit.ends_with("libVkLayer_dynabuf.so"), "vkQueueSubmit is served by {submit}");
    // What dynabuf does not hook resolves to the next layer down: validation.
    let dispatch = on.value("vkCmdDispatch").unwrap();
    assert!(dispatch.ends_with("libVkLayer_khronos_validation.so"), "vkCmdDispatch is served by {dispatch}");
    // The control: validation alone.
    let off = run_unchecked(CLIENT, &["probe"], Layer::Off, Validation::Below, &debug).expect_ok("probe");
    for header in ["vkCreateInstance layer callstack", "vkCreateDevice layer callstack"] {
        assert_eq!(callstack(&off.stderr, header), [VALIDATION_LAYER], "{header}:\n{}", off.stderr);
    }
    let submit = off.value("vkQueueSubmit").unwrap();
    assert!(submit.ends_with("libVkLayer_khronos_validation.so"), "vkQueueSubmit is served by {submit}");
}

#[test]
fn messages_from_every_process_reach_the_test_and_fail_the_check() {
    if !validation_installed("messages_from_every_process_reach_the_test_and_fail_the_check") {
        return;
    }
    // Four processes (the canary and three children sharing its stdout and
    // stderr), each making one mistake, below dynabuf.
    let run = run_unchecked(CANARY, &["3"], Layer::On, Validation::Below, &[]).expect_ok("canary");
    assert_eq!(run.value("canary_processes").as_deref(), Some("4"), "{}", run.stdout);
    let on_stderr = validation::messages(&run.stderr).into_iter().filter(|m| m.id == CANARY_ID).count();
    assert_eq!(on_stderr, 4, "one {CANARY_ID} per process on stderr:\n{}", run.stderr);
    assert!(validation::messages(&run.stdout).is_empty(), "validation wrote to stdout:\n{}", run.stdout);
    // Each process made its call (validation reports and passes it down).
    assert_eq!(run.stdout.matches("create_buffer=").count(), 4, "{}", run.stdout);
    // And the check fails the run, naming the ID and quoting the message.
    let report = validation::check("canary", Layer::On, Validation::Below, &[&run.stderr, &run.stdout])
        .expect_err("the check must fail on the canary's messages");
    assert!(
        report.contains(&format!("  {CANARY_ID} (4x):\n    {CANARY_ID}(ERROR / SPEC): msgNum:")),
        "{report}"
    );
    // Without validation the same client makes no message: the messages
    // above are validation's.
    let plain = run_unchecked(CANARY, &["0"], Layer::On, Validation::Off, &[]).expect_ok("canary");
    assert!(plain.validation_messages().is_empty(), "{}", plain.stderr);
    assert_eq!(plain.value("create_buffer").as_deref(), Some("SUCCESS"), "{}", plain.stdout);
}

/// Every host client's command line (the kernel-tier clients need dma-bufs:
/// the VM run of the kernel tier checks them, under `Layer::Off` too).
const HOST_CLIENTS: &[&[&str]] =
    &[&["probe"], &["compute", "1", "64"], &["multi"], &["threads", "2", "100"], &["external", "2"]];

#[test]
fn validation_alone_reports_only_the_allowlist_for_every_host_client() {
    if !validation_installed("validation_alone_reports_only_the_allowlist_for_every_host_client") {
        return;
    }
    let mut runs: Vec<(String, Run)> = Vec::new();
    for args in HOST_CLIENTS {
        let run = run_unchecked(CLIENT, args, Layer::Off, Validation::Below, &[]);
        runs.push((format!("dynabuf-client {}", args.join(" ")), run));
    }
    let bare =
        run_unchecked(CLIENT, &["probe"], Layer::Off, Validation::Below, &[("DYNABUF_CLIENT_BARE", "1")]);
    runs.push(("dynabuf-client probe (DYNABUF_CLIENT_BARE=1)".into(), bare));
    let demo = run_unchecked(env!("CARGO_BIN_EXE_dynabuf-demo"), &["2"], Layer::Off, Validation::Below, &[]);
    runs.push(("dynabuf-demo 2".into(), demo));
    if let Some(vulkaninfo) = ["/usr/bin/vulkaninfo", "/usr/local/bin/vulkaninfo"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        runs.push(("vulkaninfo".into(), run_unchecked(vulkaninfo, &[], Layer::Off, Validation::Below, &[])));
    }
    for (what, run) in &runs {
        check_validation(what, Layer::Off, Validation::Below, run);
        assert!(run.ok, "{what} failed with validation alone:\n{}\n{}", run.stdout, run.stderr);
    }
    // Each allowlisted ID is really validation's alone.
    for allowed in ALLOWLIST {
        let run = run_unchecked(CLIENT, allowed.client, Layer::Off, Validation::Below, &[]);
        assert!(
            run.validation_messages().iter().any(|m| m.id == allowed.id),
            "allowlisted {} ({}) is not reported by validation alone for dynabuf-client {}:\n{}",
            allowed.id,
            allowed.why,
            allowed.client.join(" "),
            run.stderr
        );
    }
}
