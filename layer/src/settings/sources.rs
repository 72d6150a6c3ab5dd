//! Resolution: each setting's value from the first of the three sources
//! that has it, in the Khronos layers' order (Vulkan-Utility-Libraries,
//! `vkuGetLayerSettingValues`): the environment, then
//! `vk_layer_settings.txt`, then the application's
//! `VkLayerSettingsCreateInfoEXT`. Pure: the caller hands in the
//! environment lookup, the file's pairs and the application's values.
//!
//! Environment names, first found wins: `DYNABUF_<KEY>` (what users type;
//! set but empty counts, as it always has), then the two names the Khronos
//! library derives from the layer's name, `VK_DYNABUF_DMABUF_<KEY>` and
//! `VK_DMABUF_<KEY>` (empty counts as unset, as there). The library's
//! third form, `VK_<KEY>` with no layer in it, is left out: `VK_LOG` or
//! `VK_SYNC` would set every layer's setting of that name at once.

use std::collections::HashMap;
use std::fmt;

use super::specs::{find, Kind, Spec, SPECS};
use super::{Settings, SETTINGS_FILE_PREFIX};

/// A value the application passed in a `VkLayerSettingEXT`, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppValue {
    /// `VK_LAYER_SETTING_TYPE_BOOL32_EXT`.
    Bool(bool),
    /// Any of the four integer types.
    Int(i128),
    /// `VK_LAYER_SETTING_TYPE_STRING_EXT`.
    Text(String),
    /// Nothing the layer can use (a float, no value, several values): why.
    Unusable(String),
}

impl fmt::Display for AppValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppValue::Bool(b) => f.write_str(if *b { "VK_TRUE" } else { "VK_FALSE" }),
            AppValue::Int(n) => write!(f, "{n}"),
            AppValue::Text(t) => f.write_str(t),
            AppValue::Unusable(why) => f.write_str(why),
        }
    }
}

/// One of the application's settings for this layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSetting {
    /// `pSettingName`.
    pub name: String,
    pub value: AppValue,
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable, by name.
    Env(String),
    /// `vk_layer_settings.txt`, by key (`dynabuf_dmabuf.<key>`).
    File(String),
    /// The application's `VkLayerSettingsCreateInfoEXT`, by key.
    Application(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(name) => f.write_str(name),
            Origin::File(key) => f.write_str(key),
            Origin::Application(key) => write!(f, "application setting {key}"),
        }
    }
}

/// A value that could not be parsed; reported once, then the default is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub source: String,
    pub value: String,
    pub accepted: String,
    pub default_taken: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ignoring {}={:?}: accepted values are {}; using the default, {}",
            self.source, self.value, self.accepted, self.default_taken
        )
    }
}

/// What [`resolve`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub settings: Settings,
    /// Every value that could not be parsed.
    pub problems: Vec<Malformed>,
    /// Each setting a source set: its key, the value and where it came from.
    pub origins: Vec<(&'static str, String, Origin)>,
    /// Application settings a higher source overrode: the key and the winner.
    pub overridden: Vec<(&'static str, Origin)>,
    /// Application settings for this layer that name no setting.
    pub unknown: Vec<String>,
}

/// The environment names of a setting, first found wins: `DYNABUF_<KEY>`,
/// then the Khronos library's `VK_<LAYER KEY>_<KEY>` with the layer key
/// whole and without its vendor (`VK_DYNABUF_DMABUF_LOG`, `VK_DMABUF_LOG`).
pub fn env_names(spec: &Spec) -> [String; 3] {
    let layer = crate::LAYER_NAME.to_string_lossy();
    let whole = layer.strip_prefix("VK_LAYER_").unwrap_or(&layer).to_ascii_uppercase();
    let no_vendor = whole.split_once('_').map_or(whole.as_str(), |(_, rest)| rest).to_string();
    let key = spec.key.to_ascii_uppercase();
    [spec.env.to_string(), format!("VK_{whole}_{key}"), format!("VK_{no_vendor}_{key}")]
}

/// The text a setting's parser takes for an application value of any
/// type: booleans as `1`/`0` (integers too, non-zero true, for a boolean
/// setting), integers in decimal for a number, strings as they are.
/// `None`: the type does not fit the setting.
fn app_text(kind: &Kind, value: &AppValue) -> Option<String> {
    match (kind, value) {
        (_, AppValue::Text(t)) => Some(t.clone()),
        (Kind::Bool(_), AppValue::Bool(b)) => Some(if *b { "1" } else { "0" }.into()),
        (Kind::Bool(_), AppValue::Int(n)) => Some(if *n != 0 { "1" } else { "0" }.into()),
        (Kind::Int { .. }, AppValue::Int(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Builds settings from an environment lookup, the settings file's pairs
/// (keys without the `dynabuf_dmabuf.` prefix) and the application's
/// settings for this layer (the first of a name counts, as in the Khronos
/// library). A malformed value is reported and its default taken: a lower
/// source does not stand in for it.
pub fn resolve(
    env: impl Fn(&str) -> Option<String>,
    file: &HashMap<String, String>,
    app: &[AppSetting],
) -> Resolved {
    let mut out = Resolved::default();
    for spec in SPECS {
        let from_env = env_names(spec).into_iter().enumerate().find_map(|(i, name)| {
            env(&name).filter(|v| i == 0 || !v.is_empty()).map(|v| (Origin::Env(name), v))
        });
        let higher = from_env.or_else(|| {
            file.get(spec.key)
                .map(|v| (Origin::File(format!("{SETTINGS_FILE_PREFIX}{}", spec.key)), v.clone()))
        });
        let from_app = app.iter().find(|a| a.name == spec.key);
        let (origin, value) = match (higher, from_app) {
            (Some((origin, value)), from_app) => {
                if from_app.is_some() {
                    out.overridden.push((spec.key, origin.clone()));
                }
                (origin, Some(value))
            }
            (None, Some(a)) => (
                Origin::Application(format!("{SETTINGS_FILE_PREFIX}{}", spec.key)),
                app_text(&spec.kind, &a.value),
            ),
            (None, None) => continue,
        };
        match value {
            Some(v) if spec.apply(&mut out.settings, &v) => out.origins.push((spec.key, v, origin)),
            other => out.problems.push(Malformed {
                source: origin.to_string(),
                value: other.unwrap_or_else(|| from_app.map(|a| a.value.to_string()).unwrap_or_default()),
                accepted: spec.accepted(),
                default_taken: spec.default_taken,
            }),
        }
    }
    for a in app {
        if find(&a.name).is_none() && !out.unknown.contains(&a.name) {
            out.unknown.push(a.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{parse_settings_file, LogLevel, SyncMode, SyncScope};
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn app(pairs: &[(&str, AppValue)]) -> Vec<AppSetting> {
        pairs.iter().map(|(n, v)| AppSetting { name: n.to_string(), value: v.clone() }).collect()
    }

    fn text(t: &str) -> AppValue {
        AppValue::Text(t.into())
    }

    #[test]
    fn environment_names_follow_the_khronos_library() {
        let log = find("log").unwrap();
        assert_eq!(env_names(log), ["DYNABUF_LOG", "VK_DYNABUF_DMABUF_LOG", "VK_DMABUF_LOG"]);
        let r = resolve(env_of(&[("VK_DMABUF_LOG", "info")]), &HashMap::new(), &[]);
        assert_eq!(r.settings.log_level, LogLevel::Info);
        assert_eq!(r.origins, [("log", "info".to_string(), Origin::Env("VK_DMABUF_LOG".into()))]);
        let both = env_of(&[("VK_DYNABUF_DMABUF_LOG", "debug"), ("VK_DMABUF_LOG", "info")]);
        assert_eq!(resolve(both, &HashMap::new(), &[]).settings.log_level, LogLevel::Debug);
        let ours = env_of(&[("DYNABUF_LOG", "error"), ("VK_DYNABUF_DMABUF_LOG", "debug")]);
        assert_eq!(resolve(ours, &HashMap::new(), &[]).settings.log_level, LogLevel::Error);
        // Empty Khronos-style names count as unset, as in the library.
        let empty = env_of(&[("VK_DYNABUF_DMABUF_LOG", ""), ("VK_DMABUF_LOG", "trace")]);
        assert_eq!(resolve(empty, &HashMap::new(), &[]).settings.log_level, LogLevel::Trace);
    }

    #[test]
    fn precedence_is_environment_then_file_then_application() {
        let file = parse_settings_file("dynabuf_dmabuf.log = info\n");
        let from_app = app(&[("log", text("debug")), ("sync", text("thread"))]);
        let r = resolve(env_of(&[]), &HashMap::new(), &from_app);
        assert_eq!((r.settings.log_level, r.settings.sync), (LogLevel::Debug, SyncMode::Thread));
        assert!(r.overridden.is_empty());
        let r = resolve(env_of(&[]), &file, &from_app);
        assert_eq!((r.settings.log_level, r.settings.sync), (LogLevel::Info, SyncMode::Thread));
        assert_eq!(r.overridden, [("log", Origin::File("dynabuf_dmabuf.log".into()))]);
        let r = resolve(env_of(&[("DYNABUF_LOG", "error")]), &file, &from_app);
        assert_eq!(r.settings.log_level, LogLevel::Error);
        assert_eq!(r.overridden, [("log", Origin::Env("DYNABUF_LOG".into()))]);
        let sources: Vec<String> = r.origins.iter().map(|(_, _, o)| o.to_string()).collect();
        assert_eq!(sources, ["DYNABUF_LOG", "application setting dynabuf_dmabuf.sync"]);
    }

    #[test]
    fn application_values_of_every_type_fit_their_settings() {
        let from_app = app(&[
            ("stats", AppValue::Bool(true)),
            ("cpu_sync", AppValue::Int(0)),
            ("disable", text("no")),
            ("fence_timeout_ms", AppValue::Int(250)),
            ("stats_interval_ms", text("100")),
            ("sync_scope", text("ALL")),
            ("log_file", text("/tmp/dynabuf.log")),
            ("evict", text("every:2")),
        ]);
        let r = resolve(env_of(&[]), &HashMap::new(), &from_app);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let s = &r.settings;
        assert!(s.stats && !s.cpu_sync && !s.disabled);
        assert_eq!((s.fence_timeout_ms, s.stats_interval_ms, s.sync_scope), (250, 100, SyncScope::All));
        assert_eq!(s.log_file.as_deref(), Some(std::path::Path::new("/tmp/dynabuf.log")));
        assert_eq!(s.evict, super::super::EvictPolicy::Every(2));
        assert_eq!(r.origins.len(), 8);
    }

    #[test]
    fn malformed_application_values_are_reported_with_their_source() {
        let from_app = app(&[
            ("log", text("loud")),
            ("fence_timeout_ms", AppValue::Int(-5)),
            ("stats", AppValue::Unusable("a FLOAT32 value".into())),
            ("sync", AppValue::Bool(true)),
            ("no_such_setting", AppValue::Int(1)),
        ]);
        let r = resolve(env_of(&[]), &HashMap::new(), &from_app);
        assert_eq!(r.settings, Settings::default());
        let sources: Vec<&str> = r.problems.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "application setting dynabuf_dmabuf.log",
                "application setting dynabuf_dmabuf.stats",
                "application setting dynabuf_dmabuf.sync",
                "application setting dynabuf_dmabuf.fence_timeout_ms",
            ]
        );
        let text = r.problems[0].to_string();
        assert!(
            text.contains("\"loud\"") && text.contains("off, error, warn") && text.contains("default, warn")
        );
        assert_eq!(r.problems[1].value, "a FLOAT32 value");
        assert_eq!(r.problems[2].value, "VK_TRUE");
        assert!(r.problems[3].to_string().contains("from 1 to 3600000"), "{}", r.problems[3]);
        assert_eq!(r.unknown, ["no_such_setting"]);
    }

    #[test]
    fn the_first_application_value_of_a_name_counts() {
        let from_app = app(&[("log", text("info")), ("log", text("trace"))]);
        assert_eq!(resolve(env_of(&[]), &HashMap::new(), &from_app).settings.log_level, LogLevel::Info);
    }

    #[test]
    fn a_malformed_higher_value_does_not_fall_back_to_a_lower_source() {
        let from_app = app(&[("log", text("debug"))]);
        let r = resolve(env_of(&[("DYNABUF_LOG", "loud")]), &HashMap::new(), &from_app);
        assert_eq!(r.settings.log_level, LogLevel::Warn);
        assert_eq!(r.problems[0].source, "DYNABUF_LOG");
    }
}
