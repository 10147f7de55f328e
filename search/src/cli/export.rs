//! `edgenas export`: ONNX files of a checkpoint in float32 and int8, checked with tract.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use edgenas_export::export::{check_out, CALIBRATION_SENTENCES};
use edgenas_export::{
    export, ActivationQuantization, Checkpoint, ExportOptions, ExportText, Progress,
};
use edgenas_search::corpus::{find_split, read_split, Split};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Int8Arg {
    /// int8 weights, float32 activations and products
    Weights,
    /// int8 products, activations quantized per tensor at run time
    Dynamic,
    /// int8 products, activation scales calibrated on training text
    Static,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint folder written by `edgenas train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    /// Output folder for model.f32.onnx, model.int8.onnx and export-report.json; it must be
    /// new, empty, or an earlier export.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Corpus folder (valid.txt or ptb.valid.txt, and so on). The int8 perplexity check reads
    /// its validation split, and --int8 static calibrates on its training split.
    #[arg(long, value_name = "DIR", required = true)]
    corpus: PathBuf,

    /// Quantization scheme of the int8 model.
    #[arg(long, value_enum, default_value = "weights")]
    int8: Int8Arg,

    /// Text file of sentences, one a line, for --int8 static; its first 300 sentences set
    /// the activation scales [default: the corpus training split].
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,

    /// Write the files even when a check fails; the report records the failure.
    #[arg(long)]
    allow_accuracy_drop: bool,
}

pub fn export_command(args: ExportArgs) -> anyhow::Result<()> {
    let activations = match args.int8 {
        Int8Arg::Weights => ActivationQuantization::Weights,
        Int8Arg::Dynamic => ActivationQuantization::Dynamic,
        Int8Arg::Static => ActivationQuantization::Static,
    };
    if args.calibration.is_some() && activations != ActivationQuantization::Static {
        anyhow::bail!("--calibration sets the scales of --int8 static; add --int8 static or drop --calibration");
    }
    let checkpoint = Checkpoint::load(&args.checkpoint)?;
    check_out(&args.out)?;
    if !args.corpus.is_dir() {
        anyhow::bail!(
            "corpus directory {} not found; pass the directory that contains the splits",
            args.corpus.display()
        );
    }

    let valid = read_split(&find_split(&args.corpus, Split::Valid)?, &checkpoint.vocab)?;
    let calibration = match activations {
        ActivationQuantization::Static => {
            let path = match &args.calibration {
                Some(path) => {
                    super::require_file(path, "calibration text")?;
                    path.clone()
                }
                None => find_split(&args.corpus, Split::Train)?,
            };
            tracing::info!(
                "calibrating on the first {CALIBRATION_SENTENCES} sentences of {}",
                path.display()
            );
            Some(read_split(&path, &checkpoint.vocab)?.ids)
        }
        _ => None,
    };

    tracing::info!(
        "exporting {} ({} parameters)",
        checkpoint.arch.summary(),
        checkpoint.arch.num_parameters()
    );
    let options = ExportOptions {
        activations,
        allow_accuracy_drop: args.allow_accuracy_drop,
        ..Default::default()
    };
    let text = ExportText {
        valid: &valid.ids,
        calibration: calibration.as_deref(),
    };
    let report = export(&checkpoint, &args.out, &text, &options, &mut StepBar::new())
        .with_context(|| {
            format!(
                "exporting {} to {}",
                args.checkpoint.display(),
                args.out.display()
            )
        })?;
    print!("{report}");
    println!("export folder         {}", args.out.display());
    Ok(())
}

/// A bar over the steps of a perplexity check on stderr, or a log line every tenth of the
/// steps when stderr is not a terminal.
pub(super) struct StepBar {
    bar: Option<ProgressBar>,
    /// Text before the bar and log lines, such as `[3/5 export] ` in the pipeline.
    stage: String,
    terminal: bool,
    label: String,
    total: u64,
    done: u64,
}

impl StepBar {
    fn new() -> StepBar {
        StepBar::with_stage("")
    }

    pub(super) fn with_stage(stage: &str) -> StepBar {
        StepBar {
            bar: None,
            stage: stage.to_string(),
            terminal: std::io::stderr().is_terminal(),
            label: String::new(),
            total: 0,
            done: 0,
        }
    }
}

impl Progress for StepBar {
    fn start(&mut self, label: &str, total: u64) {
        self.label = label.to_string();
        self.total = total;
        self.done = 0;
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{}{{prefix}} perplexity [{{bar:30}}] {{pos}}/{{len}} steps (eta {{eta}})",
                self.stage
            ))
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64) {
        self.done += done;
        if let Some(bar) = &self.bar {
            bar.inc(done);
        } else if self.done.is_multiple_of(self.total.div_ceil(10).max(1))
            || self.done == self.total
        {
            tracing::info!(
                "{}{} perplexity: step {}/{}",
                self.stage,
                self.label,
                self.done,
                self.total
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for StepBar {
    fn drop(&mut self) {
        self.finish();
    }
}
