//! [`BBox`]: an axis-aligned box in pixels with a class id.

/// A box `(xmin, ymin, xmax, ymax)` in pixel coordinates (origin at the top-left corner of the
/// image, x to the right, y down; pixel `(i, j)` covers `[i, i+1) x [j, j+1)`), with a class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left edge.
    pub xmin: f32,
    /// Top edge.
    pub ymin: f32,
    /// Right edge.
    pub xmax: f32,
    /// Bottom edge.
    pub ymax: f32,
    /// Class id (0-based; the data set's class list names it).
    pub class: u32,
}

impl BBox {
    /// A box from its edges and class.
    pub fn new(xmin: f32, ymin: f32, xmax: f32, ymax: f32, class: u32) -> BBox {
        BBox {
            xmin,
            ymin,
            xmax,
            ymax,
            class,
        }
    }

    /// Width (0 when empty).
    pub fn width(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0)
    }

    /// Height (0 when empty).
    pub fn height(&self) -> f32 {
        (self.ymax - self.ymin).max(0.0)
    }

    /// Area (0 when empty).
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// The centre `(x, y)`.
    pub fn centre(&self) -> (f32, f32) {
        ((self.xmin + self.xmax) / 2.0, (self.ymin + self.ymax) / 2.0)
    }

    /// The overlap with `other` (empty boxes have zero area); the class is this box's.
    pub fn intersection(&self, other: &BBox) -> BBox {
        BBox {
            xmin: self.xmin.max(other.xmin),
            ymin: self.ymin.max(other.ymin),
            xmax: self.xmax.min(other.xmax),
            ymax: self.ymax.min(other.ymax),
            class: self.class,
        }
    }

    /// Intersection over union (0 when both are empty).
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other).area();
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Clipped to `[0, width] x [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox {
            xmin: self.xmin.clamp(0.0, width),
            ymin: self.ymin.clamp(0.0, height),
            xmax: self.xmax.clamp(0.0, width),
            ymax: self.ymax.clamp(0.0, height),
            class: self.class,
        }
    }

    /// Moved by `(dx, dy)`.
    pub fn shifted(&self, dx: f32, dy: f32) -> BBox {
        BBox {
            xmin: self.xmin + dx,
            ymin: self.ymin + dy,
            xmax: self.xmax + dx,
            ymax: self.ymax + dy,
            class: self.class,
        }
    }

    /// Scaled by `(sx, sy)` about the origin.
    pub fn scaled(&self, sx: f32, sy: f32) -> BBox {
        BBox {
            xmin: self.xmin * sx,
            ymin: self.ymin * sy,
            xmax: self.xmax * sx,
            ymax: self.ymax * sy,
            class: self.class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0, 0);
        let b = BBox::new(1.0, 1.0, 3.0, 3.0, 0);
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(5.0, 5.0, 6.0, 6.0, 0)), 0.0);
        assert_eq!(
            BBox::new(-1.0, 2.0, 12.0, 4.0, 3).clip(10.0, 3.0),
            BBox::new(0.0, 2.0, 10.0, 3.0, 3)
        );
        assert_eq!(a.centre(), (1.0, 1.0));
    }
}
