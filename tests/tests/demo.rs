//! The demo application runs under the layer, every frame checks out, and
//! the layer reports what it saw.

mod common;

use common::{run_program, Layer};

#[test]
fn demo_shares_frames_and_the_layer_reports_them() {
    let envs = [("DYNABUF_LOG", "debug"), ("DYNABUF_STATS", "1")];
    let run = run_program(env!("CARGO_BIN_EXE_dynabuf-demo"), &["5"], Layer::On, &envs).expect_ok("demo");
    assert!(run.stdout.contains("5 frames of 4096 values shared as"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("producer verified 4096 values").count(), 5);
    let carried =
        run.layer_lines().iter().filter(|l| l.contains("carries 1 acquire(s), 1 release(s)")).count();
    assert_eq!(carried, 5, "{}", run.stderr);
    assert!(run.stderr.contains("acquires_recorded=5 releases_recorded=5"), "{}", run.stderr);
}
