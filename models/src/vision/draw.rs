//! Pictures of results: boxes with class labels and scores, mask overlays, and image grids.
//! Rectangles come from `imageproc`; text from the `font8x8` bitmap font (public domain),
//! scaled to the picture.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut};
use imageproc::rect::Rect as PixelRect;

use super::image_io::{BitDepth, to_dynamic};
use super::{BBox, Image};
use crate::Result;

/// Distinct, readable colours for classes (cycled), RGB 0-255.
pub const PALETTE: [[u8; 3]; 10] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 190],
];

/// The palette colour of class `class`.
pub fn class_colour(class: u32) -> [u8; 3] {
    PALETTE[class as usize % PALETTE.len()]
}

/// A box to draw, with an optional score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The box (its class picks the colour and label).
    pub bbox: BBox,
    /// A confidence in `[0, 1]`, printed after the class name.
    pub score: Option<f32>,
}

fn to_rgb8(image: &Image) -> Result<RgbImage> {
    Ok(to_dynamic(&image.to_rgb(), BitDepth::Eight)?.to_rgb8())
}

fn from_rgb8(img: &RgbImage) -> Image {
    let data = img.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    Image {
        width: img.width() as usize,
        height: img.height() as usize,
        channels: 3,
        data,
    }
}

/// The `font8x8` glyph of `ch` (rows top to bottom, bit 0 the leftmost pixel); `?` for a
/// character outside the font's basic Latin set.
pub fn glyph(ch: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(ch)
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Writes `text` with its top-left corner at `(x, y)`, each font pixel a `scale` x `scale` block.
/// Characters outside the font's basic Latin set are drawn as `?`.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, scale: u32, colour: [u8; 3]) {
    let scale = scale.max(1) as i32;
    for (i, ch) in text.chars().enumerate() {
        let gx = x + i as i32 * 8 * scale;
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    let r = PixelRect::at(gx + col * scale, y + row as i32 * scale).of_size(scale as u32, scale as u32);
                    draw_filled_rect_mut(img, r, Rgb(colour));
                }
            }
        }
    }
}

/// The font scale for a picture: 1 up to 400 pixels on the short side, then one more per 400.
fn text_scale(img: &RgbImage) -> u32 {
    1 + img.width().min(img.height()) / 400
}

/// Draws each detection as a coloured frame with a filled label bar (`name 0.87`) above it
/// (inside the top edge when there is no room above). `classes` names the class ids; an id
/// without a name is printed as a number.
pub fn draw_detections(image: &Image, detections: &[Detection], classes: &[String]) -> Result<Image> {
    let mut img = to_rgb8(image)?;
    let scale = text_scale(&img);
    let thickness = scale as i32 + 1;
    let (w, h) = (img.width() as i32, img.height() as i32);
    for d in detections {
        let b = d.bbox.clip(w as f32, h as f32);
        let colour = class_colour(b.class);
        let (x0, y0) = (b.xmin.round() as i32, b.ymin.round() as i32);
        let (bw, bh) = (
            (b.xmax - b.xmin).round().max(1.0) as i32,
            (b.ymax - b.ymin).round().max(1.0) as i32,
        );
        for t in 0..thickness {
            if bw > 2 * t && bh > 2 * t {
                let r = PixelRect::at(x0 + t, y0 + t).of_size((bw - 2 * t) as u32, (bh - 2 * t) as u32);
                draw_hollow_rect_mut(&mut img, r, Rgb(colour));
            }
        }
        let name = classes
            .get(b.class as usize)
            .cloned()
            .unwrap_or_else(|| b.class.to_string());
        let label = match d.score {
            Some(s) => format!("{name} {s:.2}"),
            None => name,
        };
        let (tw, th) = (
            label.chars().count() as i32 * 8 * scale as i32 + 4,
            8 * scale as i32 + 4,
        );
        let ty = if y0 - th >= 0 { y0 - th } else { y0 };
        let tx = x0.min(w - tw).max(0);
        draw_filled_rect_mut(
            &mut img,
            PixelRect::at(tx, ty).of_size(tw as u32, th as u32),
            Rgb(colour),
        );
        let luma = 0.299 * colour[0] as f32 + 0.587 * colour[1] as f32 + 0.114 * colour[2] as f32;
        let ink = if luma > 150.0 { [0, 0, 0] } else { [255, 255, 255] };
        draw_text(&mut img, tx + 2, ty + 2, &label, scale, ink);
    }
    Ok(from_rgb8(&img))
}

/// Blends a class-id mask (one channel, values rounded to ids) over the image in palette colours
/// with opacity `alpha`; class `transparent` (e.g. background) is left uncoloured.
pub fn overlay_mask(image: &Image, mask: &Image, alpha: f32, transparent: Option<u32>) -> Result<Image> {
    if (mask.width, mask.height) != (image.width, image.height) || mask.channels != 1 {
        return Err(crate::DataError::value(
            "mask",
            format!(
                "{}x{}x{} does not fit a {}x{} image (expected one channel of the same size)",
                mask.width, mask.height, mask.channels, image.width, image.height
            ),
        ));
    }
    let mut out = image.to_rgb();
    let a = alpha.clamp(0.0, 1.0);
    for (px, &m) in out.data.chunks_exact_mut(3).zip(&mask.data) {
        let class = m.round().max(0.0) as u32;
        if Some(class) == transparent {
            continue;
        }
        let c = class_colour(class);
        for (v, k) in px.iter_mut().zip(c) {
            *v = *v * (1.0 - a) + a * k as f32 / 255.0;
        }
    }
    Ok(out)
}

/// Breaks a caption into lines of at most `width` characters, after a space, `_` or `-` where
/// it can (a longer word is cut), so that it stays within its cell.
fn wrap_caption(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        // Before a space (dropped) or after a `_` / `-` (kept), as late as fits.
        let cut = (1..=width)
            .rev()
            .find(|&k| rest[k] == ' ' || matches!(rest[k - 1], '_' | '-'))
            .unwrap_or(width);
        lines.push(rest[..cut].iter().collect::<String>().trim_end().to_string());
        rest = rest[cut..].iter().copied().skip_while(|c| *c == ' ').collect();
    }
    if !rest.is_empty() || lines.is_empty() {
        lines.push(rest.into_iter().collect());
    }
    lines
}

/// Lays images out in rows (e.g. input | target | prediction per sample), each in a cell the size
/// of the largest, `gap` pixels apart on a dark grey background, with optional column captions
/// above the first row. Grey images are shown as RGB; values are clamped to `[0, 1]`.
pub fn image_grid(rows: &[Vec<Image>], captions: &[&str], gap: usize) -> Result<Image> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cell_w = rows.iter().flatten().map(|i| i.width).max().unwrap_or(1);
    let cell_h = rows.iter().flatten().map(|i| i.height).max().unwrap_or(1);
    let scale = 1 + (cell_w.min(cell_h) / 400) as u32;
    let per_line = (cell_w / (8 * scale as usize)).max(1);
    let lines: Vec<Vec<String>> = captions.iter().map(|t| wrap_caption(t, per_line)).collect();
    let max_lines = lines.iter().map(Vec::len).max().unwrap_or(0);
    let caption_h = if captions.is_empty() {
        0
    } else {
        max_lines * 9 * scale as usize + 2 * gap.max(2)
    };
    let width = cols * cell_w + (cols + 1) * gap;
    let height = caption_h + rows.len() * cell_h + (rows.len() + 1) * gap;
    let mut img = RgbImage::from_pixel(width.max(1) as u32, height.max(1) as u32, Rgb([40, 40, 40]));
    for (c, text) in lines.iter().enumerate().take(cols) {
        let x = gap + c * (cell_w + gap);
        for (l, line) in text.iter().enumerate() {
            let y = gap.max(2) + l * 9 * scale as usize;
            draw_text(&mut img, x as i32, y as i32, line, scale, [235, 235, 235]);
        }
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let rgb = to_rgb8(cell)?;
            let (x0, y0) = (gap + c * (cell_w + gap), caption_h + gap + r * (cell_h + gap));
            image::imageops::replace(&mut img, &rgb, x0 as i64, y0 as i64);
        }
    }
    Ok(from_rgb8(&img))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_is_framed_in_its_class_colour_with_a_label_bar() {
        let img = Image::filled(120, 80, 3, 0.0);
        let d = Detection {
            bbox: BBox::new(30.0, 40.0, 90.0, 70.0, 1),
            score: Some(0.5),
        };
        let out = draw_detections(&img, &[d], &["bg".into(), "raccoon".into()]).unwrap();
        let c = class_colour(1).map(|v| v as f32 / 255.0);
        assert_eq!(out.pixel(30, 55), &c, "left edge");
        assert_eq!(out.pixel(89, 55), &c, "right edge");
        assert_eq!(out.pixel(60, 69), &c, "bottom edge");
        assert_eq!(out.pixel(60, 55), &[0.0, 0.0, 0.0], "inside stays");
        // The label bar sits above the box: 12 rows (8 + 4).
        assert_eq!(out.pixel(30, 28), &c);
        let ink = (28..40)
            .flat_map(|y| (30..120).map(move |x| (x, y)))
            .filter(|&(x, y)| out.pixel(x, y) == [1.0, 1.0, 1.0] || out.pixel(x, y) == [0.0, 0.0, 0.0])
            .count();
        assert!(ink > 40, "text was drawn: {ink}");
    }

    #[test]
    fn captions_wrap_at_word_breaks_within_their_cell() {
        assert_eq!(wrap_caption("photo", 16), vec!["photo"]);
        assert_eq!(
            wrap_caption("shipwreck_of_the_minotaur", 16),
            vec!["shipwreck_of_", "the_minotaur"]
        );
        assert_eq!(wrap_caption("the scream", 6), vec!["the", "scream"]);
        assert_eq!(wrap_caption("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap_caption("", 4), vec![""]);
        for t in ["composition_vii", "a-b c_d efghijklmnop", "x y"] {
            for w in 1..8 {
                let l = wrap_caption(t, w);
                assert!(l.iter().all(|s| s.chars().count() <= w), "{t} {w}: {l:?}");
                let joined: String = l.concat();
                assert_eq!(joined.replace(' ', ""), t.replace(' ', ""), "{t} {w}");
            }
        }
    }

    #[test]
    fn overlays_blend_and_grids_place_cells() {
        let img = Image::filled(4, 2, 1, 1.0);
        let mut mask = Image::filled(4, 2, 1, 0.0);
        mask.pixel_mut(1, 0)[0] = 2.0;
        let out = overlay_mask(&img, &mask, 0.5, Some(0)).unwrap();
        assert_eq!(out.pixel(0, 0), &[1.0, 1.0, 1.0]);
        let c = class_colour(2);
        for (v, k) in out.pixel(1, 0).iter().zip(c) {
            assert!((v - (0.5 + 0.5 * k as f32 / 255.0)).abs() < 1e-6);
        }
        assert!(overlay_mask(&img, &Image::filled(3, 2, 1, 0.0), 0.5, None).is_err());
        let a = Image::filled(10, 6, 3, 1.0);
        let b = Image::filled(8, 8, 1, 0.0);
        let g = image_grid(&[vec![a.clone(), b.clone()], vec![b, a]], &[], 2).unwrap();
        assert_eq!((g.width, g.height), (2 * 10 + 3 * 2, 2 * 8 + 3 * 2));
        assert_eq!(g.pixel(2, 2), &[1.0, 1.0, 1.0]);
        assert_eq!(g.pixel(14, 2), &[0.0, 0.0, 0.0]);
        assert_eq!(g.pixel(14, 12), &[1.0, 1.0, 1.0]);
    }
}
