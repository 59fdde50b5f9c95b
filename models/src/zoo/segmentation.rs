//! The segmentation models of the zoo, written with the Keras-like API: a U-Net (Ronneberger et
//! al. 2015, with "same" padding so that the output has the input's size) and a DeepLab-style net
//! (Chen et al. 2017: dilated convolutions at a fixed output stride, atrous spatial pyramid
//! pooling with an image-pooling branch, bilinear upsampling back to the input).
//!
//! Both end in a 1x1 convolution named [`OUTPUT`] giving `classes` logits per pixel (one logit
//! for a binary mask, as the membrane task uses).

use crate::error::{DataError, Result};
use fovea_graph::layers::{
    Activation, BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, GlobalAveragePooling2D, Input, MaxPooling2D,
    Reshape, UpSampling2D,
};
use fovea_graph::model::SymbolicTensor;
use fovea_graph::{Functional, Model};

/// The name of the output layer (the per-pixel logits) of every segmentation model.
pub const OUTPUT: &str = "mask";

/// The name of the image input of every segmentation model.
pub const INPUT: &str = "image";

/// How the U-Net's decoder doubles the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// A 2x2 stride-2 transposed convolution (the paper's "up-convolution").
    Transposed,
    /// Nearest-neighbour upsampling followed by a 2x2 "same" convolution.
    Upsample,
}

/// The shape of a U-Net.
#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    /// Input `(height, width, channels)`; height and width divisible by `2^depth`.
    pub input: [usize; 3],
    /// Filters of the first level; each level down doubles them (the paper: 64).
    pub base_width: usize,
    /// Number of 2x2 max-poolings (the paper: 4).
    pub depth: usize,
    /// A BatchNormalization after every 3x3 convolution (before its ReLU).
    pub batch_norm: bool,
    /// How the decoder upsamples.
    pub decoder: Decoder,
    /// Logits per pixel (1 for a binary mask through a sigmoid).
    pub classes: usize,
}

impl Default for UNetConfig {
    /// The size that trains on the membranes within the budget on a 2-core lavapipe machine:
    /// 128x128 grey tiles, width 16, depth 4, batch norm, transposed convolutions, one logit.
    fn default() -> Self {
        UNetConfig {
            input: [128, 128, 1],
            base_width: 16,
            depth: 4,
            batch_norm: true,
            decoder: Decoder::Transposed,
            classes: 1,
        }
    }
}

fn bad(model: &str, message: String) -> DataError {
    DataError::Graph(fovea_graph::GraphError::Model {
        model: model.to_string(),
        message,
    })
}

/// Two 3x3 "same" convolutions with ReLU (and BatchNormalization before each ReLU if `bn`).
fn double_conv(f: &mut Functional, x: SymbolicTensor, filters: usize, bn: bool) -> SymbolicTensor {
    let mut x = x;
    for _ in 0..2 {
        if bn {
            x = f.call(Conv2D::new(filters, 3).padding("same").use_bias(false), &[x]);
            x = f.call(BatchNormalization::new().momentum(0.9), &[x]);
            x = f.call(Activation::new("relu"), &[x]);
        } else {
            x = f.call(Conv2D::new(filters, 3).padding("same").activation("relu"), &[x]);
        }
    }
    x
}

/// A U-Net: `depth` levels of two 3x3 convolutions and a 2x2 max-pooling, a bottleneck, then
/// `depth` levels of upsampling, concatenation with the encoder's features of the same size (the
/// skip connections) and two 3x3 convolutions, and a 1x1 convolution to `classes` logits
/// (layer [`OUTPUT`]).
pub fn unet(cfg: &UNetConfig, seed: u64) -> Result<Model> {
    let [h, w, c] = cfg.input;
    let step = 1usize << cfg.depth.min(16);
    if cfg.base_width == 0 || cfg.classes == 0 || c == 0 {
        return Err(bad(
            "unet",
            format!(
                "base width {}, classes {} and channels {c} must be positive",
                cfg.base_width, cfg.classes
            ),
        ));
    }
    if cfg.depth == 0 || cfg.depth > 6 || h == 0 || w == 0 || h % step != 0 || w % step != 0 {
        return Err(bad(
            "unet",
            format!(
                "input {h}x{w} and depth {}: the depth must be 1-6 and the sides divisible by 2^depth",
                cfg.depth
            ),
        ));
    }
    let mut f = Functional::new("unet");
    let mut x = f.input(Input::new(&cfg.input).name(INPUT));
    let mut skips = Vec::new();
    for level in 0..cfg.depth {
        x = double_conv(&mut f, x, cfg.base_width << level, cfg.batch_norm);
        skips.push(x);
        x = f.call(MaxPooling2D::new(2), &[x]);
    }
    x = double_conv(&mut f, x, cfg.base_width << cfg.depth, cfg.batch_norm);
    for level in (0..cfg.depth).rev() {
        let filters = cfg.base_width << level;
        x = match cfg.decoder {
            Decoder::Transposed => f.call(Conv2DTranspose::new(filters, 2).strides(2).padding("same"), &[x]),
            Decoder::Upsample => {
                let up = f.call(UpSampling2D::new(2), &[x]);
                f.call(Conv2D::new(filters, 2).padding("same").activation("relu"), &[up])
            }
        };
        x = f.call(Concatenate::new(), &[skips[level], x]);
        x = double_conv(&mut f, x, filters, cfg.batch_norm);
    }
    let out = f.call(Conv2D::new(cfg.classes, 1).name(OUTPUT), &[x]);
    Ok(f.build(&[out], seed)?)
}

/// The shape of a DeepLab-style net.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepLabConfig {
    /// Input `(height, width, channels)`; height and width divisible by `output_stride`.
    pub input: [usize; 3],
    /// Filters of the stem; each stride-2 stage doubles them.
    pub base_width: usize,
    /// Input size over feature size: 8 or 16.
    pub output_stride: usize,
    /// Dilation rates of the ASPP's 3x3 branches (beside a 1x1 branch and image pooling).
    pub rates: Vec<usize>,
    /// Filters of every ASPP branch and of the projection after it.
    pub aspp_filters: usize,
    /// A BatchNormalization after every convolution (before its ReLU).
    pub batch_norm: bool,
    /// Logits per pixel.
    pub classes: usize,
}

impl Default for DeepLabConfig {
    /// 128x128 grey tiles, width 16, output stride 8, rates 2, 4, 6 (the paper's 6, 12, 18 scaled
    /// to the small feature map), 64 ASPP filters, batch norm, one logit.
    fn default() -> Self {
        DeepLabConfig {
            input: [128, 128, 1],
            base_width: 16,
            output_stride: 8,
            rates: vec![2, 4, 6],
            aspp_filters: 64,
            batch_norm: true,
            classes: 1,
        }
    }
}

/// A 3x3 (or `k`) convolution with ReLU, batch-normalised if `bn`.
fn conv_bn_relu(
    f: &mut Functional,
    x: SymbolicTensor,
    filters: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    bn: bool,
) -> SymbolicTensor {
    let conv = Conv2D::new(filters, k)
        .padding("same")
        .strides(stride)
        .dilation_rate(dilation);
    if bn {
        let x = f.call(conv.use_bias(false), &[x]);
        let x = f.call(BatchNormalization::new().momentum(0.9), &[x]);
        f.call(Activation::new("relu"), &[x])
    } else {
        f.call(conv.activation("relu"), &[x])
    }
}

/// A DeepLab-style net: a convolutional encoder that halves the resolution until
/// `output_stride` is reached, then keeps it with dilated 3x3 convolutions (rates 2 and 4); an
/// ASPP head (a 1x1 branch, one dilated 3x3 branch per rate, and an image-pooling branch: global
/// average, 1x1 convolution, broadcast back), concatenated and projected by a 1x1 convolution;
/// a 1x1 classifier and bilinear upsampling by `output_stride` to the input size (layer
/// [`OUTPUT`]).
pub fn deeplab(cfg: &DeepLabConfig, seed: u64) -> Result<Model> {
    let [h, w, c] = cfg.input;
    let os = cfg.output_stride;
    if os != 8 && os != 16 {
        return Err(bad("deeplab", format!("output stride {os}: expected 8 or 16")));
    }
    if h == 0 || w == 0 || h % os != 0 || w % os != 0 {
        return Err(bad(
            "deeplab",
            format!("input {h}x{w}: the sides must be positive multiples of the output stride {os}"),
        ));
    }
    if cfg.base_width == 0 || cfg.aspp_filters == 0 || cfg.classes == 0 || c == 0 || cfg.rates.is_empty() {
        return Err(bad(
            "deeplab",
            "base width, ASPP filters, classes and channels must be positive and at least one rate given".into(),
        ));
    }
    if let Some(r) = cfg.rates.iter().find(|&&r| r == 0) {
        return Err(bad("deeplab", format!("ASPP rate {r}: rates must be positive")));
    }
    let bn = cfg.batch_norm;
    let mut f = Functional::new("deeplab");
    let mut x = f.input(Input::new(&cfg.input).name(INPUT));
    let mut width = cfg.base_width;
    x = conv_bn_relu(&mut f, x, width, 3, 1, 1, bn);
    let mut stride = 1;
    while stride < os {
        width *= 2;
        x = conv_bn_relu(&mut f, x, width, 3, 2, 1, bn);
        x = conv_bn_relu(&mut f, x, width, 3, 1, 1, bn);
        stride *= 2;
    }
    for dilation in [2, 4] {
        x = conv_bn_relu(&mut f, x, width, 3, 1, dilation, bn);
    }
    let a = cfg.aspp_filters;
    let mut branches = vec![conv_bn_relu(&mut f, x, a, 1, 1, 1, bn)];
    for &r in &cfg.rates {
        branches.push(conv_bn_relu(&mut f, x, a, 3, 1, r, bn));
    }
    let pooled = f.call(GlobalAveragePooling2D::new(), &[x]);
    let pooled = f.call(Reshape::new(&[1, 1, width as i64]), &[pooled]);
    let pooled = f.call(Conv2D::new(a, 1).activation("relu"), &[pooled]);
    branches.push(f.call(UpSampling2D::new((h / os, w / os)), &[pooled]));
    let cat = f.call(Concatenate::new(), &branches);
    let proj = conv_bn_relu(&mut f, cat, a, 1, 1, 1, bn);
    let logits = f.call(Conv2D::new(cfg.classes, 1), &[proj]);
    let out = f.call(UpSampling2D::new(os).interpolation("bilinear").name(OUTPUT), &[logits]);
    Ok(f.build(&[out], seed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unet_keeps_the_input_size_and_names_its_ends() {
        for decoder in [Decoder::Transposed, Decoder::Upsample] {
            let cfg = UNetConfig {
                input: [32, 48, 1],
                base_width: 4,
                depth: 3,
                batch_norm: decoder == Decoder::Transposed,
                decoder,
                classes: 2,
            };
            let m = unet(&cfg, 1).unwrap();
            assert_eq!(m.output_shapes(), vec![vec![32, 48, 2]]);
            assert_eq!(m.input_names(), vec![INPUT.to_string()]);
            assert_eq!(m.output_names(), vec![OUTPUT.to_string()]);
            // 3 levels down + bottleneck + 3 up, two 3x3 convs each.
            let is = |l: &&fovea_graph::model::LayerNode, c: &str| l.layer.class_name() == c;
            let convs = m.layers().iter().filter(|l| is(l, "Conv2D")).count();
            let ups = m.layers().iter().filter(|l| is(l, "Conv2DTranspose")).count();
            assert_eq!(ups, if decoder == Decoder::Transposed { 3 } else { 0 });
            let extra = if decoder == Decoder::Upsample { 3 } else { 0 };
            assert_eq!(convs, 14 + extra + 1, "{}", m.summary());
            let cats = m.layers().iter().filter(|l| l.name.starts_with("concatenate")).count();
            assert_eq!(cats, 3);
        }
    }

    #[test]
    fn unet_rejects_sides_not_divisible_by_two_to_the_depth() {
        let cfg = UNetConfig {
            input: [36, 32, 1],
            depth: 3,
            ..UNetConfig::default()
        };
        let e = unet(&cfg, 0).unwrap_err().to_string();
        assert!(e.contains("36x32") && e.contains("2^depth"), "{e}");
        let zero = UNetConfig {
            base_width: 0,
            ..UNetConfig::default()
        };
        assert!(unet(&zero, 0).is_err());
    }

    #[test]
    fn deeplab_reaches_its_output_stride_and_upsamples_back() {
        for os in [8, 16] {
            let cfg = DeepLabConfig {
                input: [32, 64, 1],
                base_width: 4,
                output_stride: os,
                rates: vec![1, 2],
                aspp_filters: 8,
                batch_norm: os == 8,
                classes: 1,
            };
            let m = deeplab(&cfg, 2).unwrap();
            assert_eq!(m.output_shapes(), vec![vec![32, 64, 1]]);
            let info = m.layer_info();
            let layers = m.layers();
            let cat = layers.iter().position(|l| l.name.starts_with("concatenate")).unwrap();
            // 1x1 branch + 2 rates + pooling, each 8 filters, at 1/os of the input.
            assert_eq!(info[cat].output_shape, vec![32 / os, 64 / os, 32]);
        }
        let bad_os = DeepLabConfig {
            output_stride: 4,
            ..DeepLabConfig::default()
        };
        assert!(deeplab(&bad_os, 0).unwrap_err().to_string().contains("output stride 4"));
        let bad_side = DeepLabConfig {
            input: [100, 128, 1],
            ..DeepLabConfig::default()
        };
        assert!(deeplab(&bad_side, 0).unwrap_err().to_string().contains("100x128"));
    }
}
