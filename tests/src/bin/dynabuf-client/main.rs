//! `dynabuf-client`: a plain Vulkan application the integration tests run
//! as a child process, with the layer enabled (or not) through the
//! environment exactly as a user would. Each subcommand prints `key=value`
//! lines on stdout and exits non-zero when its own check fails.
//!
//! ```text
//! dynabuf-client compute [SEED] [COUNT]   fill.comp once; checksum + CPU check
//! dynabuf-client probe                    which object serves hooked and unhooked functions
//! dynabuf-client multi                    three instances and devices live at once
//! dynabuf-client layer-settings [NAME[:TYPE]=VALUE]... [--then ...]...
//!                                         an instance configuring dynabuf through
//!                                         VK_EXT_layer_settings (TYPE bool32, int32, int64,
//!                                         uint32, uint64, float32 or string), a device, one job;
//!                                         each --then: one more instance and device, at once
//! dynabuf-client threads [T] [N]          T threads x N submits of increment.comp
//! dynabuf-client dmabuf-import           a udmabuf imported, GPU adds, CPU checks (needs /dev/udmabuf)
//! dynabuf-client dmabuf-export           GPU fills, exported dma-buf mapped and checked both ways
//! dynabuf-client acquire-unmodified listed|unlisted|required
//!                                         an acquire from FOREIGN of an OPAQUE_FD buffer with
//!                                         VkExternalMemoryAcquireUnmodifiedEXT, the extension
//!                                         enabled where listed (listed), not enabled (unlisted:
//!                                         invalid usage, for the control), or enabled whether
//!                                         listed or not ("create_device=..." only)
//! dynabuf-client acquire FD LEN read|read-unmodified|write|none DISPATCH
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
//! dynabuf-client give-dmabuf SOCKFD MIB   makes a dma-buf, sends it over the socket, exits
//! dynabuf-client external [CYCLES]        export/import between two devices, ownership
//!                                         transfers, bad imports, then CYCLES more
//!                                         export/import/free cycles; fd counts
//! dynabuf-client pingpong FRAMES [LEN] [wait|nowait]
//!                                         (LEN values; nowait: hand over as soon as
//!                                         vkQueueSubmit returns, relying on the released fence)
//! dynabuf-client read-acquire FD LEN      child: on each "go", a read-only acquire (no
//!                                         release) around an empty dispatch; "done round=N"
//! dynabuf-client submit-timing FD LEN release|acquire-only
//!                                         child: on "go", times vkQueueSubmit alone
//!                                         ("submitted submit_ms=N"), then "done first=V"
//! dynabuf-client acquire-secondary FD LEN read|write DISPATCH
//!                                         as acquire, the acquire barrier recorded in a
//!                                         secondary command buffer
//! dynabuf-client pnext release|acquire-only [LEN]
//!                                         acquires behind a vgem write fence with
//!                                         VkTimelineSemaphoreSubmitInfo / VkDeviceGroupSubmitInfo
//!                                         chained to the batch; content and timeline checked
//! dynabuf-client host-access map|map2 [LEN]
//!                                         vkMapMemory/flush/invalidate/unmap (and
//!                                         vkMapMemory2KHR/vkUnmapMemory2KHR) on an import,
//!                                         between acquire/add/release jobs; memfd checks
//! dynabuf-client fault-reimport ROUNDS [LEN]
//!                                         a first submit that fails, then ROUNDS exact; fds
//! dynabuf-client release-peek ROUNDS [LEN]
//!                                         looks at the dma-buf right after each submit
//!                                         returns: "early=N" rounds ready but unfinished
//! dynabuf-client sync-file-fault ROUNDS reader|none [LEN]
//!                                         ROUNDS jobs (with a pending vgem read fence); fds
//! dynabuf-client two-devices FRAMES LEN wait|nowait
//!                                         producer and consumer devices in one process
//! dynabuf-client timeline-release [same|ahead|before-import] [LEN]
//!                                         an acquire/add/release behind a wait on an
//!                                         unsignalled application timeline (in its batch, or
//!                                         an earlier submit); the host signals it after
//!                                         vkQueueSubmit returns ("submit_ms=N")
//! dynabuf-client release-acquire [LEN]    one submit of three batches releasing and
//!                                         re-acquiring a fresh import; memfd checks
//! dynabuf-client first-release [LEN]      a fresh import's first use writes half of it and
//!                                         only releases; memfd checks
//! dynabuf-client image-probe              image formats, modifiers and dma-buf support
//! dynabuf-client image-ops KIND...        copies and clears on an image of each KIND,
//!                                         checked from the CPU (KIND:
//!                                         FORMAT:TILING:MEMORY[:WxH], see the images module)
//! dynabuf-client image-acquire KIND,read|write|transition|keep,ASPECT,FENCED...
//!                                         an image acquired (ASPECT: color, planes, pK)
//!                                         while foreign fences on FENCED planes' dma-bufs
//!                                         are pending; pixels checked
//! dynabuf-client image-release KIND,ASPECT...
//!                                         an image written and released; a peer reads it
//!                                         right after each vkQueueSubmit
//! dynabuf-client image-frames KIND,ASPECT,FRAMES...
//!                                         FRAMES frames: a foreign writer fills the
//!                                         image's dma-bufs, the GPU acquires, adds to
//!                                         part of every plane, releases; every byte checked
//! dynabuf-client hazard KIND provoke|twin [VARIANT]
//!                                         a sharing mistake (KIND: use-without-acquire,
//!                                         written-never-released, cpu-unbracketed, self-wait,
//!                                         fence-timeout) or its correct twin, with debug
//!                                         messengers; "hazard=ID severity=S objects=..." per
//!                                         DYNABUF- message, "hazards=N" (see the hazards module)
//! dynabuf-client cpu-sync map|map-reader|map-exported|invalidate|flush|timeout|cycles [LEN] [N]
//!                                         host access behind a foreign writer's vgem fence:
//!                                         how long the call took, what it read; fd counts
//! dynabuf-client sparse-probe [VARIATION]... | --device-only
//!                                         issue 11's experiment: a SPARSE_BINDING buffer bound
//!                                         (vkQueueBindSparse) to an imported udmabuf, exported
//!                                         and ordinary memory, copied out: ok|zeros|wrong each
//! ```

use std::process::ExitCode;

use dynabuf_client::{Error, Result};

mod basic;
mod hazards;
mod images;
mod layer_settings;
mod residency;
mod robustness;
mod sharing;
mod sparse;

use basic::*;
use hazards::*;
use images::*;
use layer_settings::*;
use residency::*;
use robustness::*;
use sharing::*;
use sparse::*;

pub(crate) fn arg(args: &[String], i: usize, default: u32) -> u32 {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

pub(crate) fn inherited_fd(args: &[String]) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw: i32 = args.first().and_then(|a| a.parse().ok()).ok_or_else(|| Error("missing FD".into()))?;
    if dynabuf_client::external::file_identity(raw).is_none() {
        return Err(Error(format!("fd {raw} is not open")));
    }
    // SAFETY: the parent passed this open fd for us to own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

pub(crate) fn line_from_stdin() -> String {
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    s.trim().to_string()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match args.first().map(String::as_str) {
        Some("compute") => cmd_compute(rest),
        Some("probe") => cmd_probe(),
        Some("multi") => cmd_multi(),
        Some("layer-settings") => cmd_layer_settings(rest),
        Some("threads") => cmd_threads(rest),
        Some("external") => cmd_external(rest),
        Some("acquire-unmodified") => cmd_acquire_unmodified(rest),
        Some("dmabuf-import") => cmd_dmabuf_import(),
        Some("acquire") => cmd_acquire(rest),
        Some("release") => cmd_release(rest),
        Some("cycles") => cmd_cycles(rest),
        Some("budget") => cmd_budget(rest),
        Some("alternate") => cmd_alternate(rest),
        Some("burst") => cmd_burst(rest),
        Some("refault") => cmd_refault(rest),
        Some("give-dmabuf") => cmd_give_dmabuf(rest),
        Some("bad-imports") => cmd_bad_imports(rest),
        Some("pingpong") => cmd_pingpong(rest),
        Some("pingpong-peer") => cmd_pingpong_peer(rest),
        Some("dmabuf-export") => cmd_dmabuf_export(),
        Some("read-acquire") => cmd_read_acquire(rest),
        Some("submit-timing") => cmd_submit_timing(rest),
        Some("acquire-secondary") => cmd_acquire_secondary(rest),
        Some("pnext") => cmd_pnext(rest),
        Some("host-access") => cmd_host_access(rest),
        Some("fault-reimport") => cmd_fault_reimport(rest),
        Some("release-peek") => cmd_release_peek(rest),
        Some("sync-file-fault") => cmd_sync_file_fault(rest),
        Some("two-devices") => cmd_two_devices(rest),
        Some("timeline-release") => cmd_timeline_release(rest),
        Some("release-acquire") => cmd_release_acquire(rest),
        Some("first-release") => cmd_first_release(rest),
        Some("image-probe") => cmd_image_probe(),
        Some("image-ops") => cmd_image_ops(rest),
        Some("image-acquire") => cmd_image_acquire(rest),
        Some("image-release") => cmd_image_release(rest),
        Some("image-frames") => cmd_image_frames(rest),
        Some("hazard") => cmd_hazard(rest),
        Some("cpu-sync") => cmd_cpu_sync(rest),
        Some("copies") => cmd_copies(rest),
        Some("sparse-probe") => cmd_sparse_probe(rest),
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
