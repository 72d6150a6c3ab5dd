//! The application's layer settings (`VK_EXT_layer_settings`): the
//! `VkLayerSettingEXT`s for one layer in every `VkLayerSettingsCreateInfoEXT`
//! of a `vkCreateInstance` chain, in chain order (the Khronos library reads
//! all of them, `vkuNextLayerSettingsCreateInfo`, and the first of a name
//! wins), as plain [`AppSetting`]s that `settings::resolve` takes.

use std::ffi::{c_char, c_void, CStr};

use ash::vk;

use super::pnext::{nodes, Extends};
use super::slice;
use crate::settings::{AppSetting, AppValue};

/// The settings in the chain at `p_next` whose `pLayerName` is `layer`.
/// Entries with a null name are skipped; a value the layer cannot use (a
/// float, no value, more than one, a null string) becomes
/// [`AppValue::Unusable`] saying why, for the settings to report.
///
/// # Safety
/// `p_next` must be a valid `vkCreateInstance` pNext chain (null-terminated,
/// every node starting with `sType`/`pNext`); each
/// `VkLayerSettingsCreateInfoEXT` in it must be valid per Vulkan valid usage
/// (`pSettings` holds `settingCount` settings; each setting's names are
/// null or NUL-terminated, and `pValues` holds `valueCount` values of its
/// `type`), all alive for the call.
pub unsafe fn for_layer(p_next: *const c_void, layer: &CStr) -> Vec<AppSetting> {
    let mut out = Vec::new();
    // SAFETY: forwarded from this function's contract.
    for node in unsafe { nodes(p_next) } {
        // SAFETY: `node` is a live chain node header (contract of `nodes`).
        if unsafe { (*node).s_type } != <vk::LayerSettingsCreateInfoEXT<'_> as Extends>::STRUCTURE_TYPE {
            continue;
        }
        // SAFETY: its sType says it is a VkLayerSettingsCreateInfoEXT (the
        // `Extends` contract), valid per this function's contract.
        let info = unsafe { &*node.cast::<vk::LayerSettingsCreateInfoEXT<'_>>() };
        // SAFETY: `pSettings` holds `settingCount` settings (valid usage).
        for setting in unsafe { slice(info.p_settings, info.setting_count) } {
            // SAFETY: a null or NUL-terminated name (valid usage).
            if unsafe { c_str(setting.p_layer_name) } != Some(layer) {
                continue;
            }
            // SAFETY: a null or NUL-terminated name (valid usage).
            let Some(name) = (unsafe { c_str(setting.p_setting_name) }) else {
                continue;
            };
            // SAFETY: `pValues` holds `valueCount` values of `type` (valid usage).
            let value = unsafe { value_of(setting) };
            out.push(AppSetting { name: name.to_string_lossy().into_owned(), value });
        }
    }
    out
}

/// `p` as a C string, or `None` when null.
///
/// # Safety
/// `p` is null or a NUL-terminated string alive for `'a`.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: forwarded from this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// One setting's value.
///
/// # Safety
/// `setting.p_values` is null or holds `setting.value_count` values of
/// `setting.ty` (strings: pointers to NUL-terminated strings or null).
unsafe fn value_of(setting: &vk::LayerSettingEXT<'_>) -> AppValue {
    use vk::LayerSettingTypeEXT as T;
    if setting.p_values.is_null() || setting.value_count == 0 {
        return AppValue::Unusable("no value".into());
    }
    if setting.value_count > 1 {
        return AppValue::Unusable(format!("{} values (one expected)", setting.value_count));
    }
    let p = setting.p_values;
    // SAFETY: in every arm `p` holds one value of type `ty` (this
    // function's contract); `read_unaligned` asks nothing of its alignment.
    unsafe {
        match setting.ty {
            T::BOOL32 => AppValue::Bool(p.cast::<vk::Bool32>().read_unaligned() != vk::FALSE),
            T::INT32 => AppValue::Int(p.cast::<i32>().read_unaligned().into()),
            T::INT64 => AppValue::Int(p.cast::<i64>().read_unaligned().into()),
            T::UINT32 => AppValue::Int(p.cast::<u32>().read_unaligned().into()),
            T::UINT64 => AppValue::Int(p.cast::<u64>().read_unaligned().into()),
            T::STRING => match c_str(p.cast::<*const c_char>().read_unaligned()) {
                Some(s) => AppValue::Text(s.to_string_lossy().into_owned()),
                None => AppValue::Unusable("a null string".into()),
            },
            T::FLOAT32 | T::FLOAT64 => {
                AppValue::Unusable(format!("a floating-point value ({:?})", setting.ty))
            }
            other => AppValue::Unusable(format!("a value of unknown type {}", other.as_raw())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &CStr = c"VK_LAYER_DYNABUF_dmabuf";

    fn setting<'a>(
        layer: &'a CStr,
        name: &'a CStr,
        ty: vk::LayerSettingTypeEXT,
        p: *const c_void,
    ) -> vk::LayerSettingEXT<'a> {
        vk::LayerSettingEXT {
            p_layer_name: layer.as_ptr(),
            p_setting_name: name.as_ptr(),
            ty,
            value_count: 1,
            p_values: p,
            ..Default::default()
        }
    }

    #[test]
    fn reads_our_settings_of_every_type_from_every_structure_in_the_chain() {
        use vk::LayerSettingTypeEXT as T;
        let (yes, n32, n64, u32v, u64v) = (vk::TRUE, -3i32, 1i64 << 40, 250u32, 7u64);
        let text = c"debug";
        let text_ptr = text.as_ptr();
        let float = 1.5f32;
        let first = [
            setting(OURS, c"stats", T::BOOL32, (&yes as *const u32).cast()),
            setting(
                c"VK_LAYER_KHRONOS_validation",
                c"log",
                T::STRING,
                (&text_ptr as *const *const c_char).cast(),
            ),
            setting(OURS, c"a", T::INT32, (&n32 as *const i32).cast()),
            setting(OURS, c"b", T::INT64, (&n64 as *const i64).cast()),
        ];
        let second = [
            setting(OURS, c"c", T::UINT32, (&u32v as *const u32).cast()),
            setting(OURS, c"d", T::UINT64, (&u64v as *const u64).cast()),
            setting(OURS, c"log", T::STRING, (&text_ptr as *const *const c_char).cast()),
            setting(OURS, c"f", T::FLOAT32, (&float as *const f32).cast()),
            vk::LayerSettingEXT { value_count: 0, ..setting(OURS, c"g", T::UINT32, std::ptr::null()) },
        ];
        let info2 = vk::LayerSettingsCreateInfoEXT::default().settings(&second);
        let mut info1 = vk::LayerSettingsCreateInfoEXT::default().settings(&first);
        info1.p_next = (&info2 as *const vk::LayerSettingsCreateInfoEXT<'_>).cast();
        let features =
            vk::ValidationFeaturesEXT { p_next: (&info1 as *const _ as *const c_void), ..Default::default() };
        // SAFETY: a chain of live structures built above, each valid.
        let got = unsafe { for_layer((&features as *const vk::ValidationFeaturesEXT<'_>).cast(), OURS) };
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["stats", "a", "b", "c", "d", "log", "f", "g"]);
        assert_eq!(got[0].value, AppValue::Bool(true));
        assert_eq!(got[1].value, AppValue::Int(-3));
        assert_eq!(got[2].value, AppValue::Int(1 << 40));
        assert_eq!(got[3].value, AppValue::Int(250));
        assert_eq!(got[4].value, AppValue::Int(7));
        assert_eq!(got[5].value, AppValue::Text("debug".into()));
        assert!(matches!(&got[6].value, AppValue::Unusable(why) if why.contains("FLOAT32")));
        assert_eq!(got[7].value, AppValue::Unusable("no value".into()));
    }

    #[test]
    fn a_chain_without_the_structure_has_no_settings() {
        // SAFETY: an empty chain.
        assert!(unsafe { for_layer(std::ptr::null(), OURS) }.is_empty());
    }
}
