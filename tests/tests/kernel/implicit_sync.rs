//! Implicit sync by the layer, for plain Vulkan clients that do no
//! sync-file work themselves (each runs as its own process): a foreign
//! fence delays an acquire until it signals; a read fence delays only
//! writers; a release publishes a fence a peer can wait on; a fence that
//! never signals costs at most DYNABUF_FENCE_TIMEOUT_MS; fd counts stay
//! flat.

use std::os::fd::AsFd;
use std::time::Duration;

use dynabuf::sys::dma_buf::{self, Access};
use dynabuf::sys::sync_file;
use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::env::Layer;
use dynabuf_client::shaders::fill_expected;

use crate::child::{spawn, value};
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

const LEN: u32 = 1024;
const BYTES: u64 = LEN as u64 * 4;
const STARTUP: Duration = Duration::from_secs(60);

/// Writes `base + i` into the buffer through a mapping. `bracket`: inside
/// DMA_BUF_IOCTL_SYNC, which waits for the buffer's fences, so the test
/// writes unbracketed while it holds a fence itself (udmabuf memory is
/// ordinary coherent memory).
fn write_all(buf: &Buf, base: u32, bracket: bool) -> Result<(), String> {
    let mut map = Mapping::new(buf.fd(), BYTES as usize).map_err(|e| e.to_string())?;
    if bracket {
        dma_buf::cpu_access(buf.fd(), Access::Write, true).check("SYNC start")?;
    }
    for (i, w) in map.words().iter_mut().enumerate() {
        *w = base + i as u32;
    }
    if bracket {
        dma_buf::cpu_access(buf.fd(), Access::Write, false).check("SYNC end")?;
    }
    Ok(())
}

/// A client acquires a buffer that has a pending foreign write fence; the
/// test rewrites the content 300 ms after the client submitted, then
/// signals. Returns (whether the client finished before the signal, the
/// first value its GPU computed).
fn acquire_behind_a_write_fence(
    layer: Layer,
    kind: &str,
    envs: &[(&str, &str)],
) -> Result<(bool, u64), String> {
    acquire_behind_a_write_fence_in("acquire", layer, kind, envs)
}

/// [`acquire_behind_a_write_fence`] with another client subcommand taking
/// `acquire`'s arguments (`FD LEN KIND DISPATCH`).
pub(crate) fn acquire_behind_a_write_fence_in(
    sub: &str,
    layer: Layer,
    kind: &str,
    envs: &[(&str, &str)],
) -> Result<(bool, u64), String> {
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    write_all(&buf, 0, true)?;
    let mut all_envs = vec![("DYNABUF_LOG", "debug")];
    all_envs.extend_from_slice(envs);
    let mut child = spawn(sub, buf.fd(), &[&LEN.to_string(), kind, "1"], layer, &all_envs)?;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        // vgem signals its fences itself after 10 s: attach only now.
        let fence = vgem.attach(buf.handle, true).check("attach write fence")?;
        child.say("go")?;
        let early = child.line(Duration::from_millis(300))?;
        write_all(&buf, 5000, false)?;
        vgem.signal(fence).check("signal")?;
        let was_early = early.is_some();
        let done = match early {
            Some(l) => l,
            None => child.expect_line("done", Duration::from_secs(30))?,
        };
        ensure!(done.starts_with("done"), "expected done, got {done:?}");
        let first = value(&done, "first").ok_or(format!("no first= in {done:?}"))?;
        Ok((was_early, first))
    })();
    let (ok, stderr) = child.finish();
    if std::env::var_os("DYNABUF_TEST_DUMP").is_some() {
        eprintln!("--- client stderr ({kind}, {envs:?})\n{stderr}");
    }
    let r: Result<(bool, u64), String> = outcome;
    let r = r.map_err(|e| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    Ok(r)
}

/// The client waited and its GPU saw the late content.
pub(crate) fn waited(early: bool, first: u64, how: &str) -> Result<(), String> {
    ensure!(!early, "{how}: the client finished before the foreign fence signalled");
    ensure!(
        first == 6000,
        "{how}: the GPU read {}, not the content written just before the fence signalled (5000)",
        first.wrapping_sub(1000)
    );
    Ok(())
}

pub fn acquire_waits_for_a_foreign_write_fence() -> TestResult {
    require_kernel_tier!();
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "write", &[])?;
    waited(early, first, "DYNABUF_SYNC=auto (thread)")?;
    Ok(Outcome::Pass)
}

pub fn every_sync_mode_and_submit_entry_point_waits() -> TestResult {
    require_kernel_tier!();
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "write", &[("DYNABUF_SYNC", "semaphore")])?;
    waited(early, first, "DYNABUF_SYNC=semaphore")?;
    let (early, first) =
        acquire_behind_a_write_fence(Layer::On, "write", &[("DYNABUF_CLIENT_SUBMIT2", "1")])?;
    waited(early, first, "vkQueueSubmit2, thread")?;
    let envs = [("DYNABUF_CLIENT_SUBMIT2", "1"), ("DYNABUF_SYNC", "semaphore")];
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "write", &envs)?;
    waited(early, first, "vkQueueSubmit2, semaphore")?;
    Ok(Outcome::Pass)
}

pub fn scope_all_syncs_an_application_that_records_no_transfers() -> TestResult {
    require_kernel_tier!();
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "none", &[("DYNABUF_SYNC_SCOPE", "all")])?;
    waited(early, first, "DYNABUF_SYNC_SCOPE=all")?;
    // With the default scope such an application gets no implicit sync on
    // the GPU. (Its vkMapMemory would still wait for the writer, as CPU
    // access bracketing asks: this test is about the GPU, so that is off.)
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "none", &[("DYNABUF_CPU_SYNC", "off")])?;
    ensure!(early && first == 1000, "scope transfers, no transfers recorded: early {early}, first {first}");
    Ok(Outcome::Pass)
}

pub fn sync_off_leaves_the_application_alone() -> TestResult {
    require_kernel_tier!();
    let (early, first) = acquire_behind_a_write_fence(Layer::On, "write", &[("DYNABUF_SYNC", "off")])?;
    ensure!(early && first == 1000, "DYNABUF_SYNC=off still waited: early {early}, first {first}");
    Ok(Outcome::Pass)
}

pub fn without_the_layer_the_same_client_reads_stale_content() -> TestResult {
    require_kernel_tier!();
    // Proves the previous test measures the layer: lavapipe alone neither
    // waits for the dma-buf's fences nor sees the late content.
    let (early, first) = acquire_behind_a_write_fence(Layer::Off, "write", &[])?;
    ensure!(early, "without the layer the client should not wait for the fence");
    ensure!(first == 1000, "without the layer the GPU should read the stale 0, computed {first}");
    Ok(Outcome::Pass)
}

/// Whether a client's acquire (`kind`, no shader work) finished while a
/// foreign fence (`write_fence` or read) was pending.
fn finished_while_fence_pending(kind: &str, write_fence: bool) -> Result<bool, String> {
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    let mut child = spawn("acquire", buf.fd(), &[&LEN.to_string(), kind, "0"], Layer::On, &[])?;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        let fence = vgem.attach(buf.handle, write_fence).check("attach")?;
        child.say("go")?;
        let early = child.line(Duration::from_millis(1500))?;
        vgem.signal(fence).check("signal")?;
        if early.is_none() {
            child.expect_line("done", Duration::from_secs(30))?;
        }
        Ok(early.is_some())
    })();
    let (ok, stderr) = child.finish();
    let r = outcome.map_err(|e: String| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    Ok(r)
}

pub fn a_read_fence_delays_a_write_acquire_but_not_a_read_acquire() -> TestResult {
    require_kernel_tier!();
    ensure!(finished_while_fence_pending("read", false)?, "a read-only acquire waited for another reader");
    ensure!(!finished_while_fence_pending("write", false)?, "a writing acquire did not wait for a reader");
    ensure!(!finished_while_fence_pending("read", true)?, "a read-only acquire did not wait for a writer");
    Ok(Outcome::Pass)
}

pub fn a_release_publishes_a_fence_a_peer_can_wait_on() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    let seed = 0x5eed;
    let mut child = spawn(
        "release",
        buf.fd(),
        &[&LEN.to_string(), &seed.to_string()],
        Layer::On,
        &[("DYNABUF_LOG", "debug")],
    )?;
    let outcome = (|| {
        child.expect_line("submitted", STARTUP)?;
        // The peer knows nothing of Vulkan: it waits as a reader would.
        let fence = dma_buf::export_sync_file(buf.fd(), Access::Read).check("EXPORT_SYNC_FILE(READ)")?;
        ensure!(
            sync_file::wait(fence.as_fd(), Duration::from_secs(10)).check("wait")?,
            "the release fence never signalled"
        );
        let mut map = Mapping::new(buf.fd(), BYTES as usize).map_err(|e| e.to_string())?;
        dma_buf::cpu_access(buf.fd(), Access::Read, true).check("SYNC start")?;
        let bad = map
            .words()
            .iter()
            .enumerate()
            .find(|(i, w)| **w != fill_expected(*i as u32, seed))
            .map(|(i, w)| (i, *w));
        dma_buf::cpu_access(buf.fd(), Access::Read, false).check("SYNC end")?;
        ensure!(bad.is_none(), "after the fence the peer read {bad:?}");
        child.say("exit")?;
        Ok(())
    })();
    let (ok, stderr) = child.finish();
    outcome.map_err(|e| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    ensure!(stderr.contains("published a Write fence"), "the layer published no fence:\n{stderr}");
    Ok(Outcome::Pass)
}

pub fn a_fence_that_never_signals_is_bounded_by_the_timeout() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "500")];
    let mut child = spawn("acquire", buf.fd(), &[&LEN.to_string(), "write", "1"], Layer::On, &envs)?;
    let mut fence = None;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        // vgem would signal it by itself after 10 s; the layer gives up at 0.5 s.
        fence = Some(vgem.attach(buf.handle, true).check("attach")?);
        child.say("go")?;
        let done = child.expect_line("done", Duration::from_secs(6))?;
        Ok(value(&done, "elapsed_ms").unwrap_or(u64::MAX))
    })();
    if let Some(f) = fence {
        let _ = vgem.signal(f);
    }
    let (ok, stderr) = child.finish();
    let elapsed = outcome.map_err(|e: String| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    ensure!((450..6000).contains(&elapsed), "the submission took {elapsed} ms with a 500 ms timeout");
    ensure!(stderr.contains("did not signal within DYNABUF_FENCE_TIMEOUT_MS"), "no warning:\n{stderr}");
    Ok(Outcome::Pass)
}

pub fn fd_count_stays_flat_over_acquire_release_and_import_cycles() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    let n = 10_000u64;
    let mut child = spawn("cycles", buf.fd(), &[&n.to_string()], Layer::On, &[("DYNABUF_STATS", "1")])?;
    let line = child.expect_line("fds_before", Duration::from_secs(600));
    let (ok, stderr) = child.finish();
    let line = line.map_err(|e| format!("{e}\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    let v = |k| value(&line, k).unwrap_or(u64::MAX);
    ensure!(v("fds_after_submits") == v("fds_before"), "fds grew over {n} submits: {line}");
    ensure!(v("fds_after_imports") == v("fds_before"), "fds grew over {n} imports: {line}");
    ensure!(v("first") == n + 1, "every submit ran once: {line}");
    ensure!(words_matching(&stderr, &format!("releases_published={}", n + 1)) == 1, "{stderr}");
    Ok(Outcome::Pass)
}

pub fn two_processes_ping_pong_a_dma_buf_for_200_frames() -> TestResult {
    require_kernel_tier!();
    let run = crate::common::client(&["pingpong", "200"], Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(run.ok, "ping-pong failed:\n{}\n{}", run.stdout, run.stderr);
    ensure!(run.value("pingpong_ok").as_deref() == Some("true"), "{}", run.stdout);
    // Both processes' devices released (and acquired) on every frame.
    let published = words_matching(&run.stderr, "releases_published=200");
    ensure!(published == 2, "each process should publish 200 release fences:\n{}", run.stderr);
    Ok(Outcome::Pass)
}

pub fn exporter_and_importer_devices_in_one_process_sync_implicitly() -> TestResult {
    require_kernel_tier!();
    // A producer device exports a dma-buf, a consumer device of the same
    // process imports it; 20 frames of fill, release, acquire, add, release,
    // every value checked (the scenario the demo shared before it shared an
    // image; `robustness::two_devices_in_one_process_handing_over_at_submit_rely_on_the_released_fence`
    // is its no-wait variant, with the control).
    let run =
        crate::common::client(&["two-devices", "20", "4096", "wait"], Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(
        run.ok && run.stdout.contains("two_devices_ok=true"),
        "two-devices failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    // The consumer acquires and releases each frame, the producer releases.
    ensure!(words_matching(&run.stderr, "releases_published=20") == 2, "{}", run.stderr);
    ensure!(words_matching(&run.stderr, "acquires_recorded=20") == 1, "{}", run.stderr);
    Ok(Outcome::Pass)
}

/// How many whitespace-separated words of `text` are exactly `word`.
fn words_matching(text: &str, word: &str) -> usize {
    text.split_whitespace().filter(|w| *w == word).count()
}

pub fn bad_imports_return_the_drivers_result_and_leak_nothing() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let small = Buf::new(&vgem, 4096)?;
    let mut results = Vec::new();
    for layer in [Layer::Off, Layer::On] {
        let mut child = spawn("bad-imports", small.fd(), &["500"], layer, &[])?;
        let mut lines = Vec::new();
        for _ in 0..4 {
            lines.push(child.expect_line("", Duration::from_secs(120))?);
        }
        let (ok, stderr) = child.finish();
        ensure!(ok, "bad-imports failed:\n{stderr}");
        println!("  {layer:?}: {}", lines.join(" "));
        let fds = lines.pop().unwrap_or_default();
        ensure!(value(&fds, "fds_before") == value(&fds, "fds_after"), "{layer:?}: fds grew: {fds}");
        results.push(lines);
    }
    ensure!(
        results[0] == results[1],
        "the layer changed the driver's answers: {:?} vs {:?}",
        results[0],
        results[1]
    );
    ensure!(!results[1][0].ends_with("SUCCESS") && !results[1][1].ends_with("SUCCESS"), "{:?}", results[1]);
    Ok(Outcome::Pass)
}
