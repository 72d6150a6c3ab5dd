//! What a device can do for implicit sync, as the probe at `vkCreateDevice`
//! found it by real round trips (the strategy that follows is
//! `sync::strategy::choose`).

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

/// Everything the probe found for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub dma_buf_export: Finding,
    pub dma_buf_import: Finding,
    pub sync_file_ioctls: Finding,
    pub sync_fd_export: Finding,
    pub sync_fd_import: Finding,
    pub drm: DrmFinding,
    /// Whether dynamic attachments can be re-mapped (a sparse buffer
    /// bound to a dma-buf import) instead of copied: `hooks::remap_probe`.
    pub remap: Finding,
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
            remap: untested(),
        }
    }
}

impl Capabilities {
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
            "dma-buf export {}, import {}; dma-buf sync-file ioctls {}; SYNC_FD semaphore export {}, import {}; DRM node {drm}; remap {}",
            self.dma_buf_export.word(),
            self.dma_buf_import.word(),
            self.sync_file_ioctls.word(),
            self.sync_fd_export.word(),
            self.sync_fd_import.word(),
            self.remap.word(),
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
    fn summary_names_every_finding() {
        let s = caps(Finding::Yes, Finding::No("extension absent".into())).summary();
        for part in [
            "dma-buf export untested",
            "sync-file ioctls yes",
            "import no (extension absent)",
            "DRM node none",
            "remap untested (not probed)",
        ] {
            assert!(s.contains(part), "{part} not in {s}");
        }
    }
}
