//! Dynamic attachments that must not lose data: pinned where copies can't
//! happen, and no copy at eviction.

use super::{failed, layer_lines_with, stat, STARTUP};
use crate::child::spawn;
use crate::common::client;
use crate::ensure;
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;
use dynabuf_client::kernel::udmabuf;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

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
