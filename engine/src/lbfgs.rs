//! L-BFGS: limited-memory quasi-Newton minimisation of a function of a flat `f32` vector,
//! on the host, driven by a closure that returns the loss and its gradient (usually computed
//! by one device program). The direction comes from the two-loop recursion over the last
//! `history` steps and gradient changes; the step length from a backtracking line search
//! with the Armijo (sufficient decrease) condition. Style transfer optimises an image with
//! it, but nothing here knows about images.

/// Settings of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsOptions {
    /// How many past (step, gradient change) pairs shape the direction (default 10).
    pub history: usize,
    /// The most iterations (accepted steps) to take.
    pub max_iterations: usize,
    /// The most loss evaluations in all (line-search trials included).
    pub max_evaluations: usize,
    /// Stop when the largest |gradient| component falls below this (default 1e-9).
    pub gradient_tolerance: f64,
    /// Stop when an accepted step changes the loss by less than this (relative, default 1e-12).
    pub change_tolerance: f64,
    /// The first step's length along the steepest-descent direction, divided by the
    /// gradient's largest component (default 1.0: a first step moving no element by more
    /// than `first_step`). Later steps start at length 1, the quasi-Newton scale.
    pub first_step: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            history: 10,
            max_iterations: 100,
            max_evaluations: 125,
            gradient_tolerance: 1e-9,
            change_tolerance: 1e-12,
            first_step: 1.0,
        }
    }
}

/// Why [`minimize`] stopped, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsReport {
    /// Accepted steps taken.
    pub iterations: usize,
    /// Loss evaluations made.
    pub evaluations: usize,
    /// The loss at the returned point.
    pub loss: f64,
    /// Why it stopped.
    pub stop: LbfgsStop,
}

/// Why [`minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbfgsStop {
    /// `max_iterations` reached.
    Iterations,
    /// `max_evaluations` reached.
    Evaluations,
    /// The gradient is (numerically) zero.
    Gradient,
    /// The loss stopped changing, or the line search found no decrease.
    Stalled,
    /// The per-iteration callback asked to stop.
    Callback,
}

/// Minimises `f` from `x` (updated in place to the best point found). `f(x)` returns the loss
/// and its gradient (`x.len()` values) or an error, which ends the run. After every accepted
/// step `after_step(iteration, loss, x)` runs (progress, pictures) and may return `false` to
/// stop. A non-finite loss or gradient at a trial point counts as no decrease there.
pub fn minimize<E>(
    x: &mut [f32],
    opts: &LbfgsOptions,
    mut f: impl FnMut(&[f32]) -> Result<(f64, Vec<f32>), E>,
    mut after_step: impl FnMut(usize, f64, &[f32]) -> bool,
) -> Result<LbfgsReport, E> {
    let n = x.len();
    let (mut loss, mut g) = f(x)?;
    let mut evaluations = 1;
    let mut iterations = 0;
    let mut pairs: Vec<(Vec<f32>, Vec<f32>, f64)> = Vec::new();
    let report = |iterations, evaluations, loss, stop| LbfgsReport {
        iterations,
        evaluations,
        loss,
        stop,
    };
    loop {
        let gmax = g.iter().fold(0.0f64, |m, v| m.max((*v as f64).abs()));
        if !gmax.is_finite() || gmax <= opts.gradient_tolerance {
            return Ok(report(iterations, evaluations, loss, LbfgsStop::Gradient));
        }
        if iterations >= opts.max_iterations {
            return Ok(report(iterations, evaluations, loss, LbfgsStop::Iterations));
        }
        let mut d = direction(&g, &pairs);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature pairs gone stale): restart from the gradient.
            pairs.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut t = if pairs.is_empty() { opts.first_step / gmax } else { 1.0 };
        let mut accepted = None;
        while evaluations < opts.max_evaluations {
            let trial: Vec<f32> = x.iter().zip(&d).map(|(a, b)| a + (t * *b as f64) as f32).collect();
            let (l, gt) = f(&trial)?;
            evaluations += 1;
            let finite = l.is_finite() && gt.iter().all(|v| v.is_finite());
            if finite && l <= loss + 1e-4 * t * slope {
                accepted = Some((trial, l, gt));
                break;
            }
            // Safeguarded quadratic interpolation of the loss along d, else halve.
            let q = if finite {
                let denom = 2.0 * (l - loss - slope * t);
                if denom > 0.0 { -slope * t * t / denom } else { 0.5 * t }
            } else {
                0.5 * t
            };
            t = q.clamp(0.1 * t, 0.5 * t);
        }
        let Some((trial, l, gt)) = accepted else {
            let stop = if evaluations >= opts.max_evaluations {
                LbfgsStop::Evaluations
            } else {
                LbfgsStop::Stalled
            };
            return Ok(report(iterations, evaluations, loss, stop));
        };
        let s: Vec<f32> = trial.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f32> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * norm(&s) * norm(&y) && sy > 0.0 {
            if pairs.len() == opts.history.max(1) {
                pairs.remove(0);
            }
            pairs.push((s, y, 1.0 / sy));
        }
        x.copy_from_slice(&trial);
        let change = (loss - l).abs();
        let previous = loss;
        loss = l;
        g = gt;
        iterations += 1;
        debug_assert_eq!(g.len(), n);
        if !after_step(iterations, loss, x) {
            return Ok(report(iterations, evaluations, loss, LbfgsStop::Callback));
        }
        if change <= opts.change_tolerance * previous.abs().max(1e-30) {
            return Ok(report(iterations, evaluations, loss, LbfgsStop::Stalled));
        }
        if evaluations >= opts.max_evaluations {
            return Ok(report(iterations, evaluations, loss, LbfgsStop::Evaluations));
        }
    }
}

/// The two-loop recursion: `-H g` with `H` the L-BFGS inverse-Hessian estimate from `pairs`
/// (oldest first), scaled by `s·y / y·y` of the newest pair.
fn direction(g: &[f32], pairs: &[(Vec<f32>, Vec<f32>, f64)]) -> Vec<f32> {
    let mut q: Vec<f64> = g.iter().map(|v| *v as f64).collect();
    let mut alphas = vec![0.0; pairs.len()];
    for (k, (s, y, rho)) in pairs.iter().enumerate().rev() {
        let a = rho * s.iter().zip(&q).map(|(a, b)| *a as f64 * b).sum::<f64>();
        alphas[k] = a;
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= a * *yi as f64;
        }
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y).max(1e-300);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for (k, (s, y, rho)) in pairs.iter().enumerate() {
        let b = rho * y.iter().zip(&q).map(|(a, b)| *a as f64 * b).sum::<f64>();
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += (alphas[k] - b) * *si as f64;
        }
    }
    q.into_iter().map(|v| -v as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(x: &mut [f32], opts: &LbfgsOptions, f: impl Fn(&[f32]) -> (f64, Vec<f32>)) -> LbfgsReport {
        minimize::<()>(x, opts, |x| Ok(f(x)), |_, _, _| true).unwrap()
    }

    /// An ill-conditioned quadratic `sum c_i (x_i - i)^2` (condition number 1000).
    fn quadratic(x: &[f32]) -> (f64, Vec<f32>) {
        let n = x.len();
        let c = |i: usize| 10f64.powf(3.0 * i as f64 / (n - 1) as f64);
        let loss = (0..n).map(|i| c(i) * (x[i] as f64 - i as f64).powi(2)).sum();
        let g = (0..n).map(|i| (2.0 * c(i) * (x[i] as f64 - i as f64)) as f32).collect();
        (loss, g)
    }

    fn rosenbrock(x: &[f32]) -> (f64, Vec<f32>) {
        let (a, b) = (x[0] as f64, x[1] as f64);
        let loss = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let ga = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        let gb = 200.0 * (b - a * a);
        (loss, vec![ga as f32, gb as f32])
    }

    #[test]
    fn an_ill_conditioned_quadratic_falls_a_millionfold_in_sixty_steps() {
        let mut x = vec![0.0f32; 20];
        let start = quadratic(&x).0;
        let opts = LbfgsOptions {
            max_iterations: 60,
            ..LbfgsOptions::default()
        };
        let r = run(&mut x, &opts, quadratic);
        assert!(r.loss < 1e-6 * start, "{start} -> {r:?}");
        for (i, v) in x.iter().enumerate() {
            assert!((*v - i as f32).abs() < 0.1, "x[{i}] = {v}: {r:?}");
        }
    }

    #[test]
    fn rosenbrock_reaches_its_minimum_at_one_one() {
        let mut x = vec![-1.2f32, 1.0];
        let opts = LbfgsOptions {
            max_iterations: 500,
            max_evaluations: 2000,
            ..LbfgsOptions::default()
        };
        let r = run(&mut x, &opts, rosenbrock);
        assert!((x[0] - 1.0).abs() < 1e-2 && (x[1] - 1.0).abs() < 2e-2, "{x:?} {r:?}");
        assert!(r.loss < 1e-4, "{r:?}");
    }

    #[test]
    fn the_history_is_what_beats_steepest_descent_on_the_quadratic() {
        // With one pair the direction differs from -g; with none it is -g. With memory the
        // quadratic falls far below what 30 steepest-descent steps with the same line search
        // reach, so a broken two-loop recursion fails here.
        let g = quadratic(&[0.0; 20]).1;
        let d = direction(&g, &[]);
        assert!(d.iter().zip(&g).all(|(a, b)| *a == -*b), "no history: steepest descent");
        let d = direction(&g, &[(vec![1.0; 20], vec![2.0; 20], 1.0 / 40.0)]);
        assert!(d.iter().zip(&g).any(|(a, b)| *a != -*b));
        let opts = |history| LbfgsOptions {
            history,
            max_iterations: 30,
            max_evaluations: 1000,
            change_tolerance: 0.0,
            ..LbfgsOptions::default()
        };
        let mut x = vec![0.0f32; 20];
        let with = run(&mut x, &opts(10), quadratic);
        let mut x = vec![0.0f32; 20];
        let mut loss = quadratic(&x).0;
        for _ in 0..30 {
            let (l, g) = quadratic(&x);
            let mut t = 1.0 / g.iter().fold(0.0f64, |m, v| m.max((*v as f64).abs()));
            while t > 1e-12 {
                let trial: Vec<f32> = x.iter().zip(&g).map(|(a, b)| a - (t * *b as f64) as f32).collect();
                if quadratic(&trial).0 < l {
                    x = trial;
                    break;
                }
                t *= 0.5;
            }
            loss = quadratic(&x).0;
        }
        assert!(
            with.loss * 100.0 < loss,
            "L-BFGS {} vs steepest descent {loss}",
            with.loss
        );
    }

    #[test]
    fn errors_and_the_callback_stop_the_run() {
        let mut x = vec![0.0f32; 4];
        let mut calls = 0;
        let e = minimize(
            &mut x,
            &LbfgsOptions::default(),
            |x| {
                calls += 1;
                if calls > 3 {
                    Err("device lost")
                } else {
                    Ok(quadratic(x))
                }
            },
            |_, _, _| true,
        );
        assert_eq!(e.unwrap_err(), "device lost");
        let mut x = vec![0.0f32; 4];
        let r = minimize::<()>(&mut x, &LbfgsOptions::default(), |x| Ok(quadratic(x)), |i, _, _| i < 2).unwrap();
        assert_eq!((r.iterations, r.stop), (2, LbfgsStop::Callback));
    }

    #[test]
    fn a_non_finite_trial_is_backed_off_from() {
        // log barrier: infinite for x <= 0; the minimum of x - log(x) is at 1.
        let f = |x: &[f32]| {
            let v = x[0] as f64;
            if v <= 0.0 {
                (f64::INFINITY, vec![f32::NAN])
            } else {
                (v - v.ln(), vec![(1.0 - 1.0 / v) as f32])
            }
        };
        let mut x = vec![0.05f32];
        let opts = LbfgsOptions {
            first_step: 100.0,
            ..LbfgsOptions::default()
        };
        let r = run(&mut x, &opts, f);
        assert!((x[0] - 1.0).abs() < 1e-3, "{x:?} {r:?}");
    }
}
