//! A contact sheet: every slice of a few cases in one PNG, so a person can look at data at a glance.
//!
//! One row per slice (cases one after another, a wider gap between cases), four tiles per row:
//! C0, DE, T2 in grey, then the labels in colour over a dimmed DE. Each sequence is windowed per
//! case between its 1st and 99.5th percentile. Label colours: myocardium green, LV blood red,
//! RV blood blue, edema yellow, scar magenta. Slices are drawn as viewers show them: x (axis 0)
//! to the right, y (axis 1) upwards.

use ndarray::Array3;

use crate::data::labels::Label;
use crate::error::{Error, Result};

/// One case to draw: C0, DE, T2 as `[x, y, z]`, and labels if it has them.
pub struct SheetCase {
    pub images: [Array3<f32>; 3],
    pub labels: Option<Array3<u16>>,
}

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
    values.sort_by(f32::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.995));
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// Render the sheet as RGB rows: `(width, height, pixels)`.
pub fn render_rgb(cases: &[SheetCase]) -> (usize, usize, Vec<u8>) {
    let tile = cases
        .iter()
        .map(|c| c.images[0].dim())
        .fold((0, 0), |acc, (x, y, _)| (acc.0.max(y), acc.1.max(x)));
    let (th, tw) = tile;
    let width = 4 * tw + 5 * TILE_GAP;
    let rows: usize = cases.iter().map(|c| c.images[0].dim().2).sum();
    let height = rows * (th + TILE_GAP) + cases.len().saturating_sub(1) * CASE_GAP + TILE_GAP;
    let mut px = vec![0u8; width * height * 3];
    for chunk in px.chunks_mut(3) {
        chunk.copy_from_slice(&BACKGROUND);
    }
    let mut put = |r: usize, c: usize, rgb: [u8; 3]| {
        let o = (r * width + c) * 3;
        px[o..o + 3].copy_from_slice(&rgb);
    };

    let mut top = TILE_GAP;
    for case in cases {
        let windows = case.images.each_ref().map(window);
        let (nx, ny, nz) = case.images[0].dim();
        for z in 0..nz {
            for x in 0..nx {
                for y in 0..ny {
                    let grey = |s: usize| {
                        let (lo, hi) = windows[s];
                        let v = (case.images[s][[x, y, z]] - lo) / (hi - lo);
                        (v.clamp(0.0, 1.0) * 255.0) as u8
                    };
                    let row = top + ny - 1 - y;
                    for s in 0..3 {
                        let g = grey(s);
                        put(row, TILE_GAP + s * (tw + TILE_GAP) + x, [g, g, g]);
                    }
                    let base = grey(1) / 2;
                    let colour = case
                        .labels
                        .as_ref()
                        .and_then(|l| label_colour(l[[x, y, z]]))
                        .map(|c| c.map(|ch| ((ch as u16 * 3 + base as u16) / 4) as u8))
                        .unwrap_or([base, base, base]);
                    put(row, TILE_GAP + 3 * (tw + TILE_GAP) + x, colour);
                }
            }
            top += th + TILE_GAP;
        }
        top += CASE_GAP;
    }
    (width, height, px)
}

/// Render the sheet and encode it as PNG.
pub fn render_png(cases: &[SheetCase]) -> Result<Vec<u8>> {
    if cases.is_empty() {
        return Err(Error::Internal("contact sheet of no cases".into()));
    }
    let (w, h, rgb) = render_rgb(cases);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_has_a_row_per_slice_and_colours_labels() {
        // x runs over 5 columns, y over 6 rows (drawn bottom-up).
        let img = Array3::from_shape_fn((5, 6, 2), |(x, _, _)| x as f32);
        let mut labels = Array3::zeros((5, 6, 2));
        labels[[2, 3, 1]] = Label::Scar.code();
        let case = SheetCase {
            images: [img.clone(), img.clone(), img],
            labels: Some(labels),
        };
        let (w, h, px) = render_rgb(&[case]);
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
        let png = render_png(&[SheetCase {
            images: [
                Array3::zeros((4, 4, 1)),
                Array3::zeros((4, 4, 1)),
                Array3::zeros((4, 4, 1)),
            ],
            labels: None,
        }])
        .unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
