//! Command-line interface of `edgenas-runtime`.

mod calibrate;
mod live;
mod predict;
mod transcript;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use edgenas_runtime::locate::{default_file, DEFAULT_MODEL};
use edgenas_runtime::Predictor;

#[derive(Debug, Parser)]
#[command(
    name = "edgenas-runtime",
    version,
    about = "Predict the next word as words are spoken, with a model written by `edgenas export`"
)]
pub struct Cli {
    /// Log more detail to stderr (-v: debug, -vv: trace). RUST_LOG overrides this.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the most likely next words after a text.
    Predict(predict::PredictArgs),
    /// Replay a speech transcript word by word and report accuracy and latency per word.
    Transcript(transcript::TranscriptArgs),
    /// Recognize speech from a microphone or a WAV file and predict the next word after each word.
    Live(live::LiveArgs),
    /// Measure the time per word on this device and write a device profile with the results.
    Calibrate(calibrate::CalibrateArgs),
}

/// The model file and, optionally, a vocabulary that replaces the one stored in it.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model written by `edgenas export` (model.int8.onnx or model.f32.onnx)
    /// [default: models/ptb-small/model.int8.onnx, in the working folder or beside the binary]
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Vocabulary file, one token a line, in place of the one stored in the model
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
}

impl ModelArgs {
    /// Loads the model, naming the file in the error.
    pub fn load(&self) -> anyhow::Result<Predictor> {
        let path = self.model.clone().unwrap_or_else(|| default_file(DEFAULT_MODEL));
        let started = std::time::Instant::now();
        let predictor = Predictor::load(&path, self.vocab.as_deref())
            .with_context(|| format!("failed to load the model {}", path.display()))?;
        tracing::info!(
            "loaded {} ({}, {}) in {:.0} ms",
            path.display(),
            predictor.format(),
            predictor.arch().summary(),
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(predictor)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Predict(args) => predict::run(args),
        Command::Transcript(args) => transcript::run(args),
        Command::Live(args) => live::run(args),
        Command::Calibrate(args) => calibrate::run(args),
    }
}

/// Sends `tracing` output to stderr, at `info` unless `-v` or `RUST_LOG` sets more.
pub fn init_logging(verbose: u8) {
    // tract logs its CPU detection at info and every tensor at debug, so its crates stay one
    // level quieter than ours.
    let default = match verbose {
        0 => "info,tract_linalg=warn,tract_core=warn,tract_hir=warn,tract_onnx=warn,tract_nnef=warn",
        1 => "debug,tract_linalg=info,tract_core=info,tract_hir=info,tract_onnx=info,tract_nnef=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Parses `--top-k`: the number of predictions a session offers, 1 to `MAX_TOP_K`.
pub fn parse_top_k(text: &str) -> Result<usize, String> {
    let max = edgenas_runtime::session::MAX_TOP_K;
    match text.parse::<usize>() {
        Ok(k) if (1..=max).contains(&k) => Ok(k),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// Formats predictions as `word 12.3%, word 4.5%`.
pub fn format_predictions(predictions: &[edgenas_runtime::Prediction]) -> String {
    predictions
        .iter()
        .map(|p| format!("{} {:.1}%", p.token, p.probability * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
