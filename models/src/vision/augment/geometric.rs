//! Flips, quarter turns and affine maps of an image, its mask and its boxes.

use fovea_graph::init::Rng;

use super::{Sample, keep_boxes};
use crate::vision::{BBox, Image};

/// Mirrors one image left-right.
pub fn mirror_x(img: &Image) -> Image {
    let (w, c) = (img.width, img.channels);
    let mut out = img.clone();
    for y in 0..img.height {
        for x in 0..w {
            let (s, d) = ((y * w + x) * c, (y * w + (w - 1 - x)) * c);
            out.data[d..d + c].copy_from_slice(&img.data[s..s + c]);
        }
    }
    out
}

/// Mirrors one image top-bottom.
pub fn mirror_y(img: &Image) -> Image {
    let row = img.width * img.channels;
    let mut out = img.clone();
    for y in 0..img.height {
        let d = (img.height - 1 - y) * row;
        out.data[d..d + row].copy_from_slice(&img.data[y * row..(y + 1) * row]);
    }
    out
}

/// Swaps the axes of one image (pixel `(x, y)` moves to `(y, x)`; `W x H` becomes `H x W`): the
/// mirror about the main diagonal, its own inverse.
pub fn transpose(img: &Image) -> Image {
    swapped(img, |x, y| (y, x))
}

/// The `H x W` image whose pixel `to(x, y)` is pixel `(x, y)` of the `W x H` `img` (`to` must
/// be a bijection onto the swapped frame).
fn swapped(img: &Image, to: impl Fn(usize, usize) -> (usize, usize)) -> Image {
    let (w, h, c) = (img.width, img.height, img.channels);
    let mut data = vec![0.0; img.data.len()];
    for y in 0..h {
        for x in 0..w {
            let (nx, ny) = to(x, y);
            let d = (ny * h + nx) * c;
            data[d..d + c].copy_from_slice(&img.data[(y * w + x) * c..(y * w + x + 1) * c]);
        }
    }
    Image {
        width: h,
        height: w,
        channels: c,
        data,
    }
}

/// Mirrors left-right: a box `(x0, y0, x1, y1)` becomes `(W - x1, y0, W - x0, y1)`.
pub fn hflip(s: &Sample) -> Sample {
    let w = s.image.width as f32;
    Sample {
        image: mirror_x(&s.image),
        mask: s.mask.as_ref().map(mirror_x),
        boxes: s
            .boxes
            .iter()
            .map(|b| BBox::new(w - b.xmax, b.ymin, w - b.xmin, b.ymax, b.class))
            .collect(),
        ..s.clone()
    }
}

/// Mirrors top-bottom: a box `(x0, y0, x1, y1)` becomes `(x0, H - y1, x1, H - y0)`.
pub fn vflip(s: &Sample) -> Sample {
    let h = s.image.height as f32;
    Sample {
        image: mirror_y(&s.image),
        mask: s.mask.as_ref().map(mirror_y),
        boxes: s
            .boxes
            .iter()
            .map(|b| BBox::new(b.xmin, h - b.ymax, b.xmax, h - b.ymin, b.class))
            .collect(),
        ..s.clone()
    }
}

/// One clockwise quarter turn of one image: pixel `(x, y)` moves to `(H - 1 - y, x)`.
fn turn(img: &Image) -> Image {
    let h = img.height;
    swapped(img, |x, y| (h - 1 - y, x))
}

/// `k` clockwise quarter turns. Each turn maps a point `(x, y)` to `(H - y, x)` and the size
/// `W x H` to `H x W`.
pub fn rot90(s: &Sample, k: usize) -> Sample {
    let mut out = s.clone();
    for _ in 0..k % 4 {
        let h = out.image.height as f32;
        out.image = turn(&out.image);
        out.mask = out.mask.as_ref().map(turn);
        out.boxes = out
            .boxes
            .iter()
            .map(|b| BBox::new(h - b.ymax, b.xmin, h - b.ymin, b.xmax, b.class))
            .collect();
    }
    out
}

/// A map of source points to output points: `(x', y') = (a x + b y + tx, c x + d y + ty)`, in
/// continuous pixel coordinates (pixel `(i, j)` has its centre at `(i + 0.5, j + 0.5)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Row one: `[a, b, tx]`.
    pub row_x: [f32; 3],
    /// Row two: `[c, d, ty]`.
    pub row_y: [f32; 3],
}

impl Affine {
    /// A shift by `(dx, dy)` pixels.
    pub fn shift(dx: f32, dy: f32) -> Affine {
        Affine {
            row_x: [1.0, 0.0, dx],
            row_y: [0.0, 1.0, dy],
        }
    }

    /// The similarity (rotation, uniform scale, shift) taking `from.0` to `to.0` and
    /// `from.1` to `to.1`, or `None` when the two `from` points coincide.
    pub fn similarity(from: [(f32, f32); 2], to: [(f32, f32); 2]) -> Option<Affine> {
        let (u, v) = (
            (from[1].0 - from[0].0, from[1].1 - from[0].1),
            (to[1].0 - to[0].0, to[1].1 - to[0].1),
        );
        let n = u.0 * u.0 + u.1 * u.1;
        if n < 1e-12 {
            return None;
        }
        // The complex ratio v / u = a + i b is the rotation and scale.
        let a = (v.0 * u.0 + v.1 * u.1) / n;
        let b = (v.1 * u.0 - v.0 * u.1) / n;
        Some(Affine {
            row_x: [a, -b, to[0].0 - (a * from[0].0 - b * from[0].1)],
            row_y: [b, a, to[0].1 - (b * from[0].0 + a * from[0].1)],
        })
    }

    /// Where a source point lands.
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, tx] = self.row_x;
        let [c, d, ty] = self.row_y;
        (a * x + b * y + tx, c * x + d * y + ty)
    }

    /// The inverse map, or `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Affine> {
        let [a, b, tx] = self.row_x;
        let [c, d, ty] = self.row_y;
        let det = a * d - b * c;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine {
            row_x: [ia, ib, -(ia * tx + ib * ty)],
            row_y: [ic, id, -(ic * tx + id * ty)],
        })
    }
}

/// Ranges a random affine map is drawn from: rotation and scale about the centre, then a shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineRange {
    /// Largest shift as a fraction of the width (x) and height (y).
    pub max_shift: f32,
    /// Largest rotation either way, in degrees.
    pub max_rotation_deg: f32,
    /// Scale range `(low, high)`.
    pub scale: (f32, f32),
}

impl AffineRange {
    /// Draws a map for a `width` x `height` image.
    pub fn draw(&self, width: usize, height: usize, rng: &mut Rng) -> Affine {
        let (w, h) = (width as f32, height as f32);
        let dx = rng.uniform_in(-1.0, 1.0) as f32 * self.max_shift * w;
        let dy = rng.uniform_in(-1.0, 1.0) as f32 * self.max_shift * h;
        let angle = (rng.uniform_in(-1.0, 1.0) as f32 * self.max_rotation_deg).to_radians();
        let (lo, hi) = (self.scale.0.min(self.scale.1), self.scale.0.max(self.scale.1));
        let scale = rng.uniform_in(lo as f64, hi as f64) as f32;
        let (cos, sin) = (angle.cos() * scale, angle.sin() * scale);
        let (cx, cy) = (w / 2.0, h / 2.0);
        // p' = R S (p - c) + c + d
        Affine {
            row_x: [cos, -sin, cx + dx - (cos * cx - sin * cy)],
            row_y: [sin, cos, cy + dy - (sin * cx + cos * cy)],
        }
    }
}

/// Samples `img` through the inverse map: bilinear (`nearest == false`) or nearest; taps
/// outside the picture read `fill`.
pub(crate) fn warp(img: &Image, inv: &Affine, nearest: bool, fill: f32) -> Image {
    warp_into(img, inv, img.width, img.height, nearest, fill)
}

/// `img` mapped by `map` into a new `width x height` picture (bilinear; what falls outside
/// the source reads `fill`), or `None` when `map` is singular. The face aligner cuts its chips
/// with this.
pub fn warp_affine(img: &Image, map: &Affine, width: usize, height: usize, fill: f32) -> Option<Image> {
    Some(warp_into(img, &map.inverse()?, width, height, false, fill))
}

/// [`warp`] into an output of its own size.
fn warp_into(img: &Image, inv: &Affine, out_w: usize, out_h: usize, nearest: bool, fill: f32) -> Image {
    let (w, h, c) = (img.width, img.height, img.channels);
    let mut out = Image::filled(out_w, out_h, c, fill);
    let tap = |x: i64, y: i64, k: usize| -> f32 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            fill
        } else {
            img.data[(y as usize * w + x as usize) * c + k]
        }
    };
    for j in 0..out_h {
        for i in 0..out_w {
            let (sx, sy) = inv.apply(i as f32 + 0.5, j as f32 + 0.5);
            let px = out.pixel_mut(i, j);
            if nearest {
                let (x, y) = (sx.floor() as i64, sy.floor() as i64);
                for (k, p) in px.iter_mut().enumerate() {
                    *p = tap(x, y, k);
                }
            } else {
                let (fx, fy) = (sx - 0.5, sy - 0.5);
                let (x0, y0) = (fx.floor(), fy.floor());
                let (ax, ay) = (fx - x0, fy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                for (k, p) in px.iter_mut().enumerate() {
                    let top = tap(x0, y0, k) * (1.0 - ax) + if ax > 0.0 { tap(x0 + 1, y0, k) * ax } else { 0.0 };
                    let bottom = if ay > 0.0 {
                        tap(x0, y0 + 1, k) * (1.0 - ax) + if ax > 0.0 { tap(x0 + 1, y0 + 1, k) * ax } else { 0.0 }
                    } else {
                        0.0
                    };
                    *p = top * (1.0 - ay) + bottom * ay;
                }
            }
        }
    }
    out
}

/// Applies `map` (the output keeps the input's size): image bilinear, mask nearest, boxes by
/// the bounding box of their mapped corners, kept when their centre stays inside. A singular map
/// leaves the sample unchanged.
pub fn affine(s: &Sample, map: &Affine) -> Sample {
    let Some(inv) = map.inverse() else {
        return s.clone();
    };
    let (w, h) = (s.image.width as f32, s.image.height as f32);
    let boxes = s.boxes.iter().map(|b| {
        let corners = [
            map.apply(b.xmin, b.ymin),
            map.apply(b.xmax, b.ymin),
            map.apply(b.xmin, b.ymax),
            map.apply(b.xmax, b.ymax),
        ];
        let xs = corners.iter().map(|p| p.0);
        let ys = corners.iter().map(|p| p.1);
        BBox::new(
            xs.clone().fold(f32::INFINITY, f32::min),
            ys.clone().fold(f32::INFINITY, f32::min),
            xs.fold(f32::NEG_INFINITY, f32::max),
            ys.fold(f32::NEG_INFINITY, f32::max),
            b.class,
        )
    });
    Sample {
        image: warp(&s.image, &inv, false, s.fill),
        mask: s.mask.as_ref().map(|m| warp(m, &inv, true, s.mask_fill)),
        boxes: keep_boxes(boxes.collect::<Vec<_>>(), w, h),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_maps_both_points_and_keeps_angles() {
        // (10, 10) -> (0, 0) and (20, 10) -> (0, 20): a quarter turn, doubled, then a shift.
        let m = Affine::similarity([(10.0, 10.0), (20.0, 10.0)], [(0.0, 0.0), (0.0, 20.0)]).unwrap();
        let close = |p: (f32, f32), q: (f32, f32)| (p.0 - q.0).abs() < 1e-4 && (p.1 - q.1).abs() < 1e-4;
        assert!(close(m.apply(10.0, 10.0), (0.0, 0.0)));
        assert!(close(m.apply(20.0, 10.0), (0.0, 20.0)));
        // A third point one unit "up" of the first goes two units along the turned axis.
        assert!(close(m.apply(10.0, 11.0), (-2.0, 0.0)), "{:?}", m.apply(10.0, 11.0));
        assert!(Affine::similarity([(1.0, 1.0), (1.0, 1.0)], [(0.0, 0.0), (1.0, 0.0)]).is_none());
    }

    #[test]
    fn warp_affine_cuts_a_shifted_window_of_its_own_size() {
        let mut img = Image::filled(6, 5, 1, 0.0);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        // Source (2, 1) -> output (0, 0): a 3 x 2 window starting at column 2, row 1.
        let out = warp_affine(&img, &Affine::shift(-2.0, -1.0), 3, 2, -1.0).unwrap();
        assert_eq!((out.width, out.height), (3, 2));
        assert_eq!(out.data, vec![8.0, 9.0, 10.0, 14.0, 15.0, 16.0]);
        // Outside the source: the fill.
        let out = warp_affine(&img, &Affine::shift(-5.0, 0.0), 2, 1, -1.0).unwrap();
        assert_eq!(out.data, vec![5.0, -1.0]);
    }

    /// A `w` x `h` one-channel mask with a single 1 at `(x, y)`.
    fn one_hot(w: usize, h: usize, x: usize, y: usize) -> Image {
        let mut m = Image::filled(w, h, 1, 0.0);
        m.pixel_mut(x, y)[0] = 1.0;
        m
    }

    fn sample() -> Sample {
        let img = Image::new(5, 3, 1, (0..15).map(|i| i as f32).collect()).unwrap();
        Sample::new(img)
            .with_mask(one_hot(5, 3, 1, 0))
            .with_boxes(vec![BBox::new(1.0, 0.5, 2.0, 2.0, 7)])
    }

    #[test]
    fn flips_move_pixels_masks_and_boxes() {
        let f = hflip(&sample());
        assert_eq!(&f.image.data[..5], &[4.0, 3.0, 2.0, 1.0, 0.0]);
        assert_eq!(f.mask.unwrap(), one_hot(5, 3, 3, 0));
        assert_eq!(f.boxes, vec![BBox::new(3.0, 0.5, 4.0, 2.0, 7)]);
        let v = vflip(&sample());
        assert_eq!(&v.image.data[..5], &[10.0, 11.0, 12.0, 13.0, 14.0]);
        assert_eq!(v.mask.unwrap(), one_hot(5, 3, 1, 2));
        assert_eq!(v.boxes, vec![BBox::new(1.0, 1.0, 2.0, 2.5, 7)]);
        assert_eq!(hflip(&hflip(&sample())), sample());
    }

    #[test]
    fn transpose_swaps_the_axes_of_a_one_hot_pixel() {
        let t = transpose(&one_hot(5, 3, 4, 1));
        assert_eq!(t, one_hot(3, 5, 1, 4));
        // Pixel (x, y) of the 5x3 ramp holds 5 y + x; at (y, x) of the 3x5 result.
        let img = sample().image;
        let t = transpose(&img);
        assert_eq!(&t.data[..6], &[0.0, 5.0, 10.0, 1.0, 6.0, 11.0]);
        assert_eq!(transpose(&t), img);
        // Two-channel pixels move whole.
        let two = Image::new(2, 1, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(transpose(&two), Image::new(1, 2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    }

    #[test]
    fn quarter_turns_move_a_one_hot_pixel_and_a_box() {
        let r = rot90(&sample(), 1);
        assert_eq!((r.image.width, r.image.height), (3, 5));
        // (1, 0) in a 5x3 image goes to (H - 1 - 0, 1) = (2, 1).
        assert_eq!(r.mask.as_ref().unwrap(), &one_hot(3, 5, 2, 1));
        // Pixel (0, 2) = 10 goes to (0, 0): the bottom-left corner comes to the top-left.
        assert_eq!(r.image.data[0], 10.0);
        // (x, y) -> (H - y, x) with H = 3.
        assert_eq!(r.boxes, vec![BBox::new(1.0, 1.0, 2.5, 2.0, 7)]);
        assert_eq!(rot90(&sample(), 4), sample());
        let twice = rot90(&sample(), 2);
        assert_eq!(twice.mask.unwrap(), one_hot(5, 3, 3, 2));
        assert_eq!(twice.boxes, vec![BBox::new(3.0, 1.0, 4.0, 2.5, 7)]);
    }

    #[test]
    fn an_integer_shift_moves_everything_exactly() {
        let s = affine(&sample(), &Affine::shift(2.0, 1.0));
        assert_eq!(s.mask.unwrap(), one_hot(5, 3, 3, 1));
        assert_eq!(s.image.pixel(2, 1), &[0.0]);
        assert_eq!(s.image.pixel(4, 2), &[7.0]);
        assert_eq!(s.image.pixel(1, 1), &[0.0], "filled from outside");
        assert_eq!(s.boxes, vec![BBox::new(3.0, 1.5, 4.0, 3.0, 7)]);
        // Shifted so that the box centre (1.5, 1.25) leaves at the left: dropped.
        assert!(affine(&sample(), &Affine::shift(-2.0, 0.0)).boxes.is_empty());
        // Partly out but centre inside: clipped.
        let b = Sample::new(Image::filled(5, 3, 1, 0.0)).with_boxes(vec![BBox::new(0.0, 0.0, 4.0, 2.0, 1)]);
        assert_eq!(
            affine(&b, &Affine::shift(-1.5, 0.0)).boxes,
            vec![BBox::new(0.0, 0.0, 2.5, 2.0, 1)]
        );
    }

    #[test]
    fn a_half_turn_about_the_centre_matches_two_quarter_turns() {
        let range = AffineRange {
            max_shift: 0.0,
            max_rotation_deg: 0.0,
            scale: (1.0, 1.0),
        };
        let id = range.draw(5, 3, &mut Rng::new(1));
        let s = affine(&sample(), &id);
        assert_eq!(s.mask, sample().mask);
        for (a, b) in s.image.data.iter().zip(&sample().image.data) {
            assert!((a - b).abs() < 1e-4);
        }
        let half = Affine {
            row_x: [-1.0, 0.0, 5.0],
            row_y: [0.0, -1.0, 3.0],
        };
        let h = affine(&sample(), &half);
        let r = rot90(&sample(), 2);
        assert_eq!(h.mask, r.mask);
        assert_eq!(h.boxes, r.boxes);
        assert_eq!(h.image, r.image);
    }
}
