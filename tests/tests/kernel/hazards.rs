//! Hazard reports (`DYNABUF_HAZARDS`, issue 10): sharing mistakes the
//! layer sees, sent to the application's debug messengers and logged.
//! Each kind is provoked by a `dynabuf-client hazard KIND provoke`
//! scenario and must be reported exactly once, to the messenger, with the
//! ID as `pMessageIdName` (its hash as `messageIdNumber`, the message
//! starting with it), the shared memory's name among the objects (and the
//! queue for submission hazards), as a `hazard ID` line in the layer's log
//! and in the count line at `vkDestroyDevice`; its correct twin must get
//! no report at all. Controls: `DYNABUF_HAZARDS=off` on a provoking
//! scenario gives none; each twin's provoking scenario gives one.

use std::time::Duration;

use dynabuf::hazard::HazardKind;
use dynabuf_client::env::{validation, Layer, Validation};

use crate::common::{client, run_unchecked, Run, CLIENT};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

/// A client's output, for a report.
pub(crate) fn failed(run: &Run, what: &str) -> String {
    format!("{what} ({})\n--- stdout\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr)
}

/// Runs a `hazard` scenario under the layer (validation as
/// `DYNABUF_TEST_VALIDATION` says) and checks it did its own work.
fn scenario(args: &[&str], envs: &[(&str, &str)]) -> Result<Run, String> {
    let mut all = vec!["hazard"];
    all.extend_from_slice(args);
    let run = client(&all, Layer::On, envs);
    ensure!(
        run.ok && run.value("scenario_ok").as_deref() == Some("true"),
        "{}",
        failed(&run, &format!("{} with {envs:?}", all.join(" ")))
    );
    Ok(run)
}

/// One `hazard=` line of the client.
#[derive(Debug)]
struct Heard {
    id: String,
    line: String,
}

impl Heard {
    fn field(&self, key: &str) -> Option<&str> {
        self.line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}

fn heard(run: &Run) -> Vec<Heard> {
    validation::without_messages(&run.stdout)
        .lines()
        .filter_map(|l| {
            let id = l.strip_prefix("hazard=")?.split_whitespace().next()?.to_string();
            Some(Heard { id, line: l.to_string() })
        })
        .collect()
}

/// The layer's lines (`dynabuf: LEVEL: ...`) containing `part`.
fn layer_lines<'a>(run: &'a Run, part: &str) -> Vec<&'a str> {
    run.stderr.lines().filter(|l| l.starts_with("dynabuf: ") && l.contains(part)).collect()
}

/// How a hazard is expected to be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Severity {
    Warning,
    Error,
}

/// Checks `run` reported `kind` exactly once (and nothing else but
/// `also`), as `severity`, with the shared memory named (and the queue
/// when `queue`), logged, and counted at `vkDestroyDevice` when
/// `destroyed`. Returns the count line.
fn expect_one(
    run: &Run,
    what: &str,
    kind: HazardKind,
    severity: Severity,
    queue: bool,
    also: &[HazardKind],
) -> Result<String, String> {
    let id = kind.id_name().to_str().unwrap_or_default();
    let all = heard(run);
    let mine: Vec<&Heard> = all.iter().filter(|h| h.id == id).collect();
    let dump = || failed(run, what);
    ensure!(mine.len() == 1, "{what}: {} {id} reports to the messenger, expected 1:\n{}", mine.len(), dump());
    let others: Vec<&Heard> = all
        .iter()
        .filter(|h| h.id != id && !also.iter().any(|k| k.id_name().to_str() == Ok(&h.id)))
        .collect();
    ensure!(others.is_empty(), "{what}: other reports besides {id}: {others:?}\n{}", dump());
    let h = mine[0];
    let (word, level) = match severity {
        Severity::Warning => ("warning", "warn"),
        Severity::Error => ("error", "error"),
    };
    ensure!(h.field("severity") == Some(word), "{what}: severity not {word}: {}", h.line);
    ensure!(h.field("types") == Some("validation"), "{what}: type not VALIDATION only: {}", h.line);
    ensure!(
        h.field("number") == Some(kind.id_number().to_string().as_str()),
        "{what}: messageIdNumber not {} (the hash of {id}): {}",
        kind.id_number(),
        h.line
    );
    ensure!(h.field("message_starts_with_id") == Some("true"), "{what}: pMessage does not start with {id}");
    let errors_only = run.value("errors_only").unwrap_or_default();
    let want_errors_only = if severity == Severity::Error { "1" } else { "0" };
    ensure!(
        errors_only == want_errors_only,
        "{what}: the errors-only messenger heard {errors_only} reports, expected {want_errors_only}:\n{}",
        dump()
    );
    let logged = layer_lines(run, &format!("hazard {id}"));
    ensure!(
        logged.len() == 1 && logged[0].starts_with(&format!("dynabuf: {level}: ")),
        "{what}: expected one `dynabuf: {level}:` line with `hazard {id}`, got {logged:?}:\n{}",
        dump()
    );
    if run.value("deadlock_exit").as_deref() == Some("true") {
        // The client left at once: no vkDestroyDevice, so no count line.
        check_objects(h, what, queue)?;
        return Ok(String::new());
    }
    let counts = layer_lines(run, "hazards for dev");
    ensure!(counts.len() == 1, "{what}: expected one `hazards for dev` line at vkDestroyDevice:\n{}", dump());
    let count = counts[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix(kind.key())?.strip_prefix('=')?.parse::<u64>().ok())
        .unwrap_or(0);
    ensure!(count >= 1, "{what}: the count line has no {}=N (N >= 1): {}", kind.key(), counts[0]);
    check_objects(h, what, queue)?;
    Ok(counts[0].to_string())
}

/// The named memory (and with `queue` a `VkQueue`) among a report's objects.
fn check_objects(h: &Heard, what: &str, queue: bool) -> Result<(), String> {
    let objects: Vec<&str> = h.field("objects").unwrap_or_default().split(',').collect();
    ensure!(objects.contains(&"DEVICE_MEMORY:shared-dma-buf"), "{what}: {NOT_AMONG}: {}", h.line);
    if queue {
        ensure!(
            objects.iter().any(|o| o.starts_with("QUEUE:")),
            "{what}: no VkQueue among the objects: {}",
            h.line
        );
    }
    Ok(())
}

/// Checks `run` reported no hazard at all.
fn expect_none(run: &Run, what: &str) -> Result<(), String> {
    let all = heard(run);
    ensure!(all.is_empty(), "{what}: expected no report, got {all:?}\n{}", failed(run, what));
    ensure!(run.value("hazards").as_deref() == Some("0"), "{what}: {}", failed(run, what));
    ensure!(run.value("errors_only").as_deref() == Some("0"), "{what}: {}", failed(run, what));
    let logged = layer_lines(run, "hazard DYNABUF-");
    ensure!(logged.is_empty(), "{what}: hazards logged: {logged:?}");
    let counts = layer_lines(run, "hazards for dev");
    ensure!(counts.is_empty(), "{what}: a count line without hazards: {counts:?}");
    Ok(())
}

const OFF: &[(&str, &str)] = &[("DYNABUF_HAZARDS", "off")];

/// How a report without the named memory fails.
const NOT_AMONG: &str = "the named memory is not among the objects";

pub fn a_use_without_acquire_is_reported_once_and_its_twin_is_not() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::UseWithoutAcquire;
    // Two submissions copy from the import without an acquire: one report
    // per dma-buf and kind.
    let provoke = ["use-without-acquire", "provoke", "copy"];
    let run = scenario(&provoke, &[])?;
    let count = expect_one(&run, "two copies, no acquire", kind, Severity::Warning, true, &[])?;
    // Reported once, but every occurrence counted (layer/DESIGN.md).
    ensure!(count.split_whitespace().any(|w| w == "use_without_acquire=2"), "two uses not counted: {count}");
    let twin = scenario(&["use-without-acquire", "twin", "copy"], &[])?;
    expect_none(&twin, "two copies, each between an acquire and a release")?;
    // The control: with reports off, the same mistake says nothing.
    let off = scenario(&provoke, OFF)?;
    expect_none(&off, "DYNABUF_HAZARDS=off")?;
    println!("  count line: {}", count.trim());
    Ok(Outcome::Pass)
}

pub fn a_use_without_acquire_is_seen_in_descriptor_sets_image_clears_and_after_a_release() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::UseWithoutAcquire;
    // The shader writes the dma-buf, which is then freed unreleased, but a
    // storage descriptor is no write (layer/DESIGN.md: it may be only
    // read): only the use is reported.
    let run = scenario(&["use-without-acquire", "provoke", "dispatch"], &[])?;
    let written = HazardKind::WrittenNeverReleased;
    expect_one(&run, "a dispatch through a storage-buffer descriptor", kind, Severity::Warning, true, &[])?;
    let run = scenario(&["use-without-acquire", "provoke", "after-release"], &[])?;
    expect_one(&run, "a copy after the release", kind, Severity::Warning, true, &[])?;
    // An image in the dma-buf, cleared (and written, never released).
    let run = scenario(&["use-without-acquire", "provoke", "image-clear"], &[])?;
    expect_one(&run, "an image clear", kind, Severity::Warning, true, &[written])?;
    expect_one(&run, "an image clear", written, Severity::Warning, false, &[kind])?;
    let twin = scenario(&["use-without-acquire", "twin", "image-clear"], &[])?;
    expect_none(&twin, "an image clear between an acquire and a release")?;
    let twin = scenario(&["use-without-acquire", "twin", "dispatch"], &[])?;
    expect_none(&twin, "a dispatch between an acquire and a release")?;
    // The acquire, the copy and the release in three batches of one submit.
    let twin = scenario(&["use-without-acquire", "twin", "batches"], &[])?;
    expect_none(&twin, "acquire, copy and release in three batches")?;
    // The acquire, the use and the release in three submissions.
    let twin = scenario(&["use-without-acquire", "twin", "split"], &[])?;
    expect_none(&twin, "acquire, copy and release in separate submissions")?;
    let off = scenario(&["use-without-acquire", "provoke", "dispatch"], OFF)?;
    expect_none(&off, "DYNABUF_HAZARDS=off, dispatch")?;
    Ok(Outcome::Pass)
}

pub fn a_use_without_acquire_is_seen_in_render_pass_and_dynamic_rendering_attachments() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::UseWithoutAcquire;
    let written = HazardKind::WrittenNeverReleased;
    // A color attachment in the dma-buf, cleared by its load op (and so
    // written, never released).
    for variant in ["render-pass", "rendering"] {
        let run = scenario(&["use-without-acquire", "provoke", variant], &[])?;
        let what = format!("a {variant} attachment");
        expect_one(&run, &what, kind, Severity::Warning, true, &[written])?;
        expect_one(&run, &what, written, Severity::Warning, false, &[kind])?;
        let twin = scenario(&["use-without-acquire", "twin", variant], &[])?;
        expect_none(&twin, &format!("{what} between an acquire and a release"))?;
    }
    let off = scenario(&["use-without-acquire", "provoke", "render-pass"], OFF)?;
    expect_none(&off, "DYNABUF_HAZARDS=off, render pass")?;
    Ok(Outcome::Pass)
}

pub fn scope_all_reports_no_use_without_acquire() -> TestResult {
    require_kernel_tier!();
    // With DYNABUF_SYNC_SCOPE=all the layer acquires every dma-buf itself.
    let scope = [("DYNABUF_SYNC_SCOPE", "all")];
    for variant in ["copy", "dispatch"] {
        let run = scenario(&["use-without-acquire", "provoke", variant], &scope)?;
        expect_none(&run, &format!("{variant} without an acquire, DYNABUF_SYNC_SCOPE=all"))?;
    }
    // The control: the default scope reports the same scenario.
    let run = scenario(&["use-without-acquire", "provoke", "dispatch"], &[])?;
    expect_one(&run, "default scope", HazardKind::UseWithoutAcquire, Severity::Warning, true, &[])?;
    Ok(Outcome::Pass)
}

pub fn error_mode_reports_hazards_with_error_severity() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::WrittenNeverReleased;
    let args = ["written-never-released", "provoke", "free"];
    let run = scenario(&args, &[("DYNABUF_HAZARDS", "error")])?;
    expect_one(&run, "DYNABUF_HAZARDS=error", kind, Severity::Error, false, &[])?;
    let run = scenario(&["use-without-acquire", "provoke", "copy"], &[("DYNABUF_HAZARDS", "error")])?;
    expect_one(&run, "DYNABUF_HAZARDS=error", HazardKind::UseWithoutAcquire, Severity::Error, true, &[])?;
    // The control: the default (warn) reports it as a warning, which the
    // errors-only messenger does not hear.
    let run = scenario(&args, &[])?;
    expect_one(&run, "default (warn)", kind, Severity::Warning, false, &[])?;
    Ok(Outcome::Pass)
}

pub fn a_write_never_released_is_reported_at_free_reacquire_and_device_destruction() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::WrittenNeverReleased;
    for variant in ["free", "update", "reacquire"] {
        let run = scenario(&["written-never-released", "provoke", variant], &[])?;
        expect_one(&run, &format!("written, not released, {variant}"), kind, Severity::Warning, false, &[])?;
    }
    // Released before the free; acquired and never released, but not
    // written: a read-only acquire and a copy out, or only an acquire whose
    // destination access writes (layer/DESIGN.md: an acquire's own access
    // is no write).
    for twin in ["free", "acquire-read", "acquire-write"] {
        let run = scenario(&["written-never-released", "twin", twin], &[])?;
        expect_none(&run, &format!("twin {twin}"))?;
    }
    // At vkDestroyDevice: the memory is still allocated then, which is
    // invalid Vulkan in itself (validation reports the leak), so this one
    // runs without the validation layer whatever DYNABUF_TEST_VALIDATION says.
    let args = ["hazard", "written-never-released", "provoke", "destroy"];
    let run = run_unchecked(CLIENT, &args, Layer::On, Validation::Off, &[]);
    ensure!(run.ok && run.value("scenario_ok").as_deref() == Some("true"), "{}", failed(&run, "destroy"));
    expect_one(&run, "written, not released, device destroyed", kind, Severity::Warning, false, &[])?;
    let off = scenario(&["written-never-released", "provoke", "free"], OFF)?;
    expect_none(&off, "DYNABUF_HAZARDS=off")?;
    Ok(Outcome::Pass)
}

pub fn an_exported_dma_buf_written_and_never_released_is_reported() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::WrittenNeverReleased;
    let run = scenario(&["written-never-released", "provoke", "exported"], &[])?;
    expect_one(&run, "exported, filled, freed", kind, Severity::Warning, false, &[])?;
    let run = scenario(&["written-never-released", "twin", "exported"], &[])?;
    expect_none(&run, "exported, filled, released, freed")?;
    let run = scenario(&["written-never-released", "provoke", "exported"], OFF)?;
    expect_none(&run, "DYNABUF_HAZARDS=off")?;
    Ok(Outcome::Pass)
}

pub fn a_mapping_held_across_a_submission_is_reported() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::CpuAccessUnbracketed;
    let run = scenario(&["cpu-unbracketed", "provoke"], &[])?;
    ensure!(
        run.value("host_coherent").as_deref() == Some("true"),
        "not host-coherent memory:\n{}",
        run.stdout
    );
    expect_one(&run, "mapped across the submission", kind, Severity::Warning, true, &[])?;
    let run = scenario(&["cpu-unbracketed", "twin"], &[])?;
    expect_none(&run, "unmapped before the submission")?;
    let run = scenario(&["cpu-unbracketed", "provoke"], OFF)?;
    expect_none(&run, "DYNABUF_HAZARDS=off")?;
    Ok(Outcome::Pass)
}

pub fn a_foreign_fence_past_the_timeout_is_reported() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::FenceTimeout;
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "300")];
    let mut took = Vec::new();
    let mut unnamed = Vec::new();
    for variant in ["", "acquire-only"] {
        let mut args = vec!["fence-timeout", "provoke"];
        args.extend((!variant.is_empty()).then_some(variant));
        let run = scenario(&args, &envs)?;
        let what = format!("fence never signalled {variant}");
        // Only the acquire-only job writes without releasing.
        let also = [HazardKind::WrittenNeverReleased];
        let also: &[HazardKind] = if variant.is_empty() { &[] } else { &also };
        // A report without the memory is noted, and the rest still checked.
        if let Err(e) = expect_one(&run, &what, kind, Severity::Warning, false, also) {
            ensure!(e.contains(NOT_AMONG), "{e}");
            unnamed.push(e);
        }
        let ms: u64 = run.value("job_ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        ensure!((250..5000).contains(&ms), "{what}: the job took {ms} ms with a 300 ms timeout");
        took.push(format!("{}: {ms} ms", if variant.is_empty() { "acquire + release" } else { variant }));
    }
    let run = scenario(&["fence-timeout", "twin"], &envs)?;
    expect_none(&run, "the fence signals after 50 ms")?;
    let run = scenario(&["fence-timeout", "provoke"], &[envs[0], OFF[0]])?;
    expect_none(&run, "DYNABUF_HAZARDS=off")?;
    println!("  jobs behind a fence that never signals: {}", took.join(", "));
    ensure!(unnamed.is_empty(), "{}", unnamed.join("\n"));
    Ok(Outcome::Pass)
}

/// How long a self-wait client may run.
const SELF_WAIT_LIMIT: Duration = Duration::from_secs(60);

pub fn an_acquire_waiting_for_its_own_queues_later_work_is_reported_and_bounded() -> TestResult {
    require_kernel_tier!();
    let kind = HazardKind::SelfWait;
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "500")];
    let run_self_wait = |args: &[&str], layer: Layer, envs: &[(&str, &str)]| {
        let mut all = vec!["hazard", "self-wait"];
        all.extend_from_slice(args);
        let (run, took) =
            crate::robustness::bounded(&all, layer, Validation::from_env(), envs, SELF_WAIT_LIMIT)?;
        ensure!(run.ok, "{}", failed(&run, &all.join(" ")));
        Ok::<_, String>((run, took))
    };
    // What lavapipe does alone: its queue runs submissions in order, so S
    // (which signals what P waits for) may never run behind P.
    let (alone, _) = run_self_wait(&["provoke"], Layer::Off, &[])?;
    let lavapipe_deadlocks = alone.value("deadlock").as_deref() == Some("true");
    let (run, took) = run_self_wait(&["provoke"], Layer::On, &envs)?;
    expect_self_wait(&run, "S signals T = 1", kind, lavapipe_deadlocks)?;
    let (above, _) = run_self_wait(&["provoke", "above"], Layer::On, &envs)?;
    expect_self_wait(&above, "S signals T = 2", kind, lavapipe_deadlocks)?;
    let (twin, _) = run_self_wait(&["twin"], Layer::On, &envs)?;
    ensure!(twin.value("scenario_ok").as_deref() == Some("true"), "{}", failed(&twin, "twin"));
    expect_none(&twin, "the host signals T = 1")?;
    let (off, _) = run_self_wait(&["provoke", "above"], Layer::On, &[envs[0], OFF[0]])?;
    expect_none(&off, "DYNABUF_HAZARDS=off")?;
    println!(
        "  lavapipe alone deadlocks the queue: {lavapipe_deadlocks}; under the layer: {} (client {} ms); {}",
        run.value("deadlock").unwrap_or_else(|| "false".into()),
        took.as_millis(),
        run.stdout.lines().find(|l| l.starts_with("submitted")).unwrap_or_default()
    );
    Ok(Outcome::Pass)
}

/// A self-wait run: reported once; S's `vkQueueSubmit` bounded; the
/// content right when the queue did not deadlock, and a deadlock only
/// where lavapipe deadlocks alone.
fn expect_self_wait(run: &Run, what: &str, kind: HazardKind, lavapipe_deadlocks: bool) -> Result<(), String> {
    let s_ms: u64 = run.value("s_submit_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    ensure!(s_ms < 5000, "{what}: S's vkQueueSubmit took {s_ms} ms (fence timeout 500 ms)");
    let deadlock = run.value("deadlock").as_deref() == Some("true");
    ensure!(
        !deadlock || lavapipe_deadlocks,
        "{what}: the queue deadlocked only under the layer:\n{}",
        run.stdout
    );
    if run.value("deadlock_exit").as_deref() != Some("true") {
        ensure!(run.value("scenario_ok").as_deref() == Some("true"), "{}", failed(run, what));
    }
    expect_one(run, what, kind, Severity::Warning, true, &[HazardKind::FenceTimeout])?;
    Ok(())
}
