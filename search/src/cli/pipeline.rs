//! `edgenas pipeline`: search, train, export, replay and report in one command.
//!
//! Each stage writes into its own folder under `--out` and is skipped when its output is
//! already there, so a stopped pipeline resumes where it stopped. A stage that stopped halfway
//! resumes from its own checkpoints (search epochs, training epochs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use edgenas_core::{estimate, Arch, Profile};
use edgenas_export::export::check_out;
use edgenas_export::{export, Checkpoint, ExportOptions, ExportReport, ExportText};
use edgenas_runtime::transcript::{self, Summary, Utterance};
use edgenas_runtime::{Predictor, Session};
use edgenas_search::checkpoint::{ARCH_FILE, METRICS_FILE, STATE_FILE};
use edgenas_search::corpus::{find_split, read_split, Corpus, Split};
use edgenas_search::nas::config::{Preset, SearchConfig, Strategy};
use edgenas_search::nas::derive::PARETO_FILE;
use edgenas_search::nas::reward::RewardMode;
use edgenas_search::nas::search::{
    search_run, SearchInput, SearchState, SEARCH_CONFIG_FILE, SEARCH_STATE_FILE,
};
use edgenas_search::report::{self, ReportInput};
use edgenas_search::run::{check_split_lengths, train_run, validate_config, Metrics, RunError};
use edgenas_search::train::TrainConfig;
use serde::{Deserialize, Serialize};

use super::export::StepBar;
use super::progress::{BarReporter, SearchBar};

/// Folders and files of the pipeline inside `--out`.
const SEARCH_DIR: &str = "search";
const TRAIN_DIR: &str = "train";
const EXPORT_DIR: &str = "onnx";
const STATE: &str = "pipeline.json";
const TRANSCRIPT_SUMMARY: &str = "transcript-summary.json";
const DEFAULT_TRANSCRIPT: &str = "transcript.txt";
const INT8_MODEL: &str = "model.int8.onnx";
const FLOAT_MODEL: &str = "model.f32.onnx";
const EXPORT_REPORT: &str = "export-report.json";

/// Sentences of the corpus test split replayed when no `--transcript` is given.
const TEST_SENTENCES: usize = 300;
/// Attempts at training the chosen cell; each one after a divergence starts from scratch at a
/// quarter of the learning rate.
const TRAIN_ATTEMPTS: usize = 3;
const LR_AFTER_DIVERGENCE: f64 = 0.25;
const STAGES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelinePreset {
    /// Tiny cells on whatever corpus is given: checks that every stage works, in minutes; the
    /// model is not worth using.
    Smoke,
    /// Under an hour on Penn Treebank on two CPU cores: a 6-epoch search and 20 minutes of
    /// training.
    Quick,
    /// A 10-epoch search with the quick settings, then training until validation stops
    /// improving (hours on two cores).
    Full,
}

impl PipelinePreset {
    fn name(self) -> &'static str {
        match self {
            PipelinePreset::Smoke => "smoke",
            PipelinePreset::Quick => "quick",
            PipelinePreset::Full => "full",
        }
    }
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Corpus folder with train/valid/test splits (train.txt or ptb.train.txt, and so on).
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,

    /// Device profile (TOML) whose budgets the model must meet.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// Output folder. Run the same command again to resume a stopped pipeline: finished
    /// stages are skipped.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Size of the search and the training.
    #[arg(long, value_enum, default_value = "quick")]
    preset: PipelinePreset,

    /// Transcript to replay through the int8 model: plain text with one utterance a line, or
    /// WebVTT [default: the first 300 sentences of the corpus test split]
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,

    /// Source of the proposed architectures.
    #[arg(long, value_enum, default_value = "enas")]
    strategy: super::search::StrategyArg,

    /// Random seed; the same seed, settings and thread count give the same result.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Search epochs [smoke: 2, quick: 6, full: 10].
    #[arg(long)]
    search_epochs: Option<usize>,

    /// Hidden sizes to choose from, comma-separated [smoke: 16,32; quick, full: 64,128,192,256].
    #[arg(long, value_delimiter = ',')]
    hidden_sizes: Option<Vec<usize>>,

    /// Maximum nodes in a cell [smoke: 3; quick, full: 8].
    #[arg(long)]
    max_nodes: Option<usize>,

    /// Time limit of the training, in minutes [smoke: none, quick: 20, full: none].
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true)]
    train_time_limit: Option<f64>,

    /// Epoch limit of the training [smoke: 1, quick, full: 40].
    #[arg(long)]
    train_epochs: Option<usize>,

    /// Initial SGD learning rate of the training; after a divergence the pipeline retries
    /// from scratch at a quarter of it, twice at most.
    #[arg(long, default_value_t = TrainConfig::default().lr, allow_negative_numbers = true)]
    train_lr: f64,

    /// Predictions shown per word in the transcript replay; the keystroke savings assume this
    /// many.
    #[arg(long, default_value_t = 3, value_name = "N")]
    top_k: usize,

    /// Maximum vocabulary size, <unk> and <eos> included [default: no limit].
    #[arg(long, value_name = "TOKENS")]
    max_vocab: Option<usize>,

    /// CPU threads for libtorch [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

/// The bookkeeping kept between runs in `pipeline.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PipelineState {
    /// Learning rate of the current training attempt; `None` before training started.
    train_lr: Option<f64>,
    /// Learning rates of attempts that diverged, in order.
    diverged_lrs: Vec<f64>,
    /// Seconds each stage took, over every run that worked on it.
    seconds: Vec<(String, f64)>,
    /// The training settings asked for when the training started, before any retry changed
    /// the learning rate; `None` before training started or when `pipeline.json` was lost.
    #[serde(default)]
    train_request: Option<TrainRequest>,
    /// Digest of `train/model.safetensors` when the export was written, so an export of older
    /// weights is redone rather than reused.
    #[serde(default)]
    exported_from: Option<String>,
    /// Time limit of the current training attempt, which a retry shortens to what is left.
    #[serde(default)]
    attempt_time_limit: Option<f64>,
}

/// The training options of the pipeline, compared when a training is resumed or reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TrainRequest {
    max_epochs: usize,
    time_limit_minutes: Option<f64>,
    lr: f64,
    seed: u64,
}

impl TrainRequest {
    fn of(config: &TrainConfig) -> TrainRequest {
        TrainRequest {
            max_epochs: config.max_epochs,
            time_limit_minutes: config.time_limit_minutes,
            lr: config.lr,
            seed: config.seed,
        }
    }
}

impl PipelineState {
    fn add_seconds(&mut self, stage: &str, seconds: f64) {
        match self.seconds.iter_mut().find(|(name, _)| name == stage) {
            Some((_, total)) => *total += seconds,
            None => self.seconds.push((stage.to_string(), seconds)),
        }
    }

    /// Seconds recorded for `stage`; NaN when none were, for example after `pipeline.json`
    /// was deleted.
    fn seconds(&self, stage: &str) -> f64 {
        self.seconds
            .iter()
            .find(|(name, _)| name == stage)
            .map_or(f64::NAN, |(_, s)| *s)
    }

    /// Rebuilds what the stage folders still tell when `pipeline.json` is missing: the
    /// learning rate of `train/` and the rates of the attempts kept as `train-diverged-lrL/`.
    fn recover(out: &Path) -> PipelineState {
        let mut state = PipelineState::default();
        let config = out.join(TRAIN_DIR).join(edgenas_search::checkpoint::CONFIG_FILE);
        if let Ok(text) = std::fs::read_to_string(&config) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                state.train_lr = value["lr"].as_f64();
            }
        }
        let prefix = format!("{TRAIN_DIR}-diverged-lr");
        if let Ok(entries) = std::fs::read_dir(out) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(lr) = name.strip_prefix(&prefix).and_then(|l| l.parse::<f64>().ok()) {
                    state.diverged_lrs.push(lr);
                }
            }
        }
        // Each retry divides the rate, so the attempts ran from the highest rate down.
        state.diverged_lrs.sort_by(|a, b| b.total_cmp(a));
        state
    }
}

/// The pipeline's folder, its state file and the stage display.
struct Pipeline {
    out: PathBuf,
    state: PipelineState,
    started: Instant,
    skipped: Vec<String>,
}

impl Pipeline {
    fn path(&self, parts: &[&str]) -> PathBuf {
        parts.iter().fold(self.out.clone(), |p, part| p.join(part))
    }

    fn save(&self) -> anyhow::Result<()> {
        let path = self.out.join(STATE);
        let text = serde_json::to_string_pretty(&self.state).expect("the state serializes");
        edgenas_core::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Logs the start of stage `index` (1-based) with the time so far.
    fn begin(&self, index: usize, name: &str, what: &str) {
        tracing::info!(
            "[{index}/{STAGES} {name}] {what} ({} into the pipeline)",
            minutes(self.started.elapsed().as_secs_f64())
        );
    }

    fn skip(&mut self, index: usize, name: &str, why: &str) {
        tracing::info!("[{index}/{STAGES} {name}] skipped: {why}");
        self.skipped.push(name.to_string());
    }

    /// Records the seconds of a stage that just ran.
    fn done(&mut self, name: &str, since: Instant) -> anyhow::Result<()> {
        self.state.add_seconds(name, since.elapsed().as_secs_f64());
        self.save()
    }
}

fn minutes(seconds: f64) -> String {
    format!("{:.1} min", seconds / 60.0)
}

/// Settings of the five stages, from the preset and the options that override it.
struct Settings {
    search: SearchConfig,
    train: TrainConfig,
}

impl PipelineArgs {
    fn settings(&self, vocab_size: usize) -> anyhow::Result<Settings> {
        let strategy = match self.strategy {
            super::search::StrategyArg::Enas => Strategy::Enas,
            super::search::StrategyArg::Random => Strategy::Random,
        };
        let mut search =
            SearchConfig::preset(Preset::Quick, vocab_size, strategy, RewardMode::Hard);
        let mut train = TrainConfig {
            lr: self.train_lr,
            seed: self.seed,
            ..TrainConfig::default()
        };
        match self.preset {
            PipelinePreset::Smoke => {
                search.space.hidden_sizes = vec![16, 32];
                search.space.max_nodes = 3;
                search.epochs = 2;
                search.shared.steps_per_epoch = 10;
                search.shared.batch_size = 8;
                search.controller_steps_per_epoch = 5;
                search.reward_batch_size = 8;
                search.derive_samples = 6;
                search.derive_batch_size = 8;
                search.derive_windows = 2;
                train.max_epochs = 1;
            }
            PipelinePreset::Quick => {
                search.epochs = 6;
                train.time_limit_minutes = Some(20.0);
            }
            PipelinePreset::Full => {}
        }
        search.seed = self.seed;
        if let Some(epochs) = self.search_epochs {
            if epochs == 0 {
                anyhow::bail!("--search-epochs is 0; use at least 1");
            }
            search.epochs = epochs;
        }
        if let Some(nodes) = self.max_nodes {
            search.space.max_nodes = nodes;
        }
        if !(self.train_lr.is_finite() && self.train_lr > 0.0) {
            anyhow::bail!(
                "--train-lr is {}; use a positive learning rate such as 20",
                self.train_lr
            );
        }
        if let Some(sizes) = &self.hidden_sizes {
            search.space.hidden_sizes = sizes.clone();
        }
        if let Some(m) = self.train_time_limit {
            if m.is_nan() || m <= 0.0 {
                anyhow::bail!("--train-time-limit is {m}; use a positive number of minutes");
            }
            train.time_limit_minutes = Some(m);
        }
        if let Some(epochs) = self.train_epochs {
            if epochs == 0 {
                anyhow::bail!("--train-epochs is 0; use at least 1");
            }
            train.max_epochs = epochs;
        }
        // The space re-sorts and checks the sizes and node range.
        search.space = edgenas_search::nas::space::SearchSpace::new(
            vocab_size,
            search.space.hidden_sizes.clone(),
            search.space.min_nodes,
            search.space.max_nodes,
            search.space.dropout,
        )?;
        search.validate().map_err(anyhow::Error::msg)?;
        validate_config(&train).context("checking the training settings")?;
        Ok(Settings { search, train })
    }
}

/// Runs the pipeline; returns whether a model meeting every budget came out of it.
pub fn pipeline(args: PipelineArgs) -> anyhow::Result<bool> {
    super::require_file(&args.profile, "device profile")?;
    let profile_text = std::fs::read_to_string(&args.profile)
        .with_context(|| format!("reading device profile {}", args.profile.display()))?;
    let profile = Profile::parse(&profile_text, &args.profile.display().to_string())?;
    super::train::set_threads(args.threads)?;
    if !(1..=edgenas_runtime::session::MAX_TOP_K).contains(&args.top_k) {
        anyhow::bail!(
            "--top-k is {}; use 1 to {}",
            args.top_k,
            edgenas_runtime::session::MAX_TOP_K
        );
    }
    if let Some(path) = &args.transcript {
        super::require_file(path, "transcript")?;
    }
    if args.out.is_file() {
        anyhow::bail!(
            "--out {} is a file; pass a folder (new, or an earlier pipeline's)",
            args.out.display()
        );
    }

    let corpus = Corpus::load(&args.corpus, args.max_vocab)?;
    let settings = args.settings(corpus.vocab.len())?;
    // Checked now rather than after a search of many minutes.
    check_split_lengths(&corpus, &settings.train).context(
        "the training stage uses batch size 32, BPTT 35 and evaluation batch size 10, so the \
         corpus must be long enough for them",
    )?;
    // A transcript that cannot be read fails now, not after the training.
    if let Some(path) = &args.transcript {
        transcript::read(path, None)?;
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // Every file is written atomically and every stage resumes from its last saved epoch, so
    // stopping at once loses at most the epoch in progress. The handler prints how to resume.
    let out_for_handler = args.out.display().to_string();
    let handler = ctrlc::set_handler(move || {
        eprintln!(
            "\ninterrupted; run the same command again to resume the pipeline in \
             {out_for_handler} from its last saved epoch"
        );
        // `std::process::exit` would run libtorch's exit-time destructors while the main
        // thread is still inside libtorch, which crashes. `_exit` ends the process at once;
        // every file is written to a temporary name and renamed, so none is left half written.
        // SAFETY: `_exit` takes no pointers and does not return.
        unsafe { libc::_exit(130) }
    });
    if let Err(e) = handler {
        tracing::debug!("no Ctrl-C handler: {e}");
    }
    let state = match std::fs::read_to_string(args.out.join(STATE)) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; delete it and run again: the stage folders are kept, and the \
                 report then shows the times of earlier runs as unknown",
                args.out.join(STATE).display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PipelineState::recover(&args.out),
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", args.out.join(STATE).display()))
        }
    };
    let mut p = Pipeline {
        out: args.out.clone(),
        state,
        started: Instant::now(),
        skipped: Vec::new(),
    };
    tracing::info!(
        "pipeline ({} preset) for {} in {}",
        args.preset.name(),
        profile.name,
        args.out.display()
    );

    let searched = search_stage(&mut p, &corpus, &profile, &profile_text, &settings)?;
    let Some(arch) = searched.chosen_arch.clone() else {
        write_report(&p, &args, &profile, &searched, None, None, None)?;
        println!(
            "no architecture meets every budget of {}: {}",
            profile.name,
            searched.no_fit.as_deref().unwrap_or("")
        );
        println!(
            "report              {}",
            p.out.join(report::REPORT_HTML).display()
        );
        return Ok(false);
    };
    let metrics = train_stage(&mut p, &corpus, &arch, &settings)?;
    let exported = export_stage(&mut p, &args, &arch)?;
    let summary = transcript_stage(&mut p, &args, &profile, &arch)?;
    let html = write_report(
        &p,
        &args,
        &profile,
        &searched,
        Some(&metrics),
        Some(&exported),
        Some(&summary),
    )?;

    let costs = estimate(&arch, &profile);
    println!();
    println!("chosen              {}", arch.summary());
    println!("test perplexity     {:.2}", metrics.test_perplexity);
    let int8_bytes = file_bytes(&p.path(&[EXPORT_DIR, INT8_MODEL]));
    println!(
        "int8 model          {} bytes ({})",
        int8_bytes,
        p.path(&[EXPORT_DIR, INT8_MODEL]).display()
    );
    // The cost model's "model size" counts weights and scales; the file also carries the
    // vocabulary, so it is checked against the same budget.
    let file_within = profile
        .budgets
        .max_model_bytes
        .is_none_or(|budget| int8_bytes <= budget);
    for check in &costs.checks {
        println!(
            "{:<19} {} of {} ({})",
            check.name,
            edgenas_search::nas::derive::format_value(check.value, check.unit),
            edgenas_search::nas::derive::format_value(check.budget, check.unit),
            if check.met { "met" } else { "NOT met" }
        );
    }
    println!(
        "transcript          top-1 {:.1}%, top-3 {:.1}%, median {:.3} ms per word",
        summary.summary.top1_accuracy * 100.0,
        summary.summary.top3_accuracy * 100.0,
        summary.summary.latency.median_ms
    );
    println!(
        "pipeline time       {}",
        minutes(p.started.elapsed().as_secs_f64())
    );
    println!("report              {}", html.display());
    if !file_within {
        tracing::warn!(
            "the int8 file ({int8_bytes} bytes, vocabulary included) is over the model-size \
             budget of {}",
            profile.name
        );
    }
    Ok(costs.all_met() && file_within)
}

/// The search results the report and the later stages use.
struct Searched {
    chosen_arch: Option<Arch>,
    no_fit: Option<String>,
    candidates: Vec<ParetoCandidate>,
    state: SearchState,
    strategy: String,
    reward: String,
}

/// The fields of a `pareto.json` candidate the report uses; costs are recomputed from `arch`.
#[derive(Debug, Deserialize)]
struct ParetoCandidate {
    summary: String,
    valid_perplexity: f64,
    within_budget: bool,
    on_front: bool,
    chosen: bool,
    arch: Arch,
}

#[derive(Debug, Deserialize)]
struct ParetoFile {
    strategy: String,
    reward: String,
    no_fit: Option<String>,
    candidates: Vec<ParetoCandidate>,
}

fn search_stage(
    p: &mut Pipeline,
    corpus: &Corpus,
    profile: &Profile,
    profile_text: &str,
    settings: &Settings,
) -> anyhow::Result<Searched> {
    let dir = p.path(&[SEARCH_DIR]);
    let state_file = dir.join(SEARCH_STATE_FILE);
    let finished = pareto_done(&dir, &settings.search, profile_text)?;
    if finished {
        p.skip(
            1,
            "search",
            &format!("{} contains a finished search", dir.display()),
        );
    } else {
        let resume = state_file.is_file();
        p.begin(
            1,
            "search",
            &format!(
                "{} {} epochs over {} cells{}",
                if resume { "resuming" } else { "running" },
                settings.search.epochs,
                settings.search.space.size(),
                if resume {
                    " after its last finished epoch"
                } else {
                    ""
                }
            ),
        );
        let since = Instant::now();
        let input = SearchInput {
            corpus,
            profile,
            profile_text,
            config: &settings.search,
            out: &dir,
            resume,
        };
        let mut bar = SearchBar::with_stage("[1/5 search] ");
        search_run(&input, &mut bar).with_context(|| format!("searching in {}", dir.display()))?;
        drop(bar);
        p.done("search", since)?;
    }
    read_search(&dir)
}

/// Returns whether `dir` contains a finished search with `config` and its outputs. A search
/// made with other settings is an error: resuming it would mix two searches.
fn pareto_done(dir: &Path, config: &SearchConfig, profile_text: &str) -> anyhow::Result<bool> {
    let config_file = dir.join(SEARCH_CONFIG_FILE);
    if !config_file.is_file() {
        return Ok(false);
    }
    let saved_profile = dir.join(edgenas_search::nas::search::PROFILE_FILE);
    if let Ok(text) = std::fs::read_to_string(&saved_profile) {
        if text != profile_text {
            anyhow::bail!(
                "{} contains a search for another device profile (its copy is {}); use a new --out \
                 for this profile",
                dir.display(),
                saved_profile.display()
            );
        }
    }
    let saved: SearchConfig = read_json(&config_file)?;
    if &saved != config {
        anyhow::bail!(
            "{} contains a search with other settings (another --preset, --seed, --strategy, \
             --search-epochs, --hidden-sizes or corpus); use a new --out, or the options of \
             that run",
            dir.display()
        );
    }
    if !dir.join(PARETO_FILE).is_file() || !dir.join(SEARCH_STATE_FILE).is_file() {
        return Ok(false);
    }
    let state: SearchState = read_json(&dir.join(SEARCH_STATE_FILE))?;
    Ok(state.epochs_done >= config.epochs)
}

fn read_search(dir: &Path) -> anyhow::Result<Searched> {
    let pareto: ParetoFile = read_json(&dir.join(PARETO_FILE))?;
    let state: SearchState = read_json(&dir.join(SEARCH_STATE_FILE))?;
    let chosen_arch = pareto
        .candidates
        .iter()
        .find(|c| c.chosen)
        .map(|c| c.arch.clone());
    if let (Some(arch), true) = (&chosen_arch, dir.join(ARCH_FILE).is_file()) {
        let saved = Arch::load(&dir.join(ARCH_FILE))?;
        if &saved != arch {
            anyhow::bail!(
                "{} does not match the chosen candidate of {}; delete {} to search again",
                dir.join(ARCH_FILE).display(),
                dir.join(PARETO_FILE).display(),
                dir.display()
            );
        }
    }
    Ok(Searched {
        chosen_arch,
        no_fit: pareto.no_fit,
        candidates: pareto.candidates,
        state,
        strategy: pareto.strategy,
        reward: pareto.reward,
    })
}

fn train_stage(
    p: &mut Pipeline,
    corpus: &Corpus,
    arch: &Arch,
    settings: &Settings,
) -> anyhow::Result<Metrics> {
    let dir = p.path(&[TRAIN_DIR]);
    let metrics_file = dir.join(METRICS_FILE);
    let request = TrainRequest::of(&settings.train);
    if let Some(earlier) = &p.state.train_request {
        if *earlier != request && (metrics_file.is_file() || dir.join(STATE_FILE).is_file()) {
            anyhow::bail!(
                "{} contains a training with other settings (--train-epochs, --train-lr, \
                 --train-time-limit or --seed); use a new --out, the options of that run, or \
                 delete {} to train again",
                dir.display(),
                dir.display()
            );
        }
    }
    if metrics_file.is_file() {
        let metrics: Metrics = read_json(&metrics_file)?;
        if metrics.arch != arch.summary() {
            anyhow::bail!(
                "{} contains a training of {}, not of the chosen {}; delete {} to train again",
                dir.display(),
                metrics.arch,
                arch.summary(),
                dir.display()
            );
        }
        p.skip(
            2,
            "train",
            &format!("{} contains a finished training", dir.display()),
        );
        return Ok(metrics);
    }
    let mut config = settings.train.clone();
    if dir.join(STATE_FILE).is_file() {
        // Resume the attempt that was running, at its own rate and time limit.
        if let Some(lr) = p.state.train_lr {
            config.lr = lr;
        }
        if p.state.attempt_time_limit.is_some() {
            config.time_limit_minutes = p.state.attempt_time_limit;
        }
    }
    p.state.train_request = Some(request);
    loop {
        let resume = dir.join(STATE_FILE).is_file();
        let limit = config
            .time_limit_minutes
            .map_or(String::new(), |m| format!(", time limit {m} min"));
        p.begin(
            2,
            "train",
            &format!(
                "{} {} at learning rate {}{limit}",
                if resume {
                    "resuming the training of"
                } else {
                    "training from scratch"
                },
                arch.summary(),
                config.lr
            ),
        );
        p.state.train_lr = Some(config.lr);
        p.state.attempt_time_limit = config.time_limit_minutes;
        p.save()?;
        let since = Instant::now();
        let mut bar = BarReporter::with_stage("[2/5 train] ");
        let result = train_run(corpus, arch, &config, &dir, resume, &mut bar);
        drop(bar);
        p.done("train", since)?;
        match result {
            Ok(metrics) => return Ok(metrics),
            Err(RunError::Diverged {
                epoch, split, lr, ..
            }) if p.state.diverged_lrs.len() + 1 < TRAIN_ATTEMPTS => {
                // Keep the diverged run for inspection and start again in a fresh folder.
                let kept = p.path(&[&format!("{TRAIN_DIR}-diverged-lr{lr}")]);
                tracing::warn!(
                    "training diverged in epoch {epoch} ({split} perplexity not finite) at learning \
                     rate {lr}; moved it to {} and starting again at {}",
                    kept.display(),
                    lr * LR_AFTER_DIVERGENCE
                );
                if kept.exists() {
                    std::fs::remove_dir_all(&kept)
                        .with_context(|| format!("removing {}", kept.display()))?;
                }
                std::fs::rename(&dir, &kept)
                    .with_context(|| format!("moving {} to {}", dir.display(), kept.display()))?;
                p.state.diverged_lrs.push(config.lr);
                config.lr *= LR_AFTER_DIVERGENCE;
                if let Some(limit) = settings.train.time_limit_minutes {
                    // The time limit covers every attempt.
                    let left = limit - p.state.seconds("train") / 60.0;
                    config.time_limit_minutes = Some(left.max(1.0));
                }
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "training {} in {} (run the same command again to resume; pass a lower \
                         --train-lr if it diverged)",
                        arch.summary(),
                        dir.display()
                    )
                })
            }
        }
    }
}

fn export_stage(
    p: &mut Pipeline,
    args: &PipelineArgs,
    arch: &Arch,
) -> anyhow::Result<ExportReport> {
    let dir = p.path(&[EXPORT_DIR]);
    let report_file = dir.join(EXPORT_REPORT);
    let weights = p.path(&[TRAIN_DIR, edgenas_search::checkpoint::BEST_WEIGHTS_FILE]);
    let source = digest(&weights)?;
    if report_file.is_file() {
        let report: ExportReport = read_json(&report_file)?;
        match stale_export(&dir, &report, arch, &source, p.state.exported_from.as_deref()) {
            None => {
                p.skip(3, "export", &format!("{} contains an export", dir.display()));
                return Ok(report);
            }
            Some(why) => tracing::info!("[3/{STAGES} export] exporting again: {why}"),
        }
    }
    // The pipeline owns this folder: files of an export that did not finish, or of older
    // weights, are removed so the export can write a complete set.
    for name in [FLOAT_MODEL, INT8_MODEL, EXPORT_REPORT] {
        let path = dir.join(name);
        if path.is_file() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    p.begin(
        3,
        "export",
        "writing float32 and int8 ONNX graphs and checking them with tract",
    );
    let since = Instant::now();
    let checkpoint = Checkpoint::load(&p.path(&[TRAIN_DIR]))?;
    check_out(&dir)?;
    let valid = read_split(&find_split(&args.corpus, Split::Valid)?, &checkpoint.vocab)?;
    let text = ExportText {
        valid: &valid.ids,
        calibration: None,
    };
    let mut bar = StepBar::with_stage("[3/5 export] ");
    let report = export(
        &checkpoint,
        &dir,
        &text,
        &ExportOptions::default(),
        &mut bar,
    )
    .with_context(|| {
        format!(
            "exporting {} to {}",
            p.path(&[TRAIN_DIR]).display(),
            dir.display()
        )
    })?;
    drop(bar);
    p.state.exported_from = Some(source);
    p.done("export", since)?;
    Ok(report)
}

/// Returns why the export in `dir` cannot be reused, or `None` when it can: it must be of
/// `arch`, made from the current weights, and its files must have the sizes its report
/// recorded.
fn stale_export(
    dir: &Path,
    report: &ExportReport,
    arch: &Arch,
    source: &str,
    exported_from: Option<&str>,
) -> Option<String> {
    if report.arch != arch.summary() {
        return Some(format!("it is of {}, not of {}", report.arch, arch.summary()));
    }
    if exported_from != Some(source) {
        return Some("the trained weights changed since, or their digest was not recorded".into());
    }
    for file in &report.files {
        let size = std::fs::metadata(dir.join(&file.name)).map(|m| m.len()).ok();
        if size != Some(file.bytes) {
            return Some(format!(
                "{} is missing or not the {} bytes the export wrote",
                dir.join(&file.name).display(),
                file.bytes
            ));
        }
    }
    None
}

/// The transcript replay's figures, saved as `transcript-summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TranscriptRun {
    /// Summary of the cell that was replayed; a figure of another cell is measured again.
    #[serde(default)]
    arch: String,
    /// Digests of the int8 model and of the transcript text that were replayed.
    #[serde(default)]
    model_digest: String,
    #[serde(default)]
    transcript_digest: String,
    transcript: PathBuf,
    description: String,
    utterances: usize,
    summary: Summary,
}

fn transcript_stage(
    p: &mut Pipeline,
    args: &PipelineArgs,
    profile: &Profile,
    arch: &Arch,
) -> anyhow::Result<TranscriptRun> {
    let summary_file = p.path(&[TRANSCRIPT_SUMMARY]);
    let model = p.path(&[EXPORT_DIR, INT8_MODEL]);
    let model_digest = digest(&model)?;
    let (path, description) = match &args.transcript {
        Some(path) => (absolute(path), "the transcript given with --transcript".to_string()),
        None => {
            let test = find_split(&args.corpus, Split::Test)?;
            let text = std::fs::read_to_string(&test)
                .with_context(|| format!("reading {}", test.display()))?;
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(TEST_SENTENCES)
                .collect();
            let path = absolute(&p.path(&[DEFAULT_TRANSCRIPT]));
            let mut body = lines.join("\n");
            body.push('\n');
            if std::fs::read_to_string(&path).ok().as_deref() != Some(body.as_str()) {
                edgenas_core::write_atomic(&path, body.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            (
                path,
                format!(
                    "the first {} sentences of the corpus test split {}",
                    lines.len(),
                    absolute(&test).display()
                ),
            )
        }
    };
    let transcript_digest = digest(&path)?;
    if summary_file.is_file() {
        let run: TranscriptRun = read_json(&summary_file)?;
        let same = run.transcript == path
            && run.transcript_digest == transcript_digest
            && run.model_digest == model_digest
            && run.summary.top_k == args.top_k
            && run.arch == arch.summary();
        if same {
            p.skip(
                4,
                "transcript",
                &format!("{} contains its figures", summary_file.display()),
            );
            return Ok(run);
        }
    }
    p.begin(
        4,
        "transcript",
        &format!("replaying {description} through the int8 model with tract"),
    );
    let since = Instant::now();
    let (_, utterances): (_, Vec<Utterance>) = transcript::read(&path, None)?;
    let predictor = Predictor::load(&model, None)?;
    let mut session = Session::new(&predictor, args.top_k)?;
    let replay = transcript::replay(&mut session, &utterances, |_| true)?;
    let summary = Summary::new(&replay, args.top_k, profile.budgets.latency_ms_per_word());
    if summary.tokens == 0 {
        anyhow::bail!(
            "transcript {} has no word the model can take; give a transcript with words",
            path.display()
        );
    }
    let run = TranscriptRun {
        arch: arch.summary(),
        model_digest,
        transcript_digest,
        transcript: path,
        description,
        utterances: utterances.len(),
        summary,
    };
    let text = serde_json::to_string_pretty(&run).expect("the summary serializes");
    edgenas_core::write_atomic(&summary_file, text.as_bytes())
        .with_context(|| format!("writing {}", summary_file.display()))?;
    p.done("transcript", since)?;
    Ok(run)
}

/// Returns a 64-bit FNV-1a digest of a file's bytes, with its length: enough to notice that a
/// file was replaced, not a defence against tampering.
fn digest(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{}:{hash:016x}", bytes.len()))
}

/// `path` made absolute against the working folder, so the report's paths hold from anywhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[allow(clippy::too_many_arguments)]
fn write_report(
    p: &Pipeline,
    args: &PipelineArgs,
    profile: &Profile,
    searched: &Searched,
    metrics: Option<&Metrics>,
    exported: Option<&ExportReport>,
    transcript: Option<&TranscriptRun>,
) -> anyhow::Result<PathBuf> {
    tracing::info!(
        "[5/{STAGES} report] writing {}",
        p.out.join(report::REPORT_HTML).display()
    );
    let candidates: Vec<report::CandidatePoint> = searched
        .candidates
        .iter()
        .map(|c| report::CandidatePoint {
            summary: c.summary.clone(),
            valid_perplexity: c.valid_perplexity,
            within_budget: c.within_budget,
            on_front: c.on_front,
            chosen: c.chosen,
            costs: estimate(&c.arch, profile),
        })
        .collect();
    let chosen = searched
        .candidates
        .iter()
        .find(|c| c.chosen)
        .map(|c| report::ChosenModel {
            summary: c.summary.clone(),
            parameters: c.arch.num_parameters() as u64,
            shared_valid_perplexity: c.valid_perplexity,
            costs: estimate(&c.arch, profile),
        });
    let training = metrics.map(|m| report::TrainingResult {
        train_perplexity: m.train_perplexity,
        valid_perplexity: m.valid_perplexity,
        test_perplexity: m.test_perplexity,
        epochs: m.epochs,
        best_epoch: m.best_epoch,
        lr: p.state.train_lr.unwrap_or(args.train_lr),
        diverged_lrs: p.state.diverged_lrs.clone(),
        train_seconds: m.train_seconds,
        stop_reason: m.stop_reason.clone(),
    });
    let export = exported.map(|e| {
        let bytes = |name: &str| {
            e.files
                .iter()
                .find(|f| f.name == name)
                .map_or(0, |f| f.bytes)
        };
        report::ExportResult {
            float32_file: format!("{EXPORT_DIR}/{FLOAT_MODEL}"),
            float32_bytes: bytes(FLOAT_MODEL),
            int8_file: format!("{EXPORT_DIR}/{INT8_MODEL}"),
            int8_bytes: bytes(INT8_MODEL),
            max_abs_logit_diff: e.float_check.comparison.max_abs_logit_diff,
            logit_tolerance: e.float_check.tolerance,
            float32_perplexity: e.perplexity_check.float32.perplexity,
            int8_perplexity: e.perplexity_check.int8.perplexity,
            int8_relative_change: e.perplexity_check.relative_change,
            int8_tolerance: e.perplexity_check.tolerance,
            passed: e.passed(),
            float32_ms: e.latency.float32_ms,
            int8_ms: e.latency.int8_ms,
        }
    });
    let transcript = transcript.map(|t| {
        let s = &t.summary;
        report::TranscriptResult {
            path: t.transcript.clone(),
            description: t.description.clone(),
            utterances: t.utterances,
            tokens: s.tokens,
            unknown: s.unknown,
            top1: s.top1_accuracy,
            top3: s.top3_accuracy,
            top5: s.top5_accuracy,
            keystroke_savings: s.keystroke_savings,
            top_k: s.top_k,
            median_ms: s.latency.median_ms,
            p99_ms: s.latency.p99_ms,
            max_ms: s.latency.max_ms,
            budget_ms: s.latency.budget_ms,
            over_budget: s.latency.over_budget,
        }
    });
    let search_epochs = searched
        .state
        .history
        .iter()
        .map(|e| report::SearchEpochPoint {
            epoch: e.epoch,
            shared_train_perplexity: e.shared_train_perplexity,
            sampled_valid_perplexity: e.sampled_valid_perplexity,
            mean_reward: e.mean_reward,
            within_budget: e.within_budget,
        })
        .collect();
    let stages = ["search", "train", "export", "transcript"]
        .iter()
        .map(|name| report::StageTime {
            name: name.to_string(),
            seconds: p.state.seconds(name),
            skipped: p.skipped.iter().any(|s| s == name),
        })
        .collect();
    let input = ReportInput {
        profile_name: profile.name.clone(),
        profile_path: absolute(&args.profile),
        corpus: absolute(&args.corpus),
        preset: args.preset.name().to_string(),
        seed: args.seed,
        chosen,
        no_fit: searched.no_fit.clone(),
        candidates,
        search_epochs,
        search_strategy: searched.strategy.clone(),
        search_reward: searched.reward.clone(),
        training,
        export,
        transcript,
        stages,
    };
    report::write(&input, &p.out)
        .with_context(|| format!("writing the report in {}", p.out.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is damaged; delete it (or its stage folder) and run the pipeline again to redo \
             that stage",
            path.display()
        )
    })
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
