//! Several hand-overs of one dynamic attachment in one submission, and a
//! first use that only releases: the same content as pinned.

use super::{checksums, failed, stat, stats_lines};
use crate::common::client;
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

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
    // Two fresh dynamic imports; copies out at each releasing batch (3 + 2)
    // and in at each acquiring one (3 + 2).
    same_content_as_pinned("release-acquire", &["all_three", "fill_acquire_release"], 5, 5)
}

/// Runs client `subcommand` (whose scenarios print `NAME=ok checksum=X`
/// and `<subcommand>_ok=true`) with two dynamic attachments evicted at
/// every submission, checks the copies counted, and runs it again pinned
/// (the control: the application's memory is the dma-buf, no copies): the
/// checksums must be the same.
fn same_content_as_pinned(subcommand: &str, names: &[&str], copies_in: u64, copies_out: u64) -> TestResult {
    let ok_key = format!("{}_ok", subcommand.replace('-', "_"));
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let dynamic = client(&[subcommand], Layer::On, &envs);
    ensure!(
        dynamic.ok && dynamic.value(&ok_key).as_deref() == Some("true"),
        "{}",
        failed(&dynamic, "dynamic")
    );
    ensure!(stat(&dynamic.stderr, "dynamic_attachments") == [2], "{}", stats_lines(&dynamic.stderr));
    ensure!(stat(&dynamic.stderr, "copies_in") == [copies_in], "{}", stats_lines(&dynamic.stderr));
    ensure!(stat(&dynamic.stderr, "copies_out") == [copies_out], "{}", stats_lines(&dynamic.stderr));
    let pinned = client(&[subcommand], Layer::On, &[("DYNABUF_ATTACH", "pinned"), ("DYNABUF_STATS", "1")]);
    ensure!(pinned.ok && pinned.value(&ok_key).as_deref() == Some("true"), "{}", failed(&pinned, "pinned"));
    ensure!(stat(&pinned.stderr, "dynamic_attachments") == [0], "{}", stats_lines(&pinned.stderr));
    let (d, p) = (checksums(&dynamic, names)?, checksums(&pinned, names)?);
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
    // Each scenario fills its backing first (1 + 1), and the second also
    // copies in at its acquire (1); out at each release (1 + 2).
    same_content_as_pinned("first-release", &["release_only", "release_then_acquire"], 3, 3)
}
