//! face-api's 128-d face descriptor (`FaceRecognitionNet`, a port of dlib's ResNet-29 face
//! recogniser), layer for layer as the package's `src/faceRecognitionNet/` writes it:
//!
//! - normalise: `(255 x - mean RGB) / 255` with mean (122.782, 117.001, 104.298);
//! - `conv32_down`: 7x7 stride-2 valid conv + bias, per-channel scale, relu; 3x3/2 valid max pool;
//! - residual blocks `conv32_1..3`, then `conv64_down`, `conv64_1..3`, `conv128_down`,
//!   `conv128_1..2`, `conv256_down`, `conv256_1..2`, `conv256_down_out`. A block is conv-scale-relu
//!   then conv-scale (3x3 same), added to its input, relu. A down block's first conv is 3x3 stride-2
//!   valid, and its shortcut is a 2x2/2 average pool of the input, zero-padded to the new channel
//!   count; where the conv path comes out one row/column short of the pool (odd sizes), zeros are
//!   appended at the bottom and right of the conv path, as the package concatenates them;
//! - global average pool, then a 256x128 matrix product (`fc`, no bias).

use super::Binder;
use super::layers::{ChannelScale, Normalize, PadChannels};
use crate::error::Result;
use crate::zoo::faces::EMBEDDING_OUTPUT;
use fovea_graph::layers::{
    Activation, Add, AveragePooling2D, Conv2D, Dense, GlobalAveragePooling2D, Input, MaxPooling2D, UnitNormalization,
    ZeroPadding2D,
};
use fovea_graph::model::{Functional, SymbolicTensor};

/// The descriptor's input side (150x150 RGB).
pub const INPUT_SIZE: usize = 150;
/// The descriptor's length.
pub const DESCRIPTOR_LEN: usize = 128;
/// face-api's mean RGB, in 0-255 pixel units.
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// Builds the architecture; `b` records which manifest tensor feeds each parameter. With
/// `unit`, a `UnitNormalization` named `embedding` follows `fc` (the form fine-tuning trains
/// and `fovea faces` compares); without, the output is `fc`'s, as the package gives it.
pub(super) fn build(b: &mut Binder, unit: bool) -> Result<fovea_graph::Model> {
    let mut f = Functional::new("face_api_descriptor");
    let x = f.input(Input::new(&[INPUT_SIZE, INPUT_SIZE, 3]).name("image"));
    // Input in [0, 1]: (255 x - mean) / 255 = x - mean / 255.
    let mean: Vec<f32> = MEAN_RGB.iter().map(|m| m / 255.0).collect();
    let x = f.call(Normalize::new("normalize", &mean, 1.0), &[x]);
    let mut d = Descriptor {
        f,
        b,
        size: INPUT_SIZE,
        channels: 32,
    };
    let mut out = d.conv("conv32_down", x, 32, 7, 2, true);
    d.size = (d.size - 7) / 2 + 1;
    out = d.f.call(
        MaxPooling2D::new(3).strides(2).padding("valid").name("max_pool"),
        &[out],
    );
    d.size = (d.size - 3) / 2 + 1;
    for (name, width) in [
        ("conv32_1", 32),
        ("conv32_2", 32),
        ("conv32_3", 32),
        ("conv64_down", 64),
        ("conv64_1", 64),
        ("conv64_2", 64),
        ("conv64_3", 64),
        ("conv128_down", 128),
        ("conv128_1", 128),
        ("conv128_2", 128),
        ("conv256_down", 256),
        ("conv256_1", 256),
        ("conv256_2", 256),
        ("conv256_down_out", 256),
    ] {
        out = if name.contains("_down") {
            d.residual_down(name, out, width)
        } else {
            d.residual(name, out, width)
        };
    }
    let pooled = d.f.call(GlobalAveragePooling2D::new().name("global_avg"), &[out]);
    let fc =
        d.f.call(Dense::new(DESCRIPTOR_LEN).use_bias(false).name("fc"), &[pooled]);
    d.b.bind("fc/kernel", "fc");
    let out = if unit {
        d.f.call(UnitNormalization::new().name(EMBEDDING_OUTPUT), &[fc])
    } else {
        fc
    };
    let model = d.f.build(&[out], 0)?;
    Ok(model)
}

/// The model under construction and the spatial size and channels of the current tensor.
struct Descriptor<'a> {
    f: Functional,
    b: &'a mut Binder,
    size: usize,
    channels: usize,
}

impl Descriptor<'_> {
    /// face-api's `convLayer`: conv + bias, scale, optional relu. `prefix` is the package's.
    fn conv(
        &mut self,
        prefix: &str,
        x: SymbolicTensor,
        filters: usize,
        k: usize,
        stride: usize,
        relu: bool,
    ) -> SymbolicTensor {
        let name = prefix.replace('/', "_");
        let padding = if stride == 2 { "valid" } else { "same" };
        let conv = Conv2D::new(filters, k)
            .strides(stride)
            .padding(padding)
            .name(format!("{name}_conv"));
        let y = self.f.call(conv, &[x]);
        self.b
            .bind(&format!("{name}_conv/kernel"), &format!("{prefix}/conv/filters"));
        self.b
            .bind(&format!("{name}_conv/bias"), &format!("{prefix}/conv/bias"));
        let y = self.f.call(ChannelScale::new(format!("{name}_scale")), &[y]);
        self.b
            .bind(&format!("{name}_scale/weights"), &format!("{prefix}/scale/weights"));
        self.b
            .bind(&format!("{name}_scale/biases"), &format!("{prefix}/scale/biases"));
        if relu {
            self.f.call(Activation::new("relu").name(format!("{name}_relu")), &[y])
        } else {
            y
        }
    }

    /// `residual`: conv-relu, conv, add the input, relu.
    fn residual(&mut self, prefix: &str, x: SymbolicTensor, width: usize) -> SymbolicTensor {
        let y = self.conv(&format!("{prefix}/conv1"), x, width, 3, 1, true);
        let y = self.conv(&format!("{prefix}/conv2"), y, width, 3, 1, false);
        let sum = self.f.call(Add::new().name(format!("{prefix}_add")), &[y, x]);
        self.f
            .call(Activation::new("relu").name(format!("{prefix}_out")), &[sum])
    }

    /// `residualDown`: stride-2 valid conv path; average-pooled shortcut, zero-padded.
    fn residual_down(&mut self, prefix: &str, x: SymbolicTensor, width: usize) -> SymbolicTensor {
        let in_width = self.channels;
        let mut y = self.conv(&format!("{prefix}/conv1"), x, width, 3, 2, true);
        y = self.conv(&format!("{prefix}/conv2"), y, width, 3, 1, false);
        let conv_size = (self.size - 3) / 2 + 1;
        let pool_size = self.size / 2;
        if conv_size != pool_size {
            let extra = pool_size - conv_size;
            let pad = ZeroPadding2D::explicit(((0, extra), (0, extra))).name(format!("{prefix}_pad"));
            y = self.f.call(pad, &[y]);
        }
        let mut pooled = self.f.call(
            AveragePooling2D::new(2)
                .strides(2)
                .padding("valid")
                .name(format!("{prefix}_pool")),
            &[x],
        );
        if width != in_width {
            pooled = self
                .f
                .call(PadChannels::new(format!("{prefix}_widen"), width - in_width), &[pooled]);
        }
        self.size = pool_size;
        self.channels = width;
        let sum = self.f.call(Add::new().name(format!("{prefix}_add")), &[pooled, y]);
        self.f
            .call(Activation::new("relu").name(format!("{prefix}_out")), &[sum])
    }
}
