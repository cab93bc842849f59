//! Per-case scores per method as box plots with every case drawn as a point: one panel per
//! target, so a reader sees the spread and the outliers a mean ± std hides.
//!
//! Boxes are Tukey's: the quartiles (linear interpolation between order statistics, as NumPy's
//! default), the median, and whiskers to the furthest case within 1.5 IQR of the box.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, font, Chart, DrawResult};

/// One panel: a title and, per method, its per-case values.
pub struct Panel {
    pub title: String,
    pub methods: Vec<(String, Vec<f64>)>,
}

/// Box plots of a score in [0, 1] (Dice, Jaccard), one panel per target.
pub struct ScoreBoxes {
    pub y_label: String,
    pub panels: Vec<Panel>,
}

/// Tukey's five numbers of `values` (finite values only): whisker low, q1, median, q3, whisker
/// high. None without a finite value.
pub fn five_numbers(values: &[f64]) -> Option<[f64; 5]> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    let (q1, median, q3) = (quantile(0.25), quantile(0.5), quantile(0.75));
    let reach = 1.5 * (q3 - q1);
    // As matplotlib: a whisker never ends inside the box (with few cases the nearest value
    // within reach can lie between the quartiles).
    let low = v
        .iter()
        .copied()
        .find(|&x| x >= q1 - reach)
        .map_or(q1, |x| x.min(q1));
    let high = v
        .iter()
        .rev()
        .copied()
        .find(|&x| x <= q3 + reach)
        .map_or(q3, |x| x.max(q3));
    Some([low, q1, median, q3, high])
}

impl Chart for ScoreBoxes {
    fn size(&self) -> (u32, u32) {
        let methods = self
            .panels
            .iter()
            .map(|p| p.methods.len())
            .max()
            .unwrap_or(1);
        let panel_width = (120 + 90 * methods as u32).clamp(360, 900);
        (panel_width * self.panels.len().max(1) as u32, 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(areas) {
            self.draw_panel(panel, &area)?;
        }
        Ok(())
    }
}

impl ScoreBoxes {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &Panel,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let n = panel.methods.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, font(20.0))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..1.0)?;
        let names: Vec<&str> = panel.methods.iter().map(|(m, _)| m.as_str()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names
                        .get(i as usize)
                        .map_or(String::new(), |s| s.to_string())
                } else {
                    String::new()
                }
            })
            .x_label_style(font(15.0))
            .y_label_style(font(14.0))
            .y_desc(self.y_label.as_str())
            .axis_desc_style(font(15.0))
            .draw()?;
        let plot = chart.plotting_area();
        for (i, (_, values)) in panel.methods.iter().enumerate() {
            let x = i as f64;
            let c = colour(i);
            let Some([low, q1, median, q3, high]) = five_numbers(values) else {
                continue;
            };
            let half = 0.28;
            plot.draw(&Rectangle::new(
                [(x - half, q1), (x + half, q3)],
                c.mix(0.25).filled(),
            ))?;
            plot.draw(&Rectangle::new(
                [(x - half, q1), (x + half, q3)],
                c.stroke_width(2),
            ))?;
            plot.draw(&PathElement::new(
                vec![(x - half, median), (x + half, median)],
                c.stroke_width(3),
            ))?;
            for (from, to) in [(low, q1), (q3, high)] {
                plot.draw(&PathElement::new(
                    vec![(x, from), (x, to)],
                    c.stroke_width(2),
                ))?;
            }
            for end in [low, high] {
                plot.draw(&PathElement::new(
                    vec![(x - half / 2.0, end), (x + half / 2.0, end)],
                    c.stroke_width(2),
                ))?;
            }
            // Every case, spread sideways in a fixed pattern so equal values stay visible.
            for (k, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let dx = ((k * 7) % 11) as f64 / 10.0 - 0.5;
                plot.draw(&Circle::new(
                    (x + dx * 0.4, v.clamp(0.0, 1.0)),
                    4,
                    BLACK.mix(0.6).filled(),
                ))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_numbers_match_numpy_quartiles_and_tukey_whiskers() {
        // numpy.percentile([0.1, 0.5, 0.6, 0.7, 0.8], [25, 50, 75]) = [0.5, 0.6, 0.7]; the
        // IQR is 0.2, so 0.1 (< 0.5 − 0.3) is outside the low whisker.
        let [low, q1, median, q3, high] =
            five_numbers(&[0.8, 0.1, 0.6, 0.5, 0.7, f64::NAN]).unwrap();
        assert_eq!((q1, median, q3), (0.5, 0.6, 0.7));
        assert_eq!((low, high), (0.5, 0.8));
        assert_eq!(five_numbers(&[f64::NAN]), None);
        // Four cases, one far below: the quartiles interpolate (q1 0.485), the nearest value in
        // reach (0.59) lies inside the box, so the whisker stops at the box.
        let [low, q1, ..] = five_numbers(&[0.17, 0.59, 0.66, 0.68]).unwrap();
        assert!((q1 - 0.485).abs() < 1e-12 && low == q1, "{low} {q1}");
        assert_eq!(five_numbers(&[0.3]), Some([0.3; 5]));
    }
}
