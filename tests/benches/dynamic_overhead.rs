//! Dynamic attachments against pinned ones and against doing it by hand,
//! for 4 MiB and 64 MiB dma-bufs. The layer reads its settings once per
//! process, so each configuration runs in a child process of this one; the
//! configurations are interleaved round by round and each reports the
//! median of its samples (the parent prints the median of round medians).
//!
//! * `pinned`: submit + wait of an acquire/add/release job (tiny GPU work);
//! * `dynamic`: the same on a dynamic attachment (a copy in and a copy out
//!   of the whole buffer per submission);
//! * `every:1`: also invalidated and re-validated at every submission;
//! * `import+memcpy`: what an application would do by hand to get the same
//!   bytes: a fresh import of the dma-buf plus a CPU memcpy of its size;
//! * `memcpy`: a CPU copy of the size.
//!
//! Needs `/dev/udmabuf`: `scripts/bench.sh` runs it in the kernel-tier VM
//! (TCG: compare within the run).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::process::Command;

use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf::{foreign_job, import_fd, AcquireKind};
use dynabuf_client::env::{set_process_env, LAYER_NAME};
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::measure::{median, ns_per_iter};
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Result};

const SAMPLES: usize = 5;

/// (label, child mode, environment).
type Config = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

fn child(mode: &str, mib: u64) -> Result<f64> {
    set_process_env();
    let size = mib << 20;
    let (dmabuf, _memfd) = udmabuf::create(size).ctx("udmabuf")?;
    let iters = if mib >= 64 { 2 } else { 8 };
    let mut samples = Vec::new();
    match mode {
        "memcpy" => {
            let src = vec![1u8; size as usize];
            let mut dst = vec![0u8; size as usize];
            for _ in 0..SAMPLES {
                samples.push(ns_per_iter(iters, || {
                    dst.copy_from_slice(std::hint::black_box(&src));
                }));
            }
        }
        _ => {
            let c = Client::new(&ClientOptions {
                layers: vec![CString::new(LAYER_NAME).expect("name")],
                ..Default::default()
            })?;
            let kernel = Kernel::new(&c, Shader::Increment)?;
            let len = (size / 4) as u32;
            if mode == "import+memcpy" {
                let mut dst = vec![0u8; size as usize];
                let src = vec![1u8; size as usize];
                for _ in 0..SAMPLES {
                    samples.push(ns_per_iter(iters, || {
                        let b = import_fd(&c, dmabuf.as_fd(), len).expect("import");
                        dst.copy_from_slice(std::hint::black_box(&src));
                        b.destroy(&c);
                    }));
                }
            } else {
                let b = import_fd(&c, dmabuf.as_fd(), len)?;
                let job = foreign_job(&c, &kernel, b.buffer, AcquireKind::Write, 1, 1024)?;
                job.run(&c, c.queues[0])?;
                for _ in 0..SAMPLES {
                    samples.push(ns_per_iter(iters, || job.run(&c, c.queues[0]).expect("submit")));
                }
                job.destroy(&c);
                b.destroy(&c);
            }
            kernel.destroy(&c);
        }
    }
    Ok(median(&mut samples))
}

fn main() -> Result<()> {
    if let Ok(mode) = std::env::var("DYNABUF_BENCH_CHILD") {
        let mib: u64 = std::env::var("DYNABUF_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
        println!("ns={}", child(&mode, mib)?);
        return Ok(());
    }
    if !udmabuf::available() {
        println!("skipped: dynamic_overhead needs /dev/udmabuf (scripts/bench.sh runs it in the VM)");
        return Ok(());
    }
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let exe = std::env::current_exe().ctx("current_exe")?;
    let configs: [Config; 5] = [
        ("pinned", "pinned", &[("DYNABUF_ATTACH", "pinned")]),
        ("dynamic", "dynamic", &[("DYNABUF_ATTACH", "dynamic")]),
        ("every:1", "dynamic", &[("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1")]),
        ("import+memcpy", "import+memcpy", &[("DYNABUF_ATTACH", "pinned")]),
        ("memcpy", "memcpy", &[]),
    ];
    println!(
        "rounds: {rounds} (configurations interleaved, each in its own process; median of round medians)"
    );
    for mib in [4u64, 64] {
        let mut per_config: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for round in 0..rounds {
            for k in 0..configs.len() {
                let k = if round % 2 == 0 { k } else { configs.len() - 1 - k };
                let (_, mode, envs) = configs[k];
                let mut cmd = Command::new(&exe);
                cmd.env("DYNABUF_BENCH_CHILD", mode).env("DYNABUF_BENCH_MIB", mib.to_string());
                for (key, v) in envs {
                    cmd.env(key, v);
                }
                let out = cmd.output().ctx("bench child")?;
                let text = String::from_utf8_lossy(&out.stdout);
                let ns: f64 = text
                    .lines()
                    .find_map(|l| l.strip_prefix("ns="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                per_config[k].push(ns);
            }
        }
        let m: Vec<f64> = per_config.iter_mut().map(|v| median(v)).collect();
        let ms = |ns: f64| ns / 1e6;
        let bytes = (mib << 20) as f64;
        println!();
        println!("{mib} MiB dma-buf                                     ms per operation");
        for (k, (name, _, _)) in configs.iter().enumerate() {
            println!("  {name:<46} {:>10.2}", ms(m[k]));
        }
        let copies = m[1] - m[0];
        let revalidation = m[2] - m[1];
        println!("  copy in + copy out per submission             {:>10.2}", ms(copies));
        println!("  re-validation (every:1 minus dynamic)         {:>10.2}", ms(revalidation));
        println!("  ratio re-validation / (fresh import + memcpy) {:>10.3}", revalidation / m[3]);
        println!(
            "  copy bandwidth {:.0} MB/s vs memcpy {:.0} MB/s: ratio {:.3}",
            2.0 * bytes / copies * 1e3,
            bytes / m[4] * 1e3,
            (2.0 * bytes / copies) / (bytes / m[4])
        );
        println!("  ratio dynamic / pinned per submission         {:>10.3}", m[1] / m[0]);
    }
    Ok(())
}
