//! SPIR-V for the compute shaders in `shaders/`, compiled by `build.rs`.

/// `shaders/fill.comp`: `data[i] = hash(i, seed)`.
pub const FILL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fill.spv"));
/// `shaders/increment.comp`: `data[i] += seed`.
pub const INCREMENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/increment.spv"));

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
