//! `dynabuf-demo`: a small Vulkan application with two devices sharing an
//! image, run under the dynabuf layer by `scripts/demo.sh`. The producer
//! renders frames (a Julia set and a turning pinwheel, several draw calls)
//! into a dma-buf image with a DRM format modifier and releases it to
//! `VK_QUEUE_FAMILY_FOREIGN_EXT`; the consumer acquires it and samples it;
//! the application submits the consumer right after the producer, waiting
//! for neither in between. The application itself knows nothing of the
//! layer: it prints what it does on stdout, and the layer (with
//! `DYNABUF_LOG=debug` and `DYNABUF_STATS=1`) prints what it saw on stderr.
//!
//! It runs the frames twice: as the environment says (the layer syncing),
//! then again in a child process of itself with `DYNABUF_SYNC=off`, and
//! writes what the consumer saw as contact sheets: `with-sync.png`,
//! `without-sync.png` and both side by side in `demo.png` (a green frame:
//! exactly the producer's; red: not).
//!
//! `dynabuf-demo [FRAMES] [--out DIR] [--only with-sync|without-sync]
//! [--paint-work N] [--scan-work N]` (12 frames into `target/demo` by
//! default). `--only` runs one of the two; `without-sync` sets
//! `DYNABUF_SYNC=off` itself. The exit status is non-zero when, with sync,
//! the consumer saw anything but the producer's frames.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use dynabuf_client::contact_sheet::{contact_sheet, read_png, side_by_side, write_png, Picture};
use dynabuf_client::scenario::{client_options, show_frames, Options, Shown};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    WithSync,
    WithoutSync,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::WithSync => "with-sync",
            Run::WithoutSync => "without-sync",
        }
    }
}

struct Args {
    opts: Options,
    out: PathBuf,
    only: Option<Run>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let mut parsed = Args { opts: Options::default(), out: PathBuf::from("target/demo"), only: None };
    let number = |v: Option<String>, what: &str| -> Result<u32> {
        v.and_then(|v| v.parse().ok()).ok_or_else(|| Error(format!("{what} wants a number")))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => {
                parsed.out =
                    args.next().map(PathBuf::from).ok_or_else(|| Error("--out wants a dir".into()))?
            }
            "--only" => {
                parsed.only = Some(match args.next().as_deref() {
                    Some("with-sync") => Run::WithSync,
                    Some("without-sync") => Run::WithoutSync,
                    other => return Err(Error(format!("--only with-sync|without-sync, not {other:?}"))),
                })
            }
            "--paint-work" => parsed.opts.paint_work = number(args.next(), "--paint-work")?,
            "--scan-work" => parsed.opts.scan_work = number(args.next(), "--scan-work")?,
            frames => parsed.opts.frames = number(Some(frames.to_string()), "FRAMES")?.max(1),
        }
    }
    Ok(parsed)
}

/// Runs the frames in this process and writes `DIR/<run>.png`; returns the
/// sheet and whether every frame was exact.
fn run(kind: Run, args: &Args) -> Result<(Picture, bool)> {
    let start = Instant::now();
    let options = client_options();
    let producer = Client::new(&options)?;
    let consumer = Client::new(&options)?;
    println!("demo: {}: producer and consumer are two devices on {}", kind.name(), producer.device_name());
    let Shown { app_waited, frames, .. } =
        show_frames(&producer, &consumer, args.opts, &mut |line| println!("demo: {}: {line}", kind.name()))?;
    let exact = frames.iter().filter(|f| f.differing() == 0).count();
    println!(
        "demo: {}: {exact} of {} frames exact ({:.1} s{})",
        kind.name(),
        frames.len(),
        start.elapsed().as_secs_f64(),
        if app_waited { ", the application waiting for the producer itself" } else { "" }
    );
    let (w, h) = (args.opts.width, args.opts.height);
    let pictures: Vec<_> =
        frames.iter().map(|f| (Picture::from_rgba_words(w, h, &f.seen), f.differing() == 0)).collect();
    let sheet = contact_sheet(&pictures, 4);
    let path = args.out.join(format!("{}.png", kind.name()));
    write_png(&path, &sheet)?;
    println!("demo: wrote {}", path.display());
    Ok((sheet, exact == frames.len()))
}

/// Runs the frames again in a child process of this program with
/// `DYNABUF_SYNC=off`, and reads its sheet back.
fn run_without_sync_child(args: &Args) -> Result<Picture> {
    let exe = std::env::current_exe().ctx("current_exe")?;
    let o = args.opts;
    let status = Command::new(exe)
        .arg(o.frames.to_string())
        .args(["--only", Run::WithoutSync.name(), "--out"])
        .arg(&args.out)
        .args(["--paint-work", &o.paint_work.to_string(), "--scan-work", &o.scan_work.to_string()])
        .env("DYNABUF_SYNC", "off")
        .status()
        .ctx("running the demo again without sync")?;
    if !status.success() {
        return Err(Error(format!("the run without sync failed: {status}")));
    }
    read_png(&args.out.join(format!("{}.png", Run::WithoutSync.name())))
}

fn main() -> ExitCode {
    let outcome = parse(std::env::args().skip(1)).and_then(|args| {
        std::fs::create_dir_all(&args.out).ctx(&format!("create {}", args.out.display()))?;
        if args.only == Some(Run::WithoutSync) {
            // Before any Vulkan call: the layer reads its settings once.
            std::env::set_var("DYNABUF_SYNC", "off");
        }
        match args.only {
            Some(kind) => run(kind, &args).map(|(_, exact)| kind == Run::WithoutSync || exact),
            None => {
                let (synced, exact) = run(Run::WithSync, &args)?;
                let unsynced = run_without_sync_child(&args)?;
                write_side_by_side(&args.out, &synced, &unsynced)?;
                Ok(exact)
            }
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("demo: failed: with sync, the consumer saw frames the producer did not draw");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo: failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_side_by_side(out: &Path, synced: &Picture, unsynced: &Picture) -> Result<()> {
    let path = out.join("demo.png");
    write_png(&path, &side_by_side(&[synced, unsynced]))?;
    println!("demo: wrote {} (left: with sync, right: DYNABUF_SYNC=off)", path.display());
    Ok(())
}
