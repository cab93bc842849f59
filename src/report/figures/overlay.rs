//! Test slices with contours: for each chosen slice, the LGE image with the ground truth's
//! contours, then each method's prediction, then each ensemble's agreement map — one row per
//! slice, named by case and slice, with a legend.
//!
//! Contours are of nested regions, as the metrics are: myocardium (normal myocardium, edema and
//! scar), scar + edema, scar. Slices are drawn as viewers show them: x (axis 0) to the right, y
//! (axis 1) upwards; the LGE is windowed per slice between its 1st and 99.5th percentile.

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_over, encode_png, font, Chart, DrawResult};
use crate::data::labels::Target;
use crate::error::{Error, Result};

/// One row of the figure.
pub struct SliceRow {
    pub case: String,
    /// 0-based slice index (z).
    pub slice: usize,
    /// The LGE (DE) slice, `[x, y]`.
    pub lge: Array2<f32>,
    pub reference: Array2<u16>,
    /// Method name and its prediction of this slice.
    pub predictions: Vec<(String, Array2<u16>)>,
    /// Ensemble name and its members' agreement with the vote per pixel, in [0, 1].
    pub agreement: Vec<(String, Array2<f32>)>,
}

/// The contoured regions, outermost first, with their colours.
pub const REGIONS: [(Target, &str, [u8; 3]); 3] = [
    (Target::Myo, "myocardium", [0, 200, 80]),
    (Target::ScarEdema, "scar + edema", [255, 210, 0]),
    (Target::Scar, "scar", [255, 40, 200]),
];

const GAP: usize = 6;
const HEADER: usize = 34;
const ROW_LABEL: usize = 150;
const LEGEND: usize = 40;
/// Tile side in pixels.
const TILE: usize = 200;

/// The figure as PNG bytes. Slices may differ in shape (cases do); within a row every image
/// must have the slice's shape, and every row the same columns.
pub fn render_png(rows: &[SliceRow]) -> Result<Vec<u8>> {
    let first = rows
        .first()
        .ok_or_else(|| Error::Internal("an overlay figure of no slices".into()))?;
    let columns = 1 + first.predictions.len() + first.agreement.len();
    let width = ROW_LABEL + columns * (TILE + GAP);
    let height = HEADER + rows.len() * (TILE + GAP) + LEGEND;
    let mut canvas = Canvas {
        width,
        rgb: vec![255; width * height * 3],
    };
    for (r, row) in rows.iter().enumerate() {
        check_shapes(row, first)?;
        let view = View::around_heart(&row.reference);
        let top = HEADER + r * (TILE + GAP);
        let (lo, hi) = window(&row.lge);
        let grey = |x: usize, y: usize| ((row.lge[[x, y]] - lo) / (hi - lo)).clamp(0.0, 1.0);
        let labelled = std::iter::once(&row.reference).chain(row.predictions.iter().map(|p| &p.1));
        for (c, labels) in labelled.enumerate() {
            let left = ROW_LABEL + c * (TILE + GAP);
            canvas.tile(left, top, &view, |x, y| {
                let g = (grey(x, y) * 255.0) as u8;
                [g, g, g]
            });
            for (target, _, colour) in REGIONS {
                canvas.contour(left, top, &view, colour, |x, y| {
                    target.contains(labels[[x, y]])
                });
            }
        }
        for (k, (_, agreement)) in row.agreement.iter().enumerate() {
            let left = ROW_LABEL + (1 + row.predictions.len() + k) * (TILE + GAP);
            canvas.tile(left, top, &view, |x, y| {
                agreement_colour(agreement[[x, y]], grey(x, y))
            });
        }
    }
    let text = Labels {
        rows,
        size: (width as u32, height as u32),
    };
    draw_over(&mut canvas.rgb, text.size, &text)?;
    encode_png(width as u32, height as u32, &canvas.rgb)
}

/// The square of a slice a tile shows: around the heart (the reference's myocardium, with as
/// much again around it), or the whole slice when the reference has none.
struct View {
    /// Lowest x and y shown, and the side in voxels.
    x0: usize,
    y0: usize,
    side: usize,
    /// The slice's (nx, ny).
    shape: (usize, usize),
}

impl View {
    fn around_heart(reference: &Array2<u16>) -> View {
        let (nx, ny) = reference.dim();
        let whole = View {
            x0: 0,
            y0: 0,
            side: nx.max(ny),
            shape: (nx, ny),
        };
        let mut bounds: Option<(usize, usize, usize, usize)> = None;
        for ((x, y), &code) in reference.indexed_iter() {
            if Target::Myo.contains(code) {
                let b = bounds.get_or_insert((x, x, y, y));
                *b = (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y));
            }
        }
        let Some((x_lo, x_hi, y_lo, y_hi)) = bounds else {
            return whole;
        };
        let side = ((x_hi - x_lo).max(y_hi - y_lo) + 1) * 2;
        let side = side.max(16).min(nx.min(ny));
        let centre = |lo: usize, hi: usize, n: usize| {
            (lo + hi).div_ceil(2).saturating_sub(side / 2).min(n - side)
        };
        View {
            x0: centre(x_lo, x_hi, nx),
            y0: centre(y_lo, y_hi, ny),
            side,
            shape: (nx, ny),
        }
    }

    /// The voxel under tile pixel (u right, v down), or None outside the slice.
    fn voxel(&self, u: usize, v: usize) -> Option<(usize, usize)> {
        let (nx, ny) = self.shape;
        let x = self.x0 + u * self.side / TILE;
        // y upwards: the tile's top row is the view's highest y.
        let y = (self.y0 + self.side).checked_sub(1 + v * self.side / TILE)?;
        (x < nx && y < ny).then_some((x, y))
    }
}

fn check_shapes(row: &SliceRow, first: &SliceRow) -> Result<()> {
    let shape = row.lge.dim();
    let same = row.reference.dim() == shape
        && row.predictions.iter().all(|(_, p)| p.dim() == shape)
        && row.agreement.iter().all(|(_, a)| a.dim() == shape)
        && row.predictions.len() == first.predictions.len()
        && row.agreement.len() == first.agreement.len();
    if same {
        Ok(())
    } else {
        Err(Error::case(
            &row.case,
            format!(
                "slice {}: an image differs from the LGE's {}×{} (or the columns differ)",
                row.slice + 1,
                shape.0,
                shape.1
            ),
        ))
    }
}

/// Agreement 1 (every member voted the label) is dark; lower agreement is brighter, through
/// orange to red at one half, over the faint LGE.
fn agreement_colour(a: f32, grey: f32) -> [u8; 3] {
    let disagreement = ((1.0 - a) * 2.0).clamp(0.0, 1.0);
    let base = 40.0 + 50.0 * grey;
    let mix = |hot: f32| (base + (hot - base) * disagreement) as u8;
    [mix(255.0), mix(140.0 - 100.0 * disagreement), mix(0.0)]
}

/// The 1st and 99.5th percentiles (a flat slice gets a unit window).
fn window(slice: &Array2<f32>) -> (f32, f32) {
    let mut v: Vec<f32> = slice.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.995));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

struct Canvas {
    width: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn put(&mut self, row: usize, col: usize, px: [u8; 3]) {
        let o = (row * self.width + col) * 3;
        self.rgb[o..o + 3].copy_from_slice(&px);
    }

    /// Fill a tile from a per-voxel colour (nearest voxel; white outside the slice).
    fn tile(
        &mut self,
        left: usize,
        top: usize,
        view: &View,
        colour: impl Fn(usize, usize) -> [u8; 3],
    ) {
        for v in 0..TILE {
            for u in 0..TILE {
                if let Some((x, y)) = view.voxel(u, v) {
                    self.put(top + v, left + u, colour(x, y));
                }
            }
        }
    }

    /// Draw the outline of a region: the tile pixels inside it next to one outside (or the
    /// slice's edge), two pixels wide.
    fn contour(
        &mut self,
        left: usize,
        top: usize,
        view: &View,
        colour: [u8; 3],
        inside: impl Fn(usize, usize) -> bool,
    ) {
        let at = |u: isize, v: isize| -> bool {
            if u < 0 || v < 0 || u >= TILE as isize || v >= TILE as isize {
                return false;
            }
            view.voxel(u as usize, v as usize)
                .is_some_and(|(x, y)| inside(x, y))
        };
        for v in 0..TILE as isize {
            for u in 0..TILE as isize {
                if at(u, v)
                    && (1..=2)
                        .any(|d| !at(u - d, v) || !at(u + d, v) || !at(u, v - d) || !at(u, v + d))
                {
                    self.put(top + v as usize, left + u as usize, colour);
                }
            }
        }
    }
}

/// Column titles, row names and the legend, drawn over the composed tiles.
struct Labels<'a> {
    rows: &'a [SliceRow],
    size: (u32, u32),
}

impl Chart for Labels<'_> {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (tw, th) = (TILE, TILE);
        let first = &self.rows[0];
        let titles = std::iter::once("ground truth".to_string())
            .chain(first.predictions.iter().map(|(m, _)| m.clone()))
            .chain(
                first
                    .agreement
                    .iter()
                    .map(|(m, _)| format!("{m}: agreement")),
            );
        for (c, title) in titles.enumerate() {
            let x = (ROW_LABEL + c * (tw + GAP)) as i32;
            root.draw(&Text::new(title, (x + 4, 8), font(17.0)))?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = (HEADER + r * (th + GAP) + th / 2) as i32;
            root.draw(&Text::new(row.case.clone(), (6, y - 18), font(14.0)))?;
            root.draw(&Text::new(
                format!("slice {}", row.slice + 1),
                (6, y + 2),
                font(14.0),
            ))?;
        }
        let y = (HEADER + self.rows.len() * (th + GAP) + 10) as i32;
        let mut x = ROW_LABEL as i32;
        for (_, name, [r, g, b]) in REGIONS {
            root.draw(&Rectangle::new(
                [(x, y + 2), (x + 14, y + 16)],
                RGBColor(r, g, b).filled(),
            ))?;
            root.draw(&Text::new(name, (x + 20, y), font(15.0)))?;
            x += 40 + 9 * name.len() as i32;
        }
        if !first.agreement.is_empty() {
            let note = "agreement: dark = every member, red = half of them";
            root.draw(&Text::new(note, (x + 20, y), font(15.0)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut px = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut px).unwrap();
        (reader.info().width, reader.info().height, px)
    }

    #[test]
    fn contours_of_each_region_appear_in_their_colour() {
        let (nx, ny) = (20, 20);
        let lge = Array2::from_shape_fn((nx, ny), |(x, y)| (x + y) as f32);
        // A myocardium ring square with scar in one corner of it.
        let labels = Array2::from_shape_fn((nx, ny), |(x, y)| {
            let ring = (5..15).contains(&x) && (5..15).contains(&y);
            match (ring, x < 8 && y < 8) {
                (true, true) => 2221,
                (true, false) => 200,
                _ => 0,
            }
        });
        let row = SliceRow {
            case: "myops_training_101".into(),
            slice: 2,
            lge,
            reference: labels.clone(),
            predictions: vec![("base".into(), Array2::zeros((nx, ny)))],
            agreement: vec![],
        };
        let (w, h, px) = decode(&render_png(&[row]).unwrap());
        assert_eq!(w as usize, ROW_LABEL + 2 * (TILE + GAP));
        assert_eq!(h as usize, HEADER + TILE + GAP + LEGEND);
        let count = |c: [u8; 3]| px.chunks(3).filter(|p| *p == c).count();
        assert!(count(REGIONS[0].2) > 100, "myocardium contour");
        assert!(count(REGIONS[2].2) > 50, "scar contour");
        // The empty prediction's tile has no contour: every contour pixel lies in the
        // ground-truth column.
        let tile_right = ROW_LABEL + TILE;
        let stray = px.chunks(3).enumerate().filter(|(i, p)| {
            *p == REGIONS[0].2
                && (i % w as usize) > tile_right
                && (i / w as usize) < h as usize - LEGEND
        });
        assert_eq!(stray.count(), 0);
    }

    #[test]
    fn a_prediction_of_another_shape_is_refused_naming_the_case() {
        let row = |n: usize, p: usize| SliceRow {
            case: format!("case{n}"),
            slice: 0,
            lge: Array2::zeros((n, n)),
            reference: Array2::zeros((n, n)),
            predictions: vec![("base".into(), Array2::zeros((p, p)))],
            agreement: vec![],
        };
        // Cases of different sizes share a figure.
        assert!(render_png(&[row(8, 8), row(12, 12)]).is_ok());
        let e = render_png(&[row(8, 8), row(9, 10)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("case9"), "{e}");
    }
}
