//! The style models of the zoo: the loss network that measures content and style (random,
//! normalised multi-scale filters: no download), and the Johnson-style feed-forward transform
//! network, written with the Keras-like API.
//!
//! The loss network follows the random-weight results of He, Wang and Hopcroft (2016) and
//! Ustyuzhaninov et al. (2017): untrained filters carry texture statistics, provided each
//! filter is normalised. Here every filter is drawn from a seeded Gaussian, made zero-mean
//! over its window and input channels (so a flat colour or the previous ReLU layer's mean
//! gives no response) and scaled to unit L2 norm (so every channel and every layer has
//! comparable magnitude). Four 3x3 convolutions with ReLU at 1, 1/2, 1/4 and 1/8 resolution
//! (2x2 average pooling between them, which the texture-synthesis literature prefers to max
//! pooling) see 3 to 45 pixel windows.

use crate::error::{DataError, Result};
use fovea_graph::init::Rng;
use fovea_graph::layers::{
    Activation, Add, AveragePooling2D, Conv2D, Dense, GlobalAveragePooling2D, Input, InstanceNormalization,
    ReflectionPadding2D, UpSampling2D,
};
use fovea_graph::model::SymbolicTensor;
use fovea_graph::{Functional, Model, Tensor};

/// The input layer's name of every style model.
pub const IMAGE: &str = "image";
/// The transform network's output layer (the stylised image, in `[0, 1]`).
pub const STYLISED: &str = "stylised";

/// Channels of the random loss network's four convolutions.
const RANDOM_WIDTHS: [usize; 4] = [32, 64, 128, 128];

/// Which layers of a loss network measure content and style.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayers {
    /// The layer whose activations the content loss compares.
    pub content: String,
    /// The layers whose Gram matrices the style loss compares.
    pub style: Vec<String>,
}

impl FeatureLayers {
    /// Every distinct layer named, content first.
    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.content.clone()];
        for s in &self.style {
            if !v.contains(s) {
                v.push(s.clone());
            }
        }
        v
    }
}

/// The default layers of the random loss network (names without a prefix): content at
/// `conv3` (1/4 resolution), style at all four.
pub fn random_feature_layers() -> FeatureLayers {
    FeatureLayers {
        content: "conv3".into(),
        style: (1..=4).map(|k| format!("conv{k}")).collect(),
    }
}

/// The smallest side the loss network accepts (three 2x2 poolings leave at least 2 pixels).
pub const MIN_FEATURE_SIDE: usize = 16;

/// Adds the random loss network's layers (named `{prefix}conv1..4`, `{prefix}pool1..3`) on `x`
/// to `f`, stopping after `depth` convolutions (1..=4), and returns each convolution's output
/// by its unprefixed name. Their weights are set by [`set_random_weights`].
pub fn add_random_features(
    f: &mut Functional,
    x: SymbolicTensor,
    prefix: &str,
    depth: usize,
) -> Vec<(String, SymbolicTensor)> {
    let mut h = x;
    let mut out = Vec::new();
    for (k, width) in RANDOM_WIDTHS.iter().enumerate().take(depth.clamp(1, 4)) {
        if k > 0 {
            h = f.call(AveragePooling2D::new(2).name(format!("{prefix}pool{k}")), &[h]);
        }
        let name = format!("conv{}", k + 1);
        h = f.call(
            Conv2D::new(*width, 3)
                .padding("same")
                .activation("relu")
                .name(format!("{prefix}{name}")),
            &[h],
        );
        out.push((name, h));
    }
    out
}

/// Sets the random loss network's kernels in `model` (layers `{prefix}conv1..`, as many as it
/// has) to seeded Gaussian filters, each made zero-mean and unit-norm over its window and input
/// channels, and the biases to zero; freezes those layers. The same `seed` gives the same
/// filters for every image size and prefix.
pub fn set_random_weights(model: &mut Model, prefix: &str, seed: u64) -> Result<()> {
    for k in 1..=RANDOM_WIDTHS.len() {
        let layer = format!("{prefix}conv{k}");
        let kernel = format!("{layer}/kernel");
        let Some(p) = model.params.get(&kernel) else { break };
        let shape = p.value.shape.clone();
        let [kh, kw, ci, co] = shape[..] else {
            return Err(DataError::value(&kernel, "expected a 4-D HWIO kernel"));
        };
        let mut rng = Rng::for_name(seed, &format!("conv{k}/kernel"));
        let per = kh * kw * ci;
        let mut filters = vec![vec![0.0f64; per]; co];
        for f in filters.iter_mut() {
            f.iter_mut().for_each(|v| *v = rng.normal());
            let mean = f.iter().sum::<f64>() / per as f64;
            f.iter_mut().for_each(|v| *v -= mean);
            let norm = f.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            f.iter_mut().for_each(|v| *v /= norm);
        }
        // HWIO: element (tap, o) with tap = (y, x, i) flattened.
        let mut data = vec![0.0f32; per * co];
        for (o, f) in filters.iter().enumerate() {
            for (t, v) in f.iter().enumerate() {
                data[t * co + o] = *v as f32;
            }
        }
        model.set_weight(&kernel, Tensor::new(shape, data, &kernel)?)?;
        model.set_weight(&format!("{layer}/bias"), Tensor::zeros(vec![co]))?;
        model.set_trainable(&layer, false)?;
    }
    Ok(())
}

/// The random loss network on `height x width` RGB images in `[0, 1]` (input `image`), with
/// the layers of `layers` as outputs, weights from `seed`, every layer frozen.
pub fn random_loss_network(height: usize, width: usize, layers: &FeatureLayers, seed: u64) -> Result<Model> {
    check_side("loss network", height, width, MIN_FEATURE_SIDE)?;
    let mut f = Functional::new("random_features");
    let x = f.input(Input::new(&[height, width, 3]).name(IMAGE));
    let feats = add_random_features(&mut f, x, "", 4);
    let outs = pick(&feats, &layers.all(), "random loss network")?;
    let mut m = f.build(&outs, seed)?;
    set_random_weights(&mut m, "", seed)?;
    m.set_all_trainable(false)?;
    Ok(m)
}

/// Side of the images [`feature_classifier`] is trained on (CIFAR-10).
pub const CLASSIFIER_SIDE: usize = 32;

/// The loss network's four convolutions as a classifier, to train them instead of drawing
/// them: the layers of [`add_random_features`] (`conv1..4`, `pool1..3`) on 32x32 RGB images
/// in `[0, 1]` (input `image`), then global average pooling (`gap`) and `classes` logits
/// (`logits`). Its `conv*` weights fit [`random_loss_network`] at any image size.
pub fn feature_classifier(classes: usize, seed: u64) -> Result<Model> {
    let mut f = Functional::new("feature_classifier");
    let x = f.input(Input::new(&[CLASSIFIER_SIDE, CLASSIFIER_SIDE, 3]).name(IMAGE));
    let feats = add_random_features(&mut f, x, "", RANDOM_WIDTHS.len());
    let last = feats[feats.len() - 1].1;
    let h = f.call(GlobalAveragePooling2D::new().name("gap"), &[last]);
    let logits = f.call(Dense::new(classes).name("logits"), &[h]);
    Ok(f.build(&[logits], seed)?)
}

/// Picks the named features (errors naming a layer the network lacks).
fn pick(feats: &[(String, SymbolicTensor)], names: &[String], net: &str) -> Result<Vec<SymbolicTensor>> {
    names
        .iter()
        .map(|n| {
            feats.iter().find(|(k, _)| k == n).map(|(_, t)| *t).ok_or_else(|| {
                DataError::value(
                    format!("layer '{n}'"),
                    format!(
                        "the {net} has no such layer; its layers are {}",
                        feats
                            .iter()
                            .map(|(k, _)| format!("'{k}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// The size of a [`transform_network`].
#[derive(Debug, Clone, PartialEq)]
pub struct TransformConfig {
    /// Channels at full, 1/2 and 1/4 resolution (Johnson et al.: 32, 64, 128).
    pub widths: [usize; 3],
    /// Residual blocks at 1/4 resolution (Johnson et al.: 5).
    pub residual_blocks: usize,
}

impl Default for TransformConfig {
    /// A slimmer net than Johnson et al.'s (16, 32, 64 channels, 3 blocks: about 1/4 of the
    /// FLOPs), so that it trains within an hour on two CPU cores.
    fn default() -> Self {
        TransformConfig {
            widths: [16, 32, 64],
            residual_blocks: 3,
        }
    }
}

/// The smallest side the transform network accepts.
pub const MIN_TRANSFORM_SIDE: usize = 16;

/// Checks a side against the networks' downsampling: at least `min` and a multiple of 4.
pub fn check_side(what: &str, height: usize, width: usize, min: usize) -> Result<()> {
    if height < min || width < min || !height.is_multiple_of(4) || !width.is_multiple_of(4) {
        return Err(DataError::value(
            what,
            format!(
                "image size {width}x{height} is too small or not a multiple of 4 for the network's \
                 downsampling: each side must be a multiple of 4 and at least {min}"
            ),
        ));
    }
    Ok(())
}

/// Adds the transform network's layers on `x` (named `t_...`) and returns its output layer
/// [`STYLISED`]: reflection-padded 9x9 conv, two stride-2 3x3 convs, residual blocks,
/// two (nearest 2x upsample + 3x3 conv), a 9x9 conv to RGB and a sigmoid; instance
/// normalisation and ReLU after every conv but the last.
pub fn add_transform(f: &mut Functional, x: SymbolicTensor, cfg: &TransformConfig) -> SymbolicTensor {
    let [w0, w1, w2] = cfg.widths;
    let mut n = 0;
    let mut conv = |f: &mut Functional, h: SymbolicTensor, filters: usize, k: usize, stride: usize, relu: bool| {
        n += 1;
        let p = f.call(ReflectionPadding2D::new(k / 2).name(format!("t_pad{n}")), &[h]);
        let c = f.call(Conv2D::new(filters, k).strides(stride).name(format!("t_conv{n}")), &[p]);
        let c = f.call(InstanceNormalization::new().name(format!("t_norm{n}")), &[c]);
        if relu {
            f.call(Activation::new("relu").name(format!("t_relu{n}")), &[c])
        } else {
            c
        }
    };
    let mut h = conv(f, x, w0, 9, 1, true);
    h = conv(f, h, w1, 3, 2, true);
    h = conv(f, h, w2, 3, 2, true);
    for b in 0..cfg.residual_blocks {
        let r = conv(f, h, w2, 3, 1, true);
        let r = conv(f, r, w2, 3, 1, false);
        h = f.call(Add::new().name(format!("t_res{}", b + 1)), &[h, r]);
    }
    for (k, width) in [w1, w0].into_iter().enumerate() {
        h = f.call(UpSampling2D::new(2).name(format!("t_up{}", k + 1)), &[h]);
        h = conv(f, h, width, 3, 1, true);
    }
    let p = f.call(ReflectionPadding2D::new(4).name("t_pad_out"), &[h]);
    let c = f.call(Conv2D::new(3, 9).name("t_conv_out"), &[p]);
    f.call(Activation::new("sigmoid").name(STYLISED), &[c])
}

/// The transform network alone on `height x width` RGB images (input `image`, output
/// `stylised`), seeded Glorot-uniform kernels.
pub fn transform_network(height: usize, width: usize, cfg: &TransformConfig, seed: u64) -> Result<Model> {
    check_side("transform network", height, width, MIN_TRANSFORM_SIDE)?;
    let mut f = Functional::new("style_transform");
    let x = f.input(Input::new(&[height, width, 3]).name(IMAGE));
    let y = add_transform(&mut f, x, cfg);
    Ok(f.build(&[y], seed)?)
}

/// The transform network followed by the random loss network (training model): input
/// `image`; outputs the loss network's `layers` on the stylised image (unprefixed names), the
/// content layer on the input image (named `ref_<content>`, the content target computed in
/// the same program), and `stylised`. Loss-network layers are frozen.
pub fn transform_training_network(
    height: usize,
    width: usize,
    cfg: &TransformConfig,
    layers: &FeatureLayers,
    seed: u64,
    feature_seed: u64,
) -> Result<Model> {
    check_side("transform network", height, width, MIN_TRANSFORM_SIDE)?;
    let mut f = Functional::new("style_transform_training");
    let x = f.input(Input::new(&[height, width, 3]).name(IMAGE));
    let y = add_transform(&mut f, x, cfg);
    let feats = add_random_features(&mut f, y, "", 4);
    let mut outs = pick(&feats, &layers.all(), "random loss network")?;
    let depth: usize = layers
        .content
        .strip_prefix("conv")
        .and_then(|d| d.parse().ok())
        .unwrap_or(4);
    let refs = add_random_features(&mut f, x, "ref_", depth);
    outs.extend(pick(
        &refs,
        std::slice::from_ref(&layers.content),
        "random loss network",
    )?);
    outs.push(y);
    let mut m = f.build(&outs, seed)?;
    set_random_weights(&mut m, "", feature_seed)?;
    set_random_weights(&mut m, "ref_", feature_seed)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_filters_are_zero_mean_unit_norm_seeded_and_frozen() {
        let layers = random_feature_layers();
        let a = random_loss_network(16, 24, &layers, 5).unwrap();
        let b = random_loss_network(32, 32, &layers, 5).unwrap();
        let c = random_loss_network(16, 24, &layers, 6).unwrap();
        for k in 1..=4 {
            let name = format!("conv{k}/kernel");
            let w = &a.params.get(&name).unwrap().value;
            let co = w.shape[3];
            for o in 0..co {
                let f: Vec<f64> = w.data.iter().skip(o).step_by(co).map(|v| *v as f64).collect();
                let mean = f.iter().sum::<f64>() / f.len() as f64;
                let norm = f.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!(
                    mean.abs() < 1e-6 && (norm - 1.0).abs() < 1e-5,
                    "{name}[{o}]: {mean} {norm}"
                );
            }
            assert_eq!(w, &b.params.get(&name).unwrap().value, "size-independent");
            assert_ne!(w, &c.params.get(&name).unwrap().value, "seeded");
            assert!(!a.is_trainable(&format!("conv{k}")).unwrap());
        }
        assert_eq!(a.output_names(), vec!["conv3", "conv1", "conv2", "conv4"]);
    }

    #[test]
    fn sizes_and_layers_the_networks_cannot_take_are_errors() {
        let layers = random_feature_layers();
        let e = random_loss_network(8, 64, &layers, 1).unwrap_err().to_string();
        assert!(e.contains("64x8") && e.contains("at least 16"), "{e}");
        let e = transform_network(30, 32, &TransformConfig::default(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("multiple of 4"), "{e}");
        let bad = FeatureLayers {
            content: "conv9".into(),
            style: vec!["conv1".into()],
        };
        let e = random_loss_network(16, 16, &bad, 1).unwrap_err().to_string();
        assert!(e.contains("'conv9'") && e.contains("'conv4'"), "{e}");
    }

    #[test]
    fn the_transform_network_keeps_the_image_size() {
        let m = transform_network(20, 32, &TransformConfig::default(), 3).unwrap();
        assert_eq!(m.output_shapes(), vec![vec![20, 32, 3]]);
        let t =
            transform_training_network(16, 16, &TransformConfig::default(), &random_feature_layers(), 3, 4).unwrap();
        assert_eq!(
            t.output_names(),
            vec!["conv3", "conv1", "conv2", "conv4", "ref_conv3", "stylised"]
        );
        assert!(t.is_trainable("t_conv1").unwrap() && !t.is_trainable("ref_conv2").unwrap());
    }
}
