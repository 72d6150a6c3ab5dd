//! The memory, binding, barrier and submit hooks see external memory and
//! ownership transfers (on the host: OPAQUE_FD between two devices, since
//! this kernel cannot make dma-bufs), and bad imports pass through untouched.

mod common;

use common::{client, Layer};

fn stat(stderr: &str, device_has: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .filter(|l| l.contains("stats for dev"))
        .find(|l| l.contains(device_has))
        .unwrap_or_else(|| panic!("no stats line with {device_has}:\n{stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn exports_imports_bindings_and_transfers_are_seen() {
    let run = client(&["external", "2"], Layer::On, &[("DYNABUF_STATS", "1")]).expect_ok("external");
    assert_eq!(run.value("shared_content_ok").as_deref(), Some("true"));
    // The exporter: one exportable allocation, exported three times.
    assert_eq!(stat(&run.stderr, "fd_exports=3", "exportable_allocations"), 1);
    // The importer: three good imports (one failed and is not counted),
    // three bindings, one acquire and one release in one submission.
    let importer = "fd_exports=0 ";
    assert_eq!(stat(&run.stderr, importer, "opaque_fd_imports"), 3);
    assert_eq!(stat(&run.stderr, "submits=1 ", "external_binds"), 3);
    assert_eq!(stat(&run.stderr, "submits=1 ", "acquires_recorded"), 1);
    assert_eq!(stat(&run.stderr, "submits=1 ", "releases_recorded"), 1);
    assert_eq!(stat(&run.stderr, "submits=1 ", "submits_with_transfers"), 1);
}

#[test]
fn a_bad_import_returns_the_drivers_error_unchanged() {
    let off = client(&["external"], Layer::Off, &[]).expect_ok("external without layer");
    let on = client(&["external"], Layer::On, &[]).expect_ok("external with layer");
    assert_eq!(on.value("import_dev_null"), off.value("import_dev_null"));
    assert_eq!(on.value("import_dev_null").as_deref(), Some("Some(ERROR_INVALID_EXTERNAL_HANDLE)"));
}

#[test]
fn fd_count_stays_flat_over_ten_thousand_import_cycles() {
    let run = client(&["external", "10000"], Layer::On, &[]).expect_ok("external 10000");
    assert_eq!(run.value("fds_before"), run.value("fds_after"), "{}", run.stdout);
}
