//! Settings: what users and applications tell the layer, from three
//! sources, in the order of precedence the Khronos layers use (their
//! Vulkan-Utility-Libraries, `vkuGetLayerSettingValues`):
//!
//! 1. the environment: `DYNABUF_<KEY>` (what users type), or the names the
//!    Khronos library derives from the layer's name, `VK_DYNABUF_DMABUF_<KEY>`
//!    and `VK_DMABUF_<KEY>` ([`sources`]);
//! 2. `vk_layer_settings.txt`, keys `dynabuf_dmabuf.<key>` ([`file`] says
//!    where it is found: Vulkan Configurator's file, `VK_LAYER_SETTINGS_PATH`,
//!    the working directory);
//! 3. the application's `VkLayerSettingsCreateInfoEXT` (`VK_EXT_layer_settings`)
//!    at `vkCreateInstance`: its `VkLayerSettingEXT`s whose `pLayerName` is
//!    `VK_LAYER_DYNABUF_dmabuf`, setting names being the keys, values of
//!    type BOOL32, INT32, INT64, UINT32, UINT64 or STRING as fits each
//!    setting (read in `views::layer_settings`).
//!
//! Each setting takes its value from the first source that has it. A
//! malformed value is reported once on stderr with the accepted values and
//! the default taken (a lower source does not stand in); it never stops
//! the application. Every setting a source set is logged at `info` with
//! where it came from. [`specs::SPECS`] is the one table of settings;
//! resolution is pure and unit-tested; [`get`] is the process's settings.
//!
//! The layer never reads `RUST_LOG`: that belongs to the application.

#![forbid(unsafe_code)]

mod file;
#[cfg(test)]
mod manifest_tests;
mod sources;
pub mod specs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub use file::{parse_settings_file, SETTINGS_FILE_PREFIX};
pub use sources::{resolve, AppSetting, AppValue, Malformed, Origin, Resolved};

pub use crate::log::LogLevel;
pub use crate::registry::dynamic::{AttachMode, EvictPolicy};

/// `DYNABUF_SYNC`: how foreign fences reach the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// `thread` where the device has timeline semaphores (the only way a
    /// wait can be bounded), else `semaphore`.
    Auto,
    /// Import the sync_file into a SYNC_FD semaphore the submission waits
    /// on: the GPU waits, unbounded.
    Semaphore,
    /// A waiter thread polls the sync_file (bounded by the fence timeout)
    /// and signals a timeline semaphore the submission waits on.
    Thread,
    /// No implicit sync.
    Off,
}

/// `DYNABUF_SYNC_SCOPE`: which buffers a submission acquires and releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncScope {
    /// Only those its command buffers transfer to or from
    /// FOREIGN/EXTERNAL.
    Transfers,
    /// Every dma-buf the submitting device has imported or exported (for
    /// applications that record no ownership transfers), acquired for
    /// writing and released as written.
    All,
}

/// `DYNABUF_HAZARDS`: how hazards (sharing mistakes the layer sees) are
/// reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HazardMode {
    /// Not looked for: no hook does any extra work.
    Off,
    /// Reported as warnings (debug messenger severity WARNING, log level
    /// warn).
    Warn,
    /// Reported as errors (debug messenger severity ERROR, log level
    /// error). The application's call still goes ahead.
    Error,
}

/// Everything the layer can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `DYNABUF_LOG`: `off|error|warn|info|debug|trace` (default `warn`).
    pub log_level: LogLevel,
    /// `DYNABUF_LOG_FILE`: append log lines to this file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// `DYNABUF_DISABLE=1`: the layer loads but hooks nothing.
    pub disabled: bool,
    /// `DYNABUF_STATS=1`: count what the layer sees and print it per device
    /// at `vkDestroyDevice`.
    pub stats: bool,
    /// `DYNABUF_SYNC`.
    pub sync: SyncMode,
    /// `DYNABUF_SYNC_SCOPE`.
    pub sync_scope: SyncScope,
    /// `DYNABUF_FENCE_TIMEOUT_MS`: the longest the layer lets anything wait
    /// for a peer's fence.
    pub fence_timeout_ms: u64,
    /// `DYNABUF_ATTACH`.
    pub attach: AttachMode,
    /// `DYNABUF_EVICT`.
    pub evict: EvictPolicy,
    /// `DYNABUF_HAZARDS`.
    pub hazards: HazardMode,
    /// `DYNABUF_CPU_SYNC`: bracket CPU access to mapped dma-buf memory with
    /// `DMA_BUF_IOCTL_SYNC` (default on).
    pub cpu_sync: bool,
    /// `DYNABUF_STATS_FILE`: write statistics as JSON to this file (one
    /// document per device at `vkDestroyDevice`). Implies statistics.
    pub stats_file: Option<PathBuf>,
    /// `DYNABUF_STATS_INTERVAL_MS`: with a stats file, also append a JSON
    /// line per device this often while running (0: only at the end).
    pub stats_interval_ms: u64,
}

impl Settings {
    /// Whether new dma-buf imports become dynamic attachments. `auto`
    /// asks for an eviction policy *and* a scope in which the layer sees
    /// every use (`DYNABUF_SYNC_SCOPE=all`): with scope `transfers`,
    /// copies happen only at recorded ownership transfers, and an
    /// application that uses a dma-buf without recording them would lose
    /// data; `DYNABUF_ATTACH=dynamic` says it records them.
    pub fn dynamic_attachments(&self) -> bool {
        match self.attach {
            AttachMode::Pinned => false,
            AttachMode::Dynamic => true,
            AttachMode::Auto => self.evict != EvictPolicy::Off && self.sync_scope == SyncScope::All,
        }
    }

    /// Why imports stay pinned although an eviction policy is set.
    pub fn why_auto_pins(&self) -> Option<&'static str> {
        (self.attach == AttachMode::Auto && self.evict != EvictPolicy::Off && !self.dynamic_attachments())
            .then_some(
            "DYNABUF_ATTACH=auto keeps dma-buf imports pinned with DYNABUF_SYNC_SCOPE=transfers: dynamic \
             attachments are copied only at recorded ownership transfers; set DYNABUF_ATTACH=dynamic if the \
             application records them for every use, or DYNABUF_SYNC_SCOPE=all",
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            log_level: LogLevel::Warn,
            log_file: None,
            disabled: false,
            stats: false,
            sync: SyncMode::Auto,
            sync_scope: SyncScope::Transfers,
            fence_timeout_ms: 2000,
            attach: AttachMode::Auto,
            evict: EvictPolicy::Off,
            hazards: HazardMode::Warn,
            cpu_sync: true,
            stats_file: None,
            stats_interval_ms: 0,
        }
    }
}

/// How many different sets of settings a process may go through (the
/// first from the environment and the file, then one per
/// `vkCreateInstance` whose application settings change them); past it,
/// new application settings are refused with a warning.
const GENERATIONS: usize = 16;

/// Every set of settings the process has had. None is ever freed, so a
/// `&'static Settings` from [`get`] stays valid while newer ones replace it.
static GENERATION: [OnceLock<Settings>; GENERATIONS] = [const { OnceLock::new() }; GENERATIONS];
/// The index in [`GENERATION`] of the current settings.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// Held while application settings are published.
static PUBLISH: Mutex<()> = Mutex::new(());

/// The process's current settings: loaded from the environment and the
/// settings file at the first call (which also points the log at its level
/// and file), replaced by [`apply_application`]. As cheap as a pointer
/// load (an atomic index and a `OnceLock` read): hot paths may call it.
///
/// Settings are process-wide, as the layer's state is. A reference taken
/// earlier keeps the settings of its time; what a device decided from
/// them at `vkCreateDevice` (its sync strategy, its sync scope, whether it
/// counts statistics) stays for that device's life; everything read per
/// call (the log level, attachments of new imports, the fence timeout,
/// hazard reports, `disable` for functions looked up later) follows the
/// latest settings.
pub fn get() -> &'static Settings {
    GENERATION[CURRENT.load(Ordering::Acquire)].get_or_init(first_load)
}

/// The settings from the environment and the settings file alone.
fn first_load() -> Settings {
    let (path, file) = file::load();
    let resolved = resolve(|k| std::env::var(k).ok(), &file, &[]);
    crate::log::set_level(resolved.settings.log_level);
    if let Some(log_file) = &resolved.settings.log_file {
        crate::log::to_file(log_file);
    }
    report(&resolved, &path, false);
    resolved.settings
}

/// Takes the application's settings for this layer, given at
/// `vkCreateInstance`, as the third source (below the environment and the
/// settings file, which are read again). When they change the settings,
/// the result replaces the current settings for the whole process (see
/// [`get`]); an instance that passes none leaves them as they are.
///
/// With two instances that pass different settings, the later
/// `vkCreateInstance` wins from then on, for both instances' later calls;
/// devices keep what they decided at creation. What the layer does once per
/// process takes effect only if nothing did it before: `log_file` opens
/// the log file only if no earlier source chose one (the lines before it
/// went to stderr); the log level changes at once.
pub fn apply_application(app: &[AppSetting]) -> &'static Settings {
    let current = get();
    if app.is_empty() {
        return current;
    }
    let _publishing = PUBLISH.lock().unwrap_or_else(|p| p.into_inner());
    let index = CURRENT.load(Ordering::Acquire);
    let current = get();
    let (path, file) = file::load();
    let resolved = resolve(|k| std::env::var(k).ok(), &file, app);
    if resolved.settings == *current {
        report(&resolved, &path, true);
        return current;
    }
    let Some(slot) = GENERATION.get(index + 1) else {
        log_warn!(
            "ignoring the application's layer settings: the process changed its settings {} times already",
            GENERATIONS - 1
        );
        return current;
    };
    let published = slot.get_or_init(|| resolved.settings.clone());
    CURRENT.store(index + 1, Ordering::Release);
    crate::log::set_level(published.log_level);
    if let Some(log_file) = published.log_file.as_deref().filter(|f| current.log_file.as_deref() != Some(*f))
    {
        if !crate::log::to_file(log_file) {
            log_warn!(
                "log_file {} from the application's settings: the log already goes to a file this process \
                 chose before; keeping it",
                log_file.display()
            );
        }
    }
    report(&resolved, &path, true);
    published
}

/// Says what `resolved` found: malformed values and unknown application
/// settings on stderr (and in the log file, if any), each setting's source
/// at `info`. With `application_only`, only what concerns the
/// application's settings (the rest was said at the first load).
fn report(resolved: &Resolved, file: &Path, application_only: bool) {
    let from_app = |source: &str| source.starts_with("application setting");
    for p in resolved.problems.iter().filter(|p| !application_only || from_app(&p.source)) {
        warn_always(format_args!("{p}"));
    }
    for name in &resolved.unknown {
        warn_always(format_args!(
            "ignoring application setting {SETTINGS_FILE_PREFIX}{name}: {} has no such setting",
            crate::LAYER_NAME.to_string_lossy()
        ));
    }
    for (key, value, origin) in &resolved.origins {
        match origin {
            Origin::Application(_) => log_info!("setting {key} = {value:?} (from {origin})"),
            Origin::File(_) if !application_only => {
                log_info!("setting {key} = {value:?} (from {origin} in {})", file.display())
            }
            Origin::Env(_) if !application_only => log_info!("setting {key} = {value:?} (from {origin})"),
            _ => {}
        }
    }
    for (key, winner) in &resolved.overridden {
        log_info!("application setting {SETTINGS_FILE_PREFIX}{key} overridden by {winner}");
    }
}

/// A warning on stderr whatever the log level, and in the log file too if
/// there is one.
fn warn_always(message: std::fmt::Arguments<'_>) {
    eprintln!("dynabuf: warning: {message}");
    if crate::log::to_a_file() {
        log_warn!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    /// Settings and problems from the environment alone.
    fn from_env(pairs: &[(&str, &str)]) -> (Settings, Vec<Malformed>) {
        let r = resolve(env_of(pairs), &HashMap::new(), &[]);
        (r.settings, r.problems)
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (s, p) = from_env(&[]);
        assert_eq!(s, Settings::default());
        assert!(p.is_empty());
    }

    #[test]
    fn every_log_level_parses_case_insensitively() {
        for (name, level) in LogLevel::ALL {
            let (s, p) = from_env(&[("DYNABUF_LOG", &name.to_uppercase())]);
            assert_eq!(s.log_level, level);
            assert!(p.is_empty());
        }
    }

    #[test]
    fn malformed_value_is_reported_and_default_kept() {
        let (s, p) = from_env(&[("DYNABUF_LOG", "loud"), ("DYNABUF_DISABLE", "maybe")]);
        assert_eq!(s.log_level, LogLevel::Warn);
        assert!(!s.disabled);
        assert_eq!(p.len(), 2);
        let text = p[0].to_string();
        assert!(text.contains("DYNABUF_LOG") && text.contains("loud") && text.contains("debug"), "{text}");
        assert!(p[1].to_string().contains("DYNABUF_DISABLE"));
    }

    #[test]
    fn booleans() {
        for (v, want) in [("1", true), ("yes", true), ("ON", true), ("0", false), ("off", false)] {
            let (s, p) = from_env(&[("DYNABUF_DISABLE", v), ("DYNABUF_STATS", v)]);
            assert_eq!((s.disabled, s.stats), (want, want), "{v}");
            assert!(p.is_empty());
        }
    }

    #[test]
    fn sync_settings() {
        let (s, p) = from_env(&[
            ("DYNABUF_SYNC", "Thread"),
            ("DYNABUF_SYNC_SCOPE", "all"),
            ("DYNABUF_FENCE_TIMEOUT_MS", "250"),
        ]);
        assert!(p.is_empty());
        assert_eq!((s.sync, s.sync_scope, s.fence_timeout_ms), (SyncMode::Thread, SyncScope::All, 250));
        let (s, p) = from_env(&[("DYNABUF_SYNC", "later"), ("DYNABUF_FENCE_TIMEOUT_MS", "0")]);
        assert_eq!(p.len(), 2);
        assert_eq!((s.sync, s.fence_timeout_ms), (SyncMode::Auto, 2000));
    }

    #[test]
    fn attachment_settings() {
        let (s, _) = from_env(&[]);
        assert!(!s.dynamic_attachments(), "auto without eviction is pinned");
        let (s, p) = from_env(&[("DYNABUF_EVICT", "every:1")]);
        assert!(p.is_empty() && !s.dynamic_attachments(), "auto with eviction and scope transfers is pinned");
        assert!(s.why_auto_pins().is_some());
        let (s, _) = from_env(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_SYNC_SCOPE", "all")]);
        assert!(s.dynamic_attachments(), "auto with eviction and scope all is dynamic");
        let (s, _) = from_env(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_ATTACH", "dynamic")]);
        assert!(s.dynamic_attachments() && s.why_auto_pins().is_none());
        let (s, _) = from_env(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_ATTACH", "pinned")]);
        assert!(!s.dynamic_attachments());
        let (_, p) = from_env(&[("DYNABUF_EVICT", "every:0")]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn statistics_interval_is_bounded_like_the_manifest_says() {
        let (s, p) = from_env(&[("DYNABUF_STATS_INTERVAL_MS", "3600000")]);
        assert!(p.is_empty());
        assert_eq!(s.stats_interval_ms, 3_600_000);
        let (_, p) = from_env(&[("DYNABUF_STATS_INTERVAL_MS", "3600001")]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn settings_file_is_read_and_environment_wins() {
        let file = parse_settings_file("dynabuf_dmabuf.log = debug # trailing\ndynabuf_dmabuf.stats=1\n");
        let r = resolve(env_of(&[]), &file, &[]);
        assert_eq!((r.settings.log_level, r.settings.stats), (LogLevel::Debug, true));
        let r = resolve(env_of(&[("DYNABUF_LOG", "error")]), &file, &[]);
        assert_eq!(r.settings.log_level, LogLevel::Error);
    }

    #[test]
    fn malformed_file_value_names_its_key() {
        let file = parse_settings_file("dynabuf_dmabuf.log = chatty\n");
        let r = resolve(env_of(&[]), &file, &[]);
        assert_eq!(r.problems[0].source, "dynabuf_dmabuf.log");
    }

    #[test]
    fn get_is_the_first_generation_until_an_application_changes_it() {
        let first = get();
        assert!(std::ptr::eq(first, get()));
        assert!(std::ptr::eq(first, apply_application(&[])));
    }
}
