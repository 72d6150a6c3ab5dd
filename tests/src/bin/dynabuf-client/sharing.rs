//! Subcommands sharing real dma-bufs (kernel tier): import/export, the
//! children the implicit-sync tests drive, fd-count cycles, ping-pong
//! between processes, bad imports.

use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf;
use dynabuf_client::external::{open_fds, ownership_barrier, ExternalBuffer};
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Error, Result};

use crate::{arg, inherited_fd, line_from_stdin};

pub fn cmd_dmabuf_import() -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    dmabuf::import_round_trip(&c, 4096, 7)?;
    println!("dmabuf_import_ok=true");
    Ok(())
}

pub fn cmd_dmabuf_export() -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    let exporter = dmabuf::export_round_trip(&c, 4096, 0xabcd)?;
    println!("exporter={exporter}");
    println!("dmabuf_export_ok=true");
    Ok(())
}

pub fn cmd_acquire(args: &[String]) -> Result<()> {
    use std::io::Write;
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let kind = match args.get(2).map(String::as_str) {
        Some("read") => dmabuf::AcquireKind::Read,
        Some("read-unmodified") => dmabuf::AcquireKind::ReadUnmodified,
        Some("none") => dmabuf::AcquireKind::None,
        _ => dmabuf::AcquireKind::Write,
    };
    let count = if arg(args, 3, 1) == 0 { 0 } else { len };
    let acquire_unmodified = kind == dmabuf::AcquireKind::ReadUnmodified;
    let c = Client::new(&ClientOptions { acquire_unmodified, ..Default::default() })?;
    let imported = dmabuf::import_fd(&c, std::os::fd::AsFd::as_fd(&fd), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, kind, 1000, count)?;
    println!("ready");
    let _ = std::io::stdout().flush();
    if line_from_stdin() != "go" {
        return Err(Error("expected go".into()));
    }
    let t = std::time::Instant::now();
    job.run(&c, c.queues[0])?;
    let first = dmabuf::first_value(&c, &imported)?;
    println!("done first={first} elapsed_ms={}", t.elapsed().as_millis());
    let _ = std::io::stdout().flush();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    Ok(())
}

pub fn cmd_release(args: &[String]) -> Result<()> {
    use std::io::Write;
    let fd = inherited_fd(args)?;
    let (len, seed) = (arg(args, 1, 1024), arg(args, 2, 1));
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, std::os::fd::AsFd::as_fd(&fd), len)?;
    let kernel = Kernel::new(&c, Shader::Fill)?;
    let (buffer, family) = (imported.buffer, c.family);
    let job = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed, count: len },
        |_, _| {},
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false),
    )?;
    job.submit(&c, c.queues[0])?;
    println!("submitted");
    let _ = std::io::stdout().flush();
    let _ = line_from_stdin();
    job.wait(&c)?;
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    Ok(())
}

pub fn cmd_cycles(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let n = arg(args, 1, 1000);
    let len = 1024;
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let imported = dmabuf::import_fd(&c, std::os::fd::AsFd::as_fd(&fd), len)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, dmabuf::AcquireKind::Write, 1, len)?;
    job.run(&c, c.queues[0])?;
    let before = open_fds();
    for _ in 0..n {
        job.run(&c, c.queues[0])?;
    }
    let after_submits = open_fds();
    for _ in 0..n {
        dmabuf::import_fd(&c, std::os::fd::AsFd::as_fd(&fd), len)?.destroy(&c);
    }
    let after_imports = open_fds();
    let first = dmabuf::first_value(&c, &imported)?;
    println!("fds_before={before} fds_after_submits={after_submits} fds_after_imports={after_imports} first={first}");
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    Ok(())
}

pub fn cmd_pingpong(args: &[String]) -> Result<()> {
    use std::os::fd::AsRawFd;
    let frames = arg(args, 0, 200);
    let len = arg(args, 1, dynabuf_client::pingpong::LEN);
    let handover = dynabuf_client::pingpong::Handover::parse(args.get(2).map(String::as_str))?;
    let (mine, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Error(format!("socketpair: {e}")))?;
    // SAFETY: F_DUPFD gives an inheritable copy of our own socket.
    let inheritable = unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_DUPFD, 10) };
    let exe = std::env::current_exe().map_err(|e| Error(format!("current_exe: {e}")))?;
    let child = std::process::Command::new(exe)
        .args([
            "pingpong-peer",
            &inheritable.to_string(),
            &frames.to_string(),
            &len.to_string(),
            handover.arg(),
        ])
        .spawn()
        .map_err(|e| Error(format!("spawn peer: {e}")));
    // SAFETY: our copy; the child has its own.
    unsafe { libc::close(inheritable) };
    drop(theirs);
    let mut child = child?;
    let mine_result = dynabuf_client::pingpong::run_with(mine, frames, true, len, handover);
    let peer_ok = child.wait().map(|s| s.success()).unwrap_or(false);
    mine_result?;
    if !peer_ok {
        return Err(Error("the peer process failed".into()));
    }
    println!("frames={frames} len={len} handover={} pingpong_ok=true", handover.arg());
    Ok(())
}

pub fn cmd_pingpong_peer(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let frames = arg(args, 1, 200);
    let len = arg(args, 2, dynabuf_client::pingpong::LEN);
    let handover = dynabuf_client::pingpong::Handover::parse(args.get(3).map(String::as_str))?;
    dynabuf_client::pingpong::run_with(std::os::unix::net::UnixStream::from(fd), frames, false, len, handover)
}

pub fn cmd_bad_imports(args: &[String]) -> Result<()> {
    use std::os::fd::AsFd;
    let small = inherited_fd(args)?;
    let n = arg(args, 1, 100);
    let c = Client::new(&ClientOptions::default())?;
    let dma_buf = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let attempt = |what: &str| -> String {
        let fd = match what {
            "devnull" => std::fs::File::open("/dev/null").map(std::os::fd::OwnedFd::from).ok(),
            "small" => small.as_fd().try_clone_to_owned().ok(),
            _ => None,
        };
        let r = match fd {
            Some(fd) => {
                ExternalBuffer::import(&c, fd, if what == "small" { 256 * 1024 } else { 1024 }, dma_buf)
            }
            // A closed fd number: build the import by hand.
            None => closed_fd_import(&c),
        };
        match r {
            Ok(b) => {
                b.destroy(&c);
                "SUCCESS".into()
            }
            Err(e) => format!("{e:?}"),
        }
    };
    for what in ["devnull", "closed", "small"] {
        println!("{what}={}", attempt(what));
    }
    let before = open_fds();
    for _ in 0..n {
        for what in ["devnull", "closed", "small"] {
            attempt(what);
        }
    }
    println!("fds_before={before} fds_after={}", open_fds());
    Ok(())
}

/// `vkAllocateMemory` importing fd 1000 (not open) as a dma-buf.
fn closed_fd_import(c: &Client) -> std::result::Result<ExternalBuffer, vk::Result> {
    let mut import = vk::ImportMemoryFdInfoKHR::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)
        .fd(1000);
    let info =
        vk::MemoryAllocateInfo::default().allocation_size(4096).memory_type_index(0).push_next(&mut import);
    // SAFETY: a valid allocate info; the fd number is deliberately not open
    // (the driver must refuse it).
    let memory = unsafe { c.device.allocate_memory(&info, None) }?;
    // SAFETY: the memory was just allocated and is unused.
    unsafe { c.device.free_memory(memory, None) };
    Err(vk::Result::SUCCESS)
}
