//! Crops (given, centred, random) and padding.

use fovea_graph::init::Rng;

use super::Image;
use crate::{DataError, Result};

/// A rectangle of whole pixels: left column, top row, width and height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// The pixels inside `rect`, which must lie within the image.
pub fn crop(image: &Image, rect: Rect) -> Result<Image> {
    if rect.width == 0 || rect.height == 0 || rect.x + rect.width > image.width || rect.y + rect.height > image.height {
        return Err(DataError::value(
            "crop",
            format!(
                "{}x{} at ({}, {}) does not fit a {}x{} image",
                rect.width, rect.height, rect.x, rect.y, image.width, image.height
            ),
        ));
    }
    let c = image.channels;
    let mut data = Vec::with_capacity(rect.width * rect.height * c);
    for y in rect.y..rect.y + rect.height {
        let start = (y * image.width + rect.x) * c;
        data.extend_from_slice(&image.data[start..start + rect.width * c]);
    }
    Ok(Image {
        width: rect.width,
        height: rect.height,
        channels: c,
        data,
    })
}

/// The centred `width` x `height` rectangle (rounded towards the top-left).
pub fn centre_rect(image: &Image, width: usize, height: usize) -> Result<Rect> {
    if width > image.width || height > image.height {
        return Err(DataError::value(
            "crop",
            format!(
                "{width}x{height} is larger than the {}x{} image",
                image.width, image.height
            ),
        ));
    }
    Ok(Rect {
        x: (image.width - width) / 2,
        y: (image.height - height) / 2,
        width,
        height,
    })
}

/// A uniformly random `width` x `height` rectangle inside the image.
pub fn random_rect(image: &Image, width: usize, height: usize, rng: &mut Rng) -> Result<Rect> {
    if width > image.width || height > image.height {
        return Err(DataError::value(
            "crop",
            format!(
                "{width}x{height} is larger than the {}x{} image",
                image.width, image.height
            ),
        ));
    }
    let x = random_offset(image.width - width, rng);
    let y = random_offset(image.height - height, rng);
    Ok(Rect { x, y, width, height })
}

/// A uniformly random offset in `0..=span` (one draw from `rng`).
pub fn random_offset(span: usize, rng: &mut Rng) -> usize {
    ((rng.uniform() * (span + 1) as f64) as usize).min(span)
}

/// Index `i` of a row or column of length `n`, reflected at the borders without repeating the
/// edge (`-1 -> 1`, `n -> n - 2`, numpy's `reflect`), repeatedly for offsets beyond one length.
pub fn reflect_index(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// The image moved by `(dx, dy)` at the same size: output pixel `(x, y)` is input pixel
/// `(x - dx, y - dy)`, the borders filled by reflection ([`reflect_index`]). The same as padding
/// by reflection and cropping, without the padded copy.
pub fn reflect_shift(image: &Image, dx: isize, dy: isize) -> Image {
    let (w, h, c) = (image.width, image.height, image.channels);
    let mut data = Vec::with_capacity(image.data.len());
    for y in 0..h {
        let sy = reflect_index(y as isize - dy, h);
        for x in 0..w {
            let s = (sy * w + reflect_index(x as isize - dx, w)) * c;
            data.extend_from_slice(&image.data[s..s + c]);
        }
    }
    Image {
        width: w,
        height: h,
        channels: c,
        data,
    }
}

/// The centred `width` x `height` crop.
pub fn centre_crop(image: &Image, width: usize, height: usize) -> Result<Image> {
    crop(image, centre_rect(image, width, height)?)
}

/// Padding widths on each side, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding {
    /// Rows above.
    pub top: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the left.
    pub left: usize,
    /// Columns on the right.
    pub right: usize,
}

impl Padding {
    /// The same width on all four sides.
    pub fn uniform(n: usize) -> Padding {
        Padding {
            top: n,
            bottom: n,
            left: n,
            right: n,
        }
    }
}

/// The image inside a border of `value`.
pub fn pad(image: &Image, padding: Padding, value: f32) -> Image {
    let width = image.width + padding.left + padding.right;
    let height = image.height + padding.top + padding.bottom;
    let c = image.channels;
    let mut out = Image::filled(width, height, c, value);
    for y in 0..image.height {
        let src = &image.data[y * image.width * c..(y + 1) * image.width * c];
        let start = ((y + padding.top) * width + padding.left) * c;
        out.data[start..start + image.width * c].copy_from_slice(src);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Image {
        Image::new(w, h, 1, (0..w * h).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn reflection_does_not_repeat_the_edge() {
        let got: Vec<usize> = (-4..8).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
        assert_eq!(reflect_index(-3, 1), 0);
    }

    #[test]
    fn a_reflected_shift_moves_the_pixels_and_mirrors_the_border_in() {
        // Row 0 1 2 3 moved right by 2: the two new left pixels reflect 1 and 2 (no repeated 0).
        let img = ramp(4, 2);
        let s = reflect_shift(&img, 2, 0);
        assert_eq!(&s.data[..4], &[2.0, 1.0, 0.0, 1.0]);
        // Moved up by 1 in a 2-row image: row 1 comes to row 0 and row 0 reflects in below.
        let up = reflect_shift(&img, 0, -1);
        assert_eq!(up.data, vec![4.0, 5.0, 6.0, 7.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(reflect_shift(&img, 0, 0), img);
    }

    #[test]
    fn crops_take_the_right_pixels() {
        let r = ramp(4, 3);
        let c = crop(
            &r,
            Rect {
                x: 1,
                y: 1,
                width: 2,
                height: 2,
            },
        )
        .unwrap();
        assert_eq!(c.data, vec![5.0, 6.0, 9.0, 10.0]);
        assert_eq!(centre_crop(&r, 2, 1).unwrap().data, vec![5.0, 6.0]);
        assert!(
            crop(
                &r,
                Rect {
                    x: 3,
                    y: 0,
                    width: 2,
                    height: 1
                }
            )
            .unwrap_err()
            .to_string()
            .contains("does not fit")
        );
        assert!(centre_crop(&r, 5, 1).is_err());
    }

    #[test]
    fn random_rects_cover_every_position_and_stay_inside() {
        let r = ramp(6, 4);
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let rect = random_rect(&r, 4, 3, &mut rng).unwrap();
            assert!(rect.x + 4 <= 6 && rect.y + 3 <= 4);
            seen.insert((rect.x, rect.y));
        }
        assert_eq!(seen.len(), 3 * 2);
    }

    #[test]
    fn pad_surrounds_with_the_value() {
        let r = ramp(2, 1);
        let p = pad(
            &r,
            Padding {
                top: 1,
                bottom: 0,
                left: 0,
                right: 1,
            },
            -1.0,
        );
        assert_eq!((p.width, p.height), (3, 2));
        assert_eq!(p.data, vec![-1.0, -1.0, -1.0, 0.0, 1.0, -1.0]);
    }
}
