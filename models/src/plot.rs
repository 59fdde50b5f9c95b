//! Training curves as PNG: one panel per quantity (loss, accuracy, ...), the training series
//! in blue and the validation series in orange, with axis ranges and epoch ticks labelled.

use crate::error::{DataError, Result};
use std::path::Path;

/// A series to draw: a name and one value per epoch.
pub struct Series<'a> {
    /// Shown in the panel title (`loss`, `val_loss`, ...).
    pub name: &'a str,
    /// Values, one per epoch (NaN: none that epoch).
    pub values: &'a [f64],
}

/// An RGB raster.
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB bytes.
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line, `thick` pixels wide.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3], thick: i64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
            for dx in 0..thick {
                for dy in 0..thick {
                    self.set(x + dx - thick / 2, y + dy - thick / 2, c);
                }
            }
        }
    }

    /// Text in the `font8x8` bitmap font, top-left at `(x, y)`: each character is a square of
    /// `4 * scale` pixels (the glyph resampled to it, nearest pixel), so `scale` 2 is the font's
    /// own 8x8 size. Characters outside its basic Latin set are drawn as `?`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: [u8; 3]) {
        let side = 4 * scale.max(1);
        for (k, ch) in s.chars().enumerate() {
            let g = crate::vision::draw::glyph(ch);
            for v in 0..side {
                let bits = g[(v * 8 / side) as usize];
                for u in 0..side {
                    if bits >> (u * 8 / side) & 1 == 1 {
                        self.set(x + k as i64 * side + u, y + v, c);
                    }
                }
            }
        }
    }

    /// The canvas as 8-bit RGB PNG bytes (to write atomically).
    pub fn png_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let fmt = |e: png::EncodingError| DataError::value("PNG", format!("cannot encode: {e}"));
        let mut w = enc.write_header().map_err(fmt)?;
        w.write_image_data(&self.rgb).map_err(fmt)?;
        w.finish().map_err(fmt)?;
        Ok(out)
    }

    /// Writes the canvas as an 8-bit RGB PNG, atomically (nothing half-written on error).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        crate::tasks::output::write_atomic(path, &self.png_bytes()?)
    }
}

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];
const GREY: [u8; 3] = [120, 120, 120];
const BLACK: [u8; 3] = [0, 0, 0];

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Draws panels side by side, each with a training series and optionally its validation
/// series, and writes them to `path` as PNG.
pub fn training_curves(path: &Path, panels: &[(Series<'_>, Option<Series<'_>>)]) -> Result<()> {
    let (pw, ph) = (420usize, 300usize);
    let mut c = Canvas::new(pw * panels.len().max(1), ph);
    for (p, (train, val)) in panels.iter().enumerate() {
        let ox = (p * pw) as f64;
        let (l, r, t, b) = (ox + 60.0, ox + pw as f64 - 20.0, 40.0, ph as f64 - 40.0);
        let all: Vec<f64> = train
            .values
            .iter()
            .chain(val.iter().flat_map(|v| v.values.iter()))
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let (mut lo, mut hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            hi = lo + 1.0;
        }
        let n = train
            .values
            .len()
            .max(val.as_ref().map_or(0, |v| v.values.len()))
            .max(2);
        let px = |i: usize| l + (r - l) * i as f64 / (n - 1) as f64;
        let py = |v: f64| b - (b - t) * (v - lo) / (hi - lo);
        c.line((l, t), (l, b), BLACK, 1);
        c.line((l, b), (r, b), BLACK, 1);
        // Epoch labels far enough apart to read: every `step`-th (1, 2, 5, 10, 20, 50, ...).
        let width = 12.0 * (n.to_string().len() as f64) + 8.0;
        let spacing = (r - l) / (n - 1) as f64;
        let step = (0..)
            .flat_map(|e| [1usize, 2, 5].map(|m| m * 10usize.pow(e)))
            .find(|&s| s as f64 * spacing >= width || s >= n)
            .unwrap_or(n);
        for i in (0..n).filter(|i| (i + 1) % step == 0 || *i == 0) {
            c.line((px(i), b), (px(i), b + 4.0), BLACK, 1);
            c.text(px(i) as i64 - 2, b as i64 + 8, &(i + 1).to_string(), 2, BLACK);
        }
        c.text(l as i64 - 55, t as i64 - 4, &short(hi), 2, BLACK);
        c.text(l as i64 - 55, b as i64 - 8, &short(lo), 2, BLACK);
        c.text(r as i64 - 60, b as i64 + 24, "epoch", 2, GREY);
        c.text(l as i64, 10, train.name, 3, BLUE);
        if let Some(v) = val {
            c.text(l as i64 + (train.name.len() as i64 + 1) * 12, 10, v.name, 3, ORANGE);
        }
        // A non-finite value is an epoch without a figure (a held-out score taken every few
        // epochs): the line joins the finite points across it.
        for (s, color) in std::iter::once((train, BLUE)).chain(val.iter().map(|v| (v, ORANGE))) {
            let points: Vec<(f64, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| (px(i), py(v)))
                .collect();
            for w in points.windows(2) {
                c.line(w[0], w[1], color, 2);
            }
            for &(x, y) in &points {
                c.line((x - 2.0, y), (x + 2.0, y), color, 3);
            }
        }
    }
    c.save_png(path)
}

/// One curve of a [`line_plot`].
pub struct Curve<'a> {
    /// Shown in the legend.
    pub name: &'a str,
    /// The points, in drawing order.
    pub points: &'a [(f64, f64)],
}

/// The frame of a [`line_plot`].
pub struct Axes<'a> {
    /// Shown above the plot.
    pub title: &'a str,
    /// Under the x axis.
    pub x_label: &'a str,
    /// Beside the y axis.
    pub y_label: &'a str,
    /// `(low, high)` of x; with `log_x`, both positive (points below `low` are drawn at it).
    pub x_range: (f64, f64),
    /// `(low, high)` of y.
    pub y_range: (f64, f64),
    /// A logarithmic x axis with a tick per decade.
    pub log_x: bool,
}

/// Colours of successive curves.
const PALETTE: [[u8; 3]; 5] = [BLUE, ORANGE, [44, 160, 44], [214, 39, 40], [148, 103, 189]];

/// A line plot of `curves` in `axes` (e.g. ROC curves), 560x440, with a legend; PNG via
/// [`Canvas::png_bytes`]. A degenerate range is widened to a unit one.
pub fn line_plot(axes: &Axes<'_>, curves: &[Curve<'_>]) -> Canvas {
    let (w, h) = (560.0, 440.0);
    let mut c = Canvas::new(w as usize, h as usize);
    let (l, r, t, b) = (70.0, w - 20.0, 40.0, h - 50.0);
    let fx = |x: f64| if axes.log_x { x.max(axes.x_range.0).log10() } else { x };
    let (x0, mut x1) = (fx(axes.x_range.0), fx(axes.x_range.1));
    let (y0, mut y1) = axes.y_range;
    if (x1 - x0).partial_cmp(&1e-12) != Some(std::cmp::Ordering::Greater) {
        x1 = x0 + 1.0;
    }
    if (y1 - y0).partial_cmp(&1e-12) != Some(std::cmp::Ordering::Greater) {
        y1 = y0 + 1.0;
    }
    let px = |x: f64| l + (r - l) * ((fx(x) - x0) / (x1 - x0)).clamp(0.0, 1.0);
    let py = |y: f64| b - (b - t) * ((y - y0) / (y1 - y0)).clamp(0.0, 1.0);
    c.line((l, t), (l, b), BLACK, 1);
    c.line((l, b), (r, b), BLACK, 1);
    let ticks: Vec<f64> = if axes.log_x {
        (x0.ceil() as i64..=x1.floor() as i64)
            .map(|e| 10f64.powi(e as i32))
            .collect()
    } else {
        (0..=4)
            .map(|i| axes.x_range.0 + (axes.x_range.1 - axes.x_range.0) * i as f64 / 4.0)
            .collect()
    };
    for x in ticks {
        c.line((px(x), b), (px(x), b + 4.0), BLACK, 1);
        c.line((px(x), t), (px(x), b), [225, 225, 225], 1);
        let label = if axes.log_x {
            format!("1e{}", x.log10().round())
        } else {
            short(x)
        };
        c.text(px(x) as i64 - 8, b as i64 + 8, &label, 2, BLACK);
    }
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        c.line((l - 4.0, py(y)), (l, py(y)), BLACK, 1);
        c.text(l as i64 - 50, py(y) as i64 - 4, &short(y), 2, BLACK);
    }
    c.text(l as i64, 10, axes.title, 3, BLACK);
    c.text(
        r as i64 - 8 * axes.x_label.len() as i64,
        b as i64 + 28,
        axes.x_label,
        2,
        GREY,
    );
    c.text(4, t as i64 - 20, axes.y_label, 2, GREY);
    for (k, curve) in curves.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for p in curve.points.windows(2) {
            c.line((px(p[0].0), py(p[0].1)), (px(p[1].0), py(p[1].1)), color, 2);
        }
        let ly = b - 20.0 - 18.0 * (curves.len() - 1 - k) as f64;
        c.line((r - 200.0, ly), (r - 180.0, ly), color, 3);
        c.text(r as i64 - 172, ly as i64 - 4, curve.name, 2, color);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_plot_draws_each_curve_in_its_colour() {
        let roc = [(0.0, 0.0), (0.001, 0.6), (0.01, 0.9), (1.0, 1.0)];
        let diag = [(0.001, 0.001), (1.0, 1.0)];
        let axes = Axes {
            title: "roc",
            x_label: "far",
            y_label: "tar",
            x_range: (1e-3, 1.0),
            y_range: (0.0, 1.0),
            log_x: true,
        };
        let c = line_plot(
            &axes,
            &[
                Curve {
                    name: "trained",
                    points: &roc,
                },
                Curve {
                    name: "pixels",
                    points: &diag,
                },
            ],
        );
        let bytes = c.png_bytes().unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let count = |col: [u8; 3]| c.rgb.chunks(3).filter(|p| *p == col).count();
        assert!(
            count(BLUE) > 300 && count(ORANGE) > 300,
            "{} {}",
            count(BLUE),
            count(ORANGE)
        );
        // TAR 0.9 at FAR 1e-2: one of the three decades (1e-3 .. 1) along, 90% up.
        let (x, y) = (70.0 + (540.0 - 70.0) / 3.0, 390.0 - 350.0 * 0.9);
        let near = (-3i64..=3).any(|dx| {
            (-3i64..=3).any(|dy| {
                let i = (((y as i64 + dy) as usize) * c.width + (x as i64 + dx) as usize) * 3;
                c.rgb[i..i + 3] == BLUE
            })
        });
        assert!(near, "the curve passes (1e-2, 0.9)");
    }

    #[test]
    fn draws_a_readable_png() {
        let path = std::env::temp_dir().join(format!("fovea-plot-{}.png", std::process::id()));
        let loss = [2.3, 1.1, 0.7];
        let val = [2.0, 1.3, 0.9];
        training_curves(
            &path,
            &[(
                Series {
                    name: "loss",
                    values: &loss,
                },
                Some(Series {
                    name: "val_loss",
                    values: &val,
                }),
            )],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (420, 300));
        let blue = buf.chunks(3).filter(|p| p == &BLUE).count();
        let orange = buf.chunks(3).filter(|p| p == &ORANGE).count();
        assert!(blue > 200 && orange > 200, "both curves drawn: {blue} {orange}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_series_with_gaps_joins_its_finite_points() {
        // Scored at epochs 1 and 5 of 5: one orange segment across the whole panel, nothing
        // drawn from the NaNs.
        let path = std::env::temp_dir().join(format!("fovea-plot-gaps-{}.png", std::process::id()));
        let loss = [2.3, 1.1, 0.7, 0.6, 0.5];
        let held = [0.5, f64::NAN, f64::NAN, f64::NAN, 0.9];
        let panel = |values| Series { name: "x", values };
        training_curves(&path, &[(panel(&loss), Some(panel(&held)))]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let w = info.width as usize;
        let orange_columns = (0..w)
            .filter(|&x| (0..info.height as usize).any(|y| buf[(y * w + x) * 3..][..3] == ORANGE))
            .count();
        // The plot spans x = 60..400: a joined segment colours nearly all of those columns.
        assert!(orange_columns > 300, "orange in {orange_columns} columns");
        std::fs::remove_file(&path).unwrap();
    }
}
