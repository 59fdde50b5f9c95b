//! The Keras-style progress line of `fit`: epoch, bar, ETA, running loss and metrics, images/s.
//! Redrawn in place on a terminal; on anything else only the end-of-epoch line is printed.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// How much `fit` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// A progress bar on a terminal, one line per epoch otherwise.
    Auto,
}

/// A progress line for one epoch.
pub struct Progress {
    verbosity: Verbosity,
    tty: bool,
    epoch: usize,
    epochs: usize,
    steps: usize,
    start: Instant,
    last_draw: Option<Instant>,
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn values(v: &[(String, f64)]) -> String {
    v.iter()
        .map(|(n, x)| format!("{n} {x:.4}"))
        .collect::<Vec<_>>()
        .join("  ")
}

impl Progress {
    /// Starts epoch `epoch` (1-based) of `epochs`, with `steps` batches.
    pub fn new(verbosity: Verbosity, epoch: usize, epochs: usize, steps: usize) -> Self {
        Progress {
            verbosity,
            tty: std::io::stderr().is_terminal(),
            epoch,
            epochs,
            steps,
            start: Instant::now(),
            last_draw: None,
        }
    }

    /// Whether a redraw is due (at most 4 per second, terminals only): the caller then reads
    /// the running values (a device sync) and calls [`Progress::draw`].
    pub fn due(&self) -> bool {
        self.verbosity == Verbosity::Auto && self.tty && self.last_draw.is_none_or(|t| t.elapsed().as_secs_f64() > 0.25)
    }

    /// Redraws the line after `done` steps and `images` images.
    pub fn draw(&mut self, done: usize, images: usize, running: &[(String, f64)]) {
        self.last_draw = Some(Instant::now());
        let el = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 {
            el / done as f64 * (self.steps - done) as f64
        } else {
            0.0
        };
        let width = 24;
        let filled = (width * done) / self.steps.max(1);
        let bar: String = (0..width)
            .map(|i| {
                if i < filled {
                    '='
                } else if i == filled {
                    '>'
                } else {
                    ' '
                }
            })
            .collect();
        eprint!(
            "\rEpoch {}/{} [{bar}] {done}/{}  ETA {}  {}  {:.0} img/s   ",
            self.epoch,
            self.epochs,
            self.steps,
            clock(eta),
            values(running),
            images as f64 / el.max(1e-9)
        );
        let _ = std::io::stderr().flush();
    }

    /// Prints the epoch's closing line.
    pub fn finish(&mut self, images: usize, train: &[(String, f64)], val: &[(String, f64)]) {
        if self.verbosity == Verbosity::Silent {
            return;
        }
        let el = self.start.elapsed().as_secs_f64();
        let val = if val.is_empty() {
            String::new()
        } else {
            format!("  {}", values(val))
        };
        let lead = if self.tty { "\r" } else { "" };
        eprintln!(
            "{lead}Epoch {}/{}  {} steps  {}  {}{val}  {:.0} img/s{}",
            self.epoch,
            self.epochs,
            self.steps,
            clock(el),
            values(train),
            images as f64 / el.max(1e-9),
            if self.tty { "          " } else { "" }
        );
    }
}
