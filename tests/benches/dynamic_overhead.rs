//! Dynamic attachments against pinned ones, against a fresh import by
//! hand and against memcpy, for 4 MiB and 64 MiB dma-bufs (issue 11). The
//! layer reads its settings once per process, so each configuration runs
//! in a child process of this one; the configurations are interleaved
//! round by round (`DYNABUF_BENCH_ROUNDS`, default 5; the order reversed
//! every other round), each child reports the median of its samples and
//! the parent prints the median of round medians.
//!
//! Per submission (submit + wait of acquire from FOREIGN, a dispatch over
//! 1024 values, release to FOREIGN), with no eviction:
//! * `pinned, write job` / `pinned, read-only job`: the two jobs below on a
//!   pinned attachment (the references);
//! * `dynamic, changed content`: the write job (acquire for writing, the
//!   increment shader, release with srcAccessMask SHADER_WRITE) on a
//!   dynamic attachment: a copy in and a copy out per submission;
//! * `dynamic, unchanged content`: the read-only job (acquire for reading
//!   carrying `VkExternalMemoryAcquireUnmodifiedEXT{TRUE}`, a shader that
//!   only reads, release with no write bit in srcAccessMask) after one
//!   warm-up without the structure (the first fill): no copy at all;
//! * `dynamic, unchanged, every:1`: the same under `DYNABUF_EVICT=every:1`:
//!   evicted, and never re-validated after its first fill (nothing it does
//!   needs the import);
//! * `dynamic, changed, every:1`: the write job evicted and re-validated at
//!   every submission (its copies need the import).
//!
//! By hand (pinned): the copy pair without the layer (one submission
//! copying the import into an ordinary buffer and back: lavapipe's copy
//! speed), a fresh import of the dma-buf (memory + buffer,
//! destroyed again), the same plus a memcpy of the size, and the same plus
//! the write job recorded and run on it (importing anew for one use: the
//! re-validation's reference). On the CPU: memcpy between anonymous buffers, and from /
//! to a mapping of the udmabuf (lavapipe's copies are CPU memcpys on its
//! queue thread from / to such a mapping, 4 KiB pages), also with a fresh
//! mapping per copy (what a re-validated import's first copy pays).
//!
//! Every layer child runs with `DYNABUF_STATS=1`; the parent reads the
//! statistics line the layer prints at device destruction and fails (exit
//! status 1, after the table) unless each configuration copied, evicted
//! and re-validated as it should. Needs `/dev/udmabuf`: `scripts/bench.sh`
//! runs it in the kernel-tier VM (TCG: compare within the run).

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::Command;

use ash::vk;
use dynabuf::sys::dma_buf::{self, Access};
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf::{foreign_transfer, import_fd, Mapping};
use dynabuf_client::env::{set_process_env, LAYER_NAME};
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::measure::{median, ns_per_iter};
use dynabuf_client::shaders;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};

/// Samples per child (each the mean of `iters` operations).
const SAMPLES: usize = 5;
/// Values each job's dispatch reads (and the write job adds 1 to).
const WORK: u32 = 1024;
/// `shaders/read.comp`: reads `data[0..count)`, writes nothing.
const READ_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/read.comp.spv"));
const UNMODIFIED_EXT: &CStr = ash::ext::external_memory_acquire_unmodified::NAME;

/// What a configuration's statistics must show (`n`: its submissions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// No layer statistics to check (CPU only).
    Nothing,
    /// Pinned: no dynamic attachment, no copy.
    Pinned,
    /// One copy in and one copy out per submission, no eviction.
    Changed,
    /// `copies_in` <= 1 (the first fill), `copies_out` = 0, no eviction.
    Unchanged,
    /// As `Unchanged`, evicted: the first fill re-validates once, nothing
    /// after it needs the import (at most one re-validation).
    EvictedUnchanged,
    /// As `Changed`, with an eviction and a re-validation per submission.
    Revalidated,
}

struct Config {
    name: &'static str,
    /// The child's mode: `write-job`, `read-job`, `import` or `cpu`.
    mode: &'static str,
    env: &'static [(&'static str, &'static str)],
    expect: Expect,
}

const PINNED: &[(&str, &str)] = &[("DYNABUF_ATTACH", "pinned")];
const DYNAMIC: &[(&str, &str)] = &[("DYNABUF_ATTACH", "dynamic")];
const EVERY_1: &[(&str, &str)] = &[("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1")];

const CONFIGS: [Config; 9] = [
    Config { name: "pinned, write job", mode: "write-job", env: PINNED, expect: Expect::Pinned },
    Config { name: "pinned, read-only job", mode: "read-job", env: PINNED, expect: Expect::Pinned },
    Config { name: "dynamic, changed content", mode: "write-job", env: DYNAMIC, expect: Expect::Changed },
    Config { name: "dynamic, unchanged content", mode: "read-job", env: DYNAMIC, expect: Expect::Unchanged },
    Config {
        name: "dynamic, unchanged, every:1",
        mode: "read-job",
        env: EVERY_1,
        expect: Expect::EvictedUnchanged,
    },
    Config {
        name: "dynamic, changed, every:1",
        mode: "write-job",
        env: EVERY_1,
        expect: Expect::Revalidated,
    },
    Config { name: "import by hand", mode: "import", env: PINNED, expect: Expect::Pinned },
    Config { name: "copy pair by hand", mode: "gpu-copy", env: PINNED, expect: Expect::Pinned },
    Config { name: "cpu", mode: "cpu", env: &[], expect: Expect::Nothing },
];
const PINNED_WRITE: usize = 0;
const PINNED_READ: usize = 1;
const CHANGED: usize = 2;
const UNCHANGED: usize = 3;
const EVERY: usize = 4;
const EVERY_CHANGED: usize = 5;
const IMPORT: usize = 6;
const GPU_COPY: usize = 7;
const CPU: usize = 8;

/// Metric names (a child prints `metric NAME NS`).
const SUBMIT: &str = "submit";
const FRESH_IMPORT: &str = "fresh-import";
const IMPORT_MEMCPY: &str = "import+memcpy";
const IMPORT_JOB: &str = "import+job";
const GPU_COPY_PAIR: &str = "gpu-copy-pair";
const ANON_ANON: &str = "anon->anon";
const UDMABUF_ANON: &str = "udmabuf->anon";
const ANON_UDMABUF: &str = "anon->udmabuf";
const FRESH_MAP_ANON: &str = "mmap+udmabuf->anon";

// ---------------------------------------------------------------- child

/// Records an acquire of `buffer` from FOREIGN: for reading and writing or
/// reading only, with `VkExternalMemoryAcquireUnmodifiedEXT{TRUE}` chained
/// when `unmodified`.
fn acquire(
    d: &ash::Device,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    family: u32,
    write: bool,
    unmodified: bool,
) {
    let dst = if write {
        vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE
    } else {
        vk::AccessFlags::SHADER_READ
    };
    foreign_transfer(d, cb, buffer, family, true, dst, vk::PipelineStageFlags::COMPUTE_SHADER, unmodified);
}

/// Records a release of `buffer` to FOREIGN, with srcAccessMask
/// SHADER_WRITE when the job `wrote`, else none.
fn release(d: &ash::Device, cb: vk::CommandBuffer, buffer: vk::Buffer, family: u32, wrote: bool) {
    let src = if wrote { vk::AccessFlags::SHADER_WRITE } else { vk::AccessFlags::empty() };
    foreign_transfer(d, cb, buffer, family, false, src, vk::PipelineStageFlags::COMPUTE_SHADER, false);
}

/// The increment kernel's layouts with `shaders/read.comp` as pipeline.
fn read_kernel(c: &Client) -> Result<Kernel> {
    let mut k = Kernel::new(c, Shader::Increment)?;
    let code = shaders::words(READ_SPV);
    // SAFETY: valid create infos; the module is destroyed once the
    // pipeline is made, the replaced pipeline was never used.
    let made = unsafe {
        c.device
            .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
            .ctx("vkCreateShaderModule")
            .and_then(|module| {
                let stage = vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::COMPUTE)
                    .module(module)
                    .name(c"main");
                let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(k.layout)];
                let p = c.device.create_compute_pipelines(vk::PipelineCache::null(), &info, None);
                c.device.destroy_shader_module(module, None);
                p.map(|p| p[0]).map_err(|(_, e)| Error(format!("vkCreateComputePipelines: {e:?}")))
            })
    };
    match made {
        Ok(p) => {
            // SAFETY: the increment pipeline, never used.
            unsafe { c.device.destroy_pipeline(k.pipeline, None) };
            k.pipeline = p;
            Ok(k)
        }
        Err(e) => {
            k.destroy(c);
            Err(e)
        }
    }
}

/// A job over `buffer`: the write job (acquire for writing, add 1,
/// release with SHADER_WRITE) or the read-only one (acquire for reading,
/// `unmodified` or not, read, release without write bits).
fn job(c: &Client, kernel: &Kernel, buffer: vk::Buffer, write: bool, unmodified: bool) -> Result<Job> {
    let family = c.family;
    Job::with_barriers(
        c,
        kernel,
        buffer,
        Push { seed: u32::from(write), count: WORK },
        |d, cb| acquire(d, cb, buffer, family, write, unmodified),
        |d, cb| release(d, cb, buffer, family, write),
    )
}

fn print_metric(name: &str, samples: &mut [f64]) {
    println!("metric {name} {}", median(samples));
}

/// Submit + wait of one job, `iters` per sample.
fn child_jobs(mode: &str, dmabuf: BorrowedFd<'_>, size: u64, iters: u32) -> Result<()> {
    let c = Client::new(&ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("name")],
        extra_extensions: vec![UNMODIFIED_EXT.into()],
        ..Default::default()
    })?;
    println!("unmodified_ext {}", u8::from(c.has_extension(UNMODIFIED_EXT)));
    let write = mode == "write-job";
    let kernel = if write { Kernel::new(&c, Shader::Increment)? } else { read_kernel(&c)? };
    let b = import_fd(&c, dmabuf, (size / 4) as u32)?;
    // The first submission fills a dynamic attachment's backing: no claim
    // that it is unmodified.
    let first = job(&c, &kernel, b.buffer, write, false)?;
    let measured = if write { None } else { Some(job(&c, &kernel, b.buffer, false, true)?) };
    let outcome = (|| -> Result<()> {
        first.run(&c, c.queues[0])?;
        let j = measured.as_ref().unwrap_or(&first);
        let mut samples = Vec::new();
        let mut failed = None;
        for _ in 0..SAMPLES {
            samples.push(ns_per_iter(iters, || {
                if let Err(e) = j.run(&c, c.queues[0]) {
                    failed.get_or_insert(e);
                }
            }));
        }
        if let Some(e) = failed {
            return Err(e);
        }
        println!("submissions {}", 1 + SAMPLES as u32 * iters);
        print_metric(SUBMIT, &mut samples);
        Ok(())
    })();
    first.destroy(&c);
    if let Some(m) = measured {
        m.destroy(&c);
    }
    b.destroy(&c);
    kernel.destroy(&c);
    outcome
}

/// A fresh import (memory + buffer) destroyed again, alone, with a memcpy
/// of the size, and with the write job recorded and run on it (what an
/// application pays to import a buffer anew for one use).
fn child_import(dmabuf: BorrowedFd<'_>, size: u64, iters: u32) -> Result<()> {
    let c = Client::new(&ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("name")],
        ..Default::default()
    })?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let mut job_failed = None;
    let mut import_and_run = || {
        let r = import_fd(&c, dmabuf, (size / 4) as u32).and_then(|b| {
            let r = job(&c, &kernel, b.buffer, true, false).and_then(|j| {
                let r = j.run(&c, c.queues[0]);
                j.destroy(&c);
                r
            });
            b.destroy(&c);
            r
        });
        if let Err(e) = r {
            job_failed.get_or_insert(e);
        }
    };
    import_and_run();
    let mut with_job = Vec::new();
    for _ in 0..SAMPLES {
        with_job.push(ns_per_iter(iters, &mut import_and_run));
    }
    kernel.destroy(&c);
    if let Some(e) = job_failed {
        return Err(e);
    }
    print_metric(IMPORT_JOB, &mut with_job);
    let len = (size / 4) as u32;
    let src = vec![1u32; len as usize];
    let mut dst = vec![0u32; len as usize];
    let mut failed = None;
    let mut once = |copy: bool, dst: &mut [u32]| match import_fd(&c, dmabuf, len) {
        Ok(b) => {
            if copy {
                dst.copy_from_slice(std::hint::black_box(&src));
            }
            b.destroy(&c);
        }
        Err(e) => {
            failed.get_or_insert(e);
        }
    };
    once(true, &mut dst);
    let (mut fresh, mut with_copy) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        fresh.push(ns_per_iter(iters, || once(false, &mut dst)));
        with_copy.push(ns_per_iter(iters, || once(true, &mut dst)));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    print_metric(FRESH_IMPORT, &mut fresh);
    print_metric(IMPORT_MEMCPY, &mut with_copy);
    Ok(())
}

/// The copy pair by hand, without the layer's part in it: one submission
/// copying the pinned import into an ordinary buffer and back with
/// `vkCmdCopyBuffer` (what lavapipe's copies cost on their own).
fn child_gpu_copy(dmabuf: BorrowedFd<'_>, size: u64, iters: u32) -> Result<()> {
    let c = Client::new(&ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("name")],
        ..Default::default()
    })?;
    let len = (size / 4) as u32;
    let b = import_fd(&c, dmabuf, len)?;
    let other = dynabuf_client::compute::StorageBuffer::new(&c, len)?;
    let d = &c.device;
    // SAFETY: valid create infos; every object is destroyed below, after
    // the last submission was waited for.
    let outcome = unsafe {
        (|| -> Result<()> {
            let pool = d
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(c.family), None)
                .ctx("vkCreateCommandPool")?;
            let cb = d
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1),
                )
                .ctx("vkAllocateCommandBuffers")?[0];
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).ctx("vkCreateFence")?;
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default()).ctx("vkBeginCommandBuffer")?;
            let region = [vk::BufferCopy::default().size(size)];
            let between = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_READ)];
            let transfer = vk::PipelineStageFlags::TRANSFER;
            d.cmd_copy_buffer(cb, b.buffer, other.buffer, &region);
            d.cmd_pipeline_barrier(cb, transfer, transfer, vk::DependencyFlags::empty(), &between, &[], &[]);
            d.cmd_copy_buffer(cb, other.buffer, b.buffer, &region);
            d.end_command_buffer(cb).ctx("vkEndCommandBuffer")?;
            let cbs = [cb];
            let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
            let mut failed = None;
            let mut run = || {
                let r = d
                    .queue_submit(c.queues[0], &submit, fence)
                    .and_then(|_| d.wait_for_fences(&[fence], true, 60_000_000_000))
                    .and_then(|_| d.reset_fences(&[fence]));
                if let Err(e) = r {
                    failed.get_or_insert(e);
                }
            };
            run();
            let mut samples = Vec::new();
            for _ in 0..SAMPLES {
                samples.push(ns_per_iter(iters, &mut run));
            }
            d.destroy_fence(fence, None);
            d.destroy_command_pool(pool, None);
            if let Some(e) = failed {
                return Err(Error(format!("copy pair: {e:?}")));
            }
            print_metric(GPU_COPY_PAIR, &mut samples);
            Ok(())
        })()
    };
    other.destroy(&c);
    b.destroy(&c);
    outcome
}

/// memcpy of the size: anonymous to anonymous, from and to a mapping of the
/// udmabuf, and from a fresh mapping of it (mmap + copy + munmap).
fn child_cpu(dmabuf: BorrowedFd<'_>, size: u64, iters: u32) -> Result<()> {
    let n = size as usize;
    let src = vec![1u32; n / 4];
    let mut dst = vec![0u32; n / 4];
    let mut map = Mapping::new(dmabuf, n)?;
    dma_buf::cpu_access(dmabuf, Access::ReadWrite, true).ctx("DMA_BUF_IOCTL_SYNC start")?;
    let fresh_map = |dst: &mut [u32]| -> Result<()> {
        let mut m = Mapping::new(dmabuf, n)?;
        dst.copy_from_slice(std::hint::black_box(m.words()));
        Ok(())
    };
    // Warm: every page of each buffer and of the mapping touched once.
    dst.copy_from_slice(&src);
    map.words().copy_from_slice(&src);
    fresh_map(&mut dst)?;
    let mut s: [Vec<f64>; 4] = Default::default();
    let mut failed = None;
    for _ in 0..SAMPLES {
        s[0].push(ns_per_iter(iters, || dst.copy_from_slice(std::hint::black_box(&src))));
        s[1].push(ns_per_iter(iters, || dst.copy_from_slice(std::hint::black_box(map.words()))));
        s[2].push(ns_per_iter(iters, || map.words().copy_from_slice(std::hint::black_box(&src))));
        s[3].push(ns_per_iter(iters, || {
            if let Err(e) = fresh_map(&mut dst) {
                failed.get_or_insert(e);
            }
        }));
    }
    dma_buf::cpu_access(dmabuf, Access::ReadWrite, false).ctx("DMA_BUF_IOCTL_SYNC end")?;
    if let Some(e) = failed {
        return Err(e);
    }
    for (name, samples) in [ANON_ANON, UDMABUF_ANON, ANON_UDMABUF, FRESH_MAP_ANON].into_iter().zip(&mut s) {
        print_metric(name, samples);
    }
    Ok(())
}

fn child(mode: &str, mib: u64) -> Result<()> {
    set_process_env();
    let size = mib << 20;
    let (dmabuf, _memfd) = udmabuf::create(size).ctx("udmabuf")?;
    // Jobs that copy 64 MiB take long: fewer of them per sample.
    let iters = if mib >= 64 && mode != "read-job" { 2 } else { 8 };
    match mode {
        "write-job" | "read-job" => child_jobs(mode, dmabuf.as_fd(), size, iters),
        "import" => child_import(dmabuf.as_fd(), size, iters),
        "gpu-copy" => child_gpu_copy(dmabuf.as_fd(), size, iters),
        "cpu" => child_cpu(dmabuf.as_fd(), size, iters),
        other => Err(Error(format!("unknown child mode {other:?}"))),
    }
}

// --------------------------------------------------------------- parent

/// What one child reported.
#[derive(Debug, Default)]
struct Report {
    metrics: BTreeMap<String, f64>,
    submissions: Option<u64>,
    unmodified_ext: Option<bool>,
    /// The layer's statistics line, as `name=value` words.
    stats: Option<BTreeMap<String, u64>>,
}

fn parse_report(stdout: &str, stderr: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["metric", name, ns] => {
                r.metrics.insert((*name).to_string(), ns.parse().unwrap_or(f64::NAN));
            }
            ["submissions", n] => r.submissions = n.parse().ok(),
            ["unmodified_ext", v] => r.unmodified_ext = Some(*v == "1"),
            _ => {}
        }
    }
    r.stats = stderr.lines().rev().find(|l| l.contains("stats for") && l.contains(" copies_in=")).map(|l| {
        l.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect()
    });
    r
}

/// The statistics a check looks at, as `name=value` words.
fn summary(r: &Report) -> String {
    let Some(stats) = &r.stats else { return "no statistics line".into() };
    ["copies_in", "copies_out", "dynamic_attachments", "evictions", "revalidations"]
        .iter()
        .map(|k| format!("{k}={}", stats.get(*k).map_or("?".into(), u64::to_string)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a child's statistics against what its configuration expects;
/// `Err` says what was expected and what was seen.
fn check(expect: Expect, r: &Report) -> std::result::Result<(), String> {
    if expect == Expect::Nothing {
        return Ok(());
    }
    let Some(stats) = &r.stats else {
        return Err("no statistics line from the layer on the child's stderr (DYNABUF_STATS=1)".into());
    };
    let get = |k: &str| stats.get(k).copied().unwrap_or(u64::MAX);
    let seen = format!("saw {}", summary(r));
    let n = r.submissions.unwrap_or(0);
    let (ok, wanted) = match expect {
        Expect::Nothing => (true, String::new()),
        Expect::Pinned => (
            get("dynamic_attachments") == 0 && get("copies_in") == 0 && get("copies_out") == 0,
            "no dynamic attachment and no copy".to_string(),
        ),
        Expect::Changed => (
            get("dynamic_attachments") >= 1
                && get("copies_in") == n
                && get("copies_out") == n
                && get("evictions") == 0,
            format!("a dynamic attachment, copies_in={n} copies_out={n} (one each per submission), no eviction"),
        ),
        Expect::Unchanged => (
            get("dynamic_attachments") >= 1
                && get("copies_in") <= 1
                && get("copies_out") == 0
                && get("evictions") == 0,
            format!("a dynamic attachment, copies_in <= 1 (the first fill) and copies_out=0 over {n} submissions, no eviction"),
        ),
        Expect::EvictedUnchanged => (
            get("dynamic_attachments") >= 1
                && get("copies_in") <= 1
                && get("copies_out") == 0
                && get("evictions") >= 1
                && get("revalidations") <= 1,
            format!(
                "a dynamic attachment, evicted (evictions >= 1) and re-validated at most once (its first fill), copies_in <= 1 and copies_out=0 over {n} submissions"
            ),
        ),
        Expect::Revalidated => (
            get("dynamic_attachments") >= 1
                && get("copies_in") == n
                && get("copies_out") == n
                && (n.saturating_sub(1)..=n).contains(&get("evictions"))
                && (n.saturating_sub(1)..=n).contains(&get("revalidations")),
            format!(
                "a dynamic attachment, an eviction and a re-validation per submission ({}..={n} each), copies_in=copies_out={n}",
                n.saturating_sub(1)
            ),
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {wanted}; {seen}"))
    }
}

fn main() -> Result<()> {
    if let Ok(mode) = std::env::var("DYNABUF_BENCH_CHILD") {
        let mib: u64 = std::env::var("DYNABUF_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
        return child(&mode, mib);
    }
    if !udmabuf::available() {
        println!("skipped: dynamic_overhead needs /dev/udmabuf (scripts/bench.sh runs it in the VM)");
        return Ok(());
    }
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let exe = std::env::current_exe().ctx("current_exe")?;
    println!(
        "rounds: {rounds} (configurations interleaved, each in its own process; median of round medians)"
    );
    // (config, size) -> (rounds it failed, the first failure).
    let mut failures: BTreeMap<(usize, u64), (usize, String)> = BTreeMap::new();
    let mut unmodified_ext = None;
    // (config, size) -> the statistics of its last child, with its submissions.
    let mut seen: BTreeMap<(usize, u64), String> = BTreeMap::new();
    for mib in [4u64, 64] {
        let mut per: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
        for round in 0..rounds {
            for k in 0..CONFIGS.len() {
                let k = if round % 2 == 0 { k } else { CONFIGS.len() - 1 - k };
                let cfg = &CONFIGS[k];
                let mut cmd = Command::new(&exe);
                cmd.env("DYNABUF_BENCH_CHILD", cfg.mode)
                    .env("DYNABUF_BENCH_MIB", mib.to_string())
                    .env("DYNABUF_STATS", "1")
                    .env_remove("DYNABUF_ATTACH")
                    .env_remove("DYNABUF_EVICT");
                for (key, v) in cfg.env {
                    cmd.env(key, v);
                }
                let out = cmd.output().ctx("bench child")?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let report = parse_report(&stdout, &stderr);
                let verdict = if out.status.success() {
                    check(cfg.expect, &report)
                } else {
                    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                    Err(format!(
                        "the child failed ({}): {}",
                        out.status,
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ))
                };
                if let Err(why) = verdict {
                    failures.entry((k, mib)).or_insert((0, why)).0 += 1;
                }
                if cfg.expect != Expect::Nothing {
                    let n = report.submissions.map_or(String::new(), |n| format!(" over {n} submissions"));
                    seen.insert((k, mib), format!("{}{n}", summary(&report)));
                }
                if report.unmodified_ext.is_some() && cfg.env == DYNAMIC {
                    unmodified_ext = report.unmodified_ext;
                }
                for (name, ns) in report.metrics {
                    per.entry((k, name)).or_default().push(ns);
                }
            }
        }
        let m = |k: usize, name: &str| {
            per.get(&(k, name.to_string())).map_or(f64::NAN, |v| median(&mut v.clone()))
        };
        print_size(mib, &m, &failures);
    }
    println!();
    println!("layer statistics (DYNABUF_STATS=1), each configuration's last child:");
    for ((k, mib), what) in &seen {
        println!("  {:<30} {mib:>2} MiB: {what}", CONFIGS[*k].name);
    }
    match unmodified_ext {
        Some(true) => println!("VK_EXT_external_memory_acquire_unmodified: enabled on the device"),
        Some(false) => println!(
            "VK_EXT_external_memory_acquire_unmodified: not offered (neither driver nor layer): the structure is chained anyway"
        ),
        None => println!("VK_EXT_external_memory_acquire_unmodified: no child reported"),
    }
    if failures.is_empty() {
        println!("statistics: every configuration copied, evicted and re-validated as expected");
        return Ok(());
    }
    println!();
    for ((k, mib), (times, why)) in &failures {
        println!("FAILED: {} at {mib} MiB ({times} of {rounds} rounds): {why}", CONFIGS[*k].name);
    }
    eprintln!(
        "dynamic_overhead: {} configuration(s) did not behave as expected (see FAILED above)",
        failures.len()
    );
    std::process::exit(1);
}

fn goal(value: f64, target: f64, at_most: bool) -> String {
    let (sign, met) = if at_most { ("<=", value <= target) } else { (">=", value >= target) };
    format!("goal {sign} {target}: {}", if met { "met" } else { "NOT met" })
}

fn print_size(mib: u64, m: &dyn Fn(usize, &str) -> f64, failures: &BTreeMap<(usize, u64), (usize, String)>) {
    let ms = |ns: f64| ns / 1e6;
    let bytes = (mib << 20) as f64;
    let mbps = |ns: f64| bytes / ns * 1e3;
    println!();
    println!("{mib} MiB dma-buf                                            ms per operation");
    let rows: [(&str, f64); 14] = [
        ("submit + wait, pinned, write job", m(PINNED_WRITE, SUBMIT)),
        ("submit + wait, pinned, read-only job", m(PINNED_READ, SUBMIT)),
        ("submit + wait, dynamic, changed content", m(CHANGED, SUBMIT)),
        ("submit + wait, dynamic, unchanged content", m(UNCHANGED, SUBMIT)),
        ("submit + wait, dynamic, unchanged, every:1", m(EVERY, SUBMIT)),
        ("submit + wait, dynamic, changed, every:1", m(EVERY_CHANGED, SUBMIT)),
        ("fresh import + destroy (by hand, pinned)", m(IMPORT, FRESH_IMPORT)),
        ("fresh import + write job + destroy (by hand)", m(IMPORT, IMPORT_JOB)),
        ("fresh import + memcpy + destroy (by hand)", m(IMPORT, IMPORT_MEMCPY)),
        ("vkCmdCopyBuffer import -> buffer -> import (by hand)", m(GPU_COPY, GPU_COPY_PAIR)),
        ("memcpy anonymous -> anonymous", m(CPU, ANON_ANON)),
        ("memcpy udmabuf mapping -> anonymous", m(CPU, UDMABUF_ANON)),
        ("memcpy anonymous -> udmabuf mapping", m(CPU, ANON_UDMABUF)),
        ("mmap udmabuf + memcpy -> anonymous + munmap", m(CPU, FRESH_MAP_ANON)),
    ];
    for (name, ns) in rows {
        println!("  {name:<52} {:>10.2}", ms(ns));
    }
    // What eviction adds per submission once it must re-validate (the
    // changed content needs the import), against what importing anew for
    // one use costs by hand (import + the same job + destroy, minus the job
    // on a kept import).
    let revalidation = m(EVERY_CHANGED, SUBMIT) - m(CHANGED, SUBMIT);
    let fresh_use = m(IMPORT, IMPORT_JOB) - m(PINNED_WRITE, SUBMIT);
    // The copy cost is changed - unchanged; while the unchanged
    // configuration still copies (its check failed) that is no copy at
    // all, and changed - pinned (write job) stands in for it.
    let unchanged_copies = failures.contains_key(&(UNCHANGED, mib));
    let (copies, copies_from) = if unchanged_copies {
        (m(CHANGED, SUBMIT) - m(PINNED_WRITE, SUBMIT), "changed - pinned write job")
    } else {
        (m(CHANGED, SUBMIT) - m(UNCHANGED, SUBMIT), "changed - unchanged")
    };
    println!("  {:<52} {:>10.2}", "re-validation (changed: every:1 - no eviction)", ms(revalidation));
    println!("  {:<52} {:>10.2}", "fresh import for one use (import+job - job)", ms(fresh_use));
    println!("  {:<52} {:>10.2}", format!("copy in + copy out ({copies_from})"), ms(copies));
    if unchanged_copies {
        println!("    (the unchanged configuration still copies: changed - unchanged would be no copy)");
    }
    println!("  ratios");
    let ratio = |label: &str, value: f64, note: &str| {
        println!("{}", format!("    {label:<48} {value:>8.3}  {note}").trim_end())
    };
    let unchanged = m(UNCHANGED, SUBMIT) / m(PINNED_READ, SUBMIT);
    ratio("unchanged / pinned (read-only job)", unchanged, &goal(unchanged, 1.1, true));
    let evicted = m(EVERY, SUBMIT) / m(PINNED_READ, SUBMIT);
    ratio("unchanged, every:1 / pinned (read-only job)", evicted, &goal(evicted, 1.1, true));
    ratio("changed / pinned (write job)", m(CHANGED, SUBMIT) / m(PINNED_WRITE, SUBMIT), "");
    println!("    remap: not available on this driver");
    let reval = revalidation / fresh_use;
    ratio("re-validation / fresh import for one use", reval, &goal(reval, 1.5, true));
    ratio("re-validation / fresh import alone", revalidation / m(IMPORT, FRESH_IMPORT), "");
    // A re-validated import's first copies fault every page of a fresh
    // mapping in; an import used in full pays the same.
    let used_in_full = revalidation / m(CPU, FRESH_MAP_ANON);
    ratio(
        "re-validation / (fresh mapping + memcpy of the size)",
        used_in_full,
        &goal(used_in_full, 1.5, true),
    );
    let copy_bw = 2.0 * bytes / copies * 1e3;
    let memcpy_bw = mbps(m(CPU, ANON_ANON));
    let bw = copy_bw / memcpy_bw;
    ratio(
        &format!("copy bandwidth / memcpy ({copy_bw:.0} / {memcpy_bw:.0} MB/s)"),
        bw,
        &goal(bw, 0.8, false),
    );
    let by_hand = 2.0 * bytes / m(GPU_COPY, GPU_COPY_PAIR) * 1e3;
    ratio(
        &format!("copy bandwidth / lavapipe's own copy ({copy_bw:.0} / {by_hand:.0} MB/s)"),
        copy_bw / by_hand,
        "",
    );
    ratio(&format!("lavapipe's own copy / memcpy ({by_hand:.0} MB/s)"), by_hand / memcpy_bw, "");
    for (what, metric) in [
        ("memcpy from udmabuf / anonymous memcpy", UDMABUF_ANON),
        ("memcpy to udmabuf / anonymous memcpy", ANON_UDMABUF),
        ("mmap + memcpy from udmabuf / anonymous", FRESH_MAP_ANON),
    ] {
        let r = mbps(m(CPU, metric)) / memcpy_bw;
        ratio(what, r, &format!("({:.0} MB/s)", mbps(m(CPU, metric))));
    }
}
