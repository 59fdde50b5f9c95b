//! The gallery: every painting on every photo, one grid per method, as small thumbnails.

use super::data::fit;
use crate::error::Result;
use crate::vision::Image;
use crate::vision::draw::image_grid;

/// `image` scaled so its longer side is `side` pixels.
pub fn thumbnail(image: &Image, side: usize) -> Result<Image> {
    let long = image.width.max(image.height).max(1) as f64;
    let w = ((image.width as f64 * side as f64 / long).round() as usize).max(1);
    let h = ((image.height as f64 * side as f64 / long).round() as usize).max(1);
    fit(image, w, h)
}

/// A grid with one row per photo: the photo, then its stylisation by each painting, under a
/// caption row naming the paintings; every cell a `side`-pixel thumbnail.
pub fn gallery(photos: &[Image], paintings: &[(String, Image)], results: &[Vec<Image>], side: usize) -> Result<Image> {
    let mut rows = Vec::with_capacity(photos.len() + 1);
    let mut head = vec![Image::filled(side, side, 3, 0.16)];
    for (_, p) in paintings {
        head.push(thumbnail(p, side)?);
    }
    rows.push(head);
    for (photo, row) in photos.iter().zip(results) {
        let mut r = vec![thumbnail(photo, side)?];
        for img in row {
            r.push(thumbnail(img, side)?);
        }
        rows.push(r);
    }
    let mut captions: Vec<&str> = vec!["photo"];
    captions.extend(paintings.iter().map(|(n, _)| n.as_str()));
    image_grid(&rows, &captions, 4)
}
