//! Which dma-bufs a submission acquires (per batch) and releases.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::dispatch::Device;
use crate::registry::{Direction, DmaBufKey, OwnershipTransfer};
use crate::settings::SyncScope;
use crate::views::Submits;

/// One buffer changing hands.
#[derive(Clone, Debug)]
pub struct Handover {
    pub key: DmaBufKey,
    /// The application's memory object (the backing, for a dynamic
    /// attachment).
    pub memory: ash::vk::DeviceMemory,
    /// Whether it is a dynamic attachment (copies in and out).
    pub dynamic: bool,
    /// The layer's own fd for the dma-buf.
    pub fd: Arc<OwnedFd>,
    /// Acquire: the GPU will write (wait for everyone). Release: the GPU
    /// wrote (publish a write fence).
    pub writes: bool,
    /// Release: its source access wrote (see
    /// [`OwnershipTransfer::src_writes`]). Acquire: `false`.
    pub src_writes: bool,
    /// Acquire: every barrier that acquires it says the content is
    /// unmodified since the device's last release (see
    /// [`OwnershipTransfer::unmodified`]).
    pub unmodified: bool,
    /// The batch that carries it (for a release: the last that does).
    pub batch: usize,
    /// For a release: every batch that releases it, in order (a dynamic
    /// attachment copies out at each, so a later acquire in the same
    /// submission does not overwrite what was released before it).
    pub release_batches: Vec<usize>,
}

/// What one submission does with dma-bufs.
#[derive(Debug, Default)]
pub struct Plan {
    /// Per batch index, the buffers it acquires.
    pub acquires: BTreeMap<usize, Vec<Handover>>,
    /// The buffers the submission releases, once each.
    pub releases: Vec<Handover>,
    /// Dynamic attachments the submission's watched commands write (hazard
    /// watching), each with whether a write follows its last release in
    /// the submission: their releases copy out whatever the barriers say.
    pub written: Vec<(ash::vk::DeviceMemory, bool)>,
}

impl Plan {
    /// Whether the submission hands nothing over.
    pub fn is_empty(&self) -> bool {
        self.acquires.is_empty() && self.releases.is_empty()
    }

    /// Every acquire and release, in that order.
    pub fn handovers(&self) -> impl Iterator<Item = &Handover> {
        self.acquires.values().flatten().chain(&self.releases)
    }
}

/// Adds `h` to `list`, merged with an earlier hand-over of the same memory
/// (two memories importing one dma-buf, such as the planes of a disjoint
/// image at two offsets, stay apart: each is its own attachment).
fn merge(list: &mut Vec<Handover>, h: Handover) {
    match list.iter_mut().find(|x| x.key == h.key && x.memory == h.memory) {
        Some(x) => {
            x.writes |= h.writes;
            x.src_writes |= h.src_writes;
            x.unmodified &= h.unmodified;
            x.batch = x.batch.max(h.batch);
            for b in h.release_batches {
                if !x.release_batches.contains(&b) {
                    x.release_batches.push(b);
                }
            }
        }
        None => list.push(h),
    }
}

/// `list` with one entry per dma-buf (written if any of its entries is): an
/// acquire waits for a dma-buf's fences once and a release publishes into it
/// once, however many of the submission's memories import it.
pub fn once_per_dma_buf(list: &[Handover]) -> Vec<Handover> {
    let mut once: Vec<Handover> = Vec::with_capacity(list.len());
    for h in list {
        match once.iter_mut().find(|x| x.key == h.key) {
            Some(x) => x.writes |= h.writes,
            None => once.push(h.clone()),
        }
    }
    once
}

/// Builds the plan. Work scales with the submission's command buffers and
/// their recorded transfers (or, for scope `all`, with the device's
/// dma-bufs), never with the whole registry.
pub fn build(dev: &Device, submits: &Submits<'_>, scope: SyncScope) -> Plan {
    let mut plan = Plan::default();
    if scope == SyncScope::All {
        let all: Vec<Handover> = dev.state.with_memory(|t| {
            t.dma_bufs()
                .map(|(memory, d)| Handover {
                    key: d.key,
                    memory,
                    dynamic: t.get(memory).is_some_and(|r| r.dynamic.is_some()),
                    fd: d.fd.clone(),
                    writes: true,
                    src_writes: true,
                    unmodified: false,
                    batch: 0,
                    release_batches: Vec::new(),
                })
                .collect()
        });
        if !all.is_empty() && !submits.is_empty() {
            for h in &all {
                merge(plan.acquires.entry(0).or_default(), h.clone());
            }
            let last = submits.len() - 1;
            plan.releases =
                all.into_iter().map(|h| Handover { batch: last, release_batches: vec![last], ..h }).collect();
        }
        return plan;
    }
    if !dev.state.has_recorded_transfers() {
        return plan;
    }
    let recorded: Vec<(usize, Vec<OwnershipTransfer>)> = dev.state.with_commands(|log| {
        (0..submits.len())
            .map(|i| {
                let t: Vec<_> = submits
                    .batch_command_buffers(i)
                    .iter()
                    .flat_map(|cb| log.transfers_of(*cb).iter().copied())
                    .collect();
                (i, t)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect()
    });
    if recorded.is_empty() {
        return plan;
    }
    dev.state.with_memory(|t| {
        for (batch, transfers) in recorded {
            for x in transfers {
                // Every dma-buf the barrier's planes are bound to (one for
                // a buffer or a non-disjoint image).
                for (memory, record) in t.bindings_of(x.resource, x.planes) {
                    let Some(d) = &record.dma_buf else { continue };
                    let h = Handover {
                        key: d.key,
                        memory,
                        dynamic: record.dynamic.is_some(),
                        fd: d.fd.clone(),
                        writes: x.writes,
                        src_writes: x.src_writes,
                        // The structure speaks for the barrier's resource;
                        // the copies cover the memory: only a resource that
                        // is all of what is bound to it vouches for it all.
                        unmodified: x.unmodified
                            && x.planes == crate::registry::Planes::ALL
                            && record.bound.iter().all(|r| *r == x.resource),
                        batch,
                        release_batches: Vec::new(),
                    };
                    match x.direction {
                        Direction::Acquire => merge(plan.acquires.entry(batch).or_default(), h),
                        Direction::Release => {
                            merge(&mut plan.releases, Handover { release_batches: vec![batch], ..h })
                        }
                    }
                }
            }
        }
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(ino: u64, batch: usize, writes: bool) -> Handover {
        of_memory(ino, 0, batch, writes)
    }

    fn of_memory(ino: u64, memory: u64, batch: usize, writes: bool) -> Handover {
        let fd = std::fs::File::open("/dev/null").map(OwnedFd::from).expect("/dev/null");
        Handover {
            key: DmaBufKey { dev: 1, ino },
            memory: ash::vk::Handle::from_raw(memory),
            dynamic: true,
            fd: Arc::new(fd),
            writes,
            src_writes: writes,
            unmodified: false,
            batch,
            release_batches: vec![batch],
        }
    }

    /// A dma-buf released in two batches of one submission is published
    /// once, and a dynamic one copies out after each releasing batch.
    #[test]
    fn releases_of_one_dma_buf_merge_and_keep_every_batch() {
        let mut list = Vec::new();
        merge(&mut list, release(7, 0, false));
        merge(&mut list, release(8, 1, true));
        merge(&mut list, release(7, 2, true));
        merge(&mut list, release(7, 2, false));
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].batch, list[0].writes, list[0].release_batches.clone()), (2, true, vec![0, 2]));
        assert_eq!(list[1].release_batches, vec![1]);
    }

    /// Two memories importing one dma-buf (a disjoint image's planes at two
    /// offsets) are two attachments in the plan, but the dma-buf is waited
    /// for and published into once, written if either writes.
    #[test]
    fn two_imports_of_one_dma_buf_stay_apart_and_sync_once() {
        let mut list = Vec::new();
        merge(&mut list, of_memory(7, 1, 0, false));
        merge(&mut list, of_memory(7, 2, 0, true));
        merge(&mut list, of_memory(8, 3, 0, false));
        assert_eq!(list.len(), 3);
        let once = once_per_dma_buf(&list);
        assert_eq!(once.len(), 2);
        assert!(once[0].writes && once[0].key.ino == 7);
        assert!(!once[1].writes && once[1].key.ino == 8);
    }
}
