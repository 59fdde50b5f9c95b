//! A trained loss network: the random network's four convolutions trained as a CIFAR-10
//! classifier ([`crate::zoo::style::feature_classifier`]) instead of drawn, then rescaled the way
//! Gatys et al. rescaled VGG: every channel's mean activation over a set of images becomes 1, the
//! next layer's weights compensating, so the network computes the same features up to one
//! positive scale per channel and every layer weighs alike in the losses.
//!
//! This is the "VGG-style net that Fovea trains itself" of the style-transfer task, for a
//! machine that cannot download VGG: `fovea style features` writes the weights, and
//! `fovea style optimize --feature-weights W` uses them in place of the random filters.

use crate::data::Dataset;
use crate::data::arrays::{ArrayStream, parse_array_augment};
use crate::error::{DataError, Result};
use crate::zoo::style::{self as zoo, IMAGE};
use fovea_engine::predict::predict_arrays;
use fovea_engine::progress::Verbosity;
use fovea_engine::{CompiledModel, Device, FitOptions, History, NamedArrays, Targets, checkpoint};
use fovea_graph::model::ParamStore;
use fovea_graph::train::{CompileConfig, Loss, Metric, Optimizer, Schedule};
use fovea_graph::{Model, Tensor};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How [`train`] trains the feature classifier.
#[derive(Debug, Clone)]
pub struct FeatureTrainOptions {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's peak learning rate (warm-up over the first epoch, cosine decay to 1%).
    pub learning_rate: f32,
    /// Seed of the initial weights and the shuffling.
    pub seed: u64,
    /// The augmentation while training (`parse_array_augment`'s syntax), or none.
    pub augment: Option<String>,
    /// How many training images set each channel's mean activation.
    pub normalise_images: usize,
    /// Progress output of the training.
    pub verbosity: Verbosity,
}

impl Default for FeatureTrainOptions {
    fn default() -> Self {
        FeatureTrainOptions {
            epochs: 10,
            batch_size: 32,
            learning_rate: 2e-3,
            seed: 42,
            augment: Some("flip,reflect-crop".into()),
            normalise_images: 1000,
            verbosity: Verbosity::Auto,
        }
    }
}

impl FeatureTrainOptions {
    /// Checks the options before any work.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("--epochs", self.epochs),
            ("--batch-size", self.batch_size),
            ("normalise_images", self.normalise_images),
        ] {
            if v == 0 {
                return Err(DataError::value(name, "must be positive"));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(DataError::value(
                "--learning-rate",
                format!("must be a positive number, got {}", self.learning_rate),
            ));
        }
        Ok(())
    }
}

/// What [`train`] gives back.
#[derive(Debug)]
pub struct TrainedFeatures {
    /// The loss network's weights (`conv1..4/kernel` and `/bias`), normalised: what
    /// [`super::features::LossNetwork::Trained`] loads.
    pub weights: ParamStore,
    /// The classifier's accuracy on the test images.
    pub test_accuracy: f64,
    /// Its loss there.
    pub test_loss: f64,
    /// Each layer's channel means before normalisation, by layer name.
    pub channel_means: Vec<(String, Vec<f64>)>,
    /// The training history (loss, accuracy, validation).
    pub history: History,
    /// Wall time of training and normalisation.
    pub seconds: f64,
}

impl TrainedFeatures {
    /// Channels whose mean activation was zero on the normalisation images (never active).
    pub fn dead_channels(&self) -> usize {
        self.channel_means
            .iter()
            .map(|(_, m)| m.iter().filter(|v| **v <= DEAD).count())
            .sum()
    }
}

/// Below this mean activation a channel counts as dead and keeps its scale.
const DEAD: f64 = 1e-6;

/// The loss-network layers, in order.
fn conv_layers() -> Vec<String> {
    let mut v = zoo::random_feature_layers().style;
    v.sort();
    v
}

/// Trains [`zoo::feature_classifier`] on `train` (32x32 RGB in `[0, 1]`, as the CIFAR-10
/// loader gives), reports its test accuracy on `test`, and returns its convolutions normalised
/// on the first training images.
pub fn train(
    device: &Arc<Device>,
    train: &Dataset,
    test: &Dataset,
    opts: &FeatureTrainOptions,
) -> Result<TrainedFeatures> {
    opts.validate()?;
    let side = zoo::CLASSIFIER_SIDE;
    for (what, d) in [("training images", train), ("test images", test)] {
        if d.images.shape[1..] != [side, side, 3] {
            return Err(DataError::value(
                what,
                format!(
                    "the feature classifier needs {side}x{side} RGB images (CIFAR-10), got samples of shape {:?}",
                    &d.images.shape[1..]
                ),
            ));
        }
        if d.is_empty() {
            return Err(DataError::value(what, "no images"));
        }
    }
    let t0 = Instant::now();
    let model = zoo::feature_classifier(train.classes, opts.seed)?;
    let per_epoch = train.len().div_ceil(opts.batch_size) as u64;
    let mut optimizer = Optimizer::adam(opts.learning_rate);
    optimizer.learning_rate = Schedule::epoch_cosine(opts.learning_rate, per_epoch, opts.epochs as u64);
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        optimizer,
        vec![Metric::Accuracy],
    );
    let (input, output) = (model.input_names()[0].clone(), model.output_names()[0].clone());
    let mut cm = CompiledModel::new(device, model, cfg)?;
    let fo = FitOptions {
        epochs: opts.epochs,
        batch_size: opts.batch_size,
        shuffle: true,
        seed: opts.seed,
        validation: Some((test.images.clone(), Targets::Classes(test.labels.clone()))),
        verbosity: opts.verbosity,
        ..FitOptions::default()
    };
    let history = match &opts.augment {
        Some(spec) => {
            let stream = ArrayStream::new(train.clone(), parse_array_augment(spec)?, &input, &output)?;
            cm.fit_dataset(Arc::new(stream), &fo)?
        }
        None => cm.fit(&train.images, &Targets::Classes(train.labels.clone()), &fo)?,
    };
    let result = cm.evaluate(&test.images, &Targets::Classes(test.labels.clone()), opts.batch_size)?;
    let get = |k: &str| result.iter().find(|(n, _)| n == k).map_or(f64::NAN, |(_, v)| *v);
    let mut net = loss_network_of(cm.model()?)?;
    let sample = train.take(opts.normalise_images.min(train.len())).images;
    let channel_means = normalise(device, &mut net, &sample)?;
    Ok(TrainedFeatures {
        weights: net.params,
        test_accuracy: get("accuracy"),
        test_loss: get("loss"),
        channel_means,
        history,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The loss network at the classifier's image size with the classifier's convolutions.
fn loss_network_of(classifier: &Model) -> Result<Model> {
    let side = zoo::CLASSIFIER_SIDE;
    let mut net = zoo::random_loss_network(side, side, &zoo::random_feature_layers(), 1)?;
    let names: Vec<String> = net.params.iter().map(|p| p.name.clone()).collect();
    for name in names {
        let p = classifier
            .params
            .get(&name)
            .ok_or_else(|| DataError::value(&name, "the feature classifier has no such weight"))?;
        net.set_weight(&name, p.value.clone())?;
    }
    Ok(net)
}

/// Rescales `net`'s convolutions (a loss network with every `conv*` layer among its outputs) so
/// that each channel's mean activation over `images` is 1: channel `c` of layer `l` is divided
/// by its mean `m`, and layer `l + 1`'s weights reading channel `c` multiplied by `m` (exact,
/// since ReLU and average pooling commute with positive scales). Dead channels keep their
/// scale. Returns the means before rescaling, by layer.
pub fn normalise(device: &Arc<Device>, net: &mut Model, images: &Tensor) -> Result<Vec<(String, Vec<f64>)>> {
    let outs = predict_arrays(device, net, &NamedArrays::new().with(IMAGE, images.clone()), 50)?;
    let layers = conv_layers();
    let mut means = Vec::with_capacity(layers.len());
    for layer in &layers {
        let t = outs
            .iter()
            .find(|(n, _)| n == layer)
            .map(|(_, t)| t)
            .ok_or_else(|| DataError::value(layer, "the loss network does not output this layer"))?;
        means.push((layer.clone(), channel_means(t)));
    }
    for (k, (layer, m)) in means.iter().enumerate() {
        let scale: Vec<f32> = m
            .iter()
            .map(|v| if *v > DEAD { (1.0 / v) as f32 } else { 1.0 })
            .collect();
        scale_channels(net, &format!("{layer}/kernel"), &scale, Axis::Output)?;
        scale_channels(net, &format!("{layer}/bias"), &scale, Axis::Output)?;
        if let Some((next, _)) = means.get(k + 1) {
            let inverse: Vec<f32> = scale.iter().map(|s| 1.0 / s).collect();
            scale_channels(net, &format!("{next}/kernel"), &inverse, Axis::Input)?;
        }
    }
    Ok(means)
}

/// The mean of each channel (last axis) of `t`, in f64.
fn channel_means(t: &Tensor) -> Vec<f64> {
    let c = t.shape.last().copied().unwrap_or(1).max(1);
    let mut sum = vec![0.0f64; c];
    for (i, v) in t.data.iter().enumerate() {
        sum[i % c] += *v as f64;
    }
    let n = (t.data.len() / c).max(1) as f64;
    sum.iter().map(|s| s / n).collect()
}

/// Which axis of an HWIO kernel (or a bias) a scale applies along.
#[derive(Clone, Copy)]
enum Axis {
    /// The output channels (the last axis).
    Output,
    /// The input channels (the second-to-last axis of a kernel).
    Input,
}

fn scale_channels(net: &mut Model, name: &str, scale: &[f32], axis: Axis) -> Result<()> {
    let mut t = net
        .params
        .get(name)
        .ok_or_else(|| DataError::value(name, "the loss network has no such weight"))?
        .value
        .clone();
    let shape = t.shape.clone();
    let (channels, inner) = match axis {
        Axis::Output => (shape[shape.len() - 1], 1),
        Axis::Input if shape.len() == 4 => (shape[2], shape[3]),
        Axis::Input => return Err(DataError::value(name, "expected a 4-D HWIO kernel")),
    };
    if channels != scale.len() {
        return Err(DataError::value(
            name,
            format!("has {channels} channels where the layer before has {}", scale.len()),
        ));
    }
    for (i, v) in t.data.iter_mut().enumerate() {
        *v *= scale[(i / inner) % channels];
    }
    Ok(net.set_weight(name, t)?)
}

/// Writes the loss network's weights (safetensors, atomically).
pub fn save(path: &Path, weights: &ParamStore) -> Result<()> {
    Ok(checkpoint::save_params(path, weights)?)
}
