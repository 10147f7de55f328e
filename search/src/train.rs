//! Training an architecture from scratch: SGD with gradient clipping, learning-rate decay on
//! a validation plateau, early stopping, and checkpoints that make a stopped run resumable.
//!
//! Every epoch re-seeds libtorch's generator from the run seed and the epoch number. The state
//! carried between windows starts from zero at each epoch. A run resumed after epoch `k`
//! therefore replays epochs `k + 1..` exactly as an uninterrupted run does.
//!
//! NOTE: dropout masks come from libtorch's process-wide generator, so two trainings that run
//! at the same time in one process disturb each other's randomness and are not reproducible.

use std::time::Instant;

use edgenas_core::Arch;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use crate::batch::{Batched, Window};
use crate::model::LanguageModel;

/// Training settings; saved beside the checkpoint as `train-config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Sequences trained side by side.
    pub batch_size: usize,
    /// Steps of truncated back-propagation through time.
    pub bptt: usize,
    /// Initial SGD learning rate.
    pub lr: f64,
    /// Maximum L2 norm of the gradient over all parameters.
    pub clip: f64,
    /// L2 penalty added by SGD.
    pub weight_decay: f64,
    /// Upper bound on epochs.
    pub max_epochs: usize,
    /// Factor applied to the learning rate after an epoch that does not improve validation
    /// perplexity.
    pub lr_decay: f64,
    /// Epochs without improvement after which training stops.
    pub patience: usize,
    /// Training stops before an epoch that would end after this many minutes of training.
    pub time_limit_minutes: Option<f64>,
    /// Batch size for validation and test perplexity.
    pub eval_batch_size: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_size: 32,
            bptt: 35,
            lr: 20.0,
            clip: 0.25,
            weight_decay: 0.0,
            max_epochs: 40,
            lr_decay: 0.25,
            patience: 4,
            time_limit_minutes: None,
            eval_batch_size: 10,
            seed: 1,
        }
    }
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_perplexity: f64,
    pub valid_perplexity: f64,
    /// Seconds of the epoch, validation included.
    pub seconds: f64,
    /// Target tokens trained on.
    pub words: usize,
    /// Training speed, validation excluded.
    pub words_per_second: f64,
}

/// Progress of training after the last completed epoch; saved as `train-state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    pub lr: f64,
    /// Best validation perplexity so far; absent before the first epoch ends.
    pub best_valid_perplexity: Option<f64>,
    pub best_epoch: usize,
    pub epochs_without_improvement: usize,
    /// Weights after the last completed epoch, relative to the run folder.
    pub last_weights: String,
    pub history: Vec<EpochRecord>,
    /// Whether training ended (early stop, epoch limit or time limit).
    pub finished: bool,
    pub stop_reason: Option<String>,
}

/// Hooks for showing progress; training itself never prints.
pub trait Reporter {
    fn epoch_started(&mut self, _epoch: usize, _windows: usize) {}
    fn window_done(&mut self, _train_perplexity: f64, _words_per_second: f64) {}
    fn epoch_done(&mut self, _record: &EpochRecord, _improved: bool) {}
}

/// A reporter that shows nothing.
pub struct Silent;
impl Reporter for Silent {}

/// Sums of negative log-likelihood and token counts; perplexity is `exp(nll / tokens)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nll {
    pub sum: f64,
    pub tokens: usize,
}

impl Nll {
    pub fn perplexity(&self) -> f64 {
        (self.sum / self.tokens.max(1) as f64).exp()
    }
}

/// Seed of libtorch's generator for `epoch`, derived from the run seed.
pub fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    (seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64) & (i64::MAX as u64)) as i64
}

/// A model with its variables, ready to train or evaluate.
pub struct Trainer {
    pub vs: nn::VarStore,
    pub model: LanguageModel,
}

/// The model's variables could not be allocated.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot allocate {parameters} parameters ({gigabytes:.1} GB as float32) for {arch}: {reason}; \
     choose a smaller hidden_size or vocabulary"
)]
pub struct AllocationError {
    pub arch: String,
    pub parameters: usize,
    pub gigabytes: f64,
    pub reason: String,
}

impl Trainer {
    /// Creates the model of `arch` with initial weights drawn from `seed`.
    pub fn new(arch: &Arch, seed: u64) -> Result<Trainer, AllocationError> {
        tch::manual_seed(epoch_seed(seed, 0));
        let vs = nn::VarStore::new(Device::Cpu);
        let model = LanguageModel::new(&vs.root(), arch).map_err(|e| AllocationError {
            arch: arch.summary(),
            parameters: arch.num_parameters(),
            gigabytes: arch.num_parameters() as f64 * 4.0 / 1e9,
            reason: crate::checkpoint::first_line(&e.to_string()),
        })?;
        Ok(Trainer { vs, model })
    }

    /// Runs one epoch over `batches` and returns the training NLL.
    pub fn train_epoch(
        &self,
        opt: &mut nn::Optimizer,
        batches: &Batched,
        config: &TrainConfig,
        reporter: &mut dyn Reporter,
    ) -> Nll {
        let started = Instant::now();
        let mut state = self.model.zero_state(batches.batch_size() as i64);
        let mut nll = Nll::default();
        let windows = batches.windows(config.bptt).expect("bptt validated at start");
        for window in windows.iter() {
            let (input, target) = window_tensors(&window);
            let (loss, next) = self.train_window(opt, &input, &target, &state, config.clip);
            state = next;

            let tokens = target.numel();
            nll.sum += loss * tokens as f64;
            nll.tokens += tokens;
            let rate = nll.tokens as f64 / started.elapsed().as_secs_f64();
            reporter.window_done(nll.perplexity(), rate);
        }
        nll
    }

    /// Runs one SGD step on a window: forward with dropout, mean cross-entropy, backward,
    /// gradient clipping to `clip`, update. Returns the mean loss and the detached state.
    pub fn train_window(
        &self,
        opt: &mut nn::Optimizer,
        input: &Tensor,
        target: &Tensor,
        state: &Tensor,
        clip: f64,
    ) -> (f64, Tensor) {
        let vocab = self.model.arch().vocab_size as i64;
        let out = self.model.forward(input, state, true);
        let loss = out
            .logits
            .view([-1, vocab])
            .cross_entropy_for_logits(&target.view([-1]));
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(clip);
        opt.step();
        (loss.double_value(&[]), out.state.detach())
    }

    /// Returns the NLL of the model on `ids` without dropout, carrying the state across
    /// windows of `bptt` steps.
    pub fn evaluate(&self, ids: &[i64], batch_size: usize, bptt: usize) -> Result<Nll, crate::batch::BatchError> {
        let batches = Batched::new(ids, batch_size)?;
        let vocab = self.model.arch().vocab_size as i64;
        let mut nll = Nll::default();
        tch::no_grad(|| -> Result<(), crate::batch::BatchError> {
            let mut state = self.model.zero_state(batch_size as i64);
            for window in batches.windows(bptt)?.iter() {
                let (input, target) = window_tensors(&window);
                let out = self.model.forward(&input, &state, false);
                let loss = out.logits.view([-1, vocab]).cross_entropy_loss::<Tensor>(
                    &target.view([-1]),
                    None,
                    tch::Reduction::Sum,
                    -100,
                    0.0,
                );
                nll.sum += loss.double_value(&[]);
                nll.tokens += target.numel();
                state = out.state;
            }
            Ok(())
        })?;
        Ok(nll)
    }
}

/// Converts a window to `[T, B]` int64 tensors of inputs and targets.
pub fn window_tensors(w: &Window) -> (Tensor, Tensor) {
    let shape = [w.steps as i64, w.batch_size as i64];
    let input = Tensor::from_slice(w.input).view(shape);
    let target = Tensor::from_slice(w.target).view(shape);
    (input, target)
}
