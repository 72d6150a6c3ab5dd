//! Robustness of the layer where applications and drivers leave the common
//! path: dynamic attachments without the sync engine, read-only acquires
//! that are never released, how long `vkQueueSubmit` blocks in thread mode,
//! ownership transfers recorded in secondary command buffers, application
//! `pNext` chains on submits, host access to dynamic attachments, failures
//! injected into the layer's own calls (`DYNABUF_FAULT`), and peers that
//! hand a dma-buf over without waiting for their own fences. Each test has
//! what proves it measures the layer: a control without it that must fail
//! the same check, or a check the layer before these fixes failed.
//!
//! Tests whose point is valid Vulkan below the layer run their client with
//! the Khronos validation layer below dynabuf whatever
//! `DYNABUF_TEST_VALIDATION` says, and fail on any message validation alone
//! does not produce.

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::env::{validation, Layer, Validation};
use dynabuf_client::kernel::udmabuf;

use crate::child::{spawn, value};
use crate::common::{client, run_unchecked, Run, CLIENT};
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::implicit_sync::{acquire_behind_a_write_fence_in, waited};
use crate::require_kernel_tier;

const STARTUP: Duration = Duration::from_secs(60);

/// Every `key=N` among `text`'s words (one per device for statistics).
fn stat(text: &str, key: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
        .collect()
}

/// The layer's lines that contain every one of `parts`.
fn layer_lines_with<'a>(run_stderr: &'a str, parts: &[&str]) -> Vec<&'a str> {
    run_stderr.lines().filter(|l| l.starts_with("dynabuf:") && parts.iter().all(|p| l.contains(p))).collect()
}

/// Runs the client under the layer with the validation layer below it
/// (whatever `DYNABUF_TEST_VALIDATION` says, but `alone`, which re-measures
/// what validation alone reports), and fails on any message validation
/// alone does not produce.
fn validated(args: &[&str], envs: &[(&str, &str)]) -> Result<Run, String> {
    let mode = match Validation::from_env() {
        Validation::Alone => Validation::Alone,
        _ => Validation::Below,
    };
    let run = run_unchecked(CLIENT, args, Layer::On, mode, envs);
    let what = format!("dynabuf-client {} with {envs:?}", args.join(" "));
    validation::check(&what, Layer::On, mode, &[&run.stderr, &run.stdout])?;
    Ok(run)
}

fn failed(run: &Run, what: &str) -> String {
    format!("{what} ({})\n--- stdout\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr)
}

pub fn sync_off_keeps_dynamic_imports_pinned_and_their_content_exact() -> TestResult {
    require_kernel_tier!();
    // Dynamic attachments are copied at the sync engine's hand-over points:
    // without the engine nothing would fill or save the backing, and every
    // GPU read and write of the dma-buf would be lost. The import must stay
    // pinned, and the CPU must see exactly what the GPU computed.
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_SYNC", "off"),
        ("DYNABUF_LOG", "debug"),
        ("DYNABUF_STATS", "1"),
    ];
    let run = client(&["dmabuf-import"], Layer::On, &envs);
    ensure!(run.ok && run.value("dmabuf_import_ok").as_deref() == Some("true"), "{}", failed(&run, "import"));
    let pinned = layer_lines_with(&run.stderr, &["stays pinned", "implicit sync is off"]);
    ensure!(pinned.len() == 1, "expected one debug line saying why the import stays pinned:\n{}", run.stderr);
    ensure!(stat(&run.stderr, "dynamic_attachments") == [0], "{}", run.stderr);
    ensure!(stat(&run.stderr, "evictions") == [0], "{}", run.stderr);
    Ok(Outcome::Pass)
}

fn write_memfd(memfd: &std::fs::File, len: u32, value: u32) -> Result<(), String> {
    let bytes: Vec<u8> = (0..len).flat_map(|_| value.to_le_bytes()).collect();
    memfd.write_all_at(&bytes, 0).check("write memfd")
}

/// The first word of the memfd that is not `value`, as (index, word).
fn memfd_differs(memfd: &std::fs::File, len: u32, value: u32) -> Result<Option<(usize, u32)>, String> {
    let mut bytes = vec![0u8; len as usize * 4];
    memfd.read_exact_at(&mut bytes, 0).check("read memfd")?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .enumerate()
        .find(|(_, w)| *w != value))
}

pub fn a_read_only_acquire_never_released_leaves_the_producers_writes_alone() -> TestResult {
    require_kernel_tier!();
    // A consumer that only reads (read-only acquire, no release) from a
    // dynamic attachment evicted at every submission: what the producer
    // (this process) writes between the consumer's submissions must stay;
    // an eviction that copied the consumer's stale backing back would
    // overwrite it.
    const LEN: u32 = 1024;
    let rounds = 5;
    let (dmabuf, memfd) = udmabuf::create(u64::from(LEN) * 4).check("udmabuf")?;
    let memfd = std::fs::File::from(memfd);
    write_memfd(&memfd, LEN, 1)?;
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let mut child = spawn("read-acquire", dmabuf.as_fd(), &[&LEN.to_string()], Layer::On, &envs)?;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        for round in 1..=rounds {
            if round > 1 {
                // The producer writes while the consumer holds the buffer
                // read-only; its next submission evicts and re-validates.
                write_memfd(&memfd, LEN, round)?;
            }
            child.say("go")?;
            child.expect_line("done", Duration::from_secs(30))?;
            if let Some((i, w)) = memfd_differs(&memfd, LEN, round)? {
                return Err(format!(
                    "round {round}: after the consumer's submission data[{i}] = {w}, not the producer's {round} \
                     (a stale copy was written over the dma-buf)"
                ));
            }
        }
        child.say("exit")?;
        Ok(())
    })();
    let (ok, stderr) = child.finish();
    outcome.map_err(|e| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    // Every submission evicted and re-validated the attachment.
    ensure!(stat(&stderr, "dynamic_attachments") == [1], "{stderr}");
    ensure!(stat(&stderr, "evictions") == [u64::from(rounds)], "{stderr}");
    ensure!(stat(&stderr, "revalidations") == [u64::from(rounds)], "{stderr}");
    ensure!(stat(&stderr, "copies_out") == [0], "a consumer that never releases was copied out:\n{stderr}");
    Ok(Outcome::Pass)
}

const TIMING_LEN: u32 = 1024;
const TIMING_BYTES: u64 = TIMING_LEN as u64 * 4;
/// How long the test holds its write fence after telling the client to go.
const HELD: Duration = Duration::from_millis(600);

fn write_words(buf: &Buf, base: u32) -> Result<(), String> {
    let mut map = Mapping::new(buf.fd(), TIMING_BYTES as usize).map_err(|e| e.to_string())?;
    for (i, w) in map.words().iter_mut().enumerate() {
        *w = base + i as u32;
    }
    Ok(())
}

/// What `submit-timing` reported, and which of its lines came while the
/// test still held the fence.
struct Timing {
    submit_ms: u64,
    total_ms: u64,
    first: u64,
    submitted_before_signal: bool,
    done_before_signal: bool,
}

fn submit_timing(mode: &str) -> Result<Timing, String> {
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, TIMING_BYTES)?;
    write_words(&buf, 0)?;
    let envs = [("DYNABUF_SYNC", "thread"), ("DYNABUF_FENCE_TIMEOUT_MS", "3000"), ("DYNABUF_LOG", "debug")];
    let mut child = spawn("submit-timing", buf.fd(), &[&TIMING_LEN.to_string(), mode], Layer::On, &envs)?;
    let mut fence = None;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        fence = Some(vgem.attach(buf.handle, true).check("attach write fence")?);
        child.say("go")?;
        let deadline = Instant::now() + HELD;
        let mut early = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match child.line(left)? {
                Some(l) => early.push(l),
                None => break,
            }
        }
        // The foreign writer's last words, then its fence.
        write_words(&buf, 5000)?;
        if let Some(f) = fence.take() {
            vgem.signal(f).check("signal")?;
        }
        let mut lines = early.clone();
        while !lines.iter().any(|l| l.starts_with("done")) {
            lines.push(child.expect_line("", Duration::from_secs(30))?);
        }
        let find = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).cloned().unwrap_or_default();
        let (submitted, done) = (find("submitted"), find("done"));
        Ok(Timing {
            submit_ms: value(&submitted, "submit_ms").ok_or(format!("no submit_ms in {lines:?}"))?,
            total_ms: value(&done, "total_ms").ok_or(format!("no total_ms in {lines:?}"))?,
            first: value(&done, "first").ok_or(format!("no first in {lines:?}"))?,
            submitted_before_signal: early.iter().any(|l| l.starts_with("submitted")),
            done_before_signal: early.iter().any(|l| l.starts_with("done")),
        })
    })();
    if let Some(f) = fence {
        let _ = vgem.signal(f);
    }
    let (ok, stderr) = child.finish();
    let t = outcome.map_err(|e: String| format!("{mode}: {e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "{mode}: the client failed:\n{stderr}");
    ensure!(
        stderr.contains("implicit sync: thread") || stderr.contains("implicit sync by thread"),
        "{mode}: not in thread mode:\n{stderr}"
    );
    Ok(t)
}

pub fn thread_mode_blocks_vkqueuesubmit_only_when_it_also_releases() -> TestResult {
    require_kernel_tier!();
    // The test holds a foreign write fence for 0.6 s after the client goes.
    // A submission that acquires and releases: its vkQueueSubmit returns
    // once the fence has signalled (bounded by DYNABUF_FENCE_TIMEOUT_MS).
    let both = submit_timing("release")?;
    // One that only acquires: vkQueueSubmit returns at once, and the GPU
    // (the layer's waiter thread) waits.
    let acquire = submit_timing("acquire-only")?;
    println!(
        "  thread mode, foreign write fence held {} ms: vkQueueSubmit that acquires and releases {} ms; \
         that only acquires {} ms (its job done after {} ms)",
        HELD.as_millis(),
        both.submit_ms,
        acquire.submit_ms,
        acquire.total_ms
    );
    ensure!(
        !both.submitted_before_signal,
        "acquire + release: vkQueueSubmit returned before the fence signalled"
    );
    ensure!(
        (400..3000).contains(&both.submit_ms),
        "acquire + release: vkQueueSubmit took {} ms with the fence held {} ms (timeout 3000 ms)",
        both.submit_ms,
        HELD.as_millis()
    );
    ensure!(
        acquire.submitted_before_signal,
        "acquire only: vkQueueSubmit did not return while the fence was held"
    );
    ensure!(acquire.submit_ms < 150, "acquire only: vkQueueSubmit took {} ms", acquire.submit_ms);
    ensure!(!acquire.done_before_signal, "acquire only: the job finished before the fence signalled");
    ensure!(acquire.total_ms >= 400, "acquire only: the job finished after {} ms", acquire.total_ms);
    for (how, t) in [("acquire + release", &both), ("acquire only", &acquire)] {
        ensure!(
            t.first == 6000,
            "{how}: the GPU read {}, not what the foreign writer wrote before signalling (5000)",
            t.first.wrapping_sub(1000)
        );
    }
    Ok(Outcome::Pass)
}

pub fn an_acquire_in_a_secondary_command_buffer_waits_for_a_foreign_write_fence() -> TestResult {
    require_kernel_tier!();
    // The acquire barrier is recorded in a secondary command buffer the
    // primary executes; the dispatch and the release are in the primary.
    let (early, first) = acquire_behind_a_write_fence_in("acquire-secondary", Layer::On, "write", &[])?;
    waited(early, first, "acquire recorded in a secondary command buffer")?;
    // The control: lavapipe alone finishes early with the stale content,
    // so the check above can fail.
    let (early, first) = acquire_behind_a_write_fence_in("acquire-secondary", Layer::Off, "write", &[])?;
    ensure!(
        waited(early, first, "without the layer").is_err(),
        "without the layer the client also waited and saw the late content (early {early}, first {first}): \
         the test cannot tell whether the layer saw the secondary's acquire"
    );
    Ok(Outcome::Pass)
}

pub fn application_pnext_chains_on_submits_survive_the_layers_batches() -> TestResult {
    require_kernel_tier!();
    // The acquiring batch chains VkTimelineSemaphoreSubmitInfo (signalling
    // the application's timeline), VkDeviceGroupSubmitInfo, or both, while
    // a foreign fence is pending so the layer adds its own batches: waits
    // (thread or semaphore bridge), copies of a dynamic attachment.
    let runs: [(&str, &[(&str, &str)]); 3] = [
        ("acquire-only", &[("DYNABUF_SYNC", "thread")]),
        ("release", &[("DYNABUF_SYNC", "semaphore")]),
        (
            "release",
            &[("DYNABUF_SYNC", "thread"), ("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1")],
        ),
    ];
    for (mode, extra) in runs {
        let mut envs = vec![("DYNABUF_STATS", "1")];
        envs.extend_from_slice(extra);
        let run = validated(&["pnext", mode], &envs)?;
        let what = format!("pnext {mode} {extra:?}");
        ensure!(run.ok && run.value("pnext_ok").as_deref() == Some("true"), "{}", failed(&run, &what));
        let chains = run.stdout.lines().filter(|l| l.starts_with("chain=") && l.contains(" ok ")).count();
        ensure!(chains == 3, "{what}: {chains} of 3 chains checked:\n{}", run.stdout);
        // The fence was pending at every submission: the layer did act.
        ensure!(stat(&run.stderr, "acquires_waited") == [3], "{what}:\n{}", run.stderr);
    }
    Ok(Outcome::Pass)
}

pub fn host_access_maps_flushes_and_unmaps_the_dma_buf_of_a_dynamic_attachment() -> TestResult {
    require_kernel_tier!();
    // vkMapMemory + flush + invalidate + vkUnmapMemory, then the same with
    // vkMapMemory2KHR/vkUnmapMemory2KHR, on an attachment evicted at every
    // submission: no validation message (flush and invalidate must name
    // the memory that is mapped), the CPU's writes are the dma-buf's
    // content and what the GPU sees, and after each unmap the attachment
    // is evicted again.
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let map = validated(&["host-access", "map"], &envs)?;
    // The validation layer here (1.3.239) crashes on vkMapMemory2KHR even
    // without dynabuf: the map2 variant runs without it.
    let map2 = run_unchecked(CLIENT, &["host-access", "map2"], Layer::On, Validation::Off, &envs);
    for (run, how) in [(&map, "map"), (&map2, "map2")] {
        let what = format!("host-access {how}");
        ensure!(run.ok && run.value("host_access_ok").as_deref() == Some("true"), "{}", failed(run, &what));
        let submits: u64 = run.value("submits").and_then(|v| v.parse().ok()).unwrap_or(0);
        ensure!(stat(&run.stderr, "dynamic_attachments") == [1], "{what}:\n{}", run.stderr);
        ensure!(
            stat(&run.stderr, "evictions") == [submits],
            "{what}: expected {submits} evictions, one per submission (a mapping still marked after its unmap \
             is never evicted):\n{}",
            run.stderr
        );
    }
    if map2.value("map2").as_deref() != Some("yes") {
        println!("  note: the device has no VK_KHR_map_memory2; only vkMapMemory was tested");
    }
    Ok(Outcome::Pass)
}

pub fn an_injected_reimport_failure_fails_one_submit_and_the_next_succeeds() -> TestResult {
    require_kernel_tier!();
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_FAULT", "reimport:1"),
        ("DYNABUF_STATS", "1"),
    ];
    let run = client(&["fault-reimport", "20"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("content_ok").as_deref() == Some("true"),
        "{}",
        failed(&run, "fault-reimport")
    );
    let faulted = run.value("faulted").unwrap_or_default();
    ensure!(faulted.contains("ERROR_OUT_OF_DEVICE_MEMORY"), "the faulted submission returned {faulted:?}");
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["could not be re-validated"]).is_empty(), "{}", run.stderr);
    Ok(Outcome::Pass)
}

/// Values per job in `release-peek`: enough that, without the layer, a
/// peek right after `vkQueueSubmit` finds the job unfinished (under TCG,
/// 4096 already does in 10 of 10 submissions).
const PEEK_LEN: &str = "65536";

pub fn an_injected_sync_fd_export_failure_waits_for_the_gpu_instead() -> TestResult {
    require_kernel_tier!();
    // Every release's vkGetSemaphoreFdKHR fails: the layer publishes no
    // fence and waits for the GPU before vkQueueSubmit returns, so a peer
    // that finds the dma-buf ready right after the submit reads the
    // finished frame; the semaphore left signalled is never signalled again
    // (validation would report it).
    let rounds = "50";
    let envs = [("DYNABUF_FAULT", "sync_fd_export"), ("DYNABUF_STATS", "1")];
    let run = validated(&["release-peek", rounds, PEEK_LEN], &envs)?;
    ensure!(run.ok, "{}", failed(&run, "release-peek"));
    ensure!(run.value("rounds").as_deref() == Some(rounds), "{}", run.stdout);
    ensure!(run.value("early").as_deref() == Some("0"), "a peer read unfinished frames:\n{}", run.stdout);
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(
        !layer_lines_with(&run.stderr, &["vkGetSemaphoreFdKHR for a release failed", "waiting for the GPU"])
            .is_empty(),
        "{}",
        run.stderr
    );
    // The control: without the layer the same peek sees unfinished frames,
    // so `early=0` above is the layer's doing.
    let control = client(&["release-peek", "10", PEEK_LEN], Layer::Off, &[]);
    ensure!(control.ok, "{}", failed(&control, "release-peek without the layer"));
    let early: u64 = control.value("early").and_then(|v| v.parse().ok()).unwrap_or(0);
    println!("  without the layer, {early} of 10 submissions looked ready but unfinished right after vkQueueSubmit");
    ensure!(
        early > 0,
        "without the layer no frame was caught unfinished: the peek cannot fail:\n{}",
        control.stdout
    );
    Ok(Outcome::Pass)
}

pub fn injected_sync_file_ioctl_failures_are_logged_and_the_application_goes_on() -> TestResult {
    require_kernel_tier!();
    // EXPORT_SYNC_FILE of an acquire fails: a foreign reader's fence stays
    // pending (it never writes), so every writing acquire asks for the
    // buffer's fences; the acquire goes on without them.
    let envs = [("DYNABUF_FAULT", "export_sync_file"), ("DYNABUF_FENCE_TIMEOUT_MS", "3000")];
    let run = client(&["sync-file-fault", "20", "reader"], Layer::On, &envs);
    ensure!(run.ok && run.value("content_ok").as_deref() == Some("true"), "{}", failed(&run, "export fault"));
    ensure!(run.value("reader_pending_during_rounds").as_deref() == Some("true"), "{}", run.stdout);
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["acquire of", "DYNABUF_FAULT"]).is_empty(), "{}", run.stderr);
    let elapsed: u64 = run.value("elapsed_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    ensure!(elapsed < 3000, "20 submissions took {elapsed} ms:\n{}", run.stderr);
    // IMPORT_SYNC_FILE of a release fails: logged, nothing published.
    let envs = [("DYNABUF_FAULT", "import_sync_file")];
    let run = client(&["sync-file-fault", "20", "none"], Layer::On, &envs);
    ensure!(run.ok && run.value("content_ok").as_deref() == Some("true"), "{}", failed(&run, "import fault"));
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["release of", "DYNABUF_FAULT"]).is_empty(), "{}", run.stderr);
    Ok(Outcome::Pass)
}

pub fn an_injected_backing_failure_keeps_imports_pinned() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, 4096)?;
    let n = 200u64;
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_FAULT", "backing"),
        ("DYNABUF_LOG", "debug"),
        ("DYNABUF_STATS", "1"),
    ];
    let mut child = spawn("cycles", buf.fd(), &[&n.to_string()], Layer::On, &envs)?;
    let line = child.expect_line("fds_before", Duration::from_secs(120));
    let (ok, stderr) = child.finish();
    let line = line.map_err(|e| format!("{e}\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    let v = |k| value(&line, k).unwrap_or(u64::MAX);
    ensure!(v("fds_after_submits") == v("fds_before"), "fds grew over {n} submits: {line}");
    ensure!(v("fds_after_imports") == v("fds_before"), "fds grew over {n} imports: {line}");
    ensure!(v("first") == n + 1, "every submit ran once: {line}");
    ensure!(
        !layer_lines_with(&stderr, &["stays pinned", "backing"]).is_empty(),
        "no debug line saying the import stays pinned:\n{}",
        stderr
            .lines()
            .filter(|l| !l.contains("records") && !l.contains("submission"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ensure!(stat(&stderr, "dynamic_attachments") == [0], "{}", stats_lines(&stderr));
    ensure!(stat(&stderr, "evictions") == [0], "{}", stats_lines(&stderr));
    Ok(Outcome::Pass)
}

fn stats_lines(stderr: &str) -> String {
    stderr.lines().filter(|l| l.contains("stats") || l.contains("pinned")).collect::<Vec<_>>().join("\n")
}

/// A size that keeps each GPU job busy long enough (under TCG) that a peer
/// that does not wait for it reads unfinished values.
const HANDOVER_LEN: &str = "65536";

pub fn two_processes_handing_over_at_submit_rely_on_the_released_fence() -> TestResult {
    require_kernel_tier!();
    // As the 200-frame ping-pong, but each side passes the token as soon as
    // vkQueueSubmit returns: only the fences the layer releases into the
    // dma-buf order the two GPUs and the CPU checks.
    let frames = "20";
    let args = ["pingpong", frames, HANDOVER_LEN, "nowait"];
    let run = client(&args, Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(run.ok && run.value("pingpong_ok").as_deref() == Some("true"), "{}", failed(&run, "ping-pong"));
    ensure!(run.value("handover").as_deref() == Some("nowait"), "{}", run.stdout);
    ensure!(stat(&run.stderr, "releases_published") == [20, 20], "{}", run.stderr);
    // The control: the same processes without the layer read a frame that
    // is still being written.
    let control = client(&args, Layer::Off, &[]);
    ensure!(
        !control.ok && control.stderr.contains("expected"),
        "without the layer the ping-pong should read a wrong value:\n{}",
        failed(&control, "control")
    );
    let wrong = control.stderr.lines().find(|l| l.contains("expected")).unwrap_or_default();
    println!("  without the layer: {}", wrong.trim());
    Ok(Outcome::Pass)
}

pub fn two_devices_in_one_process_handing_over_at_submit_rely_on_the_released_fence() -> TestResult {
    require_kernel_tier!();
    let args = ["two-devices", "10", HANDOVER_LEN, "nowait"];
    let run = client(&args, Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(
        run.ok && run.value("two_devices_ok").as_deref() == Some("true"),
        "{}",
        failed(&run, "two devices")
    );
    // Both devices released every frame.
    ensure!(stat(&run.stderr, "releases_published") == [10, 10], "{}", run.stderr);
    let control = client(&args, Layer::Off, &[]);
    ensure!(
        !control.ok && control.stderr.contains("the producer reads"),
        "without the layer the producer should read a wrong value:\n{}",
        failed(&control, "control")
    );
    let wrong = control.stderr.lines().find(|l| l.contains("the producer reads")).unwrap_or_default();
    println!("  without the layer: {}", wrong.trim());
    Ok(Outcome::Pass)
}

/// Runs the client as [`run_unchecked`] does, but kills it when it has not
/// finished within `limit`: `Err` saying so, with what it printed by then.
/// With validation on, also fails on any message validation alone does
/// not produce.
fn bounded(
    args: &[&str],
    layer: Layer,
    mode: Validation,
    envs: &[(&str, &str)],
    limit: Duration,
) -> Result<(Run, Duration), String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    crate::common::require_layer();
    let mut cmd = Command::new(CLIENT);
    dynabuf_client::env::vulkan_env_with(&mut cmd, layer, mode).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let what = format!("dynabuf-client {} with {envs:?} ({layer:?}, validation {mode:?})", args.join(" "));
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {what}: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait().map_err(|e| format!("wait for {what}: {e}"))? {
            Some(status) => break Some(status),
            None if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let elapsed = start.elapsed();
    let run = Run {
        ok: status.is_some_and(|s| s.success()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        status: status.map_or_else(|| format!("killed after {} s", limit.as_secs()), |s| s.to_string()),
    };
    if status.is_none() {
        return Err(failed(&run, &format!("{what} did not finish within {} s: it hangs", limit.as_secs())));
    }
    validation::check(&what, layer, mode, &[&run.stderr, &run.stdout])?;
    Ok((run, elapsed))
}

/// How long a client that should take seconds may run before the test
/// calls it hung and kills it.
const HANG: Duration = Duration::from_secs(30);

pub fn a_release_behind_an_unsignalled_application_timeline_never_hangs() -> TestResult {
    require_kernel_tier!();
    // ONE vkQueueSubmit whose batch waits for an application timeline at
    // value 1 and acquires, adds 1000 to and releases a udmabuf; the
    // client signals the timeline from the host only after vkQueueSubmit
    // returns. Mesa's vkGetSemaphoreFdKHR of the release fence waits until
    // the work is really submitted, which is after that host signal: a
    // layer that exported it inside vkQueueSubmit deadlocked there (the
    // client was killed after 30 s under the layer of a24dae1), and one
    // that waited for the GPU instead published no fence at all (fea6c15:
    // `releases_published=0`, no warning). The layer exports it on its
    // publisher thread and waits at most DYNABUF_FENCE_TIMEOUT_MS; the
    // fence lands once the export returns.
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "1000"), ("DYNABUF_STATS", "1"), ("DYNABUF_LOG", "debug")];
    let args = ["timeline-release", "same"];
    // The control first: without the layer the client itself never blocks,
    // so a hang below is the layer's.
    let (control, control_took) = bounded(&args, Layer::Off, Validation::from_env(), &[], HANG)?;
    ensure!(
        control.ok && control.value("timeline_release_ok").as_deref() == Some("true"),
        "{}",
        failed(&control, "without the layer")
    );
    let control_ms: u64 = control.value("submit_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    ensure!(control_ms < 1000, "without the layer vkQueueSubmit took {control_ms} ms:\n{}", control.stdout);
    // Plain, and with validation below the layer (a wait-before-signal
    // batch with the layer's batches and its SYNC_FD export is valid
    // Vulkan); one run when DYNABUF_TEST_VALIDATION already asks for it.
    let mut runs = Vec::new();
    if Validation::from_env() == Validation::Off {
        runs.push((bounded(&args, Layer::On, Validation::Off, &envs, HANG)?, "under the layer"));
    }
    let mode = match Validation::from_env() {
        Validation::Alone => Validation::Alone,
        _ => Validation::Below,
    };
    runs.push((bounded(&args, Layer::On, mode, &envs, HANG)?, "under the layer, validation below"));
    let mut measured = Vec::new();
    for ((run, took), how) in &runs {
        ensure!(
            run.ok && run.value("timeline_release_ok").as_deref() == Some("true"),
            "{}",
            failed(run, how)
        );
        let submit_ms: u64 = run.value("submit_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        let total_ms: u64 = run.value("total_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        ensure!(
            submit_ms < 5000,
            "{how}: vkQueueSubmit took {submit_ms} ms (fence timeout 1000 ms):\n{}",
            run.stderr
        );
        ensure!(
            !layer_lines_with(&run.stderr, &["exporting a release fence is blocked"]).is_empty(),
            "{how}: no warning that the release fence's export was blocked (was the timeline wait \
             really pending at the export?):\n{}",
            run.stderr
        );
        ensure!(stat(&run.stderr, "releases_published") == [1], "{how}:\n{}", run.stderr);
        // The export returned once the host signalled, and the fence did
        // land in the dma-buf (late).
        ensure!(
            !layer_lines_with(&run.stderr, &["published a Write fence"]).is_empty(),
            "{how}: the release fence was never published:\n{}",
            run.stderr
        );
        let early = run.value("ready_before_signal").unwrap_or_default();
        measured.push(format!(
            "{how}: submit {submit_ms} ms, job done {total_ms} ms, client {} ms, dma-buf ready before the \
             host signal: {early}",
            took.as_millis()
        ));
    }
    println!(
        "  fence timeout 1000 ms: {}; without the layer: submit {control_ms} ms, client {} ms",
        measured.join("; "),
        control_took.as_millis()
    );
    Ok(Outcome::Pass)
}

/// The client's `NAME=ok checksum=X` values, in order.
fn checksums(run: &Run, names: &[&str]) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|n| match run.value(n).as_deref() {
            Some("ok") => {
                let line = run.stdout.lines().find(|l| l.starts_with(&format!("{n}="))).unwrap_or_default();
                Ok(line.to_string())
            }
            _ => Err(format!("{n}: no ok line:\n{}", run.stdout)),
        })
        .collect()
}

pub fn release_then_acquire_in_one_submission_keeps_the_released_writes() -> TestResult {
    require_kernel_tier!();
    // ONE vkQueueSubmit of three batches on a dynamic attachment (evicted
    // at every submission): each batch acquires, adds (1, 10, 100) and
    // releases; and batch 0 acquire + fill + release, batch 1 acquire +
    // add 10, batch 2 add 100 + release. A batch's copy-in reads the
    // dma-buf, so the batch before must have copied its writes out. The
    // layer before copies out at every releasing batch (fea6c15) copied out
    // only at the last one, and batch 1's copy-in overwrote batch 0's
    // writes (`all_three` read pattern + 100 instead of pattern + 111,
    // `copies_out=1`). The CPU
    // checks the exact composition; the pinned control (the application's
    // memory is the dma-buf, no copies) must give the same checksums.
    let names = ["all_three", "fill_acquire_release"];
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let dynamic = client(&["release-acquire"], Layer::On, &envs);
    ensure!(
        dynamic.ok && dynamic.value("release_acquire_ok").as_deref() == Some("true"),
        "{}",
        failed(&dynamic, "dynamic")
    );
    // Two fresh dynamic imports; copies out at each releasing batch (3 + 2)
    // and in at each acquiring one (3 + 2).
    ensure!(stat(&dynamic.stderr, "dynamic_attachments") == [2], "{}", stats_lines(&dynamic.stderr));
    ensure!(stat(&dynamic.stderr, "copies_out") == [5], "{}", stats_lines(&dynamic.stderr));
    ensure!(stat(&dynamic.stderr, "copies_in") == [5], "{}", stats_lines(&dynamic.stderr));
    let pinned =
        client(&["release-acquire"], Layer::On, &[("DYNABUF_ATTACH", "pinned"), ("DYNABUF_STATS", "1")]);
    ensure!(
        pinned.ok && pinned.value("release_acquire_ok").as_deref() == Some("true"),
        "{}",
        failed(&pinned, "pinned")
    );
    ensure!(stat(&pinned.stderr, "dynamic_attachments") == [0], "{}", stats_lines(&pinned.stderr));
    let (d, p) = (checksums(&dynamic, &names)?, checksums(&pinned, &names)?);
    ensure!(d == p, "dynamic and pinned differ:\ndynamic {d:?}\npinned  {p:?}");
    Ok(Outcome::Pass)
}

pub fn a_first_use_that_only_releases_publishes_the_dma_bufs_content_plus_the_gpus_writes() -> TestResult {
    require_kernel_tier!();
    // The CPU fills a udmabuf with a pattern before the import; the first
    // submission on the (dynamic) attachment records no acquire: the GPU
    // fills the first half and the batch releases (`release_only`), and
    // in a second scenario another batch of the same submission then
    // acquires, adds 1 and releases (`release_then_acquire`). The backing
    // never had the dma-buf's content, and the release copies the whole
    // backing out. Before the layer filled such a backing first (a24dae1)
    // the second half read the backing's zeros instead of the pattern
    // (`release_only`: data[2048] = 0); with the later rule "no fill when
    // the submission acquires anywhere" (fea6c15) `release_then_acquire`
    // lost batch 0's writes. The pinned control gives the same checksums.
    let names = ["release_only", "release_then_acquire"];
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let dynamic = client(&["first-release"], Layer::On, &envs);
    ensure!(
        dynamic.ok && dynamic.value("first_release_ok").as_deref() == Some("true"),
        "{}",
        failed(&dynamic, "dynamic")
    );
    ensure!(stat(&dynamic.stderr, "dynamic_attachments") == [2], "{}", stats_lines(&dynamic.stderr));
    // Each scenario fills its backing first (1 + 1), and the second also
    // copies in at its acquire (1); out at each release (1 + 2).
    ensure!(stat(&dynamic.stderr, "copies_in") == [3], "{}", stats_lines(&dynamic.stderr));
    ensure!(stat(&dynamic.stderr, "copies_out") == [3], "{}", stats_lines(&dynamic.stderr));
    let pinned =
        client(&["first-release"], Layer::On, &[("DYNABUF_ATTACH", "pinned"), ("DYNABUF_STATS", "1")]);
    ensure!(
        pinned.ok && pinned.value("first_release_ok").as_deref() == Some("true"),
        "{}",
        failed(&pinned, "pinned")
    );
    ensure!(stat(&pinned.stderr, "dynamic_attachments") == [0], "{}", stats_lines(&pinned.stderr));
    let (d, p) = (checksums(&dynamic, &names)?, checksums(&pinned, &names)?);
    ensure!(d == p, "dynamic and pinned differ:\ndynamic {d:?}\npinned  {p:?}");
    Ok(Outcome::Pass)
}

pub fn a_release_behind_an_earlier_unsignalled_wait_on_its_queue_never_hangs() -> TestResult {
    require_kernel_tier!();
    // As the test above, but the wait for the application's timeline is an
    // earlier vkQueueSubmit on the same queue (a batch that only waits);
    // the releasing submission itself waits on nothing. Mesa defers every
    // later submission on the queue behind the pending wait, so the
    // release's SYNC_FD export blocks until the host signal, which comes
    // after vkQueueSubmit returns. `ahead`: the waiting batch comes after
    // the import and the recording of the job; `before-import`: before
    // both, while the device shares nothing (with statistics off, the
    // default, such a submission goes straight to the driver, unseen by
    // the layer). Statistics stay off here for that reason.
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "1000"), ("DYNABUF_LOG", "debug")];
    let mut measured = Vec::new();
    for mode in ["ahead", "before-import"] {
        let args = ["timeline-release", mode];
        let (run, took) = bounded(&args, Layer::On, Validation::from_env(), &envs, HANG)?;
        ensure!(
            run.ok && run.value("timeline_release_ok").as_deref() == Some("true"),
            "{}",
            failed(&run, mode)
        );
        let submit_ms: u64 = run.value("submit_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        ensure!(submit_ms < 5000, "{mode}: vkQueueSubmit took {submit_ms} ms (fence timeout 1000 ms)");
        ensure!(
            !layer_lines_with(&run.stderr, &["published a Write fence"]).is_empty(),
            "{mode}: the release fence was never published:\n{}",
            run.stderr
        );
        measured.push(format!("{mode}: submit {submit_ms} ms, client {} ms", took.as_millis()));
    }
    // The control: without the layer neither blocks.
    for mode in ["ahead", "before-import"] {
        let (control, _) =
            bounded(&["timeline-release", mode], Layer::Off, Validation::from_env(), &[], HANG)?;
        ensure!(
            control.ok && control.value("timeline_release_ok").as_deref() == Some("true"),
            "{}",
            failed(&control, &format!("{mode} without the layer"))
        );
    }
    println!("  fence timeout 1000 ms: {}", measured.join("; "));
    Ok(Outcome::Pass)
}
