//! When the application's thread blocks, and that it never hangs.

use super::{failed, layer_lines_with, stat, STARTUP};
use crate::child::{spawn, value};
use crate::common::{Run, CLIENT};
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::env::{validation, Layer, Validation};
use std::time::{Duration, Instant};

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

/// Runs the client as [`run_unchecked`] does, but kills it when it has not
/// finished within `limit`: `Err` saying so, with what it printed by then.
/// With validation on, also fails on any message validation alone does
/// not produce.
pub(crate) fn bounded(
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
pub(crate) const HANG: Duration = Duration::from_secs(30);

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
            !layer_lines_with(&run.stderr, &["exporting a release fence took longer"]).is_empty(),
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
