//! `dynabuf-client`: a plain Vulkan application the integration tests run
//! as a child process, with the layer enabled (or not) through the
//! environment exactly as a user would. Each subcommand prints `key=value`
//! lines on stdout and exits non-zero when its own check fails.
//!
//! ```text
//! dynabuf-client compute [SEED] [COUNT]   fill.comp once; checksum + CPU check
//! dynabuf-client probe                    which object serves hooked and unhooked functions
//! dynabuf-client multi                    three instances and devices live at once
//! dynabuf-client threads [T] [N]          T threads x N submits of increment.comp
//! dynabuf-client dmabuf-import           a udmabuf imported, GPU adds, CPU checks (needs /dev/udmabuf)
//! dynabuf-client dmabuf-export           GPU fills, exported dma-buf mapped and checked both ways
//! dynabuf-client acquire FD LEN read|write|none DISPATCH
//!                                         child of a kernel test: imports dma-buf FD
//!                                         (inherited), prints "ready", waits for "go" on
//!                                         stdin, submits an acquire + add-1000 (of LEN
//!                                         values, or none with DISPATCH 0) + release,
//!                                         waits, prints "done first=V"
//! dynabuf-client release FD LEN SEED      child: fills the dma-buf, releases it, submits
//!                                         without waiting, prints "submitted", exits on
//!                                         "exit"
//! dynabuf-client cycles FD N              N acquire/release submits and N import/free
//!                                         cycles of dma-buf FD; fd counts
//! dynabuf-client pingpong FRAMES         this process and a child (pingpong-peer) pass a
//!                                         dma-buf over a unix socket and ping-pong it
//! dynabuf-client bad-imports FD N         imports as DMA_BUF: /dev/null, a closed fd, and
//!                                         dma-buf FD (4 KiB) for 1 MiB; N times; results
//!                                         and fd counts
//! dynabuf-client budget N MIB FRAMES      N udmabufs of MIB MiB imported; FRAMES round-robin
//!                                         acquire/add/release jobs; the most dma-buf
//!                                         mappings seen in /proc/self/maps; content check
//! dynabuf-client alternate FD_A FD_B LEN  child: imports two dma-bufs; on "go K" runs
//!                                         acquire/add-1/release on A (K even) or B,
//!                                         prints "done first=V"; "exit" ends
//! dynabuf-client burst FD N               N acquire/add-1/release jobs on one dma-buf
//!                                         submitted back to back, then one wait
//! dynabuf-client refault FD              a re-validation that fails (no fd left for the
//!                                         re-import) and a retry that succeeds
//! dynabuf-client external [CYCLES]        export/import between two devices, ownership
//!                                         transfers, bad imports, then CYCLES more
//!                                         export/import/free cycles; fd counts
//! ```

use std::ffi::CStr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use ash::vk;
use dynabuf_client::compute::{self, Job, Kernel, Push, Shader, StorageBuffer};
use dynabuf_client::dmabuf;
use dynabuf_client::external::{open_fds, ownership_barrier, ExternalBuffer};
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::{object_of, Client, ClientOptions};
use dynabuf_client::{Error, Result};

fn checksum(words: &[u32]) -> u64 {
    words.iter().fold(0xcbf29ce484222325u64, |h, w| (h ^ u64::from(*w)).wrapping_mul(0x100000001b3))
}

fn arg(args: &[String], i: usize, default: u32) -> u32 {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn check_fill(c: &Client, queue: ash::vk::Queue, seed: u32, count: u32) -> Result<u64> {
    let data = compute::fill_once(c, queue, seed, count)?;
    if let Some(i) = (0..count).find(|&i| data[i as usize] != fill_expected(i, seed)) {
        return Err(Error(format!(
            "device {}: data[{i}] = {:#x}, expected {:#x}",
            c.device_name(),
            data[i as usize],
            fill_expected(i, seed)
        )));
    }
    Ok(checksum(&data))
}

fn cmd_compute(args: &[String]) -> Result<()> {
    let (seed, count) = (arg(args, 0, 0x1234_5678), arg(args, 1, 65_536));
    let c = Client::new(&ClientOptions::default())?;
    println!("device={}", c.device_name());
    let sum = check_fill(&c, c.queues[0], seed, count)?;
    println!("checksum={sum:016x}");
    println!("matches_cpu=true");
    Ok(())
}

fn cmd_probe() -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    // SAFETY: enumerating instance layers has no preconditions.
    let layers =
        unsafe { c.entry.enumerate_instance_layer_properties() }.map_err(|e| Error(format!("{e:?}")))?;
    let enumerated = layers.iter().any(|l| l.layer_name_as_c_str() == Ok(c"VK_LAYER_DYNABUF_dmabuf"));
    println!("layer_enumerated={enumerated}");
    let names: [&CStr; 6] = [
        c"vkQueueSubmit",
        c"vkCmdPipelineBarrier",
        c"vkAllocateMemory",
        c"vkCmdDispatch",
        c"vkGetMemoryFdKHR",
        c"vkGetSemaphoreFdKHR",
    ];
    for name in names {
        let object = c.device_proc_addr(name).and_then(object_of).unwrap_or_else(|| "none".into());
        println!("{}={object}", name.to_string_lossy());
    }
    Ok(())
}

fn cmd_multi() -> Result<()> {
    let a1 = Client::new(&ClientOptions::default())?;
    let b = Client::new(&ClientOptions::default())?;
    let a2 = Client::new(&ClientOptions::default())?;
    let clients = [&a1, &b, &a2];
    for round in 0..3u32 {
        for (k, c) in clients.iter().enumerate() {
            check_fill(c, c.queues[0], round * 10 + k as u32, 4096)?;
        }
    }
    // Destroy in an order other than creation's reverse.
    drop(a1);
    check_fill(&b, b.queues[0], 99, 4096)?;
    drop(b);
    check_fill(&a2, a2.queues[0], 98, 4096)?;
    println!("clients=3 ok=true");
    Ok(())
}

fn cmd_threads(args: &[String]) -> Result<()> {
    let (threads, submits) = (arg(args, 0, 8), arg(args, 1, 1000));
    let c = Arc::new(Client::new(&ClientOptions { queues: threads, ..Default::default() })?);
    // Queues beyond the family's count are shared, each behind a lock
    // (Vulkan requires external synchronisation of a queue).
    let queues: Vec<_> = c.queues.iter().map(|&q| Arc::new(Mutex::new(q))).collect();
    let kernel = Arc::new(Kernel::new(&c, Shader::Increment)?);
    let count = 256;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (c, kernel) = (c.clone(), kernel.clone());
            let queue = queues[t as usize % queues.len()].clone();
            std::thread::spawn(move || -> Result<()> {
                let mut buffer = StorageBuffer::new(&c, count)?;
                let job = Job::new(&c, &kernel, buffer.buffer, Push { seed: t + 1, count })?;
                for _ in 0..submits {
                    let q = queue.lock().map_err(|_| Error("queue lock poisoned".into()))?;
                    job.run(&c, *q)?;
                }
                let data = buffer.read()?;
                job.destroy(&c);
                buffer.destroy(&c);
                let want = submits * (t + 1);
                match data.iter().position(|&v| v != want) {
                    Some(i) => Err(Error(format!("thread {t}: data[{i}] = {}, expected {want}", data[i]))),
                    None => Ok(()),
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| Error("worker thread panicked".into()))??;
    }
    if let Ok(k) = Arc::try_unwrap(kernel) {
        k.destroy(&c);
    }
    println!("queues={} threads={threads} submits={} ok=true", queues.len(), threads * submits);
    Ok(())
}

fn cmd_external(args: &[String]) -> Result<()> {
    let cycles = arg(args, 0, 0);
    let handle_type = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
    let exporter = Client::new(&ClientOptions::default())?;
    let importer = Client::new(&ClientOptions::default())?;
    let len = 1024;

    // Share one buffer: the exporter writes it, the importer's GPU adds 1000
    // between an acquire from and a release to the outside.
    let shared = ExternalBuffer::exportable(&exporter, len, handle_type)?;
    shared.host_access(&exporter, Some(&(0..len).collect::<Vec<_>>()))?;
    let imported = ExternalBuffer::import(&importer, shared.export_fd(&exporter)?, len, handle_type)
        .map_err(|e| Error(format!("import: {e:?}")))?;
    let kernel = Kernel::new(&importer, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, importer.family);
    let job = Job::with_barriers(
        &importer,
        &kernel,
        buffer,
        Push { seed: 1000, count: len },
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_EXTERNAL, family, true),
        |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_EXTERNAL, family, false),
    )?;
    job.run(&importer, importer.queues[0])?;
    let seen = shared.host_access(&exporter, None)?;
    if let Some(i) = (0..len).find(|&i| seen[i as usize] != i + 1000) {
        return Err(Error(format!("exporter sees data[{i}] = {}, expected {}", seen[i as usize], i + 1000)));
    }
    println!("shared_content_ok=true");

    // Bad input: the driver's answer must come back unchanged.
    let dev_null = std::fs::File::open("/dev/null").map_err(|e| Error(format!("/dev/null: {e}")))?;
    let bad = ExternalBuffer::import(&importer, dev_null.into(), len, handle_type);
    println!("import_dev_null={:?}", bad.as_ref().map(|_| ()).err());
    if let Ok(b) = bad {
        b.destroy(&importer);
    }

    // Cycles: the process's fd count must not grow.
    let fds_before = open_fds();
    for _ in 0..cycles {
        let fd = shared.export_fd(&exporter)?;
        let b = ExternalBuffer::import(&importer, fd, len, handle_type)
            .map_err(|e| Error(format!("import: {e:?}")))?;
        b.destroy(&importer);
    }
    let fds_after = open_fds();
    println!("cycles={cycles} fds_before={fds_before} fds_after={fds_after}");

    job.destroy(&importer);
    kernel.destroy(&importer);
    imported.destroy(&importer);
    shared.destroy(&exporter);
    if fds_after > fds_before {
        return Err(Error(format!("fd count grew from {fds_before} to {fds_after}")));
    }
    Ok(())
}

fn cmd_dmabuf_import() -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    dmabuf::import_round_trip(&c, 4096, 7)?;
    println!("dmabuf_import_ok=true");
    Ok(())
}

fn cmd_dmabuf_export() -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    let exporter = dmabuf::export_round_trip(&c, 4096, 0xabcd)?;
    println!("exporter={exporter}");
    println!("dmabuf_export_ok=true");
    Ok(())
}

fn inherited_fd(args: &[String]) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw: i32 = args.first().and_then(|a| a.parse().ok()).ok_or_else(|| Error("missing FD".into()))?;
    if dynabuf_client::external::file_identity(raw).is_none() {
        return Err(Error(format!("fd {raw} is not open")));
    }
    // SAFETY: the parent passed this open fd for us to own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

fn line_from_stdin() -> String {
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    s.trim().to_string()
}

fn cmd_acquire(args: &[String]) -> Result<()> {
    use std::io::Write;
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let kind = match args.get(2).map(String::as_str) {
        Some("read") => dmabuf::AcquireKind::Read,
        Some("none") => dmabuf::AcquireKind::None,
        _ => dmabuf::AcquireKind::Write,
    };
    let count = if arg(args, 3, 1) == 0 { 0 } else { len };
    let c = Client::new(&ClientOptions::default())?;
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

fn cmd_release(args: &[String]) -> Result<()> {
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

fn cmd_cycles(args: &[String]) -> Result<()> {
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

fn cmd_pingpong(args: &[String]) -> Result<()> {
    use std::os::fd::AsRawFd;
    let frames = arg(args, 0, 200);
    let (mine, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Error(format!("socketpair: {e}")))?;
    // SAFETY: F_DUPFD gives an inheritable copy of our own socket.
    let inheritable = unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_DUPFD, 10) };
    let exe = std::env::current_exe().map_err(|e| Error(format!("current_exe: {e}")))?;
    let child = std::process::Command::new(exe)
        .args(["pingpong-peer", &inheritable.to_string(), &frames.to_string()])
        .spawn()
        .map_err(|e| Error(format!("spawn peer: {e}")));
    // SAFETY: our copy; the child has its own.
    unsafe { libc::close(inheritable) };
    drop(theirs);
    let mut child = child?;
    let mine_result = dynabuf_client::pingpong::run(mine, frames, true);
    let peer_ok = child.wait().map(|s| s.success()).unwrap_or(false);
    mine_result?;
    if !peer_ok {
        return Err(Error("the peer process failed".into()));
    }
    println!("frames={frames} pingpong_ok=true");
    Ok(())
}

fn cmd_pingpong_peer(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let frames = arg(args, 1, 200);
    dynabuf_client::pingpong::run(std::os::unix::net::UnixStream::from(fd), frames, false)
}

fn cmd_bad_imports(args: &[String]) -> Result<()> {
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

/// How many dma-buf mappings this process has (lavapipe maps an imported
/// dma-buf while its import lives).
fn dma_buf_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("dmabuf")).count())
        .unwrap_or(0)
}

fn cmd_budget(args: &[String]) -> Result<()> {
    use std::os::fd::AsFd;
    let (n, mib, frames) = (arg(args, 0, 4), arg(args, 1, 1), arg(args, 2, 40));
    let c = Client::new(&ClientOptions::default())?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let len = mib * (1 << 20) / 4;
    let mut buffers = Vec::new();
    let mut jobs = Vec::new();
    for _ in 0..n {
        let (fd, _memfd) =
            dynabuf::sys::udmabuf::create(u64::from(mib) << 20).map_err(|e| Error(e.to_string()))?;
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

fn cmd_alternate(args: &[String]) -> Result<()> {
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

fn cmd_burst(args: &[String]) -> Result<()> {
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

fn cmd_refault(args: &[String]) -> Result<()> {
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match args.first().map(String::as_str) {
        Some("compute") => cmd_compute(rest),
        Some("probe") => cmd_probe(),
        Some("multi") => cmd_multi(),
        Some("threads") => cmd_threads(rest),
        Some("external") => cmd_external(rest),
        Some("dmabuf-import") => cmd_dmabuf_import(),
        Some("acquire") => cmd_acquire(rest),
        Some("release") => cmd_release(rest),
        Some("cycles") => cmd_cycles(rest),
        Some("budget") => cmd_budget(rest),
        Some("alternate") => cmd_alternate(rest),
        Some("burst") => cmd_burst(rest),
        Some("refault") => cmd_refault(rest),
        Some("bad-imports") => cmd_bad_imports(rest),
        Some("pingpong") => cmd_pingpong(rest),
        Some("pingpong-peer") => cmd_pingpong_peer(rest),
        Some("dmabuf-export") => cmd_dmabuf_export(),
        _ => Err(Error(
            "usage: dynabuf-client compute|probe|multi|threads|external|dmabuf-import|dmabuf-export [args]"
                .into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dynabuf-client: {e}");
            ExitCode::FAILURE
        }
    }
}
