//! The demo application runs under the layer: the consumer sees exactly
//! the producer's frames, the layer reports the ownership transfers, and
//! the contact sheets are PNGs that decode. (Here, without `/dev/udmabuf`,
//! the image is shared as an opaque fd and the demo waits for the producer
//! itself; the kernel tier runs it on a real dma-buf, where only the layer
//! keeps the frames whole.)

mod common;

use common::{run_program, Layer};
use dynabuf_client::contact_sheet::read_png;

#[test]
fn demo_shows_frames_and_writes_contact_sheets() {
    let out = std::env::temp_dir().join(format!("dynabuf-demo-test-{}", std::process::id()));
    let envs = [("DYNABUF_LOG", "debug"), ("DYNABUF_STATS", "1")];
    let args = ["4", "--out", out.to_str().unwrap(), "--paint-work", "50", "--scan-work", "50"];
    let run = run_program(env!("CARGO_BIN_EXE_dynabuf-demo"), &args, Layer::On, &envs).expect_ok("demo");
    assert!(run.stdout.contains("demo: with-sync: 4 of 4 frames exact"), "{}", run.stdout);
    let frames = run.stdout.lines().filter(|l| l.starts_with("demo: with-sync: frame "));
    assert_eq!(
        frames.filter(|l| l.ends_with(" ms)") && l.contains("exactly the producer's frame")).count(),
        4
    );
    assert!(run.stdout.contains("demo: without-sync: "), "the run without sync did not run:\n{}", run.stdout);
    // A warm-up frame comes first. The producer acquires at every frame but
    // the warm-up and releases at every one; the consumer releases its
    // fresh import once, then acquires and releases at every frame.
    assert!(run.stderr.contains("acquires_recorded=4 releases_recorded=5"), "{}", run.stderr);
    assert!(run.stderr.contains("acquires_recorded=5 releases_recorded=6"), "{}", run.stderr);
    let sheets: Vec<_> = ["with-sync", "without-sync", "demo"]
        .iter()
        .map(|name| read_png(&out.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("{name}.png: {e}")))
        .collect();
    assert!(
        run.stdout.contains(&format!("demo: wrote {}", out.join("demo.png").display())),
        "{}",
        run.stdout
    );
    assert_eq!(sheets[0].height, sheets[2].height);
    assert!(sheets[2].width > sheets[0].width + sheets[1].width);
    std::fs::remove_dir_all(&out).unwrap();
}
