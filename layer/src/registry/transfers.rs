//! Queue-family ownership transfers to and from outside the Vulkan instance
//! (`VK_QUEUE_FAMILY_FOREIGN_EXT`, `VK_QUEUE_FAMILY_EXTERNAL`): the points
//! where a shared resource changes hands, recorded per command buffer and
//! acted on when the command buffer is submitted.

use std::collections::{HashMap, HashSet};

use ash::vk;

use super::memory::Resource;
use super::planes::Planes;

/// Which way a resource moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From outside to a local queue family: wait for outside fences first.
    Acquire,
    /// From a local queue family to outside: publish a fence after.
    Release,
}

/// One ownership transfer recorded in a command buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnershipTransfer {
    pub resource: Resource,
    /// The planes the barrier names (a disjoint image's planes may live in
    /// different dma-bufs); [`Planes::ALL`] for buffers and whole images.
    pub planes: Planes,
    pub direction: Direction,
    /// Acquire: the GPU will write (so wait for readers too). Release: the
    /// GPU wrote (so the published fence is a write fence). Unknown counts
    /// as written.
    pub writes: bool,
    /// Release: the barrier's source access includes a write, or it
    /// transitions the layout: the device may have changed the memory
    /// since it last published it (a dynamic attachment copies out only
    /// then, or when an earlier use wrote). Acquire: `false`.
    pub src_writes: bool,
    /// Acquire: the application says (`VkExternalMemoryAcquireUnmodifiedEXT`)
    /// that nobody changed the memory since the device's last release of
    /// it, so a dynamic attachment's backing still holds its content.
    pub unmodified: bool,
}

/// Whether a queue family index names something outside this instance.
#[inline]
pub fn is_outside(family: u32) -> bool {
    family == vk::QUEUE_FAMILY_FOREIGN_EXT || family == vk::QUEUE_FAMILY_EXTERNAL
}

/// Classifies a barrier's queue-family pair. Barriers without a transfer, or
/// between two outside families, are `None`. A `VK_SHARING_MODE_CONCURRENT`
/// resource transfers with `VK_QUEUE_FAMILY_IGNORED` on the local side
/// ((FOREIGN/EXTERNAL, IGNORED) acquires, (IGNORED, FOREIGN/EXTERNAL)
/// releases), an exclusive one with its local family.
#[inline]
pub fn classify(src_family: u32, dst_family: u32) -> Option<Direction> {
    match (is_outside(src_family), is_outside(dst_family)) {
        (true, false) => Some(Direction::Acquire),
        (false, true) => Some(Direction::Release),
        _ => None,
    }
}

/// Every access bit (`VkAccessFlags2`; the legacy `VkAccessFlags` bits have
/// the same values) that writes memory.
pub const WRITE_ACCESS: vk::AccessFlags2 = vk::AccessFlags2::from_raw(
    vk::AccessFlags2::SHADER_WRITE.as_raw()
        | vk::AccessFlags2::SHADER_STORAGE_WRITE.as_raw()
        | vk::AccessFlags2::COLOR_ATTACHMENT_WRITE.as_raw()
        | vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_WRITE.as_raw()
        | vk::AccessFlags2::TRANSFER_WRITE.as_raw()
        | vk::AccessFlags2::HOST_WRITE.as_raw()
        | vk::AccessFlags2::MEMORY_WRITE.as_raw()
        | vk::AccessFlags2::TRANSFORM_FEEDBACK_WRITE_EXT.as_raw()
        | vk::AccessFlags2::TRANSFORM_FEEDBACK_COUNTER_WRITE_EXT.as_raw()
        | vk::AccessFlags2::ACCELERATION_STRUCTURE_WRITE_KHR.as_raw()
        | vk::AccessFlags2::VIDEO_DECODE_WRITE_KHR.as_raw()
        | vk::AccessFlags2::VIDEO_ENCODE_WRITE_KHR.as_raw()
        | vk::AccessFlags2::MICROMAP_WRITE_EXT.as_raw()
        | vk::AccessFlags2::OPTICAL_FLOW_WRITE_NV.as_raw()
        | vk::AccessFlags2::COMMAND_PREPROCESS_WRITE_NV.as_raw(),
);

/// Whether `access` includes a write.
#[inline]
pub fn writes(access: vk::AccessFlags2) -> bool {
    access.intersects(WRITE_ACCESS)
}

/// One barrier, as far as ownership transfers are concerned.
#[derive(Clone, Copy, Debug)]
pub struct Barrier {
    pub resource: Resource,
    pub planes: Planes,
    pub src_family: u32,
    pub dst_family: u32,
    /// What a release made available (the device's writes before it).
    pub src_access: vk::AccessFlags2,
    /// What an acquire will do.
    pub dst_access: vk::AccessFlags2,
    /// An image layout transition (old layout != new layout): it rewrites
    /// the image's memory, so an acquire that carries one writes.
    pub transitions_layout: bool,
    /// `VkExternalMemoryAcquireUnmodifiedEXT::acquireUnmodifiedMemory` in
    /// the barrier's chain.
    pub unmodified: bool,
}

impl Barrier {
    pub fn buffer(
        buffer: vk::Buffer,
        src_family: u32,
        dst_family: u32,
        (src_access, dst_access): (vk::AccessFlags2, vk::AccessFlags2),
    ) -> Self {
        Barrier {
            resource: Resource::Buffer(buffer),
            planes: Planes::ALL,
            src_family,
            dst_family,
            src_access,
            dst_access,
            transitions_layout: false,
            unmodified: false,
        }
    }
}

/// Builds the transfer a barrier describes, if it is one. An acquire writes
/// when its destination access does or it transitions the layout; a
/// release always publishes a write fence (a peer cannot know what the
/// device did before it), and says whether its source access wrote.
#[inline]
pub fn transfer_of(b: Barrier) -> Option<OwnershipTransfer> {
    let direction = classify(b.src_family, b.dst_family)?;
    let (writes, src_writes, unmodified) = match direction {
        Direction::Acquire => (writes(b.dst_access) || b.transitions_layout, false, b.unmodified),
        Direction::Release => (true, writes(b.src_access) || b.transitions_layout, false),
    };
    Some(OwnershipTransfer {
        resource: b.resource,
        planes: b.planes,
        direction,
        writes,
        src_writes,
        unmodified,
    })
}

/// One thing a command buffer does to external memory, in recording order
/// (kept only for hazard reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandEvent {
    /// An ownership transfer (acquire or release).
    Transfer(OwnershipTransfer),
    /// A command reads (or writes) the resource. `via_descriptor`: a
    /// descriptor bind (used by the draws and dispatches that follow, which
    /// may come after an acquire recorded later in the command buffer).
    Use { resource: Resource, writes: bool, via_descriptor: bool },
}

impl CommandEvent {
    fn resource(&self) -> Resource {
        match self {
            CommandEvent::Transfer(t) => t.resource,
            CommandEvent::Use { resource, .. } => *resource,
        }
    }
}

/// How far back a new use looks for the same use (to keep a command
/// buffer's list short when it binds the same set for every draw).
const DEDUP_WINDOW: usize = 32;

/// Transfers recorded per command buffer, and which pool each command
/// buffer came from (so a pool reset or destroy forgets its buffers').
#[derive(Debug, Default)]
pub struct CommandLog {
    transfers: HashMap<vk::CommandBuffer, Vec<OwnershipTransfer>>,
    /// For hazard reports: transfers and uses of external memory, in order.
    events: HashMap<vk::CommandBuffer, Vec<CommandEvent>>,
    pools: HashMap<vk::CommandPool, HashSet<vk::CommandBuffer>>,
}

impl CommandLog {
    /// How many command buffers hold recorded transfers.
    pub fn recorded(&self) -> usize {
        self.transfers.len()
    }

    /// How many command buffers hold hazard events.
    pub fn with_events(&self) -> usize {
        self.events.len()
    }

    pub fn allocated(&mut self, pool: vk::CommandPool, buffers: &[vk::CommandBuffer]) {
        self.pools.entry(pool).or_default().extend(buffers.iter().copied());
    }

    pub fn record(&mut self, cb: vk::CommandBuffer, transfers: impl IntoIterator<Item = OwnershipTransfer>) {
        let mut it = transfers.into_iter().peekable();
        if it.peek().is_some() {
            self.transfers.entry(cb).or_default().extend(it);
        }
    }

    /// Appends hazard events to `cb`. A use already recorded since the last
    /// transfer of its resource is not recorded again; an acquire moves the
    /// descriptor uses of its resource recorded since the last transfer of
    /// it after itself (a set bound before the acquire barrier is used by
    /// the draws after it).
    pub fn record_events(&mut self, cb: vk::CommandBuffer, events: impl IntoIterator<Item = CommandEvent>) {
        let mut it = events.into_iter().peekable();
        if it.peek().is_none() {
            return;
        }
        let list = self.events.entry(cb).or_default();
        for e in it {
            match e {
                CommandEvent::Use { resource, .. } => {
                    let seen = list
                        .iter()
                        .rev()
                        .take(DEDUP_WINDOW)
                        .take_while(|x| !matches!(x, CommandEvent::Transfer(t) if t.resource == resource))
                        .any(|x| *x == e);
                    if !seen {
                        list.push(e);
                    }
                }
                CommandEvent::Transfer(t) if t.direction == Direction::Acquire => {
                    let since = list
                        .iter()
                        .rposition(|x| matches!(x, CommandEvent::Transfer(p) if p.resource == t.resource))
                        .map_or(0, |i| i + 1);
                    let (moved, kept): (Vec<CommandEvent>, Vec<CommandEvent>) =
                        list.drain(since..).partition(|x| {
                            matches!(x, CommandEvent::Use { via_descriptor: true, .. })
                                && x.resource() == t.resource
                        });
                    list.extend(kept);
                    list.push(e);
                    list.extend(moved);
                }
                CommandEvent::Transfer(_) => list.push(e),
            }
        }
    }

    /// The hazard events recorded in `cb` since it was last begun or reset.
    pub fn events_of(&self, cb: vk::CommandBuffer) -> &[CommandEvent] {
        self.events.get(&cb).map_or(&[], Vec::as_slice)
    }

    fn forget(&mut self, cb: &vk::CommandBuffer) {
        self.transfers.remove(cb);
        self.events.remove(cb);
    }

    /// The transfers recorded in `cb` since it was last begun or reset.
    pub fn transfers_of(&self, cb: vk::CommandBuffer) -> &[OwnershipTransfer] {
        self.transfers.get(&cb).map_or(&[], Vec::as_slice)
    }

    /// `vkBeginCommandBuffer`/`vkResetCommandBuffer`: recording starts over.
    pub fn clear(&mut self, cb: vk::CommandBuffer) {
        self.forget(&cb);
    }

    pub fn freed(&mut self, pool: vk::CommandPool, buffers: &[vk::CommandBuffer]) {
        for cb in buffers {
            self.forget(cb);
        }
        if let Some(members) = self.pools.get_mut(&pool) {
            for cb in buffers {
                members.remove(cb);
            }
        }
    }

    pub fn pool_reset(&mut self, pool: vk::CommandPool) {
        let members: Vec<vk::CommandBuffer> =
            self.pools.get(&pool).map(|m| m.iter().copied().collect()).unwrap_or_default();
        for cb in &members {
            self.forget(cb);
        }
    }

    pub fn pool_destroyed(&mut self, pool: vk::CommandPool) {
        if let Some(members) = self.pools.remove(&pool) {
            for cb in members {
                self.forget(&cb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    const LOCAL: u32 = 0;
    const FOREIGN: u32 = vk::QUEUE_FAMILY_FOREIGN_EXT;
    const EXTERNAL: u32 = vk::QUEUE_FAMILY_EXTERNAL;
    const IGNORED: u32 = vk::QUEUE_FAMILY_IGNORED;

    fn transfer_of(r: u64, src: u32, dst: u32, access: vk::AccessFlags2) -> Option<OwnershipTransfer> {
        super::transfer_of(Barrier::buffer(vk::Buffer::from_raw(r), src, dst, (access, access)))
    }
    fn cb(n: u64) -> vk::CommandBuffer {
        vk::CommandBuffer::from_raw(n)
    }

    #[test]
    fn classification() {
        assert_eq!(classify(FOREIGN, LOCAL), Some(Direction::Acquire));
        assert_eq!(classify(EXTERNAL, 3), Some(Direction::Acquire));
        assert_eq!(classify(LOCAL, FOREIGN), Some(Direction::Release));
        assert_eq!(classify(2, EXTERNAL), Some(Direction::Release));
        assert_eq!(classify(LOCAL, LOCAL), None);
        assert_eq!(classify(LOCAL, 1), None);
        assert_eq!(classify(IGNORED, IGNORED), None);
        assert_eq!(classify(FOREIGN, EXTERNAL), None);
        // Concurrent sharing: the local side is IGNORED.
        assert_eq!(classify(FOREIGN, IGNORED), Some(Direction::Acquire));
        assert_eq!(classify(IGNORED, EXTERNAL), Some(Direction::Release));
    }

    #[test]
    fn acquire_writes_follow_destination_access_and_releases_count_as_written() {
        let read = transfer_of(1, FOREIGN, LOCAL, vk::AccessFlags2::SHADER_READ).unwrap();
        assert!(!read.writes);
        let write =
            transfer_of(1, FOREIGN, LOCAL, vk::AccessFlags2::SHADER_READ | vk::AccessFlags2::SHADER_WRITE)
                .unwrap();
        assert!(write.writes);
        let legacy = vk::AccessFlags2::from_raw(vk::AccessFlags::TRANSFER_WRITE.as_raw() as u64);
        assert!(transfer_of(1, EXTERNAL, LOCAL, legacy).unwrap().writes);
        let release = transfer_of(1, LOCAL, FOREIGN, vk::AccessFlags2::empty()).unwrap();
        assert_eq!(
            (release.direction, release.writes, release.src_writes),
            (Direction::Release, true, false)
        );
        let wrote = transfer_of(1, LOCAL, FOREIGN, vk::AccessFlags2::SHADER_WRITE).unwrap();
        assert_eq!((wrote.writes, wrote.src_writes), (true, true));
        assert!(transfer_of(1, LOCAL, LOCAL, vk::AccessFlags2::SHADER_WRITE).is_none());
    }

    #[test]
    fn an_image_acquire_that_transitions_its_layout_writes() {
        let image = |transitions_layout| Barrier {
            resource: Resource::Image(vk::Image::from_raw(5)),
            planes: Planes::of_aspect(vk::ImageAspectFlags::PLANE_1),
            src_family: FOREIGN,
            dst_family: LOCAL,
            src_access: vk::AccessFlags2::empty(),
            dst_access: vk::AccessFlags2::SHADER_SAMPLED_READ,
            transitions_layout,
            unmodified: false,
        };
        let kept = super::transfer_of(image(false)).unwrap();
        assert!(!kept.writes);
        assert_eq!(kept.planes, Planes::of_aspect(vk::ImageAspectFlags::PLANE_1));
        assert!(super::transfer_of(image(true)).unwrap().writes);
    }

    #[test]
    fn descriptor_uses_before_an_acquire_move_after_it_and_repeated_uses_are_kept_once() {
        let buffer = Resource::Buffer(vk::Buffer::from_raw(1));
        let other = Resource::Buffer(vk::Buffer::from_raw(2));
        let acquire = transfer_of(1, FOREIGN, LOCAL, vk::AccessFlags2::SHADER_READ).unwrap();
        let bind = |r| CommandEvent::Use { resource: r, writes: false, via_descriptor: true };
        let copy = CommandEvent::Use { resource: buffer, writes: false, via_descriptor: false };
        let mut log = CommandLog::default();
        log.record_events(cb(1), [bind(buffer), bind(other), bind(buffer), copy]);
        assert_eq!(log.events_of(cb(1)), &[bind(buffer), bind(other), copy]);
        log.record_events(cb(1), [CommandEvent::Transfer(acquire)]);
        assert_eq!(log.events_of(cb(1)), &[bind(other), copy, CommandEvent::Transfer(acquire), bind(buffer)]);
        // After a transfer the same use is recorded again.
        log.record_events(cb(1), [copy]);
        assert_eq!(log.events_of(cb(1)).len(), 5);
        assert_eq!(log.with_events(), 1);
        log.clear(cb(1));
        assert_eq!(log.with_events(), 0);
    }

    #[test]
    fn begin_reset_free_and_pool_reset_forget_records() {
        let pool = vk::CommandPool::from_raw(100);
        let other = vk::CommandPool::from_raw(200);
        let t = transfer_of(1, FOREIGN, LOCAL, vk::AccessFlags2::SHADER_READ).unwrap();
        let mut log = CommandLog::default();
        log.allocated(pool, &[cb(1), cb(2)]);
        log.allocated(other, &[cb(3)]);
        for n in 1..=3 {
            log.record(cb(n), [t]);
        }
        log.record(cb(4), []);
        assert_eq!(log.recorded(), 3);
        assert_eq!(log.transfers_of(cb(1)), &[t]);
        log.clear(cb(1));
        assert!(log.transfers_of(cb(1)).is_empty());
        log.pool_reset(pool);
        assert_eq!(log.recorded(), 1);
        log.record(cb(2), [t, t]);
        log.freed(pool, &[cb(2)]);
        assert_eq!(log.recorded(), 1);
        log.pool_destroyed(other);
        assert_eq!(log.recorded(), 0);
    }
}
