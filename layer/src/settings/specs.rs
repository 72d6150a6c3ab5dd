//! The one table of settings: each setting's environment name, key, kind
//! (what values it takes and how they set [`Settings`]) and default. The
//! parsers, the messages about malformed values and the manifest test all
//! read it, so what the layer accepts is written once.

use std::path::PathBuf;

use super::{AttachMode, EvictPolicy, HazardMode, LogLevel, Settings, SyncMode, SyncScope};

/// What values a setting takes, and how a parsed value sets [`Settings`].
#[derive(Clone, Copy)]
pub enum Kind {
    /// `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off` (manifest `BOOL`).
    Bool(fn(&mut Settings, bool)),
    /// A whole number in `min..=max` (manifest `INT` with that `range`).
    Int { min: u64, max: u64, unit: &'static str, set: fn(&mut Settings, u64) },
    /// One of `names`, case-insensitive; `set` gets its index (manifest
    /// `ENUM`, whose `flags` keys are `names`).
    Enum { names: &'static [&'static str], set: fn(&mut Settings, usize) },
    /// Free text with a grammar of its own (manifest `STRING`).
    Text { accepted: &'static str, set: fn(&mut Settings, &str) -> bool },
    /// A file path; empty means none (manifest `SAVE_FILE`).
    Path(fn(&mut Settings, Option<PathBuf>)),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.manifest_type())
    }
}

impl Kind {
    /// The setting's `type` in the layer manifest (Vulkan Configurator's
    /// names).
    pub fn manifest_type(&self) -> &'static str {
        match self {
            Kind::Bool(_) => "BOOL",
            Kind::Int { .. } => "INT",
            Kind::Enum { .. } => "ENUM",
            Kind::Text { .. } => "STRING",
            Kind::Path(_) => "SAVE_FILE",
        }
    }
}

/// One setting.
#[derive(Clone, Copy)]
pub struct Spec {
    /// What users type: `DYNABUF_<KEY>`.
    pub env: &'static str,
    /// The key in `vk_layer_settings.txt` (after `dynabuf_dmabuf.`), in the
    /// manifest and in `VkLayerSettingEXT::pSettingName`.
    pub key: &'static str,
    pub kind: Kind,
    /// The default, as a malformed-value message names it.
    pub default_taken: &'static str,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").field("key", &self.key).field("kind", &self.kind).finish()
    }
}

/// The boolean spellings [`parse_bool`] takes.
pub const BOOL_VALUES: &str = "1, 0, true, false, yes, no, on, off";

/// `1|true|yes|on`, `0|false|no|off` or empty (false), any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

impl Spec {
    /// Parses `value` and sets it; `false` (nothing set) when malformed.
    pub fn apply(&self, settings: &mut Settings, value: &str) -> bool {
        match self.kind {
            Kind::Bool(set) => parse_bool(value).map(|b| set(settings, b)).is_some(),
            Kind::Int { min, max, set, .. } => match value.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => {
                    set(settings, n);
                    true
                }
                _ => false,
            },
            Kind::Enum { names, set } => {
                let v = value.trim().to_ascii_lowercase();
                names.iter().position(|n| *n == v).map(|i| set(settings, i)).is_some()
            }
            Kind::Text { set, .. } => set(settings, value),
            Kind::Path(set) => {
                let v = value.trim();
                set(settings, (!v.is_empty()).then(|| PathBuf::from(v)));
                true
            }
        }
    }

    /// What the setting accepts, for the malformed-value message.
    pub fn accepted(&self) -> String {
        match self.kind {
            Kind::Bool(_) => BOOL_VALUES.to_string(),
            Kind::Int { min, max, unit, .. } => format!("a whole number of {unit} from {min} to {max}"),
            Kind::Enum { names, .. } => names.join(", "),
            Kind::Text { accepted, .. } => accepted.to_string(),
            Kind::Path(_) => "a file path".to_string(),
        }
    }
}

/// The names of a `(name, value)` table, in its order.
const fn names<T, const N: usize>(table: &[(&'static str, T); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].0;
        i += 1;
    }
    out
}

const SYNC_MODES: [(&str, SyncMode); 4] = [
    ("auto", SyncMode::Auto),
    ("semaphore", SyncMode::Semaphore),
    ("thread", SyncMode::Thread),
    ("off", SyncMode::Off),
];
const SYNC_SCOPES: [(&str, SyncScope); 2] = [("transfers", SyncScope::Transfers), ("all", SyncScope::All)];
const ATTACH_MODES: [(&str, AttachMode); 3] =
    [("pinned", AttachMode::Pinned), ("dynamic", AttachMode::Dynamic), ("auto", AttachMode::Auto)];
const HAZARD_MODES: [(&str, HazardMode); 3] =
    [("off", HazardMode::Off), ("warn", HazardMode::Warn), ("error", HazardMode::Error)];

const LOG_NAMES: [&str; 6] = names(&LogLevel::ALL);
const SYNC_NAMES: [&str; 4] = names(&SYNC_MODES);
const SCOPE_NAMES: [&str; 2] = names(&SYNC_SCOPES);
const ATTACH_NAMES: [&str; 3] = names(&ATTACH_MODES);
const HAZARD_NAMES: [&str; 3] = names(&HAZARD_MODES);

/// The longest a millisecond setting may be: an hour.
const HOUR_MS: u64 = 3_600_000;

/// Every setting the layer reads, in the manifests' order.
pub const SPECS: &[Spec] = &[
    Spec {
        env: "DYNABUF_LOG",
        key: "log",
        kind: Kind::Enum { names: &LOG_NAMES, set: |s, i| s.log_level = LogLevel::ALL[i].1 },
        default_taken: "warn",
    },
    Spec {
        env: "DYNABUF_LOG_FILE",
        key: "log_file",
        kind: Kind::Path(|s, p| s.log_file = p),
        default_taken: "stderr",
    },
    Spec {
        env: "DYNABUF_DISABLE",
        key: "disable",
        kind: Kind::Bool(|s, b| s.disabled = b),
        default_taken: "0",
    },
    Spec { env: "DYNABUF_STATS", key: "stats", kind: Kind::Bool(|s, b| s.stats = b), default_taken: "0" },
    Spec {
        env: "DYNABUF_SYNC",
        key: "sync",
        kind: Kind::Enum { names: &SYNC_NAMES, set: |s, i| s.sync = SYNC_MODES[i].1 },
        default_taken: "auto",
    },
    Spec {
        env: "DYNABUF_SYNC_SCOPE",
        key: "sync_scope",
        kind: Kind::Enum { names: &SCOPE_NAMES, set: |s, i| s.sync_scope = SYNC_SCOPES[i].1 },
        default_taken: "transfers",
    },
    Spec {
        env: "DYNABUF_FENCE_TIMEOUT_MS",
        key: "fence_timeout_ms",
        kind: Kind::Int { min: 1, max: HOUR_MS, unit: "milliseconds", set: |s, n| s.fence_timeout_ms = n },
        default_taken: "2000",
    },
    Spec {
        env: "DYNABUF_ATTACH",
        key: "attach",
        kind: Kind::Enum { names: &ATTACH_NAMES, set: |s, i| s.attach = ATTACH_MODES[i].1 },
        default_taken: "auto",
    },
    Spec {
        env: "DYNABUF_EVICT",
        key: "evict",
        kind: Kind::Text {
            accepted: "off, idle:<ms>, budget:<MiB>, every:<N> (N >= 1)",
            set: |s, v| EvictPolicy::parse(v).map(|p| s.evict = p).is_some(),
        },
        default_taken: "off",
    },
    Spec {
        env: "DYNABUF_HAZARDS",
        key: "hazards",
        kind: Kind::Enum { names: &HAZARD_NAMES, set: |s, i| s.hazards = HAZARD_MODES[i].1 },
        default_taken: "warn",
    },
    Spec {
        env: "DYNABUF_CPU_SYNC",
        key: "cpu_sync",
        kind: Kind::Bool(|s, b| s.cpu_sync = b),
        default_taken: "1",
    },
    Spec {
        env: "DYNABUF_STATS_FILE",
        key: "stats_file",
        kind: Kind::Path(|s, p| s.stats_file = p),
        default_taken: "none",
    },
    Spec {
        env: "DYNABUF_STATS_INTERVAL_MS",
        key: "stats_interval_ms",
        kind: Kind::Int { min: 0, max: HOUR_MS, unit: "milliseconds", set: |s, n| s.stats_interval_ms = n },
        default_taken: "0",
    },
];

/// The setting with `key`.
pub fn find(key: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.key == key)
}
