//! Small multiples of line and point series over epochs: the training curves and the DAS
//! curves are both a few panels of this kind.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, font, Chart, DrawResult};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    /// A line with a marker at each point.
    Marked,
    /// Points only (a scatter of each epoch's samples).
    Points,
}

/// One series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// In the legend; empty: not listed.
    pub label: String,
    /// Palette index.
    pub colour: usize,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

/// One panel.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fixed y range; None: fitted to the data.
    pub y_range: Option<(f64, f64)>,
    /// Vertical markers (x, label): where the auto-weighted phase starts.
    pub marks: Vec<(f64, String)>,
    /// Horizontal reference lines (y, label): the entropy of a uniform policy.
    pub references: Vec<(f64, String)>,
    /// Where the legend goes: the corner the curves leave empty (a falling loss: upper right).
    pub legend: Corner,
}

/// A corner of a panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Corner {
    UpperRight,
    #[default]
    LowerRight,
    UpperLeft,
    LowerLeft,
}

/// Panels laid out in rows of `columns`, under a title.
#[derive(Debug, Clone)]
pub struct Panels {
    pub title: String,
    pub columns: usize,
    pub panels: Vec<Panel>,
}

const PANEL: (u32, u32) = (520, 340);
const TITLE: u32 = 40;

impl Chart for Panels {
    fn size(&self) -> (u32, u32) {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        (PANEL.0 * columns as u32, PANEL.1 * rows as u32 + TITLE)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.titled(&self.title, font(22.0))?;
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        let areas = root.split_evenly((rows, columns));
        for (panel, area) in self.panels.iter().zip(areas) {
            draw_panel(panel, &area)?;
        }
        Ok(())
    }
}

fn bounds(panel: &Panel) -> ((f64, f64), (f64, f64)) {
    let points = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let finite = |v: &f64| v.is_finite();
    let xs: Vec<f64> = points()
        .map(|p| p.0)
        .chain(panel.marks.iter().map(|m| m.0))
        .filter(finite)
        .collect();
    let ys: Vec<f64> = points()
        .map(|p| p.1)
        .chain(panel.references.iter().map(|r| r.0))
        .filter(finite)
        .collect();
    let span = |v: &[f64], pad: f64| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5 * pad.max(1e-3), hi + 0.5 * pad.max(1e-3))
        } else {
            (lo - (hi - lo) * pad, hi + (hi - lo) * pad)
        }
    };
    let (x0, x1) = span(&xs, 0.02);
    let y = panel.y_range.unwrap_or_else(|| span(&ys, 0.08));
    ((x0, x1), y)
}

fn draw_panel<DB: DrawingBackend>(panel: &Panel, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let ((x0, x1), (y0, y1)) = bounds(panel);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, font(17.0))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        // Epochs are whole: no label between them.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{:.0}", x)
            } else {
                String::new()
            }
        })
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    for (x, label) in &panel.marks {
        let style = BLACK.mix(0.5).stroke_width(1);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*x, y0), (*x, y1)],
            style,
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*x, y1),
            font(12.0).color(&BLACK.mix(0.7)),
        )))?;
    }
    for (y, label) in &panel.references {
        let style = BLACK.mix(0.4).stroke_width(1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, *y), (x1, *y)],
                style,
            )))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    let mut legend = false;
    for series in &panel.series {
        let c = colour(series.colour);
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let drawn = match series.style {
            Style::Line => chart.draw_series(LineSeries::new(points, c.stroke_width(2)))?,
            Style::Marked => {
                chart.draw_series(LineSeries::new(points, c.stroke_width(2)).point_size(3))?
            }
            Style::Points => chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, c.mix(0.6).filled())),
            )?,
        };
        if !series.label.is_empty() {
            legend = true;
            let style = series.style;
            drawn.label(series.label.clone()).legend(move |(x, y)| {
                if style == Style::Points {
                    Circle::new((x + 9, y), 3, c.filled()).into_dyn()
                } else {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)).into_dyn()
                }
            });
        }
    }
    if legend || !panel.references.is_empty() {
        chart
            .configure_series_labels()
            .position(match panel.legend {
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
                Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(font(12.0))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_every_point_mark_and_reference() {
        let panel = Panel {
            series: vec![Series {
                label: String::new(),
                colour: 0,
                style: Style::Line,
                points: vec![(1.0, 0.2), (3.0, 0.6), (f64::NAN, 9.0)],
            }],
            marks: vec![(4.0, "DAS".into())],
            references: vec![(1.1, "ln 3".into())],
            ..Panel::default()
        };
        let ((x0, x1), (y0, y1)) = bounds(&panel);
        assert!(x0 <= 1.0 && x1 >= 4.0, "{x0}..{x1}");
        assert!(y0 <= 0.2 && (1.1..9.0).contains(&y1), "{y0}..{y1}");
        // One flat series still gets a range to draw in.
        let flat = Panel {
            series: vec![Series {
                points: vec![(1.0, 0.5), (2.0, 0.5)],
                ..panel.series[0].clone()
            }],
            ..Panel::default()
        };
        let (_, (y0, y1)) = bounds(&flat);
        assert!(y0 < 0.5 && y1 > 0.5);
    }
}
