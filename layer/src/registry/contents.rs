//! What a dynamic attachment's backing holds against its dma-buf, and which
//! copies a submission's hand-overs need from that (`copies_needed`): pure
//! decisions, kept apart from the attachment's residency
//! (`registry::dynamic`) and from the engine that records the copies.

/// What a dynamic attachment's backing holds against its dma-buf, which
/// decides which copies a hand-over needs ([`copies_needed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contents {
    /// It never received the dma-buf's content (or not for the bytes now
    /// bound): a copy out must be preceded by a copy in.
    pub stale: bool,
    /// It holds what the dma-buf held at the device's last hand-over, so an
    /// acquire the application calls unmodified needs no copy in. Lost when
    /// the application maps the dma-buf (its CPU writes go there).
    pub current: bool,
    /// It may hold writes the dma-buf lacks: the next release copies out.
    pub dirty: bool,
}

impl Contents {
    /// A backing just allocated.
    pub const NEW: Contents = Contents { stale: true, current: false, dirty: false };
}

/// The epoch at which the backing last became stale, stopped being
/// current, and was written (by anything but the copies themselves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub stale: u64,
    pub not_current: u64,
    pub written: u64,
}

/// One hand-over of a dynamic attachment in a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `writes`: the acquire's destination access writes (or it transitions
    /// a layout); `unmodified`: `VkExternalMemoryAcquireUnmodifiedEXT`.
    Acquire { batch: usize, writes: bool, unmodified: bool },
    /// `src_writes`: the release's source access writes.
    Release { batch: usize, src_writes: bool },
}

/// What the submission's watched commands (hazard watching) do to the
/// attachment besides its hand-overs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watched {
    /// A command writes it, somewhere in the submission.
    pub writes: bool,
    /// A command writes it after its last release in the submission (or
    /// with no release in it): it stays dirty afterwards.
    pub trailing: bool,
    /// Releases must copy out whatever the barriers say: nothing is
    /// watched on the device (`DYNABUF_HAZARDS=off`), or the submission
    /// waits for work not yet submitted (its writes may run before it).
    pub unseen: bool,
}

impl Step {
    fn order(&self) -> (usize, u8) {
        match *self {
            Step::Acquire { batch, .. } => (batch, 0),
            Step::Release { batch, .. } => (batch, 1),
        }
    }
}

/// The copies one submission needs for one attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopiesNeeded {
    /// Copy in before the submission's first batch (a stale backing whose
    /// first hand-over here releases what the device wrote).
    pub fill: bool,
    /// The batches that copy in first (they acquire).
    pub copy_in: Vec<usize>,
    /// The batches that copy out last (they release written content).
    pub copy_out: Vec<usize>,
    /// The backing's contents once the submission has run.
    pub after: Option<Contents>,
    /// A copy in overwrites writes the device never released (another
    /// resource of the same memory, or bytes a wider binding brought in).
    pub overwrites_unreleased: bool,
}

impl CopiesNeeded {
    pub fn any(&self) -> bool {
        self.fill || !self.copy_in.is_empty() || !self.copy_out.is_empty()
    }
}

/// Which copies `steps` need, starting from `contents`: the kernel's
/// dynamic importers never copy, and neither does an attachment whose
/// content did not change. An acquire copies in unless the application
/// says the dma-buf is unmodified since the device's last release and the
/// backing still holds that; a release copies out only what was written
/// since the last copy (an acquire for writing, the release's own source
/// access, or a watched command anywhere in the submission says so), after
/// filling a backing that does not hold the dma-buf's bytes (stale, or not
/// current since a mapping whose CPU writes reached the dma-buf). Within a
/// batch acquires come first (their copies run first in it) and releases
/// last; where in the submission a watched write falls is not known, so
/// the backing stays dirty after it.
pub fn copies_needed(contents: Contents, steps: &[Step], watched: Watched) -> CopiesNeeded {
    let mut steps = steps.to_vec();
    steps.sort_by_key(Step::order);
    let mut c = contents;
    let mut needed = CopiesNeeded::default();
    for step in steps {
        match step {
            Step::Acquire { batch, writes, unmodified } => {
                if !(unmodified && c.current && !c.stale) {
                    needed.overwrites_unreleased |= c.dirty;
                    needed.copy_in.push(batch);
                    c = Contents { stale: false, current: true, dirty: false };
                }
                c.dirty |= writes;
            }
            Step::Release { batch, src_writes } => {
                if c.dirty || src_writes || watched.writes || watched.unseen {
                    // Filled before batch 0: never over writes the backing
                    // holds from earlier submissions (this one's come after).
                    let holds_no_bytes = !c.dirty && (c.stale || !c.current);
                    if holds_no_bytes && needed.copy_in.is_empty() {
                        needed.fill = true;
                    }
                    needed.copy_out.push(batch);
                    c = Contents { stale: false, current: true, dirty: false };
                }
            }
        }
    }
    c.dirty |= watched.trailing;
    needed.copy_in.dedup();
    needed.copy_out.dedup();
    needed.after = Some(c);
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Contents = Contents { stale: false, current: true, dirty: false };
    const NONE: Watched = Watched { writes: false, trailing: false, unseen: false };
    const WROTE: Watched = Watched { writes: true, trailing: true, unseen: false };
    const WROTE_BEFORE_RELEASE: Watched = Watched { writes: true, trailing: false, unseen: false };

    fn acquire(batch: usize, writes: bool, unmodified: bool) -> Step {
        Step::Acquire { batch, writes, unmodified }
    }

    fn release(batch: usize, src_writes: bool) -> Step {
        Step::Release { batch, src_writes }
    }

    /// A consumer that acquires with `VkExternalMemoryAcquireUnmodifiedEXT`,
    /// reads and releases without writing copies once (its first fill) and
    /// never again; without the structure it copies in at every acquire,
    /// and still never out.
    #[test]
    fn an_unmodified_read_only_consumer_copies_only_its_first_fill() {
        let frame = [acquire(0, false, true), release(0, false)];
        let first = copies_needed(Contents::NEW, &frame, NONE);
        assert_eq!((first.copy_in.clone(), first.copy_out.clone(), first.fill), (vec![0], vec![], false));
        let mut c = first.after.unwrap();
        for _ in 0..3 {
            let n = copies_needed(c, &frame, NONE);
            assert!(!n.any(), "{n:?}");
            c = n.after.unwrap();
        }
        let said_nothing = copies_needed(c, &[acquire(0, false, false), release(0, false)], NONE);
        assert_eq!((said_nothing.copy_in, said_nothing.copy_out), (vec![0], vec![]));
    }

    /// What was written reaches the dma-buf: an acquire for writing, or a
    /// release whose source access writes, copies out; the next release
    /// with nothing written since does not.
    #[test]
    fn a_release_copies_out_only_what_was_written_since_the_last_copy() {
        let wrote = copies_needed(FRESH, &[acquire(0, true, true), release(1, false)], NONE);
        assert_eq!((wrote.copy_in.clone(), wrote.copy_out.clone()), (vec![], vec![1]));
        assert_eq!(wrote.after, Some(FRESH));
        let by_release = copies_needed(FRESH, &[release(0, true)], NONE);
        assert_eq!(by_release.copy_out, vec![0]);
        let nothing = copies_needed(FRESH, &[release(0, false)], NONE);
        assert!(!nothing.any());
        // Written in an earlier submission (acquired for writing there).
        let earlier = copies_needed(FRESH, &[acquire(0, true, false)], NONE).after.unwrap();
        assert!(earlier.dirty);
        assert_eq!(copies_needed(earlier, &[release(0, false)], NONE).copy_out, vec![0]);
    }

    /// A backing that never received the dma-buf's content is filled before
    /// a release copies it out, and an unmodified acquire of it still
    /// copies in (there is nothing to keep).
    #[test]
    fn a_stale_backing_is_filled_before_it_is_published_and_never_trusted() {
        let n = copies_needed(Contents::NEW, &[release(2, true)], NONE);
        assert!(n.fill);
        assert_eq!(n.copy_out, vec![2]);
        let read_only = copies_needed(Contents::NEW, &[release(0, false)], NONE);
        assert!(!read_only.any(), "nothing written, nothing to publish");
        assert_eq!(read_only.after, Some(Contents::NEW));
        assert_eq!(copies_needed(Contents::NEW, &[acquire(0, false, true)], NONE).copy_in, vec![0]);
        let mapped = Contents { current: false, ..FRESH };
        assert_eq!(copies_needed(mapped, &[acquire(0, false, true)], NONE).copy_in, vec![0]);
    }

    /// Steps are taken in batch order, acquires before releases of the same
    /// batch; a later acquire without the structure copies in again.
    #[test]
    fn steps_follow_batch_order() {
        let n =
            copies_needed(FRESH, &[release(1, true), acquire(0, true, true), acquire(2, false, false)], NONE);
        assert_eq!((n.copy_in, n.copy_out), (vec![2], vec![1]));
        assert_eq!(n.after, Some(FRESH));
    }

    /// A watched write in the submission (a copy into the buffer, say) is
    /// published by its release even when the release's source access
    /// does not write, also when the same submission copied in first; the
    /// backing stays dirty only when a write follows the last release.
    #[test]
    fn a_watched_write_is_copied_out_even_after_a_copy_in_of_the_same_submission() {
        let frame = [acquire(0, false, false), release(0, false)];
        let n = copies_needed(FRESH, &frame, WROTE_BEFORE_RELEASE);
        assert_eq!((n.copy_in.clone(), n.copy_out.clone(), n.fill), (vec![0], vec![0], false));
        assert_eq!(n.after, Some(FRESH), "published: nothing left to copy out");
        let next = copies_needed(n.after.unwrap(), &frame, WROTE_BEFORE_RELEASE);
        assert!(!next.overwrites_unreleased, "a producer loop is not warned about");
        let trailing = copies_needed(FRESH, &frame, WROTE);
        assert!(trailing.after.unwrap().dirty, "a write after the release stays to be published");
        let alone = copies_needed(FRESH, &[], WROTE);
        assert!(!alone.any() && alone.after.unwrap().dirty);
    }

    /// Nothing watched (or work that may run before the submission): every
    /// release copies out, as before copies became conditional.
    #[test]
    fn unseen_writes_make_every_release_copy_out() {
        let unseen = Watched { unseen: true, ..NONE };
        assert_eq!(copies_needed(FRESH, &[release(0, false)], unseen).copy_out, vec![0]);
        assert!(!copies_needed(FRESH, &[acquire(0, false, true)], unseen).any());
    }

    /// After a mapping (CPU writes reached the dma-buf, not the backing), a
    /// release that copies out fills the backing first, so the CPU's bytes
    /// are not overwritten by the backing's older ones, also when a watched
    /// command of the submission writes (the fill runs before it). Bytes
    /// the backing holds from earlier submissions are never filled over.
    #[test]
    fn a_release_after_a_mapping_fills_the_backing_first_but_never_over_unpublished_writes() {
        let mapped = Contents { current: false, ..FRESH };
        let n = copies_needed(mapped, &[release(1, true)], NONE);
        assert!(n.fill);
        assert_eq!(n.copy_out, vec![1]);
        assert!(copies_needed(mapped, &[release(1, false)], WROTE_BEFORE_RELEASE).fill);
        let dirty = Contents { current: false, dirty: true, ..FRESH };
        assert!(!copies_needed(dirty, &[release(1, true)], NONE).fill);
        let written_unacquired = Contents { stale: true, current: false, dirty: true };
        assert!(!copies_needed(written_unacquired, &[release(0, false)], NONE).fill);
    }

    /// A copy in over writes the device never released is flagged (the
    /// caller logs it).
    #[test]
    fn a_copy_in_over_unreleased_writes_is_flagged() {
        let dirty = Contents { dirty: true, ..FRESH };
        let n = copies_needed(dirty, &[acquire(0, false, false)], NONE);
        assert!(n.overwrites_unreleased);
        assert!(!copies_needed(dirty, &[acquire(0, false, true)], NONE).overwrites_unreleased);
    }
}
