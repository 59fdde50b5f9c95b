//! One Keras layer config to one Fovea layer, argument by argument.
//!
//! Initializers are read and ignored (weights come from the weights file); regularizers and
//! constraints must be `null`; every other argument maps to the layer's builder or is an error
//! naming the layer, its class and the argument.

use super::args::{Args, as_usize};
use super::{activation_layers, merge_layers};
use crate::error::{GraphError, Result};
use crate::ir::NodeId;
use crate::layers::{
    Activation, AveragePooling2D, BatchNormalization, Conv2D, Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D,
    Dropout, Flatten, GlobalAveragePooling2D, Layer, LayerCtx, LayerNormalization, MaxPooling2D, Reshape,
    SeparableConv2D, Size2, SpatialDropout2D, UpSampling2D, ZeroPadding2D,
};
use serde_json::{Map, Value, json};

/// The Keras classes Fovea reads (besides `InputLayer`).
pub const SUPPORTED: &[&str] = &[
    "Conv2D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Dense",
    "Activation",
    "BatchNormalization",
    "Dropout",
    "Add",
    "Concatenate",
    "UpSampling2D",
    "Reshape",
    "ZeroPadding2D",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "Multiply",
    "Subtract",
    "Maximum",
    "Average",
    "Cropping2D",
    "SeparableConv2D",
    "SpatialDropout2D",
    "LayerNormalization",
];

/// A layer read from a Keras config: lowers as the Fovea layer it maps to, checks what could
/// only be checked against the input (BatchNormalization's axis), and names the Keras class in
/// the errors of its lowering.
#[derive(Debug)]
pub(crate) struct KerasLayer {
    inner: Box<dyn Layer>,
    /// BatchNormalization's and LayerNormalization's `axis`, which must be the last one.
    channel_axis: Option<i64>,
    /// The config's `trainable` (false: a frozen layer).
    pub trainable: bool,
}

impl Layer for KerasLayer {
    fn class_name(&self) -> &'static str {
        self.inner.class_name()
    }
    fn default_prefix(&self) -> &'static str {
        self.inner.default_prefix()
    }
    fn name(&self) -> Option<&str> {
        self.inner.name()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let class = self.inner.class_name();
        if let (Some(axis), Some(&x)) = (self.channel_axis, inputs.first()) {
            let rank = ctx.shape(x).len() as i64;
            if axis != -1 && axis != rank - 1 {
                return Err(GraphError::arg(
                    ctx.name,
                    "axis",
                    format!(
                        "{class}: axis {axis} is not supported for a rank-{rank} input; only the last axis (-1) is"
                    ),
                ));
            }
        }
        self.inner.lower(ctx, inputs).map_err(|e| match e {
            GraphError::BadArgument {
                layer,
                argument,
                message,
            } => GraphError::BadArgument {
                layer,
                argument,
                message: format!("{class}: {message}"),
            },
            GraphError::Shape { layer, message } => GraphError::Shape {
                layer,
                message: format!("{class}: {message}"),
            },
            other => other,
        })
    }
}

const REGULARIZERS: &str = "regularizers are not supported";
const CONSTRAINTS: &str = "constraints are not supported";

/// The arguments the three convolution layers share: strides, padding, dilation_rate,
/// use_bias, activation, and the initializers/regularizers/constraints of `kernel` (Keras
/// calls DepthwiseConv2D's `depthwise_*`) and `bias`.
macro_rules! conv_common {
    ($a:ident, $l:ident, $kernel:literal) => {
        let strides = $a.size2("strides", Size2(1, 1))?;
        let dilation = $a.size2("dilation_rate", Size2(1, 1))?;
        let pad = padding(&mut $a)?;
        let act = $a.activation("activation")?;
        let use_bias = $a.bool("use_bias", true)?;
        $l = $l
            .strides(strides)
            .dilation_rate(dilation)
            .padding(&pad)
            .activation(&act)
            .use_bias(use_bias)
            .name($a.name);
        $a.ignore(&[concat!($kernel, "_initializer"), "bias_initializer"]);
        for k in [
            concat!($kernel, "_regularizer"),
            "bias_regularizer",
            "activity_regularizer",
        ] {
            $a.must_be_null(k, REGULARIZERS)?;
        }
        for k in [concat!($kernel, "_constraint"), "bias_constraint"] {
            $a.must_be_null(k, CONSTRAINTS)?;
        }
        $a.must_be_null("lora_rank", "LoRA is not supported")?;
        $a.ignore(&["lora_alpha"]);
    };
}

/// Converts the config of a layer of class `class` named `name`.
pub(crate) fn layer_from_config(class: &str, name: &str, cfg: &Map<String, Value>) -> Result<KerasLayer> {
    let mut a = Args::new(class, name, cfg);
    let trainable = a.common()?;
    let mut channel_axis = None;
    if let Some(layer) = activation_layers::from_config(class, &mut a)? {
        return finish(a, layer, None, trainable);
    }
    if let Some(layer) = merge_layers::from_config(class, &mut a)? {
        return finish(a, layer, None, trainable);
    }
    let layer: Box<dyn Layer> = match class {
        "Conv2D" => {
            let filters = a.usize("filters", 0)?;
            let k = kernel_size(&mut a)?;
            let mut l = Conv2D::new(filters, k).groups(a.usize("groups", 1)?);
            conv_common!(a, l, "kernel");
            Box::new(l)
        }
        "DepthwiseConv2D" => {
            let k = kernel_size(&mut a)?;
            let mut l = DepthwiseConv2D::new(k).depth_multiplier(a.usize("depth_multiplier", 1)?);
            // tf.keras 2 records the (fixed) `groups=1` of its Conv base class.
            a.must_equal("groups", json!(1), "DepthwiseConv2D has one group per input channel")?;
            conv_common!(a, l, "depthwise");
            Box::new(l)
        }
        "Conv2DTranspose" => {
            let filters = a.usize("filters", 0)?;
            let k = kernel_size(&mut a)?;
            a.must_be_null(
                "output_padding",
                "the output size follows from padding and strides as Keras computes it by default",
            )?;
            a.must_equal("groups", json!(1), "grouped transposed convolutions are not supported")?;
            let mut l = Conv2DTranspose::new(filters, k);
            conv_common!(a, l, "kernel");
            Box::new(l)
        }
        "MaxPooling2D" | "AveragePooling2D" => {
            let pool = a.size2("pool_size", Size2(2, 2))?;
            let strides = match a.get("strides") {
                None => pool,
                Some(v) => a.size2_of("strides", v)?,
            };
            let padding = padding(&mut a)?;
            if class == "MaxPooling2D" {
                Box::new(MaxPooling2D::new(pool).strides(strides).padding(&padding).name(name))
            } else {
                Box::new(
                    AveragePooling2D::new(pool)
                        .strides(strides)
                        .padding(&padding)
                        .name(name),
                )
            }
        }
        "GlobalAveragePooling2D" => {
            a.must_equal(
                "keepdims",
                json!(false),
                "Fovea's GlobalAveragePooling2D drops the spatial axes",
            )?;
            Box::new(GlobalAveragePooling2D::new().name(name))
        }
        "Flatten" => Box::new(Flatten::new().name(name)),
        "Dense" => {
            let units = a.usize("units", 0)?;
            let act = a.activation("activation")?;
            let l = Dense::new(units)
                .activation(&act)
                .use_bias(a.bool("use_bias", true)?)
                .name(name);
            a.ignore(&["kernel_initializer", "bias_initializer"]);
            for k in ["kernel_regularizer", "bias_regularizer", "activity_regularizer"] {
                a.must_be_null(k, REGULARIZERS)?;
            }
            for k in ["kernel_constraint", "bias_constraint"] {
                a.must_be_null(k, CONSTRAINTS)?;
            }
            a.must_be_null("lora_rank", "LoRA is not supported")?;
            a.ignore(&["lora_alpha"]);
            a.must_be_null("quantization_config", "quantized layers are not supported")?;
            Box::new(l)
        }
        "Activation" => {
            let act = a.activation("activation")?;
            Box::new(Activation::new(&act).name(name))
        }
        "BatchNormalization" => {
            channel_axis = Some(bn_axis(&mut a)?);
            let momentum = a.f32("momentum", 0.99)?;
            let epsilon = a.f32("epsilon", 1e-3)?;
            let center = a.bool("center", true)?;
            let scale = a.bool("scale", true)?;
            a.ignore(&[
                "beta_initializer",
                "gamma_initializer",
                "moving_mean_initializer",
                "moving_variance_initializer",
                "synchronized",
                "fused",
            ]);
            for k in ["beta_regularizer", "gamma_regularizer"] {
                a.must_be_null(k, REGULARIZERS)?;
            }
            for k in ["beta_constraint", "gamma_constraint"] {
                a.must_be_null(k, CONSTRAINTS)?;
            }
            a.must_equal("renorm", json!(false), "batch renormalization is not supported")?;
            a.ignore(&["renorm_momentum"]);
            a.must_be_null("renorm_clipping", "batch renormalization is not supported")?;
            a.must_be_null("virtual_batch_size", "ghost batch normalization is not supported")?;
            a.must_be_null("adjustment", "not supported")?;
            Box::new(
                BatchNormalization::new()
                    .momentum(momentum)
                    .epsilon(epsilon)
                    .center(center)
                    .scale(scale)
                    .name(name),
            )
        }
        "Dropout" => {
            let rate = a.f32("rate", 0.0)?;
            a.must_be_null("noise_shape", "Fovea drops every unit independently")?;
            a.ignore(&["seed"]);
            Box::new(Dropout::new(rate).name(name))
        }
        "UpSampling2D" => {
            let size = a.size2("size", Size2(2, 2))?;
            let interpolation = a.string("interpolation", "nearest")?;
            if interpolation != "nearest" && interpolation != "bilinear" {
                return Err(a.err(
                    "interpolation",
                    format!("\"{interpolation}\" is not supported; expected \"nearest\" or \"bilinear\""),
                ));
            }
            Box::new(UpSampling2D::new(size).interpolation(&interpolation).name(name))
        }
        "Reshape" => {
            let target = a
                .get("target_shape")
                .and_then(Value::as_array)
                .and_then(|t| t.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
                .ok_or_else(|| a.err("target_shape", "expected a list of integers"))?;
            Box::new(Reshape::new(&target).name(name))
        }
        "ZeroPadding2D" => {
            let pad = edges(&mut a, "padding", 1)?;
            Box::new(ZeroPadding2D::explicit(pad).name(name))
        }
        "Cropping2D" => {
            let crop = edges(&mut a, "cropping", 0)?;
            Box::new(Cropping2D::explicit(crop).name(name))
        }
        "SeparableConv2D" => {
            let filters = a.usize("filters", 0)?;
            let k = kernel_size(&mut a)?;
            let mut l = SeparableConv2D::new(filters, k).depth_multiplier(a.usize("depth_multiplier", 1)?);
            a.ignore(&["pointwise_initializer"]);
            a.must_be_null("pointwise_regularizer", REGULARIZERS)?;
            a.must_be_null("pointwise_constraint", CONSTRAINTS)?;
            conv_common!(a, l, "depthwise");
            Box::new(l)
        }
        "SpatialDropout2D" => {
            let rate = a.f32("rate", 0.0)?;
            a.ignore(&["seed"]);
            Box::new(SpatialDropout2D::new(rate).name(name))
        }
        "LayerNormalization" => {
            channel_axis = Some(bn_axis(&mut a)?);
            let epsilon = a.f32("epsilon", 1e-3)?;
            let center = a.bool("center", true)?;
            let scale = a.bool("scale", true)?;
            a.must_equal("rms_scaling", json!(false), "RMS normalization is not supported")?;
            a.ignore(&["beta_initializer", "gamma_initializer"]);
            for k in ["beta_regularizer", "gamma_regularizer"] {
                a.must_be_null(k, REGULARIZERS)?;
            }
            for k in ["beta_constraint", "gamma_constraint"] {
                a.must_be_null(k, CONSTRAINTS)?;
            }
            Box::new(
                LayerNormalization::new()
                    .epsilon(epsilon)
                    .center(center)
                    .scale(scale)
                    .name(name),
            )
        }
        _ => {
            return Err(GraphError::arg(
                name,
                "class_name",
                format!(
                    "layer class \"{class}\" is not supported; Fovea reads InputLayer, {}",
                    SUPPORTED.join(", ")
                ),
            ));
        }
    };
    finish(a, layer, channel_axis, trainable)
}

/// Checks that every argument was read and wraps the layer.
fn finish(a: Args<'_>, inner: Box<dyn Layer>, channel_axis: Option<i64>, trainable: bool) -> Result<KerasLayer> {
    a.finish()?;
    Ok(KerasLayer {
        inner,
        channel_axis,
        trainable,
    })
}

fn kernel_size(a: &mut Args<'_>) -> Result<Size2> {
    match a.get("kernel_size") {
        None => Err(a.err("kernel_size", "missing")),
        Some(v) => a.size2_of("kernel_size", v),
    }
}

fn padding(a: &mut Args<'_>) -> Result<String> {
    let p = a.string("padding", "valid")?;
    if p != "valid" && p != "same" {
        return Err(a.err(
            "padding",
            format!("\"{p}\" is not supported; expected \"valid\" or \"same\""),
        ));
    }
    Ok(p)
}

/// BatchNormalization's `axis`: an integer or (tf.keras 2) a one-element list.
fn bn_axis(a: &mut Args<'_>) -> Result<i64> {
    match a.get("axis") {
        None => Ok(-1),
        Some(Value::Array(v)) if v.len() == 1 && v[0].is_i64() => Ok(v[0].as_i64().unwrap_or(-1)),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| a.err("axis", format!("{v} is not supported; only the last axis (-1) is"))),
    }
}

/// ZeroPadding2D's `padding` and Cropping2D's `cropping`: `p`, `(rows, cols)` or
/// `((top, bottom), (left, right))`.
fn edges(a: &mut Args<'_>, key: &'static str, default: usize) -> Result<((usize, usize), (usize, usize))> {
    let v = a.get(key).cloned().unwrap_or(json!(default));
    let bad = || {
        a.err(
            key,
            format!("expected p, (rows, cols) or ((top, bottom), (left, right)), got {v}"),
        )
    };
    if let Some(p) = as_usize(&v) {
        return Ok(((p, p), (p, p)));
    }
    let items = v.as_array().filter(|x| x.len() == 2).ok_or_else(bad)?;
    let pair = |x: &Value| -> Option<(usize, usize)> {
        if let Some(p) = as_usize(x) {
            return Some((p, p));
        }
        let p = x.as_array().filter(|p| p.len() == 2)?;
        Some((as_usize(&p[0])?, as_usize(&p[1])?))
    };
    Ok((pair(&items[0]).ok_or_else(bad)?, pair(&items[1]).ok_or_else(bad)?))
}
