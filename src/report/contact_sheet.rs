//! A contact sheet: every slice of a few cases in one PNG, so a person can look at data at a glance.
//!
//! One row per slice (cases one after another, a wider gap between cases), four tiles per row:
//! C0, DE, T2 in grey, then the labels in colour over a dimmed DE. Each sequence is windowed per
//! case between its 1st and 99.5th percentile. Label colours: myocardium green, LV blood red,
//! RV blood blue, edema yellow, scar magenta. Slices are drawn as viewers show them: x (axis 0)
//! to the right, y (axis 1) upwards.
//!
//! Cases are rendered as they are added, so the sheet holds only pixels, never volumes. Tiles
//! larger than [`MAX_TILE`] pixels are subsampled, and the sheet stops taking cases at
//! [`MAX_ROWS`] slices, which keeps it viewable and bounded in memory whatever the input.

use ndarray::Array3;

use crate::data::labels::Label;
use crate::data::phantom::Preview;
use crate::error::{Error, Result};

/// Largest tile side in pixels; bigger slices are subsampled by a whole factor.
pub const MAX_TILE: usize = 256;
/// Most slice rows on one sheet.
pub const MAX_ROWS: usize = 96;

const TILE_GAP: usize = 2;
const CASE_GAP: usize = 8;
const BACKGROUND: [u8; 3] = [24, 24, 24];

fn label_colour(code: u16) -> Option<[u8; 3]> {
    match Label::from_code(code)? {
        Label::Background => None,
        Label::Myocardium => Some([40, 190, 60]),
        Label::LvBlood => Some([220, 50, 40]),
        Label::RvBlood => Some([50, 100, 230]),
        Label::Edema => Some([245, 210, 0]),
        Label::Scar => Some([255, 60, 255]),
    }
}

/// The grey-level window of a volume: its 1st and 99.5th percentiles.
fn window(v: &Array3<f32>) -> (f32, f32) {
    let mut values: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let mut at = |q: f64| {
        let k = ((values.len() - 1) as f64 * q).round() as usize;
        *values.select_nth_unstable_by(k, f32::total_cmp).1
    };
    let (lo, hi) = (at(0.01), at(0.995));
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// One case's rendered rows.
struct Block {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// A sheet being built case by case.
#[derive(Default)]
pub struct ContactSheet {
    blocks: Vec<Block>,
    rows: usize,
}

impl ContactSheet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Render a case (C0, DE, T2 as `[x, y, z]`, labels optional) onto the sheet. Returns false,
    /// adding nothing, once the sheet is full.
    pub fn add_case(&mut self, images: &[Array3<f32>; 3], labels: Option<&Array3<u16>>) -> bool {
        let (nx, ny, nz) = images[0].dim();
        if self.rows + nz > MAX_ROWS || nx == 0 || ny == 0 {
            return false;
        }
        let step = nx.max(ny).div_ceil(MAX_TILE);
        let (tw, th) = (nx.div_ceil(step), ny.div_ceil(step));
        let width = 4 * tw + 5 * TILE_GAP;
        let height = nz * (th + TILE_GAP);
        let mut rgb = BACKGROUND.repeat(width * height);
        let mut put = |r: usize, c: usize, px: [u8; 3]| {
            let o = (r * width + c) * 3;
            rgb[o..o + 3].copy_from_slice(&px);
        };
        let windows = images.each_ref().map(window);
        for z in 0..nz {
            let top = z * (th + TILE_GAP);
            for (tx, x) in (0..nx).step_by(step).enumerate() {
                for (ty, y) in (0..ny).step_by(step).enumerate() {
                    let grey = |s: usize| {
                        let (lo, hi) = windows[s];
                        let v = (images[s][[x, y, z]] - lo) / (hi - lo);
                        (v.clamp(0.0, 1.0) * 255.0) as u8
                    };
                    let row = top + th - 1 - ty;
                    for s in 0..3 {
                        let g = grey(s);
                        put(row, TILE_GAP + s * (tw + TILE_GAP) + tx, [g, g, g]);
                    }
                    let base = grey(1) / 2;
                    let colour = labels
                        .and_then(|l| label_colour(l[[x, y, z]]))
                        .map(|c| c.map(|ch| ((ch as u16 * 3 + base as u16) / 4) as u8))
                        .unwrap_or([base, base, base]);
                    put(row, TILE_GAP + 3 * (tw + TILE_GAP) + tx, colour);
                }
            }
        }
        self.blocks.push(Block { width, height, rgb });
        self.rows += nz;
        true
    }

    /// The whole sheet as RGB rows: `(width, height, pixels)`.
    pub fn rgb(&self) -> (usize, usize, Vec<u8>) {
        let width = self.blocks.iter().map(|b| b.width).max().unwrap_or(0);
        let height = TILE_GAP
            + self.blocks.iter().map(|b| b.height).sum::<usize>()
            + self.blocks.len().saturating_sub(1) * CASE_GAP;
        let mut px = BACKGROUND.repeat(width * height);
        let mut top = TILE_GAP;
        for b in &self.blocks {
            for r in 0..b.height {
                let dst = ((top + r) * width) * 3;
                px[dst..dst + b.width * 3]
                    .copy_from_slice(&b.rgb[r * b.width * 3..(r + 1) * b.width * 3]);
            }
            top += b.height + CASE_GAP;
        }
        (width, height, px)
    }

    /// Encode the sheet as PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        if self.blocks.is_empty() {
            return Err(Error::Internal("contact sheet of no cases".into()));
        }
        let (w, h, rgb) = self.rgb();
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w as u32, h as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .and_then(|mut writer| writer.write_image_data(&rgb))
            .map_err(|e| Error::Internal(format!("PNG encoding: {e}")))?;
        Ok(out)
    }
}

/// A phantom run's preview: the sheet of its first cases with their labels.
impl Preview for ContactSheet {
    fn add_case(&mut self, images: &[Array3<f32>; 3], labels: &Array3<u16>) {
        ContactSheet::add_case(self, images, Some(labels));
    }

    fn png(&self) -> Result<Vec<u8>> {
        ContactSheet::png(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_has_a_row_per_slice_and_colours_labels() {
        // x runs over 5 columns, y over 6 rows (drawn bottom-up).
        let img = Array3::from_shape_fn((5, 6, 2), |(x, _, _)| x as f32);
        let mut labels = Array3::zeros((5, 6, 2));
        labels[[2, 3, 1]] = Label::Scar.code();
        let mut sheet = ContactSheet::new();
        assert!(sheet.add_case(&[img.clone(), img.clone(), img], Some(&labels)));
        let (w, h, px) = sheet.rgb();
        assert_eq!(w, 4 * 5 + 5 * TILE_GAP);
        assert_eq!(h, 2 * (6 + TILE_GAP) + TILE_GAP);
        // The scar voxel (x 2, y 3) of slice 1 sits in row 1's label tile, row 6 − 1 − 3 = 2.
        let (r, c) = (
            TILE_GAP + (6 + TILE_GAP) + 2,
            TILE_GAP + 3 * (5 + TILE_GAP) + 2,
        );
        let o = (r * w + c) * 3;
        let rgb = &px[o..o + 3];
        assert!(rgb[0] > 150 && rgb[1] < 120 && rgb[2] > 150, "{rgb:?}");
        assert_eq!(&sheet.png().unwrap()[1..4], b"PNG");
    }

    #[test]
    fn big_slices_are_subsampled_and_the_sheet_fills_up() {
        let big = Array3::<f32>::zeros((600, 30, 40));
        let mut sheet = ContactSheet::new();
        assert!(sheet.add_case(&[big.clone(), big.clone(), big.clone()], None));
        let (w, h, _) = sheet.rgb();
        // 600 px subsampled by 3 → 200-pixel tiles; 30 → 10 rows per slice.
        assert_eq!(w, 4 * 200 + 5 * TILE_GAP);
        assert_eq!(h, 40 * (10 + TILE_GAP) + TILE_GAP);
        assert!(sheet.add_case(&[big.clone(), big.clone(), big.clone()], None));
        assert!(
            !sheet.add_case(&[big.clone(), big.clone(), big], None),
            "over MAX_ROWS"
        );
        assert!(ContactSheet::new().png().is_err());
    }
}
