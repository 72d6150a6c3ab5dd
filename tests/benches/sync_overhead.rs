//! What implicit sync costs per submission, in one process under the layer
//! (enabled by name), on real dma-bufs: a submit+wait of a small job whose
//! command buffer acquires one dma-buf from FOREIGN and releases it, against
//! the same job on ordinary memory; and the acquiring submission with 1 and
//! with 1,000 tracked dma-bufs on the device (work per submit must scale with
//! what the submission touches, not with the registry).
//!
//! Needs `/dev/udmabuf`: `scripts/bench.sh` runs it in the kernel-tier VM
//! (TCG, so absolute times are inflated; compare within the run).

use std::ffi::CString;
use std::os::fd::AsFd;

use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader, StorageBuffer};
use dynabuf_client::dmabuf::{foreign_job, import_fd, AcquireKind};
use dynabuf_client::env::{set_process_env, LAYER_NAME};
use dynabuf_client::external::{ownership_barrier, ExternalBuffer};
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::measure::{interleaved, ns_per_iter};
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Result};

const LEN: u32 = 256;
const PER_SAMPLE: u32 = 20;

fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() -> Result<()> {
    if !udmabuf::available() {
        println!("skipped: sync_overhead needs /dev/udmabuf (scripts/bench.sh runs it in the VM)");
        return Ok(());
    }
    set_process_env();
    // The layer's statistics time its own share of each synchronised
    // submission (printed at the end); they add two clock reads per such
    // submission to every configuration alike.
    std::env::set_var("DYNABUF_STATS", "1");
    let rounds: usize = std::env::var("DYNABUF_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(11);
    let c = Client::new(&ClientOptions {
        layers: vec![CString::new(LAYER_NAME).expect("name")],
        ..Default::default()
    })?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let q = c.queues[0];

    let plain_buffer = StorageBuffer::new(&c, LEN)?;
    let plain = Job::new(&c, &kernel, plain_buffer.buffer, Push { seed: 1, count: LEN })?;
    let (dmabuf, _memfd) = udmabuf::create(4096).ctx("udmabuf")?;
    let shared = import_fd(&c, dmabuf.as_fd(), LEN)?;
    let tracked = foreign_job(&c, &kernel, shared.buffer, AcquireKind::Write, 1, LEN)?;

    let family = c.family;
    let buffer = shared.buffer;
    let acquire_only = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed: 1, count: LEN },
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, true),
        |_, _| {},
    )?;
    let release_only = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed: 1, count: LEN },
        |_, _| {},
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false),
    )?;

    let time = |job: &Job| ns_per_iter(PER_SAMPLE, || job.run(&c, q).expect("submit")) / 1000.0;
    let (mut a, mut b, mut ao, mut ro) =
        (|| time(&plain), || time(&tracked), || time(&acquire_only), || time(&release_only));
    let r = interleaved(rounds, 5, &mut [&mut a, &mut b, &mut ao, &mut ro]);
    println!("device: {} (rounds: {rounds}, median of round medians)", c.device_name());
    println!();
    println!("{:<58} {:>10}", "submit + wait of a small compute job", "µs");
    println!("{:<58} {:>10.1}", "ordinary memory", r[0]);
    println!("{:<58} {:>10.1}", "1 dma-buf acquired + released (1 tracked)", r[1]);
    println!("{:<58} {:>10.1}", "  added by implicit sync", r[1] - r[0]);
    println!("{:<58} {:>10.1}", "1 dma-buf acquired only", r[2]);
    println!("{:<58} {:>10.1}", "1 dma-buf released only", r[3]);

    // 999 more tracked dma-bufs the submission never touches (each costs
    // the driver and the layer an fd: lift the soft fd limit to the hard one).
    raise_fd_limit();
    let mut others: Vec<ExternalBuffer> = Vec::new();
    for _ in 0..999 {
        let (fd, _memfd) = udmabuf::create(4096).ctx("udmabuf")?;
        others.push(import_fd(&c, fd.as_fd(), 16)?);
    }
    let (mut a, mut b) = (|| time(&plain), || time(&tracked));
    let r2 = interleaved(rounds, 5, &mut [&mut a, &mut b]);
    println!("{:<58} {:>10.1}", "ordinary memory, 1,000 dma-bufs tracked", r2[0]);
    println!("{:<58} {:>10.1}", "1 dma-buf acquired + released (1,000 tracked)", r2[1]);
    println!();
    println!("ratio, acquiring submit with 1,000 vs 1 tracked:        {:.3}", r2[1] / r[1]);
    println!("ratio, plain submit with 1,000 vs 1 tracked:            {:.3}", r2[0] / r[0]);

    acquire_only.destroy(&c);
    release_only.destroy(&c);
    for o in others {
        o.destroy(&c);
    }
    tracked.destroy(&c);
    plain.destroy(&c);
    shared.destroy(&c);
    plain_buffer.destroy(&c);
    kernel.destroy(&c);
    Ok(())
}
