//! `edgenas-runtime live`: next-word predictions for speech from a microphone or a WAV file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edgenas_runtime::audio::{self, AudioSource, Capture, WavFile};
use edgenas_runtime::live::{self, Event, LiveOptions, Summary};
use edgenas_runtime::recognizer::{ModelPaths, PocketSphinx};
use edgenas_runtime::{Session, Step};
use serde_json::json;

use super::{format_predictions, ModelArgs};

#[derive(Debug, Args)]
pub struct LiveArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Audio input device to capture from, by name (`--list-devices` prints the names)
    /// [default: the default input device]
    #[arg(long, value_name = "NAME", conflicts_with = "input")]
    pub device: Option<String>,

    /// Read a 16 kHz mono 16-bit WAV file instead of capturing, as fast as it decodes
    #[arg(long, value_name = "FILE.wav")]
    pub input: Option<PathBuf>,

    /// pocketsphinx acoustic model folder
    #[arg(long, value_name = "DIR", default_value_os_t = ModelPaths::debian_en_us().hmm)]
    pub hmm: PathBuf,

    /// pocketsphinx language model
    #[arg(long, value_name = "FILE", default_value_os_t = ModelPaths::debian_en_us().lm)]
    pub lm: PathBuf,

    /// pocketsphinx pronunciation dictionary
    #[arg(long, value_name = "FILE", default_value_os_t = ModelPaths::debian_en_us().dict)]
    pub dict: PathBuf,

    /// Number of predictions to print per word, 1 to 100
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = super::parse_top_k)]
    pub top_k: usize,

    /// Print one JSON object per line (events, then a summary) instead of text
    #[arg(long)]
    pub json: bool,

    /// Audio in milliseconds between two reads of the recognizer's partial hypothesis
    #[arg(long, default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=5000))]
    pub partial_interval_ms: u64,

    /// Partial hypotheses in a row that must agree on a word before it goes to the
    /// predictor; 0 sends words only at the end of each utterance
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub stable_checks: usize,

    /// Print the names of the audio input devices and exit
    #[arg(long)]
    pub list_devices: bool,
}

/// Runs the live pipeline until the input ends or Ctrl-C, then prints a summary line.
/// pocketsphinx's own log goes to stderr when debug logging is on (`-v`).
pub fn run(args: LiveArgs) -> anyhow::Result<()> {
    if args.list_devices {
        list_devices();
        return Ok(());
    }

    // A WAV file is checked first because that is cheap and catches a wrong format at once.
    let wav = args.input.as_deref().map(WavFile::open).transpose()?;
    let models = ModelPaths {
        hmm: args.hmm.clone(),
        lm: args.lm.clone(),
        dict: args.dict.clone(),
    };
    let decoder_log = tracing::enabled!(tracing::Level::DEBUG);
    let mut recognizer = PocketSphinx::new(&models, decoder_log)?;
    let predictor = args.model.load()?;
    let mut session = Session::new(&predictor, args.top_k)?;

    let stop = stop_on_ctrl_c()?;
    let mut source: Box<dyn AudioSource> = match wav {
        Some(wav) => Box::new(wav),
        None => Box::new(Capture::open(args.device.as_deref())?),
    };
    tracing::info!(source = %source.name(), "live prediction started; stop with Ctrl-C");
    let options = LiveOptions {
        partial_interval: Duration::from_millis(args.partial_interval_ms),
        stable_checks: args.stable_checks,
    };
    let mut printer = Printer::new(args.json);
    let summary = live::run(
        source.as_mut(),
        &mut recognizer,
        &mut session,
        &options,
        &stop,
        &mut |event| printer.print(event),
    )?;
    let stopped_by = if stop.load(Ordering::Relaxed) {
        "ctrl-c"
    } else {
        "end of input"
    };
    printer.print_summary(&summary, stopped_by)?;
    Ok(())
}

fn list_devices() {
    let names = audio::input_device_names();
    if names.is_empty() {
        tracing::warn!("no audio input devices found");
    }
    for name in names {
        println!("{name}");
    }
}

/// Returns a flag that Ctrl-C sets. The pipeline then ends the open utterance and returns.
fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    ctrlc::set_handler(move || handler_stop.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;
    Ok(stop)
}

/// Writes events to stdout as text or JSON lines.
struct Printer {
    json: bool,
    out: std::io::Stdout,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            json,
            out: std::io::stdout(),
        }
    }

    fn print(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        let mut out = self.out.lock();
        if self.json {
            writeln!(out, "{}", event_json(event))?;
        } else {
            write_event_text(&mut out, event)?;
        }
        out.flush()
    }

    fn print_summary(&mut self, summary: &Summary, stopped_by: &str) -> std::io::Result<()> {
        let mut out = self.out.lock();
        if self.json {
            let line = json!({ "event": "summary", "stopped_by": stopped_by, "summary": summary });
            return writeln!(out, "{line}");
        }
        writeln!(
            out,
            "{stopped_by}: utterances {}, words {}, predictions {} (unknown words {}), \
             mean prediction time {:.2} ms, audio {:.1} s",
            summary.utterances,
            summary.words,
            summary.steps,
            summary.unknown_steps,
            summary.mean_prediction_ms(),
            summary.audio_seconds,
        )
    }
}

fn event_json(event: &Event<'_>) -> serde_json::Value {
    match event {
        Event::UtteranceStarted {
            utterance,
            audio_time,
        } => json!({
            "event": "utterance_started",
            "utterance": utterance,
            "audio_s": audio_time.as_secs_f64(),
        }),
        Event::Word {
            utterance,
            word,
            audio_time,
            from_partial,
            steps,
        } => json!({
            "event": "word",
            "utterance": utterance,
            "word": word,
            "audio_s": audio_time.as_secs_f64(),
            "from_partial": from_partial,
            "steps": steps,
        }),
        Event::Revised { utterance, sent } => json!({
            "event": "revised",
            "utterance": utterance,
            "sent": sent,
        }),
        Event::UtteranceEnded {
            utterance,
            audio_time,
            words,
        } => json!({
            "event": "utterance_ended",
            "utterance": utterance,
            "audio_s": audio_time.as_secs_f64(),
            "text": words.iter().map(|word| word.text.as_str()).collect::<Vec<_>>().join(" "),
        }),
    }
}

fn write_event_text(out: &mut impl Write, event: &Event<'_>) -> std::io::Result<()> {
    match event {
        Event::UtteranceStarted {
            utterance,
            audio_time,
        } => {
            writeln!(
                out,
                "utterance {utterance} started at {:.2} s",
                audio_time.as_secs_f64()
            )
        }
        Event::Word {
            audio_time, steps, ..
        } => {
            for step in steps.iter() {
                writeln!(
                    out,
                    "  {:6.2} s  {}",
                    audio_time.as_secs_f64(),
                    step_text(step)
                )?;
            }
            Ok(())
        }
        Event::Revised { utterance, sent } => writeln!(
            out,
            "  utterance {utterance}: the final hypothesis replaced \"{}\"; the predictor \
             restarts the utterance with the final words",
            sent.join(" ")
        ),
        Event::UtteranceEnded {
            utterance,
            audio_time,
            words,
        } => {
            let text: Vec<&str> = words.iter().map(|word| word.text.as_str()).collect();
            let seconds = audio_time.as_secs_f64();
            writeln!(
                out,
                "utterance {utterance} ended at {seconds:.2} s: {}",
                text.join(" ")
            )
        }
    }
}

/// Formats one step as `word -> next 12.3%, ... (0.41 ms)`, with the model token when it
/// differs from the word.
fn step_text(step: &Step) -> String {
    let mut text = step.spoken.clone();
    if !step.known {
        text.push_str(" (unknown)");
    } else if step.token != step.spoken {
        text.push_str(&format!(" ({})", step.token));
    }
    let milliseconds = step.elapsed.as_secs_f64() * 1e3;
    let predictions = format_predictions(&step.predictions);
    format!("{text} -> {predictions} ({milliseconds:.2} ms)")
}
