//! A whole search in a folder: train the shared model and the controller epoch by epoch,
//! checkpoint after each epoch, then derive the chosen architecture.
//!
//! Randomness: libtorch's generator (dropout, initial weights) is re-seeded from the search
//! seed and the epoch number at the start of each epoch. The architecture sampler uses its own
//! generator, whose state the checkpoint saves. The recurrent state of the shared model
//! restarts at zero each epoch. A search resumed after epoch `k` therefore continues exactly as
//! an uninterrupted one, at the same thread count.

use std::path::{Path, PathBuf};
use std::time::Instant;

use edgenas_core::{estimate, profile::Profile, Arch};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::config::{SearchConfig, Strategy};
use super::controller::{Controller, Pick};
use super::derive::{derive, Derived};
use super::reward::{hard_reward, hypervolume_reward, objectives, soft_reward, RewardMode};
use super::rng::Rng;
use super::shared::{sgd_step, SharedModel};
use crate::batch::{BatchError, Batched, Windows};
use crate::checkpoint::{CheckpointError, RunDir, VOCAB_FILE};
use crate::corpus::Corpus;
use crate::run::CorpusFingerprint;
use crate::train::{epoch_seed, window_tensors, Nll};

pub const SEARCH_CONFIG_FILE: &str = "search-config.json";
pub const SEARCH_STATE_FILE: &str = "search-state.json";
pub const PROFILE_FILE: &str = "profile.toml";
pub const CORPUS_FILE: &str = "corpus.json";

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("invalid search setting: {0}")]
    Config(String),
    #[error(transparent)]
    Space(#[from] super::space::SpaceError),
    #[error("{split} split {path}, {option}: {source}")]
    SplitTooShort {
        split: &'static str,
        path: PathBuf,
        option: &'static str,
        source: BatchError,
    },
    #[error(
        "the shared model diverged in epoch {epoch}: training perplexity is {value}; start again \
         in a new --out folder with a lower --lr (now {lr}) or --clip"
    )]
    Diverged { epoch: usize, value: f64, lr: f64 },
    #[error(
        "{path} contains a search with other settings in {file}; resume with the settings it \
         was started with, or start a new search in another --out folder"
    )]
    Mismatch { path: PathBuf, file: &'static str },
    #[error(
        "{path} contains a search started with other settings ({changes}); resume with the \
         settings it was started with, or start a new search in another --out folder"
    )]
    SettingsChanged { path: PathBuf, changes: String },
    #[error(
        "{path} contains a search on another corpus ({file} differs); resume on the corpus it \
         was started on, or start a new search in another --out folder"
    )]
    CorpusChanged { path: PathBuf, file: &'static str },
    #[error(
        "--epochs is {requested}, but the search in {path} has already done {done} epochs; use \
         --epochs {done} or more"
    )]
    FewerEpochs { path: PathBuf, requested: usize, done: usize },
    #[error(
        "{path} already contains a search; pass --resume to continue it, or choose another \
         --out folder"
    )]
    SearchExists { path: PathBuf },
    #[error("{path} has no search to resume ({file} is missing); start it without --resume")]
    NothingToResume { path: PathBuf, file: &'static str },
    #[error(
        "{path} is not empty and contains no search of edgenas; choose a new or empty --out \
         folder, since a search never overwrites files it did not write"
    )]
    NotEmpty { path: PathBuf },
    #[error("cannot write {path}: {reason}")]
    SaveWeights { path: PathBuf, reason: String },
    #[error(
        "cannot read {path}: {reason}; the checkpoint is damaged, so start a new search in \
         another --out folder"
    )]
    LoadWeights { path: PathBuf, reason: String },
    #[error("cannot allocate the shared model: {0}; choose smaller --hidden-sizes or --max-nodes")]
    Allocation(String),
}

/// One finished search epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchEpoch {
    pub epoch: usize,
    /// Perplexity of the shared model on the training windows of this epoch, dropout on.
    pub shared_train_perplexity: f64,
    /// Geometric mean of the validation perplexities of the cells the controller sampled, each
    /// on one validation minibatch. The geometric mean keeps a few diverging cells from
    /// dominating it. Absent for random search.
    pub sampled_valid_perplexity: Option<f64>,
    /// Mean reward of the controller's samples; absent for random search.
    pub mean_reward: Option<f64>,
    /// Share of sampled architectures that meet every budget.
    pub within_budget: f64,
    pub seconds: f64,
    pub words_per_second: f64,
}

/// An architecture evaluated during the search, with its latest validation perplexity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub arch: Arch,
    pub valid_perplexity: f64,
    pub epoch: usize,
    pub within_budget: bool,
}

/// Progress of a search after its last completed epoch; saved as `search-state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchState {
    pub epochs_done: usize,
    pub rng: Rng,
    pub baseline: Option<f64>,
    /// Next training window of the shared model.
    pub train_cursor: usize,
    /// Next validation window for a reward.
    pub valid_cursor: usize,
    /// Weight files after the last completed epoch, relative to the search folder.
    pub shared_weights: String,
    pub controller_weights: String,
    pub archive: Vec<ArchiveEntry>,
    pub history: Vec<SearchEpoch>,
}

/// Progress hooks of the search and derive phases; the search itself never prints.
pub trait SearchReporter {
    fn phase_started(&mut self, _epoch: usize, _phase: &'static str, _steps: usize) {}
    fn step_done(&mut self, _progress: &StepProgress) {}
    fn epoch_done(&mut self, _record: &SearchEpoch) {}
    fn derive_started(&mut self, _candidates: usize) {}
    fn candidate_done(&mut self, _summary: &str, _valid_perplexity: f64, _within_budget: bool) {}
}

/// Running figures of the current phase.
#[derive(Clone, Debug, Default)]
pub struct StepProgress {
    pub shared_perplexity: Option<f64>,
    pub mean_reward: Option<f64>,
    pub within_budget: f64,
    pub words_per_second: Option<f64>,
}

pub struct Silent;
impl SearchReporter for Silent {}

/// The inputs of a search.
pub struct SearchInput<'a> {
    pub corpus: &'a Corpus,
    pub profile: &'a Profile,
    /// The profile's TOML text, saved in the folder so a resume can check it.
    pub profile_text: &'a str,
    pub config: &'a SearchConfig,
    pub out: &'a Path,
    pub resume: bool,
}

/// Runs or resumes a search, then derives and writes `arch.json`, `pareto.json` and
/// `report.md`.
pub fn search_run(input: &SearchInput, reporter: &mut dyn SearchReporter) -> Result<Derived, SearchError> {
    let SearchInput {
        corpus,
        profile,
        config,
        out,
        ..
    } = *input;
    config.validate().map_err(SearchError::Config)?;
    super::space::SearchSpace::new(
        config.space.vocab_size,
        config.space.hidden_sizes.clone(),
        config.space.min_nodes,
        config.space.max_nodes,
        config.space.dropout,
    )?;
    if config.space.vocab_size != corpus.vocab.len() {
        return Err(SearchError::Config(format!(
            "the search space has vocab_size {}, but the corpus vocabulary has {} tokens",
            config.space.vocab_size,
            corpus.vocab.len()
        )));
    }
    let layouts = Layouts::new(corpus, config)?;
    let dir = RunDir::new(out);
    if input.resume {
        // Checked before the lock, which would otherwise create the folder or a lock file in it.
        if !dir.file(SEARCH_STATE_FILE).is_file() {
            return Err(SearchError::NothingToResume {
                path: dir.path.clone(),
                file: SEARCH_STATE_FILE,
            });
        }
    } else {
        check_new(&dir)?;
    }
    let _lock = dir.lock()?;

    tch::manual_seed(epoch_seed(config.seed, 0));
    let shared = SharedModel::new(&config.space).map_err(|e| SearchError::Allocation(crate::checkpoint::first_line(&e.to_string())))?;
    let mut controller = Controller::new(&config.space, &config.controller);
    let mut state = if input.resume {
        let state = open_for_resume(&dir, input)?;
        load_shared(&dir, &shared, &state.shared_weights)?;
        if !state.controller_weights.is_empty() {
            let path = dir.file(&state.controller_weights);
            if !path.is_file() {
                return Err(SearchError::LoadWeights {
                    path,
                    reason: "the file is missing".into(),
                });
            }
            controller
                .load(&path)
                .map_err(|reason| SearchError::LoadWeights { path, reason })?;
        }
        tracing::info!("resuming the search in {} after epoch {}", out.display(), state.epochs_done);
        state
    } else {
        start(&dir, input)?
    };
    dir.remove_stale_temporaries();

    while state.epochs_done < config.epochs {
        let epoch = state.epochs_done + 1;
        tch::manual_seed(epoch_seed(config.seed, epoch));
        let started = Instant::now();
        let (train_nll, shared_within, shared_seconds) =
            train_shared(&shared, &controller, config, profile, &layouts.train, &mut state, epoch, reporter)?;
        let (reward_stats, rewarded_within) = match config.strategy {
            Strategy::Enas => {
                let (stats, within) = train_controller(&shared, &mut controller, input, &layouts.reward, &mut state, epoch, reporter);
                (Some(stats), within)
            }
            Strategy::Random => (None, shared_within),
        };
        let record = SearchEpoch {
            epoch,
            shared_train_perplexity: train_nll.perplexity(),
            sampled_valid_perplexity: reward_stats.map(|s| s.mean_perplexity),
            mean_reward: reward_stats.map(|s| s.mean_reward),
            within_budget: rewarded_within,
            seconds: started.elapsed().as_secs_f64(),
            words_per_second: train_nll.tokens as f64 / shared_seconds.max(1e-9),
        };
        reporter.epoch_done(&record);
        state.history.push(record);
        checkpoint(&dir, &shared, &controller, config, &mut state, epoch)?;
    }

    let derived = derive(&shared, &controller, input, &layouts.derive, &state, reporter);
    super::derive::write_outputs(&dir, input, &state, &derived)?;
    Ok(derived)
}

/// The three batch layouts a search uses, checked before any file is written.
struct Layouts {
    train: Batched,
    reward: Batched,
    derive: Batched,
}

impl Layouts {
    fn new(corpus: &Corpus, config: &SearchConfig) -> Result<Layouts, SearchError> {
        let lay_out = |split: &'static str, ids: &crate::corpus::SplitIds, batch, option| {
            let b = Batched::new(&ids.ids, batch).map_err(|source| SearchError::SplitTooShort {
                split,
                path: ids.path.clone(),
                option,
                source,
            })?;
            b.windows(config.shared.bptt)?;
            Ok::<_, SearchError>(b)
        };
        Ok(Layouts {
            train: lay_out("train", &corpus.train, config.shared.batch_size, "--batch-size")?,
            reward: lay_out("valid", &corpus.valid, config.reward_batch_size, "--reward-batch-size")?,
            derive: lay_out("valid", &corpus.valid, config.derive_batch_size, "--derive-batch-size")?,
        })
    }
}

/// Proposes the architecture of the next shared-model window.
fn propose(controller: &Controller, config: &SearchConfig, rng: &mut Rng) -> Arch {
    match config.strategy {
        Strategy::Enas => tch::no_grad(|| controller.sample(Pick::Sample(rng)).arch),
        Strategy::Random => config.space.sample_uniform(rng),
    }
}

/// Trains the shared model for one epoch's windows, one proposed architecture per window.
/// Returns the training NLL, the share of proposals within budget and the seconds taken.
#[allow(clippy::too_many_arguments)]
fn train_shared(
    shared: &SharedModel,
    controller: &Controller,
    config: &SearchConfig,
    profile: &Profile,
    batches: &Batched,
    state: &mut SearchState,
    epoch: usize,
    reporter: &mut dyn SearchReporter,
) -> Result<(Nll, f64, f64), SearchError> {
    let windows = batches.windows(config.shared.bptt)?;
    let steps = config.shared.steps_per_epoch;
    reporter.phase_started(epoch, "shared", steps);
    let started = Instant::now();
    let hmax = config.space.max_hidden() as i64;
    let mut carried = shared.zero_state(batches.batch_size() as i64);
    let mut carried_wide = shared.zero_state(batches.batch_size() as i64);
    let mut nll = Nll::default();
    let mut within = 0usize;
    let vocab = config.space.vocab_size as i64;
    for step in 0..steps {
        let window = windows
            .window(state.train_cursor % windows.num_windows())
            .expect("the index is below the window count");
        state.train_cursor = (state.train_cursor + 1) % windows.num_windows();
        let arch = propose(controller, config, &mut state.rng);
        within += usize::from(estimate(&arch, profile).all_met());

        let h = arch.hidden_size as i64;
        let model = shared.model(&arch);
        let (input, target) = window_tensors(&window);
        let out = model.forward(&input, &carried.narrow(1, 0, h), true);
        let loss = out.logits.view([-1, vocab]).cross_entropy_for_logits(&target.view([-1]));
        loss.backward();
        if config.shared.sandwich && h < hmax {
            // The same cell at the largest size, so the weights outside the corner that small
            // cells use train at every step too (the sandwich rule of slimmable networks).
            let wide = Arch {
                hidden_size: hmax as usize,
                ..arch.clone()
            };
            let out = shared.model(&wide).forward(&input, &carried_wide, true);
            out.logits
                .view([-1, vocab])
                .cross_entropy_for_logits(&target.view([-1]))
                .backward();
            carried_wide = out.state.detach();
        }
        sgd_step(&shared.vs, config.shared.lr, config.shared.clip, config.shared.weight_decay);

        let next = out.state.detach();
        carried = match h < hmax {
            true => Tensor::cat(&[next, carried.narrow(1, h, hmax - h)], 1),
            false => next,
        };
        let value = loss.double_value(&[]);
        tracing::debug!("shared step {step}: {} loss {value:.3} at {:?}", arch.summary(), started.elapsed());
        if !value.is_finite() {
            return Err(SearchError::Diverged {
                epoch,
                value: value.exp(),
                lr: config.shared.lr,
            });
        }
        nll.sum += value * target.numel() as f64;
        nll.tokens += target.numel();
        reporter.step_done(&StepProgress {
            shared_perplexity: Some(nll.perplexity()),
            mean_reward: None,
            within_budget: within as f64 / (step + 1) as f64,
            words_per_second: Some(nll.tokens as f64 / started.elapsed().as_secs_f64()),
        });
    }
    Ok((nll, within as f64 / steps as f64, started.elapsed().as_secs_f64()))
}

#[derive(Clone, Copy, Debug)]
struct RewardStats {
    mean_reward: f64,
    mean_perplexity: f64,
}

/// Perplexity of `arch` with the shared weights on one validation window, from a zero state.
pub fn window_perplexity(shared: &SharedModel, arch: &Arch, windows: &Windows, index: usize) -> f64 {
    let window = windows.window(index % windows.num_windows()).expect("index within range");
    let (input, target) = window_tensors(&window);
    tch::no_grad(|| {
        let model = shared.model(arch);
        let out = model.forward(&input, &model.zero_state(window.batch_size as i64), false);
        let vocab = arch.vocab_size as i64;
        let loss = out.logits.view([-1, vocab]).cross_entropy_for_logits(&target.view([-1]));
        loss.double_value(&[]).exp()
    })
}

/// Computes the reward of an architecture with validation perplexity `perplexity`.
pub fn reward_of(arch: &Arch, perplexity: f64, input: &SearchInput, archive: &[ArchiveEntry]) -> f64 {
    let config = &input.config.reward;
    let checks = estimate(arch, input.profile).checks;
    match config.mode {
        RewardMode::Hard => hard_reward(perplexity, &checks, config),
        RewardMode::Soft => soft_reward(perplexity, &checks, config),
        RewardMode::Hypervolume => {
            let summary = arch.summary();
            let points: Vec<Vec<f64>> = archive
                .iter()
                .filter(|e| e.arch.summary() != summary)
                .map(|e| objectives(e.valid_perplexity, &estimate(&e.arch, input.profile).checks, config))
                .collect();
            hypervolume_reward(perplexity, &checks, &points, config)
        }
    }
}

/// Trains the controller for one epoch's steps with REINFORCE. Returns the mean reward and
/// perplexity, and the share of samples within budget.
fn train_controller(
    shared: &SharedModel,
    controller: &mut Controller,
    input: &SearchInput,
    batches: &Batched,
    state: &mut SearchState,
    epoch: usize,
    reporter: &mut dyn SearchReporter,
) -> (RewardStats, f64) {
    let config = input.config;
    let windows = batches.windows(config.shared.bptt).expect("checked at start");
    let steps = config.controller_steps_per_epoch;
    reporter.phase_started(epoch, "controller", steps);
    let (mut reward_sum, mut log_ppl_sum, mut within) = (0.0, 0.0, 0usize);
    for step in 0..steps {
        let sampled = controller.sample(Pick::Sample(&mut state.rng));
        let arch = &sampled.arch;
        let perplexity = window_perplexity(shared, arch, &windows, state.valid_cursor);
        state.valid_cursor = (state.valid_cursor + 1) % windows.num_windows();
        let within_budget = estimate(arch, input.profile).all_met();
        let reward = reward_of(arch, perplexity, input, &state.archive);

        let baseline = state.baseline.unwrap_or(reward);
        controller.reinforce(&sampled, reward - baseline);
        let decay = config.controller.baseline_decay;
        state.baseline = Some(decay * baseline + (1.0 - decay) * reward);

        record(&mut state.archive, arch, perplexity, epoch, within_budget);
        reward_sum += reward;
        log_ppl_sum += perplexity.ln();
        within += usize::from(within_budget);
        let n = (step + 1) as f64;
        reporter.step_done(&StepProgress {
            shared_perplexity: Some((log_ppl_sum / n).exp()),
            mean_reward: Some(reward_sum / n),
            within_budget: within as f64 / n,
            words_per_second: None,
        });
    }
    let n = steps as f64;
    (
        RewardStats {
            mean_reward: reward_sum / n,
            mean_perplexity: (log_ppl_sum / n).exp(),
        },
        within as f64 / n,
    )
}

/// Adds an evaluation to the archive, replacing an older one of the same architecture.
fn record(archive: &mut Vec<ArchiveEntry>, arch: &Arch, perplexity: f64, epoch: usize, within_budget: bool) {
    let entry = ArchiveEntry {
        arch: arch.clone(),
        valid_perplexity: perplexity,
        epoch,
        within_budget,
    };
    match archive.iter_mut().find(|e| &e.arch == arch) {
        Some(old) => *old = entry,
        None => archive.push(entry),
    }
}

fn shared_weights_name(epoch: usize) -> String {
    format!("shared-epoch-{epoch:03}.safetensors")
}

fn controller_weights_name(epoch: usize) -> String {
    format!("controller-epoch-{epoch:03}.safetensors")
}

/// Saves the weights after `epoch`, then the state that names them, then removes the previous
/// epoch's files.
fn checkpoint(
    dir: &RunDir,
    shared: &SharedModel,
    controller: &Controller,
    config: &SearchConfig,
    state: &mut SearchState,
    epoch: usize,
) -> Result<(), SearchError> {
    let previous = (state.shared_weights.clone(), state.controller_weights.clone());
    state.shared_weights = shared_weights_name(epoch);
    dir.save_weights(&shared.vs, &state.shared_weights)?;
    if config.strategy == Strategy::Enas {
        state.controller_weights = controller_weights_name(epoch);
        let path = dir.file(&state.controller_weights);
        controller.save(&path).map_err(|e| SearchError::SaveWeights {
            path,
            reason: crate::checkpoint::first_line(&e.to_string()),
        })?;
    }
    state.epochs_done = epoch;
    dir.write_json(SEARCH_STATE_FILE, state)?;
    for (old, new) in [(previous.0, &state.shared_weights), (previous.1, &state.controller_weights)] {
        if !old.is_empty() && &old != new {
            dir.remove_quietly(&old);
        }
    }
    Ok(())
}

fn load_shared(dir: &RunDir, shared: &SharedModel, name: &str) -> Result<(), SearchError> {
    let path = dir.file(name);
    let load_error = |reason: String| SearchError::LoadWeights {
        path: path.clone(),
        reason,
    };
    let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| load_error(crate::checkpoint::first_line(&e.to_string())))?
        .into_iter()
        .collect();
    tch::no_grad(|| {
        for (name, mut var) in shared.vs.variables() {
            let saved = tensors
                .get(&name)
                .ok_or_else(|| load_error(format!("tensor {name} is missing")))?;
            if saved.size() != var.size() {
                return Err(load_error(format!(
                    "tensor {name} has shape {:?}, expected {:?}",
                    saved.size(),
                    var.size()
                )));
            }
            var.copy_(&saved.to_kind(Kind::Float));
        }
        Ok(())
    })
}

/// Accepts an absent or empty folder, or one that holds only a search stopped before its first
/// epoch ended (a readable `search-config.json` and no state).
fn check_new(dir: &RunDir) -> Result<(), SearchError> {
    if dir.path.exists() && !dir.path.is_dir() {
        return Err(CheckpointError::NotAFolder { path: dir.path.clone() }.into());
    }
    if !dir.path.is_dir() {
        return Ok(());
    }
    if dir.file(SEARCH_STATE_FILE).is_file() {
        return Err(SearchError::SearchExists { path: dir.path.clone() });
    }
    if dir.read_json::<SearchConfig>(SEARCH_CONFIG_FILE).is_ok() {
        return Ok(());
    }
    let entries = std::fs::read_dir(&dir.path).map_err(|source| CheckpointError::Read {
        path: dir.path.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != crate::checkpoint::LOCK_FILE && !(name.starts_with('.') && name.contains(".tmp-")) {
            return Err(SearchError::NotEmpty { path: dir.path.clone() });
        }
    }
    Ok(())
}

fn start(dir: &RunDir, input: &SearchInput) -> Result<SearchState, SearchError> {
    check_new(dir)?;
    // The config goes first: a folder with it and no state is a search stopped in its first
    // epoch, which a new start may reuse.
    dir.write_json(SEARCH_CONFIG_FILE, input.config)?;
    write_text(dir, PROFILE_FILE, input.profile_text)?;
    input.corpus.vocab.save(&dir.file(VOCAB_FILE)).map_err(CheckpointError::from)?;
    dir.write_json(CORPUS_FILE, &CorpusFingerprint::of(input.corpus))?;
    Ok(SearchState {
        epochs_done: 0,
        rng: Rng::new(input.config.seed),
        baseline: None,
        train_cursor: 0,
        valid_cursor: 0,
        shared_weights: String::new(),
        controller_weights: String::new(),
        archive: Vec::new(),
        history: Vec::new(),
    })
}

fn write_text(dir: &RunDir, name: &str, text: &str) -> Result<(), SearchError> {
    let path = dir.file(name);
    edgenas_core::write_atomic(&path, text.as_bytes())
        .map_err(|source| CheckpointError::Write { path, source }.into())
}

/// Checks a search folder against the inputs of a resume and returns its state. `search_run`
/// has already checked that the state file exists.
fn open_for_resume(dir: &RunDir, input: &SearchInput) -> Result<SearchState, SearchError> {
    let mismatch = |file| SearchError::Mismatch {
        path: dir.path.clone(),
        file,
    };

    let vocab = edgenas_core::Vocab::load(&dir.file(VOCAB_FILE)).map_err(CheckpointError::from)?;
    if vocab != input.corpus.vocab {
        return Err(SearchError::CorpusChanged {
            path: dir.path.clone(),
            file: VOCAB_FILE,
        });
    }
    let fingerprint: CorpusFingerprint = dir.read_json(CORPUS_FILE)?;
    if fingerprint != CorpusFingerprint::of(input.corpus) {
        return Err(SearchError::CorpusChanged {
            path: dir.path.clone(),
            file: CORPUS_FILE,
        });
    }

    let saved: SearchConfig = dir.read_json(SEARCH_CONFIG_FILE)?;
    if saved.resumable() != input.config.resumable() {
        return Err(SearchError::SettingsChanged {
            path: dir.path.clone(),
            changes: describe_changes(&saved.resumable(), &input.config.resumable()),
        });
    }

    let profile = std::fs::read_to_string(dir.file(PROFILE_FILE)).map_err(|source| CheckpointError::Read {
        path: dir.file(PROFILE_FILE),
        source,
    })?;
    if profile != input.profile_text {
        return Err(mismatch(PROFILE_FILE));
    }

    let state: SearchState = dir.read_json(SEARCH_STATE_FILE)?;
    if input.config.epochs < state.epochs_done {
        return Err(SearchError::FewerEpochs {
            path: dir.path.clone(),
            requested: input.config.epochs,
            done: state.epochs_done,
        });
    }

    let safe = |name: &str| !name.contains(['/', '\\']) && !name.starts_with('.');
    if !safe(&state.shared_weights) || !safe(&state.controller_weights) || state.shared_weights.is_empty() {
        return Err(mismatch(SEARCH_STATE_FILE));
    }

    // Settings outside `resumable` may change; record the ones now in force.
    dir.write_json(SEARCH_CONFIG_FILE, input.config)?;
    Ok(state)
}

/// Lists the settings that differ between two configs as `path was A, now B`.
fn describe_changes(saved: &SearchConfig, now: &SearchConfig) -> String {
    let (a, b) = (
        serde_json::to_value(saved).expect("configs serialize"),
        serde_json::to_value(now).expect("configs serialize"),
    );
    let mut changes = Vec::new();
    collect_changes("", &a, &b, &mut changes);
    if changes.is_empty() {
        "the settings differ".into()
    } else {
        changes.join(", ")
    }
}

fn collect_changes(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let null = serde_json::Value::Null;
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                collect_changes(&child, x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null), out);
            }
        }
        _ if a != b => out.push(format!("{path} was {a}, now {b}")),
        _ => {}
    }
}
