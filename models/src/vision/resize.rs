//! Resizing: nearest (masks), bilinear with half-pixel centres, and area averaging.

use super::Image;
use crate::{DataError, Result};

/// How output pixels are computed from input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The input pixel whose area holds the output pixel's centre; keeps mask labels intact.
    Nearest,
    /// Linear in x and y between the four nearest input pixel centres, with half-pixel centres
    /// (the convention of PIL, OpenCV and TensorFlow's `half_pixel_centers`); edges clamp.
    Bilinear,
    /// The mean of the input over the output pixel's footprint, weighted by overlap: the right
    /// filter for shrinking (no aliasing). When enlarging it blends only at pixel boundaries.
    Area,
}

/// Resizes to `width` x `height` (both at least 1).
pub fn resize(image: &Image, width: usize, height: usize, filter: Filter) -> Result<Image> {
    if width == 0 || height == 0 || image.width == 0 || image.height == 0 {
        return Err(DataError::value(
            "resize",
            format!(
                "cannot resize {}x{} to {width}x{height} (sizes must be positive)",
                image.width, image.height
            ),
        ));
    }
    let wx = weights(image.width, width, filter);
    let wy = weights(image.height, height, filter);
    let c = image.channels;
    // Horizontal pass: (height, width_out, c).
    let mut tmp = vec![0.0f32; image.height * width * c];
    for y in 0..image.height {
        let row = &image.data[y * image.width * c..(y + 1) * image.width * c];
        let out = &mut tmp[y * width * c..(y + 1) * width * c];
        for (x, taps) in wx.iter().enumerate() {
            for &(sx, w) in taps {
                for k in 0..c {
                    out[x * c + k] += w * row[sx * c + k];
                }
            }
        }
    }
    // Vertical pass.
    let mut data = vec![0.0f32; height * width * c];
    let stride = width * c;
    for (y, taps) in wy.iter().enumerate() {
        let out = &mut data[y * stride..(y + 1) * stride];
        for &(sy, w) in taps {
            let src = &tmp[sy * stride..(sy + 1) * stride];
            for (o, s) in out.iter_mut().zip(src) {
                *o += w * s;
            }
        }
    }
    Ok(Image {
        width,
        height,
        channels: c,
        data,
    })
}

/// For each output index, the input indices and weights (summing to one) along one axis.
fn weights(n_in: usize, n_out: usize, filter: Filter) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| match filter {
            Filter::Nearest => {
                let s = (((o as f64 + 0.5) * scale).floor() as usize).min(n_in - 1);
                vec![(s, 1.0)]
            }
            Filter::Bilinear => {
                let s = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(n_in - 1);
                let f = (s - i0 as f64) as f32;
                if i1 == i0 || f == 0.0 {
                    vec![(i0, 1.0)]
                } else {
                    vec![(i0, 1.0 - f), (i1, f)]
                }
            }
            Filter::Area => {
                let (lo, hi) = (o as f64 * scale, (o as f64 + 1.0) * scale);
                let mut taps = Vec::new();
                let mut i = lo.floor() as usize;
                while (i as f64) < hi && i < n_in {
                    let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)) / scale;
                    if overlap > 1e-12 {
                        taps.push((i, overlap as f32));
                    }
                    i += 1;
                }
                taps
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Image {
        Image::new(w, h, 1, (0..w * h).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn nearest_doubles_and_halves_exactly() {
        let img = Image::new(2, 1, 1, vec![3.0, 7.0]).unwrap();
        assert_eq!(
            resize(&img, 4, 2, Filter::Nearest).unwrap().data,
            vec![3.0, 3.0, 7.0, 7.0, 3.0, 3.0, 7.0, 7.0]
        );
        let r = ramp(4, 4);
        // Output pixel 0 covers input 0..2, its centre at 1.0 falls in pixel 1.
        assert_eq!(
            resize(&r, 2, 2, Filter::Nearest).unwrap().data,
            vec![5.0, 7.0, 13.0, 15.0]
        );
    }

    #[test]
    fn bilinear_uses_half_pixel_centres() {
        let img = Image::new(2, 1, 1, vec![0.0, 1.0]).unwrap();
        // Output centres at input coordinates -0.25, 0.25, 0.75, 1.25 (clamped at the edges).
        assert_eq!(
            resize(&img, 4, 1, Filter::Bilinear).unwrap().data,
            vec![0.0, 0.25, 0.75, 1.0]
        );
        let r = ramp(4, 1);
        // Halving: centres at 0.5 and 2.5.
        assert_eq!(resize(&r, 2, 1, Filter::Bilinear).unwrap().data, vec![0.5, 2.5]);
    }

    #[test]
    fn area_averages_the_footprint() {
        let r = ramp(4, 4);
        assert_eq!(resize(&r, 2, 2, Filter::Area).unwrap().data, vec![2.5, 4.5, 10.5, 12.5]);
        // 3 -> 2: each output covers 1.5 input pixels.
        let img = Image::new(3, 1, 1, vec![0.0, 3.0, 6.0]).unwrap();
        let out = resize(&img, 2, 1, Filter::Area).unwrap().data;
        assert!((out[0] - 1.0).abs() < 1e-6 && (out[1] - 5.0).abs() < 1e-6, "{out:?}");
        // The mean is kept whatever the size.
        let big = Image::new(7, 5, 2, (0..70).map(|i| ((i * 37) % 11) as f32).collect()).unwrap();
        let small = resize(&big, 3, 2, Filter::Area).unwrap();
        let mean = |i: &Image, k: usize| i.data.iter().skip(k).step_by(2).sum::<f32>() / (i.width * i.height) as f32;
        assert!((mean(&big, 1) - mean(&small, 1)).abs() < 1e-4);
    }

    #[test]
    fn same_size_is_identity_and_zero_is_an_error() {
        let r = ramp(5, 3);
        for f in [Filter::Nearest, Filter::Bilinear, Filter::Area] {
            assert_eq!(resize(&r, 5, 3, f).unwrap(), r);
        }
        assert!(
            resize(&r, 0, 3, Filter::Bilinear)
                .unwrap_err()
                .to_string()
                .contains("5x3 to 0x3")
        );
    }
}
