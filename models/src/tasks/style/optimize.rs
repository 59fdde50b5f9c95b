//! Gatys-style transfer by optimisation: the image is the variable; the loss is content
//! (feature MSE at one layer of the loss network), plus style (Gram matrices at several
//! layers), plus total variation; Adam (one device program per step, the image a trainable input) or
//! L-BFGS (the host-side two-loop recursion of `fovea_engine::lbfgs`, each evaluation one
//! device program returning the loss parts and the gradient); starting from the content
//! image or noise; optionally coarse to fine (half size first, then full size).

use super::data::{fit, from_batch, to_batch, working_size};
use super::features::LossNetwork;
use super::loss::{ContentTarget, GramTarget, TvSource, content_term, host_gram, style_term, tv_term};
use crate::error::{DataError, Result};
use crate::vision::{Filter, Image, resize};
use crate::zoo::style::MIN_FEATURE_SIDE;
use fovea_engine::lbfgs::{self, LbfgsOptions};
use fovea_engine::predict::predict_arrays;
use fovea_engine::program::Program;
use fovea_engine::state::DeviceState;
use fovea_engine::{CompiledModel, Device, NamedArrays};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;
use fovea_graph::train::{CompileConfig, LossTerm, Optimizer, input_gradient_step};
use std::sync::Arc;
use std::time::Instant;

/// Which optimiser moves the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// L-BFGS with a backtracking line search (the default: better images per step).
    Lbfgs,
    /// Adam with this learning rate (pixel units per step).
    Adam {
        /// The learning rate.
        learning_rate: f32,
    },
}

/// Where the optimisation starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// The content image.
    Content,
    /// Seeded noise around mid-grey.
    Noise {
        /// The noise's seed.
        seed: u64,
    },
}

/// Settings of [`optimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeOptions {
    /// The longer side of the result, in pixels (the aspect ratio is the content's).
    pub size: usize,
    /// Optimiser steps in all (split evenly over the scales).
    pub steps: usize,
    /// The optimiser.
    pub method: Method,
    /// The starting image.
    pub start: Start,
    /// Weight of the content loss.
    pub content_weight: f32,
    /// Weight of the style loss.
    pub style_weight: f32,
    /// Weight of the total-variation loss.
    pub tv_weight: f32,
    /// Optimise at half size first, then at full size.
    pub coarse_to_fine: bool,
    /// Report progress (and an intermediate image) every this many steps (0: never).
    pub progress_every: usize,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            size: 256,
            steps: 120,
            method: Method::Lbfgs,
            start: Start::Content,
            content_weight: 0.05,
            style_weight: 1.0,
            tv_weight: 2.0,
            coarse_to_fine: true,
            progress_every: 20,
        }
    }
}

impl OptimizeOptions {
    /// Checks the settings (before any work starts).
    pub fn validate(&self) -> Result<()> {
        if self.size < MIN_FEATURE_SIDE {
            return Err(DataError::value(
                "--size",
                format!(
                    "{} is too small for the loss network's downsampling: at least {MIN_FEATURE_SIDE}",
                    self.size
                ),
            ));
        }
        if self.size > 4096 {
            return Err(DataError::value("--size", format!("{} is larger than 4096", self.size)));
        }
        if self.steps == 0 {
            return Err(DataError::value("--steps", "must be at least 1"));
        }
        for (name, w) in [
            ("content weight", self.content_weight),
            ("style weight", self.style_weight),
            ("tv weight", self.tv_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(DataError::value(
                    name,
                    format!("must be a non-negative number, got {w}"),
                ));
            }
        }
        if let Method::Adam { learning_rate } = self.method
            && !(learning_rate.is_finite() && learning_rate > 0.0)
        {
            return Err(DataError::value(
                "learning rate",
                format!("must be positive, got {learning_rate}"),
            ));
        }
        Ok(())
    }
}

/// The loss parts at one point of the optimisation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossParts {
    /// The weighted total.
    pub total: f64,
    /// Content loss (unweighted).
    pub content: f64,
    /// Style loss (unweighted).
    pub style: f64,
    /// Total variation (unweighted).
    pub tv: f64,
}

/// A progress report.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The working size `(width, height)`.
    pub size: (usize, usize),
    /// Steps done so far (all scales).
    pub step: usize,
    /// Steps in all.
    pub steps: usize,
    /// The loss parts after this step.
    pub loss: LossParts,
    /// The current image (every `progress_every` steps and at the end of a scale).
    pub image: Option<Image>,
}

/// The result of [`optimize`].
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The stylised image, clamped to `[0, 1]`.
    pub image: Image,
    /// The loss parts of the content image itself at the final size.
    pub start: LossParts,
    /// The loss parts of the result (clamped) at the final size.
    pub end: LossParts,
    /// Wall time in seconds, compilation included.
    pub seconds: f64,
    /// Steps taken.
    pub steps: usize,
}

/// The losses for one working size: the loss network there, its targets, and the program that
/// returns the loss parts and the gradient with respect to the image.
struct Scale {
    terms: Vec<LossTerm>,
    program: Program,
    input: String,
    shape: Vec<usize>,
}

impl Scale {
    fn new(
        device: &Arc<Device>,
        net: &LossNetwork,
        content: &Image,
        style: &Image,
        (w, h): (usize, usize),
        opts: &OptimizeOptions,
    ) -> Result<Scale> {
        let model = net.build(h, w)?;
        let input = model.input_names().remove(0);
        let layers = net.layers().clone();
        let content_t = to_batch(&fit(content, w, h)?)?;
        let outs = predict_arrays(device, &model, &NamedArrays::new().with(&input, content_t), 1)?;
        let target = find(&outs, &layers.content)?.clone();
        // The style image at the content's scale: its longer side the working size's.
        let (sw, sh) = working_size(style.width, style.height, w.max(h), MIN_FEATURE_SIDE);
        let style_model = net.build(sh, sw)?;
        let style_t = to_batch(&fit(style, sw, sh)?)?;
        let souts = predict_arrays(device, &style_model, &NamedArrays::new().with(&input, style_t), 1)?;
        let grams = layers
            .style
            .iter()
            .map(|l| {
                Ok(GramTarget {
                    layer: l.clone(),
                    gram: host_gram(find(&souts, l)?).remove(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let terms: Vec<LossTerm> = vec![
            content_term(
                opts.content_weight,
                layers.content.clone(),
                ContentTarget::Fixed(target),
            ),
            style_term(opts.style_weight, grams),
            tv_term(opts.tv_weight, TvSource::Input(input.clone())),
        ];
        let cfg = CompileConfig::with_terms(terms.clone(), Optimizer::sgd(0.0), vec![]);
        let step = input_gradient_step(&model, 1, &cfg, &input)?;
        let state = DeviceState::new(device);
        state.upload(&model.params)?;
        let program = Program::compile_with_state(device, step.graph, &state)?;
        Ok(Scale {
            terms,
            program,
            input,
            shape: vec![1, h, w, 3],
        })
    }

    /// The loss parts and the gradient at `x`.
    fn evaluate(&self, x: &[f32]) -> Result<(LossParts, Vec<f32>)> {
        let mut out = self.program.run(&[x])?;
        let g = out.pop().unwrap_or_default();
        let v = |i: usize| out.get(i).and_then(|o| o.first()).copied().unwrap_or(f32::NAN) as f64;
        Ok((
            LossParts {
                total: v(0),
                content: v(1),
                style: v(2),
                tv: v(3),
            },
            g,
        ))
    }
}

fn find<'a>(outs: &'a [(String, Tensor)], layer: &str) -> Result<&'a Tensor> {
    outs.iter()
        .find(|(n, _)| n == layer)
        .map(|(_, t)| t)
        .ok_or_else(|| DataError::value(format!("layer '{layer}'"), "is not an output of the loss network"))
}

/// Paints `content` in the style of `style` by optimising the image (see the module doc).
/// `progress` is called after every step.
pub fn optimize(
    device: &Arc<Device>,
    net: &LossNetwork,
    content: &Image,
    style: &Image,
    opts: &OptimizeOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Optimized> {
    opts.validate()?;
    let t0 = Instant::now();
    let content = content.to_rgb();
    let style = style.to_rgb();
    let full = working_size(content.width, content.height, opts.size, MIN_FEATURE_SIDE);
    let mut sizes = vec![full];
    if opts.coarse_to_fine && opts.size / 2 >= 64 {
        sizes.insert(
            0,
            working_size(content.width, content.height, opts.size / 2, MIN_FEATURE_SIDE),
        );
    }
    let mut x: Option<Image> = None;
    let mut done = 0;
    let mut start = LossParts::default();
    for (k, &(w, h)) in sizes.iter().enumerate() {
        let scale = Scale::new(device, net, &content, &style, (w, h), opts)?;
        let last = k + 1 == sizes.len();
        if last {
            start = scale.evaluate(&to_batch(&fit(&content, w, h)?)?.data)?.0;
        }
        let init = match (&x, opts.start) {
            (Some(prev), _) => resize(prev, w, h, Filter::Bilinear)?,
            (None, Start::Content) => fit(&content, w, h)?,
            (None, Start::Noise { seed }) => noise(w, h, seed)?,
        };
        let steps = if last {
            opts.steps - done
        } else {
            opts.steps / sizes.len()
        };
        let image = match opts.method {
            Method::Lbfgs => run_lbfgs(&scale, &init, steps, done, opts, &mut progress)?,
            Method::Adam { learning_rate } => {
                let model = net.build(h, w)?;
                run_adam(
                    device,
                    model,
                    &scale,
                    &init,
                    (steps, done),
                    learning_rate,
                    opts,
                    &mut progress,
                )?
            }
        };
        done += steps;
        x = Some(image);
    }
    let image = x.ok_or_else(|| DataError::value("optimize", "no scales to run"))?;
    let scale = Scale::new(device, net, &content, &style, full, opts)?;
    let end = scale.evaluate(&to_batch(&image)?.data)?.0;
    Ok(Optimized {
        image,
        start,
        end,
        seconds: t0.elapsed().as_secs_f64(),
        steps: done,
    })
}

/// Seeded noise: mid-grey plus Gaussian noise of standard deviation 0.15, clamped.
fn noise(w: usize, h: usize, seed: u64) -> Result<Image> {
    let mut rng = Rng::new(seed);
    let data = (0..w * h * 3)
        .map(|_| (0.5 + 0.15 * rng.normal()).clamp(0.0, 1.0) as f32)
        .collect();
    Image::new(w, h, 3, data)
}

fn report(
    progress: &mut impl FnMut(&Progress),
    scale: &Scale,
    step: usize,
    loss: LossParts,
    x: &[f32],
    opts: &OptimizeOptions,
    end_of_scale: bool,
) -> Result<()> {
    let show = end_of_scale || (opts.progress_every > 0 && step.is_multiple_of(opts.progress_every));
    let image = if show {
        Some(from_batch(&Tensor::new(scale.shape.clone(), x.to_vec(), "image")?)?)
    } else {
        None
    };
    progress(&Progress {
        size: (scale.shape[2], scale.shape[1]),
        step,
        steps: opts.steps,
        loss,
        image,
    });
    Ok(())
}

/// How far past `[0, 1]` the L-BFGS image may go before the final clamp ([`Bounded`]).
const PIXEL_MARGIN: f32 = 0.1;

/// The pixels as a bounded function of unbounded variables, `x = -m + (1 + 2m) sigmoid(u)`
/// with `m` = [`PIXEL_MARGIN`], so that L-BFGS (which knows no bounds) cannot leave the
/// range a picture can show. Unbounded, its pixels strayed far outside `[0, 1]`, and clamping
/// them at the end undid most of the style: amber x the_great_wave reached a style loss of
/// 0.0080 during the run and scored 0.0484 once clamped (BENCHMARKS.md, 2026-12-03 evening).
struct Bounded;

impl Bounded {
    fn span() -> f32 {
        1.0 + 2.0 * PIXEL_MARGIN
    }

    /// The variable for pixel value `x` (clamped into the open range first).
    fn to_var(x: f32) -> f32 {
        let s = ((x + PIXEL_MARGIN) / Self::span()).clamp(1e-4, 1.0 - 1e-4);
        (s / (1.0 - s)).ln()
    }

    /// The pixel value of variable `u`.
    fn to_pixel(u: f32) -> f32 {
        -PIXEL_MARGIN + Self::span() / (1.0 + (-u).exp())
    }

    /// d pixel / d u at variable `u`.
    fn slope(u: f32) -> f32 {
        let s = 1.0 / (1.0 + (-u).exp());
        Self::span() * s * (1.0 - s)
    }

    fn pixels(u: &[f32]) -> Vec<f32> {
        u.iter().map(|&v| Self::to_pixel(v)).collect()
    }
}

fn run_lbfgs(
    scale: &Scale,
    init: &Image,
    steps: usize,
    done: usize,
    opts: &OptimizeOptions,
    progress: &mut impl FnMut(&Progress),
) -> Result<Image> {
    let mut u: Vec<f32> = to_batch(init)?.data.iter().map(|&x| Bounded::to_var(x)).collect();
    // The parts of the latest evaluation (shared by the two closures).
    let parts = std::cell::Cell::new(LossParts::default());
    let lopts = LbfgsOptions {
        history: 10,
        max_iterations: steps,
        max_evaluations: steps + steps / 4 + 5,
        // The first step moves no variable by more than 0.2: no pixel by more than 0.06.
        first_step: 0.2,
        ..LbfgsOptions::default()
    };
    let mut failure = None;
    let mut taken = 0;
    lbfgs::minimize(
        &mut u,
        &lopts,
        |u| {
            let (p, mut g) = scale.evaluate(&Bounded::pixels(u))?;
            g.iter_mut().zip(u).for_each(|(g, &v)| *g *= Bounded::slope(v));
            parts.set(p);
            Ok::<_, DataError>((p.total, g))
        },
        |i, _, u| {
            taken = i;
            if let Err(e) = report(progress, scale, done + i, parts.get(), &Bounded::pixels(u), opts, false) {
                failure = Some(e);
                return false;
            }
            true
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut x = Bounded::pixels(&u);
    x.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    report(progress, scale, done + taken, parts.get(), &x, opts, true)?;
    from_batch(&Tensor::new(scale.shape.clone(), x, "image")?)
}

#[allow(clippy::too_many_arguments)]
fn run_adam(
    device: &Arc<Device>,
    model: fovea_graph::Model,
    scale: &Scale,
    init: &Image,
    (steps, done): (usize, usize),
    learning_rate: f32,
    opts: &OptimizeOptions,
    progress: &mut impl FnMut(&Progress),
) -> Result<Image> {
    let mut cfg = CompileConfig::with_terms(scale.terms.clone(), Optimizer::adam(learning_rate), vec![]);
    cfg.trainable_inputs = vec![scale.input.clone()];
    let mut cm = CompiledModel::new(device, model, cfg)?;
    cm.set_variable(&scale.input, &to_batch(init)?)?;
    let chunk = if opts.progress_every > 0 {
        opts.progress_every
    } else {
        steps
    };
    let mut s = 0;
    while s < steps {
        let k = chunk.min(steps - s);
        let log = cm.train_steps(k, &NamedArrays::new())?;
        s += k;
        let x = cm.variable(&scale.input, 1)?;
        let last = log.last().cloned().unwrap_or_default();
        let get = |name: &str| {
            last.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .unwrap_or(f64::NAN)
        };
        let parts = LossParts {
            total: get("loss"),
            content: get("content_loss"),
            style: get("style_loss"),
            tv: get("tv_loss"),
        };
        report(progress, scale, done + s, parts, &x.data, opts, s == steps)?;
    }
    let mut x = cm.variable(&scale.input, 1)?;
    x.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    from_batch(&x)
}

/// The loss parts of `image` (at its own size, a multiple of 4 of at least 16 pixels a side)
/// for `content` and `style` with the weights of `opts`: how a result from any method scores.
pub fn loss_parts(
    device: &Arc<Device>,
    net: &LossNetwork,
    content: &Image,
    style: &Image,
    image: &Image,
    opts: &OptimizeOptions,
) -> Result<LossParts> {
    crate::zoo::style::check_side("image", image.height, image.width, MIN_FEATURE_SIDE)?;
    let scale = Scale::new(
        device,
        net,
        &content.to_rgb(),
        &style.to_rgb(),
        (image.width, image.height),
        opts,
    )?;
    Ok(scale.evaluate(&to_batch(&image.to_rgb())?.data)?.0)
}

#[cfg(test)]
mod tests {
    use super::{Bounded, PIXEL_MARGIN};

    #[test]
    fn bounded_pixels_round_trip_and_stay_in_range() {
        for x in [0.0f32, 0.013, 0.25, 0.5, 0.77, 0.999, 1.0] {
            let back = Bounded::to_pixel(Bounded::to_var(x));
            assert!((back - x).abs() < 1e-5, "{x} -> {back}");
        }
        for u in [-1e4f32, -30.0, -3.0, 0.0, 2.5, 30.0, 1e4] {
            let x = Bounded::to_pixel(u);
            assert!((-PIXEL_MARGIN..=1.0 + PIXEL_MARGIN).contains(&x), "{u} -> {x}");
        }
        // Values outside the range map to its edge, not to infinities.
        assert!(Bounded::to_var(-5.0).is_finite() && Bounded::to_var(7.0).is_finite());
    }

    #[test]
    fn bounded_slope_is_the_derivative() {
        for u in [-4.0f64, -1.3, 0.0, 0.7, 3.1] {
            let h = 1e-3;
            let p = |v: f64| Bounded::to_pixel(v as f32) as f64;
            let fd = (p(u + h) - p(u - h)) / (2.0 * h);
            let s = Bounded::slope(u as f32) as f64;
            assert!((fd - s).abs() < 1e-3 * s.abs().max(1e-2), "u {u}: {fd} vs {s}");
        }
        // At the middle of the range the slope is a quarter of its span.
        assert!((Bounded::slope(0.0) - 0.25 * (1.0 + 2.0 * PIXEL_MARGIN)).abs() < 1e-6);
    }
}
