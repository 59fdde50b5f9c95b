//! face-api's SSD-MobileNetV1 face detector (`SsdMobilenetv1`), as the package's
//! `src/ssdMobilenetv1/` writes it:
//!
//! - input scaled to [-1, 1];
//! - MobileNetV1: a 3x3 stride-2 conv (+ bias, relu6), then 13 pairs of a 3x3 depthwise conv
//!   (batch norm, epsilon 0.001, relu6; stride 2 at pairs 2, 4, 6 and 12) and a 1x1 conv
//!   (+ bias, relu6); all "same" padding (TensorFlow's: the extra row/column at the bottom/right);
//! - eight extra convs (`Prediction/Conv2d_0..7_pointwise`: 1x1, then 3x3 stride 2, alternating);
//! - six box predictors (1x1 convs) on pair 11's output (32x32, 3 anchors per cell), the
//!   MobileNet output (16x16) and extra convs 1, 3, 5, 7 (8x8 .. 1x1), 6 anchors per cell:
//!   5118 anchors in all, in that order, cell-major, anchors of a cell adjacent.
//!
//! Outputs: `box_encodings` `(N, 5118, 4)` (the raw regressions, decoded on the host against
//! the shipped anchors by [`super::decode_boxes`]) and `scores` `(N, 5118)`: the sigmoid of the
//! face class's logit. The class predictor has three logits per anchor and the package keeps only
//! the second one's sigmoid; the model computes just that logit (the predictor's kernel columns
//! `3k + 1`), which gives the same score with a third of the work.

use super::layers::Normalize;
use super::{Binder, Pick};
use crate::error::Result;
use fovea_graph::layers::{Activation, BatchNormalization, Concatenate, Conv2D, DepthwiseConv2D, Input, Reshape};
use fovea_graph::model::{Functional, SymbolicTensor};

/// The detector's input side (512x512 RGB).
pub const INPUT_SIZE: usize = 512;
/// Anchors the package ships (`Output/extra_dim`).
pub const ANCHORS: usize = 5118;

/// Output channels of the 1x1 conv of MobileNet pairs 1..=13.
const POINTWISE: [usize; 13] = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];
/// (filters, kernel, stride) of `Prediction/Conv2d_0..7_pointwise`.
const EXTRA: [(usize, usize, usize); 8] = [
    (256, 1, 1),
    (512, 3, 2),
    (128, 1, 1),
    (256, 3, 2),
    (128, 1, 1),
    (256, 3, 2),
    (64, 1, 1),
    (128, 3, 2),
];

/// Builds the architecture; `b` records which manifest tensor feeds each parameter.
pub(super) fn build(b: &mut Binder) -> Result<fovea_graph::Model> {
    let mut f = Functional::new("face_api_ssd_mobilenetv1");
    let x = f.input(Input::new(&[INPUT_SIZE, INPUT_SIZE, 3]).name("image"));
    // [0, 1] -> [-1, 1]: the package's x / 127.5 - 1 on 0-255 pixels.
    let x = f.call(Normalize::new("normalize", &[0.5, 0.5, 0.5], 2.0), &[x]);
    let mut s = Ssd { f, b };
    let mut out = s.pointwise("MobilenetV1/Conv2d_0_pointwise", x, 32, 3, 2);
    let mut conv11 = out;
    for (i, &width) in POINTWISE.iter().enumerate() {
        let idx = i + 1;
        let stride = if [2, 4, 6, 12].contains(&idx) { 2 } else { 1 };
        out = s.depthwise(idx, out, stride);
        out = s.pointwise(&format!("MobilenetV1/Conv2d_{idx}_pointwise"), out, width, 1, 1);
        if idx == 11 {
            conv11 = out;
        }
    }
    let mut extra = Vec::with_capacity(EXTRA.len());
    let mut y = out;
    for (i, &(filters, k, stride)) in EXTRA.iter().enumerate() {
        y = s.pointwise(&format!("Prediction/Conv2d_{i}_pointwise"), y, filters, k, stride);
        extra.push(y);
    }
    let sources = [conv11, out, extra[1], extra[3], extra[5], extra[7]];
    let mut boxes = Vec::new();
    let mut logits = Vec::new();
    for (i, &src) in sources.iter().enumerate() {
        let anchors = if i == 0 { 3 } else { 6 };
        let (bx, lg) = s.box_predictor(i, src, anchors);
        boxes.push(bx);
        logits.push(lg);
    }
    let boxes = s.f.call(Concatenate::new().axis(1).name("box_encodings"), &boxes);
    let logits = s.f.call(Concatenate::new().axis(1).name("face_logits"), &logits);
    let scores = s.f.call(Activation::new("sigmoid").name("scores"), &[logits]);
    Ok(s.f.build(&[boxes, scores], 0)?)
}

/// The model under construction.
struct Ssd<'a> {
    f: Functional,
    b: &'a mut Binder,
}

/// A Fovea layer name for a package prefix (`MobilenetV1/Conv2d_3_pointwise` -> `MobilenetV1_Conv2d_3_pointwise`).
fn layer(prefix: &str) -> String {
    prefix.replace('/', "_")
}

impl Ssd<'_> {
    /// `pointwiseConvLayer`: conv (same) + `convolution_bn_offset` as bias, relu6.
    fn pointwise(
        &mut self,
        prefix: &str,
        x: SymbolicTensor,
        filters: usize,
        k: usize,
        stride: usize,
    ) -> SymbolicTensor {
        let name = layer(prefix);
        let conv = Conv2D::new(filters, k)
            .strides(stride)
            .padding("same")
            .activation("relu6")
            .name(name.clone());
        self.b.bind(&format!("{name}/kernel"), &format!("{prefix}/weights"));
        self.b
            .bind(&format!("{name}/bias"), &format!("{prefix}/convolution_bn_offset"));
        self.f.call(conv, &[x])
    }

    /// `depthwiseConvLayer`: depthwise 3x3 (same, no bias), batch norm (epsilon 0.001), relu6.
    fn depthwise(&mut self, idx: usize, x: SymbolicTensor, stride: usize) -> SymbolicTensor {
        let prefix = format!("MobilenetV1/Conv2d_{idx}_depthwise");
        let name = layer(&prefix);
        let conv = DepthwiseConv2D::new(3)
            .strides(stride)
            .padding("same")
            .use_bias(false)
            .name(name.clone());
        self.b
            .bind(&format!("{name}/kernel"), &format!("{prefix}/depthwise_weights"));
        let y = self.f.call(conv, &[x]);
        let bn_name = format!("{name}_bn");
        for (var, src) in [
            ("gamma", "gamma"),
            ("beta", "beta"),
            ("moving_mean", "moving_mean"),
            ("moving_variance", "moving_variance"),
        ] {
            self.b
                .bind(&format!("{bn_name}/{var}"), &format!("{prefix}/BatchNorm/{src}"));
        }
        let y = self
            .f
            .call(BatchNormalization::new().epsilon(0.001).name(bn_name), &[y]);
        self.f
            .call(Activation::new("relu6").name(format!("{name}_relu6")), &[y])
    }

    /// `boxPredictionLayer` `i`: box encodings `(N, cells*anchors, 4)` and face logits
    /// `(N, cells*anchors)`.
    fn box_predictor(&mut self, i: usize, x: SymbolicTensor, anchors: usize) -> (SymbolicTensor, SymbolicTensor) {
        let prefix = format!("Prediction/BoxPredictor_{i}");
        let enc = layer(&format!("{prefix}/BoxEncodingPredictor"));
        let cls = layer(&format!("{prefix}/ClassPredictor"));
        self.b.bind(
            &format!("{enc}/kernel"),
            &format!("{prefix}/BoxEncodingPredictor/weights"),
        );
        self.b
            .bind(&format!("{enc}/bias"), &format!("{prefix}/BoxEncodingPredictor/biases"));
        let face = Pick::LastAxis { start: 1, step: 3 };
        self.b.bind_pick(
            &format!("{cls}/kernel"),
            &format!("{prefix}/ClassPredictor/weights"),
            face,
        );
        self.b
            .bind_pick(&format!("{cls}/bias"), &format!("{prefix}/ClassPredictor/biases"), face);
        let e = self.f.call(Conv2D::new(4 * anchors, 1).name(enc.clone()), &[x]);
        let e = self.f.call(Reshape::new(&[-1, 4]).name(format!("{enc}_reshape")), &[e]);
        let c = self.f.call(Conv2D::new(anchors, 1).name(cls.clone()), &[x]);
        let c = self.f.call(Reshape::new(&[-1]).name(format!("{cls}_reshape")), &[c]);
        (e, c)
    }
}
