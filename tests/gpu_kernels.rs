//! Every kernel against the reference interpreter (f64) on random shapes drawn by proptest:
//! 1x1, odd and prime sizes, stride larger than the kernel, dilation, groups, batch 1 and 7,
//! channel counts not divisible by 4. Runs on whatever adapter `Device::new()` picks
//! (lavapipe in CI); the adapter is printed once per run.

mod common;

use common::{class_device, gpu_vs_reference, random_feeds, run_vs_reference, single};
use fovea::graph::ir::*;
use proptest::prelude::*;

const TOL: f64 = 1e-4;

fn check(g: Graph, seed: u64, lo: f64, hi: f64) -> Result<(), TestCaseError> {
    let feeds = random_feeds(&g, seed, lo, hi);
    let (err, at) = gpu_vs_reference(g, &feeds);
    prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    Ok(())
}

fn batch() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(7usize), 2usize..4]
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 20,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg(24))]

    #[test]
    fn conv2d_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, cg in 1usize..6, og in 1usize..7, groups in 1usize..4,
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..5, sw in 1usize..5, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups,
        };
        let g = single(Op::Conv2d(geom), &[vec![n, h, w, cg * groups], vec![kh, kw, cg, og * groups]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    // Channel counts 4 and 8 take the vec4 kernels; the others and multipliers above 1 the
    // scalar ones. Widths 1..13 against blocks of 4 columns (and of a multiple of the stride
    // for the input gradient) leave partial blocks; strides and dilations up to 3 with
    // asymmetric padding reach taps that land on no column of a block.
    #[test]
    fn depthwise_conv2d_matches_reference(
        n in batch(), h in 1usize..13, w in 1usize..13, c in 1usize..10, mult in 1usize..3,
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups: c,
        };
        let g = single(Op::Conv2d(geom), &[vec![n, h, w, c], vec![kh, kw, 1, c * mult]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn depthwise_backprop_input_matches_reference(
        n in batch(), h in 1usize..13, w in 1usize..13, c in 1usize..10, mult in 1usize..3,
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), transposed in any::<bool>(), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups: c,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let dy = vec![n, oh.unwrap(), ow.unwrap(), c * mult];
        let (filter, kernel) = if transposed {
            (BackpropFilter::Hwoi, vec![kh, kw, c * mult, 1])
        } else {
            (BackpropFilter::Hwio, vec![kh, kw, 1, c * mult])
        };
        let op = Op::Conv2dBackpropInput { geom, input_hw: (h, w), filter };
        let g = single(op, &[dy, kernel]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn depthwise_backprop_filter_matches_reference(
        n in batch(), h in 1usize..13, w in 1usize..13, c in 1usize..10, mult in 1usize..3,
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups: c,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let dy = vec![n, oh.unwrap(), ow.unwrap(), c * mult];
        let op = Op::Conv2dBackpropFilter { geom, kernel_hw: (kh, kw) };
        let g = single(op, &[vec![n, h, w, c], dy]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn conv_transpose2d_matches_reference(
        n in batch(), h in 1usize..8, w in 1usize..8, c in 1usize..6, o in 1usize..6,
        kh in 1usize..5, kw in 1usize..5, s in 1usize..4, dil in 1usize..3,
        pt in 0usize..3, pl in 0usize..3, op in 0usize..3, seed in any::<u64>(),
    ) {
        let geom = ConvGeometry { stride: (s, s), dilation: (dil, dil), pad: Pad2d { top: pt, bottom: 0, left: pl, right: 1 }, groups: 1 };
        let g = single(Op::ConvTranspose2d { geom, out_pad: (op, op) }, &[vec![n, h, w, c], vec![kh, kw, o, c]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    // The matmul stored pixel-shuffled (`passes::subpixel`'s rewrite of a transposed convolution
    // whose kernel equals its stride): blocks 1x1 to 3x3, square or not, and output channels
    // that make the product's width a multiple of 4 (vec4 loads of k) or not.
    #[test]
    fn pixel_shuffle_matmul_matches_reference(
        n in batch(), h in 1usize..9, w in 1usize..9, c in 1usize..10, o in 1usize..9,
        bh in 1usize..4, bw in 1usize..4, seed in any::<u64>(),
    ) {
        let g = single(Op::PixelShuffleMatMul { block: (bh, bw) }, &[vec![n, h, w, c], vec![c, bh * bw * o]]);
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn matmul_matches_reference(
        m in 1usize..70, k in 1usize..70, nn in 1usize..70, ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>(),
    ) {
        let a = if ta { vec![k, m] } else { vec![m, k] };
        let b = if tb { vec![nn, k] } else { vec![k, nn] };
        check(single(Op::MatMul { trans_a: ta, trans_b: tb }, &[a, b]).unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn pool2d_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, c in 1usize..7, max in any::<bool>(),
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..5, sw in 1usize..5, pads in (0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = PoolGeometry {
            kind: if max { PoolKind::Max } else { PoolKind::Avg },
            size: (kh, kw),
            stride: (sh, sw),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.1, right: pads.0 },
        };
        let g = single(Op::Pool2d(geom), &[vec![n, h, w, c]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn reduce_matches_reference(
        shape in prop::collection::vec(1usize..7, 1..5), mask in 1u32..16, op in 0usize..4, keep in any::<bool>(), seed in any::<u64>(),
    ) {
        let axes: Vec<usize> = (0..shape.len()).filter(|i| mask & (1 << i) != 0).collect();
        prop_assume!(!axes.is_empty());
        let op = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min][op];
        check(single(Op::Reduce { op, axes, keep_dims: keep }, &[shape]).unwrap(), seed, -1.0, 1.0)?;
    }

    // Long sums and means into few outputs run split (partials in the scratch buffer, then the
    // split-K reduction): batch-norm statistics over N, H and W, and other axis sets, with
    // reduction lengths that leave a short last split.
    #[test]
    fn split_reduce_matches_reference(
        n in 1usize..4, h in 9usize..30, w in 9usize..30, c in 1usize..70, which in 0usize..3,
        mean in any::<bool>(), keep in any::<bool>(), seed in any::<u64>(),
    ) {
        let axes = [vec![0, 1, 2], vec![1, 2], vec![0, 2]][which].clone();
        let op = if mean { ReduceOp::Mean } else { ReduceOp::Sum };
        let shape = vec![n, h, w, c];
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let total: usize = shape.iter().product::<usize>() / count;
        let g = single(Op::Reduce { op, axes, keep_dims: keep }, &[shape]).unwrap();
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let (err, at, program) = run_vs_reference(&common::device(), g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        let split = program.kernels().iter().any(|k| k.name.starts_with("reduce_split"));
        prop_assert_eq!(split, fovea::kernels::reduce_splits(total, count) > 1, "{}", at);
    }

    // A reduction of an elementwise expression runs as one kernel that evaluates it while
    // loading (the reduce-prologue fusion): a squared deviation from a broadcast input, or a
    // product, as batch norm's statistics and gradients have them; plain and split, every op.
    #[test]
    fn reduce_prologue_matches_reference(
        shape in prop::collection::vec(1usize..7, 1..5), mask in 1u32..16, bmask in any::<u32>(), op in 0usize..4, keep in any::<bool>(),
        product in any::<bool>(), long in any::<bool>(), seed in any::<u64>(),
    ) {
        // Long: batch-norm statistics over N, H and W, which run split.
        let shape = if long { vec![shape[0], 23, 17, shape[shape.len() - 1]] } else { shape };
        let axes: Vec<usize> = if long { vec![0, 1, 2] } else { (0..shape.len()).filter(|i| mask & (1 << i) != 0).collect() };
        prop_assume!(!axes.is_empty());
        let op = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min][op];
        let b: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if bmask & (1 << i) != 0 { 1 } else { d }).collect();
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(shape.clone())).unwrap();
        let m = g.input("m", TensorType::f32(b)).unwrap();
        let e = if product {
            g.push(Op::Binary(BinaryOp::Mul), &[x, m], "e").unwrap()
        } else {
            let d = g.push(Op::Binary(BinaryOp::Sub), &[x, m], "d").unwrap();
            g.push(Op::Unary(UnaryOp::Square), &[d], "e").unwrap()
        };
        let y = g.push(Op::Reduce { op, axes, keep_dims: keep }, &[e], "r").unwrap();
        g.outputs.push(y);
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let (err, at, program) = run_vs_reference(&common::device(), g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        let names: Vec<&str> = program.kernels().iter().map(|k| k.name.as_str()).collect();
        prop_assert!(names.iter().any(|n| n.contains("_of_")), "{:?}", names);
        prop_assert!(!names.iter().any(|n| n.starts_with("elementwise")), "{:?}", names);
    }

    #[test]
    fn unary_matches_reference(shape in prop::collection::vec(1usize..9, 1..5), which in 0usize..18, seed in any::<u64>()) {
        let ops = [
            UnaryOp::Relu, UnaryOp::Relu6, UnaryOp::LeakyRelu(0.2), UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Exp,
            UnaryOp::Log, UnaryOp::Neg, UnaryOp::Sqrt, UnaryOp::Square, UnaryOp::Abs, UnaryOp::Scale(-1.5), UnaryOp::AddScalar(0.25),
            UnaryOp::Clip(-0.5, 2.0), UnaryOp::Clip(f32::NEG_INFINITY, 1.0), UnaryOp::Softplus, UnaryOp::HardSwish, UnaryOp::Elu(0.7),
        ];
        let op = ops[which];
        let (lo, hi) = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt) { (0.05, 4.0) } else { (-8.0, 8.0) };
        check(single(Op::Unary(op), &[shape]).unwrap(), seed, lo, hi)?;
    }

    #[test]
    fn binary_broadcast_matches_reference(
        shape in prop::collection::vec(1usize..7, 1..5), mask in any::<u32>(), drop in 0usize..3, which in 0usize..7, swap in any::<bool>(), seed in any::<u64>(),
    ) {
        // b: a suffix of the shape with some axes set to 1.
        let b: Vec<usize> = shape[drop.min(shape.len() - 1)..].iter().enumerate().map(|(i, &d)| if mask & (1 << i) != 0 { 1 } else { d }).collect();
        let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min, BinaryOp::PRelu][which];
        let shapes = if swap { vec![b, shape] } else { vec![shape, b] };
        // Division: keep the divisor away from zero.
        let (lo, hi) = if op == BinaryOp::Div { (0.5, 2.0) } else { (-2.0, 2.0) };
        check(single(Op::Binary(op), &shapes).unwrap(), seed, lo, hi)?;
    }

    // Innermost axes of multiples of 4: the four-element invocations, the other input read as
    // vec4 (full innermost axis) or as one value (broadcast along it), and both ways round.
    #[test]
    fn binary_broadcast_vec4_matches_reference(
        outer in prop::collection::vec(1usize..6, 0..3), last in prop_oneof![Just(4usize), Just(8), Just(12), Just(20)], mask in any::<u32>(), which in 0usize..7, swap in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut shape = outer.clone();
        shape.push(last);
        let b: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if mask & (1 << i) != 0 { 1 } else { d }).collect();
        let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min, BinaryOp::PRelu][which];
        let shapes = if swap { vec![b, shape] } else { vec![shape, b] };
        let (lo, hi) = if op == BinaryOp::Div { (0.5, 2.0) } else { (-2.0, 2.0) };
        check(single(Op::Binary(op), &shapes).unwrap(), seed, lo, hi)?;
    }

    #[test]
    fn softmax_matches_reference(rows in 1usize..9, len in prop_oneof![Just(1usize), 2usize..20, 60usize..300], log in any::<bool>(), seed in any::<u64>()) {
        let op = if log { Op::LogSoftmax } else { Op::Softmax };
        check(single(op, &[vec![rows, len]]).unwrap(), seed, -10.0, 10.0)?;
    }

    #[test]
    fn batch_norm_matches_reference(n in batch(), h in 1usize..6, c in 1usize..11, seed in any::<u64>()) {
        let g = single(Op::BatchNormInference { epsilon: 1e-3 }, &[vec![n, h, h, c], vec![c], vec![c], vec![c], vec![c]]).unwrap();
        // Variances must be positive: draw everything in (0.1, 2).
        check(g, seed, 0.1, 2.0)?;
    }

    #[test]
    fn resize_matches_reference(
        n in batch(), h in 1usize..8, w in 1usize..8, c in 1usize..5, oh in 1usize..17, ow in 1usize..17, mode in 0usize..ResizeMode::ALL.len(), seed in any::<u64>(),
    ) {
        let mode = ResizeMode::ALL[mode];
        check(single(Op::Resize { mode, height: oh, width: ow }, &[vec![n, h, w, c]]).unwrap(), seed, -1.0, 1.0)?;
    }

    // The gradient gathers over a window of outputs per input pixel: every mode, up and down.
    #[test]
    fn resize_backprop_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, c in 1usize..4, oh in 1usize..17, ow in 1usize..17, mode in 0usize..ResizeMode::ALL.len(), seed in any::<u64>(),
    ) {
        let op = Op::ResizeBackprop { mode: ResizeMode::ALL[mode], input_hw: (h, w) };
        check(single(op, &[vec![n, oh, ow, c]]).unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn concat_matches_reference(shape in prop::collection::vec(1usize..6, 1..5), axis in 0usize..4, extra in prop::collection::vec(1usize..5, 1..3), seed in any::<u64>()) {
        let axis = axis % shape.len();
        let mut shapes = vec![shape.clone()];
        for e in extra {
            let mut s = shape.clone();
            s[axis] = e;
            shapes.push(s);
        }
        check(single(Op::Concat { axis }, &shapes).unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn pad_matches_reference(shape in prop::collection::vec(1usize..6, 1..5), pads in prop::collection::vec((0usize..3, 0usize..3), 4), seed in any::<u64>()) {
        let pads = pads[..shape.len()].to_vec();
        check(single(Op::Pad { pads, value: 0.5, mode: PadMode::Constant }, &[shape]).unwrap(), seed, -1.0, 1.0)?;
    }

    /// Reflect and replicate padding of any axis (channels included) and their gradients
    /// (`PadBackprop`, fed the padded shape): reflect pads are shorter than their axis.
    #[test]
    fn reflect_and_replicate_pads_and_gradients_match_reference(
        shape in prop::collection::vec(1usize..7, 1..5), pads in prop::collection::vec((0usize..4, 0usize..4), 4),
        reflect in any::<bool>(), backprop in any::<bool>(), seed in any::<u64>(),
    ) {
        let mode = if reflect { PadMode::Reflect } else { PadMode::Replicate };
        let pads: Vec<(usize, usize)> = shape
            .iter()
            .zip(&pads)
            .map(|(&d, &(a, b))| if reflect { (a % d, b % d) } else { (a, b) })
            .collect();
        let g = if backprop {
            let padded: Vec<usize> = shape.iter().zip(&pads).map(|(d, (a, b))| d + a + b).collect();
            single(Op::PadBackprop { pads, mode }, &[padded])
        } else {
            single(Op::Pad { pads, value: 0.0, mode }, &[shape])
        };
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn transpose_matches_reference(shape in prop::collection::vec(1usize..6, 1..5), perm_seed in any::<u64>(), seed in any::<u64>()) {
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        let mut rng = fovea::graph::init::Rng::new(perm_seed);
        for i in (1..perm.len()).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        check(single(Op::Transpose { perm }, &[shape]).unwrap(), seed, -1.0, 1.0)?;
    }
}

/// Feeds for a softmax cross-entropy graph built by `single` (`x` the logits, `p1` the labels,
/// `p2` the loss gradient if any): logits uniform in `(-scale, scale)`, labels one-hot or a
/// random non-negative weighting, the loss gradient in `(-1, 1)`.
fn softmax_ce_feeds(g: &Graph, classes: usize, one_hot: bool, scale: f64, seed: u64) -> Vec<(String, Vec<f32>)> {
    let mut rng = fovea::graph::init::Rng::new(seed);
    let mut feeds = random_feeds(g, seed, -1.0, 1.0);
    for (name, v) in feeds.iter_mut() {
        match name.as_str() {
            "x" => v.iter_mut().for_each(|e| *e *= scale as f32),
            "p1" if one_hot => {
                v.iter_mut().for_each(|e| *e = 0.0);
                for row in v.chunks_mut(classes) {
                    row[rng.below(classes)] = 1.0;
                }
            }
            "p1" => v.iter_mut().for_each(|e| *e = (*e + 1.0) / 2.0),
            _ => {}
        }
    }
    feeds
}

proptest! {
    #![proptest_config(cfg(32))]

    // The fused softmax cross-entropy and its logits gradient (the from-logits classification
    // losses), rank 2 (N, C) and rank 4 (N, H, W, C) (per-pixel losses), on one class, prime and
    // odd class counts, rows long enough for the workgroup variant on every adapter class, with
    // one-hot or spread labels and logits up to +-80 (stability).
    #[test]
    fn softmax_cross_entropy_matches_reference(
        n in batch(), spatial in prop_oneof![Just(None), (1usize..5, 1usize..4).prop_map(Some)],
        classes in prop_oneof![Just(1usize), Just(2usize), Just(7usize), Just(10usize), Just(13usize), 3usize..40, 250usize..300, Just(1000usize)],
        grad in any::<bool>(), one_hot in any::<bool>(), large in any::<bool>(), seed in any::<u64>(),
    ) {
        let lead = match spatial {
            None => vec![n],
            Some((h, w)) => vec![n, h, w],
        };
        let shape: Vec<usize> = lead.iter().copied().chain([classes]).collect();
        let g = if grad {
            single(Op::SoftmaxCrossEntropyGrad, &[shape.clone(), shape, lead]).unwrap()
        } else {
            single(Op::SoftmaxCrossEntropy, &[shape.clone(), shape]).unwrap()
        };
        let feeds = softmax_ce_feeds(&g, classes, one_hot, if large { 80.0 } else { 5.0 }, seed);
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        prop_assert!(at.contains(if grad { "softmax_ce_grad_" } else { "softmax_ce_" }), "{}", at);
    }
}

/// Confident, correct rows (margins of 9 to 15): the loss and the label's gradient are about
/// `exp(-margin)`, and must keep their f32 precision, not the ~1e-7 absolute error of
/// `log(1 + r)` or `softmax - 1`.
#[test]
fn softmax_cross_entropy_keeps_precision_for_confident_rows() {
    for classes in [2usize, 10, 300] {
        for grad in [false, true] {
            let shape = vec![4, classes];
            let g = if grad {
                single(Op::SoftmaxCrossEntropyGrad, &[shape.clone(), shape, vec![4]]).unwrap()
            } else {
                single(Op::SoftmaxCrossEntropy, &[shape.clone(), shape]).unwrap()
            };
            let mut logits = vec![-1.0f32; 4 * classes];
            let mut labels = vec![0.0f32; 4 * classes];
            for (row, margin) in [9.0f32, 11.0, 13.0, 15.0].into_iter().enumerate() {
                let label = (row * 7) % classes;
                logits[row * classes + label] = margin - 1.0;
                labels[row * classes + label] = 1.0;
            }
            let feeds = vec![
                ("x".to_string(), logits),
                ("p1".to_string(), labels),
                ("p2".to_string(), vec![1.0, -0.5, 0.25, 2.0]),
            ];
            let feeds = if grad { feeds } else { feeds[..2].to_vec() };
            let (err, at) = gpu_vs_reference(g, &feeds);
            assert!(err <= TOL, "{classes} classes, grad {grad}: {err:e} at {at}");
        }
    }
}

proptest! {
    #![proptest_config(cfg(16))]

    /// `Select` with all three inputs broadcast (each a suffix of the shape with some axes set
    /// to 1), the condition an f32 0/1 mask.
    #[test]
    fn select_broadcast_matches_reference(
        shape in prop::collection::vec(1usize..7, 1..5), masks in (any::<u32>(), any::<u32>(), any::<u32>()), seed in any::<u64>(),
    ) {
        let sub = |m: u32| -> Vec<usize> {
            let drop = (m as usize >> 8) % shape.len();
            shape[drop..].iter().enumerate().map(|(i, &d)| if m & (1 << i) != 0 { 1 } else { d }).collect()
        };
        let mut shapes = vec![sub(masks.0), sub(masks.1), sub(masks.2)];
        // At least one input has the full shape, so the output is `shape`.
        shapes[(masks.0 % 3) as usize] = shape.clone();
        let g = single(Op::Select, &shapes).unwrap();
        let mut feeds = random_feeds(&g, seed, -2.0, 2.0);
        for v in feeds[0].1.iter_mut() {
            *v = f32::from(u8::from(*v >= 0.0));
        }
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    }
}

/// Runs `graph` (inputs first, then parameters, as `feeds` lists them) on the GPU; returns the
/// first output.
fn run_gpu(graph: &Graph, inputs: &[&[f32]], params: &[(&str, &[f32])]) -> Vec<f32> {
    let program = fovea::engine::Program::compile(&common::device(), graph.clone()).unwrap_or_else(|e| panic!("{e}"));
    for (name, v) in params {
        program.set_param(name, v).unwrap();
    }
    program.run(inputs).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

#[test]
fn select_reads_an_i32_condition() {
    // cond (2, 1, 3) i32 with values 0, 1, -5 and 7; a (4, 1), b (3,): out (2, 4, 3).
    let cond: Vec<i32> = vec![0, 1, -5, 7, 0, 0];
    let mut g = Graph::new();
    let c = g
        .input(
            "cond",
            TensorType {
                shape: vec![2, 1, 3],
                dtype: DType::I32,
            },
        )
        .unwrap();
    let a = g.input("a", TensorType::f32(vec![4, 1])).unwrap();
    let b = g.param("b", &[3], true, "w").unwrap();
    let y = g.push(Op::Select, &[c, a, b], "where").unwrap();
    g.outputs.push(y);
    let (av, bv) = ([1.0f32, 2.0, 3.0, 4.0], [-1.0f32, -2.0, -3.0]);
    // `Program::run` takes an i32 input's values as whole numbers in f32 and converts them.
    let bits: Vec<f32> = cond.iter().map(|&v| v as f32).collect();
    let got = run_gpu(&g, &[&bits, &av], &[("b", &bv)]);
    let feeds: fovea::graph::interp::Feeds = [
        ("cond".to_string(), cond.iter().map(|&v| f64::from(v)).collect()),
        ("a".to_string(), av.iter().map(|&v| f64::from(v)).collect()),
        ("b".to_string(), bv.iter().map(|&v| f64::from(v)).collect()),
    ]
    .into_iter()
    .collect();
    let want = fovea::graph::interp::evaluate(&g, &feeds).unwrap().remove(0);
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(got, want);
    // Spot check: element (0, 2, 1) has cond 1 -> a[2] = 3; (1, 0, 0) has cond 7 -> a[0] = 1.
    assert_eq!(got[2 * 3 + 1], 3.0);
    assert_eq!(got[12], 1.0);
    assert_eq!(got[13], -2.0);
}

/// The new unary ops and their gradients at their kinks, at extreme values and at NaN: the
/// kernels take the one-sided values and the NaN rule the interpreter defines.
#[test]
fn unary_ops_at_kinks_extremes_and_nan_match_reference() {
    let points: Vec<f32> = vec![
        -100.0,
        -30.0,
        -3.0,
        -1.0,
        -1e-4,
        0.0,
        1e-4,
        1.0,
        2.0,
        3.0,
        30.0,
        100.0,
        f32::NAN,
    ];
    let ops = [
        UnaryOp::Clip(-1.0, 2.0),
        UnaryOp::Clip(f32::NEG_INFINITY, 0.0),
        UnaryOp::Softplus,
        UnaryOp::HardSwish,
        UnaryOp::Elu(0.5),
    ];
    for op in ops {
        for grad in [false, true] {
            let n = points.len();
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(vec![n])).unwrap();
            let y = if grad {
                let dy = g.input("dy", TensorType::f32(vec![n])).unwrap();
                g.push(Op::UnaryGrad(op), &[x, dy], "g").unwrap()
            } else {
                g.push(Op::Unary(op), &[x], "f").unwrap()
            };
            g.outputs.push(y);
            let ones = vec![1.0f32; n];
            let inputs: Vec<&[f32]> = if grad { vec![&points, &ones] } else { vec![&points] };
            let got = run_gpu(&g, &inputs, &[]);
            let mut feeds: fovea::graph::interp::Feeds =
                [("x".to_string(), points.iter().map(|&v| f64::from(v)).collect())]
                    .into_iter()
                    .collect();
            feeds.insert("dy".into(), vec![1.0; n]);
            let want = fovea::graph::interp::evaluate(&g, &feeds).unwrap().remove(0);
            for ((&p, &gv), &wv) in points.iter().zip(&got).zip(&want) {
                let ok = if wv.is_nan() {
                    gv.is_nan()
                } else {
                    (f64::from(gv) - wv).abs() <= 1e-5 * (1.0 + wv.abs())
                };
                assert!(
                    ok,
                    "{}{} at {p}: gpu {gv}, reference {wv}",
                    op.name(),
                    if grad { "_grad" } else { "" }
                );
            }
        }
    }
}

/// A select's condition is read on its bits: NaN and any non-zero value pick `a`, +0 and -0
/// pick `b`, as in the interpreter.
#[test]
fn select_conditions_nan_and_signed_zero_match_reference() {
    let cond = [f32::NAN, -0.0, 0.0, 1.0, -2.5, f32::INFINITY];
    let n = cond.len();
    let mut g = Graph::new();
    let c = g.input("c", TensorType::f32(vec![n])).unwrap();
    let a = g.input("a", TensorType::f32(vec![n])).unwrap();
    let b = g.input("b", TensorType::f32(vec![n])).unwrap();
    let y = g.push(Op::Select, &[c, a, b], "where").unwrap();
    g.outputs.push(y);
    let (av, bv) = ([1.0f32; 6], [2.0f32; 6]);
    let got = run_gpu(&g, &[&cond, &av, &bv], &[]);
    assert_eq!(got, [1.0, 2.0, 2.0, 1.0, 1.0, 1.0]);
}

/// Constants reach the kernels, survive several runs (their buffers are never reused by the
/// arena plan), fold with fills and stay exact.
#[test]
fn constants_are_uploaded_once_and_survive_runs() {
    use fovea::graph::Tensor;
    let n = 37;
    let grid: Vec<f32> = (0..n).map(|k| k as f32 * 0.25 - 3.0).collect();
    let mask: Vec<f32> = (0..n).map(|k| f32::from(u8::from(k % 3 == 0))).collect();
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![n])).unwrap();
    let c = g
        .constant(Tensor::new(vec![n], grid.clone(), "grid").unwrap(), "grid")
        .unwrap();
    let m = g
        .constant(Tensor::new(vec![n], mask.clone(), "mask").unwrap(), "mask")
        .unwrap();
    // A chain of intermediates so the arenas get reused, then the constants read late.
    let mut h = g.push(Op::Unary(UnaryOp::Tanh), &[x], "h").unwrap();
    for _ in 0..4 {
        let e = g.push(Op::Unary(UnaryOp::Exp), &[h], "h").unwrap();
        let s = g
            .push(
                Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: vec![0],
                    keep_dims: true,
                },
                &[e],
                "h",
            )
            .unwrap();
        h = g.push(Op::Binary(BinaryOp::Div), &[e, s], "h").unwrap();
    }
    let scaled = g.push(Op::Binary(BinaryOp::Mul), &[h, c], "out").unwrap();
    let y = g.push(Op::Select, &[m, scaled, c], "out").unwrap();
    g.outputs = vec![y, c];
    let program = fovea::engine::Program::compile(&common::device(), g.clone()).unwrap();
    for seed in [1u64, 2, 3] {
        let xs = common::random(&mut fovea::graph::init::Rng::new(seed), n, -2.0, 2.0);
        let got = program.run(&[&xs]).unwrap();
        let feeds: fovea::graph::interp::Feeds = [("x".to_string(), xs.iter().map(|&v| f64::from(v)).collect())]
            .into_iter()
            .collect();
        let want = fovea::graph::interp::evaluate(&g, &feeds).unwrap();
        assert_eq!(got[1], grid, "the constant itself, run {seed}");
        for (k, (&gv, &wv)) in got[0].iter().zip(&want[0]).enumerate() {
            assert!(
                (f64::from(gv) - wv).abs() <= 1e-5 * (1.0 + wv.abs()),
                "run {seed} [{k}]: gpu {gv}, reference {wv}"
            );
        }
    }
}

proptest! {
    #![proptest_config(cfg(12))]

    /// The composite L2 normalisation and its gradient (autodiff through the composition).
    #[test]
    fn l2_normalize_and_its_gradient_match_reference(
        shape in prop::collection::vec(1usize..9, 1..4), mask in 1u32..8, grad in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut axes: Vec<usize> = (0..shape.len()).filter(|i| mask & (1 << i) != 0).collect();
        if axes.is_empty() {
            axes.push(shape.len() - 1);
        }
        // One-element slices normalise to +-1: their gradient is exactly 0 and f32 leaves
        // ~1e-8 of cancellation, which a relative comparison cannot judge.
        prop_assume!(!grad || axes.iter().map(|&a| shape[a]).product::<usize>() > 1);
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(shape.clone())).unwrap();
        let y = fovea::graph::ops::l2_normalize(&mut g, x, &axes, 1e-12, "embed").unwrap();
        let out = if grad {
            let r = g.param("r", &shape, false, "r").unwrap();
            let p = g.push(Op::Binary(BinaryOp::Mul), &[y, r], "loss").unwrap();
            let all: Vec<usize> = (0..shape.len()).collect();
            let loss = g.push(Op::Reduce { op: ReduceOp::Sum, axes: all, keep_dims: false }, &[p], "loss").unwrap();
            fovea::graph::grad::grad(&mut g, loss, &[x]).unwrap()[0]
        } else {
            y
        };
        g.outputs.push(out);
        check(g, seed, -1.0, 1.0)?;
    }
}

#[test]
fn large_elementwise_uses_a_2d_grid() {
    // 65535 * 64 + 3 elements cannot be covered by one row of 64-wide workgroups.
    let n = 65_535 * 64 + 3;
    let g = single(Op::Unary(UnaryOp::Relu), &[vec![n]]).unwrap();
    let (err, at) = common::gpu_vs_reference(g.clone(), &random_feeds(&g, 5, -1.0, 1.0));
    assert!(err <= TOL, "{err:e} at {at}");
}

/// A convolution whose row tiles exceed one grid dimension (batch 32 of a 128x128 image has
/// 524,288 output pixels; lavapipe's GEMM tile is 8 rows, so 65,536 row tiles > 65,535): the
/// excess folds into the grid's z. 1x1 conv of a 1x725x725x3 image (525,625 rows; 65,704 row
/// tiles) and a 3x3 "same" one of 2x513x513x2, against the reference.
#[test]
fn conv_with_more_row_tiles_than_a_grid_dimension_matches_reference() {
    for (x, k, pad) in [([1, 725, 725, 3], 1, 0), ([2, 513, 513, 2], 3, 1)] {
        let geom = ConvGeometry {
            stride: (1, 1),
            dilation: (1, 1),
            pad: Pad2d {
                top: pad,
                bottom: pad,
                left: pad,
                right: pad,
            },
            groups: 1,
        };
        let g = single(Op::Conv2d(geom), &[x.to_vec(), vec![k, k, x[3], 5]]).unwrap();
        let rows = x[0] * x[1] * x[2];
        assert!(rows.div_ceil(8) > 65_535, "{rows} rows fit one grid dimension");
        let (err, at, program) =
            common::run_vs_reference(&common::device(), g.clone(), &random_feeds(&g, 9, -1.0, 1.0));
        assert!(err <= TOL, "{x:?}: {err:e} at {at}");
        let kernels = program.kernels();
        eprintln!(
            "{x:?}: {:?}",
            kernels.iter().map(|k| (&k.name, k.workgroups)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn seed_cnn_forward_matches_reference_at_batch_7() {
    let model = fovea::models::zoo::cifar10_cnn(3).unwrap();
    let g = model.graph(7).unwrap();
    let mut feeds = random_feeds(&g, 11, 0.0, 1.0);
    for (name, v) in feeds.iter_mut() {
        if let Some(p) = model.params.get(name) {
            v.clone_from(&p.value.data);
        }
    }
    let (err, at) = gpu_vs_reference(g, &feeds);
    assert!(err <= TOL, "{err:e} at {at}");
}

/// The forward convolution's output size along one axis, if positive.
fn conv_out(size: usize, k: usize, stride: usize, dil: usize, pad: usize) -> Option<usize> {
    let span = dil * (k - 1) + 1;
    (size + pad >= span).then(|| (size + pad - span) / stride + 1)
}

proptest! {
    #![proptest_config(cfg(24))]

    // The two convolution gradients (the training step's GEMMs) on their own, on shapes that
    // reach every variant of the GEMM core: channel counts divisible by 4 or not (vec4 or scalar
    // B), groups, stride larger than the kernel, dilation, padding, more than one tile of rows.
    #[test]
    fn conv2d_backprop_input_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, cg in 1usize..6, og in prop_oneof![1usize..7, Just(8usize)],
        groups in 1usize..4, kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let dy = vec![n, oh.unwrap(), ow.unwrap(), og * groups];
        let op = Op::Conv2dBackpropInput { geom, input_hw: (h, w), filter: BackpropFilter::Hwio };
        let g = single(op, &[dy, vec![kh, kw, cg, og * groups]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    // The input gradient of a layer with 1-4 input channels (an image's first layer): the
    // direct narrow kernel when CO % 4 == 0 (blocks of 8 columns, or a multiple of the
    // stride), the GEMM core otherwise.
    #[test]
    fn narrow_conv2d_backprop_input_matches_reference(
        n in batch(), h in 1usize..14, w in 1usize..20, c in 1usize..5, co in prop_oneof![Just(4usize), Just(8), Just(12), Just(32), 1usize..7],
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups: 1,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let op = Op::Conv2dBackpropInput { geom, input_hw: (h, w), filter: BackpropFilter::Hwio };
        let g = single(op, &[vec![n, oh.unwrap(), ow.unwrap(), co], vec![kh, kw, c, co]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    // A layer with 1-4 output channels and CI % 4 == 0 (an image-producing last layer): the
    // narrow forward and filter-gradient kernels (the filter gradient in slabs of rows).
    #[test]
    fn narrow_output_conv2d_and_filter_grad_match_reference(
        n in batch(), h in 1usize..14, w in 1usize..20, ci in prop_oneof![Just(4usize), Just(8), Just(16)], co in 1usize..5,
        kh in 1usize..6, kw in 1usize..6, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), grad in any::<bool>(), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups: 1,
        };
        let g = if grad {
            let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
            let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
            prop_assume!(oh.is_some() && ow.is_some());
            let op = Op::Conv2dBackpropFilter { geom, kernel_hw: (kh, kw) };
            single(op, &[vec![n, h, w, ci], vec![n, oh.unwrap(), ow.unwrap(), co]])
        } else {
            single(Op::Conv2d(geom), &[vec![n, h, w, ci], vec![kh, kw, ci, co]])
        };
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    // The input gradient reading the transposed kernel (KH, KW, CO, C / groups), as the
    // `transpose_backprop_filters` pass makes it: vec4 B when C / groups % 4 == 0 (cg 4 or 8),
    // scalar B otherwise, on the same geometries as above.
    #[test]
    fn conv2d_backprop_input_transposed_filter_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, cg in prop_oneof![1usize..6, Just(8usize)],
        og in prop_oneof![1usize..7, Just(8usize)], groups in 1usize..4, kh in 1usize..5, kw in 1usize..5,
        sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let dy = vec![n, oh.unwrap(), ow.unwrap(), og * groups];
        let op = Op::Conv2dBackpropInput { geom, input_hw: (h, w), filter: BackpropFilter::Hwoi };
        let g = single(op, &[dy, vec![kh, kw, og * groups, cg]]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn conv2d_backprop_filter_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, cg in 1usize..6, og in prop_oneof![1usize..7, Just(8usize)],
        groups in 1usize..4, kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, dil in 1usize..3,
        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (sh, sw),
            dilation: (dil, dil),
            pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
            groups,
        };
        let oh = conv_out(h, kh, sh, dil, pads.0 + pads.1);
        let ow = conv_out(w, kw, sw, dil, pads.2 + pads.3);
        prop_assume!(oh.is_some() && ow.is_some());
        let dy = vec![n, oh.unwrap(), ow.unwrap(), og * groups];
        let op = Op::Conv2dBackpropFilter { geom, kernel_hw: (kh, kw) };
        let g = single(op, &[vec![n, h, w, cg * groups], dy]);
        prop_assume!(g.is_some());
        check(g.unwrap(), seed, -1.0, 1.0)?;
    }
}

proptest! {
    #![proptest_config(cfg(24))]

    // GEMM kernels with a fused epilogue (Op::GemmEpilogue, made by the epilogue-fusion pass):
    // bias, bias + relu, bias + residual + relu, and the relu gradient with x, on a forward
    // convolution, a matmul (plain or transposed), a convolution's input gradient, its
    // filter gradient and a pixel-shuffled matmul (whose epilogue reads the shuffled output).
    // Channel counts 4 and 8 reach the narrow kernels too (conv_narrow.rs).
    #[test]
    fn gemm_epilogue_matches_reference(
        kind in 0usize..5, n in batch(), h in 1usize..9, w in 1usize..9, c in prop_oneof![1usize..6, Just(8usize)],
        o in prop_oneof![1usize..7, Just(8usize)], k in 1usize..4, s in 1usize..3, pad in 0usize..2,
        m in 1usize..40, ta in any::<bool>(), tb in any::<bool>(), epi in 0usize..4, seed in any::<u64>(),
    ) {
        let geom = ConvGeometry {
            stride: (s, s),
            dilation: (1, 1),
            pad: Pad2d { top: pad, bottom: pad, left: pad, right: 0 },
            groups: 1,
        };
        let (base, shapes) = match kind {
            0 => (Op::Conv2d(geom), vec![vec![n, h, w, c], vec![k, k, c, o]]),
            1 => (
                Op::MatMul { trans_a: ta, trans_b: tb },
                vec![if ta { vec![c * 7, m] } else { vec![m, c * 7] }, if tb { vec![o * 3, c * 7] } else { vec![c * 7, o * 3] }],
            ),
            2 => {
                let (oh, ow) = (conv_out(h, k, s, 1, 2 * pad), conv_out(w, k, s, 1, pad));
                prop_assume!(oh.is_some() && ow.is_some());
                let op = Op::Conv2dBackpropInput { geom, input_hw: (h, w), filter: BackpropFilter::Hwio };
                (op, vec![vec![n, oh.unwrap(), ow.unwrap(), o], vec![k, k, c, o]])
            }
            3 => {
                let (oh, ow) = (conv_out(h, k, s, 1, 2 * pad), conv_out(w, k, s, 1, pad));
                prop_assume!(oh.is_some() && ow.is_some());
                let op = Op::Conv2dBackpropFilter { geom, kernel_hw: (k, k) };
                (op, vec![vec![n, h, w, c], vec![n, oh.unwrap(), ow.unwrap(), o]])
            }
            _ => (Op::PixelShuffleMatMul { block: (k, s) }, vec![vec![n, h, w, c], vec![c, k * s * o]]),
        };
        let plain = single(base.clone(), &shapes);
        prop_assume!(plain.is_some());
        let plain = plain.unwrap();
        let out = plain.shape(plain.outputs[0]).to_vec();
        let ch = *out.last().unwrap();
        let i = |k| Box::new(ElemExpr::Input(k));
        let add = |a, b| Box::new(ElemExpr::Binary(BinaryOp::Add, a, b));
        let (expr, extras) = match epi {
            0 => (*add(i(0), i(1)), vec![vec![ch]]),
            1 => (ElemExpr::Unary(UnaryOp::Relu, add(i(0), i(1))), vec![vec![ch]]),
            2 => (ElemExpr::Unary(UnaryOp::Relu, add(add(i(0), i(1)), i(2))), vec![vec![ch], out.clone()]),
            _ => (ElemExpr::UnaryGrad(UnaryOp::Relu, i(1), i(0)), vec![out.clone()]),
        };
        let all: Vec<Vec<usize>> = shapes.into_iter().chain(extras).collect();
        let g = single(Op::GemmEpilogue { base: Box::new(base), expr }, &all).unwrap();
        check(g, seed, -1.0, 1.0)?;
    }
}

proptest! {
    #![proptest_config(cfg(48))]

    // The pooling gradient with a fused epilogue (Op::GemmEpilogue over Pool2dBackprop, made by
    // the epilogue-fusion pass for conv -> relu -> pool training steps), max and average, with
    // "valid", "same" or arbitrary padding and strides up to above the window: the relu
    // gradient reading a tensor of dx's shape, the same times a per-channel (C,) vector, the
    // relu gradient of a (C,) vector, and no epilogue (the plain kernel).
    #[test]
    fn pool_grad_epilogue_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, c in prop_oneof![1usize..8, Just(11usize)], max in any::<bool>(),
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..5, sw in 1usize..5, padding in 0usize..3,
        pads in (0usize..3, 0usize..3), epi in 0usize..4, seed in any::<u64>(),
    ) {
        use fovea::graph::layers::Padding;
        let pad = match padding {
            0 => Pad2d::default(),
            1 => Padding::Same.pad2d(h, w, (kh, kw).into(), (sh, sw).into(), (1, 1).into()),
            _ => Pad2d { top: pads.0, bottom: pads.1, left: pads.1, right: pads.0 },
        };
        let geom = PoolGeometry {
            kind: if max { PoolKind::Max } else { PoolKind::Avg },
            size: (kh, kw),
            stride: (sh, sw),
            pad,
        };
        let xs = vec![n, h, w, c];
        let fwd = single(Op::Pool2d(geom), std::slice::from_ref(&xs));
        prop_assume!(fwd.is_some());
        let fwd = fwd.unwrap();
        let ys = fwd.shape(fwd.outputs[0]).to_vec();
        let i = |k| Box::new(ElemExpr::Input(k));
        let relu_grad = |x, dy| ElemExpr::UnaryGrad(UnaryOp::Relu, x, dy);
        let (expr, extras) = match epi {
            0 => (relu_grad(i(1), i(0)), vec![xs.clone()]),
            1 => (
                ElemExpr::Binary(BinaryOp::Mul, Box::new(relu_grad(i(1), i(0))), i(2)),
                vec![xs.clone(), vec![c]],
            ),
            2 => (relu_grad(i(1), i(0)), vec![vec![c]]),
            _ => (ElemExpr::Input(0), vec![]),
        };
        let base = Op::Pool2dBackprop(geom);
        let all: Vec<Vec<usize>> = [xs, ys].into_iter().chain(extras).collect();
        let g = if epi == 3 {
            single(base, &all).unwrap()
        } else {
            single(Op::GemmEpilogue { base: Box::new(base), expr }, &all).unwrap()
        };
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        let kernel = format!("pool_grad_{}", if max { "max" } else { "avg" });
        prop_assert!(at.contains(&kernel), "{at}");
        prop_assert_eq!(at.contains("relu_grad"), epi != 3, "{}", at);
    }
}

/// Rounds every feed to multiples of 1/2 (-1, -0.5, 0, 0.5, 1 from [-1, 1)): windows full of
/// equal values, so the max-pooling gradient's first-maximum rule decides where dy goes.
fn with_ties(mut feeds: Vec<(String, Vec<f32>)>) -> Vec<(String, Vec<f32>)> {
    for (_, v) in &mut feeds {
        v.iter_mut().for_each(|x| *x = (*x * 2.0).round() / 2.0);
    }
    feeds
}

fn pool_channels() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(1usize),
        Just(3usize),
        Just(4usize),
        Just(8usize),
        Just(13usize),
        Just(12usize)
    ]
}

proptest! {
    #![proptest_config(cfg(48))]

    // Pooling forward (scalar and vec4-over-channels variants) with odd sizes, strides above,
    // equal to and below the window, padding, and inputs with ties.
    #[test]
    fn pool2d_vec4_and_ties_match_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, c in pool_channels(), max in any::<bool>(),
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..5, sw in 1usize..5, padding in 0usize..3,
        pads in (0usize..3, 0usize..3), ties in any::<bool>(), seed in any::<u64>(),
    ) {
        use fovea::graph::layers::Padding;
        let pad = match padding {
            0 => Pad2d::default(),
            1 => Padding::Same.pad2d(h, w, (kh, kw).into(), (sh, sw).into(), (1, 1).into()),
            _ => Pad2d { top: pads.0, bottom: pads.1, left: pads.1, right: pads.0 },
        };
        let geom = PoolGeometry { kind: if max { PoolKind::Max } else { PoolKind::Avg }, size: (kh, kw), stride: (sh, sw), pad };
        let g = single(Op::Pool2d(geom), &[vec![n, h, w, c]]);
        prop_assume!(g.is_some());
        let g = g.unwrap();
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let feeds = if ties { with_ties(feeds) } else { feeds };
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    }

    // The pooling gradient's window kernel (stride >= window: one invocation per stride cell,
    // vec4 over channels when C % 4 == 0) and its fallback (overlapping windows), with and without
    // the fused relu-gradient epilogue: odd and prime sizes, H and W not multiples of the stride
    // (uncovered bottom rows / right columns), strides above the window (gaps), "same" and
    // arbitrary padding, C = 1, 3, 4, 8, 12, 13, and inputs rounded to a few levels so windows
    // hold ties and the first maximum must win.
    #[test]
    fn pool_grad_window_matches_reference(
        n in batch(), h in 1usize..12, w in 1usize..12, c in pool_channels(), max in any::<bool>(),
        kh in 1usize..4, kw in 1usize..4, gap in (0usize..3, 0usize..3), overlap in prop::bool::weighted(0.2),
        padding in 0usize..3, pads in (0usize..3, 0usize..3), epi in 0usize..3, ties in prop::bool::weighted(0.7),
        seed in any::<u64>(),
    ) {
        use fovea::graph::layers::Padding;
        let (sh, sw) = if overlap { (kh.saturating_sub(gap.0).max(1), kw.saturating_sub(gap.1).max(1)) } else { (kh + gap.0, kw + gap.1) };
        let pad = match padding {
            0 => Pad2d::default(),
            1 => Padding::Same.pad2d(h, w, (kh, kw).into(), (sh, sw).into(), (1, 1).into()),
            _ => Pad2d { top: pads.0, bottom: pads.1, left: pads.1, right: pads.0 },
        };
        let geom = PoolGeometry { kind: if max { PoolKind::Max } else { PoolKind::Avg }, size: (kh, kw), stride: (sh, sw), pad };
        let xs = vec![n, h, w, c];
        let fwd = single(Op::Pool2d(geom), std::slice::from_ref(&xs));
        prop_assume!(fwd.is_some());
        let fwd = fwd.unwrap();
        let ys = fwd.shape(fwd.outputs[0]).to_vec();
        let i = |k| Box::new(ElemExpr::Input(k));
        let base = Op::Pool2dBackprop(geom);
        let g = match epi {
            0 => single(base, &[xs, ys]).unwrap(),
            1 => {
                let expr = ElemExpr::UnaryGrad(UnaryOp::Relu, i(1), i(0));
                single(Op::GemmEpilogue { base: Box::new(base), expr }, &[xs.clone(), ys, xs]).unwrap()
            }
            _ => {
                // epilogue(i, 0) != 0: elements no window covers must still go through it.
                let expr = ElemExpr::Binary(BinaryOp::Add, i(0), i(1));
                single(Op::GemmEpilogue { base: Box::new(base), expr }, &[xs, ys, vec![c]]).unwrap()
            }
        };
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let feeds = if ties { with_ties(feeds) } else { feeds };
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        let kernel = format!("pool_grad_{}", if max { "max" } else { "avg" });
        prop_assert!(at.contains(&kernel), "{at}");
    }
}

/// [`class_device`] for the GPU class.
fn gpu_class_device() -> std::sync::Arc<fovea::engine::Device> {
    class_device(fovea::kernels::AdapterClass::Gpu)
}

proptest! {
    #![proptest_config(cfg(10))]

    // Split-K (GPU class): GEMMs with few output tiles and a long K run as a GEMM writing
    // per-split partials to the scratch buffer and a reduction applying the epilogue. A matmul
    // (every transposition) or a convolution's filter gradient, plain or with bias + relu.
    #[test]
    fn split_k_gemm_matches_reference(
        kind in 0usize..2, m in 1usize..40, o in 1usize..40, kk in 1500usize..3000,
        ta in any::<bool>(), tb in any::<bool>(),
        n in 3usize..6, h in 12usize..18, w in 12usize..18, c in 1usize..6, k in 1usize..4,
        epi in any::<bool>(), seed in any::<u64>(),
    ) {
        // A filter gradient with at most NARROW_OUTPUT_MAX_CHANNELS output channels and a
        // multiple of 4 input channels takes the narrow kernel (its own test covers it).
        prop_assume!(kind == 0 || o > fovea::kernels::NARROW_OUTPUT_MAX_CHANNELS || c % 4 != 0);
        let (base, shapes) = if kind == 0 {
            (
                Op::MatMul { trans_a: ta, trans_b: tb },
                vec![if ta { vec![kk, m] } else { vec![m, kk] }, if tb { vec![o, kk] } else { vec![kk, o] }],
            )
        } else {
            let geom = ConvGeometry { stride: (1, 1), dilation: (1, 1), pad: Pad2d::default(), groups: 1 };
            let (oh, ow) = (h - k + 1, w - k + 1);
            let op = Op::Conv2dBackpropFilter { geom, kernel_hw: (k, k) };
            (op, vec![vec![n, h, w, c], vec![n, oh, ow, o]])
        };
        let g = if epi {
            let plain = single(base.clone(), &shapes).unwrap();
            let ch = *plain.shape(plain.outputs[0]).last().unwrap();
            let expr = ElemExpr::Unary(
                UnaryOp::Relu,
                Box::new(ElemExpr::Binary(BinaryOp::Add, Box::new(ElemExpr::Input(0)), Box::new(ElemExpr::Input(1)))),
            );
            let all: Vec<Vec<usize>> = shapes.into_iter().chain([vec![ch]]).collect();
            single(Op::GemmEpilogue { base: Box::new(base), expr }, &all).unwrap()
        } else {
            single(base, &shapes).unwrap()
        };
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let (err, at, program) = run_vs_reference(&gpu_class_device(), g, &feeds);
        let names: Vec<&str> = program.kernels().iter().map(|k| k.name.as_str()).collect();
        prop_assert!(
            names.iter().any(|n| n.starts_with("gemm_") && n.contains("_gpu_") && n.contains("_splitk"))
                && names.iter().any(|n| n.starts_with("splitk_reduce_")),
            "no split-K dispatch: {names:?}"
        );
        prop_assert!(program.scratch_bytes() > 0);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    }
}

proptest! {
    #![proptest_config(cfg(12))]

    // The CPU class's narrow tiles (N <= 8: 32x8, N <= 16: 32x16, 8 or 16 invocations owning 4
    // rows each): matmuls and "same" 3x3 convolutions with 4..16 output columns, every
    // row count (tiles cut anywhere), forward and both gradients.
    #[test]
    fn cpu_class_narrow_tiles_match_reference(
        kind in 0usize..4, m in 1usize..75, kk in 1usize..40, n4 in 1usize..5,
        b in 1usize..3, h in 2usize..12, c in 1usize..7, seed in any::<u64>(),
    ) {
        let o = 4 * n4;
        let geom = ConvGeometry {
            stride: (1, 1),
            dilation: (1, 1),
            pad: Pad2d { top: 1, bottom: 1, left: 1, right: 1 },
            groups: 1,
        };
        let g = match kind {
            0 => single(Op::MatMul { trans_a: false, trans_b: false }, &[vec![m, kk], vec![kk, o]]),
            1 => single(Op::Conv2d(geom), &[vec![b, h, h + 1, c], vec![3, 3, c, o]]),
            2 => single(
                Op::Conv2dBackpropInput { geom, input_hw: (h, h + 1), filter: BackpropFilter::Hwio },
                &[vec![b, h, h + 1, c], vec![3, 3, o, c]],
            ),
            _ => single(
                Op::Conv2dBackpropFilter { geom, kernel_hw: (3, 3) },
                &[vec![b, h, h + 1, c], vec![b, h, h + 1, o]],
            ),
        }
        .unwrap();
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let (err, at, program) = run_vs_reference(&class_device(fovea::kernels::AdapterClass::Cpu), g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
        let names: Vec<String> = program.kernels().iter().map(|k| k.name.clone()).collect();
        // The forward and the filter gradient have N = o; the data gradient N = c (any tile).
        // At most NARROW_OUTPUT_MAX_CHANNELS outputs from a multiple of 4 inputs take the
        // narrow convolution kernels instead.
        let narrow_conv = o <= fovea::kernels::NARROW_OUTPUT_MAX_CHANNELS && c % 4 == 0;
        if kind == 0 || (kind != 2 && !narrow_conv) {
            let tile = if o <= 8 { "_cpu_32x8" } else { "_cpu_32x16" };
            prop_assert!(names.iter().any(|n| n.contains(tile)), "{tile} not used: {names:?}");
        }
    }
}

// ---- the structural ops: batched matmul, gather and scatter-add, the order-based ops (exact
// indices), instance norm ----

/// A graph computing `op` of an f32 input `x` (first shape), then i32 inputs `idx` for the
/// shapes flagged `true` and f32 parameters `p1, ...` for the others.
fn with_indices(op: Op, shapes: &[(Vec<usize>, bool)]) -> Option<Graph> {
    let mut g = Graph::new();
    let mut ids = vec![g.input("x", TensorType::f32(shapes[0].0.clone())).ok()?];
    for (i, (s, is_index)) in shapes[1..].iter().enumerate() {
        ids.push(if *is_index {
            g.input(
                "idx",
                TensorType {
                    shape: s.clone(),
                    dtype: DType::I32,
                },
            )
            .ok()?
        } else {
            g.param(&format!("p{}", i + 1), s, true, "test").ok()?
        });
    }
    let y = g.push(op, &ids, "test").ok()?;
    g.outputs.push(y);
    Some(g)
}

/// Index feeds in `-1..=len` (out of range at both ends) for the graph's `idx` input.
fn index_feeds(g: &Graph, len: usize, seed: u64) -> Vec<(String, Vec<f32>)> {
    let mut rng = fovea::graph::init::Rng::new(seed ^ 0x5eed);
    let mut feeds = random_feeds(g, seed, -1.0, 1.0);
    for (name, v) in feeds.iter_mut() {
        if name == "idx" {
            v.iter_mut().for_each(|e| *e = rng.below(len + 2) as f32 - 1.0);
        }
    }
    feeds
}

/// Runs a graph with one integer output on the GPU and in the interpreter; the indices must be
/// equal, element for element.
fn exact_indices(g: Graph, feeds: &[(String, Vec<f32>)]) -> Result<(), TestCaseError> {
    let reference = {
        let f: fovea::graph::interp::Feeds = feeds
            .iter()
            .map(|(n, v)| (n.clone(), v.iter().map(|&x| f64::from(x)).collect()))
            .collect();
        fovea::graph::interp::evaluate(&g, &f).expect("reference interpreter")
    };
    let program = fovea::engine::Program::compile(&common::device(), g.clone()).expect("compile");
    let inputs: Vec<&[f32]> = feeds
        .iter()
        .filter(|(n, _)| n == "x")
        .map(|(_, v)| v.as_slice())
        .collect();
    let got = program.run(&inputs).expect("run");
    let want: Vec<f32> = reference[0].iter().map(|&v| v as f32).collect();
    let kernels: Vec<&str> = program.kernels().iter().map(|k| k.name.as_str()).collect();
    if let Some(i) = (0..want.len()).find(|&i| got[0][i] != want[i]) {
        return Err(TestCaseError::fail(format!(
            "index {i}: gpu {}, reference {} (kernels {kernels:?})",
            got[0][i], want[i]
        )));
    }
    Ok(())
}

/// Values with many ties (small integers), some signed zeros and, when `nan`, a few NaNs.
fn tied_values(n: usize, nan: bool, seed: u64) -> Vec<f32> {
    let mut rng = fovea::graph::init::Rng::new(seed);
    (0..n)
        .map(|_| match rng.below(12) {
            0 if nan => f32::NAN,
            1 => -0.0,
            2 => rng.uniform_in(-1.0, 1.0) as f32,
            r => r as f32 - 7.0,
        })
        .collect()
}

proptest! {
    #![proptest_config(cfg(24))]

    // (B, M, K) x (B, K, N) on the GEMM core's group axis: batch 1, 7 and small, odd and
    // prime matrix sizes, N divisible by 4 or not (vec4 or scalar B), every transpose pair.
    #[test]
    fn batched_matmul_matches_reference(
        b in batch(), m in 1usize..40, k in prop_oneof![1usize..40, Just(131usize)], n in prop_oneof![1usize..40, Just(64usize)],
        ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>(),
    ) {
        let a = if ta { vec![b, k, m] } else { vec![b, m, k] };
        let w = if tb { vec![b, n, k] } else { vec![b, k, n] };
        check(single(Op::MatMul { trans_a: ta, trans_b: tb }, &[a, w]).unwrap(), seed, -1.0, 1.0)?;
    }

    #[test]
    fn gather_and_scatter_add_match_reference(
        lead in prop::collection::vec(1usize..5, 0..3), len in prop_oneof![Just(1usize), 2usize..12, Just(97usize)],
        tail in prop::collection::vec(1usize..4, 0..2), count in prop::collection::vec(1usize..7, 0..3),
        batched in any::<bool>(), scatter in any::<bool>(), seed in any::<u64>(),
    ) {
        // x = lead ++ [len] ++ tail, gathered along axis rank(lead); with batch_dims 1 the
        // indices share the first axis of lead.
        let batch_dims = usize::from(batched && !lead.is_empty());
        let axis = lead.len();
        let x: Vec<usize> = lead.iter().copied().chain([len]).chain(tail.iter().copied()).collect();
        let idx: Vec<usize> = lead[..batch_dims].iter().copied().chain(count.iter().copied()).collect();
        let gathered: Vec<usize> = lead.iter().copied().chain(count.iter().copied()).chain(tail.iter().copied()).collect();
        let g = if scatter {
            with_indices(Op::ScatterAdd { axis, batch_dims, len }, &[(gathered, false), (idx, true)])
        } else {
            with_indices(Op::Gather { axis, batch_dims }, &[(x, false), (idx, true)])
        };
        prop_assume!(g.is_some());
        let g = g.unwrap();
        let feeds = index_feeds(&g, len, seed);
        let (err, at) = gpu_vs_reference(g, &feeds);
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    }

    // Stable argsort (ascending and descending) along any axis, top-k along the last and
    // argmax along any: lines of 1, odd and prime lengths, longer than one 256-wide workgroup
    // and than the bitonic variant's 1024 (the rank-counting variant), values full of ties,
    // signed zeros and NaNs; the indices must be equal.
    #[test]
    fn order_ops_match_reference_exactly(
        shape in prop::collection::vec(prop_oneof![Just(1usize), 2usize..9, Just(257usize), Just(600usize), Just(1500usize)], 1..4),
        axis in 0usize..3, which in 0usize..4, k_frac in 0.0f64..1.0, nan in any::<bool>(), seed in any::<u64>(),
    ) {
        prop_assume!(shape.iter().product::<usize>() <= 20_000);
        let axis = axis % shape.len();
        let last = *shape.last().unwrap();
        let op = match which {
            0 => Op::ArgSort { axis, descending: false },
            1 => Op::ArgSort { axis, descending: true },
            2 => Op::TopK { k: 1 + ((last - 1) as f64 * k_frac) as usize },
            _ => Op::ArgMax { axis },
        };
        let g = single(op, std::slice::from_ref(&shape)).unwrap();
        let x = tied_values(shape.iter().product(), nan, seed);
        exact_indices(g, &[("x".to_string(), x)])?;
    }

    #[test]
    fn instance_norm_matches_reference(
        n in batch(), h in prop_oneof![Just(1usize), 2usize..12, Just(33usize)], w in 1usize..12,
        c in prop_oneof![1usize..9, Just(13usize)], seed in any::<u64>(),
    ) {
        let g = single(Op::InstanceNorm { epsilon: 1e-3 }, &[vec![n, h, w, c], vec![c], vec![c]]).unwrap();
        check(g, seed, -2.0, 2.0)?;
    }
}

/// SSD's hard-negative mining size: top 200 of 8732 anchors per image (2 images here; the
/// benchmark runs 32), with ties; then the values picked by a gather along the row.
#[test]
fn top_k_over_ssd_anchors_matches_reference() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2, 8732])).unwrap();
    let idx = g.push(Op::TopK { k: 200 }, &[x], "mining").unwrap();
    g.outputs.push(idx);
    let values = tied_values(2 * 8732, false, 9);
    exact_indices(g.clone(), &[("x".to_string(), values.clone())]).unwrap();
    let picked = g
        .push(Op::Gather { axis: 1, batch_dims: 1 }, &[x, idx], "pick")
        .unwrap();
    g.outputs = vec![picked];
    let (err, at) = gpu_vs_reference(g, &[("x".to_string(), values)]);
    assert!(err <= TOL, "{err:e} at {at}");
}

/// Integer inputs are fed with `set_input_i32`; feeding one with f32 values (or an f32 input
/// with integers, or the wrong count) is an error naming the input.
#[test]
fn i32_inputs_are_fed_with_set_input_i32() {
    let g = with_indices(
        Op::Gather { axis: 0, batch_dims: 0 },
        &[(vec![4, 2], false), (vec![3], true)],
    )
    .unwrap();
    let program = fovea::engine::Program::compile(&common::device(), g).unwrap();
    let e = program.set_input("idx", &[0.0, 1.0, 2.0]).unwrap_err().to_string();
    assert!(e.contains("idx") && e.contains("set_input_i32"), "{e}");
    let e = program.set_input_i32("x", &[0; 8]).unwrap_err().to_string();
    assert!(e.contains('x') && e.contains("set_input"), "{e}");
    assert!(
        program
            .set_input_i32("idx", &[0, 1])
            .unwrap_err()
            .to_string()
            .contains("expected 3 values")
    );
    program
        .set_input("x", &[0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0])
        .unwrap();
    program.set_input_i32("idx", &[3, -1, 1]).unwrap();
    let out = program.run_fed().unwrap();
    assert_eq!(out[0], [30.0, 31.0, 0.0, 0.0, 10.0, 11.0]);
    // `run` converts integral f32 values and refuses others.
    let x = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0];
    assert_eq!(
        program.run(&[&x, &[0.0, 0.0, 2.0]]).unwrap()[0],
        [0.0, 1.0, 0.0, 1.0, 20.0, 21.0]
    );
    let e = program.run(&[&x, &[0.5, 0.0, 2.0]]).unwrap_err().to_string();
    assert!(e.contains("idx") && e.contains("0.5"), "{e}");
}

proptest! {
    #![proptest_config(cfg(10))]

    // Batched matmul with the GPU class's kernels (workgroup-memory tiles; split-K for Gram
    // shapes, few output tiles and a long K, the splits sharing workgroup_id.z with the batch)
    // and with either class's fused bias + relu epilogue.
    #[test]
    fn batched_matmul_gpu_class_split_k_and_epilogue_match_reference(
        b in 1usize..4, m in 1usize..40, n in 1usize..40, k in prop_oneof![1usize..20, 1500usize..2500],
        ta in any::<bool>(), tb in any::<bool>(), gpu in any::<bool>(), epi in any::<bool>(), seed in any::<u64>(),
    ) {
        let base = Op::MatMul { trans_a: ta, trans_b: tb };
        let shapes = vec![if ta { vec![b, k, m] } else { vec![b, m, k] }, if tb { vec![b, n, k] } else { vec![b, k, n] }];
        let g = if epi {
            let expr = ElemExpr::Unary(
                UnaryOp::Relu,
                Box::new(ElemExpr::Binary(BinaryOp::Add, Box::new(ElemExpr::Input(0)), Box::new(ElemExpr::Input(1)))),
            );
            let all: Vec<Vec<usize>> = shapes.into_iter().chain([vec![n]]).collect();
            single(Op::GemmEpilogue { base: Box::new(base), expr }, &all).unwrap()
        } else {
            single(base, &shapes).unwrap()
        };
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let device = if gpu { gpu_class_device() } else { common::device() };
        let (err, at, program) = run_vs_reference(&device, g, &feeds);
        let names: Vec<&str> = program.kernels().iter().map(|k| k.name.as_str()).collect();
        prop_assert!(names[0].starts_with("gemm_batched_matmul_"), "{names:?}");
        prop_assert!(err <= TOL, "relative error {err:e} at {at}");
    }
}
