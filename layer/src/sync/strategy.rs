//! The one decision of how a device synchronises (Mesa's `vk_sync` feature
//! bits play this part there): the probe's log line and the engine both
//! take it from [`choose`], so the log never names a strategy the engine
//! does not use.

use crate::registry::caps::{Capabilities, Finding};
use crate::settings::{Settings, SyncMode};

/// How foreign fences reach the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridge {
    /// A layer thread polls the sync_file (bounded by the fence timeout) and
    /// signals a timeline semaphore the submission waits on.
    Thread,
    /// The sync_file is imported into a SYNC_FD semaphore the GPU waits on
    /// (unbounded).
    Semaphore,
}

/// What the layer does for implicit sync on one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// No implicit sync, and why.
    Off(&'static str),
    /// Implicit sync through `bridge`; `publish`: release fences can be
    /// exported as SYNC_FD (else the layer waits for the GPU before a
    /// release returns).
    On { bridge: Bridge, publish: bool },
}

impl Strategy {
    pub fn is_on(&self) -> bool {
        matches!(self, Strategy::On { .. })
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Off(why) => write!(f, "off ({why})"),
            Strategy::On { bridge, publish } => write!(
                f,
                "{} bridge, release fences {}",
                match bridge {
                    Bridge::Thread => "thread",
                    Bridge::Semaphore => "semaphore",
                },
                if *publish {
                    "published as SYNC_FD"
                } else {
                    "not exportable (the layer waits for the GPU)"
                }
            ),
        }
    }
}

/// The strategy for a device: what the probe found, what the user asked
/// for, and whether the layer got timeline semaphores (its retire
/// timelines and the thread bridge need them). Sync-file ioctls that could
/// not be tried (no dma-buf yet) are assumed to work: the first import will
/// tell, and a failing ioctl is logged then.
pub fn choose(caps: &Capabilities, settings: &Settings, timeline: bool) -> Strategy {
    if settings.sync == SyncMode::Off {
        return Strategy::Off("DYNABUF_SYNC=off");
    }
    if matches!(caps.sync_file_ioctls, Finding::No(_)) {
        return Strategy::Off("the dma-buf sync-file ioctls do not work here");
    }
    if !timeline {
        return Strategy::Off("no timeline semaphores on this device");
    }
    let bridge = match settings.sync {
        SyncMode::Semaphore if caps.sync_fd_import.yes() => Bridge::Semaphore,
        _ => Bridge::Thread,
    };
    Strategy::On { bridge, publish: caps.sync_fd_export.yes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(ioctls: Finding, import: Finding, export: Finding) -> Capabilities {
        Capabilities {
            sync_file_ioctls: ioctls,
            sync_fd_import: import,
            sync_fd_export: export,
            ..Default::default()
        }
    }

    fn settings(sync: SyncMode) -> Settings {
        Settings { sync, ..Default::default() }
    }

    #[test]
    fn strategy_follows_findings_and_settings() {
        let all = caps(Finding::Yes, Finding::Yes, Finding::Yes);
        let on = |bridge, publish| Strategy::On { bridge, publish };
        assert_eq!(choose(&all, &settings(SyncMode::Auto), true), on(Bridge::Thread, true));
        assert_eq!(choose(&all, &settings(SyncMode::Semaphore), true), on(Bridge::Semaphore, true));
        assert!(!choose(&all, &settings(SyncMode::Off), true).is_on());
        assert!(!choose(&all, &settings(SyncMode::Auto), false).is_on());
        let no_import = caps(Finding::Yes, Finding::No("x".into()), Finding::No("y".into()));
        assert_eq!(choose(&no_import, &settings(SyncMode::Semaphore), true), on(Bridge::Thread, false));
        let untested = caps(Finding::Untested("no dma-buf".into()), Finding::Yes, Finding::Yes);
        assert!(choose(&untested, &settings(SyncMode::Auto), true).is_on());
        let no_ioctls = caps(Finding::No("ENOTTY".into()), Finding::Yes, Finding::Yes);
        assert_eq!(
            choose(&no_ioctls, &settings(SyncMode::Auto), true),
            Strategy::Off("the dma-buf sync-file ioctls do not work here")
        );
    }

    #[test]
    fn the_log_words_name_the_bridge() {
        let s = Strategy::On { bridge: Bridge::Thread, publish: true }.to_string();
        assert!(s.contains("thread bridge") && s.contains("SYNC_FD"), "{s}");
        assert_eq!(Strategy::Off("DYNABUF_SYNC=off").to_string(), "off (DYNABUF_SYNC=off)");
    }
}
