//! Synthetic shapes: images holding several filled squares, discs and triangles of random
//! colours and sizes on a noisy background, with their exact boxes. A detection test set that
//! needs no files, and the second benchmark.

use fovea_graph::init::Rng;

use super::data::SampleSource;
use crate::Result;
use crate::vision::augment::{Pipeline, Sample};
use crate::vision::{BBox, Image};

/// The class names, in id order.
pub const SHAPE_CLASSES: [&str; 3] = ["square", "disc", "triangle"];

/// A seeded, endless-looking set of `len` shape images of `side` pixels.
#[derive(Debug, Clone)]
pub struct ShapesSet {
    /// Images in the set.
    pub len: usize,
    /// Image side in pixels.
    pub side: usize,
    /// Objects per image, inclusive range.
    pub objects: (usize, usize),
    /// Object side relative to the image, range.
    pub size: (f32, f32),
    /// Image `i` is drawn from `seed` and `i` (the same every epoch).
    pub seed: u64,
    /// Augmentation applied on top (flip is enough: the images are already random).
    pub pipeline: Pipeline,
}

impl ShapesSet {
    /// `len` images of `side` pixels with 1-4 objects of 15-45 % of the side each.
    pub fn new(len: usize, side: usize, seed: u64) -> ShapesSet {
        ShapesSet {
            len,
            side,
            objects: (1, 4),
            size: (0.15, 0.45),
            seed,
            pipeline: Pipeline::default(),
        }
    }

    /// The held-out companion of a training set of `train_len` images drawn with `seed`:
    /// `train_len / 4` (rounded up) other images (the test split of `--synthetic`).
    pub fn test_set(train_len: usize, side: usize, seed: u64) -> ShapesSet {
        ShapesSet::new(train_len.div_ceil(4), side, seed ^ 0x7e57)
    }

    /// Image `index` with its boxes, before augmentation.
    pub fn draw(&self, index: usize) -> Sample {
        let mut rng = Rng::new(
            self.seed
                .wrapping_mul(0x9E37_79B9)
                .wrapping_add(index as u64 * 7919 + 1),
        );
        let n = self.side;
        let base = [
            rng.uniform() as f32 * 0.5,
            rng.uniform() as f32 * 0.5,
            rng.uniform() as f32 * 0.5,
        ];
        let mut data = Vec::with_capacity(n * n * 3);
        for _ in 0..n * n {
            for b in base {
                data.push((b + (rng.uniform() as f32 - 0.5) * 0.2).clamp(0.0, 1.0));
            }
        }
        let mut img = Image {
            width: n,
            height: n,
            channels: 3,
            data,
        };
        let count = self.objects.0 + rng.below(self.objects.1 - self.objects.0 + 1);
        let mut boxes: Vec<BBox> = Vec::new();
        let mut tries = 0;
        while boxes.len() < count && tries < 50 {
            tries += 1;
            let s = (rng.uniform_in(self.size.0 as f64, self.size.1 as f64) * n as f64)
                .round()
                .max(4.0) as usize;
            let x0 = rng.below(n - s + 1);
            let y0 = rng.below(n - s + 1);
            let b = BBox::new(
                x0 as f32,
                y0 as f32,
                (x0 + s) as f32,
                (y0 + s) as f32,
                rng.below(3) as u32,
            );
            if boxes
                .iter()
                .any(|o| o.iou(&b) > 0.2 || o.intersection(&b).area() > 0.3 * b.area().min(o.area()))
            {
                continue;
            }
            // Bright colours, far from the dark background.
            let colour = [
                0.55 + rng.uniform() as f32 * 0.45,
                0.55 + rng.uniform() as f32 * 0.45,
                0.55 + rng.uniform() as f32 * 0.45,
            ];
            paint(&mut img, &b, colour);
            boxes.push(b);
        }
        Sample::new(img).with_boxes(boxes)
    }
}

/// Whether pixel `(x, y)` of a `w` x `h` box is inside shape `class`.
fn inside(class: u32, x: usize, y: usize, w: usize, h: usize) -> bool {
    let (px, py) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
    match class {
        0 => true,
        1 => (px - 0.5).powi(2) + (py - 0.5).powi(2) <= 0.25,
        // Apex at the top centre, base along the bottom edge; a pixel counts when the triangle
        // reaches its lower edge, so the apex row is painted.
        _ => (px - 0.5).abs() <= (y as f32 + 1.0) / h as f32 / 2.0 + 0.5 / w as f32,
    }
}

/// Paints the shape of `b`'s class filling `b`. Every shape touches all four edges of its box
/// (the disc at its extreme points, the triangle at its apex and base), so the box is tight.
fn paint(img: &mut Image, b: &BBox, colour: [f32; 3]) {
    let (x0, y0) = (b.xmin as usize, b.ymin as usize);
    let (w, h) = (b.width() as usize, b.height() as usize);
    for y in 0..h {
        for x in 0..w {
            if inside(b.class, x, y, w, h) {
                img.pixel_mut(x0 + x, y0 + y).copy_from_slice(&colour);
            }
        }
    }
}

impl SampleSource for ShapesSet {
    fn len(&self) -> usize {
        self.len
    }
    fn sample(&self, index: usize, rng: &mut Rng) -> Result<Sample> {
        self.pipeline.apply(self.draw(index), rng)
    }
    fn classes(&self) -> Vec<String> {
        SHAPE_CLASSES.iter().map(|s| s.to_string()).collect()
    }
    fn original(&self, index: usize) -> Result<(usize, usize, Vec<BBox>, String)> {
        Ok((
            self.side,
            self.side,
            self.draw(index).boxes,
            format!("shapes-{index}.png"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_deterministic_inside_their_boxes_and_apart() {
        let set = ShapesSet::new(20, 64, 3);
        assert_eq!(set.draw(5), set.draw(5));
        assert_ne!(set.draw(5), set.draw(6));
        let mut classes = [0usize; 3];
        for i in 0..20 {
            let s = set.draw(i);
            assert!((1..=4).contains(&s.boxes.len()), "{}", s.boxes.len());
            for b in &s.boxes {
                classes[b.class as usize] += 1;
                assert!(b.xmin >= 0.0 && b.ymin >= 0.0 && b.xmax <= 64.0 && b.ymax <= 64.0);
                // Bright pixels in the box's top row (every shape touches it) and none just
                // outside a box that no other box covers.
                let cy = b.ymin as usize;
                let cx = b.centre().0 as usize;
                assert!(s.image.pixel(cx, cy)[0] >= 0.55, "top centre of {b:?}");
            }
            for (k, b) in s.boxes.iter().enumerate() {
                for o in &s.boxes[k + 1..] {
                    assert!(b.iou(o) <= 0.2);
                }
            }
        }
        assert!(classes.iter().all(|&c| c > 3), "{classes:?}");
    }

    #[test]
    fn a_disc_fills_its_box_corners_with_background() {
        let mut img = Image::filled(10, 10, 3, 0.0);
        paint(&mut img, &BBox::new(0.0, 0.0, 10.0, 10.0, 1), [1.0; 3]);
        assert_eq!(img.pixel(0, 0)[0], 0.0);
        assert_eq!(img.pixel(5, 5)[0], 1.0);
        assert_eq!(img.pixel(5, 0)[0], 1.0);
        let mut tri = Image::filled(10, 10, 3, 0.0);
        paint(&mut tri, &BBox::new(0.0, 0.0, 10.0, 10.0, 2), [1.0; 3]);
        assert_eq!(tri.pixel(0, 9)[0], 1.0, "base corner");
        assert_eq!(tri.pixel(0, 0)[0], 0.0, "top corner is background");
    }
}
