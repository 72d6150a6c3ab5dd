//! `dynabuf-demo`: a small Vulkan application with two devices sharing a
//! buffer through an exported fd, run under the dynabuf layer by
//! `scripts/demo.sh`. The application itself knows nothing of the layer: it
//! prints what it does on stdout, and the layer (with `DYNABUF_LOG=debug`
//! and `DYNABUF_STATS=1`) prints what it saw on stderr.
//!
//! `dynabuf-demo [FRAMES]` (default 3).

use std::process::ExitCode;

use dynabuf_client::scenario::share_frames;
use dynabuf_client::vulkan::{Client, ClientOptions};

fn main() -> ExitCode {
    let frames = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let run = || -> dynabuf_client::Result<()> {
        let producer = Client::new(&ClientOptions::default())?;
        let consumer = Client::new(&ClientOptions::default())?;
        println!("demo: producer and consumer are two devices on {}", producer.device_name());
        let shared = share_frames(&producer, &consumer, 4096, frames, &mut |line| println!("demo: {line}"))?;
        println!(
            "demo: {} frames of {} values shared as {:?}, every value verified",
            shared.frames, shared.len, shared.handle_type
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: failed: {e}");
            ExitCode::FAILURE
        }
    }
}
