//! `edgenas train` and `edgenas evaluate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use edgenas_core::{cost, profile::Profile, Arch};
use edgenas_search::checkpoint::{RunDir, BEST_WEIGHTS_FILE};
use edgenas_search::corpus::{find_split, read_split, Corpus, Split};
use edgenas_search::run::train_run;
use edgenas_search::train::{TrainConfig, Trainer};

use super::progress::BarReporter;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Corpus folder with train/valid/test splits (train.txt or ptb.train.txt, and so on).
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,

    /// Architecture to train (arch.json); see archs/ for examples.
    #[arg(long, value_name = "FILE")]
    arch: PathBuf,

    /// Output folder for the checkpoint, arch.json, vocab.txt and metrics.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Continue the run in --out from its last completed epoch.
    #[arg(long)]
    resume: bool,

    /// Device profile (TOML); when given, the trained model's costs are printed against it.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,

    /// Maximum number of epochs.
    #[arg(long, default_value_t = TrainConfig::default().max_epochs)]
    epochs: usize,

    /// Stop before an epoch that would end after this many minutes of training [default: none].
    #[arg(long, value_name = "MINUTES")]
    time_limit: Option<f64>,

    /// Sequences per training batch.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,

    /// Time steps of truncated back-propagation through time.
    #[arg(long, default_value_t = TrainConfig::default().bptt)]
    bptt: usize,

    /// Initial SGD learning rate.
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,

    /// Maximum L2 norm of the gradient.
    #[arg(long, default_value_t = TrainConfig::default().clip)]
    clip: f64,

    /// L2 weight decay.
    #[arg(long, default_value_t = TrainConfig::default().weight_decay)]
    weight_decay: f64,

    /// Factor applied to the learning rate after an epoch without validation improvement.
    #[arg(long, default_value_t = TrainConfig::default().lr_decay)]
    lr_decay: f64,

    /// Epochs without validation improvement before training stops.
    #[arg(long, default_value_t = TrainConfig::default().patience)]
    patience: usize,

    /// Sequences per batch when computing validation and test perplexity.
    #[arg(long, default_value_t = TrainConfig::default().eval_batch_size)]
    eval_batch_size: usize,

    /// Random seed; the same seed and settings give the same model.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,

    /// Maximum vocabulary size, <unk> and <eos> included; a larger training vocabulary is an
    /// error, not mapped to <unk> [default: no limit].
    #[arg(long, value_name = "TOKENS")]
    max_vocab: Option<usize>,

    /// CPU threads for libtorch [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size,
            bptt: self.bptt,
            lr: self.lr,
            clip: self.clip,
            weight_decay: self.weight_decay,
            max_epochs: self.epochs,
            lr_decay: self.lr_decay,
            patience: self.patience,
            time_limit_minutes: self.time_limit,
            eval_batch_size: self.eval_batch_size,
            seed: self.seed,
        }
    }
}

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    super::require_file(&args.arch, "architecture file")?;
    let arch = Arch::load(&args.arch)?;
    let profile = match &args.profile {
        Some(path) => {
            super::require_file(path, "device profile")?;
            Some(Profile::load(path)?)
        }
        None => None,
    };
    set_threads(args.threads)?;

    let corpus = Corpus::load(&args.corpus, args.max_vocab)?;
    tracing::info!(
        "corpus {}: {} tokens in the vocabulary, {} training tokens",
        args.corpus.display(),
        corpus.vocab.len(),
        corpus.train.ids.len()
    );
    tracing::info!(
        "training {} ({} parameters)",
        arch.summary(),
        arch.num_parameters()
    );

    let mut reporter = BarReporter::new();
    let metrics = train_run(
        &corpus,
        &arch,
        &args.config(),
        &args.out,
        args.resume,
        &mut reporter,
    )
    .with_context(|| format!("training in {}", args.out.display()))?;
    drop(reporter);

    println!("architecture        {}", metrics.arch);
    println!("parameters          {}", metrics.parameters);
    println!(
        "epochs              {} (best {}; {})",
        metrics.epochs, metrics.best_epoch, metrics.stop_reason
    );
    println!("train perplexity    {:.2}", metrics.train_perplexity);
    println!("valid perplexity    {:.2}", metrics.valid_perplexity);
    println!("test perplexity     {:.2}", metrics.test_perplexity);
    println!(
        "training time       {:.1} min",
        metrics.train_seconds / 60.0
    );
    println!("wall time           {:.1} min", metrics.wall_seconds / 60.0);
    println!("words per second    {:.0}", metrics.words_per_second);
    println!("checkpoint          {}", args.out.display());
    if let Some(profile) = profile {
        println!();
        print!("{}", cost::estimate(&arch, &profile));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Valid,
    Test,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Checkpoint folder written by `edgenas train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    /// Corpus folder; its words are mapped through the checkpoint's vocab.txt.
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,

    /// Split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,

    /// Sequences evaluated side by side.
    #[arg(long, default_value_t = 10)]
    batch_size: usize,

    /// Time steps per window; the state carries across windows.
    #[arg(long, default_value_t = 35)]
    bptt: usize,

    /// CPU threads for libtorch [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

pub fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    set_threads(args.threads)?;
    let run = RunDir::new(&args.checkpoint);
    let (arch, vocab) = run.load_model_files()?;
    let split = match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Valid => Split::Valid,
        SplitArg::Test => Split::Test,
    };
    if !args.corpus.is_dir() {
        anyhow::bail!(
            "corpus directory {} not found; pass the directory that contains the splits",
            args.corpus.display()
        );
    }
    let ids = read_split(&find_split(&args.corpus, split)?, &vocab)?;
    let mut trainer = Trainer::new(&arch, 0)?;
    run.load_weights(&mut trainer.vs, BEST_WEIGHTS_FILE, &arch)?;
    let nll = trainer
        .evaluate(&ids.ids, args.batch_size, args.bptt)
        .with_context(|| format!("{split} split {}", ids.path.display()))?;
    if !nll.perplexity().is_finite() {
        anyhow::bail!(
            "{split} perplexity is {}: the weights in {} hold NaN or infinite values; \
             train again or restore the file",
            nll.perplexity(),
            run.file(BEST_WEIGHTS_FILE).display()
        );
    }
    println!(
        "{} perplexity {:.2} over {} tokens",
        split,
        nll.perplexity(),
        nll.tokens
    );
    Ok(())
}

/// Upper bound on `--threads`, far above any core count this tool targets.
const MAX_THREADS: usize = 1024;

pub(super) fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        if !(1..=MAX_THREADS).contains(&n) {
            anyhow::bail!("--threads is {n}; use 1 to {MAX_THREADS}");
        }
        tch::set_num_threads(n as i32);
    }
    Ok(())
}
