//! `edgenas-runtime transcript`: replays a transcript and reports accuracy and latency.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgenas_core::Profile;
use edgenas_runtime::locate::{default_file, DEFAULT_PROFILE};
use edgenas_runtime::transcript::{self, Format, ReplayedStep, Summary};
use edgenas_runtime::Session;

use super::{format_predictions, ModelArgs};

#[derive(Debug, Args)]
pub struct TranscriptArgs {
    /// Transcript: plain text with one utterance a line, or WebVTT (`.vtt`) with cue times
    /// and optional `<hh:mm:ss.mmm>` word times
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Transcript format [default: WebVTT when the file starts with WEBVTT, else plain]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Number of predictions shown per word, 1 to 100; the keystroke savings assume this many
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = super::parse_top_k)]
    pub top_k: usize,

    /// Device profile whose latency budget per word the times are compared with
    /// [default: profiles/raspberry-pi-4.toml, in the working folder or beside the binary]
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// Print one JSON document (every word and the summary) instead of text
    #[arg(long)]
    pub json: bool,

    /// Print only the summary, not every word
    #[arg(long, short, conflicts_with = "json")]
    pub quiet: bool,
}

pub fn run(args: TranscriptArgs) -> anyhow::Result<()> {
    let profile_path = args.profile.clone().unwrap_or_else(|| default_file(DEFAULT_PROFILE));
    let profile = Profile::load(&profile_path)
        .context("failed to read the device profile whose latency budget the times are compared with (--profile FILE)")?;
    let (format, utterances) = transcript::read(&args.file, args.format)?;
    let predictor = args.model.load()?;
    let mut session = Session::new(&predictor, args.top_k)?;
    let budget_ms = profile.budgets.latency_ms_per_word();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut print_error = None;
    let replay = transcript::replay(&mut session, &utterances, |step| {
        if args.json || args.quiet {
            return true;
        }
        match print_step(&mut out, step) {
            Ok(()) => true,
            Err(e) => {
                print_error = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = print_error {
        return Err(e).context("failed to write to stdout");
    }
    let summary = Summary::new(&replay, args.top_k, budget_ms);
    if summary.tokens == 0 {
        anyhow::bail!(
            "transcript {} has no word the model can take, only punctuation; give a transcript \
             with words",
            args.file.display()
        );
    }
    if args.json {
        let document = serde_json::json!({
            "model": predictor.path(),
            "model_format": predictor.format(),
            "arch": predictor.arch().summary(),
            "transcript": args.file,
            "transcript_format": format,
            "profile": profile.name,
            "summary": summary,
            "utterances": replay,
        });
        let written = serde_json::to_writer_pretty(&mut out, &document);
        if written.as_ref().is_err_and(|e| e.io_error_kind() == Some(ErrorKind::BrokenPipe)) {
            return Ok(());
        }
        written.context("failed to write to stdout")?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, &summary, &profile.name)?;
    }
    Ok(())
}

/// Prints one word: the rank it had among the predictions before it, and the next words.
fn print_step(out: &mut impl Write, replayed: &ReplayedStep) -> std::io::Result<()> {
    let step = &replayed.step;
    let rank = match step.rank {
        _ if !step.known => "unknown".to_string(),
        Some(r) => format!("rank {r}"),
        None => "-".to_string(),
    };
    writeln!(
        out,
        "{:<16} {:>10}  next: {}  ({:.2} ms)",
        step.token,
        rank,
        format_predictions(&step.predictions),
        step.elapsed.as_secs_f64() * 1e3
    )
}

fn print_summary(out: &mut impl Write, s: &Summary, profile: &str) -> std::io::Result<()> {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let l = &s.latency;
    writeln!(out)?;
    writeln!(
        out,
        "words: {} tokens in {} utterances, {} ({}) not in the vocabulary",
        s.tokens,
        s.utterances,
        s.unknown,
        pct(if s.tokens == 0 { 0.0 } else { s.unknown as f64 / s.tokens as f64 })
    )?;
    writeln!(
        out,
        "accuracy: top-1 {}, top-3 {}, top-5 {}",
        pct(s.top1_accuracy),
        pct(s.top3_accuracy),
        pct(s.top5_accuracy)
    )?;
    writeln!(
        out,
        "keystroke savings: {} with {} predictions shown",
        pct(s.keystroke_savings),
        s.top_k
    )?;
    writeln!(
        out,
        "latency per word: median {:.3} ms, p99 {:.3} ms, max {:.3} ms; budget {:.1} ms ({profile}), {} words over it",
        l.median_ms, l.p99_ms, l.max_ms, l.budget_ms, l.over_budget
    )?;
    if let Some(late) = l.late_for_next_word {
        writeln!(out, "timed transcript: {late} predictions finished after the next word started")?;
    }
    Ok(())
}
