//! Settings: `DYNABUF_*` environment variables (what users type), then
//! `vk_layer_settings.txt` (keys `dynabuf_dmabuf.<name>`, found through
//! `VK_LAYER_SETTINGS_PATH` or in the working directory). The environment
//! wins. Parsing is pure and unit-tested; [`get`] loads the settings once per
//! process. A malformed value is reported once on stderr with the accepted
//! values and the default taken; it never stops the application.
//!
//! The layer never reads `RUST_LOG`: that belongs to the application.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// A value that could not be parsed; reported once, then the default is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub source: String,
    pub value: String,
    pub accepted: &'static str,
    pub default_taken: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ignoring {}={:?}: accepted values are {}; using the default, {}",
            self.source, self.value, self.accepted, self.default_taken
        )
    }
}

/// One setting: its environment name, its settings-file key, and how it is
/// applied to [`Settings`].
struct Spec {
    env: &'static str,
    key: &'static str,
    accepted: &'static str,
    default_taken: &'static str,
    apply: fn(&mut Settings, &str) -> bool,
}

const BOOL_VALUES: &str = "1, 0, true, false, yes, no, on, off";

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

const SPECS: &[Spec] = &[
    Spec {
        env: "DYNABUF_LOG",
        key: "log",
        accepted: "off, error, warn, info, debug, trace",
        default_taken: "warn",
        apply: |s, v| {
            let v = v.trim().to_ascii_lowercase();
            LogLevel::ALL.iter().find(|(n, _)| *n == v).map(|(_, l)| s.log_level = *l).is_some()
        },
    },
    Spec {
        env: "DYNABUF_LOG_FILE",
        key: "log_file",
        accepted: "a file path",
        default_taken: "stderr",
        apply: |s, v| {
            let v = v.trim();
            s.log_file = (!v.is_empty()).then(|| PathBuf::from(v));
            true
        },
    },
    Spec {
        env: "DYNABUF_DISABLE",
        key: "disable",
        accepted: BOOL_VALUES,
        default_taken: "0",
        apply: |s, v| parse_bool(v).map(|b| s.disabled = b).is_some(),
    },
    Spec {
        env: "DYNABUF_SYNC",
        key: "sync",
        accepted: "auto, semaphore, thread, off",
        default_taken: "auto",
        apply: |s, v| {
            let mode = match v.trim().to_ascii_lowercase().as_str() {
                "auto" => SyncMode::Auto,
                "semaphore" => SyncMode::Semaphore,
                "thread" => SyncMode::Thread,
                "off" => SyncMode::Off,
                _ => return false,
            };
            s.sync = mode;
            true
        },
    },
    Spec {
        env: "DYNABUF_SYNC_SCOPE",
        key: "sync_scope",
        accepted: "transfers, all",
        default_taken: "transfers",
        apply: |s, v| {
            let scope = match v.trim().to_ascii_lowercase().as_str() {
                "transfers" => SyncScope::Transfers,
                "all" => SyncScope::All,
                _ => return false,
            };
            s.sync_scope = scope;
            true
        },
    },
    Spec {
        env: "DYNABUF_FENCE_TIMEOUT_MS",
        key: "fence_timeout_ms",
        accepted: "a whole number of milliseconds from 1 to 3600000",
        default_taken: "2000",
        apply: |s, v| match v.trim().parse::<u64>() {
            Ok(ms) if (1..=3_600_000).contains(&ms) => {
                s.fence_timeout_ms = ms;
                true
            }
            _ => false,
        },
    },
    Spec {
        env: "DYNABUF_ATTACH",
        key: "attach",
        accepted: "pinned, dynamic, auto",
        default_taken: "auto",
        apply: |s, v| {
            s.attach = match v.trim().to_ascii_lowercase().as_str() {
                "pinned" => AttachMode::Pinned,
                "dynamic" => AttachMode::Dynamic,
                "auto" => AttachMode::Auto,
                _ => return false,
            };
            true
        },
    },
    Spec {
        env: "DYNABUF_EVICT",
        key: "evict",
        accepted: "off, idle:<ms>, budget:<MiB>, every:<N> (N >= 1)",
        default_taken: "off",
        apply: |s, v| EvictPolicy::parse(v).map(|p| s.evict = p).is_some(),
    },
    Spec {
        env: "DYNABUF_STATS",
        key: "stats",
        accepted: BOOL_VALUES,
        default_taken: "0",
        apply: |s, v| parse_bool(v).map(|b| s.stats = b).is_some(),
    },
    Spec {
        env: "DYNABUF_HAZARDS",
        key: "hazards",
        accepted: "off, warn, error",
        default_taken: "warn",
        apply: |s, v| {
            s.hazards = match v.trim().to_ascii_lowercase().as_str() {
                "off" => HazardMode::Off,
                "warn" => HazardMode::Warn,
                "error" => HazardMode::Error,
                _ => return false,
            };
            true
        },
    },
    Spec {
        env: "DYNABUF_CPU_SYNC",
        key: "cpu_sync",
        accepted: BOOL_VALUES,
        default_taken: "1",
        apply: |s, v| parse_bool(v).map(|b| s.cpu_sync = b).is_some(),
    },
    Spec {
        env: "DYNABUF_STATS_FILE",
        key: "stats_file",
        accepted: "a file path",
        default_taken: "none",
        apply: |s, v| {
            let v = v.trim();
            s.stats_file = (!v.is_empty()).then(|| PathBuf::from(v));
            true
        },
    },
    Spec {
        env: "DYNABUF_STATS_INTERVAL_MS",
        key: "stats_interval_ms",
        accepted: "a whole number of milliseconds (0: only at vkDestroyDevice)",
        default_taken: "0",
        apply: |s, v| v.trim().parse::<u64>().map(|ms| s.stats_interval_ms = ms).is_ok(),
    },
];

/// The prefix of this layer's keys in `vk_layer_settings.txt`.
pub const SETTINGS_FILE_PREFIX: &str = "dynabuf_dmabuf.";

/// Parses `vk_layer_settings.txt` text into this layer's `key → value`
/// pairs (other layers' keys and `#` comments are skipped).
pub fn parse_settings_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| {
            let k = k.trim().strip_prefix(SETTINGS_FILE_PREFIX)?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Builds settings from an environment lookup and the settings file's pairs.
/// The environment wins over the file; every malformed value is returned.
pub fn resolve(
    env: impl Fn(&str) -> Option<String>,
    file: &HashMap<String, String>,
) -> (Settings, Vec<Malformed>) {
    let mut settings = Settings::default();
    let mut problems = Vec::new();
    for spec in SPECS {
        let (source, value) = match env(spec.env) {
            Some(v) => (spec.env.to_string(), v),
            None => match file.get(spec.key) {
                Some(v) => (format!("{SETTINGS_FILE_PREFIX}{}", spec.key), v.clone()),
                None => continue,
            },
        };
        if !(spec.apply)(&mut settings, &value) {
            problems.push(Malformed {
                source,
                value,
                accepted: spec.accepted,
                default_taken: spec.default_taken,
            });
        }
    }
    (settings, problems)
}

fn settings_file_path() -> PathBuf {
    match std::env::var_os("VK_LAYER_SETTINGS_PATH") {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_dir() {
                p.join("vk_layer_settings.txt")
            } else {
                p
            }
        }
        None => Path::new("vk_layer_settings.txt").to_path_buf(),
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The process's settings, loaded (and logging initialised) on first call.
pub fn get() -> &'static Settings {
    SETTINGS.get_or_init(|| {
        let file = std::fs::read_to_string(settings_file_path())
            .map(|t| parse_settings_file(&t))
            .unwrap_or_default();
        let (settings, problems) = resolve(|k| std::env::var(k).ok(), &file);
        crate::log::init(settings.log_level, settings.log_file.as_deref());
        for p in &problems {
            eprintln!("dynabuf: warning: {p}");
            if settings.log_file.is_some() {
                log_warn!("{p}");
            }
        }
        settings
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (env, key, default) of every setting the manifest declares.
    fn manifest_settings(text: &str) -> Vec<(String, String, String)> {
        let value = |line: &str| {
            line.split_once(':').map(|(_, v)| v.trim().trim_end_matches(',').trim_matches('"').to_string())
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let Some(next) = lines.get(i + 1) else { continue };
            if l.starts_with("\"key\":") && next.starts_with("\"env\":") {
                let default =
                    lines[i..].iter().find(|d| d.starts_with("\"default\":")).and_then(|d| value(d));
                out.push((
                    value(next).unwrap_or_default(),
                    value(l).unwrap_or_default(),
                    default.unwrap_or_default(),
                ));
            }
        }
        out
    }

    /// Vulkan Configurator shows what the manifest declares: every setting
    /// the layer reads, with the same names and defaults.
    #[test]
    fn the_manifests_declare_every_setting() {
        for manifest in [
            include_str!("../../manifest/VkLayer_dynabuf.json.in"),
            include_str!("../../manifest/VkLayer_dynabuf_implicit.json.in"),
        ] {
            declares_every_setting(manifest_settings(manifest));
        }
    }

    fn declares_every_setting(declared: Vec<(String, String, String)>) {
        let normal = |key: &str, d: &str| match (key, d) {
            (_, "false") => "0".to_string(),
            (_, "true") => "1".to_string(),
            ("log_file", "") => "stderr".to_string(),
            (_, "") => "none".to_string(),
            (_, d) => d.to_string(),
        };
        let table: Vec<(String, String, String)> = SPECS
            .iter()
            .map(|s| (s.env.to_string(), s.key.to_string(), s.default_taken.to_string()))
            .collect();
        let declared: Vec<(String, String, String)> = declared
            .into_iter()
            .map(|(e, k, d)| {
                let d = normal(&k, &d);
                (e, k, d)
            })
            .collect();
        for t in &table {
            assert!(declared.contains(t), "{t:?} is not declared in the manifest (declared: {declared:?})");
        }
        for d in &declared {
            assert!(table.contains(d), "the manifest declares {d:?}, which the layer does not read");
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (s, p) = resolve(env_of(&[]), &HashMap::new());
        assert_eq!(s, Settings::default());
        assert!(p.is_empty());
    }

    #[test]
    fn every_log_level_parses_case_insensitively() {
        for (name, level) in LogLevel::ALL {
            let upper = name.to_uppercase();
            let (s, p) = resolve(env_of(&[("DYNABUF_LOG", &upper)]), &HashMap::new());
            assert_eq!(s.log_level, level);
            assert!(p.is_empty());
        }
    }

    #[test]
    fn malformed_value_is_reported_and_default_kept() {
        let (s, p) =
            resolve(env_of(&[("DYNABUF_LOG", "loud"), ("DYNABUF_DISABLE", "maybe")]), &HashMap::new());
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
            let (s, p) = resolve(env_of(&[("DYNABUF_DISABLE", v), ("DYNABUF_STATS", v)]), &HashMap::new());
            assert_eq!((s.disabled, s.stats), (want, want), "{v}");
            assert!(p.is_empty());
        }
    }

    #[test]
    fn sync_settings() {
        let env = env_of(&[
            ("DYNABUF_SYNC", "Thread"),
            ("DYNABUF_SYNC_SCOPE", "all"),
            ("DYNABUF_FENCE_TIMEOUT_MS", "250"),
        ]);
        let (s, p) = resolve(env, &HashMap::new());
        assert!(p.is_empty());
        assert_eq!((s.sync, s.sync_scope, s.fence_timeout_ms), (SyncMode::Thread, SyncScope::All, 250));
        let env = env_of(&[("DYNABUF_SYNC", "later"), ("DYNABUF_FENCE_TIMEOUT_MS", "0")]);
        let (s, p) = resolve(env, &HashMap::new());
        assert_eq!(p.len(), 2);
        assert_eq!((s.sync, s.fence_timeout_ms), (SyncMode::Auto, 2000));
    }

    #[test]
    fn attachment_settings() {
        let (s, _) = resolve(env_of(&[]), &HashMap::new());
        assert!(!s.dynamic_attachments(), "auto without eviction is pinned");
        let (s, p) = resolve(env_of(&[("DYNABUF_EVICT", "every:1")]), &HashMap::new());
        assert!(p.is_empty() && !s.dynamic_attachments(), "auto with eviction and scope transfers is pinned");
        assert!(s.why_auto_pins().is_some());
        let (s, _) =
            resolve(env_of(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_SYNC_SCOPE", "all")]), &HashMap::new());
        assert!(s.dynamic_attachments(), "auto with eviction and scope all is dynamic");
        let (s, _) =
            resolve(env_of(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_ATTACH", "dynamic")]), &HashMap::new());
        assert!(s.dynamic_attachments() && s.why_auto_pins().is_none());
        let (s, _) =
            resolve(env_of(&[("DYNABUF_EVICT", "every:1"), ("DYNABUF_ATTACH", "pinned")]), &HashMap::new());
        assert!(!s.dynamic_attachments());
        let (_, p) = resolve(env_of(&[("DYNABUF_EVICT", "every:0")]), &HashMap::new());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn settings_file_is_read_and_environment_wins() {
        let file = parse_settings_file(
            "# comment\nkhronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
             dynabuf_dmabuf.log = debug # trailing\ndynabuf_dmabuf.stats=1\n",
        );
        assert_eq!(file.len(), 2);
        let (s, _) = resolve(env_of(&[]), &file);
        assert_eq!((s.log_level, s.stats), (LogLevel::Debug, true));
        let (s, _) = resolve(env_of(&[("DYNABUF_LOG", "error")]), &file);
        assert_eq!(s.log_level, LogLevel::Error);
    }

    #[test]
    fn malformed_file_value_names_its_key() {
        let file = parse_settings_file("dynabuf_dmabuf.log = chatty\n");
        let (_, p) = resolve(env_of(&[]), &file);
        assert_eq!(p[0].source, "dynabuf_dmabuf.log");
    }
}
