//! Overlap-tile inference (Ronneberger et al. 2015, figure 2): a whole image of any size is
//! predicted by a network with a fixed `tile x tile` input. The image is cut into a grid of
//! `core x core` windows (`core = tile - 2 margin`); each window is predicted from the
//! `tile x tile` patch around it, so every kept pixel sees `margin` pixels of context on every
//! side, and only the centre of each prediction is kept. Context beyond the image border is the
//! image mirrored at that border (reflection without repeating the edge pixel). Tiles go to the
//! network `batch` at a time (one dispatch sequence per batch; the last batch is padded).

use fovea_graph::Tensor;

use crate::vision::Image;
use crate::vision::crop::reflect_index;
use crate::{DataError, Result};

/// The tile geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileSpec {
    /// Side of the network's input.
    pub tile: usize,
    /// Context pixels discarded on every side of a tile's prediction.
    pub margin: usize,
}

impl TileSpec {
    /// Side of the kept centre of each tile.
    pub fn core(&self) -> Result<usize> {
        if self.tile == 0 || 2 * self.margin >= self.tile {
            return Err(DataError::value(
                "tiles",
                format!(
                    "tile {} with margin {}: the margin must leave a centre (2 margin < tile)",
                    self.tile, self.margin
                ),
            ));
        }
        Ok(self.tile - 2 * self.margin)
    }
}

/// The tile origins (top-left corners in image coordinates, possibly negative) covering
/// `width x height`, row by row.
pub fn tile_origins(width: usize, height: usize, spec: TileSpec) -> Result<Vec<(isize, isize)>> {
    let core = spec.core()?;
    let m = spec.margin as isize;
    let (nx, ny) = (width.div_ceil(core), height.div_ceil(core));
    Ok((0..ny)
        .flat_map(|ty| (0..nx).map(move |tx| ((tx * core) as isize - m, (ty * core) as isize - m)))
        .collect())
}

/// Cuts the `tile x tile` patch at `origin` from the one-channel `image`, mirrored at its borders.
fn cut(image: &Image, origin: (isize, isize), tile: usize, out: &mut Vec<f32>) {
    for y in 0..tile {
        let sy = reflect_index(origin.1 + y as isize, image.height);
        for x in 0..tile {
            let sx = reflect_index(origin.0 + x as isize, image.width);
            out.push(image.data[sy * image.width + sx]);
        }
    }
}

/// Predicts the one-channel `image` tile by tile: `predict` maps a `(batch, tile, tile, 1)`
/// tensor to a `(batch, tile, tile, 1)` one; returns the `width * height` assembled values.
pub fn overlap_tile(
    image: &Image,
    spec: TileSpec,
    batch: usize,
    mut predict: impl FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Vec<f32>> {
    if image.channels != 1 || image.width == 0 || image.height == 0 {
        return Err(DataError::value(
            "image",
            format!(
                "{}x{}x{}: overlap-tile prediction takes a non-empty one-channel image",
                image.width, image.height, image.channels
            ),
        ));
    }
    if batch == 0 {
        return Err(DataError::value("batch", "must be positive"));
    }
    let core = spec.core()?;
    let (t, m) = (spec.tile, spec.margin);
    let origins = tile_origins(image.width, image.height, spec)?;
    let mut out = vec![0.0f32; image.width * image.height];
    for group in origins.chunks(batch) {
        let mut data = Vec::with_capacity(batch * t * t);
        for &o in group {
            cut(image, o, t, &mut data);
        }
        data.resize(batch * t * t, 0.0);
        let pred = predict(&Tensor::new(vec![batch, t, t, 1], data, "tiles")?)?;
        if pred.shape != [batch, t, t, 1] {
            return Err(DataError::value(
                "tiles",
                format!(
                    "the network returned {:?} for {batch} tiles of {t}x{t}; expected one value per pixel",
                    pred.shape
                ),
            ));
        }
        for (k, &(ox, oy)) in group.iter().enumerate() {
            let tile = &pred.data[k * t * t..(k + 1) * t * t];
            for y in 0..core {
                let iy = oy + (m + y) as isize;
                if iy < 0 || iy >= image.height as isize {
                    continue;
                }
                for x in 0..core {
                    let ix = ox + (m + x) as isize;
                    if ix < 0 || ix >= image.width as isize {
                        continue;
                    }
                    out[iy as usize * image.width + ix as usize] = tile[(m + y) * t + m + x];
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Image {
        Image::new(w, h, 1, (0..w * h).map(|i| ((i * 37) % 101) as f32).collect()).unwrap()
    }

    #[test]
    fn the_identity_network_gives_back_any_image() {
        for (w, h) in [(1, 1), (5, 3), (16, 16), (17, 29), (40, 7)] {
            let img = ramp(w, h);
            for (spec, batch) in [
                (TileSpec { tile: 8, margin: 2 }, 3),
                (TileSpec { tile: 6, margin: 0 }, 1),
            ] {
                let mut calls = 0;
                let out = overlap_tile(&img, spec, batch, |x| {
                    calls += 1;
                    Ok(x.clone())
                })
                .unwrap();
                assert_eq!(out, img.data, "{w}x{h} {spec:?}");
                let tiles = tile_origins(w, h, spec).unwrap().len();
                assert_eq!(calls, tiles.div_ceil(batch));
            }
        }
    }

    /// A 5x5 box mean over the mirrored image, computed directly.
    fn box_mean(img: &Image) -> Vec<f32> {
        let mut out = Vec::new();
        for y in 0..img.height as isize {
            for x in 0..img.width as isize {
                let mut s = 0.0;
                for dy in -2..=2 {
                    for dx in -2..=2 {
                        s += img.data[reflect_index(y + dy, img.height) * img.width + reflect_index(x + dx, img.width)];
                    }
                }
                out.push(s / 25.0);
            }
        }
        out
    }

    #[test]
    fn a_network_with_context_matches_whole_image_filtering_when_the_margin_covers_it() {
        // The "network" is a 5x5 box filter over its tile (zero outside the tile): with a
        // margin of 2 every kept pixel sees its full neighbourhood, mirrored at image borders.
        let net = |x: &Tensor| -> Result<Tensor> {
            let (b, t) = (x.shape[0], x.shape[1]);
            let mut out = Vec::new();
            for k in 0..b {
                let img = Image::new(t, t, 1, x.data[k * t * t..(k + 1) * t * t].to_vec()).unwrap();
                for y in 0..t as isize {
                    for xx in 0..t as isize {
                        let mut s = 0.0;
                        for dy in -2..=2isize {
                            for dx in -2..=2isize {
                                let (yy, xs) = (y + dy, xx + dx);
                                if (0..t as isize).contains(&yy) && (0..t as isize).contains(&xs) {
                                    s += img.data[yy as usize * t + xs as usize];
                                }
                            }
                        }
                        out.push(s / 25.0);
                    }
                }
            }
            Ok(Tensor::new(x.shape.clone(), out, "net").unwrap())
        };
        for (w, h) in [(13, 9), (4, 23), (30, 30)] {
            let img = ramp(w, h);
            let got = overlap_tile(&img, TileSpec { tile: 12, margin: 2 }, 4, net).unwrap();
            let want = box_mean(&img);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{w}x{h}: {a} vs {b}");
            }
            // Without a margin the tile seams show.
            let seams = overlap_tile(&img, TileSpec { tile: 8, margin: 0 }, 4, net).unwrap();
            assert!(seams.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3));
        }
    }

    #[test]
    fn bad_geometry_is_an_error() {
        let img = ramp(4, 4);
        let id = |x: &Tensor| Ok(x.clone());
        assert!(overlap_tile(&img, TileSpec { tile: 4, margin: 2 }, 1, id).is_err());
        assert!(overlap_tile(&img, TileSpec { tile: 4, margin: 0 }, 0, id).is_err());
        let rgb = Image::filled(4, 4, 3, 0.0);
        assert!(overlap_tile(&rgb, TileSpec { tile: 4, margin: 0 }, 1, id).is_err());
    }
}
