//! Elastic deformation, the U-Net paper's augmentation (Ronneberger et al. 2015, sec. 3.1):
//! random displacement vectors on a coarse grid, smoothly interpolated to every pixel.

use fovea_graph::init::Rng;

use super::{Sample, keep_boxes};
use crate::vision::{BBox, Image};

/// Random displacements on a `grid` x `grid` lattice (3 in the paper), each component drawn from
/// a normal distribution with standard deviation `sigma` pixels (10 in the paper), interpolated
/// bicubically (Catmull-Rom) to per-pixel displacements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elastic {
    /// Standard deviation of each displacement component, in pixels.
    pub sigma: f32,
    /// Lattice points per side (at least 2).
    pub grid: usize,
}

impl Default for Elastic {
    fn default() -> Self {
        Elastic { sigma: 10.0, grid: 3 }
    }
}

impl Elastic {
    /// Draws a lattice and deforms the sample with it.
    pub fn apply(&self, s: &Sample, rng: &mut Rng) -> Sample {
        let n = self.grid.max(2);
        let lattice: Vec<(f32, f32)> = (0..n * n)
            .map(|_| ((rng.normal() as f32) * self.sigma, (rng.normal() as f32) * self.sigma))
            .collect();
        elastic_with_grid(s, &lattice, n)
    }
}

/// Catmull-Rom weights for a fractional position `t` in `[0, 1)` between taps 1 and 2.
fn cubic_weights(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// Per-pixel displacements `(dx, dy)` (row-major, `width * height`) from an `n` x `n` lattice
/// (row-major) whose points sit evenly from the first to the last pixel centre of each axis.
pub fn displacement_field(lattice: &[(f32, f32)], n: usize, width: usize, height: usize) -> Vec<(f32, f32)> {
    let n = n.max(1);
    let at = |i: i64, j: i64| -> (f32, f32) {
        let (i, j) = (i.clamp(0, n as i64 - 1) as usize, j.clamp(0, n as i64 - 1) as usize);
        lattice.get(j * n + i).copied().unwrap_or((0.0, 0.0))
    };
    let axis = |p: usize, len: usize| -> (i64, [f32; 4]) {
        if len <= 1 || n == 1 {
            return (0, [0.0, 1.0, 0.0, 0.0]);
        }
        let u = p as f32 * (n - 1) as f32 / (len - 1) as f32;
        let base = (u.floor() as i64).min(n as i64 - 1);
        let t = u - base as f32;
        if t == 0.0 {
            (base, [0.0, 1.0, 0.0, 0.0])
        } else {
            (base, cubic_weights(t))
        }
    };
    let mut field = Vec::with_capacity(width * height);
    for y in 0..height {
        let (by, wy) = axis(y, height);
        for x in 0..width {
            let (bx, wx) = axis(x, width);
            let (mut dx, mut dy) = (0.0, 0.0);
            for (a, wa) in wy.iter().enumerate() {
                if *wa == 0.0 {
                    continue;
                }
                for (b, wb) in wx.iter().enumerate() {
                    if *wb == 0.0 {
                        continue;
                    }
                    let v = at(bx + b as i64 - 1, by + a as i64 - 1);
                    dx += wa * wb * v.0;
                    dy += wa * wb * v.1;
                }
            }
            field.push((dx, dy));
        }
    }
    field
}

/// `i` folded into `0..n` by mirroring at the edges (`-1` reads `0`, `n` reads `n - 1`).
fn mirror(i: i64, n: usize) -> usize {
    let n = n as i64;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Reads channel `k` at pixel `(x, y)`, mirrored at the edges (as U-Net extrapolates).
fn tap(img: &Image, x: i64, y: i64, k: usize) -> f32 {
    let (x, y) = (mirror(x, img.width), mirror(y, img.height));
    img.data[(y * img.width + x) * img.channels + k]
}

/// Output pixel `(x, y)` reads the input at `(x + dx, y + dy)`: the image bilinearly, the mask
/// at the nearest pixel, both mirrored at the edges. Boxes move by minus the displacement at their
/// corners (the inverse, to first order) and follow the keep-if-centre-inside rule.
pub fn elastic_with_grid(s: &Sample, lattice: &[(f32, f32)], n: usize) -> Sample {
    let (w, h) = (s.image.width, s.image.height);
    let field = displacement_field(lattice, n, w, h);
    let warp = |img: &Image, nearest: bool| -> Image {
        let c = img.channels;
        let mut out = Image::filled(w, h, c, 0.0);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = field[y * w + x];
                let (sx, sy) = (x as f32 + dx, y as f32 + dy);
                let px = out.pixel_mut(x, y);
                if nearest {
                    let (ix, iy) = ((sx + 0.5).floor() as i64, (sy + 0.5).floor() as i64);
                    for (k, p) in px.iter_mut().enumerate() {
                        *p = tap(img, ix, iy, k);
                    }
                } else {
                    let (x0, y0) = (sx.floor(), sy.floor());
                    let (ax, ay) = (sx - x0, sy - y0);
                    let (x0, y0) = (x0 as i64, y0 as i64);
                    for (k, p) in px.iter_mut().enumerate() {
                        let top = tap(img, x0, y0, k) * (1.0 - ax) + tap(img, x0 + 1, y0, k) * ax;
                        let bottom = tap(img, x0, y0 + 1, k) * (1.0 - ax) + tap(img, x0 + 1, y0 + 1, k) * ax;
                        *p = top * (1.0 - ay) + bottom * ay;
                    }
                }
            }
        }
        out
    };
    let displaced = |x: f32, y: f32| -> (f32, f32) {
        let (ix, iy) = ((x.max(0.0) as usize).min(w - 1), (y.max(0.0) as usize).min(h - 1));
        let (dx, dy) = field[iy * w + ix];
        (x - dx, y - dy)
    };
    let boxes: Vec<BBox> = s
        .boxes
        .iter()
        .map(|b| {
            let (x0, y0) = displaced(b.xmin, b.ymin);
            let (x1, y1) = displaced(b.xmax, b.ymax);
            BBox::new(x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1), b.class)
        })
        .collect();
    Sample {
        image: warp(&s.image, false),
        mask: s.mask.as_ref().map(|m| warp(m, true)),
        boxes: keep_boxes(boxes, w as f32, h as f32),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(w: usize, h: usize, x: usize, y: usize) -> Image {
        let mut m = Image::filled(w, h, 1, 0.0);
        m.pixel_mut(x, y)[0] = 1.0;
        m
    }

    #[test]
    fn mirroring_folds_indices_back() {
        let got: Vec<usize> = (-3..7).map(|i| mirror(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }

    #[test]
    fn the_field_passes_through_the_lattice_and_keeps_constants() {
        let lattice: Vec<(f32, f32)> = (0..9).map(|i| (i as f32, -(i as f32))).collect();
        let f = displacement_field(&lattice, 3, 11, 21);
        // Lattice point (i, j) sits at pixel (5 i, 10 j).
        for j in 0..3 {
            for i in 0..3 {
                assert_eq!(f[(10 * j) * 11 + 5 * i], lattice[j * 3 + i]);
            }
        }
        let flat = displacement_field(&[(2.0, -3.0); 9], 3, 11, 21);
        assert!(
            flat.iter()
                .all(|(x, y)| (x - 2.0).abs() < 1e-5 && (y + 3.0).abs() < 1e-5)
        );
    }

    #[test]
    fn zero_displacement_is_identity_and_a_uniform_one_shifts_the_mask() {
        let img = Image::new(9, 7, 1, (0..63).map(|i| i as f32).collect()).unwrap();
        let s = Sample::new(img.clone()).with_mask(one_hot(9, 7, 4, 3));
        assert_eq!(elastic_with_grid(&s, &[(0.0, 0.0); 9], 3), s);
        // Every output pixel reads 2 to the right and 1 down: the one-hot pixel moves by (-2, -1).
        let moved = elastic_with_grid(&s, &[(2.0, 1.0); 9], 3);
        assert_eq!(moved.mask.unwrap(), one_hot(9, 7, 2, 2));
        assert!((moved.image.pixel(0, 0)[0] - img.pixel(2, 1)[0]).abs() < 1e-4);
    }

    #[test]
    fn random_deformation_keeps_mask_labels_and_bends_smoothly() {
        let mut m = Image::filled(40, 40, 1, 0.0);
        for y in 0..40 {
            for x in 0..20 {
                m.pixel_mut(x, y)[0] = 1.0;
            }
        }
        let s = Sample::new(m.clone()).with_mask(m);
        let out = Elastic::default().apply(&s, &mut Rng::new(4));
        let mask = out.mask.unwrap();
        assert!(
            mask.data.iter().all(|&v| v == 0.0 || v == 1.0),
            "nearest sampling keeps labels"
        );
        assert_ne!(mask, s.image);
        let ones = mask.data.iter().filter(|&&v| v == 1.0).count();
        assert!(ones > 400 && ones < 1200, "{ones}");
    }
}
