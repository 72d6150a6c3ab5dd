//! The CPU's side of image content: a dma-buf's bytes are a pattern of
//! 32-bit words (what a foreign writer puts there), a plane's texels are
//! found in them through its layout, and the GPU's writes are packed
//! planes; comparisons name the first wrong texel.

use super::{Plane, PlaneLayout};
use crate::shaders::fill_expected;
use crate::{Error, Result};

/// The content a dma-buf starts with, word `i`.
pub fn old(i: u32) -> u32 {
    fill_expected(i, 0x0c0f_fee0)
}

/// What a foreign writer puts there while it holds its fence.
pub fn new(i: u32) -> u32 {
    fill_expected(i, 0x5eed_f00d)
}

/// `len` bytes of the word pattern `f` (little endian).
pub fn pattern(f: impl Fn(u32) -> u32, len: u64) -> Vec<u8> {
    (0..len.div_ceil(4) as u32).flat_map(|i| f(i).to_le_bytes()).take(len as usize).collect()
}

/// The packed texels (no row padding) of `plane`, which lies in `bytes`
/// (its dma-buf's content) as `layout` says.
pub fn plane_bytes(bytes: &[u8], plane: &Plane, layout: &PlaneLayout) -> Result<Vec<u8>> {
    let row = plane.row_bytes() as usize;
    let mut out = Vec::with_capacity(plane.packed_bytes() as usize);
    for y in 0..u64::from(plane.height) {
        let start = (layout.offset + y * layout.row_pitch) as usize;
        let texels = bytes.get(start..start + row).ok_or_else(|| {
            Error(format!("row {y} of a plane at {layout:?} lies past the dma-buf's {} bytes", bytes.len()))
        })?;
        out.extend_from_slice(texels);
    }
    Ok(out)
}

/// What the GPU writes into plane `index` in round `round`: packed
/// texels, distinct per plane and round and from [`old`] and [`new`].
pub fn gpu_plane(index: usize, round: u32, plane: &Plane) -> Vec<u8> {
    let seed = 0x6a09_e667u32.wrapping_add(index as u32).wrapping_add(round.wrapping_mul(0x9e37_79b9));
    (0..plane.packed_bytes() as u32).map(|i| fill_expected(i, seed) as u8).collect()
}

/// The colour `vkCmdClearColorImage` writes in round `round` (float
/// channels that are exact 8-bit values).
pub fn clear_color(round: u32) -> [f32; 4] {
    [1.0, (round % 255 + 1) as f32 / 255.0, 0.0, 1.0]
}

/// The packed RGBA8 texels of a plane cleared to `color`.
pub fn cleared(plane: &Plane, color: [f32; 4]) -> Vec<u8> {
    let texel = color.map(|c| (c * 255.0).round() as u8);
    texel.iter().copied().cycle().take(plane.packed_bytes() as usize).collect()
}

/// `Err` naming the first texel of `plane` where `got` is not `want` (and
/// which of `others` it holds instead, when it holds one of them whole).
pub fn expect_plane(
    what: &str,
    plane: &Plane,
    got: &[u8],
    want: &[u8],
    others: &[(&str, &[u8])],
) -> Result<()> {
    if got == want {
        return Ok(());
    }
    let tb = plane.texel_bytes as usize;
    let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
    let texel = first / tb;
    let (x, y) = (texel % plane.width as usize, texel / plane.width as usize);
    let wrong = got.iter().zip(want).filter(|(g, w)| g != w).count();
    let instead = others.iter().find(|(_, o)| *o == got).map_or(String::new(), |(n, _)| format!(": all {n}"));
    let range = |b: &[u8]| format!("{:02x?}", b.get(texel * tb..(texel + 1) * tb).unwrap_or_default());
    Err(Error(format!(
        "{what}: texel ({x}, {y}) is {}, expected {} ({wrong} of {} bytes wrong{instead})",
        range(got),
        range(want),
        want.len()
    )))
}

/// Little-endian words of `bytes` (a multiple of 4 long), for a host buffer.
pub fn to_words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |w, b| (w << 8) | u32::from(*b))).collect()
}

/// The bytes of little-endian `words`.
pub fn to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
