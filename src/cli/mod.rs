//! Command-line parsing and dispatch of the `fovea` subcommands.

mod bench;
pub mod checkpointing;
mod detect;
mod faces;
mod graph;
mod info;
pub mod keras;
mod predict;
mod schedule;
mod segment;
mod style;
mod summary;
mod tflite;
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
    /// Show the GPU adapter Fovea would use: name, backend, type, key limits and features;
    /// or, given a .tflite file, the model's inputs, outputs, operators and parameter count.
    Info {
        /// A TFLite model to describe instead of the adapter.
        model: Option<PathBuf>,
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
    Graph(graph::Args),
    /// Train a seed model (mnist, cifar10) as the seed's Keras program does: Adam, from-logits
    /// sparse cross-entropy, accuracy; test set as validation data.
    Train(train::Args),
    /// Object detection: train and evaluate a single-shot detector, draw its boxes; or run a
    /// pretrained face detector.
    Detect(detect::Args),
    /// Segmentation: train and evaluate U-Net / DeepLab-style nets, predict masks and overlays.
    Segment(segment::Args),
    /// Face recognition: train embeddings, verify, enroll and identify.
    Faces(faces::Args),
    /// Style transfer: optimise an image, or train and apply a feed-forward transform net.
    Style(style::Args),
    /// Train a Keras model (model.to_json() config and safetensors weights) on .npy arrays.
    Fit(keras::FitArgs),
    /// Classify MNIST digits with the seed MNIST CNN (random or loaded weights); or, with
    /// --model, run a Keras model on .npy/.npz arrays and write its outputs as .npy/.npz.
    Predict {
        /// A Keras model config (model.to_json(); see tools/keras/export.py) or a .tflite file.
        /// With it, --input and --output are required (and --weights for Keras models; for
        /// TFLite, --weights optionally replaces the file's weights) and the MNIST options are
        /// not used. A TFLite model writes every output into one .npz keyed by tensor name.
        #[arg(long)]
        model: Option<PathBuf>,
        /// With --model: the input samples, a float32 .npy array shaped (samples, ...), or an
        /// .npz archive keyed by input layer name for models with several inputs.
        #[arg(long, requires = "model")]
        input: Option<PathBuf>,
        /// With --model: where to write the outputs: float32 .npy (one output), or .npz with
        /// one array per output keyed by the output layer's name.
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
        /// Only the cases whose kernel family or shape contains one of these (comma-separated,
        /// e.g. `--only depthwise,conv1`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Also time each dispatch of a multi-kernel case on its own.
        #[arg(long)]
        profile: bool,
        /// Tune every GEMM of the cases (a budget of 120 s unless FOVEA_TUNE_BUDGET_MS says
        /// otherwise) and print the tuning cache: per problem, every candidate tile's time, the
        /// winner and the static table's tile. FOVEA_TUNE=0 runs the static table only.
        #[arg(long)]
        tuning: bool,
    },
    /// A model's training step: images/s, ms per step, first step, compile cold and warm.
    Step {
        /// A zoo model (mnist, cifar10), a task model (ssd-lite, unet, unet-w8, deeplab, faces,
        /// style: each task's default network and loss, fed random inputs) or a Keras model file.
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
        /// Also time the step fed by the streaming pipeline with this augmentation (`flip,crop`)
        /// against the same images from memory, with the time spent waiting for data.
        #[arg(long)]
        augment: Option<String>,
        /// Worker threads of the streaming pipeline (with --augment).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Also time every dispatch on its own and list the kernels by their share of the step.
        #[arg(long)]
        profile: bool,
    },
    /// A pretrained model's inference time per batch size (upload, run, readback).
    Tflite {
        /// A .tflite file, or `face-api-descriptor` / `face-api-detector` (face-api's models
        /// from the cache of tools/pretrained/fetch.sh).
        model: PathBuf,
        /// Batch sizes to time, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batch_sizes: Vec<usize>,
        /// Timed runs per batch size (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Write the figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info { model: Some(m), json } => tflite::info(&m, json),
        Command::Info { model: None, json } => info::run(json),
        Command::Bench { what } => match what {
            BenchCommand::Kernels {
                json,
                large,
                only,
                profile,
                tuning,
            } => bench::kernels(json, large, &only, profile, tuning),
            BenchCommand::Step {
                model,
                batch_size,
                steps,
                json,
                augment,
                workers,
                profile,
            } => bench::step(&model, batch_size, steps, json, augment.as_deref(), workers, profile),
            BenchCommand::Tflite {
                model,
                batch_sizes,
                runs,
                json,
            } => bench::tflite(&model, &batch_sizes, runs, json),
        },
        Command::Graph(args) => graph::run(args),
        Command::Summary { model } => summary::run(&model),
        Command::Train(args) => train::run(args),
        Command::Fit(args) => keras::fit(args),
        Command::Detect(args) => detect::run(args),
        Command::Segment(args) => segment::run(args),
        Command::Faces(args) => faces::run(args),
        Command::Style(args) => style::run(args),
        Command::Predict {
            model: Some(model),
            input,
            output,
            weights,
            batch_size,
            ..
        } if tflite::is_tflite(&model) => tflite::predict(tflite::PredictArgs {
            model,
            weights,
            input,
            output,
            batch_size,
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
