//! Whole-slice prediction and evaluation: overlap-tile inference through a compiled network,
//! thresholded at probability 0.5, scored against the true masks.

use std::time::Instant;

use fovea_engine::CompiledModel;

use super::data::Slice;
use super::metrics::{Scores, score};
use super::tiles::{TileSpec, overlap_tile};
use crate::Result;
use crate::vision::Image;

/// How whole images are predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inference {
    /// Tile geometry (the tile is the network's input side).
    pub tiles: TileSpec,
    /// Tiles per batch.
    pub batch: usize,
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
        }
    }

    /// The cell probability of every pixel of the one-channel `image` (`sigmoid` of the logit).
    pub fn probabilities(&self, model: &mut CompiledModel, image: &Image) -> Result<Vec<f32>> {
        let batch = self.batch;
        let logits = overlap_tile(image, self.tiles, batch, |x| Ok(model.predict(x, batch)?))?;
        Ok(logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect())
    }

    /// The predicted mask of `image`, `true` = cell.
    pub fn mask(&self, model: &mut CompiledModel, image: &Image) -> Result<Vec<bool>> {
        Ok(self.probabilities(model, image)?.iter().map(|&p| p >= 0.5).collect())
    }
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
