//! SPIR-V for the shaders in `shaders/`, compiled by `build.rs`.

macro_rules! spirv {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".spv"))
    };
}

/// `shaders/fill.comp`: `data[i] = hash(i, seed)`.
pub const FILL: &[u8] = spirv!("fill.comp");
/// `shaders/increment.comp`: `data[i] += seed`.
pub const INCREMENT: &[u8] = spirv!("increment.comp");
/// `shaders/scene.vert`: the demo producer's background and pinwheel blades.
pub const SCENE_VERT: &[u8] = spirv!("scene.vert");
/// `shaders/scene.frag`: their colours (a Julia set behind the blades).
pub const SCENE_FRAG: &[u8] = spirv!("scene.frag");
/// `shaders/sample.comp`: the demo consumer's sampling of the shared image.
pub const SAMPLE: &[u8] = spirv!("sample.comp");

/// The CPU twin of `fill.comp`.
pub fn fill_expected(i: u32, seed: u32) -> u32 {
    let mut x = i.wrapping_mul(2654435761) ^ seed;
    x ^= x >> 15;
    x = x.wrapping_mul(2246822519);
    x ^= x >> 13;
    x = x.wrapping_mul(3266489917);
    x ^= x >> 16;
    x
}

/// SPIR-V bytes as the words `vkCreateShaderModule` wants.
pub fn words(spv: &[u8]) -> Vec<u32> {
    spv.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
