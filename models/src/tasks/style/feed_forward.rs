//! Johnson-style feed-forward transfer: a transform network trained for one style on a folder
//! of content photos against the optimisation's losses (content at the random loss network's
//! content layer against the same network on the input photo, computed in the same program;
//! Gram matrices of the style image; total variation of the output); then stylising any image
//! is one forward pass.

use super::data::{fit, from_batch, read_rgb, to_batch, working_size};
use super::loss::{ContentTarget, GramTarget, TvSource, content_term, host_gram, style_term, tv_term};
use crate::error::{DataError, Result};
use crate::vision::crop::centre_crop;
use crate::vision::{Filter, Image, resize};
use crate::zoo::style::{
    self as zoo, FeatureLayers, IMAGE, MIN_FEATURE_SIDE, MIN_TRANSFORM_SIDE, STYLISED, TransformConfig,
};
use fovea_engine::predict::predict_arrays;
use fovea_engine::progress::Verbosity;
use fovea_engine::{CheckpointOptions, CompiledModel, Device, FitOptions, Flow, NamedArrays, checkpoint};
use fovea_graph::model::ParamStore;
use fovea_graph::train::{CompileConfig, Optimizer, Schedule};
use fovea_graph::{Model, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Settings of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Training crops are `size x size` (the photo's shorter side scaled to it, centre crop).
    pub size: usize,
    /// The painting's longer side, in pixels, when its Gram targets are measured (`None`: the
    /// crops' `size`). The network paints strokes at the scale it learned, so a network meant to
    /// be applied at 256 pixels learns the painting's strokes as they are at 256.
    pub style_size: Option<usize>,
    /// Passes over the photos.
    pub epochs: usize,
    /// Photos per step.
    pub batch_size: usize,
    /// Adam's learning rate (the peak, with `cosine`).
    pub learning_rate: f32,
    /// A linear warm-up over the first epoch (at most a quarter of the run), then a cosine decay
    /// to 1% of the rate at the end of the last epoch (else the same rate throughout).
    pub cosine: bool,
    /// Weight of the content loss.
    pub content_weight: f32,
    /// Weight of the style loss.
    pub style_weight: f32,
    /// Weight of the total-variation loss.
    pub tv_weight: f32,
    /// The transform network's size.
    pub transform: TransformConfig,
    /// Seed of the transform network's initial weights and of the shuffling.
    pub seed: u64,
    /// The random loss network's seed.
    pub feature_seed: u64,
    /// Stop after the epoch that passes this many seconds.
    pub max_seconds: Option<f64>,
    /// Crash-safe checkpoints at every epoch end (and every N steps), and resuming.
    pub checkpoint: Option<CheckpointOptions>,
}

/// The defaults: 128-pixel crops, 20 epochs of batch 4, Adam 2e-3, content 0.1 / style 1 /
/// TV 2. On the 200 raccoon photos that is 1,000 steps: 35-57 minutes on a 2-core lavapipe
/// machine, giving the great-wave network of BENCHMARKS.md (style loss within 2.3-2.4x of the
/// optimisation's on a photo it never saw).
impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            size: 128,
            style_size: None,
            epochs: 20,
            batch_size: 4,
            learning_rate: 2e-3,
            cosine: false,
            content_weight: 0.1,
            style_weight: 1.0,
            tv_weight: 2.0,
            transform: TransformConfig::default(),
            seed: 1,
            feature_seed: 1,
            max_seconds: None,
            checkpoint: None,
        }
    }
}

impl TrainOptions {
    /// Checks the settings before any work.
    pub fn validate(&self) -> Result<()> {
        zoo::check_side("--size", self.size, self.size, MIN_TRANSFORM_SIDE.max(MIN_FEATURE_SIDE))?;
        if self.size > 1024 {
            return Err(DataError::value("--size", format!("{} is larger than 1024", self.size)));
        }
        if let Some(s) = self.style_size {
            if !(MIN_FEATURE_SIDE..=2048).contains(&s) {
                return Err(DataError::value(
                    "--style-size",
                    format!("{s}: expected {MIN_FEATURE_SIDE} to 2048 pixels"),
                ));
            }
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(DataError::value("--epochs / --batch-size", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(DataError::value("learning rate", "must be positive"));
        }
        Ok(())
    }
}

/// One epoch's mean losses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLosses {
    /// The epoch (from 1).
    pub epoch: usize,
    /// The weighted total.
    pub loss: f64,
    /// Content loss.
    pub content: f64,
    /// Style loss.
    pub style: f64,
    /// Seconds this epoch took.
    pub seconds: f64,
}

/// A trained transform network.
#[derive(Debug)]
pub struct Trained {
    /// The transform network's weights (`t_...` names), as [`save`] writes them.
    pub weights: ParamStore,
    /// Per-epoch losses.
    pub epochs: Vec<EpochLosses>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Training photos used.
    pub photos: usize,
}

/// The Gram targets of `style` at the scale of `size`-pixel training crops, from the random
/// loss network with `seed`.
pub fn style_targets(
    device: &Arc<Device>,
    style: &Image,
    size: usize,
    layers: &FeatureLayers,
    seed: u64,
) -> Result<Vec<GramTarget>> {
    let style = style.to_rgb();
    let (w, h) = working_size(style.width, style.height, size, MIN_FEATURE_SIDE);
    let net = zoo::random_loss_network(h, w, layers, seed)?;
    let outs = predict_arrays(
        device,
        &net,
        &NamedArrays::new().with(IMAGE, to_batch(&fit(&style, w, h)?)?),
        1,
    )?;
    layers
        .style
        .iter()
        .map(|l| {
            let t = outs
                .iter()
                .find(|(n, _)| n == l)
                .map(|(_, t)| t)
                .ok_or_else(|| DataError::value(format!("layer '{l}'"), "is not an output of the loss network"))?;
            Ok(GramTarget {
                layer: l.clone(),
                gram: host_gram(t).remove(0),
            })
        })
        .collect()
}

/// A photo as a `size x size` training crop: shorter side scaled to `size`, centre crop.
pub fn training_crop(image: &Image, size: usize) -> Result<Image> {
    let s = size as f64 / image.width.min(image.height).max(1) as f64;
    let (w, h) = (
        ((image.width as f64 * s).round() as usize).max(size),
        ((image.height as f64 * s).round() as usize).max(size),
    );
    centre_crop(&fit(&image.to_rgb(), w, h)?, size, size)
}

/// Trains a transform network for `style` on `photos`; `on_epoch` sees each epoch's losses.
pub fn train(
    device: &Arc<Device>,
    style: &Image,
    photos: &[PathBuf],
    opts: &TrainOptions,
    mut on_epoch: impl FnMut(&EpochLosses),
) -> Result<Trained> {
    opts.validate()?;
    let t0 = Instant::now();
    let layers = zoo::random_feature_layers();
    let mut crops = Vec::with_capacity(photos.len());
    for p in photos {
        crops.push(training_crop(&read_rgb(p)?, opts.size)?);
    }
    if crops.is_empty() {
        return Err(DataError::value("--data", "no content photos"));
    }
    let style_size = opts.style_size.unwrap_or(opts.size);
    let grams = style_targets(device, style, style_size, &layers, opts.feature_seed)?;
    let model = zoo::transform_training_network(
        opts.size,
        opts.size,
        &opts.transform,
        &layers,
        opts.seed,
        opts.feature_seed,
    )?;
    let terms = vec![
        content_term(
            opts.content_weight,
            layers.content.clone(),
            ContentTarget::Output(format!("ref_{}", layers.content)),
        ),
        style_term(opts.style_weight, grams),
        tv_term(opts.tv_weight, TvSource::Output(STYLISED.into())),
    ];
    let batch = opts.batch_size.min(crops.len());
    let mut optimizer = Optimizer::adam(opts.learning_rate);
    if opts.cosine {
        let per_epoch = crops.len().div_ceil(batch) as u64;
        optimizer.learning_rate = Schedule::epoch_cosine(opts.learning_rate, per_epoch, opts.epochs as u64);
    }
    let cfg = CompileConfig::with_terms(terms, optimizer, vec![]);
    let mut cm = CompiledModel::new(device, model, cfg)?;
    let mut data = Vec::with_capacity(crops.len() * opts.size * opts.size * 3);
    for c in &crops {
        data.extend(to_batch(c)?.data);
    }
    let x = Tensor::new(vec![crops.len(), opts.size, opts.size, 3], data, "photos")?;
    let arrays = NamedArrays::new().with(IMAGE, x);
    let task = format!(
        "style {}x{} | {} photos | {:?} | batch {batch} | lr {}{} | weights {} {} {} | seeds {} {}",
        opts.size,
        opts.size,
        crops.len(),
        opts.transform,
        opts.learning_rate,
        if opts.cosine {
            format!(" cosine over {} epochs", opts.epochs)
        } else {
            String::new()
        },
        opts.content_weight,
        opts.style_weight,
        opts.tv_weight,
        opts.seed,
        opts.feature_seed
    );
    // A resumed run's clock goes on from its last epoch.
    let mut offset: Option<f64> = None;
    let epochs = cm.fit_epochs(
        opts.epochs,
        batch,
        opts.checkpoint.as_ref(),
        &task,
        |cm, epoch, inner| -> Result<(EpochLosses, Flow)> {
            let fo = FitOptions {
                epochs: 1,
                batch_size: batch,
                shuffle: true,
                seed: opts.seed.wrapping_add(epoch as u64 - 1),
                verbosity: Verbosity::Silent,
                checkpoint: inner,
                ..FitOptions::default()
            };
            let h = cm.fit_arrays(&arrays, &fo)?;
            let log = h.epochs.last().cloned();
            let get = |k: &str| {
                log.as_ref()
                    .and_then(|l| l.train.iter().find(|(n, _)| n == k).map(|(_, v)| *v))
                    .unwrap_or(f64::NAN)
            };
            let el = EpochLosses {
                epoch,
                loss: get("loss"),
                content: get("content_loss"),
                style: get("style_loss"),
                seconds: log.map(|l| l.seconds).unwrap_or(0.0),
            };
            on_epoch(&el);
            let elapsed = *offset.get_or_insert(0.0) + t0.elapsed().as_secs_f64();
            let stop = opts.max_seconds.is_some_and(|m| elapsed > m);
            Ok((el, if stop { Flow::Stop } else { Flow::Continue }))
        },
    )?;
    let trained = cm.model()?;
    let mut weights = ParamStore::new(0);
    for p in trained.params.iter().filter(|p| p.name.starts_with("t_")) {
        weights.ensure(
            &p.name,
            &p.value.shape,
            fovea_graph::init::Initializer::Zeros,
            true,
            "transform",
        )?;
        weights.set(&p.name, p.value.clone())?;
    }
    Ok(Trained {
        weights,
        epochs,
        seconds: t0.elapsed().as_secs_f64(),
        photos: crops.len(),
    })
}

/// Writes the transform weights (safetensors, atomically).
pub fn save(path: &Path, weights: &ParamStore) -> Result<()> {
    Ok(checkpoint::save_params(path, weights)?)
}

/// A transform network read from a weights file, for any image size.
#[derive(Debug)]
pub struct Stylizer {
    weights: Vec<(String, Tensor)>,
    config: TransformConfig,
    path: PathBuf,
}

impl Stylizer {
    /// Reads the weights [`save`] wrote; the network's size comes from their shapes.
    pub fn load(path: &Path) -> Result<Stylizer> {
        let weights = checkpoint::read_safetensors(path)?;
        let width = |layer: &str| {
            weights
                .iter()
                .find(|(n, _)| n == &format!("{layer}/kernel"))
                .and_then(|(_, t)| t.shape.get(3).copied())
                .ok_or_else(|| DataError::format(path, format!("not a style transform network: no {layer}/kernel")))
        };
        let widths = [width("t_conv1")?, width("t_conv2")?, width("t_conv3")?];
        let convs = weights
            .iter()
            .filter(|(n, _)| n.starts_with("t_conv") && n.ends_with("/kernel") && !n.starts_with("t_conv_out"))
            .count();
        if convs < 5 || (convs - 5) % 2 != 0 {
            return Err(DataError::format(
                path,
                format!("not a style transform network: {convs} t_conv layers"),
            ));
        }
        Ok(Stylizer {
            weights,
            config: TransformConfig {
                widths,
                residual_blocks: (convs - 5) / 2,
            },
            path: path.to_path_buf(),
        })
    }

    /// The transform network for `width x height` with these weights.
    pub fn network(&self, width: usize, height: usize) -> Result<Model> {
        let mut m = zoo::transform_network(height, width, &self.config, 0)?;
        let mut problems = Vec::new();
        let names: Vec<String> = m.params.iter().map(|p| p.name.clone()).collect();
        for n in &names {
            match self.weights.iter().find(|(k, _)| k == n) {
                Some((_, t)) => m.set_weight(n, t.clone())?,
                None => problems.push(n.clone()),
            }
        }
        if !problems.is_empty() {
            return Err(DataError::format(
                &self.path,
                format!("missing weights {}", problems.join(", ")),
            ));
        }
        Ok(m)
    }

    /// Stylises `image` (any size of at least 16 pixels a side): resized to the nearest
    /// multiple of 4 the network needs, one forward pass, resized back.
    pub fn apply(&self, device: &Arc<Device>, image: &Image) -> Result<Image> {
        let image = image.to_rgb();
        let round = |v: usize| (v.div_ceil(4) * 4).max(MIN_TRANSFORM_SIDE);
        if image.width < MIN_TRANSFORM_SIDE || image.height < MIN_TRANSFORM_SIDE {
            return Err(DataError::value(
                "image",
                format!(
                    "{}x{} is too small for the transform network's downsampling: at least {MIN_TRANSFORM_SIDE} pixels a side",
                    image.width, image.height
                ),
            ));
        }
        let (w, h) = (round(image.width), round(image.height));
        let net = self.network(w, h)?;
        let x = to_batch(&fit(&image, w, h)?)?;
        let y = predict_arrays(device, &net, &NamedArrays::new().with(IMAGE, x), 1)?;
        let out = from_batch(&y[0].1)?;
        if (w, h) == (image.width, image.height) {
            Ok(out)
        } else {
            resize(&out, image.width, image.height, Filter::Bilinear)
        }
    }
}
