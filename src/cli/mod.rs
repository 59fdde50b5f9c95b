//! Command-line parsing and dispatch of the `fovea` subcommands.

mod info;
mod predict;
mod summary;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Fovea: Keras-style CNNs compiled to WGSL, on any GPU wgpu reaches.
#[derive(Debug, Parser)]
#[command(name = "fovea", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the GPU adapter Fovea would use: name, backend, type, key limits and features.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a zoo model's Keras-style summary (layers, output shapes, parameter counts).
    Summary {
        /// The zoo model: mnist or cifar10.
        model: String,
    },
    /// Classify MNIST digits with the seed MNIST CNN (random or loaded weights).
    Predict {
        /// Directory with MNIST's IDX files (default: the embedded 1,000 test digits).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Weights in safetensors with Keras names (default: random, seeded).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// How many test images to classify.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Images per batch.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many predictions to print one by one.
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info { json } => info::run(json),
        Command::Summary { model } => summary::run(&model),
        Command::Predict { data, weights, count, batch_size, seed, show } => {
            predict::run(predict::Args { data, weights, count, batch_size, seed, show })
        }
    }
}
