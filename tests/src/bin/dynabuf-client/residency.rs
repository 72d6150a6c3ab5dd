//! Subcommands for dynamic attachments: budgets, alternation, bursts, a
//! failing re-validation.

use dynabuf_client::compute::{Kernel, Shader};
use dynabuf_client::dmabuf;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Error, Result};

use crate::{arg, inherited_fd, line_from_stdin};

/// How many dma-buf mappings this process has (lavapipe maps an imported
/// dma-buf while its import lives).
fn dma_buf_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("dmabuf")).count())
        .unwrap_or(0)
}

pub fn cmd_budget(args: &[String]) -> Result<()> {
    use std::os::fd::AsFd;
    let (n, mib, frames) = (arg(args, 0, 4), arg(args, 1, 1), arg(args, 2, 40));
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let len = mib * (1 << 20) / 4;
    let mut buffers = Vec::new();
    let mut jobs = Vec::new();
    for _ in 0..n {
        let (fd, _memfd) = dynabuf_client::kernel::udmabuf::create(u64::from(mib) << 20)
            .map_err(|e| Error(e.to_string()))?;
        let b = dmabuf::import_fd(&c, fd.as_fd(), len)?;
        jobs.push(dmabuf::foreign_job(&c, &kernel, b.buffer, dmabuf::AcquireKind::Write, 1, len)?);
        buffers.push(b);
    }
    let mut max_mapped = 0;
    for frame in 0..frames {
        jobs[frame as usize % jobs.len()].run(&c, c.queues[0])?;
        max_mapped = max_mapped.max(dma_buf_mappings());
    }
    for (k, b) in buffers.iter().enumerate() {
        let want = (frames as usize / n as usize + usize::from(k < frames as usize % n as usize)) as u32;
        let v = b.host_access(&c, None)?;
        if let Some(i) = v.iter().position(|&x| x != want) {
            return Err(Error(format!("buffer {k}: data[{i}] = {}, expected {want}", v[i])));
        }
    }
    println!("max_mapped={max_mapped} budget_ok=true");
    for j in jobs {
        j.destroy(&c);
    }
    for b in buffers {
        b.destroy(&c);
    }
    kernel.destroy(&c);
    Ok(())
}

pub fn cmd_alternate(args: &[String]) -> Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let a = inherited_fd(args)?;
    let b = inherited_fd(&args[1..])?;
    let len = arg(args, 2, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let bufs = [dmabuf::import_fd(&c, a.as_fd(), len)?, dmabuf::import_fd(&c, b.as_fd(), len)?];
    drop((a, b));
    let jobs = [
        dmabuf::foreign_job(&c, &kernel, bufs[0].buffer, dmabuf::AcquireKind::Write, 1, len)?,
        dmabuf::foreign_job(&c, &kernel, bufs[1].buffer, dmabuf::AcquireKind::Write, 1, len)?,
    ];
    println!("ready");
    let _ = std::io::stdout().flush();
    loop {
        let line = line_from_stdin();
        let Some(k) = line.strip_prefix("go ").and_then(|k| k.parse::<usize>().ok()) else { break };
        jobs[k % 2].run(&c, c.queues[0])?;
        let first = dmabuf::first_value(&c, &bufs[k % 2])?;
        println!("done first={first}");
        let _ = std::io::stdout().flush();
    }
    for j in jobs {
        j.destroy(&c);
    }
    for b in bufs {
        b.destroy(&c);
    }
    kernel.destroy(&c);
    Ok(())
}

pub fn cmd_burst(args: &[String]) -> Result<()> {
    use std::os::fd::AsFd;
    let fd = inherited_fd(args)?;
    let n = arg(args, 1, 20) as usize;
    let len = 1024;
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let b = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    let jobs: Vec<_> = (0..n)
        .map(|_| dmabuf::foreign_job(&c, &kernel, b.buffer, dmabuf::AcquireKind::Write, 1, len))
        .collect::<Result<_>>()?;
    for j in &jobs {
        j.submit(&c, c.queues[0])?;
    }
    for j in &jobs {
        j.wait(&c)?;
    }
    let v = b.host_access(&c, None)?;
    let bad = v.iter().position(|&x| x != n as u32);
    println!("burst={n} first={} ok={}", v[0], bad.is_none());
    for j in jobs {
        j.destroy(&c);
    }
    b.destroy(&c);
    kernel.destroy(&c);
    Ok(())
}

fn set_fd_limit(soft: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let old = lim.rlim_cur;
        lim.rlim_cur = soft.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        old
    }
}

pub fn cmd_refault(args: &[String]) -> Result<()> {
    use std::os::fd::AsFd;
    let fd = inherited_fd(args)?;
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let b = dmabuf::import_fd(&c, fd.as_fd(), 1024)?;
    let job = dmabuf::foreign_job(&c, &kernel, b.buffer, dmabuf::AcquireKind::Write, 1, 1024)?;
    job.run(&c, c.queues[0])?;
    // No fd left: the next re-validation cannot dup the layer's fd.
    let old = set_fd_limit(3);
    let failed = job.submit(&c, c.queues[0]);
    set_fd_limit(old);
    println!("faulted={}", failed.as_ref().err().map(|e| e.to_string()).unwrap_or_else(|| "no".into()));
    if failed.is_ok() {
        job.wait(&c)?;
    }
    job.run(&c, c.queues[0])?;
    println!("first={}", dmabuf::first_value(&c, &b)?);
    job.destroy(&c);
    b.destroy(&c);
    kernel.destroy(&c);
    Ok(())
}

/// `give-dmabuf SOCKFD MIB`: makes a udmabuf holding `100 + i`, sends it
/// over the inherited socket, and exits: an exporter that goes away.
pub fn cmd_give_dmabuf(args: &[String]) -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let sock = std::os::unix::net::UnixStream::from(inherited_fd(args)?);
    let bytes = u64::from(arg(args, 1, 1)) << 20;
    let (dmabuf, memfd) = dynabuf_client::kernel::udmabuf::create(bytes).map_err(|e| Error(e.to_string()))?;
    let pattern: Vec<u8> = (0..(bytes / 4) as u32).flat_map(|i| (100 + i).to_le_bytes()).collect();
    std::fs::File::from(memfd).write_all_at(&pattern, 0).map_err(|e| Error(format!("write: {e}")))?;
    dynabuf_client::pingpong::send_fd(&sock, dmabuf.as_raw_fd())?;
    Ok(())
}
