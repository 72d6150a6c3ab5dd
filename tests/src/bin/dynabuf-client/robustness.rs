//! Subcommands for the kernel tier's robustness tests
//! (`tests/tests/kernel/robustness.rs`): read-only acquires that never
//! release, how long `vkQueueSubmit` blocks, acquires recorded in secondary
//! command buffers, application `pNext` chains on submits, host access to
//! dynamic attachments, the layer's fault injection (`DYNABUF_FAULT`), and
//! two devices handing a dma-buf over without waiting for their own fences.
//!
//! Subcommands that need a foreign fence while they run on their own
//! attach it themselves with vgem (the layer only sees the dma-buf's
//! fences, whoever holds them), so the tests can run them in one go.

use std::ffi::{c_void, CStr, CString};
use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ash::vk;
use dynabuf_client::compute::{Job, Kernel, Push, Shader};
use dynabuf_client::dmabuf::{self, foreign_acquire, wait_for_writers, AcquireKind};
use dynabuf_client::external::{open_fds, ownership_barrier, ExternalBuffer};
use dynabuf_client::kernel::vgem::Vgem;
use dynabuf_client::shaders::fill_expected;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};

use crate::{arg, inherited_fd, line_from_stdin};

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn sys<T>(r: std::result::Result<T, dynabuf::sys::SysError>) -> Result<T> {
    r.map_err(|e| Error(e.to_string()))
}

/// A udmabuf of `len` u32s made by this process, with its memfd (the same
/// pages) for checking the content from the CPU.
struct Udmabuf {
    dmabuf: OwnedFd,
    memfd: std::fs::File,
    len: u32,
}

impl Udmabuf {
    fn new(len: u32) -> Result<Self> {
        let bytes = (u64::from(len) * 4).next_multiple_of(4096);
        let (dmabuf, memfd) = sys(dynabuf_client::kernel::udmabuf::create(bytes))?;
        Ok(Udmabuf { dmabuf, memfd: memfd.into(), len })
    }

    fn write(&self, value: impl Fn(u32) -> u32) -> Result<()> {
        write_words(&self.memfd, self.len, value)
    }

    fn read(&self) -> Result<Vec<u32>> {
        read_words(&self.memfd, self.len)
    }

    /// `Err` naming the first value that is not `want(i)`.
    fn expect(&self, what: &str, want: impl Fn(u32) -> u32) -> Result<()> {
        expect_words(what, &self.read()?, want)
    }
}

fn write_words(f: &std::fs::File, len: u32, value: impl Fn(u32) -> u32) -> Result<()> {
    let bytes: Vec<u8> = (0..len).flat_map(|i| value(i).to_le_bytes()).collect();
    f.write_all_at(&bytes, 0).ctx("write memfd")
}

/// The first `len` u32s of the memfd, read in one go (quick enough, even
/// in a debug build under TCG, to catch a GPU that is still writing).
fn read_words(f: &std::fs::File, len: u32) -> Result<Vec<u32>> {
    let mut words = vec![0u32; len as usize];
    // SAFETY: a byte view of exactly the vector's initialised elements; u32
    // has no padding and every bit pattern is a valid u32.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) };
    f.read_exact_at(bytes, 0).ctx("read memfd")?;
    if cfg!(target_endian = "big") {
        words.iter_mut().for_each(|w| *w = u32::from_le(*w));
    }
    Ok(words)
}

fn first_wrong(words: &[u32], want: impl Fn(u32) -> u32) -> Option<(usize, u32, u32)> {
    words.iter().enumerate().find(|(i, w)| **w != want(*i as u32)).map(|(i, w)| (i, *w, want(i as u32)))
}

fn expect_words(what: &str, words: &[u32], want: impl Fn(u32) -> u32) -> Result<()> {
    match first_wrong(words, want) {
        Some((i, got, expected)) => Err(Error(format!("{what}: data[{i}] = {got}, expected {expected}"))),
        None => Ok(()),
    }
}

/// A client whose device also enables `extra` extensions (where offered)
/// and the `timelineSemaphore` feature, which [`Client::new`] does not.
/// Returns it and the extra extensions it got.
fn client_with(extra: &[&CStr]) -> Result<(Client, Vec<CString>)> {
    // SAFETY: loads the system's Vulkan loader, as `Client::new` does.
    let entry = unsafe { ash::Entry::load() }.ctx("loading libvulkan.so.1")?;
    let app =
        vk::ApplicationInfo::default().application_name(c"dynabuf-client").api_version(vk::API_VERSION_1_3);
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: a valid create info whose pointers outlive the call.
    let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
    let made = device_with(&instance, extra);
    let (physical, device, family, extensions, got) = match made {
        Ok(m) => m,
        Err(e) => {
            // SAFETY: nothing else was created from the instance.
            unsafe { instance.destroy_instance(None) };
            return Err(e);
        }
    };
    // SAFETY: queue 0 of the family the device was created with.
    let queues = vec![unsafe { device.get_device_queue(family, 0) }];
    let memory_fd = extensions
        .iter()
        .any(|e| e.as_c_str() == ash::khr::external_memory_fd::NAME)
        .then(|| ash::khr::external_memory_fd::Device::new(&instance, &device));
    let allocator = Allocator::new(&AllocatorCreateDesc {
        instance: instance.clone(),
        device: device.clone(),
        physical_device: physical,
        debug_settings: Default::default(),
        buffer_device_address: false,
        allocation_sizes: Default::default(),
    });
    let allocator = match allocator {
        Ok(a) => a,
        Err(e) => {
            // SAFETY: nothing was created from the device yet.
            unsafe {
                device.destroy_device(None);
                instance.destroy_instance(None);
            }
            return Err(Error(format!("gpu-allocator: {e:?}")));
        }
    };
    let c = Client {
        entry,
        instance,
        physical,
        device,
        family,
        queues,
        extensions,
        memory_fd,
        allocator: ManuallyDrop::new(Mutex::new(allocator)),
    };
    Ok((c, got))
}

type Made = (vk::PhysicalDevice, ash::Device, u32, Vec<CString>, Vec<CString>);

fn device_with(instance: &ash::Instance, extra: &[&CStr]) -> Result<Made> {
    // SAFETY: a live instance.
    let physical = *unsafe { instance.enumerate_physical_devices() }
        .ctx("vkEnumeratePhysicalDevices")?
        .first()
        .ok_or_else(|| Error("no Vulkan physical device".into()))?;
    // SAFETY: a physical device of this instance.
    let families = unsafe { instance.get_physical_device_queue_family_properties(physical) };
    let family = families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
        .ok_or_else(|| Error("no compute queue family".into()))? as u32;
    // SAFETY: a physical device of this instance.
    let available = unsafe { instance.enumerate_device_extension_properties(physical) }
        .ctx("vkEnumerateDeviceExtensionProperties")?;
    let offered = |name: &CStr| available.iter().any(|a| a.extension_name_as_c_str() == Ok(name));
    let base = [
        ash::khr::external_memory_fd::NAME,
        ash::ext::external_memory_dma_buf::NAME,
        ash::khr::external_semaphore_fd::NAME,
    ];
    let extensions: Vec<CString> =
        base.iter().chain(extra).filter(|n| offered(n)).map(|n| CString::from(*n)).collect();
    let got: Vec<CString> = extra.iter().filter(|n| offered(n)).map(|n| CString::from(*n)).collect();
    let ext_ptrs: Vec<_> = extensions.iter().map(|e| e.as_ptr()).collect();
    let priorities = [1.0f32];
    let queue_info =
        [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&priorities)];
    let mut vk12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
    let mut vk13 = vk::PhysicalDeviceVulkan13Features::default().synchronization2(true);
    let info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queue_info)
        .enabled_extension_names(&ext_ptrs)
        .push_next(&mut vk12)
        .push_next(&mut vk13);
    // SAFETY: a valid create info whose pointers outlive the call.
    let device = unsafe { instance.create_device(physical, &info, None) }.ctx("vkCreateDevice")?;
    Ok((physical, device, family, extensions, got))
}

/// A write (or read) fence that vgem attaches to a dma-buf now, and a
/// thread that, after `delay`, writes `content` through the memfd and
/// then signals it: a foreign writer finishing its frame.
struct ForeignWriter {
    thread: std::thread::JoinHandle<Result<Instant>>,
}

impl ForeignWriter {
    fn start(buf: &Udmabuf, write: bool, delay: Duration, content: Option<fn(u32) -> u32>) -> Result<Self> {
        let vgem = sys(Vgem::open())?;
        let handle = sys(vgem.import(buf.dmabuf.as_fd()))?;
        let fence = sys(vgem.attach(handle, write))?;
        let memfd = buf.memfd.try_clone().ctx("dup memfd")?;
        let len = buf.len;
        let thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            if let Some(value) = content {
                write_words(&memfd, len, value)?;
            }
            let at = Instant::now();
            sys(vgem.signal(fence))?;
            let _ = vgem.close(handle);
            Ok(at)
        });
        Ok(ForeignWriter { thread })
    }

    /// When the fence was signalled.
    fn join(self) -> Result<Instant> {
        self.thread.join().map_err(|_| Error("the foreign writer panicked".into()))?
    }
}

/// A foreign fence (vgem) on a dma-buf, held until [`HeldFence::signal`].
struct HeldFence {
    vgem: Vgem,
    handle: dynabuf::sys::drm::GemHandle,
    fence: dynabuf_client::kernel::vgem::Fence,
}

impl HeldFence {
    fn attach(buf: &Udmabuf, write: bool) -> Result<Self> {
        let vgem = sys(Vgem::open())?;
        let handle = sys(vgem.import(buf.dmabuf.as_fd()))?;
        let fence = sys(vgem.attach(handle, write))?;
        Ok(HeldFence { vgem, handle, fence })
    }

    fn signal(self) -> Result<()> {
        sys(self.vgem.signal(self.fence))?;
        let _ = self.vgem.close(self.handle);
        Ok(())
    }
}

/// `read-acquire FD LEN`: imports dma-buf FD; on each `go` line submits a
/// job whose only ownership transfer is a read-only acquire (FOREIGN →
/// local, destination access SHADER_READ; no release) around a dispatch of
/// no elements, waits for it and prints `done round=N`. Any other line ends.
pub fn cmd_read_acquire(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let job = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed: 0, count: 0 },
        |d, cb| foreign_acquire(d, cb, buffer, family, AcquireKind::Read),
        |_, _| {},
    )?;
    say("ready");
    let mut round = 0;
    let outcome = (|| {
        while line_from_stdin() == "go" {
            job.run(&c, c.queues[0])?;
            round += 1;
            say(&format!("done round={round}"));
        }
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `submit-timing FD LEN release|acquire-only`: imports dma-buf FD, prints
/// `ready`; on `go` submits acquire (write) + add 1000 (+ release), timing
/// only `vkQueueSubmit` (`submitted submit_ms=N`), then waits for the job
/// and prints `done first=V total_ms=M` (from before the submit).
pub fn cmd_submit_timing(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let release = match args.get(2).map(String::as_str) {
        Some("release") => true,
        Some("acquire-only") => false,
        other => return Err(Error(format!("mode {other:?}: expected release or acquire-only"))),
    };
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let job = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed: 1000, count: len },
        |d, cb| foreign_acquire(d, cb, buffer, family, AcquireKind::Write),
        |d, cb| {
            if release {
                ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false)
            }
        },
    )?;
    say("ready");
    let outcome = (|| {
        if line_from_stdin() != "go" {
            return Err(Error("expected go".into()));
        }
        let t = Instant::now();
        job.submit(&c, c.queues[0])?;
        say(&format!("submitted submit_ms={}", t.elapsed().as_millis()));
        job.wait(&c)?;
        let total = t.elapsed().as_millis();
        let first = dmabuf::first_value(&c, &imported)?;
        say(&format!("done first={first} total_ms={total}"));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `acquire-secondary FD LEN read|write DISPATCH`: as `acquire`, with the
/// acquire barrier recorded in a secondary command buffer that the primary
/// executes (`vkCmdExecuteCommands`) before its dispatch and release.
pub fn cmd_acquire_secondary(args: &[String]) -> Result<()> {
    let fd = inherited_fd(args)?;
    let len = arg(args, 1, 1024);
    let kind = match args.get(2).map(String::as_str) {
        Some("read") => AcquireKind::Read,
        _ => AcquireKind::Write,
    };
    let count = if arg(args, 3, 1) == 0 { 0 } else { len };
    let c = Client::new(&ClientOptions::default())?;
    let imported = dmabuf::import_fd(&c, fd.as_fd(), len)?;
    drop(fd);
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let d = &c.device;
    // SAFETY: valid create and allocate infos; the pool is destroyed below,
    // after the job that executes its command buffer.
    let pool = unsafe {
        d.create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(family), None)
    }
    .ctx("vkCreateCommandPool")?;
    let outcome = (|| {
        // SAFETY: a pool of this device.
        let secondary = unsafe {
            d.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(pool)
                    .level(vk::CommandBufferLevel::SECONDARY)
                    .command_buffer_count(1),
            )
        }
        .ctx("vkAllocateCommandBuffers")?[0];
        let inheritance = vk::CommandBufferInheritanceInfo::default();
        // SAFETY: a fresh secondary command buffer, begun, recorded and ended.
        unsafe {
            d.begin_command_buffer(
                secondary,
                &vk::CommandBufferBeginInfo::default().inheritance_info(&inheritance),
            )
            .ctx("vkBeginCommandBuffer(secondary)")?;
            foreign_acquire(d, secondary, buffer, family, kind);
            d.end_command_buffer(secondary).ctx("vkEndCommandBuffer(secondary)")?;
        }
        let job = Job::with_barriers(
            &c,
            &kernel,
            buffer,
            Push { seed: 1000, count },
            // SAFETY: a primary in the recording state and an ended
            // secondary of the same queue family.
            |d, cb| unsafe { d.cmd_execute_commands(cb, &[secondary]) },
            |d, cb| ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false),
        )?;
        say("ready");
        let ran = (|| {
            if line_from_stdin() != "go" {
                return Err(Error("expected go".into()));
            }
            let t = Instant::now();
            job.run(&c, c.queues[0])?;
            let first = dmabuf::first_value(&c, &imported)?;
            say(&format!("done first={first} elapsed_ms={}", t.elapsed().as_millis()));
            Ok(())
        })();
        job.destroy(&c);
        ran
    })();
    // SAFETY: the job that used the pool's command buffer has finished.
    unsafe { d.destroy_command_pool(pool, None) };
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// The `pNext` chains `pnext` puts on the acquiring batch.
#[derive(Clone, Copy, Debug)]
enum Chain {
    Timeline,
    DeviceGroup,
    Both,
}

/// `pnext release|acquire-only [LEN]`: a dma-buf with a pending foreign
/// write fence (vgem, signalled 300 ms later just after new content is
/// written) is acquired by a `vkQueueSubmit` batch whose `pNext` chains a
/// `VkTimelineSemaphoreSubmitInfo` signalling an application timeline
/// semaphore, a `VkDeviceGroupSubmitInfo` (device masks 1), or both; the
/// GPU adds 1000 (and releases). Checks the content and the timeline's
/// value after each; prints `chain=... ok` lines and `pnext_ok=true`.
pub fn cmd_pnext(args: &[String]) -> Result<()> {
    let release = match args.first().map(String::as_str) {
        Some("release") => true,
        Some("acquire-only") => false,
        other => return Err(Error(format!("mode {other:?}: expected release or acquire-only"))),
    };
    let len = arg(args, 1, 1024);
    let (c, _) = client_with(&[])?;
    let buf = Udmabuf::new(len)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let job = Job::with_barriers(
        &c,
        &kernel,
        buffer,
        Push { seed: 1000, count: len },
        |d, cb| foreign_acquire(d, cb, buffer, family, AcquireKind::Write),
        |d, cb| {
            if release {
                ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false)
            }
        },
    )?;
    let mut type_info =
        vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE).initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
    // SAFETY: a valid create info; the device has timelineSemaphore enabled.
    let timeline = unsafe { c.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore(timeline)")?;
    let outcome = (|| {
        for (n, chain) in [Chain::Timeline, Chain::DeviceGroup, Chain::Both].into_iter().enumerate() {
            let value = n as u64 + 1;
            buf.write(|i| i)?;
            let writer = ForeignWriter::start(&buf, true, Duration::from_millis(300), Some(|i| 5000 + i))?;
            let submitted = submit_chained(&c, &job, chain, timeline, value);
            let signalled = writer.join()?;
            submitted?;
            job.wait(&c)?;
            let done = Instant::now();
            buf.expect(&format!("{chain:?}"), |i| 6000 + i)?;
            let wanted = match chain {
                Chain::DeviceGroup => value - 1,
                _ => value,
            };
            // Wait for the value (bounded) rather than read the counter the
            // moment the fence signals: Mesa's runtime installs the timeline
            // points of a deferred (wait-before-signal) submission from its
            // submit thread, and the counter can lag the fence by a moment.
            let semaphores = [timeline];
            let values = [wanted];
            let wait = vk::SemaphoreWaitInfo::default().semaphores(&semaphores).values(&values);
            // SAFETY: a timeline semaphore of this device; a bounded wait.
            let _ = unsafe { c.device.wait_semaphores(&wait, 2_000_000_000) };
            // SAFETY: a timeline semaphore of this device.
            let reached = unsafe { c.device.get_semaphore_counter_value(timeline) }
                .ctx("vkGetSemaphoreCounterValue")?;
            if reached != wanted {
                return Err(Error(format!(
                    "{chain:?}: the application's timeline is at {reached}, not {wanted}"
                )));
            }
            if matches!(chain, Chain::DeviceGroup) {
                // Keep the values in step: signal from the host.
                let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(value);
                // SAFETY: a timeline of this device, signalled to a higher value.
                unsafe { c.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore")?;
            }
            let first = buf.read()?[0];
            let after = done.saturating_duration_since(signalled).as_millis();
            say(&format!("chain={chain:?} ok first={first} timeline={reached} done_after_signal_ms={after}"));
        }
        Ok(())
    })();
    // SAFETY: every submission that used it has completed.
    unsafe { c.device.destroy_semaphore(timeline, None) };
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome?;
    say("pnext_ok=true");
    Ok(())
}

/// Submits `job` with `chain` on its batch (signalling `timeline` to
/// `value` where the chain has timeline values).
fn submit_chained(c: &Client, job: &Job, chain: Chain, timeline: vk::Semaphore, value: u64) -> Result<()> {
    let cbs = [job.cb];
    let signal = [timeline];
    let values = [value];
    let masks = [1u32];
    let indices = [0u32];
    let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
    let mut group = vk::DeviceGroupSubmitInfo::default().command_buffer_device_masks(&masks);
    let mut group_signalling = vk::DeviceGroupSubmitInfo::default()
        .command_buffer_device_masks(&masks)
        .signal_semaphore_device_indices(&indices);
    let base = vk::SubmitInfo::default().command_buffers(&cbs);
    let submit = match chain {
        Chain::Timeline => base.signal_semaphores(&signal).push_next(&mut timeline_info),
        Chain::DeviceGroup => base.push_next(&mut group),
        Chain::Both => {
            base.signal_semaphores(&signal).push_next(&mut timeline_info).push_next(&mut group_signalling)
        }
    };
    // SAFETY: a recorded command buffer, valid chains alive for the call,
    // and an unsignalled fence; the job is not pending.
    unsafe { c.device.queue_submit(c.queues[0], &[submit], job.fence) }.ctx("vkQueueSubmit")
}

/// `host-access map|map2 [LEN]`: a udmabuf imported (a dynamic attachment
/// under `DYNABUF_EVICT`), used by acquire + add 1 + release jobs, and
/// written by the CPU through `vkMapMemory` (with
/// `vkFlushMappedMemoryRanges` and `vkInvalidateMappedMemoryRanges`, then
/// `vkUnmapMemory`), and with `map2` also through
/// `vkMapMemory2KHR`/`vkUnmapMemory2KHR` where the device has
/// VK_KHR_map_memory2 (the Khronos validation layer 1.3.239 crashes on
/// those, also without dynabuf: run `map2` without it). Checks through the
/// memfd that the CPU's writes are the dma-buf's content and that the GPU
/// sees them. Prints `host_access_ok=true submits=N map2=yes|no|unsupported`.
pub fn cmd_host_access(args: &[String]) -> Result<()> {
    let want_map2 = match args.first().map(String::as_str) {
        Some("map") => false,
        Some("map2") => true,
        other => return Err(Error(format!("{other:?}: expected map or map2"))),
    };
    let len = arg(args, 1, 1024);
    let extra: &[&CStr] = if want_map2 { &[ash::khr::map_memory2::NAME] } else { &[] };
    let (c, got) = client_with(extra)?;
    let map2 = (!got.is_empty()).then(|| ash::khr::map_memory2::Device::new(&c.instance, &c.device));
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let mut submits = 0;
    let outcome = (|| {
        let mut run = |want: u32| -> Result<()> {
            job.run(&c, c.queues[0])?;
            submits += 1;
            buf.expect(&format!("after submit {submits}"), |i| want + i)
        };
        run(1)?;
        let memory = imported.memory;
        // vkMapMemory: the CPU sees what the GPU wrote, and what it writes
        // is the dma-buf's content.
        // SAFETY: host-visible memory of this device, not mapped; no GPU
        // work on it is pending.
        let p = unsafe { c.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
            .ctx("vkMapMemory")?;
        host_write(&c, memory, p, len, "vkMapMemory", |i| 1 + i, |i| 100 + i)?;
        // SAFETY: mapped above.
        unsafe { c.device.unmap_memory(memory) };
        buf.expect("after vkUnmapMemory", |i| 100 + i)?;
        run(101)?;
        let Some(map2) = &map2 else {
            run(102)?;
            return Ok(if want_map2 { "unsupported" } else { "no" });
        };
        let info = vk::MemoryMapInfoKHR::default().memory(memory).offset(0).size(vk::WHOLE_SIZE);
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: as above, through VK_KHR_map_memory2 (enabled).
        let r = unsafe { (map2.fp().map_memory2_khr)(c.device.handle(), &info, &mut p) };
        if r != vk::Result::SUCCESS {
            return Err(Error(format!("vkMapMemory2KHR: {r:?}")));
        }
        host_write(&c, memory, p, len, "vkMapMemory2KHR", |i| 101 + i, |i| 200 + i)?;
        let unmap = vk::MemoryUnmapInfoKHR::default().memory(memory);
        // SAFETY: mapped above.
        let r = unsafe { (map2.fp().unmap_memory2_khr)(c.device.handle(), &unmap) };
        if r != vk::Result::SUCCESS {
            return Err(Error(format!("vkUnmapMemory2KHR: {r:?}")));
        }
        buf.expect("after vkUnmapMemory2KHR", |i| 200 + i)?;
        run(201)?;
        run(202)?;
        Ok("yes")
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    let map2 = outcome?;
    say(&format!("host_access_ok=true submits={submits} map2={map2}"));
    Ok(())
}

/// Through a mapping `p` of `memory`: checks it holds `now`, writes `new`,
/// flushes, invalidates, and checks again.
fn host_write(
    c: &Client,
    memory: vk::DeviceMemory,
    p: *mut c_void,
    len: u32,
    how: &str,
    now: impl Fn(u32) -> u32,
    new: impl Fn(u32) -> u32,
) -> Result<()> {
    // SAFETY: a live mapping of at least `len` u32s, aligned (the driver
    // maps at a page boundary); no GPU work on it is pending.
    let words = unsafe { std::slice::from_raw_parts_mut(p.cast::<u32>(), len as usize) };
    expect_words(&format!("{how}: the mapping"), words, &now)?;
    for (i, w) in words.iter_mut().enumerate() {
        *w = new(i as u32);
    }
    let range = [vk::MappedMemoryRange::default().memory(memory).offset(0).size(vk::WHOLE_SIZE)];
    // SAFETY: ranges of memory this process has mapped.
    unsafe {
        c.device.flush_mapped_memory_ranges(&range).ctx("vkFlushMappedMemoryRanges")?;
        c.device.invalidate_mapped_memory_ranges(&range).ctx("vkInvalidateMappedMemoryRanges")?;
    }
    expect_words(&format!("{how}: the mapping after flush + invalidate"), words, &new)
}

/// `fault-reimport ROUNDS [LEN]` (run with `DYNABUF_FAULT=reimport:1` and
/// `DYNABUF_EVICT=every:1`): the first acquire + add 1 + release submission
/// must fail (`faulted=...`), then ROUNDS + 1 succeed with exact content;
/// fd counts around the last ROUNDS.
pub fn cmd_fault_reimport(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 20);
    let len = arg(args, 1, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let outcome = (|| {
        let faulted = job.submit(&c, c.queues[0]);
        let result = faulted.as_ref().err().map_or_else(|| "no".into(), |e| e.to_string());
        say(&format!("faulted={}", result.trim_start_matches("vkQueueSubmit: ")));
        if faulted.is_ok() {
            job.wait(&c)?;
        }
        // The failed submission ran nothing.
        buf.expect("after the failed submission", |i| i)?;
        job.run(&c, c.queues[0])?;
        buf.expect("after the retry", |i| i + 1)?;
        let before = open_fds();
        for _ in 0..rounds {
            job.run(&c, c.queues[0])?;
        }
        let after = open_fds();
        buf.expect("after the rounds", |i| i + 1 + rounds)?;
        say(&format!("rounds={rounds} fds_before={before} fds_after={after} content_ok=true"));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// `release-peek ROUNDS [LEN]`: ROUNDS acquire + add 1 + release
/// submissions; right after each `vkQueueSubmit` returns, before waiting
/// for its own fence, the client looks at the dma-buf as a peer would:
/// `poll(POLLIN)` (ready: no write fence pending) and the content through
/// the memfd. `early=N`: rounds where the dma-buf was ready but the content
/// unfinished (a peer would read a frame still being written). Exact
/// content after every round; fd counts from round 2 on.
pub fn cmd_release_peek(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 50);
    let len = arg(args, 1, 1 << 16);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let (mut early, mut busy, mut before, mut after) = (0, 0, 0, 0);
    let outcome = (|| -> Result<()> {
        let mut expected: Vec<u32> = (0..len).collect();
        for round in 1..=rounds {
            if round == 2 {
                before = open_fds();
            }
            expected.iter_mut().for_each(|w| *w += 1);
            job.submit(&c, c.queues[0])?;
            // As a peer: is the dma-buf ready, and what does it hold now?
            let ready = wait_for_writers(buf.dmabuf.as_fd(), Duration::ZERO)?;
            let finished = buf.read()? == expected;
            busy += u32::from(!ready);
            early += u32::from(ready && !finished);
            job.wait(&c)?;
            let now = buf.read()?;
            if now != expected {
                expect_words(&format!("round {round}"), &now, |i| i + round)?;
            }
        }
        after = open_fds();
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome?;
    say(&format!("rounds={rounds} early={early} busy={busy} fds_before={before} fds_after={after}"));
    Ok(())
}

/// `sync-file-fault ROUNDS reader|none [LEN]`: ROUNDS acquire (write) +
/// add 1 + release submissions, each waited for; with `reader`, a foreign
/// read fence (vgem) stays pending on the dma-buf throughout (a reader that
/// never writes: the content stays the client's). Exact content; fd counts
/// around the rounds; `elapsed_ms` of the rounds.
pub fn cmd_sync_file_fault(args: &[String]) -> Result<()> {
    let rounds = arg(args, 0, 20);
    let reader = match args.get(1).map(String::as_str) {
        Some("reader") => true,
        Some("none") => false,
        other => return Err(Error(format!("{other:?}: expected reader or none"))),
    };
    let len = arg(args, 2, 1024);
    let c = Client::new(&ClientOptions::default())?;
    let buf = Udmabuf::new(len)?;
    buf.write(|i| i)?;
    let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1, len)?;
    let outcome = (|| {
        job.run(&c, c.queues[0])?;
        let before = open_fds();
        // Signalled after the rounds (vgem would signal it by itself after 10 s).
        let reading = match reader {
            true => Some(HeldFence::attach(&buf, false)?),
            false => None,
        };
        let t = Instant::now();
        for _ in 0..rounds {
            job.run(&c, c.queues[0])?;
        }
        let elapsed = t.elapsed().as_millis();
        let reader_busy = dma_buf_busy_for_writers(buf.dmabuf.as_fd())?;
        if let Some(r) = reading {
            r.signal()?;
        }
        let after = open_fds();
        buf.expect("after the rounds", |i| i + 1 + rounds)?;
        say(&format!(
            "rounds={rounds} elapsed_ms={elapsed} reader_pending_during_rounds={reader_busy} fds_before={before} \
             fds_after={after} content_ok=true"
        ));
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    imported.destroy(&c);
    outcome
}

/// Whether a writer would have to wait (any fence pending: POLLOUT not ready).
fn dma_buf_busy_for_writers(fd: BorrowedFd<'_>) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    let n = poll(&mut fds, PollTimeout::ZERO).ctx("poll(dma-buf)")?;
    Ok(!(n > 0 && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLOUT))))
}

/// `two-devices FRAMES LEN wait|nowait`: a producer device exports a
/// dma-buf and a consumer device in the same process imports it; each
/// frame the producer fills it on its GPU and releases it, the consumer
/// acquires it, adds `frame + 1` and releases it, and the producer checks
/// every value. `wait`: each waits for its own fence before the other goes;
/// `nowait`: both submit back to back and the producer's CPU check first
/// `poll()`s the dma-buf, so only the released fences order anything.
pub fn cmd_two_devices(args: &[String]) -> Result<()> {
    let frames = arg(args, 0, 20);
    let len = arg(args, 1, 4096);
    let nowait = match args.get(2).map(String::as_str) {
        None | Some("wait") => false,
        Some("nowait") => true,
        Some(other) => return Err(Error(format!("{other:?}: expected wait or nowait"))),
    };
    let producer = Client::new(&ClientOptions::default())?;
    let consumer = Client::new(&ClientOptions::default())?;
    let shared = ExternalBuffer::exportable(&producer, len, DMA_BUF)?;
    let fd = shared.export_fd(&producer)?;
    let imported = ExternalBuffer::import(&consumer, fd.try_clone().ctx("dup")?, len, DMA_BUF)
        .map_err(|e| Error(format!("consumer import: {e:?}")))?;
    let fill = Kernel::new(&producer, Shader::Fill)?;
    let add = Kernel::new(&consumer, Shader::Increment)?;
    let outcome = (|| -> Result<()> {
        for frame in 0..frames {
            let seed = 0x9e37_79b9u32.wrapping_mul(frame + 1);
            let (pb, pf) = (shared.buffer, producer.family);
            let produce = Job::with_barriers(
                &producer,
                &fill,
                pb,
                Push { seed, count: len },
                |_, _| {},
                |d, cb| ownership_barrier(d, cb, pb, vk::QUEUE_FAMILY_FOREIGN_EXT, pf, false),
            )?;
            let (cbuf, cf) = (imported.buffer, consumer.family);
            let consume = Job::with_barriers(
                &consumer,
                &add,
                cbuf,
                Push { seed: frame + 1, count: len },
                |d, cb| foreign_acquire(d, cb, cbuf, cf, AcquireKind::Write),
                |d, cb| ownership_barrier(d, cb, cbuf, vk::QUEUE_FAMILY_FOREIGN_EXT, cf, false),
            )?;
            let (mut produced, mut consumed) = (false, false);
            let mut result = (|| {
                if nowait {
                    produce.submit(&producer, producer.queues[0])?;
                    produced = true;
                    consume.submit(&consumer, consumer.queues[0])?;
                    consumed = true;
                    if !wait_for_writers(fd.as_fd(), Duration::from_secs(10))? {
                        return Err(Error(format!("frame {frame}: the dma-buf stayed busy for 10 s")));
                    }
                } else {
                    produce.run(&producer, producer.queues[0])?;
                    consume.run(&consumer, consumer.queues[0])?;
                }
                let seen = shared.host_access(&producer, None)?;
                expect_words(&format!("frame {frame}: the producer reads"), &seen, |i| {
                    fill_expected(i, seed).wrapping_add(frame + 1)
                })
            })();
            // Whatever happened, nothing submitted may still run below.
            for (submitted, job, c) in [(produced, &produce, &producer), (consumed, &consume, &consumer)] {
                if submitted {
                    result = result.and(job.wait(c));
                }
            }
            produce.destroy(&producer);
            consume.destroy(&consumer);
            result?;
        }
        Ok(())
    })();
    fill.destroy(&producer);
    add.destroy(&consumer);
    imported.destroy(&consumer);
    shared.destroy(&producer);
    outcome?;
    say(&format!("frames={frames} len={len} two_devices_ok=true"));
    Ok(())
}

/// `timeline-release [same|ahead|before-import] [LEN]`: a release whose
/// work sits behind a wait for an application timeline semaphore at value
/// 1, which nobody has signalled yet:
/// - `same` (default): ONE `vkQueueSubmit` whose batch waits for the
///   timeline and acquires (FOREIGN → local) a udmabuf, adds 1000 and
///   releases it (local → FOREIGN);
/// - `ahead`: an earlier `vkQueueSubmit` on the same queue, made after the
///   import, is a batch that only waits for the timeline; the job's own
///   submission waits on nothing;
/// - `before-import`: as `ahead`, but the waiting batch is submitted
///   before the udmabuf is imported (while the device shares nothing).
///
/// Only after the job's `vkQueueSubmit` returns does the client signal the
/// timeline from the host (`vkSignalSemaphore`); then it waits for its
/// fence and checks the content through the memfd. Prints `submitted
/// submit_ms=N ready_before_signal=B` as soon as the submit returns (B:
/// whether a peer's `poll()` finds the dma-buf ready then, before any of
/// the work can have run), then `timeline_release_ok=true submit_ms=N
/// total_ms=M`. A layer that waited, inside `vkQueueSubmit`, for the
/// release's work to be submitted (`vkGetSemaphoreFdKHR` of a SYNC_FD
/// behind a wait-before-signal) would never return: the signal it waits
/// for comes after the call.
pub fn cmd_timeline_release(args: &[String]) -> Result<()> {
    let mode = args.first().map_or("same", String::as_str);
    if !["same", "ahead", "before-import"].contains(&mode) {
        return Err(Error(format!("{mode:?}: expected same, ahead or before-import")));
    }
    let len = arg(args, 1, 4096);
    let (c, _) = client_with(&[])?;
    let mut type_info =
        vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE).initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
    // SAFETY: a valid create info; the device has timelineSemaphore enabled.
    let timeline = unsafe { c.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore(timeline)")?;
    let waits = [timeline];
    let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
    let values = [1u64];
    let mut waiting = false;
    // A batch that only waits for the timeline.
    let wait_alone = |waiting: &mut bool| -> Result<()> {
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&waits)
            .wait_dst_stage_mask(&stages)
            .push_next(&mut timeline_info);
        // SAFETY: a timeline of this device with a wait value its host
        // signal below reaches (wait-before-signal).
        unsafe { c.device.queue_submit(c.queues[0], &[submit], vk::Fence::null()) }
            .ctx("vkQueueSubmit(wait)")?;
        *waiting = true;
        Ok(())
    };
    let signal_and_drain = || {
        let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(1);
        // SAFETY: a timeline of this device, signalled to a higher value; a
        // failed signal leaves the waits to time out.
        let _ = unsafe { c.device.signal_semaphore(&signal) };
        // SAFETY: the device's queue; waits for everything submitted.
        let _ = unsafe { c.device.queue_wait_idle(c.queues[0]) };
    };
    if mode == "before-import" {
        if let Err(e) = wait_alone(&mut waiting) {
            // SAFETY: nothing was submitted that uses it.
            unsafe { c.device.destroy_semaphore(timeline, None) };
            return Err(e);
        }
    }
    let outcome = (|| {
        let buf = Udmabuf::new(len)?;
        buf.write(|i| i)?;
        let imported = dmabuf::import_fd(&c, buf.dmabuf.as_fd(), len)?;
        let kernel = Kernel::new(&c, Shader::Increment)?;
        let job = dmabuf::foreign_job(&c, &kernel, imported.buffer, AcquireKind::Write, 1000, len);
        let ran = job.as_ref().map_err(|e| Error(e.to_string())).and_then(|job| {
            if mode == "ahead" {
                wait_alone(&mut waiting)?;
            }
            let cbs = [job.cb];
            let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
            let submit = match mode {
                "same" => vk::SubmitInfo::default()
                    .wait_semaphores(&waits)
                    .wait_dst_stage_mask(&stages)
                    .command_buffers(&cbs)
                    .push_next(&mut timeline_info),
                _ => vk::SubmitInfo::default().command_buffers(&cbs),
            };
            let t = Instant::now();
            // SAFETY: a recorded command buffer, a timeline of this device
            // with a wait value its host signal below reaches
            // (wait-before-signal), and an unsignalled fence; the job is
            // not pending.
            unsafe { c.device.queue_submit(c.queues[0], &[submit], job.fence) }.ctx("vkQueueSubmit")?;
            waiting = true;
            let submit_ms = t.elapsed().as_millis();
            // As a peer would see it now: none of the work can have run.
            let ready = wait_for_writers(buf.dmabuf.as_fd(), Duration::ZERO)?;
            say(&format!("submitted submit_ms={submit_ms} ready_before_signal={ready}"));
            let signal = vk::SemaphoreSignalInfo::default().semaphore(timeline).value(1);
            // SAFETY: a timeline of this device, signalled to a higher value.
            unsafe { c.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore")?;
            job.wait(&c)?;
            waiting = false;
            let total_ms = t.elapsed().as_millis();
            buf.expect("after the job", |i| i + 1000)?;
            say(&format!("timeline_release_ok=true submit_ms={submit_ms} total_ms={total_ms}"));
            Ok(())
        });
        if waiting {
            // Whatever failed, nothing may still wait on the timeline below.
            signal_and_drain();
            waiting = false;
        }
        if let Ok(job) = job {
            job.destroy(&c);
        }
        kernel.destroy(&c);
        imported.destroy(&c);
        ran
    })();
    if waiting {
        signal_and_drain();
    }
    // SAFETY: every submission that used it has completed.
    unsafe { c.device.destroy_semaphore(timeline, None) };
    outcome
}

/// A wrapping FNV-1a hash of the words: one number to compare runs by.
fn checksum(words: &[u32]) -> u64 {
    words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ u64::from(*w)).wrapping_mul(0x0100_0000_01b3))
}

/// What one batch of [`cmd_release_acquire`] and [`cmd_first_release`]
/// records around its dispatch.
#[derive(Clone, Copy)]
struct Step {
    shader: Shader,
    /// Fill's seed, or Increment's addend.
    seed: u32,
    /// How many values the dispatch touches.
    count: u32,
    acquire: bool,
    release: bool,
}

/// Submits `steps` as ONE `vkQueueSubmit`, one batch (and command buffer)
/// each, over `imported`; waits for it.
fn submit_steps(c: &Client, imported: &ExternalBuffer, steps: &[Step]) -> Result<()> {
    let fill = Kernel::new(c, Shader::Fill)?;
    let add = Kernel::new(c, Shader::Increment)?;
    let (buffer, family) = (imported.buffer, c.family);
    let mut jobs = Vec::new();
    let outcome = (|| {
        for s in steps {
            let kernel = if s.shader == Shader::Fill { &fill } else { &add };
            let job = Job::with_barriers(
                c,
                kernel,
                buffer,
                Push { seed: s.seed, count: s.count },
                |d, cb| {
                    if s.acquire {
                        foreign_acquire(d, cb, buffer, family, AcquireKind::Write)
                    }
                },
                |d, cb| {
                    if s.release {
                        ownership_barrier(d, cb, buffer, vk::QUEUE_FAMILY_FOREIGN_EXT, family, false)
                    }
                },
            )?;
            jobs.push(job);
        }
        let cbs: Vec<[vk::CommandBuffer; 1]> = jobs.iter().map(|j| [j.cb]).collect();
        let submits: Vec<vk::SubmitInfo> =
            cbs.iter().map(|cb| vk::SubmitInfo::default().command_buffers(cb)).collect();
        let last = jobs.last().ok_or_else(|| Error("no steps".into()))?;
        // SAFETY: recorded command buffers and an unsignalled fence of this
        // device; none of the jobs is pending.
        unsafe { c.device.queue_submit(c.queues[0], &submits, last.fence) }.ctx("vkQueueSubmit")?;
        last.wait(c)
    })();
    for job in jobs {
        job.destroy(c);
    }
    fill.destroy(c);
    add.destroy(c);
    outcome
}

/// The CPU's view of a fresh udmabuf before import, in both subcommands
/// below: no zero, nothing a shader computes here.
fn pattern(i: u32) -> u32 {
    0xa500_0000 | (i * 3)
}

/// One scenario of [`cmd_release_acquire`] and [`cmd_first_release`]:
/// a fresh udmabuf filled with [`pattern`], imported, `steps` submitted at
/// once, and the content the CPU then reads checked against `want`.
/// Prints `NAME=ok checksum=X`.
fn scenario(c: &Client, name: &str, len: u32, steps: &[Step], want: impl Fn(u32) -> u32) -> Result<()> {
    let buf = Udmabuf::new(len)?;
    buf.write(pattern)?;
    let imported = dmabuf::import_fd(c, buf.dmabuf.as_fd(), len)?;
    let ran = submit_steps(c, &imported, steps);
    imported.destroy(c);
    ran?;
    let words = buf.read()?;
    expect_words(name, &words, want)?;
    say(&format!("{name}=ok checksum={:#x}", checksum(&words)));
    Ok(())
}

/// `release-acquire [LEN]`: ONE `vkQueueSubmit` of three batches on a
/// fresh import of a udmabuf holding [`pattern`] (run with
/// `DYNABUF_ATTACH=dynamic`: copies in at each acquire, out at each
/// release):
/// - `all_three`: each batch acquires, adds (1, 10, 100) and releases;
/// - `fill_acquire_release`: batch 0 acquires, fills (seed 7) and
///   releases; batch 1 acquires and adds 10; batch 2 adds 100 and releases.
///
/// A batch whose copy-in read the dma-buf before the previous batch's
/// writes were copied out would lose them. The CPU checks the exact
/// composition through the memfd; prints `release_acquire_ok=true`.
pub fn cmd_release_acquire(args: &[String]) -> Result<()> {
    let len = arg(args, 0, 4096);
    let c = Client::new(&ClientOptions::default())?;
    let add = |seed, acquire, release| Step { shader: Shader::Increment, seed, count: len, acquire, release };
    scenario(&c, "all_three", len, &[add(1, true, true), add(10, true, true), add(100, true, true)], |i| {
        pattern(i).wrapping_add(111)
    })?;
    let fill = Step { shader: Shader::Fill, seed: 7, count: len, acquire: true, release: true };
    scenario(&c, "fill_acquire_release", len, &[fill, add(10, true, false), add(100, false, true)], |i| {
        fill_expected(i, 7).wrapping_add(110)
    })?;
    say("release_acquire_ok=true");
    Ok(())
}

/// `first-release [LEN]`: the first submission on a fresh import of a
/// udmabuf holding [`pattern`] writes only its first half (fill, seed 9,
/// count LEN/2) and releases it, with no acquire (run with
/// `DYNABUF_ATTACH=dynamic`: the backing never had the dma-buf's content):
/// - `release_only`: that one batch;
/// - `release_then_acquire`: that batch, then a second in the same
///   submission that acquires, adds 1 to every value and releases.
///
/// The CPU checks through the memfd that the first half holds the GPU's
/// values and the second the original pattern (plus 1 after the second
/// batch). Prints `first_release_ok=true`.
pub fn cmd_first_release(args: &[String]) -> Result<()> {
    let len = arg(args, 0, 4096);
    let half = len / 2;
    let c = Client::new(&ClientOptions::default())?;
    let write_half = Step { shader: Shader::Fill, seed: 9, count: half, acquire: false, release: true };
    let gpu_or_pattern = move |i: u32| if i < half { fill_expected(i, 9) } else { pattern(i) };
    scenario(&c, "release_only", len, &[write_half], gpu_or_pattern)?;
    let add = Step { shader: Shader::Increment, seed: 1, count: len, acquire: true, release: true };
    scenario(&c, "release_then_acquire", len, &[write_half, add], |i| gpu_or_pattern(i).wrapping_add(1))?;
    say("first_release_ok=true");
    Ok(())
}
