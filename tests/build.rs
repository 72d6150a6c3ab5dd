//! Compiles every GLSL shader in `shaders/` (compute `.comp`, vertex
//! `.vert`, fragment `.frag`) to SPIR-V with `glslangValidator` (Debian's
//! `glslang-tools`, the Khronos reference compiler), into OUT_DIR as
//! `NAME.STAGE.spv`; `src/shaders.rs` includes the results.

use std::path::PathBuf;
use std::process::Command;

const STAGES: &[&str] = &["comp", "vert", "frag"];

fn main() {
    let shader_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../shaders");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", shader_dir.display());
    let compiler = std::env::var("GLSLANG_VALIDATOR").unwrap_or_else(|_| "glslangValidator".into());
    let mut entries: Vec<_> = std::fs::read_dir(&shader_dir)
        .expect("shaders/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| STAGES.iter().any(|s| e == *s)))
        .collect();
    entries.sort();
    for src in entries {
        println!("cargo:rerun-if-changed={}", src.display());
        let mut name = src.file_name().unwrap().to_os_string();
        name.push(".spv");
        let out = out_dir.join(name);
        let status = Command::new(&compiler)
            .args(["-V", "--target-env", "vulkan1.1", "-o"])
            .arg(&out)
            .arg(&src)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {compiler} ({e}): install glslang-tools (scripts/setup-host.sh does)")
            });
        assert!(status.success(), "{compiler} failed on {}", src.display());
    }
}
