//! Contact sheets of the demo's frames, written as PNG files (the `png`
//! crate): each frame in a grid cell framed green when the consumer saw
//! exactly the producer's frame and red when it did not, and sheets put
//! side by side.

use std::path::Path;

use crate::{Context, Error, Result};

const GAP: u32 = 6;
const BORDER: u32 = 3;
const BACKGROUND: [u8; 3] = [32, 32, 36];
const EXACT: [u8; 3] = [40, 200, 80];
const DIFFERS: [u8; 3] = [230, 40, 40];

/// An RGB picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// `width * height` RGB triples, row by row.
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn filled(width: u32, height: u32, colour: [u8; 3]) -> Self {
        Picture { width, height, rgb: colour.repeat((width * height) as usize) }
    }

    /// A `width`×`height` frame of RGBA8 texels as little-endian words
    /// (alpha dropped).
    pub fn from_rgba_words(width: u32, height: u32, texels: &[u32]) -> Self {
        let rgb = texels.iter().flat_map(|t| {
            let [r, g, b, _] = t.to_le_bytes();
            [r, g, b]
        });
        Picture { width, height, rgb: rgb.collect() }
    }

    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, colour: [u8; 3]) {
        for row in y..y + h {
            let start = ((row * self.width + x) * 3) as usize;
            for px in self.rgb[start..start + (w * 3) as usize].chunks_exact_mut(3) {
                px.copy_from_slice(&colour);
            }
        }
    }

    /// Copies `src` with its top-left corner at (`x`, `y`).
    fn blit(&mut self, src: &Picture, x: u32, y: u32) {
        let n = (src.width * 3) as usize;
        for row in 0..src.height {
            let from = (row * src.width * 3) as usize;
            let to = (((y + row) * self.width + x) * 3) as usize;
            self.rgb[to..to + n].copy_from_slice(&src.rgb[from..from + n]);
        }
    }
}

/// A grid of `frames` (all the same size), `columns` wide, each with a
/// border saying whether it was exact.
pub fn contact_sheet(frames: &[(Picture, bool)], columns: u32) -> Picture {
    let (fw, fh) = frames.first().map_or((0, 0), |(p, _)| (p.width, p.height));
    let columns = columns.clamp(1, frames.len().max(1) as u32);
    let rows = (frames.len() as u32).div_ceil(columns);
    let (cell_w, cell_h) = (fw + 2 * BORDER + GAP, fh + 2 * BORDER + GAP);
    let mut sheet = Picture::filled(GAP + columns * cell_w, GAP + rows * cell_h, BACKGROUND);
    for (i, (frame, exact)) in frames.iter().enumerate() {
        let (x, y) = (GAP + (i as u32 % columns) * cell_w, GAP + (i as u32 / columns) * cell_h);
        sheet.fill(x, y, fw + 2 * BORDER, fh + 2 * BORDER, if *exact { EXACT } else { DIFFERS });
        sheet.blit(frame, x + BORDER, y + BORDER);
    }
    sheet
}

/// `pictures` left to right, top-aligned, on the sheet background.
pub fn side_by_side(pictures: &[&Picture]) -> Picture {
    let width = pictures.iter().map(|p| p.width).sum::<u32>() + GAP * pictures.len().saturating_sub(1) as u32;
    let height = pictures.iter().map(|p| p.height).max().unwrap_or(0);
    let mut out = Picture::filled(width, height, BACKGROUND);
    let mut x = 0;
    for p in pictures {
        out.blit(p, x, 0);
        x += p.width + GAP;
    }
    out
}

/// Writes `picture` as an 8-bit RGB PNG.
pub fn write_png(path: &Path, picture: &Picture) -> Result<()> {
    let file = std::fs::File::create(path).ctx(&format!("create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), picture.width, picture.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().ctx("PNG header")?;
    writer.write_image_data(&picture.rgb).ctx("PNG data")?;
    writer.finish().ctx(&format!("write {}", path.display()))
}

/// Reads an 8-bit RGB PNG (as [`write_png`] writes them).
pub fn read_png(path: &Path) -> Result<Picture> {
    let file = std::fs::File::open(path).ctx(&format!("open {}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().ctx("PNG header")?;
    let mut rgb = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgb).ctx("PNG data")?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err(Error(format!(
            "{}: {:?} {:?}, not 8-bit RGB",
            path.display(),
            info.color_type,
            info.bit_depth
        )));
    }
    rgb.truncate(info.buffer_size());
    Ok(Picture { width: info.width, height: info.height, rgb })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_frames_each_picture_and_survives_a_png_round_trip() {
        let red = Picture::from_rgba_words(2, 2, &[0xff00_00ff; 4]);
        let blue = Picture::filled(2, 2, [0, 0, 255]);
        let sheet = contact_sheet(&[(red.clone(), true), (blue, false), (red, true)], 2);
        let cell = 2 + 2 * BORDER + GAP;
        assert_eq!((sheet.width, sheet.height), (GAP + 2 * cell, GAP + 2 * cell));
        let at = |p: &Picture, x: u32, y: u32| p.rgb[((y * p.width + x) * 3) as usize..][..3].to_vec();
        assert_eq!(at(&sheet, GAP, GAP), EXACT);
        assert_eq!(at(&sheet, GAP + BORDER, GAP + BORDER), [255, 0, 0]);
        assert_eq!(at(&sheet, GAP + cell, GAP), DIFFERS);
        assert_eq!(at(&sheet, GAP + cell + BORDER, GAP + BORDER), [0, 0, 255]);
        let both = side_by_side(&[&sheet, &sheet]);
        assert_eq!((both.width, both.height), (2 * sheet.width + GAP, sheet.height));
        let path = std::env::temp_dir().join(format!("dynabuf-sheet-{}.png", std::process::id()));
        write_png(&path, &both).unwrap();
        assert_eq!(read_png(&path).unwrap(), both);
        std::fs::remove_file(path).unwrap();
    }
}
