//! Images in dma-bufs against buffers in the same dma-bufs, under the layer
//! (enabled by name). Each part runs in child processes of this one (the
//! layer reads its settings once per process, and its statistics line, at
//! device destruction on the child's stderr, says what it made of the
//! memory); the parent checks those lines and prints the results.
//!
//! 1. **Hand-over cost per submission** (one child, default settings, so
//!    pinned): submit + wait of a small job (a 1 KiB copy out of the shared
//!    resource into a staging buffer) on a 4 MiB udmabuf imported as a
//!    `VkBuffer` (acquire from FOREIGN, release to FOREIGN: buffer
//!    barriers), on the same dma-buf imported as a 1024x1024 RGBA8 image
//!    (image barriers, `GENERAL` → `GENERAL`), the same jobs on both without
//!    a hand-over, and on ordinary memory (a buffer and an image);
//!    configurations interleaved round by round in the child, median of
//!    round medians. Buffers and images are on two devices, so each
//!    device's statistics give the layer's own time per hand-over
//!    submission for one kind.
//! 2. **Copy bandwidth of a dynamic image** (a child per configuration,
//!    interleaved round by round, median of round medians): the image job
//!    under `DYNABUF_ATTACH=pinned` and `dynamic` (the image's memory is not
//!    dedicated, so the layer makes it a dynamic attachment: a copy in and a
//!    copy out of the whole memory per submission), the buffer job likewise
//!    for comparison, and a CPU memcpy of the size; 4 MiB (1024x1024) and
//!    64 MiB (4096x4096). Bandwidth: 2 × size per submission / (dynamic −
//!    pinned time), against memcpy's.
//!
//! The image has `VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT` with modifier
//! `LINEAR` and an explicit plane layout (offset 0, row pitch width × 4)
//! where the device offers `VK_EXT_image_drm_format_modifier`, else
//! `VK_IMAGE_TILING_LINEAR`.
//!
//! Needs `/dev/udmabuf`: `scripts/bench.sh` runs it in the kernel-tier VM
//! (TCG: compare within the run). `DYNABUF_BENCH_ROUNDS` sets part 1's
//! rounds (default 41), `DYNABUF_BENCH_COPY_ROUNDS` part 2's (default 5).

use std::os::fd::AsFd;
use std::process::Command;

use ash::vk;
use dynabuf_client::compute::StorageBuffer;
use dynabuf_client::dmabuf::import_fd;
use dynabuf_client::env::set_process_env;
use dynabuf_client::external::ExternalBuffer;
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::measure::{interleaved, median, ns_per_iter};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Error, Result};

#[path = "support/image_jobs.rs"]
mod image_jobs;
use image_jobs::*;

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
const RGBA8: vk::Format = vk::Format::R8G8B8A8_UNORM;
/// `DRM_FORMAT_MOD_LINEAR`.
const MOD_LINEAR: u64 = 0;
/// The small job copies a `REGION` x `REGION` texel square (1 KiB), or
/// as many bytes of a buffer.
const REGION: u32 = 16;
const REGION_BYTES: u64 = (REGION * REGION * 4) as u64;
/// Part 1: submissions per sample, samples per round.
const PER_SAMPLE: u32 = 20;
const SAMPLES_PER_ROUND: usize = 5;
/// Part 2: samples per child.
const SAMPLES: usize = 5;
/// Settings a child must not inherit (it sets its own).
const LAYER_SETTINGS: &[&str] = &[
    "DYNABUF_ATTACH",
    "DYNABUF_EVICT",
    "DYNABUF_SYNC",
    "DYNABUF_SYNC_SCOPE",
    "DYNABUF_DISABLE",
    "DYNABUF_STATS",
    "DYNABUF_LOG_FILE",
];

/// Part 1's configurations, in the child's order: with a hand-over, on
/// the dma-buf without one, on ordinary memory.
const CONFIGS: [&str; 6] = ["buffer", "image", "bare_buffer", "bare_image", "plain_buffer", "plain_image"];

/// Part 1's child: prints `us_<config>=` per configuration, `tiling=`
/// and more. The buffers and the images live on two devices (two clients),
/// so each device's statistics line gives the layer's own time per
/// synchronised submission for one kind: the buffers' device is destroyed
/// first.
fn handover_child() -> Result<()> {
    set_process_env();
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(41);
    let (cb, ci) = (client()?, client()?);
    let tiling = Tiling::of(&ci);
    let side = 1024u32;
    let size = u64::from(side * side) * 4;
    let (dmabuf, _memfd) = udmabuf::create(size).ctx("udmabuf")?;
    let words = (size / 4) as u32;
    let shared_buffer = import_fd(&cb, dmabuf.as_fd(), words)?;
    let plain_buffer = StorageBuffer::new(&cb, words)?;
    let staging_b = StorageBuffer::new(&cb, (REGION_BYTES / 4) as u32)?;
    let shared_image = Image::import(&ci, dmabuf.as_fd(), size, side, tiling)?;
    let plain_image = Image::ordinary(&ci, side, tiling)?;
    let staging_i = StorageBuffer::new(&ci, (REGION_BYTES / 4) as u32)?;
    to_general(&ci, shared_image.image, true)?;
    to_general(&ci, plain_image.image, false)?;
    // With a hand-over, on the dma-buf without one, on ordinary memory.
    let buffer_jobs = [
        Job::new(&cb, Target::Buffer(shared_buffer.buffer), true, staging_b.buffer)?,
        Job::new(&cb, Target::Buffer(shared_buffer.buffer), false, staging_b.buffer)?,
        Job::new(&cb, Target::Buffer(plain_buffer.buffer), false, staging_b.buffer)?,
    ];
    let image_jobs = [
        Job::new(&ci, Target::Image(shared_image.image), true, staging_i.buffer)?,
        Job::new(&ci, Target::Image(shared_image.image), false, staging_i.buffer)?,
        Job::new(&ci, Target::Image(plain_image.image), false, staging_i.buffer)?,
    ];
    for job in &buffer_jobs {
        job.run(&cb)?;
    }
    for job in &image_jobs {
        job.run(&ci)?;
    }
    let time = |c: &Client, job: &Job| ns_per_iter(PER_SAMPLE, || job.run(c).expect("submit")) / 1000.0;
    let (mut a, mut b, mut p, mut q, mut x, mut y) = (
        || time(&cb, &buffer_jobs[0]),
        || time(&ci, &image_jobs[0]),
        || time(&cb, &buffer_jobs[1]),
        || time(&ci, &image_jobs[1]),
        || time(&cb, &buffer_jobs[2]),
        || time(&ci, &image_jobs[2]),
    );
    let started = std::time::Instant::now();
    let r = interleaved(rounds, SAMPLES_PER_ROUND, &mut [&mut a, &mut b, &mut p, &mut q, &mut x, &mut y]);
    println!("seconds={:.1}", started.elapsed().as_secs_f64());
    println!("device={}", ci.device_name());
    println!("tiling={}", tiling.name());
    println!("rounds={rounds}");
    for (name, us) in CONFIGS.iter().zip(&r) {
        println!("us_{name}={us}");
    }
    for job in buffer_jobs {
        job.destroy(&cb);
    }
    staging_b.destroy(&cb);
    plain_buffer.destroy(&cb);
    shared_buffer.destroy(&cb);
    drop(cb);
    for job in image_jobs {
        job.destroy(&ci);
    }
    staging_i.destroy(&ci);
    plain_image.destroy(&ci);
    shared_image.destroy(&ci);
    Ok(())
}

/// The shared resource of a part 2 child.
enum Shared {
    Image(Image),
    Buffer(ExternalBuffer),
}

/// Part 2's child: the median ns per submission (or per memcpy) as `ns=`,
/// the submissions timed as `submits=`.
fn copy_child(mode: &str, mib: u64) -> Result<()> {
    set_process_env();
    let size = mib << 20;
    let iters = if mib >= 64 { 2 } else { 8 };
    let mut samples = Vec::new();
    if mode == "memcpy" {
        let src = vec![1u8; size as usize];
        let mut dst = vec![0u8; size as usize];
        for _ in 0..SAMPLES {
            samples.push(ns_per_iter(iters, || dst.copy_from_slice(std::hint::black_box(&src))));
        }
        println!("ns={}", median(&mut samples));
        return Ok(());
    }
    let c = client()?;
    let tiling = Tiling::of(&c);
    let side = match mib {
        4 => 1024,
        64 => 4096,
        _ => return Err(Error(format!("no square RGBA8 image of {mib} MiB here"))),
    };
    let (dmabuf, _memfd) = udmabuf::create(size).ctx("udmabuf")?;
    let staging = StorageBuffer::new(&c, (REGION_BYTES / 4) as u32)?;
    let (target, shared) = match mode {
        "image" => {
            let image = Image::import(&c, dmabuf.as_fd(), size, side, tiling)?;
            to_general(&c, image.image, true)?;
            (Target::Image(image.image), Shared::Image(image))
        }
        "buffer" => {
            let buffer = import_fd(&c, dmabuf.as_fd(), (size / 4) as u32)?;
            (Target::Buffer(buffer.buffer), Shared::Buffer(buffer))
        }
        other => return Err(Error(format!("unknown child mode {other}"))),
    };
    let job = Job::new(&c, target, true, staging.buffer)?;
    job.run(&c)?;
    for _ in 0..SAMPLES {
        samples.push(ns_per_iter(iters, || job.run(&c).expect("submit")));
    }
    job.destroy(&c);
    match shared {
        Shared::Image(image) => image.destroy(&c),
        Shared::Buffer(buffer) => buffer.destroy(&c),
    }
    staging.destroy(&c);
    drop(c);
    println!("tiling={}", tiling.name());
    println!("submits={}", 1 + SAMPLES * iters as usize);
    println!("ns={}", median(&mut samples));
    Ok(())
}

/// One device's statistics: the `name=value` pairs of a `stats for` line.
type Stats = Vec<(String, u64)>;

/// What a child said: its stdout's `key=value` lines and the layer's
/// statistics (one line per device, on stderr, in destruction order).
struct Report {
    values: Vec<(String, String)>,
    stats: Vec<Stats>,
    stderr: String,
}

impl Report {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error(format!("the child printed no {key}=; its stderr:\n{}", self.stderr)))
    }

    /// `name` summed over the child's devices.
    fn stat(&self, name: &str) -> Result<u64> {
        (0..self.stats.len().max(1)).map(|i| self.stat_of(i, name)).sum()
    }

    /// `name` in the statistics of the child's `device`-th device destroyed.
    fn stat_of(&self, device: usize, name: &str) -> Result<u64> {
        let stats = self.stats.get(device).map_or(&[][..], Vec::as_slice);
        stats.iter().find(|(k, _)| k == name).map(|(_, v)| *v).ok_or_else(|| {
            Error(format!(
                "no {name} in the layer's statistics (is the layer on?); child stderr:\n{}",
                self.stderr
            ))
        })
    }
}

fn run_child(envs: &[(&str, String)]) -> Result<Report> {
    let exe = std::env::current_exe().ctx("current_exe")?;
    let mut cmd = Command::new(exe);
    for key in LAYER_SETTINGS {
        cmd.env_remove(key);
    }
    cmd.env("DYNABUF_STATS", "1");
    for (key, v) in envs {
        cmd.env(key, v);
    }
    let out = cmd.output().ctx("bench child")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(Error(format!("bench child {envs:?} failed ({}):\n{stdout}{stderr}", out.status)));
    }
    let values = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stats = stderr
        .lines()
        .filter(|l| l.contains("stats for "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
                .collect()
        })
        .collect();
    Ok(Report { values, stats, stderr })
}

fn handover() -> Result<()> {
    let r = run_child(&[("DYNABUF_BENCH_CHILD", "handover".into())])?;
    if r.stat("dynamic_attachments")? != 0 {
        return Err(Error(format!(
            "default settings made a dynamic attachment; child stderr:\n{}",
            r.stderr
        )));
    }
    let acquires = r.stat("acquires_ready")? + r.stat("acquires_waited")?;
    let releases = r.stat("releases_published")?;
    if acquires == 0 || releases == 0 {
        return Err(Error(format!("no hand-over seen by the layer; child stderr:\n{}", r.stderr)));
    }
    let us = CONFIGS.map(|k| r.number(&format!("us_{k}")));
    let [buffer, image, bare_buffer, bare_image, plain_buffer, plain_image] = us;
    let (buffer, image, bare_buffer, bare_image) = (buffer?, image?, bare_buffer?, bare_image?);
    let (plain_buffer, plain_image) = (plain_buffer?, plain_image?);
    println!(
        "device: {} (rounds: {}, interleaved in one process, median of round medians)",
        r.get("device").unwrap_or("?"),
        r.get("rounds").unwrap_or("?")
    );
    println!("image: 1024x1024 RGBA8, {}", r.get("tiling").unwrap_or("?"));
    println!();
    println!("{:<62} {:>10}", "1. submit + wait of a 1 KiB copy out of a 4 MiB resource", "µs");
    println!("{:<62} {:>10.1}", "ordinary memory, buffer", plain_buffer);
    println!("{:<62} {:>10.1}", "ordinary memory, image", plain_image);
    println!("{:<62} {:>10.1}", "dma-buf as a buffer, no hand-over", bare_buffer);
    println!("{:<62} {:>10.1}", "dma-buf as an image, no hand-over", bare_image);
    println!("{:<62} {:>10.1}", "dma-buf as a buffer, acquired + released", buffer);
    println!("{:<62} {:>10.1}", "dma-buf as an image, acquired + released (GENERAL)", image);
    println!("{:<62} {:>10.1}", "  hand-over added (vs no hand-over), buffer", buffer - bare_buffer);
    println!("{:<62} {:>10.1}", "  hand-over added (vs no hand-over), image", image - bare_image);
    println!("{:<62} {:>10.3}", "ratio image / buffer, per submit with hand-over", image / buffer);
    println!(
        "{:<62} {:>10.3}",
        "ratio image / buffer, hand-over added",
        (image - bare_image) / (buffer - bare_buffer)
    );
    println!(
        "{:<62} {:>10.3}",
        "ratio image / buffer, per submit without hand-over",
        bare_image / bare_buffer
    );
    let own = |device| r.stat_of(device, "layer_ns_per_synced_submit").map(|ns| ns as f64 / 1000.0);
    let driver = |device| -> Result<f64> {
        let n = r.stat_of(device, "submits_with_transfers")?.max(1);
        Ok(r.stat_of(device, "sync_driver_ns")? as f64 / n as f64 / 1000.0)
    };
    println!("{:<62} {:>10.1}", "  the layer's own share per hand-over submit, buffer", own(0)?);
    println!("{:<62} {:>10.1}", "  the layer's own share per hand-over submit, image", own(1)?);
    println!("{:<62} {:>10.1}", "  in the driver (submit, SYNC_FD export), buffer", driver(0)?);
    println!("{:<62} {:>10.1}", "  in the driver (submit, SYNC_FD export), image", driver(1)?);
    println!(
        "(layer: {acquires} acquires, {releases} releases published, no dynamic attachment; {} s)",
        r.get("seconds").unwrap_or("?")
    );
    Ok(())
}

/// (label, child mode, `DYNABUF_ATTACH`).
type Config = (&'static str, &'static str, Option<&'static str>);

fn copies() -> Result<()> {
    let rounds: usize =
        std::env::var("DYNABUF_BENCH_COPY_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let configs: [Config; 5] = [
        ("image, pinned", "image", Some("pinned")),
        ("image, dynamic (copy in + copy out)", "image", Some("dynamic")),
        ("buffer, pinned", "buffer", Some("pinned")),
        ("buffer, dynamic (copy in + copy out)", "buffer", Some("dynamic")),
        ("memcpy of the size", "memcpy", None),
    ];
    println!();
    println!(
        "2. dynamic attachments: {rounds} rounds (configurations interleaved, each in its own process; \
         median of round medians)"
    );
    for mib in [4u64, 64] {
        let mut per_config: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for round in 0..rounds {
            for k in 0..configs.len() {
                let k = if round % 2 == 0 { k } else { configs.len() - 1 - k };
                let (name, mode, attach) = configs[k];
                let mut envs =
                    vec![("DYNABUF_BENCH_CHILD", mode.to_string()), ("DYNABUF_BENCH_MIB", mib.to_string())];
                if let Some(a) = attach {
                    envs.push(("DYNABUF_ATTACH", a.to_string()));
                }
                let r = run_child(&envs)?;
                if let Some(attach) = attach {
                    let want = u64::from(attach == "dynamic");
                    let got = r.stat("dynamic_attachments")?;
                    if got != want {
                        return Err(Error(format!(
                            "{name}, {mib} MiB: dynamic_attachments={got}, expected {want}; child stderr:\n{}",
                            r.stderr
                        )));
                    }
                    let submits = r.number("submits")? as u64;
                    let (copies_in, copies_out) = (r.stat("copies_in")?, r.stat("copies_out")?);
                    if want == 1 && (copies_in < submits || copies_out < submits) {
                        return Err(Error(format!(
                            "{name}, {mib} MiB: {copies_in} copies in, {copies_out} out for {submits} \
                             submissions; child stderr:\n{}",
                            r.stderr
                        )));
                    }
                    if round == 0 && mode == "image" && want == 1 {
                        println!(
                            "  ({mib} MiB image: {}; a dynamic attachment: {copies_in} copies in, \
                             {copies_out} out for {submits} submissions)",
                            r.get("tiling").unwrap_or("?")
                        );
                    }
                }
                per_config[k].push(r.number("ns")?);
            }
        }
        let m: Vec<f64> = per_config.iter_mut().map(|v| median(v)).collect();
        let ms = |ns: f64| ns / 1e6;
        let bytes = (mib << 20) as f64;
        let memcpy_bw = bytes / m[4];
        let image_copies = m[1] - m[0];
        let buffer_copies = m[3] - m[2];
        println!();
        println!("{mib} MiB dma-buf                                          ms per operation");
        for (k, (name, _, _)) in configs.iter().enumerate() {
            println!("  {name:<52} {:>10.2}", ms(m[k]));
        }
        println!("  image: copy in + copy out per submission (dynamic − pinned) {:>6.2}", ms(image_copies));
        println!("  buffer: copy in + copy out per submission                  {:>6.2}", ms(buffer_copies));
        println!(
            "  image copy bandwidth {:.0} MB/s, buffer {:.0} MB/s, memcpy {:.0} MB/s",
            2.0 * bytes / image_copies * 1e3,
            2.0 * bytes / buffer_copies * 1e3,
            memcpy_bw * 1e3
        );
        println!(
            "  ratio image copy bandwidth / memcpy bandwidth      {:>10.3}",
            (2.0 * bytes / image_copies) / memcpy_bw
        );
        println!(
            "  ratio buffer copy bandwidth / memcpy bandwidth     {:>10.3}",
            (2.0 * bytes / buffer_copies) / memcpy_bw
        );
        println!("  ratio image dynamic / pinned per submission        {:>10.3}", m[1] / m[0]);
    }
    Ok(())
}

fn main() -> Result<()> {
    if let Ok(mode) = std::env::var("DYNABUF_BENCH_CHILD") {
        if mode == "handover" {
            return handover_child();
        }
        let mib: u64 = std::env::var("DYNABUF_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
        return copy_child(&mode, mib);
    }
    if !udmabuf::available() {
        println!("skipped: image_overhead needs /dev/udmabuf (scripts/bench.sh runs it in the VM)");
        return Ok(());
    }
    let started = std::time::Instant::now();
    handover()?;
    copies()?;
    println!();
    println!("(image_overhead took {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}
