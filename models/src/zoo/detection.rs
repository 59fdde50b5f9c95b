//! The detection models of the zoo, written with the Keras-like API.
//!
//! [`ssd_lite`]: a single-shot detector on a MobileNet-style backbone (depthwise-separable
//! blocks, each depthwise 3x3 and pointwise 1x1 followed by BatchNormalization and relu6),
//! predicting from three feature scales (strides 16, 32 and 64 of the input) through
//! depthwise-separable heads. Outputs: `classes` `(anchors, classes)` logits (one sigmoid per
//! class, no background column) and `boxes` `(anchors, 4)` encoded offsets. Anchors are ordered
//! level by level, then row, column and anchor within a cell (the heads' NHWC order).

use crate::error::{DataError, Result};
use fovea_graph::Model;
use fovea_graph::Tensor;
use fovea_graph::layers::{Activation, BatchNormalization, Concatenate, Conv2D, DepthwiseConv2D, Input, Reshape};
use fovea_graph::model::{Functional, SymbolicTensor};

/// One feature scale of the detector: the anchors of each of its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorLevel {
    /// Input pixels per cell (16, 32, 64).
    pub stride: usize,
    /// Anchor sides relative to the input side, for aspect ratio 1.
    pub sizes: Vec<f32>,
    /// Width / height ratios other than 1, applied to the first size.
    pub ratios: Vec<f32>,
}

impl AnchorLevel {
    /// Anchors per cell: every size at ratio 1, plus the first size at each other ratio.
    pub fn per_cell(&self) -> usize {
        self.sizes.len() + self.ratios.len()
    }
}

/// The detector's shape: input side, classes, backbone widths and anchors.
#[derive(Debug, Clone, PartialEq)]
pub struct SsdLiteConfig {
    /// Input side in pixels (square input); a multiple of 64.
    pub input: usize,
    /// Object classes (no background class: the class head has one sigmoid per class).
    pub classes: usize,
    /// Filters of the stem convolution.
    pub stem: usize,
    /// Stride of the stem convolution (its kernel is the stride, or 3 at stride 1 and 2).
    pub stem_stride: usize,
    /// The depthwise-separable blocks: `(filters, stride)`.
    pub blocks: Vec<(usize, usize)>,
    /// Filters of the heads' hidden separable convolution.
    pub head: usize,
    /// The three prediction levels, strides 16, 32 and 64.
    pub levels: Vec<AnchorLevel>,
}

impl SsdLiteConfig {
    /// The default detector for `classes` classes at `input` pixels (256 or 320): a 4x4
    /// stride-4 stem (no full-resolution tensors: lavapipe's time goes to memory traffic), six
    /// separable blocks, about 0.2M parameters, 4 anchors per cell (two sizes at ratio 1, ratios 2 and 1/2) on 16x16, 8x8 and
    /// 4x4 grids at 256 (1,344 anchors), sides from 0.1 to 0.95 of the image.
    pub fn new(classes: usize, input: usize) -> SsdLiteConfig {
        let level = |stride, s0: f32, s1: f32| AnchorLevel {
            stride,
            sizes: vec![s0, (s0 * s1).sqrt()],
            ratios: vec![2.0, 0.5],
        };
        SsdLiteConfig {
            input,
            classes,
            stem: 24,
            stem_stride: 4,
            blocks: vec![(48, 2), (64, 1), (96, 2), (96, 1), (128, 2), (160, 2)],
            head: 64,
            levels: vec![level(16, 0.1, 0.25), level(32, 0.25, 0.5), level(64, 0.5, 0.95)],
        }
    }

    /// Checks the configuration; an error names the argument and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, msg: String| Err(DataError::value(what, msg));
        if self.input == 0 || !self.input.is_multiple_of(64) || self.input > 1024 {
            return bad(
                "input",
                format!("{} must be a positive multiple of 64, at most 1024", self.input),
            );
        }
        if self.classes == 0 || self.classes > 1000 {
            return bad("classes", format!("{} must be between 1 and 1000", self.classes));
        }
        let strides: Vec<usize> = self.levels.iter().map(|l| l.stride).collect();
        if strides != [16, 32, 64] {
            return bad("levels", format!("strides {strides:?}, expected [16, 32, 64]"));
        }
        let total: usize = self.blocks.iter().map(|b| b.1).product::<usize>() * self.stem_stride;
        if total != 64 || self.blocks.iter().any(|b| b.0 == 0 || !(b.1 == 1 || b.1 == 2)) || self.stem == 0 {
            return bad(
                "blocks",
                "the stem and blocks must reduce the input by 64, blocks in strides of 1 or 2, with filters > 0".into(),
            );
        }
        for l in &self.levels {
            if l.sizes.is_empty() || l.sizes.iter().chain(&l.ratios).any(|v| !(v.is_finite() && *v > 0.0)) {
                return bad(
                    "levels",
                    format!("stride {}: sizes and ratios must be positive", l.stride),
                );
            }
        }
        Ok(())
    }

    /// The grid side of each level.
    pub fn grids(&self) -> Vec<usize> {
        self.levels.iter().map(|l| self.input / l.stride).collect()
    }

    /// Anchors over all levels.
    pub fn anchor_count(&self) -> usize {
        self.levels
            .iter()
            .zip(self.grids())
            .map(|(l, g)| g * g * l.per_cell())
            .sum()
    }
}

/// Conv (or depthwise conv) + BatchNormalization + relu6.
fn bn_relu6(f: &mut Functional, x: SymbolicTensor, name: &str) -> SymbolicTensor {
    let x = f.call(BatchNormalization::new().name(format!("{name}_bn")), &[x]);
    f.call(Activation::new("relu6").name(format!("{name}_relu")), &[x])
}

/// A depthwise-separable block: depthwise 3x3 (stride) + BN + relu6, pointwise 1x1 + BN + relu6.
fn separable_block(f: &mut Functional, x: SymbolicTensor, filters: usize, stride: usize, name: &str) -> SymbolicTensor {
    let dw = DepthwiseConv2D::new(3)
        .strides(stride)
        .padding("same")
        .use_bias(false)
        .name(format!("{name}_dw"));
    let x = f.call(dw, &[x]);
    let x = bn_relu6(f, x, &format!("{name}_dw"));
    let pw = Conv2D::new(filters, 1).use_bias(false).name(format!("{name}_pw"));
    let x = f.call(pw, &[x]);
    bn_relu6(f, x, &format!("{name}_pw"))
}

/// A prediction head on one level: depthwise 3x3 + BN + relu6, then a 1x1 conv to
/// `per_cell * width` values, reshaped to `(cells * per_cell, width)`.
fn head(f: &mut Functional, x: SymbolicTensor, per_cell: usize, width: usize, name: &str) -> SymbolicTensor {
    let dw = DepthwiseConv2D::new(3)
        .padding("same")
        .use_bias(false)
        .name(format!("{name}_dw"));
    let h = f.call(dw, &[x]);
    let h = bn_relu6(f, h, &format!("{name}_dw"));
    let out = f.call(Conv2D::new(per_cell * width, 1).name(format!("{name}_out")), &[h]);
    f.call(Reshape::new(&[-1, width as i64]).name(format!("{name}_flat")), &[out])
}

/// The name of the class logits output.
pub const CLASSES_OUTPUT: &str = "classes";
/// The name of the encoded box output.
pub const BOXES_OUTPUT: &str = "boxes";
/// The name of the image input.
pub const IMAGE_INPUT: &str = "image";

/// The prior probability the class biases start at (RetinaNet's initialisation for focal loss).
pub const CLASS_PRIOR: f32 = 0.01;

/// The SSD-lite detector of `cfg` (see the module documentation), parameters drawn from
/// `seed`; the class head biases start at `log(p / (1 - p))` for [`CLASS_PRIOR`] so that the
/// focal loss starts small.
pub fn ssd_lite(cfg: &SsdLiteConfig, seed: u64) -> Result<Model> {
    cfg.validate()?;
    let mut f = Functional::new("ssd_lite");
    let x = f.input(Input::new(&[cfg.input, cfg.input, 3]).name(IMAGE_INPUT));
    let kernel = if cfg.stem_stride <= 2 { 3 } else { cfg.stem_stride };
    let stem = Conv2D::new(cfg.stem, kernel)
        .strides(cfg.stem_stride)
        .padding("same")
        .use_bias(false)
        .name("stem");
    let x = f.call(stem, &[x]);
    let mut x = bn_relu6(&mut f, x, "stem");
    let mut stride = cfg.stem_stride;
    let mut features = Vec::new();
    for (i, &(filters, s)) in cfg.blocks.iter().enumerate() {
        x = separable_block(&mut f, x, filters, s, &format!("block{}", i + 1));
        stride *= s;
        let last_at_stride = cfg.blocks.get(i + 1).is_none_or(|next| next.1 != 1);
        if stride >= 16 && last_at_stride {
            features.push(x);
        }
    }
    let (mut cls, mut reg) = (Vec::new(), Vec::new());
    for (k, (feat, level)) in features.iter().zip(&cfg.levels).enumerate() {
        let hidden = f.call(
            Conv2D::new(cfg.head, 1)
                .use_bias(false)
                .name(format!("head{}_pw", k + 1)),
            &[*feat],
        );
        let hidden = bn_relu6(&mut f, hidden, &format!("head{}_pw", k + 1));
        cls.push(head(
            &mut f,
            hidden,
            level.per_cell(),
            cfg.classes,
            &format!("cls{}", k + 1),
        ));
        reg.push(head(&mut f, hidden, level.per_cell(), 4, &format!("box{}", k + 1)));
    }
    let classes = f.call(Concatenate::new().axis(1).name(CLASSES_OUTPUT), &cls);
    let boxes = f.call(Concatenate::new().axis(1).name(BOXES_OUTPUT), &reg);
    let mut model = f.build(&[classes, boxes], seed)?;
    let bias = (CLASS_PRIOR / (1.0 - CLASS_PRIOR)).ln();
    for (k, level) in cfg.levels.iter().enumerate() {
        let n = level.per_cell() * cfg.classes;
        model.set_weight(
            &format!("cls{}_out/bias", k + 1),
            Tensor {
                shape: vec![n],
                data: vec![bias; n],
            },
        )?;
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_detector_has_its_anchors_and_outputs() {
        let cfg = SsdLiteConfig::new(3, 256);
        assert_eq!(cfg.grids(), vec![16, 8, 4]);
        assert_eq!(cfg.anchor_count(), (256 + 64 + 16) * 4);
        let m = ssd_lite(&cfg, 0).unwrap();
        assert_eq!(m.output_names(), vec!["classes", "boxes"]);
        assert_eq!(m.output_shapes(), vec![vec![1344, 3], vec![1344, 4]]);
        let cfg320 = SsdLiteConfig::new(1, 320);
        assert_eq!(cfg320.anchor_count(), (400 + 100 + 25) * 4);
        let m = ssd_lite(&cfg320, 0).unwrap();
        assert_eq!(m.output_shapes(), vec![vec![2100, 1], vec![2100, 4]]);
    }

    #[test]
    fn bad_configurations_name_the_argument() {
        let mut cfg = SsdLiteConfig::new(1, 250);
        assert!(ssd_lite(&cfg, 0).unwrap_err().to_string().contains("input"));
        cfg.input = 256;
        cfg.classes = 0;
        assert!(cfg.validate().unwrap_err().to_string().contains("classes"));
        cfg.classes = 2;
        cfg.blocks.pop();
        assert!(cfg.validate().unwrap_err().to_string().contains("blocks"));
    }
}
