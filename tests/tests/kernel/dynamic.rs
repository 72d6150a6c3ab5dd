//! Dynamic attachments: evicted (internal import dropped) and re-validated
//! (re-imported) transparently, with content and ordering kept.

use std::time::Duration;

use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::env::Layer;

use crate::child::{spawn, spawn_with, value};
use crate::common::client;
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

pub(crate) fn stat(stderr: &str, key: &str) -> Vec<u64> {
    stderr
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
        .collect()
}

pub fn every_submit_evicts_and_revalidates_and_two_processes_keep_exact_values() -> TestResult {
    require_kernel_tier!();
    // Two processes, both under the layer with every attachment dynamic and
    // invalidated at every submission: 1,000 frames each way, every frame's
    // values checked by both sides.
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let run = client(&["pingpong", "1000"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("pingpong_ok").as_deref() == Some("true"),
        "ping-pong failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    // The importer's attachment is the dynamic one (the exporter's memory
    // is its own allocation, not an import).
    ensure!(stat(&run.stderr, "dynamic_attachments").contains(&1), "no dynamic attachment:\n{}", run.stderr);
    ensure!(stat(&run.stderr, "evictions").contains(&1000), "expected 1000 evictions:\n{}", run.stderr);
    ensure!(
        stat(&run.stderr, "revalidations").contains(&1000),
        "expected 1000 re-validations:\n{}",
        run.stderr
    );
    ensure!(
        stat(&run.stderr, "copies_in").contains(&1000) && stat(&run.stderr, "copies_out").contains(&1000),
        "{}",
        run.stderr
    );
    Ok(Outcome::Pass)
}

pub fn a_budget_holds_resident_imports_within_it_at_every_point() -> TestResult {
    require_kernel_tier!();
    // Four 1 MiB dma-bufs used round robin under a 2 MiB budget.
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "budget:2"), ("DYNABUF_STATS", "1")];
    let run = client(&["budget", "4", "1", "40"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("budget_ok").as_deref() == Some("true"),
        "budget run failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    let peak = stat(&run.stderr, "resident_peak_bytes");
    ensure!(
        peak.first().is_some_and(|&p| p > 0 && p <= 2 << 20),
        "resident peak {peak:?} over 2 MiB:\n{}",
        run.stderr
    );
    let mapped: usize = run.value("max_mapped").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    ensure!(mapped <= 2, "lavapipe had {mapped} dma-buf mappings at once under a 2 MiB budget");
    ensure!(
        stat(&run.stderr, "evictions").first().is_some_and(|&e| e >= 30),
        "too few evictions:\n{}",
        run.stderr
    );
    Ok(Outcome::Pass)
}

pub fn pinned_attachments_are_never_evicted() -> TestResult {
    require_kernel_tier!();
    let envs = [("DYNABUF_ATTACH", "pinned"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let run = client(&["budget", "2", "1", "10"], Layer::On, &envs);
    ensure!(run.ok && run.value("budget_ok").as_deref() == Some("true"), "{}\n{}", run.stdout, run.stderr);
    ensure!(stat(&run.stderr, "evictions") == vec![0], "pinned attachments were evicted:\n{}", run.stderr);
    ensure!(stat(&run.stderr, "dynamic_attachments") == vec![0], "{}", run.stderr);
    Ok(Outcome::Pass)
}

const MIB: u64 = 1 << 20;

fn write_first_mib(buf: &Buf, base: u32) -> Result<(), String> {
    let mut map = Mapping::new(buf.fd(), MIB as usize).map_err(|e| e.to_string())?;
    for (i, w) in map.words().iter_mut().enumerate() {
        *w = base + i as u32;
    }
    Ok(())
}

pub fn content_written_while_invalidated_is_seen_after_revalidation() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let (a, b) = (Buf::new(&vgem, MIB)?, Buf::new(&vgem, MIB)?);
    write_first_mib(&a, 0)?;
    write_first_mib(&b, 0)?;
    // A 1 MiB budget: using B evicts A, and the other way round.
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "budget:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let len = (MIB / 4).to_string();
    let mut child = spawn_with("alternate", &[a.fd(), b.fd()], &[&len], Layer::On, &envs)?;
    let outcome = (|| {
        child.expect_line("ready", Duration::from_secs(60))?;
        child.say("go 0")?;
        let first = value(&child.expect_line("done", Duration::from_secs(30))?, "first");
        ensure!(first == Some(1), "A after one add: {first:?}");
        child.say("go 1")?;
        child.expect_line("done", Duration::from_secs(30))?;
        // A is invalidated now; its exporter (this process) rewrites it.
        write_first_mib(&a, 7000)?;
        // And then drops every reference it had: the importer's (and the
        // layer's) fds keep the buffer alive, like an exporter that exited.
        drop(a);
        child.say("go 2")?;
        let first = value(&child.expect_line("done", Duration::from_secs(30))?, "first");
        ensure!(first == Some(7001), "A after re-validation: {first:?}, expected the exporter's 7000 + 1");
        child.say("go 4")?;
        let first = value(&child.expect_line("done", Duration::from_secs(30))?, "first");
        ensure!(first == Some(7002), "A once more: {first:?}");
        child.say("exit")?;
        Ok(())
    })();
    let (ok, stderr) = child.finish();
    outcome.map_err(|e| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    ensure!(
        stderr.contains("invalidated (internal import dropped)") && stderr.contains("re-validated"),
        "{stderr}"
    );
    Ok(Outcome::Pass)
}

pub fn eviction_of_a_busy_attachment_waits_and_never_corrupts() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, 4096)?;
    // 30 submissions back to back, each evicting the attachment the
    // previous one still uses: every eviction must wait for it.
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let mut child = spawn("burst", buf.fd(), &["30"], Layer::On, &envs)?;
    let line = child.expect_line("burst", Duration::from_secs(120));
    let (ok, stderr) = child.finish();
    let line = line.map_err(|e| format!("{e}\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    ensure!(line.contains("ok=true") && value(&line, "first") == Some(30), "{line}");
    ensure!(stat(&stderr, "evictions") == vec![30], "{stderr}");
    Ok(Outcome::Pass)
}

pub fn a_failed_revalidation_returns_an_error_and_a_later_submit_retries() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, 4096)?;
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let mut child = spawn("refault", buf.fd(), &[], Layer::On, &envs)?;
    let faulted = child.expect_line("faulted", Duration::from_secs(60));
    let first = child.expect_line("first", Duration::from_secs(60));
    let (ok, stderr) = child.finish();
    let (faulted, first) =
        (faulted.map_err(|e| format!("{e}\n{stderr}"))?, first.map_err(|e| format!("{e}\n{stderr}"))?);
    ensure!(ok, "the client failed:\n{stderr}");
    // A result vkQueueSubmit may return; the log names the cause.
    ensure!(
        faulted.contains("ERROR_OUT_OF_DEVICE_MEMORY"),
        "the faulted submission should fail with a legal result: {faulted}\n{stderr}"
    );
    ensure!(stderr.contains("re-validated: ERROR_TOO_MANY_OBJECTS"), "the cause is not logged:\n{stderr}");
    // The failed submission ran nothing; the retry re-validated and ran.
    ensure!(value(&first, "first") == Some(2), "{first}");
    ensure!(stderr.contains("could not be re-validated"), "{stderr}");
    Ok(Outcome::Pass)
}

pub fn an_attachment_outlives_its_exporting_process() -> TestResult {
    require_kernel_tier!();
    use std::os::fd::AsFd;
    // An exporter process makes a dma-buf, sends it here and exits.
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
    let mut exporter = spawn("give-dmabuf", theirs.as_fd(), &["1"], Layer::Off, &[])?;
    let received = dynabuf_client::pingpong::recv_fd(&mine).map_err(|e| e.to_string());
    let (exited_ok, stderr) = exporter.finish();
    let a = received.map_err(|e| format!("{e}\n{stderr}"))?;
    ensure!(exited_ok, "the exporter failed:\n{stderr}");
    drop(theirs);
    // The importer uses it as a dynamic attachment evicted by a budget.
    let vgem = vgem()?;
    let b = Buf::new(&vgem, MIB)?;
    write_first_mib(&b, 0)?;
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "budget:1"), ("DYNABUF_STATS", "1")];
    let len = (MIB / 4).to_string();
    let mut child = spawn_with("alternate", &[a.as_fd(), b.fd()], &[&len], Layer::On, &envs)?;
    drop(a);
    let outcome = (|| {
        child.expect_line("ready", Duration::from_secs(60))?;
        for (go, want) in [(0, 101), (1, 1), (2, 102), (3, 2), (4, 103)] {
            child.say(&format!("go {go}"))?;
            let first = value(&child.expect_line("done", Duration::from_secs(30))?, "first");
            ensure!(first == Some(want), "go {go}: first {first:?}, expected {want}");
        }
        child.say("exit")?;
        Ok(())
    })();
    let (ok, stderr) = child.finish();
    outcome.map_err(|e| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    ensure!(stat(&stderr, "revalidations").first().is_some_and(|&r| r >= 2), "{stderr}");
    Ok(Outcome::Pass)
}

/// The copies of one `copies MODE` run: (copies in, copies out, evictions,
/// re-validations) from its statistics line.
fn copies_of(mode: &str, frames: u32, extra: &[(&str, &str)]) -> Result<(u64, u64, u64, u64), String> {
    let mut envs = vec![("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_STATS", "1")];
    envs.extend_from_slice(extra);
    let run = client(&["copies", mode, &frames.to_string()], Layer::On, &envs);
    ensure!(
        run.ok && run.value("copies_ok").as_deref() == Some("true"),
        "copies {mode} failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    ensure!(stat(&run.stderr, "dynamic_attachments") == vec![1], "not dynamic:\n{}", run.stderr);
    let one = |key: &str| {
        stat(&run.stderr, key).first().copied().ok_or_else(|| format!("no {key}:\n{}", run.stderr))
    };
    Ok((one("copies_in")?, one("copies_out")?, one("evictions")?, one("revalidations")?))
}

pub fn an_unchanged_buffer_acquired_unmodified_and_only_read_is_copied_once() -> TestResult {
    require_kernel_tier!();
    let frames = 30;
    // Every frame's readback is checked word by word in the client.
    let (copies_in, copies_out, _, _) = copies_of("reader-unmodified", frames, &[])?;
    ensure!(
        (copies_in, copies_out) == (1, 0),
        "{frames} unmodified read-only frames: {copies_in} copies in, {copies_out} out; expected the first fill only"
    );
    // Control: the same reader without VkExternalMemoryAcquireUnmodifiedEXT
    // (and a peer changing the content every frame, which it must see)
    // copies in at every acquire; it writes nothing, so it never copies out.
    let (copies_in, copies_out, _, _) = copies_of("reader", frames, &[])?;
    ensure!(
        (copies_in, copies_out) == (u64::from(frames), 0),
        "the reader without the structure: {copies_in} copies in, {copies_out} out; expected {frames} and 0"
    );
    // Evicted at every submission, the unchanged attachment is re-validated
    // once, for its first fill (the stress mode evicts even what the
    // submission is about to use), and never again: nothing it does after
    // that needs the import.
    let (copies_in, copies_out, evictions, revalidations) =
        copies_of("reader-unmodified", frames, &[("DYNABUF_EVICT", "every:1")])?;
    ensure!(
        (copies_in, copies_out, revalidations) == (1, 0, 1) && evictions >= 1,
        "evicted every submission: {copies_in} in, {copies_out} out, {evictions} evictions, \
         {revalidations} re-validations; expected 1, 0, at least 1, 1"
    );
    Ok(Outcome::Pass)
}

pub fn a_writer_acquiring_unmodified_copies_out_every_frame_and_in_once() -> TestResult {
    require_kernel_tier!();
    let frames = 30;
    // The client checks the dma-buf (through the udmabuf's memfd) after
    // every frame: each release must have published that frame's writes.
    let (copies_in, copies_out, _, _) = copies_of("writer-unmodified", frames, &[])?;
    ensure!(
        (copies_in, copies_out) == (1, u64::from(frames)),
        "{frames} written frames acquired unmodified: {copies_in} copies in, {copies_out} out; expected 1 and {frames}"
    );
    // Control: without the structure every acquire copies in.
    let (copies_in, copies_out, _, _) = copies_of("writer", frames, &[])?;
    ensure!(
        (copies_in, copies_out) == (u64::from(frames), u64::from(frames)),
        "the writer without the structure: {copies_in} copies in, {copies_out} out; expected {frames} each"
    );
    // Re-validated at every submission, the content stays exact and the
    // backing (the application's memory) is never refilled.
    let (copies_in, copies_out, evictions, revalidations) =
        copies_of("writer-unmodified", frames, &[("DYNABUF_EVICT", "every:1")])?;
    ensure!(
        (copies_in, copies_out) == (1, u64::from(frames)) && evictions >= u64::from(frames) - 1 && revalidations >= u64::from(frames) - 1,
        "evicted every submission: {copies_in} in, {copies_out} out, {evictions} evictions, {revalidations} re-validations"
    );
    Ok(Outcome::Pass)
}

pub fn a_write_only_a_watched_command_shows_still_reaches_the_dma_buf() -> TestResult {
    require_kernel_tier!();
    // Each frame acquires for reading, writes the buffer behind a barrier of
    // its own and releases with a source access that writes nothing.
    let frames = "12";
    let run = |mode: &str, hazards: &str| {
        let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_STATS", "1"), ("DYNABUF_HAZARDS", hazards)];
        client(&["copies", mode, frames], Layer::On, &envs)
    };
    // A vkCmdFillBuffer: hazard watching (the default) sees the write, and
    // every fill reaches the dma-buf.
    let watched = run("filler", "warn");
    ensure!(
        watched.ok && watched.value("stale_frames").as_deref() == Some("0"),
        "with hazard watching every fill must reach the dma-buf:\n{}\n{}",
        watched.stdout,
        watched.stderr
    );
    ensure!(stat(&watched.stderr, "copies_out") == vec![12], "{}", watched.stderr);
    // With nothing watched every release copies out, as before copies
    // became conditional.
    let blind = run("filler", "off");
    ensure!(
        blind.ok && blind.value("stale_frames").as_deref() == Some("0"),
        "DYNABUF_HAZARDS=off must copy out at every release:\n{}\n{}",
        blind.stdout,
        blind.stderr
    );
    ensure!(stat(&blind.stderr, "copies_out") == vec![12], "{}", blind.stderr);
    // Control: a shader writing through a storage descriptor is not seen as
    // a write, so under watching the release skips the copy out and the
    // peer never sees the frames (the limit DESIGN.md names): the copies
    // above came from the watched write.
    let unseen = run("shader-filler", "warn");
    ensure!(
        unseen.ok && unseen.value("stale_frames").as_deref() == Some(frames),
        "a storage-descriptor write behind a non-writing release was expected to stay in the backing:\n{}\n{}",
        unseen.stdout,
        unseen.stderr
    );
    Ok(Outcome::Pass)
}
