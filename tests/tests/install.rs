//! `scripts/install.sh` puts the layer where the loader finds it without
//! `VK_LAYER_PATH`; the implicit manifest is on only with `DYNABUF_ENABLE=1`
//! and always off with `DYNABUF_DISABLE=1`. With
//! `DYNABUF_TEST_VALIDATION=below` the validation layer (found in the
//! system's layer directories, as the installed layer is in the prefix's)
//! runs below whatever the client has, and its messages are checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{check_validation, finish, require_layer};
use dynabuf_client::env::{instance_layers, layer_dir, vulkan_env_with, Layer, Validation};

fn install(prefix: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--prefix", prefix.to_str().unwrap(), "--implicit", "--from"])
        .arg(layer_dir())
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "install.sh failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Which object serves vkQueueSubmit for a client that finds layers only
/// in `prefix` (as a user's `~/.local`).
fn submit_served_by(prefix: &Path, envs: &[(&str, &str)]) -> String {
    let validation = Validation::from_env();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynabuf-client"));
    vulkan_env_with(&mut cmd, Layer::Off, validation)
        .arg("probe")
        .env_remove("VK_LAYER_PATH")
        .env("XDG_DATA_HOME", prefix.join("share"))
        .env("HOME", prefix);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let run = finish(cmd.output().expect("run client"));
    // Whether dynabuf is on depends on the switches; the validation layer
    // is below it either way.
    check_validation(&format!("dynabuf-client probe with {envs:?}"), Layer::On, validation, &run);
    assert!(run.ok, "{}\n{}", run.status, run.stderr);
    run.value("vkQueueSubmit").unwrap_or_else(|| "none".into())
}

#[test]
fn installed_layer_is_found_and_implicit_manifest_obeys_its_switches() {
    require_layer();
    let prefix: PathBuf = std::env::temp_dir().join(format!("dynabuf-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    install(&prefix);
    let installed = prefix.join("lib/dynabuf/libVkLayer_dynabuf.so");
    assert!(installed.is_file());
    let manifest =
        std::fs::read_to_string(prefix.join("share/vulkan/explicit_layer.d/VkLayer_dynabuf.json")).unwrap();
    assert!(manifest.contains(installed.to_str().unwrap()), "library_path must be absolute: {manifest}");

    let ours = installed.to_str().unwrap().to_string();
    assert_ne!(submit_served_by(&prefix, &[]), ours, "the implicit layer must be off by default");
    let by_name = instance_layers(Layer::On, Validation::from_env()).unwrap();
    assert_eq!(submit_served_by(&prefix, &[("VK_INSTANCE_LAYERS", &by_name)]), ours);
    assert_eq!(submit_served_by(&prefix, &[("DYNABUF_ENABLE", "1")]), ours);
    assert_ne!(submit_served_by(&prefix, &[("DYNABUF_ENABLE", "1"), ("DYNABUF_DISABLE", "1")]), ours);
    let _ = std::fs::remove_dir_all(&prefix);
}
