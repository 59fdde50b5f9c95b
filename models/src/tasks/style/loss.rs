//! The style-transfer losses as graph functions: content (feature MSE at one layer), style
//! (Gram-matrix MSE at several layers) and total variation, each normalised so that its
//! value does not depend on the image size or the loss network's scale, and the same
//! formulas on the host (f64) for targets and tests.

use fovea_graph::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp};
use fovea_graph::train::{GraphFn, LossCtx, LossTerm, variable_name};
use fovea_graph::{GraphError, Tensor};

/// A Gram target: the layer and its `(C, C)` Gram matrix on the style image.
#[derive(Debug, Clone)]
pub struct GramTarget {
    /// The loss network's layer (an output of the model).
    pub layer: String,
    /// `F^T F / (H W)` of the style image's activations there.
    pub gram: Tensor,
}

/// Where the content loss's target comes from.
#[derive(Debug, Clone)]
pub enum ContentTarget {
    /// Fixed activations `(1, H, W, C)` (optimising one image).
    Fixed(Tensor),
    /// Another output of the model (the loss network on the input image, for a transform net).
    Output(String),
}

/// Where the total-variation loss reads the image.
#[derive(Debug, Clone)]
pub enum TvSource {
    /// The model input of this name (also after it became a trainable variable).
    Input(String),
    /// The model output of this name.
    Output(String),
}

/// The Gram matrix `F^T F / (H W)` per sample: `(B, H, W, C)` to `(B, C, C)` (one batched
/// matmul with the first operand transposed).
pub fn gram(graph: &mut Graph, feats: NodeId, layer: &str) -> fovea_graph::Result<NodeId> {
    let [b, h, w, c] = graph.shape(feats)[..] else {
        return Err(GraphError::shape(
            layer,
            "a Gram matrix needs 4-D activations (batch, height, width, channels)",
        ));
    };
    let flat = graph.reshape(feats, &[b, h * w, c], layer)?;
    let g = graph.push(
        Op::MatMul {
            trans_a: true,
            trans_b: false,
        },
        &[flat, flat],
        layer,
    )?;
    graph.push(Op::Unary(UnaryOp::Scale(1.0 / (h * w) as f32)), &[g], layer)
}

/// The mean over every element of `x`, as a `(1,)` value.
fn mean_all(graph: &mut Graph, x: NodeId, layer: &str) -> fovea_graph::Result<NodeId> {
    let rank = graph.shape(x).len();
    let m = graph.push(
        Op::Reduce {
            op: ReduceOp::Mean,
            axes: (0..rank).collect(),
            keep_dims: true,
        },
        &[x],
        layer,
    )?;
    graph.reshape(m, &[1], layer)
}

/// `mean((a - b)^2)` with `b` broadcast, as a `(1,)` value.
fn mse(graph: &mut Graph, a: NodeId, b: NodeId, layer: &str) -> fovea_graph::Result<NodeId> {
    let d = graph.push(Op::Binary(BinaryOp::Sub), &[a, b], layer)?;
    let s = graph.push(Op::Unary(UnaryOp::Square), &[d], layer)?;
    mean_all(graph, s, layer)
}

/// The style loss: over the target layers, the mean of `mean((G - A)^2) / mean(A^2)` (each
/// layer's Gram error relative to the target Gram's size: 1 for an image whose Gram is zero).
pub fn style_term(weight: f32, targets: Vec<GramTarget>) -> LossTerm {
    LossTerm::custom(
        "style_loss",
        weight,
        GraphFn::new(move |ctx: &mut LossCtx<'_>| {
            let n = targets.len().max(1) as f64;
            let mut total: Option<NodeId> = None;
            for t in &targets {
                let f = ctx.output(&t.layer)?;
                let layer = format!("style/{}", t.layer);
                let g = gram(ctx.graph, f, &layer)?;
                let mut shape = vec![1];
                shape.extend_from_slice(&t.gram.shape);
                let a = ctx
                    .graph
                    .constant(Tensor::new(shape, t.gram.data.clone(), &layer)?, &layer)?;
                let e = mse(ctx.graph, g, a, &layer)?;
                let size = t.gram.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / t.gram.numel().max(1) as f64;
                let e = ctx.graph.push(
                    Op::Unary(UnaryOp::Scale((1.0 / (size.max(1e-30) * n)) as f32)),
                    &[e],
                    &layer,
                )?;
                total = Some(match total {
                    None => e,
                    Some(s) => ctx.graph.push(Op::Binary(BinaryOp::Add), &[s, e], "style_loss")?,
                });
            }
            total.ok_or_else(|| GraphError::arg("style_loss", "layers", "no style layers given"))
        }),
    )
}

/// The content loss at `layer`: `mean((F - P)^2) / mean(P^2)` (relative to the target's size).
pub fn content_term(weight: f32, layer: String, target: ContentTarget) -> LossTerm {
    LossTerm::custom(
        "content_loss",
        weight,
        GraphFn::new(move |ctx: &mut LossCtx<'_>| {
            let f = ctx.output(&layer)?;
            let p = match &target {
                ContentTarget::Fixed(t) => ctx.graph.constant(t.clone(), "content_loss")?,
                ContentTarget::Output(name) => ctx.output(name)?,
            };
            let e = mse(ctx.graph, f, p, "content_loss")?;
            let sq = ctx.graph.push(Op::Unary(UnaryOp::Square), &[p], "content_loss")?;
            let size = mean_all(ctx.graph, sq, "content_loss")?;
            let size = ctx
                .graph
                .push(Op::Unary(UnaryOp::AddScalar(1e-12)), &[size], "content_loss")?;
            ctx.graph.push(Op::Binary(BinaryOp::Div), &[e, size], "content_loss")
        }),
    )
}

/// The total-variation loss: the mean squared difference of vertically and of horizontally
/// neighbouring pixels, added.
pub fn tv_term(weight: f32, source: TvSource) -> LossTerm {
    LossTerm::custom(
        "tv_loss",
        weight,
        GraphFn::new(move |ctx: &mut LossCtx<'_>| {
            let x = match &source {
                TvSource::Output(name) => ctx.output(name)?,
                TvSource::Input(name) => find_image(ctx.graph, name)?,
            };
            let s = ctx.graph.shape(x).to_vec();
            let [b, h, w, c] = s[..] else {
                return Err(GraphError::shape("tv_loss", "expected a 4-D image"));
            };
            let mut total = None;
            for (dh, dw) in [(1, 0), (0, 1)] {
                if h <= dh || w <= dw {
                    continue;
                }
                let sizes = vec![b, h - dh, w - dw, c];
                let lo = ctx.graph.push(
                    Op::Slice {
                        starts: vec![0; 4],
                        sizes: sizes.clone(),
                    },
                    &[x],
                    "tv_loss",
                )?;
                let hi = ctx.graph.push(
                    Op::Slice {
                        starts: vec![0, dh, dw, 0],
                        sizes,
                    },
                    &[x],
                    "tv_loss",
                )?;
                let e = mse(ctx.graph, hi, lo, "tv_loss")?;
                total = Some(match total {
                    None => e,
                    Some(t) => ctx.graph.push(Op::Binary(BinaryOp::Add), &[t, e], "tv_loss")?,
                });
            }
            match total {
                Some(t) => Ok(t),
                None => ctx.graph.fill(&[1], 0.0, "tv_loss"),
            }
        }),
    )
}

/// The node of model input `name`: still an input, or the variable it became when trainable.
fn find_image(graph: &Graph, name: &str) -> fovea_graph::Result<NodeId> {
    let var = variable_name(name);
    graph
        .nodes
        .iter()
        .position(|n| match &n.op {
            Op::Input { name: i } => i == name,
            Op::Param { name: p, .. } => *p == var,
            _ => false,
        })
        .map(|i| NodeId(i as u32))
        .ok_or_else(|| GraphError::arg("tv_loss", "input", format!("the model has no input '{name}'")))
}

/// Host Gram matrices `F^T F / (H W)` of `(B, H, W, C)` activations: `B` `(C, C)` tensors.
pub fn host_gram(feats: &Tensor) -> Vec<Tensor> {
    let [b, h, w, c] = feats.shape[..] else {
        return Vec::new();
    };
    let hw = h * w;
    (0..b)
        .map(|s| {
            let x = &feats.data[s * hw * c..(s + 1) * hw * c];
            let mut g = vec![0.0f64; c * c];
            for p in 0..hw {
                let row = &x[p * c..(p + 1) * c];
                for i in 0..c {
                    let xi = row[i] as f64;
                    if xi == 0.0 {
                        continue;
                    }
                    for j in 0..c {
                        g[i * c + j] += xi * row[j] as f64;
                    }
                }
            }
            let data = g.iter().map(|v| (v / hw as f64) as f32).collect();
            Tensor {
                shape: vec![c, c],
                data,
            }
        })
        .collect()
}

/// [`style_term`]'s value on the host (f64) for one sample's activations per layer.
pub fn host_style_loss(feats: &[&Tensor], targets: &[GramTarget]) -> f64 {
    let mut total = 0.0;
    for (f, t) in feats.iter().zip(targets) {
        let g = &host_gram(f)[0];
        let size = t.gram.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / t.gram.numel() as f64;
        let e = g
            .data
            .iter()
            .zip(&t.gram.data)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            / g.numel() as f64;
        total += e / size;
    }
    total / targets.len().max(1) as f64
}

/// [`content_term`]'s value on the host (f64).
pub fn host_content_loss(feats: &Tensor, target: &Tensor) -> f64 {
    let n = feats.numel() as f64;
    let e = feats
        .data
        .iter()
        .zip(&target.data)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum::<f64>()
        / n;
    let size = target.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n;
    e / (size + 1e-12)
}

/// [`tv_term`]'s value on the host (f64) for a `(1, H, W, C)` image.
pub fn host_tv_loss(image: &Tensor) -> f64 {
    let [_, h, w, c] = image.shape[..] else { return 0.0 };
    let at = |y: usize, x: usize, k: usize| image.data[(y * w + x) * c + k] as f64;
    let mut total = 0.0;
    for (dh, dw) in [(1usize, 0usize), (0, 1)] {
        if h <= dh || w <= dw {
            continue;
        }
        let mut s = 0.0;
        for y in 0..h - dh {
            for x in 0..w - dw {
                for k in 0..c {
                    s += (at(y + dh, x + dw, k) - at(y, x, k)).powi(2);
                }
            }
        }
        total += s / ((h - dh) * (w - dw) * c) as f64;
    }
    total
}
