//! Vulkan's side of `doctor`: the loader, each device's dma-buf and
//! SYNC_FD support as the driver reports it (extensions and external
//! handle properties), and whether the loader finds the layer, both as
//! `dynabuf run` sets it up and as installed. The layer question is asked
//! in a child process (`dynabuf list-instance-layers`) under exactly the
//! environment in question, so this process's own environment is never
//! changed.

use std::ffi::CStr;
use std::process::{Command, ExitCode};

use ash::vk;

use crate::doctor::Check;
use crate::layer_env::{self, LAYER_NAME};

/// What a device offers, by extension name.
struct Extensions(Vec<String>);

impl Extensions {
    fn has(&self, name: &CStr) -> bool {
        let name = name.to_string_lossy();
        self.0.iter().any(|e| *e == name)
    }
}

/// A device's checks.
fn device_checks(instance: &ash::Instance, index: usize, pd: vk::PhysicalDevice) -> Vec<Check> {
    // SAFETY: `pd` was enumerated from `instance`, which is alive.
    let props = unsafe { instance.get_physical_device_properties(pd) };
    let name = props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let what = |w: &str| format!("Vulkan dev{index} {name}: {w}");
    // SAFETY: as above; no layer is named.
    let extensions = unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap_or_default();
    let ext = Extensions(
        extensions
            .iter()
            .filter_map(|e| e.extension_name_as_c_str().ok().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    );
    let core_1_1 =
        vk::api_version_major(props.api_version) > 1 || vk::api_version_minor(props.api_version) >= 1;
    let mut out = Vec::new();

    let dma_buf = ext.has(vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME) && ext.has(vk::KHR_EXTERNAL_MEMORY_FD_NAME);
    let check = if !dma_buf {
        Check::no(
            what("dma-buf memory"),
            "no VK_EXT_external_memory_dma_buf + VK_KHR_external_memory_fd",
            "a driver that offers them (Mesa's do); the layer has nothing to track on this device",
        )
    } else if !core_1_1 {
        Check::ok(
            what("dma-buf memory"),
            "VK_EXT_external_memory_dma_buf, VK_KHR_external_memory_fd (Vulkan 1.0)",
        )
    } else {
        let info = vk::PhysicalDeviceExternalBufferInfo::default()
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let mut props = vk::ExternalBufferProperties::default();
        // SAFETY: a Vulkan 1.1 device of a 1.1 instance; both structures
        // are valid and `props` is written only.
        unsafe { instance.get_physical_device_external_buffer_properties(pd, &info, &mut props) };
        let f = props.external_memory_properties.external_memory_features;
        let (import, export) = (
            f.contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE),
            f.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE),
        );
        let found = format!(
            "VK_EXT_external_memory_dma_buf, VK_KHR_external_memory_fd; dma-buf buffers: import {}, export {}",
            yes_no(import),
            yes_no(export)
        );
        if import {
            Check::ok(what("dma-buf memory"), found)
        } else {
            Check::no(what("dma-buf memory"), found, "a driver that imports dma-bufs")
        }
    };
    out.push(check);

    out.push(if ext.has(vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME) {
        Check::ok(what("DRM format modifiers"), "VK_EXT_image_drm_format_modifier")
    } else {
        Check::no(
            what("DRM format modifiers"),
            "no VK_EXT_image_drm_format_modifier: images cannot be shared with a modifier",
            "a driver that offers it (lavapipe does only where /dev/udmabuf opens)",
        )
    });

    out.push(if !ext.has(vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME) || !core_1_1 {
        Check::no(
            what("SYNC_FD semaphores"),
            if core_1_1 { "no VK_KHR_external_semaphore_fd" } else { "a Vulkan 1.0 device" },
            "none needed: the layer waits with its thread bridge and waits for the GPU before publishing \
             release fences; a driver with SYNC_FD export publishes them without that wait",
        )
    } else {
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default()
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut props = vk::ExternalSemaphoreProperties::default();
        // SAFETY: as for the buffer properties above.
        unsafe { instance.get_physical_device_external_semaphore_properties(pd, &info, &mut props) };
        let f = props.external_semaphore_features;
        let (export, import) = (
            f.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE),
            f.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE),
        );
        let found = format!("export {}, import {}", yes_no(export), yes_no(import));
        if export && import {
            Check::ok(what("SYNC_FD semaphores"), found)
        } else {
            Check::no(what("SYNC_FD semaphores"), found, "none needed: the layer falls back (see README)")
        }
    });
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The loader's line and each device's lines.
fn vulkan_checks() -> Vec<Check> {
    // SAFETY: loading the system's Vulkan loader runs its initialisers,
    // which is what every Vulkan program does.
    let entry = match unsafe { ash::Entry::load() } {
        Ok(e) => e,
        Err(e) => {
            return vec![Check::no(
                "Vulkan loader",
                format!("cannot load libvulkan.so.1: {e}"),
                "install libvulkan1",
            )]
        }
    };
    // SAFETY: a valid entry; the call has no other preconditions.
    let version =
        unsafe { entry.try_enumerate_instance_version() }.ok().flatten().unwrap_or(vk::API_VERSION_1_0);
    let api = if version >= vk::API_VERSION_1_1 { vk::API_VERSION_1_1 } else { vk::API_VERSION_1_0 };
    let mut out = vec![Check::ok(
        "Vulkan loader",
        format!(
            "instance version {}.{}.{}",
            vk::api_version_major(version),
            vk::api_version_minor(version),
            vk::api_version_patch(version)
        ),
    )];
    let app = vk::ApplicationInfo::default().application_name(c"dynabuf doctor").api_version(api);
    let create = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: valid create info with no layers or extensions named.
    let instance = match unsafe { entry.create_instance(&create, None) } {
        Ok(i) => i,
        Err(e) => {
            out.push(Check::no(
                "Vulkan devices",
                format!("vkCreateInstance: {e}"),
                "install a Vulkan driver",
            ));
            return out;
        }
    };
    // SAFETY: a live instance.
    let devices = unsafe { instance.enumerate_physical_devices() }.unwrap_or_default();
    if devices.is_empty() {
        out.push(Check::no(
            "Vulkan devices",
            "none",
            "a Vulkan driver (Mesa's lavapipe runs anywhere: mesa-vulkan-drivers)",
        ));
    }
    if api < vk::API_VERSION_1_1 {
        out.push(Check::no("Vulkan loader", "Vulkan 1.0 only", "a Vulkan 1.1 loader and driver"));
    }
    for (i, pd) in devices.into_iter().enumerate() {
        out.extend(device_checks(&instance, i, pd));
    }
    // SAFETY: the instance and nothing made from it is used after this.
    unsafe { instance.destroy_instance(None) };
    out
}

/// The instance layers a child finds under `cmd`'s environment.
fn layers_under(mut cmd: Command) -> Result<Vec<String>, String> {
    let out = cmd.arg("list-instance-layers").output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the loader failed ({})", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

fn self_command() -> Option<Command> {
    std::env::current_exe().ok().map(Command::new)
}

/// Whether the loader finds the layer as `run` sets it up, and as
/// installed (its own search path, nothing added).
fn layer_checks() -> Vec<Check> {
    let mut out = Vec::new();
    const RUN: &str = "layer for dynabuf run";
    match (layer_env::find(), self_command()) {
        (None, _) | (_, None) => out.push(Check::no(
            RUN,
            format!("no {} next to this command or installed", layer_env::MANIFEST),
            "cargo build --workspace (beside this command), or scripts/install.sh",
        )),
        (Some(found), Some(mut cmd)) => {
            layer_env::enable(&mut cmd, &found, |k| std::env::var_os(k));
            let found_where = format!(
                "{} ({}; library {})",
                found.manifest.display(),
                found.source.describe(),
                found.library.display()
            );
            out.push(match layers_under(cmd) {
                Ok(l) if l.iter().any(|n| n == LAYER_NAME) => {
                    Check::ok(RUN, format!("the loader finds {LAYER_NAME} through {found_where}"))
                }
                Ok(_) => Check::no(
                    RUN,
                    format!("{found_where} exists but the loader does not list {LAYER_NAME}"),
                    "VK_LOADER_DEBUG=all dynabuf doctor shows why",
                ),
                Err(e) => Check::no(RUN, e, "install libvulkan1"),
            });
        }
    }
    const INSTALLED: &str = "layer installed";
    if let Some(mut cmd) = self_command() {
        cmd.env_remove("VK_LAYER_PATH").env_remove("VK_ADD_LAYER_PATH");
        out.push(match layers_under(cmd) {
            Ok(l) if l.iter().any(|n| n == LAYER_NAME) => {
                let at = layer_env::find_installed().map(|f| f.manifest.display().to_string());
                let found = format!("the loader finds {LAYER_NAME} on its own search path");
                Check::ok(INSTALLED, at.map_or(found.clone(), |at| format!("{found} ({at})")))
            }
            Ok(_) => Check::no(
                INSTALLED,
                "not on the loader's search path",
                "scripts/install.sh, for applications started without dynabuf run (which needs no install)",
            ),
            Err(e) => Check::no(INSTALLED, e, "install libvulkan1"),
        });
    }
    out
}

/// Vulkan's checks, in order.
pub fn checks() -> Vec<Check> {
    let mut out = vulkan_checks();
    out.extend(layer_checks());
    out
}

/// `dynabuf list-instance-layers`: one layer name a line.
pub fn list_instance_layers() -> ExitCode {
    // SAFETY: as in `vulkan_checks`.
    let Ok(entry) = (unsafe { ash::Entry::load() }) else {
        eprintln!("cannot load libvulkan.so.1");
        return ExitCode::FAILURE;
    };
    // SAFETY: a valid entry.
    match unsafe { entry.enumerate_instance_layer_properties() } {
        Ok(layers) => {
            for l in layers {
                if let Ok(name) = l.layer_name_as_c_str() {
                    println!("{}", name.to_string_lossy());
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vkEnumerateInstanceLayerProperties: {e}");
            ExitCode::FAILURE
        }
    }
}
