//! A whole training run in a folder: start or resume, train epoch by epoch, checkpoint after
//! each epoch, and write the final metrics.

use std::path::Path;
use std::time::Instant;

use edgenas_core::Arch;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};

use crate::batch::{BatchError, Batched};
use crate::checkpoint::*;
use crate::corpus::Corpus;
use crate::train::{epoch_seed, EpochRecord, Reporter, TrainConfig, TrainState, Trainer};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error(
        "the architecture has vocab_size {arch}, but the corpus vocabulary has {corpus} tokens; \
         set vocab_size to {corpus} in its arch.json"
    )]
    VocabSize { arch: usize, corpus: usize },
    #[error(transparent)]
    Allocation(#[from] crate::train::AllocationError),
    #[error(
        "{arch} has {parameters} parameters and needs about {needed_gb:.1} GB to train, more \
         than the {total_gb:.1} GB of memory here; choose a smaller hidden_size or vocabulary"
    )]
    OutOfMemory {
        arch: String,
        parameters: usize,
        needed_gb: f64,
        total_gb: f64,
    },
    #[error("{split} split {path}, {option}: {source}")]
    SplitTooShort {
        split: &'static str,
        path: std::path::PathBuf,
        option: &'static str,
        source: BatchError,
    },
    #[error(
        "training diverged in epoch {epoch}: {split} perplexity is {value}; resume with a \
         lower --lr (now {lr}) or --clip, or start again in a new --out folder"
    )]
    Diverged {
        epoch: usize,
        split: &'static str,
        value: f64,
        lr: f64,
    },
}

/// Token counts and a hash of the token ids of each split, saved as `corpus.json`, so a resume
/// on another corpus with the same vocabulary is rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusFingerprint {
    pub train_tokens: usize,
    pub valid_tokens: usize,
    pub test_tokens: usize,
    /// FNV-1a hash of the ids of train, valid and test in order.
    pub ids_fnv1a: String,
}

impl CorpusFingerprint {
    pub fn of(corpus: &Corpus) -> CorpusFingerprint {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for split in [&corpus.train, &corpus.valid, &corpus.test] {
            for id in &split.ids {
                for byte in id.to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        CorpusFingerprint {
            train_tokens: corpus.train.ids.len(),
            valid_tokens: corpus.valid.ids.len(),
            test_tokens: corpus.test.ids.len(),
            ids_fnv1a: format!("{hash:016x}"),
        }
    }
}

/// The final figures of a run; saved as `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub arch: String,
    pub parameters: usize,
    pub train_perplexity: f64,
    pub valid_perplexity: f64,
    pub test_perplexity: f64,
    pub best_epoch: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Seconds spent in training epochs, validation included, over every resumed part.
    pub train_seconds: f64,
    /// Training words (target tokens) per second over all epochs, validation excluded.
    pub words_per_second: f64,
    /// Seconds of the final evaluation of the best weights on all three splits.
    pub evaluation_seconds: f64,
    /// `train_seconds + evaluation_seconds`: the wall time of the whole run.
    pub wall_seconds: f64,
    pub stop_reason: String,
}

/// Checks settings that would otherwise fail deep inside training.
pub fn validate_config(c: &TrainConfig) -> Result<(), RunError> {
    let bad = |msg: String| Err(RunError::Config(msg));
    if c.batch_size == 0 {
        return bad("--batch-size is 0; use at least 1".into());
    }
    if c.eval_batch_size == 0 {
        return bad("--eval-batch-size is 0; use at least 1".into());
    }
    if c.max_epochs == 0 {
        return bad("--epochs is 0; use at least 1".into());
    }
    if c.patience == 0 {
        return bad("--patience is 0; use at least 1 epoch".into());
    }
    if c.bptt == 0 {
        return bad("--bptt is 0; use at least 1 step".into());
    }

    if !c.lr.is_finite() || c.lr <= 0.0 {
        return bad(format!("--lr is {}; use a positive learning rate such as 20", c.lr));
    }
    if !c.clip.is_finite() || c.clip <= 0.0 {
        return bad(format!("--clip is {}; use a positive gradient norm such as 0.25", c.clip));
    }
    if c.lr_decay.is_nan() || c.lr_decay <= 0.0 || c.lr_decay > 1.0 {
        return bad(format!("--lr-decay is {}; use a factor in (0, 1], such as 0.25", c.lr_decay));
    }
    if !c.weight_decay.is_finite() || c.weight_decay < 0.0 {
        return bad(format!("--weight-decay is {}; use 0 or more", c.weight_decay));
    }
    if matches!(c.time_limit_minutes, Some(m) if m.is_nan() || m <= 0.0) {
        return bad("--time-limit must be a positive number of minutes".into());
    }
    Ok(())
}

/// The settings that must match for a resume. The others only steer the epochs still to come,
/// so a resume may change them: the epoch and time limits, and the optimizer settings, for
/// example to recover from a diverged epoch with a lower learning rate.
fn resumable(c: &TrainConfig) -> TrainConfig {
    TrainConfig {
        max_epochs: 0,
        time_limit_minutes: None,
        lr: 0.0,
        clip: 0.0,
        weight_decay: 0.0,
        lr_decay: 0.0,
        patience: 0,
        ..c.clone()
    }
}

/// Trains `arch` on `corpus` in the folder `out`, resuming from its last completed epoch when
/// `resume` is set.
pub fn train_run(
    corpus: &Corpus,
    arch: &Arch,
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    reporter: &mut dyn Reporter,
) -> Result<Metrics, RunError> {
    validate_config(config)?;
    if arch.vocab_size != corpus.vocab.len() {
        return Err(RunError::VocabSize {
            arch: arch.vocab_size,
            corpus: corpus.vocab.len(),
        });
    }
    let batches = check_split_lengths(corpus, config)?;

    check_memory(arch)?;
    let run = RunDir::new(out);
    if !resume {
        run.check_new()?;
    }
    let _lock = run.lock()?;
    let mut trainer = Trainer::new(arch, config.seed)?;
    let mut state = if resume {
        let state = open_for_resume(&run, corpus, arch, config)?;
        run.load_weights(&mut trainer.vs, &state.last_weights, arch)?;
        match &state.stop_reason {
            Some(reason) if state.finished => tracing::info!(
                "{} already finished ({reason}); evaluating its best weights again",
                out.display()
            ),
            _ => tracing::info!("resuming {} after epoch {}", out.display(), state.epochs_done),
        }
        state
    } else {
        start_run(&run, corpus, arch, config)?
    };
    run.remove_stale_temporaries();

    let sgd = nn::Sgd {
        wd: config.weight_decay,
        ..Default::default()
    };
    let mut opt = sgd
        .build(&trainer.vs, state.lr)
        .expect("building SGD over a CPU var store cannot fail");

    while !state.finished {
        if let Some(reason) = stop_before_epoch(&state, config) {
            state.finished = true;
            state.stop_reason = Some(reason);
            run.write_json(STATE_FILE, &state)?;
            break;
        }
        let epoch = state.epochs_done + 1;
        opt.set_lr(state.lr);
        let improved = train_and_validate(&trainer, &mut opt, &batches, corpus, config, &mut state, reporter)?;
        if improved {
            run.save_weights(&trainer.vs, BEST_WEIGHTS_FILE)?;
        }
        checkpoint_epoch(&run, &trainer, &mut state, epoch)?;
    }

    finish(&run, corpus, arch, config, &state)
}

/// Trains epoch `state.epochs_done + 1`, validates it, and updates the best perplexity, the
/// patience count, the learning rate and the history in `state`. Returns whether validation
/// perplexity improved. Fails before touching `state` when the epoch diverged.
fn train_and_validate(
    trainer: &Trainer,
    opt: &mut nn::Optimizer,
    batches: &Batched,
    corpus: &Corpus,
    config: &TrainConfig,
    state: &mut TrainState,
    reporter: &mut dyn Reporter,
) -> Result<bool, RunError> {
    let epoch = state.epochs_done + 1;
    tch::manual_seed(epoch_seed(config.seed, epoch));
    reporter.epoch_started(epoch, batches.windows(config.bptt)?.num_windows());

    let started = Instant::now();
    let train_nll = trainer.train_epoch(opt, batches, config, reporter);
    let train_seconds = started.elapsed().as_secs_f64();
    let valid = trainer.evaluate(&corpus.valid.ids, config.eval_batch_size, config.bptt)?;
    let record = EpochRecord {
        epoch,
        lr: state.lr,
        train_perplexity: train_nll.perplexity(),
        valid_perplexity: valid.perplexity(),
        seconds: started.elapsed().as_secs_f64(),
        words: train_nll.tokens,
        words_per_second: train_nll.tokens as f64 / train_seconds,
    };
    for (split, value) in [("training", record.train_perplexity), ("validation", record.valid_perplexity)] {
        if !value.is_finite() {
            return Err(RunError::Diverged {
                epoch,
                split,
                value,
                lr: state.lr,
            });
        }
    }

    let improved = state
        .best_valid_perplexity
        .is_none_or(|best| record.valid_perplexity < best);
    if improved {
        state.best_valid_perplexity = Some(record.valid_perplexity);
        state.best_epoch = epoch;
        state.epochs_without_improvement = 0;
    } else {
        state.epochs_without_improvement += 1;
        state.lr *= config.lr_decay;
    }
    reporter.epoch_done(&record, improved);
    state.history.push(record);
    Ok(improved)
}

/// Rejects an architecture whose weights and gradients (8 bytes a parameter) exceed the
/// machine's memory, before libtorch allocates them and the kernel ends the process. Skipped
/// where `/proc/meminfo` cannot be read.
fn check_memory(arch: &Arch) -> Result<(), RunError> {
    let Some(total) = total_memory_bytes() else {
        return Ok(());
    };
    let needed = arch.num_parameters() as f64 * 8.0;
    if needed > total as f64 {
        return Err(RunError::OutOfMemory {
            arch: arch.summary(),
            parameters: arch.num_parameters(),
            needed_gb: needed / 1e9,
            total_gb: total as f64 / 1e9,
        });
    }
    Ok(())
}

fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Lays out the training split, and checks that every split is long enough for its batch
/// size, before any file is written.
pub fn check_split_lengths(corpus: &Corpus, config: &TrainConfig) -> Result<Batched, RunError> {
    let lay_out = |split: &'static str, ids: &crate::corpus::SplitIds, batch, option| {
        Batched::new(&ids.ids, batch).map_err(|source| RunError::SplitTooShort {
            split,
            path: ids.path.clone(),
            option,
            source,
        })
    };
    let batches = lay_out("train", &corpus.train, config.batch_size, "--batch-size")?;
    batches.windows(config.bptt)?;
    // The final evaluation runs on all three splits at the evaluation batch size.
    lay_out("train", &corpus.train, config.eval_batch_size, "--eval-batch-size")?;
    lay_out("valid", &corpus.valid, config.eval_batch_size, "--eval-batch-size")?;
    lay_out("test", &corpus.test, config.eval_batch_size, "--eval-batch-size")?;
    Ok(batches)
}

/// Returns the reason to stop before the next epoch, if any.
fn stop_before_epoch(state: &TrainState, config: &TrainConfig) -> Option<String> {
    if state.epochs_done >= config.max_epochs {
        return Some(format!("reached the epoch limit of {}", config.max_epochs));
    }
    if state.epochs_without_improvement >= config.patience && state.epochs_done > 0 {
        return Some(format!(
            "validation perplexity did not improve for {} epochs",
            state.epochs_without_improvement
        ));
    }
    if let (Some(limit), Some(last)) = (config.time_limit_minutes, state.history.last()) {
        let spent: f64 = state.history.iter().map(|r| r.seconds).sum();
        if spent + last.seconds > limit * 60.0 {
            return Some(format!(
                "another epoch ({:.0} s) would pass the time limit of {limit} minutes",
                last.seconds
            ));
        }
    }
    None
}

fn start_run(run: &RunDir, corpus: &Corpus, arch: &Arch, config: &TrainConfig) -> Result<TrainState, RunError> {
    if run.has_state() {
        return Err(CheckpointError::RunExists {
            path: run.path.clone(),
        }
        .into());
    }
    run.create()?;
    // The config goes first: a folder with it and no state is a run stopped before its first
    // epoch ended, which a new start may reuse.
    run.write_json(CONFIG_FILE, config)?;
    arch.save(&run.file(ARCH_FILE)).map_err(CheckpointError::from)?;
    corpus.vocab.save(&run.file(VOCAB_FILE)).map_err(CheckpointError::from)?;
    run.write_json(CORPUS_FILE, &CorpusFingerprint::of(corpus))?;
    Ok(TrainState {
        epochs_done: 0,
        lr: config.lr,
        best_valid_perplexity: None,
        best_epoch: 0,
        epochs_without_improvement: 0,
        last_weights: String::new(),
        history: Vec::new(),
        finished: false,
        stop_reason: None,
    })
}

fn open_for_resume(run: &RunDir, corpus: &Corpus, arch: &Arch, config: &TrainConfig) -> Result<TrainState, RunError> {
    if !run.has_state() {
        return Err(CheckpointError::NothingToResume {
            path: run.path.clone(),
        }
        .into());
    }
    let mismatch = |file| RunError::from(CheckpointError::Mismatch {
        path: run.path.clone(),
        file,
    });

    let (saved_arch, saved_vocab) = run.load_model_files()?;
    if &saved_arch != arch {
        return Err(mismatch(ARCH_FILE));
    }
    if saved_vocab != corpus.vocab {
        return Err(mismatch(VOCAB_FILE));
    }
    let saved_corpus: CorpusFingerprint = run.read_json(CORPUS_FILE)?;
    if saved_corpus != CorpusFingerprint::of(corpus) {
        return Err(mismatch(CORPUS_FILE));
    }
    let saved_config: TrainConfig = run.read_json(CONFIG_FILE)?;
    if resumable(&saved_config) != resumable(config) {
        return Err(mismatch(CONFIG_FILE));
    }

    let mut state: TrainState = run.read_json(STATE_FILE)?;
    if state.last_weights.contains(['/', '\\']) || state.last_weights.starts_with('.') {
        return Err(mismatch(STATE_FILE));
    }
    if saved_config.lr != config.lr {
        tracing::info!(
            "--lr changed from {} to {}: training goes on at {}",
            saved_config.lr,
            config.lr,
            config.lr
        );
        state.lr = config.lr;
    }
    // A finished run trains on when the new settings no longer stop it, for example a higher
    // epoch or time limit.
    if state.finished && stop_before_epoch(&state, config).is_none() {
        state.finished = false;
        state.stop_reason = None;
    }

    // Settings outside `resumable` may change on resume; record the ones now in force.
    run.write_json(CONFIG_FILE, config)?;
    Ok(state)
}

/// Saves the weights after `epoch`, then the state that names them, then removes the
/// previous epoch's weights.
fn checkpoint_epoch(run: &RunDir, trainer: &Trainer, state: &mut TrainState, epoch: usize) -> Result<(), RunError> {
    let previous = std::mem::replace(&mut state.last_weights, epoch_weights_name(epoch));
    run.save_weights(&trainer.vs, &state.last_weights)?;
    state.epochs_done = epoch;
    run.write_json(STATE_FILE, state)?;
    if !previous.is_empty() && previous != state.last_weights {
        run.remove_quietly(&previous);
    }
    Ok(())
}

/// Evaluates the best weights on every split and writes `metrics.json`.
fn finish(run: &RunDir, corpus: &Corpus, arch: &Arch, config: &TrainConfig, state: &TrainState) -> Result<Metrics, RunError> {
    tracing::info!(
        "evaluating the best weights (epoch {}) on the train, valid and test splits",
        state.best_epoch
    );
    let started = Instant::now();
    let mut best = Trainer::new(arch, config.seed)?;
    run.load_weights(&mut best.vs, BEST_WEIGHTS_FILE, arch)?;
    let eval = |ids: &[i64]| best.evaluate(ids, config.eval_batch_size, config.bptt);
    let train_perplexity = eval(&corpus.train.ids)?.perplexity();
    let valid_perplexity = eval(&corpus.valid.ids)?.perplexity();
    let test_perplexity = eval(&corpus.test.ids)?.perplexity();
    let evaluation_seconds = started.elapsed().as_secs_f64();

    let train_seconds: f64 = state.history.iter().map(|r| r.seconds).sum();
    let words: f64 = state.history.iter().map(|r| r.words as f64).sum();
    let training_only: f64 = state
        .history
        .iter()
        .map(|r| r.words as f64 / r.words_per_second)
        .sum();
    let metrics = Metrics {
        arch: arch.summary(),
        parameters: arch.num_parameters(),
        train_perplexity,
        valid_perplexity,
        test_perplexity,
        best_epoch: state.best_epoch,
        epochs: state.epochs_done,
        seed: config.seed,
        train_seconds,
        words_per_second: words / training_only.max(1e-9),
        evaluation_seconds,
        wall_seconds: train_seconds + evaluation_seconds,
        stop_reason: state.stop_reason.clone().unwrap_or_default(),
    };
    run.write_json(METRICS_FILE, &metrics)?;
    Ok(metrics)
}
