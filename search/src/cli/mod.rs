//! Command-line interface of `edgenas`.

mod cost;
mod export;
mod pipeline;
mod progress;
mod search;
mod train;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgenas",
    version,
    about = "Design a word-level language model that fits a small device",
    long_about = "Design a word-level language model that fits a small device: train ENAS \
                  recurrent cells on a corpus such as Penn Treebank, and weigh their costs \
                  (parameters, bytes, RAM, multiply-accumulates, energy and latency per word) \
                  against a device profile."
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
    /// Train an architecture from scratch and write a checkpoint folder.
    Train(train::TrainArgs),
    /// Report a checkpoint's perplexity on one split of a corpus.
    Evaluate(train::EvaluateArgs),
    /// Search for the cell with the lowest perplexity that meets a device profile's budgets.
    #[command(
        after_help = "Exit status: 0 when a cell meeting every budget was chosen, 1 on \
                            failure, 2 on invalid usage, 3 when no evaluated cell meets every budget."
    )]
    Search(Box<search::SearchArgs>),
    /// Compute an architecture's costs and check them against a device profile's budgets.
    Cost(cost::CostArgs),
    /// Export a checkpoint to ONNX, float32 and int8, and check both graphs with tract.
    Export(export::ExportArgs),
    /// Search, train the chosen cell from scratch, export and check it, replay a transcript
    /// through it, and write report.html. A second run resumes where the first stopped.
    #[command(
        after_help = "Exit status: 0 when the model meets every budget, 1 on failure, 2 on \
                            invalid usage, 3 when no evaluated cell meets every budget."
    )]
    Pipeline(Box<pipeline::PipelineArgs>),
}

/// Runs the command and returns the process exit status for a command that completed.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Train(args) => train::train(args).map(|()| ExitCode::SUCCESS),
        Command::Evaluate(args) => train::evaluate(args).map(|()| ExitCode::SUCCESS),
        Command::Search(args) => Ok(match search::search(*args)? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(cost::OVER_BUDGET_EXIT),
        }),
        Command::Cost(args) => Ok(match cost::cost(args)? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(cost::OVER_BUDGET_EXIT),
        }),
        Command::Export(args) => export::export_command(args).map(|()| ExitCode::SUCCESS),
        Command::Pipeline(args) => Ok(match pipeline::pipeline(*args)? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(cost::OVER_BUDGET_EXIT),
        }),
    }
}

/// Sends `tracing` output to stderr, at `info` unless `-v` or `RUST_LOG` sets more.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
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

/// Fails with a message naming the file's `role` when `path` is not an existing file.
fn require_file(path: &Path, role: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("{role} {} is a folder; pass the file", path.display());
    }
    if !path.is_file() {
        anyhow::bail!("{role} {} not found; check the path", path.display());
    }
    Ok(())
}
