//! What a device can do for implicit sync, as the probe at `vkCreateDevice`
//! found it by real round trips, and the sync strategy that follows.

/// The result of one probe step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Yes,
    /// Tried, and it failed: why.
    No(String),
    /// Could not be tried: why (e.g. no dma-buf to try on).
    Untested(String),
}

impl Finding {
    pub fn yes(&self) -> bool {
        *self == Finding::Yes
    }

    fn word(&self) -> String {
        match self {
            Finding::Yes => "yes".into(),
            Finding::No(why) => format!("no ({why})"),
            Finding::Untested(why) => format!("untested ({why})"),
        }
    }
}

/// The DRM node behind a device, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrmFinding {
    None(String),
    Node { path: String, driver: String, syncobj: bool, timeline: bool },
}

/// How the layer will make submissions wait for, and publish, dma-buf fences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStrategy {
    /// Foreign fences enter as temporarily imported SYNC_FD semaphores.
    Semaphore,
    /// A waiter thread polls the sync_file and releases the submission
    /// (the device cannot import SYNC_FD semaphores).
    Thread,
    /// No implicit sync: the dma-buf sync-file ioctls do not work here.
    Unavailable,
}

/// Everything the probe found for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub dma_buf_export: Finding,
    pub dma_buf_import: Finding,
    pub sync_file_ioctls: Finding,
    pub sync_fd_export: Finding,
    pub sync_fd_import: Finding,
    pub drm: DrmFinding,
}

impl Default for Capabilities {
    fn default() -> Self {
        let untested = || Finding::Untested("not probed".into());
        Capabilities {
            dma_buf_export: untested(),
            dma_buf_import: untested(),
            sync_file_ioctls: untested(),
            sync_fd_export: untested(),
            sync_fd_import: untested(),
            drm: DrmFinding::None("not probed".into()),
        }
    }
}

impl Capabilities {
    /// The strategy the findings allow. Sync-file ioctls that could not be
    /// tried (no dma-buf yet) are assumed to work: the first import will
    /// tell, and a failing ioctl is logged and skipped then.
    pub fn strategy(&self) -> SyncStrategy {
        if matches!(self.sync_file_ioctls, Finding::No(_)) {
            SyncStrategy::Unavailable
        } else if self.sync_fd_import.yes() {
            SyncStrategy::Semaphore
        } else {
            SyncStrategy::Thread
        }
    }

    /// The one log line.
    pub fn summary(&self) -> String {
        let drm = match &self.drm {
            DrmFinding::None(why) => format!("none ({why})"),
            DrmFinding::Node { path, driver, syncobj, timeline } => format!(
                "{path} ({driver}, syncobj {}, timeline {})",
                if *syncobj { "yes" } else { "no" },
                if *timeline { "yes" } else { "no" }
            ),
        };
        format!(
            "dma-buf export {}, import {}; dma-buf sync-file ioctls {}; SYNC_FD semaphore export {}, import {}; DRM node {drm}; sync strategy: {:?}",
            self.dma_buf_export.word(),
            self.dma_buf_import.word(),
            self.sync_file_ioctls.word(),
            self.sync_fd_export.word(),
            self.sync_fd_import.word(),
            self.strategy()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(ioctls: Finding, import: Finding) -> Capabilities {
        Capabilities { sync_file_ioctls: ioctls, sync_fd_import: import, ..Default::default() }
    }

    #[test]
    fn strategy_follows_findings() {
        assert_eq!(caps(Finding::Yes, Finding::Yes).strategy(), SyncStrategy::Semaphore);
        assert_eq!(caps(Finding::Yes, Finding::No("x".into())).strategy(), SyncStrategy::Thread);
        assert_eq!(
            caps(Finding::Untested("no dma-buf".into()), Finding::Yes).strategy(),
            SyncStrategy::Semaphore
        );
        assert_eq!(caps(Finding::No("ENOTTY".into()), Finding::Yes).strategy(), SyncStrategy::Unavailable);
    }

    #[test]
    fn summary_names_every_finding() {
        let s = caps(Finding::Yes, Finding::No("extension absent".into())).summary();
        for part in [
            "dma-buf export untested",
            "sync-file ioctls yes",
            "import no (extension absent)",
            "DRM node none",
            "Thread",
        ] {
            assert!(s.contains(part), "{part} not in {s}");
        }
    }
}
