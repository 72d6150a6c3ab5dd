//! `layer-settings`: an application that configures the layer through
//! `VK_EXT_layer_settings`, as the Khronos layers are configured.

use std::ffi::CString;

use dynabuf_client::env::LAYER_NAME;
use dynabuf_client::vulkan::{Client, ClientOptions, LayerSetting, SettingValue};
use dynabuf_client::{compute, Error, Result};

/// `layer-settings [NAME[:TYPE]=VALUE]... [--then [NAME[:TYPE]=VALUE]...]...`:
/// creates an instance with a
/// `VkLayerSettingsCreateInfoEXT` holding each setting for dynabuf (TYPE:
/// `bool32`, `int32`, `int64`, `uint32`, `uint64`, `float32`, `string`,
/// the default; none given: no structure), enabling `VK_EXT_layer_settings`
/// where the loader lists it for the layer, then a device that runs one
/// compute job. Prints `layer_settings_extension=listed|absent` and
/// `layer_settings_enabled=true|false|refused` (refused: the loader would
/// not enable it, and the instance was created without it). Each `--then`
/// starts another instance and device, created while the earlier ones
/// live; each runs its job once all exist.
pub fn cmd_layer_settings(args: &[String]) -> Result<()> {
    // SAFETY: loads the system's loader, as Client::new does.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| Error(format!("loading libvulkan.so.1: {e}")))?;
    let layer = CString::new(LAYER_NAME).expect("no NUL in the layer name");
    // SAFETY: a NUL-terminated layer name; the loader answers from manifests.
    let offered = unsafe { entry.enumerate_instance_extension_properties(Some(&layer)) }.unwrap_or_default();
    let listed = offered.iter().any(|e| e.extension_name_as_c_str() == Ok(ash::ext::layer_settings::NAME));
    println!("layer_settings_extension={}", if listed { "listed" } else { "absent" });
    // One instance and device per group of settings, all alive at once.
    let mut clients = Vec::new();
    for group in args.split(|a| a == "--then") {
        clients.push(client_with(group, listed)?);
    }
    for c in &clients {
        compute::fill_once(c, c.queues[0], 7, 256)?;
    }
    println!("instances={} ok=true", clients.len());
    Ok(())
}

/// An instance with `settings` (none: no structure) and its device.
fn client_with(settings: &[String], listed: bool) -> Result<Client> {
    let layer_settings = settings.iter().map(|a| parse(a)).collect::<Result<Vec<_>>>()?;
    let mut opts = ClientOptions { layer_settings, ..Default::default() };
    if listed {
        opts.instance_extensions.push(CString::from(ash::ext::layer_settings::NAME));
    }
    // A loader older than the extension (Debian 12's 1.3.239) lists it for
    // the layer but refuses to enable an instance extension it does not
    // know; the layer reads the structure either way, so go on without.
    match Client::new(&opts) {
        Err(e) if listed && e.0.contains("ERROR_EXTENSION_NOT_PRESENT") => {
            println!("layer_settings_enabled=refused");
            opts.instance_extensions.clear();
            Client::new(&opts)
        }
        other => {
            println!("layer_settings_enabled={listed}");
            other
        }
    }
}

fn parse(arg: &str) -> Result<LayerSetting> {
    let (name, value) =
        arg.split_once('=').ok_or_else(|| Error(format!("{arg:?}: expected NAME[:TYPE]=VALUE")))?;
    let (name, ty) = name.split_once(':').unwrap_or((name, "string"));
    Ok(LayerSetting {
        layer: CString::new(LAYER_NAME).expect("no NUL in the layer name"),
        name: CString::new(name).map_err(|e| Error(format!("{name:?}: {e}")))?,
        value: SettingValue::parse(ty, value)?,
    })
}
