//! Figures for the report, drawn with `plotters` into a PNG (for the Markdown report) and an
//! SVG (for papers) from the same drawing code.
//!
//! Text is drawn with an embedded font (DejaVu Sans, cut down to the characters a report uses:
//! `assets/fonts/`), so a figure renders the same on a laptop and on a cluster node without
//! system fonts. Colours come from one palette, picked for contrast on white and for readers
//! with red–green colour blindness (Okabe & Ito).

pub mod boxplot;
pub mod lines;
pub mod overlay;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::atomic;
use crate::error::{Error, Result};

/// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(120, 120, 120), // grey
    RGBColor(240, 228, 66),  // yellow
];

/// The `i`-th series colour.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");

/// Make the embedded font the one plotters draws `sans-serif` with.
pub fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| {
        ok = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok();
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Internal("the embedded font does not load".into()))
    }
}

/// A figure that can draw itself on any plotters backend.
pub trait Chart {
    /// Width and height in pixels (the SVG's user units too).
    fn size(&self) -> (u32, u32);

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart drawn as PNG bytes and as SVG text.
pub struct Rendered {
    pub png: Vec<u8>,
    pub svg: String,
}

/// Draw `chart` on a white page, as PNG and as SVG.
pub fn render(chart: &impl Chart) -> Result<Rendered> {
    register_font()?;
    let (w, h) = chart.size();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        chart.draw(&root).map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        chart.draw(&root).map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(Rendered {
        png: encode_png(w, h, &rgb)?,
        svg,
    })
}

/// Draw a chart straight onto pixels already there (an RGB buffer of `size`): text and
/// legends over a composed image.
pub fn draw_over(rgb: &mut [u8], size: (u32, u32), chart: &impl Chart) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    chart.draw(&root).map_err(drawing)?;
    root.present().map_err(drawing)
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Internal(format!("drawing a figure: {e}"))
}

/// PNG bytes of an RGB image.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let encode = |e: png::EncodingError| Error::Internal(format!("encoding a PNG: {e}"));
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(rgb).map_err(encode)?;
    }
    Ok(bytes)
}

/// Write `<dir>/<name>.png` and `<dir>/<name>.svg` atomically; the PNG's path.
pub fn write(dir: &Path, name: &str, rendered: &Rendered) -> Result<PathBuf> {
    let png = dir.join(format!("{name}.png"));
    atomic::write_bytes(&png, &rendered.png)?;
    atomic::write_bytes(&dir.join(format!("{name}.svg")), rendered.svg.as_bytes())?;
    Ok(png)
}

/// A font of `size` pixels in the report's face.
pub fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Label;

    impl Chart for Label {
        fn size(&self) -> (u32, u32) {
            (120, 40)
        }

        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
            root.draw(&Text::new("Dice αβ ±", (5, 10), font(18.0)))
        }
    }

    #[test]
    fn text_draws_with_the_embedded_font_in_png_and_svg() {
        let rendered = render(&Label).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(rendered.png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut pixels).unwrap();
        assert_eq!((reader.info().width, reader.info().height), (120, 40));
        let dark = pixels.chunks(3).filter(|p| p[0] < 128).count();
        assert!(dark > 30, "the text left {dark} dark pixels");
        assert!(rendered.svg.contains("Dice αβ ±"), "{}", rendered.svg);
    }
}
