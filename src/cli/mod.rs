//! Command-line parsing and dispatch of the `fovea` subcommands.

mod info;
mod predict;
mod summary;
mod train;

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
    /// Train a seed model (mnist, cifar10) as the seed's Keras program does: Adam, from-logits
    /// sparse cross-entropy, accuracy; test set as validation data.
    Train {
        /// The zoo model: mnist or cifar10.
        model: String,
        /// Directory with the data set's files (default: the embedded subset).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Epochs (default: 5 for mnist, 10 for cifar10, as the seed programs).
        #[arg(long)]
        epochs: Option<usize>,
        /// Samples per step.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Seed of the initial weights, shuffling and dropout.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Adam's learning rate.
        #[arg(long, default_value_t = 0.001)]
        learning_rate: f32,
        /// Write final test loss/accuracy, per-epoch history, wall time, images/s and adapter as JSON.
        #[arg(long)]
        metrics_json: Option<PathBuf>,
        /// Save the trained weights (safetensors, Keras names).
        #[arg(long)]
        save: Option<PathBuf>,
        /// Draw loss and accuracy curves to a PNG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Use only the first N training and test images.
        #[arg(long)]
        limit: Option<usize>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
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
        Command::Train {
            model,
            data,
            epochs,
            batch_size,
            seed,
            learning_rate,
            metrics_json,
            save,
            plot,
            limit,
            quiet,
        } => train::run(train::Args {
            model,
            data,
            epochs,
            batch_size,
            seed,
            learning_rate,
            metrics_json,
            save,
            plot,
            limit,
            quiet,
        }),
        Command::Predict {
            data,
            weights,
            count,
            batch_size,
            seed,
            show,
        } => predict::run(predict::Args {
            data,
            weights,
            count,
            batch_size,
            seed,
            show,
        }),
    }
}
