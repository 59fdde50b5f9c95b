//! Command-line parsing and dispatch of the `fovea` subcommands.

mod bench;
mod graph;
mod info;
pub mod keras;
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
    /// Benchmarks: kernel throughput against measured peaks, or training-step throughput.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Inspect a model's compilation: layers, IR, gradient graph, optimised graph, kernels,
    /// memory plan; as text, Graphviz DOT or JSON; with fusion and memory statistics.
    Graph {
        /// A zoo model (mnist, cifar10) or a Keras model file (.json).
        model: String,
        /// The whole training step (forward, loss, backward, update) instead of inference.
        #[arg(long)]
        train: bool,
        /// layers, ir, grad, optimized, lowered or memory.
        #[arg(long, default_value = "optimized")]
        stage: String,
        /// text, dot or json.
        #[arg(long, default_value = "text")]
        format: String,
        /// Write to a file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Node, kernel and dispatch counts before and after fusion; planned vs baseline memory.
        #[arg(long)]
        stats: bool,
        /// The batch size the graph is built for.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Adapter class kernels are chosen for: cpu (lavapipe) or gpu.
        #[arg(long, default_value = "cpu")]
        target: String,
        /// Render with Graphviz to FILE.svg or FILE.png.
        #[arg(long)]
        render: Option<PathBuf>,
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
        /// Stop at the first kernel that writes a NaN or an infinity, naming its node and layer (slow).
        #[arg(long)]
        check_numerics: bool,
    },
    /// Train a Keras model (model.to_json() config and safetensors weights) on .npy arrays.
    Fit {
        /// The Keras model config (JSON).
        #[arg(long)]
        model: PathBuf,
        /// Initial weights in safetensors, named <layer>/<variable> (default: Fovea's seeded init).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Training samples: a float32 .npy array shaped (samples, ...).
        #[arg(long)]
        x: PathBuf,
        /// Targets: integer class labels (samples,) for sparse losses, else float32 like the output.
        #[arg(long)]
        y: PathBuf,
        /// The loss, by Keras name.
        #[arg(long, default_value = "sparse_categorical_crossentropy")]
        loss: String,
        /// The model outputs logits (for the cross-entropies).
        #[arg(long)]
        from_logits: bool,
        /// The optimizer: sgd, adam, adamw or rmsprop (Keras's defaults).
        #[arg(long, default_value = "adam")]
        optimizer: String,
        /// The learning rate (default: Keras's for the optimizer).
        #[arg(long)]
        learning_rate: Option<f32>,
        /// Metrics reported beside the loss (comma-separated Keras names, e.g. accuracy).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// Passes over the data.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Samples per step.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Keep the samples' order (Keras's shuffle=False).
        #[arg(long)]
        no_shuffle: bool,
        /// Seed of the shuffling and dropout.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to save the trained weights (safetensors, Keras names).
        #[arg(long)]
        save_weights: Option<PathBuf>,
        /// Write the per-epoch loss and metrics as JSON.
        #[arg(long)]
        metrics_json: Option<PathBuf>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
    },
    /// Classify MNIST digits with the seed MNIST CNN (random or loaded weights); or, with
    /// --model, run a Keras model on an .npy array and write its outputs as .npy.
    Predict {
        /// A Keras model config (model.to_json(); see tools/keras/export.py). With it, --weights,
        /// --input and --output are required and the MNIST options are not used.
        #[arg(long)]
        model: Option<PathBuf>,
        /// With --model: the input samples, a float32 .npy array shaped (samples, ...).
        #[arg(long, requires = "model")]
        input: Option<PathBuf>,
        /// With --model: where to write the outputs (float32 .npy).
        #[arg(long, requires = "model")]
        output: Option<PathBuf>,
        /// Directory with MNIST's IDX files (default: the embedded 1,000 test digits).
        #[arg(long, conflicts_with = "model")]
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

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Every kernel family on representative shapes: time, GFLOP/s or GB/s, percent of the
    /// adapter's measured FMA / copy peak.
    Kernels {
        /// Also write the table as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Include 2048^3 matmul.
        #[arg(long)]
        large: bool,
    },
    /// A model's training step: images/s, ms per step, first step, compile cold and warm.
    Step {
        /// A zoo model (mnist, cifar10) or a Keras model file.
        model: String,
        /// Samples per step.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Steps timed after warm-up.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Write the figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info { json } => info::run(json),
        Command::Bench { what } => match what {
            BenchCommand::Kernels { json, large } => bench::kernels(json, large),
            BenchCommand::Step {
                model,
                batch_size,
                steps,
                json,
            } => bench::step(&model, batch_size, steps, json),
        },
        Command::Graph {
            model,
            train,
            stage,
            format,
            output,
            stats,
            batch_size,
            target,
            render,
        } => graph::run(graph::Args {
            model,
            train,
            stage,
            format,
            output,
            stats,
            batch_size,
            target,
            render,
        }),
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
            check_numerics,
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
            check_numerics,
        }),
        Command::Fit {
            model,
            weights,
            x,
            y,
            loss,
            from_logits,
            optimizer,
            learning_rate,
            metrics,
            epochs,
            batch_size,
            no_shuffle,
            seed,
            save_weights,
            metrics_json,
            quiet,
        } => keras::fit(keras::FitArgs {
            model,
            weights,
            x,
            y,
            loss,
            from_logits,
            optimizer,
            learning_rate,
            metrics,
            epochs,
            batch_size,
            no_shuffle,
            seed,
            save_weights,
            metrics_json,
            quiet,
        }),
        Command::Predict {
            model: Some(model),
            input,
            output,
            weights,
            batch_size,
            ..
        } => keras::predict(keras::PredictArgs {
            model,
            weights,
            input,
            output,
            batch_size,
        }),
        Command::Predict {
            data,
            weights,
            count,
            batch_size,
            seed,
            show,
            ..
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
