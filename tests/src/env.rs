//! Where the freshly built layer and the lavapipe driver are, and the
//! environment a child process needs to run under the layer, exactly as a
//! user would set it: `VK_LAYER_PATH` at the built manifest,
//! `VK_INSTANCE_LAYERS` naming the layer, `VK_DRIVER_FILES` at lavapipe.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The layer's name.
pub const LAYER_NAME: &str = "VK_LAYER_DYNABUF_dmabuf";
/// The manifest the layer's build writes next to the library.
pub const MANIFEST: &str = "VkLayer_dynabuf.json";

/// The directory holding the built layer and its manifest:
/// `DYNABUF_LAYER_DIR` if set, else the cargo profile directory this
/// executable was built into (`target/<profile>`).
pub fn layer_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DYNABUF_LAYER_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .skip(1)
        .take(3)
        .find(|d| d.join(MANIFEST).is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Whether the layer has been built where [`layer_dir`] looks.
pub fn layer_built() -> bool {
    layer_dir().join(MANIFEST).is_file() && layer_dir().join("libVkLayer_dynabuf.so").is_file()
}

/// The driver manifest to use: `DYNABUF_TEST_ICD` if set, else lavapipe's.
pub fn driver_files() -> Option<PathBuf> {
    if let Some(icd) = std::env::var_os("DYNABUF_TEST_ICD") {
        return Some(PathBuf::from(icd));
    }
    let dir = Path::new("/usr/share/vulkan/icd.d");
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("lvp_icd")))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Whether a child runs with the layer enabled through the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    On,
    Off,
}

/// Sets up `cmd`'s Vulkan environment: lavapipe (or `DYNABUF_TEST_ICD`),
/// the built layer on `VK_LAYER_PATH`, and `VK_INSTANCE_LAYERS` when
/// `layer` is on. Any `DYNABUF_*` of the parent is removed, so each test
/// says what it sets. Mesa's implicit device-select layer is turned off so
/// the layer under test is the only one.
pub fn vulkan_env(cmd: &mut Command, layer: Layer) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DYNABUF_") && k != "DYNABUF_LAYER_DIR" && k != "DYNABUF_TEST_ICD"
        {
            cmd.env_remove(k);
        }
    }
    if let Some(icd) = driver_files() {
        cmd.env("VK_DRIVER_FILES", icd);
    }
    cmd.env("VK_LAYER_PATH", layer_dir()).env("NODEVICE_SELECT", "1").env_remove("VK_LOADER_DEBUG");
    match layer {
        Layer::On => cmd.env("VK_INSTANCE_LAYERS", LAYER_NAME),
        Layer::Off => cmd.env_remove("VK_INSTANCE_LAYERS"),
    }
}

/// Sets this process's own Vulkan environment (for in-process clients such
/// as the benchmark, which enable the layer by name per instance).
pub fn set_process_env() {
    if let Some(icd) = driver_files() {
        std::env::set_var("VK_DRIVER_FILES", icd);
    }
    std::env::set_var("VK_LAYER_PATH", layer_dir());
    std::env::set_var("NODEVICE_SELECT", "1");
    std::env::remove_var("VK_INSTANCE_LAYERS");
}
