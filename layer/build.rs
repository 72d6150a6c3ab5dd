//! Writes the layer's JSON manifest next to the built library, so
//! `VK_LAYER_PATH=target/<profile>` finds the freshly built layer.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let template_path = manifest_dir.join("../manifest/VkLayer_dynabuf.json.in");
    println!("cargo:rerun-if-changed={}", template_path.display());
    let template = std::fs::read_to_string(&template_path).expect("manifest template");
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: the library lands
    // in target/<profile>.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let Some(profile_dir) = out_dir.ancestors().nth(3).map(Path::to_path_buf) else {
        return;
    };
    let manifest = template
        .replace("@LIBRARY_PATH@", "./libVkLayer_dynabuf.so")
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    let _ = std::fs::write(profile_dir.join("VkLayer_dynabuf.json"), manifest);
}
