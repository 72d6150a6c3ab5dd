//! The manifests against the code: Vulkan Configurator shows what the
//! manifests declare, so every setting the layer reads must be there with
//! its environment name, type, default, enum values and range as
//! [`SPECS`] has them, in a shape Configurator's schema accepts
//! (VulkanTools `layers_schema.json`: no property it does not know).

use serde_json::Value;

use super::specs::{Kind, SPECS};
use super::Settings;

const MANIFESTS: [(&str, &str); 2] = [
    ("VkLayer_dynabuf.json.in", include_str!("../../../manifest/VkLayer_dynabuf.json.in")),
    ("VkLayer_dynabuf_implicit.json.in", include_str!("../../../manifest/VkLayer_dynabuf_implicit.json.in")),
];

fn layer(name: &str, text: &str) -> Value {
    let manifest: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    manifest["layer"].clone()
}

fn settings(layer: &Value) -> &Vec<Value> {
    layer["features"]["settings"].as_array().expect("features.settings")
}

/// A manifest value as the text a parser takes.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => panic!("{other} is not a setting value"),
    }
}

/// The properties Configurator's schema allows on a setting of `kind`.
fn allowed_properties(kind: &Kind) -> Vec<&'static str> {
    let mut all = vec![
        "key",
        "env",
        "type",
        "label",
        "description",
        "url",
        "platforms",
        "status",
        "view",
        "expanded",
        "dependence",
        "settings",
        "default",
    ];
    match kind {
        Kind::Int { .. } => all.extend(["range", "unit"]),
        Kind::Enum { .. } => all.push("flags"),
        Kind::Path(_) => all.push("filter"),
        Kind::Bool(_) | Kind::Text { .. } => {}
    }
    all
}

#[test]
fn the_manifests_declare_every_setting_as_the_layer_reads_it() {
    for (name, text) in MANIFESTS {
        let layer = layer(name, text);
        let declared = settings(&layer);
        let keys: Vec<&str> = declared.iter().map(|d| d["key"].as_str().unwrap_or("")).collect();
        let ours: Vec<&str> = SPECS.iter().map(|s| s.key).collect();
        assert_eq!(keys, ours, "{name}: the settings, in the table's order");
        for (spec, d) in SPECS.iter().zip(declared) {
            let what = format!("{name}: setting {}", spec.key);
            assert_eq!(d["env"], spec.env, "{what}: env");
            assert_eq!(d["type"], spec.kind.manifest_type(), "{what}: type");
            for field in ["label", "description"] {
                assert!(d[field].as_str().is_some_and(|t| !t.is_empty()), "{what}: {field}");
            }
            let allowed = allowed_properties(&spec.kind);
            for property in d.as_object().unwrap().keys() {
                assert!(allowed.contains(&property.as_str()), "{what}: Configurator rejects {property:?}");
            }
            // The declared default is the layer's: parsing it gives the defaults.
            let default = as_text(&d["default"]);
            let mut s = Settings::default();
            assert!(spec.apply(&mut s, &default), "{what}: default {default:?} does not parse");
            assert_eq!(s, Settings::default(), "{what}: default {default:?} is not the layer's");
            match spec.kind {
                Kind::Bool(_) => {
                    assert!(d["default"].is_boolean(), "{what}: a BOOL default is true or false")
                }
                Kind::Int { min, max, unit, .. } => {
                    assert_eq!(d["range"]["min"], min, "{what}: range.min");
                    assert_eq!(d["range"]["max"], max, "{what}: range.max");
                    assert_eq!(d["unit"], unit, "{what}: unit");
                    assert!(d["default"].is_u64(), "{what}: an INT default is a number");
                    assert_eq!(default, spec.default_taken, "{what}: default_taken");
                }
                Kind::Enum { names, .. } => {
                    let flags = d["flags"].as_array().unwrap_or_else(|| panic!("{what}: flags"));
                    let flag_keys: Vec<&str> =
                        flags.iter().map(|f| f["key"].as_str().unwrap_or("")).collect();
                    assert_eq!(flag_keys, names, "{what}: the values the parser takes");
                    for f in flags {
                        for field in ["label", "description"] {
                            assert!(f[field].as_str().is_some_and(|t| !t.is_empty()), "{what}: {f}: {field}");
                        }
                    }
                    assert_eq!(default, spec.default_taken, "{what}: default_taken");
                }
                Kind::Text { .. } | Kind::Path(_) => assert!(d["default"].is_string(), "{what}: default"),
            }
        }
    }
}

#[test]
fn both_manifests_declare_the_same_settings_presets_and_extensions() {
    let [(a, ta), (b, tb)] = MANIFESTS;
    let (la, lb) = (layer(a, ta), layer(b, tb));
    for field in ["features", "instance_extensions", "device_extensions", "platforms", "api_version", "name"]
    {
        assert_eq!(la[field], lb[field], "{a} and {b} differ in {field}");
    }
}

#[test]
fn the_manifests_offer_vk_ext_layer_settings_and_acquire_unmodified() {
    for (name, text) in MANIFESTS {
        let layer = layer(name, text);
        let extensions = layer["instance_extensions"].as_array().unwrap_or_else(|| panic!("{name}"));
        let ours = serde_json::json!({ "name": "VK_EXT_layer_settings", "spec_version": "2" });
        assert_eq!(extensions, &vec![ours], "{name}: instance_extensions");
        let ours =
            serde_json::json!({ "name": "VK_EXT_external_memory_acquire_unmodified", "spec_version": "1" });
        assert_eq!(layer["device_extensions"], serde_json::json!([ours]), "{name}: device_extensions");
        let offered = crate::hooks::acquire_unmodified::properties();
        assert_eq!(
            ours["name"].as_str(),
            offered.extension_name_as_c_str().ok().and_then(|n| n.to_str().ok())
        );
        assert_eq!(
            ours["spec_version"],
            offered.spec_version.to_string(),
            "{name}: the layer's spec version"
        );
    }
}

#[test]
fn presets_set_declared_settings_to_values_the_layer_takes() {
    for (name, text) in MANIFESTS {
        let layer = layer(name, text);
        let presets = layer["features"]["presets"].as_array().unwrap_or_else(|| panic!("{name}: presets"));
        for preset in presets {
            for field in ["label", "description"] {
                assert!(preset[field].is_string(), "{name}: {preset}: {field}");
            }
            for setting in preset["settings"].as_array().unwrap() {
                let key = setting["key"].as_str().unwrap();
                let spec =
                    super::specs::find(key).unwrap_or_else(|| panic!("{name}: preset sets unknown {key}"));
                let value = as_text(&setting["value"]);
                assert!(spec.apply(&mut Settings::default(), &value), "{name}: preset {key}={value}");
                assert_eq!(
                    matches!(spec.kind, Kind::Bool(_)),
                    setting["value"].is_boolean(),
                    "{name}: {key}"
                );
            }
        }
    }
}
