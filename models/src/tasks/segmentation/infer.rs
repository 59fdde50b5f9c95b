//! Whole-slice prediction and evaluation: overlap-tile inference through a compiled network,
//! thresholded (at cell probability 0.5 unless chosen otherwise), scored against the true masks;
//! and the choice of that threshold on slices other than the scored ones.

use std::time::Instant;

use fovea_engine::CompiledModel;

use super::data::Slice;
use super::metrics::{Scores, score};
use super::tiles::{TileSpec, overlap_tile};
use crate::Result;
use crate::vision::Image;
use crate::vision::augment::{mirror_x, mirror_y, transpose};

/// How whole images are predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inference {
    /// Tile geometry (the tile is the network's input side).
    pub tiles: TileSpec,
    /// Tiles per batch.
    pub batch: usize,
    /// A pixel is cell when its cell probability is at least this (0.5 by default).
    pub threshold: f32,
    /// Test-time views: which mirror images of the slice are predicted and averaged
    /// ([`Views::One`], the slice alone, by default).
    pub views: Views,
}

/// The views of a slice that test-time augmentation predicts; each prediction is mapped back
/// to the slice and the probability maps are averaged. Membranes have no preferred side or
/// orientation and the training augmentation flips and turns patches, so every view is as
/// likely as the slice itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Views {
    /// The slice alone.
    #[default]
    One,
    /// The slice mirrored left-right, top-bottom, both, and as it is (4x the work).
    Flips,
    /// Those four and the same four of the transposed slice: the 8 symmetries of a square
    /// (every flip and quarter turn; 8x the work).
    Dihedral,
}

impl Views {
    /// How many predictions a slice costs.
    pub fn count(&self) -> usize {
        match self {
            Views::One => 1,
            Views::Flips => 4,
            Views::Dihedral => 8,
        }
    }

    /// The command-line name: `none`, `flips` or `dihedral`.
    pub fn name(&self) -> &'static str {
        match self {
            Views::One => "none",
            Views::Flips => "flips",
            Views::Dihedral => "dihedral",
        }
    }
}

/// View `k` of [`Views::Dihedral`] (`k` < 8): bit 0 mirrors left-right, bit 1 top-bottom, bit 2
/// transposes first.
fn view(image: &Image, k: usize) -> Image {
    let mut v = if k & 4 != 0 { transpose(image) } else { image.clone() };
    if k & 1 != 0 {
        v = mirror_x(&v);
    }
    if k & 2 != 0 {
        v = mirror_y(&v);
    }
    v
}

/// Maps a prediction of [`view`] `k` back onto the slice (each step is its own inverse, undone
/// in the reverse order).
fn unview(p: &Image, k: usize) -> Image {
    let mut v = if k & 2 != 0 { mirror_y(p) } else { p.clone() };
    if k & 1 != 0 {
        v = mirror_x(&v);
    }
    if k & 4 != 0 { transpose(&v) } else { v }
}

impl Inference {
    /// Tiles of side `tile` with a 16-pixel margin (an eighth of a 128 tile), 12 per batch.
    pub fn new(tile: usize) -> Inference {
        Inference {
            tiles: TileSpec {
                tile,
                margin: (tile / 8).min(16),
            },
            batch: 12,
            threshold: 0.5,
            views: Views::One,
        }
    }

    /// The cell probability of every pixel of the one-channel `image` (`sigmoid` of the logit).
    /// With [`Inference::views`], the mean of the views' predictions mapped back.
    pub fn probabilities(&self, model: &mut CompiledModel, image: &Image) -> Result<Vec<f32>> {
        let batch = self.batch;
        let mut once = |img: &Image| -> Result<Image> {
            let logits = overlap_tile(img, self.tiles, batch, |x| Ok(model.predict(x, batch)?))?;
            let p = logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
            Image::new(img.width, img.height, 1, p)
        };
        let n = self.views.count();
        if n == 1 {
            return Ok(once(image)?.data);
        }
        let mut sum = vec![0.0f32; image.width * image.height];
        for k in 0..n {
            let p = unview(&once(&view(image, k))?, k);
            for (s, v) in sum.iter_mut().zip(&p.data) {
                *s += v;
            }
        }
        Ok(sum.iter().map(|s| s / n as f32).collect())
    }

    /// The predicted mask of `image`, `true` = cell.
    pub fn mask(&self, model: &mut CompiledModel, image: &Image) -> Result<Vec<bool>> {
        Ok(threshold(&self.probabilities(model, image)?, self.threshold))
    }
}

/// `probabilities >= t`.
fn threshold(probabilities: &[f32], t: f32) -> Vec<bool> {
    probabilities.iter().map(|&p| p >= t).collect()
}

/// The thresholds [`choose_threshold`] tries: 0.10, 0.15, ..., 0.90.
pub fn threshold_candidates() -> Vec<f32> {
    (2..=18).map(|k| k as f32 * 0.05).collect()
}

/// Of `candidates`, the threshold whose masks of `probabilities` (one map per slice, each
/// `width` wide) score the best mean V_rand against `truths` (ties: the first); with every
/// candidate's mean scores, in order.
pub fn best_threshold(
    probabilities: &[Vec<f32>],
    truths: &[&[bool]],
    width: &[usize],
    candidates: &[f32],
) -> Option<(f32, Vec<(f32, Scores)>)> {
    let table: Vec<(f32, Scores)> = candidates
        .iter()
        .filter_map(|&t| {
            let per: Vec<Scores> = probabilities
                .iter()
                .zip(truths)
                .zip(width)
                .map(|((p, truth), &w)| score(&threshold(p, t), truth, w))
                .collect();
            Scores::mean(&per).map(|m| (t, m))
        })
        .collect();
    // `max_by` keeps the last of equal maxima; reversed, that is the first candidate.
    let best = table.iter().rev().max_by(|a, b| a.1.v_rand.total_cmp(&b.1.v_rand))?.0;
    Some((best, table))
}

/// Predicts `slices` once and picks the threshold of [`best_threshold`] among
/// [`threshold_candidates`] (choose on training slices, then score held-out ones with it).
pub fn choose_threshold(
    model: &mut CompiledModel,
    inference: &Inference,
    slices: &[Slice],
) -> Result<(f32, Vec<(f32, Scores)>)> {
    let probabilities = slices
        .iter()
        .map(|s| inference.probabilities(model, &s.image))
        .collect::<Result<Vec<_>>>()?;
    let truths: Vec<&[bool]> = slices.iter().map(|s| s.mask.as_slice()).collect();
    let widths: Vec<usize> = slices.iter().map(|s| s.image.width).collect();
    best_threshold(&probabilities, &truths, &widths, &threshold_candidates())
        .ok_or_else(|| crate::DataError::value("--choose-threshold", "no slices to choose the threshold on"))
}

/// The evaluation of some slices.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The scores of each slice, in order.
    pub per_slice: Vec<Scores>,
    /// Their mean.
    pub mean: Scores,
    /// The predicted masks, in order.
    pub masks: Vec<Vec<bool>>,
    /// Milliseconds of overlap-tile prediction per slice.
    pub ms_per_slice: f64,
}

/// Predicts and scores every slice.
pub fn evaluate(model: &mut CompiledModel, inference: &Inference, slices: &[Slice]) -> Result<Evaluation> {
    let mut per_slice = Vec::new();
    let mut masks = Vec::new();
    let mut seconds = 0.0;
    for s in slices {
        let start = Instant::now();
        let m = inference.mask(model, &s.image)?;
        seconds += start.elapsed().as_secs_f64();
        per_slice.push(score(&m, &s.mask, s.image.width));
        masks.push(m);
    }
    let mean = Scores::mean(&per_slice).ok_or_else(|| crate::DataError::value("slices", "none to evaluate"))?;
    Ok(Evaluation {
        per_slice,
        mean,
        masks,
        ms_per_slice: 1000.0 * seconds / slices.len().max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_maps_back_onto_the_slice() {
        // A 3x2 ramp: pixel (x, y) holds 3 y + x.
        let img = Image::new(3, 2, 1, (0..6).map(|i| i as f32).collect()).unwrap();
        let mut seen = Vec::new();
        for k in 0..8 {
            let v = view(&img, k);
            assert_eq!(unview(&v, k), img, "view {k}");
            seen.push(v);
        }
        // By hand: mirrored left-right, the first row reads 2 1 0; transposed (2 wide, 3 high),
        // 0 3 / 1 4 / 2 5; transposed then mirrored top-bottom, 2 5 / 1 4 / 0 3.
        assert_eq!(seen[1].data, vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        assert_eq!((seen[4].width, seen[4].height), (2, 3));
        assert_eq!(seen[4].data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(seen[6].data, vec![2.0, 5.0, 1.0, 4.0, 0.0, 3.0]);
        // The eight views are the eight different symmetries.
        for a in 0..8 {
            for b in a + 1..8 {
                assert_ne!(seen[a], seen[b], "views {a} and {b}");
            }
        }
        assert_eq!(
            (Views::One.count(), Views::Flips.count(), Views::Dihedral.count()),
            (1, 4, 8)
        );
    }

    #[test]
    fn the_best_threshold_keeps_a_faint_membrane_by_hand() {
        // One row of 5 pixels: cell | membrane | cell, the membrane predicted faintly (cell
        // probability 0.4 at the middle, where the truth is membrane). At 0.5 it is membrane and
        // the two cells stay apart (V_rand 1); at 0.3 it turns cell and merges them.
        let p = vec![vec![0.9, 0.8, 0.4, 0.8, 0.9]];
        let truth = [true, true, false, true, true];
        let (t, table) = best_threshold(&p, &[&truth], &[5], &[0.3, 0.5, 0.85]).unwrap();
        assert_eq!(t, 0.5);
        let at = |t: f32| table.iter().find(|(c, _)| *c == t).unwrap().1;
        assert_eq!(at(0.5).pixel_accuracy, 1.0);
        // At 0.3 one region covers the truth's two (2 pixels each): sum p^2 = 2 (1/2)^2 = 1/2,
        // sum s^2 = 1, sum t^2 = 1/2, V_rand = (1/2) / (1/2 + 1/4) = 2/3.
        assert!((at(0.3).v_rand - 2.0 / 3.0).abs() < 1e-12, "{table:?}");
        // At 0.85 the 0.8 pixels become membrane too: 2 of 5 wrong.
        assert!((at(0.85).pixel_accuracy - 0.6).abs() < 1e-12, "{table:?}");
        assert!(best_threshold(&[], &[], &[], &[0.5]).is_none());
    }
}
