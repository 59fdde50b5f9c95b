//! [`Image`]: an owned `f32` picture in height-width-channel order, the form every vision
//! function works on.

use crate::{DataError, Result};

/// A picture: `height * width * channels` `f32` values, row-major, channels interleaved (HWC).
///
/// Decoded pictures hold values in `[0, 1]` (8-bit samples divided by 255, 16-bit by 65535);
/// masks may hold class ids. Channels are 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) for
/// decoded files, any number otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Values per pixel.
    pub channels: usize,
    /// `height * width * channels` values.
    pub data: Vec<f32>,
}

impl Image {
    /// An image from its data; errors if the count is not `width * height * channels`.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<f32>) -> Result<Image> {
        if width.checked_mul(height).and_then(|n| n.checked_mul(channels)) != Some(data.len()) {
            return Err(DataError::value(
                "image",
                format!(
                    "{width}x{height}x{channels} needs {} values, got {}",
                    width * height * channels,
                    data.len()
                ),
            ));
        }
        Ok(Image {
            width,
            height,
            channels,
            data,
        })
    }

    /// An image filled with `value`.
    pub fn filled(width: usize, height: usize, channels: usize, value: f32) -> Image {
        Image {
            width,
            height,
            channels,
            data: vec![value; width * height * channels],
        }
    }

    /// The values of pixel `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> &[f32] {
        let i = (y * self.width + x) * self.channels;
        &self.data[i..i + self.channels]
    }

    /// The values of pixel `(x, y)`, to change.
    pub fn pixel_mut(&mut self, x: usize, y: usize) -> &mut [f32] {
        let i = (y * self.width + x) * self.channels;
        &mut self.data[i..i + self.channels]
    }

    /// Three channels: grey is copied to R, G and B; alpha is dropped.
    pub fn to_rgb(&self) -> Image {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.width * self.height * 3);
        for p in self.data.chunks_exact(self.channels.max(1)) {
            match p.len() {
                1 | 2 => data.extend_from_slice(&[p[0], p[0], p[0]]),
                _ => data.extend_from_slice(&p[..3]),
            }
        }
        Image {
            width: self.width,
            height: self.height,
            channels: 3,
            data,
        }
    }

    /// One channel: RGB is weighted by ITU-R BT.601 luma (0.299, 0.587, 0.114); alpha is dropped.
    pub fn to_gray(&self) -> Image {
        if self.channels == 1 {
            return self.clone();
        }
        let data = self
            .data
            .chunks_exact(self.channels.max(1))
            .map(|p| match p.len() {
                1 | 2 => p[0],
                _ => 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2],
            })
            .collect();
        Image {
            width: self.width,
            height: self.height,
            channels: 1,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_the_count() {
        assert!(Image::new(2, 3, 1, vec![0.0; 6]).is_ok());
        let err = Image::new(2, 3, 3, vec![0.0; 6]).unwrap_err().to_string();
        assert!(err.contains("2x3x3 needs 18"), "{err}");
    }

    #[test]
    fn channel_conversions() {
        let rgb = Image::new(1, 1, 3, vec![1.0, 0.5, 0.0]).unwrap();
        let g = rgb.to_gray();
        assert!((g.data[0] - (0.299 + 0.5 * 0.587)).abs() < 1e-6);
        let ga = Image::new(2, 1, 2, vec![0.2, 1.0, 0.4, 0.0]).unwrap();
        assert_eq!(ga.to_rgb().data, vec![0.2, 0.2, 0.2, 0.4, 0.4, 0.4]);
        assert_eq!(ga.to_gray().data, vec![0.2, 0.4]);
    }
}
