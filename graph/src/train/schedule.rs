//! Learning-rate schedules, evaluated on the host once per step (the step program takes the
//! rate as an input, so a schedule never recompiles anything).

/// A learning rate as a function of the step (0-based count of optimizer updates).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// The same rate every step.
    Constant(f32),
    /// Keras `ExponentialDecay`: `initial * rate^(step / steps)` (`staircase` floors the exponent).
    /// A step schedule is `staircase = true`.
    ExponentialDecay {
        /// Rate at step 0.
        initial: f32,
        /// Steps per decay period.
        decay_steps: u64,
        /// Factor per period.
        decay_rate: f32,
        /// Decay in whole periods.
        staircase: bool,
    },
    /// Keras `CosineDecay`: from `initial` down to `initial * alpha` over `decay_steps`.
    CosineDecay {
        /// Rate at step 0.
        initial: f32,
        /// Steps to reach the floor.
        decay_steps: u64,
        /// The floor as a fraction of `initial`.
        alpha: f32,
    },
    /// Linear warm-up from 0 to the schedule's rate over `steps`, then `after`
    /// (which sees steps counted from the end of the warm-up).
    Warmup {
        /// Warm-up length.
        steps: u64,
        /// The schedule after warm-up.
        after: Box<Schedule>,
    },
}

impl Schedule {
    /// A linear warm-up over `warmup` steps (at most a quarter of the run) to `peak`, then a
    /// cosine decay to `peak * alpha` at step `steps`: the usual schedule of a fixed-length run.
    pub fn warmup_cosine(peak: f32, steps: u64, warmup: u64, alpha: f32) -> Schedule {
        let warmup = warmup.min(steps / 4);
        Schedule::Warmup {
            steps: warmup,
            after: Box::new(Schedule::CosineDecay {
                initial: peak,
                decay_steps: steps.saturating_sub(warmup).max(1),
                alpha,
            }),
        }
    }

    /// [`Schedule::warmup_cosine`] over `epochs` epochs of `steps_per_epoch` steps: a warm-up over
    /// the first epoch (at most a quarter of the run), then a cosine decay to 1% of `peak` at the
    /// end of the last epoch. The schedule of the training commands' `cosine` option.
    pub fn epoch_cosine(peak: f32, steps_per_epoch: u64, epochs: u64) -> Schedule {
        Schedule::warmup_cosine(peak, steps_per_epoch * epochs, steps_per_epoch, 0.01)
    }

    /// The learning rate at `step`.
    pub fn at(&self, step: u64) -> f32 {
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = step as f64 / (*decay_steps).max(1) as f64;
                if *staircase {
                    p = p.floor();
                }
                (*initial as f64 * (*decay_rate as f64).powf(p)) as f32
            }
            Schedule::CosineDecay {
                initial,
                decay_steps,
                alpha,
            } => {
                let t = (step.min(*decay_steps) as f64) / (*decay_steps).max(1) as f64;
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (*initial as f64 * ((1.0 - *alpha as f64) * cos + *alpha as f64)) as f32
            }
            Schedule::Warmup { steps, after } => {
                if step < *steps {
                    (after.at(0) as f64 * (step + 1) as f64 / *steps as f64) as f32
                } else {
                    after.at(step - steps)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(Schedule::Constant(0.1).at(1000), 0.1);
        let step = Schedule::ExponentialDecay {
            initial: 1.0,
            decay_steps: 10,
            decay_rate: 0.5,
            staircase: true,
        };
        assert_eq!(
            [step.at(0), step.at(9), step.at(10), step.at(25)],
            [1.0, 1.0, 0.5, 0.25]
        );
        let smooth = Schedule::ExponentialDecay {
            initial: 1.0,
            decay_steps: 10,
            decay_rate: 0.5,
            staircase: false,
        };
        assert!((smooth.at(5) - 0.5f32.sqrt()).abs() < 1e-6);
        let cos = Schedule::CosineDecay {
            initial: 2.0,
            decay_steps: 100,
            alpha: 0.1,
        };
        assert!((cos.at(0) - 2.0).abs() < 1e-6 && (cos.at(50) - 1.1).abs() < 1e-6 && (cos.at(500) - 0.2).abs() < 1e-6);
        let warm = Schedule::Warmup {
            steps: 4,
            after: Box::new(Schedule::Constant(1.0)),
        };
        assert_eq!([warm.at(0), warm.at(1), warm.at(3), warm.at(4)], [0.25, 0.5, 1.0, 1.0]);
        // 10 warm-up steps (a quarter of 40 at most), then half a cosine period over 30 steps.
        let wc = Schedule::warmup_cosine(1.0, 40, 100, 0.0);
        assert!((wc.at(0) - 0.1).abs() < 1e-6 && (wc.at(9) - 1.0).abs() < 1e-6);
        assert!((wc.at(10) - 1.0).abs() < 1e-6 && (wc.at(25) - 0.5).abs() < 1e-6 && wc.at(40).abs() < 1e-6);
    }
}
