//! Subcommands on ordinary memory: compute results, which object serves a
//! function, several instances, threads, opaque-fd sharing, and an acquire
//! with `VkExternalMemoryAcquireUnmodifiedEXT`.

use std::ffi::CStr;
use std::sync::{Arc, Mutex};

use ash::vk;
use dynabuf_client::compute::{self, Job, Kernel, Push, Shader, StorageBuffer};
use dynabuf_client::dmabuf::{self, AcquireKind};
use dynabuf_client::external::{open_fds, ownership_barrier, ExternalBuffer};
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::{object_of, Client, ClientOptions};
use dynabuf_client::{Error, Result};

use crate::arg;

fn checksum(words: &[u32]) -> u64 {
    words.iter().fold(0xcbf29ce484222325u64, |h, w| (h ^ u64::from(*w)).wrapping_mul(0x100000001b3))
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

pub fn cmd_compute(args: &[String]) -> Result<()> {
    let (seed, count) = (arg(args, 0, 0x1234_5678), arg(args, 1, 65_536));
    let c = Client::new(&ClientOptions::default())?;
    println!("device={}", c.device_name());
    let sum = check_fill(&c, c.queues[0], seed, count)?;
    println!("checksum={sum:016x}");
    println!("matches_cpu=true");
    Ok(())
}

pub fn cmd_probe() -> Result<()> {
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

pub fn cmd_multi() -> Result<()> {
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

pub fn cmd_threads(args: &[String]) -> Result<()> {
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

pub fn cmd_external(args: &[String]) -> Result<()> {
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

/// `acquire-unmodified listed|unlisted|required`: see the usage in main.rs.
pub fn cmd_acquire_unmodified(args: &[String]) -> Result<()> {
    let name = ash::ext::external_memory_acquire_unmodified::NAME;
    let foreign = std::ffi::CString::from(ash::ext::queue_family_foreign::NAME);
    let opts = match args.first().map(String::as_str) {
        Some("listed") => ClientOptions { acquire_unmodified: true, ..Default::default() },
        Some("unlisted") => ClientOptions { extra_extensions: vec![foreign], ..Default::default() },
        Some("required") => ClientOptions { required_extensions: vec![name.into()], ..Default::default() },
        other => return Err(Error(format!("acquire-unmodified: unknown mode {other:?}"))),
    };
    let c = match Client::new(&opts) {
        Ok(c) => c,
        Err(e) if args[0] == "required" => {
            // "vkCreateDevice: ERROR_...": the result alone.
            println!("create_device={}", e.0.rsplit(' ').next().unwrap_or_default());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if args[0] == "required" {
        println!("create_device=SUCCESS");
        return Ok(());
    }
    println!("enabled={}", c.has_extension(name));
    if args[0] == "listed" && !c.has_extension(name) {
        // Without the layer on a driver that lacks it: nothing to record.
        return Ok(());
    }
    let len = 256;
    let shared = ExternalBuffer::exportable(&c, len, vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD)?;
    shared.host_access(&c, Some(&(0..len).collect::<Vec<_>>()))?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let push = Push { seed: 7, count: len };
    let job = dmabuf::acquire_job(&c, &kernel, shared.buffer, AcquireKind::ReadUnmodified, push, true)?;
    let ran = job.run(&c, c.queues[0]);
    job.destroy(&c);
    kernel.destroy(&c);
    let seen = ran.and_then(|()| shared.host_access(&c, None));
    shared.destroy(&c);
    let seen = seen?;
    if let Some(i) = (0..len).find(|&i| seen[i as usize] != i + 7) {
        return Err(Error(format!("data[{i}] = {}, expected {}", seen[i as usize], i + 7)));
    }
    println!("content_ok=true");
    Ok(())
}
