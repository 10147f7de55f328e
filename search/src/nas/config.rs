//! Settings of a search, and the `quick` and `paper` presets.

use edgenas_core::Dropout;
use serde::{Deserialize, Serialize};

use super::controller::ControllerConfig;
use super::reward::{RewardConfig, RewardMode};
use super::space::SearchSpace;

/// Largest controller LSTM accepted, far above ENAS's 100 units.
pub const MAX_LSTM_SIZE: usize = 4096;

/// Source of the proposed architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The LSTM controller trained with REINFORCE (ENAS).
    Enas,
    /// Uniform sampling with the same shared model, budget filter and evaluation (random
    /// search with weight sharing, Li and Talwalkar 2019).
    Random,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Enas => "enas",
            Strategy::Random => "random",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// About 20 minutes on full Penn Treebank on two CPU cores (an estimate).
    Quick,
    /// The ENAS paper's settings for Penn Treebank; meant for a GPU.
    Paper,
}

/// Training of the shared model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    pub batch_size: usize,
    pub bptt: usize,
    pub lr: f64,
    pub clip: f64,
    pub weight_decay: f64,
    /// Training windows (one sampled architecture each) per search epoch. The windows continue
    /// through the training split across epochs and wrap around at its end.
    pub steps_per_epoch: usize,
    /// Also trains each sampled cell at the largest hidden size, in the same step. Without it,
    /// the weights that only large cells use train rarely, large cells score worse than they
    /// would alone, and the search drifts to the smallest size whatever the budgets allow.
    pub sandwich: bool,
}

/// Everything that decides a search's result; saved as `search-config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    pub strategy: Strategy,
    pub space: SearchSpace,
    pub epochs: usize,
    pub shared: SharedConfig,
    pub controller: ControllerConfig,
    /// Controller updates per search epoch, one sampled architecture each (ENAS only).
    pub controller_steps_per_epoch: usize,
    pub reward: RewardConfig,
    /// Sequences in the validation minibatch a reward is measured on.
    pub reward_batch_size: usize,
    /// Architectures sampled and evaluated after the search.
    pub derive_samples: usize,
    pub derive_batch_size: usize,
    /// Validation windows each derived architecture is evaluated on, the state carried across
    /// them.
    pub derive_windows: usize,
    pub seed: u64,
}

impl SearchConfig {
    pub fn preset(preset: Preset, vocab_size: usize, strategy: Strategy, reward: RewardMode) -> SearchConfig {
        match preset {
            Preset::Quick => SearchConfig {
                strategy,
                space: SearchSpace {
                    vocab_size,
                    hidden_sizes: vec![64, 128, 192, 256],
                    min_nodes: 1,
                    max_nodes: 8,
                    dropout: Dropout {
                        embedding: 0.0,
                        input: 0.1,
                        hidden: 0.1,
                        output: 0.2,
                    },
                },
                epochs: 10,
                shared: SharedConfig {
                    batch_size: 32,
                    bptt: 35,
                    lr: 20.0,
                    clip: 0.25,
                    weight_decay: 0.0,
                    steps_per_epoch: 200,
                    sandwich: true,
                },
                controller: ControllerConfig {
                    lr: 3.5e-3,
                    ..ControllerConfig::default()
                },
                controller_steps_per_epoch: 60,
                reward: RewardConfig::new(reward, vocab_size),
                reward_batch_size: 32,
                derive_samples: 48,
                derive_batch_size: 32,
                derive_windows: 12,
                seed: 1,
            },
            Preset::Paper => SearchConfig {
                strategy,
                space: SearchSpace {
                    vocab_size,
                    hidden_sizes: vec![720, 800, 900, 1000],
                    min_nodes: 1,
                    max_nodes: 12,
                    dropout: Dropout {
                        embedding: 0.1,
                        input: 0.65,
                        hidden: 0.25,
                        output: 0.4,
                    },
                },
                epochs: 150,
                shared: SharedConfig {
                    batch_size: 64,
                    bptt: 35,
                    lr: 20.0,
                    clip: 0.25,
                    weight_decay: 1e-7,
                    steps_per_epoch: 400,
                    sandwich: true,
                },
                controller: ControllerConfig::default(),
                controller_steps_per_epoch: 2000,
                reward: RewardConfig::new(reward, vocab_size),
                reward_batch_size: 64,
                derive_samples: 100,
                derive_batch_size: 64,
                derive_windows: 30,
                seed: 1,
            },
        }
    }

    /// Checks the settings that the space does not.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: usize| match v {
            0 => Err(format!("{name} is 0; use at least 1")),
            _ => Ok(()),
        };
        positive("--epochs", self.epochs)?;
        positive("--batch-size", self.shared.batch_size)?;
        positive("--bptt", self.shared.bptt)?;
        positive("--shared-steps", self.shared.steps_per_epoch)?;
        positive("--reward-batch-size", self.reward_batch_size)?;
        positive("--derive-samples", self.derive_samples)?;
        positive("--derive-batch-size", self.derive_batch_size)?;
        positive("--derive-windows", self.derive_windows)?;
        if self.strategy == Strategy::Enas {
            positive("--controller-steps", self.controller_steps_per_epoch)?;
        }

        let finite_positive = |name: &str, v: f64, example: &str| match v.is_finite() && v > 0.0 {
            true => Ok(()),
            false => Err(format!("{name} is {v}; use a positive number such as {example}")),
        };
        finite_positive("--lr", self.shared.lr, "20")?;
        finite_positive("--clip", self.shared.clip, "0.25")?;
        finite_positive("--controller-lr", self.controller.lr, "0.0035")?;
        finite_positive("--temperature", self.controller.temperature, "5")?;
        finite_positive("--reward-c", self.reward.c, "80")?;
        finite_positive("--reference-perplexity", self.reward.reference_perplexity, "10000")?;

        if !(self.controller.tanh_constant.is_finite() && self.controller.tanh_constant >= 0.0) {
            return Err(format!("--tanh-constant is {}; use 0 (off) or more, such as 2.5", self.controller.tanh_constant));
        }
        if !(self.controller.entropy_weight.is_finite() && self.controller.entropy_weight >= 0.0) {
            return Err(format!("--entropy-weight is {}; use 0 or more, such as 0.0001", self.controller.entropy_weight));
        }
        if !(0.0..1.0).contains(&self.controller.baseline_decay) {
            return Err(format!("--baseline-decay is {}; use a factor in [0, 1), such as 0.95", self.controller.baseline_decay));
        }
        if !(self.shared.weight_decay.is_finite() && self.shared.weight_decay >= 0.0) {
            return Err(format!("--weight-decay is {}; use 0 or more", self.shared.weight_decay));
        }
        if !(1..=MAX_LSTM_SIZE).contains(&self.controller.lstm_size) {
            return Err(format!(
                "--lstm-size is {}; use 1 to {MAX_LSTM_SIZE}, such as 100",
                self.controller.lstm_size
            ));
        }

        for (key, w) in &self.reward.soft_weights {
            if !w.is_finite() || *w > 0.0 {
                return Err(format!("--soft-weight {key}={w}; a weight must be 0 or negative, such as -0.07"));
            }
        }
        if !self.reward.soft_default_weight.is_finite() || self.reward.soft_default_weight > 0.0 {
            return Err(format!(
                "--soft-default-weight is {}; use 0 or a negative number, such as -0.07",
                self.reward.soft_default_weight
            ));
        }
        if !self.reward.min_reward.is_finite() {
            return Err(format!("--min-reward is {}; use a finite number such as 0", self.reward.min_reward));
        }
        Ok(())
    }

    /// The settings a resume must keep. The epoch count and the derive settings may change, for
    /// example to search longer or evaluate more samples.
    pub fn resumable(&self) -> SearchConfig {
        SearchConfig {
            epochs: 0,
            derive_samples: 0,
            derive_batch_size: 0,
            derive_windows: 0,
            ..self.clone()
        }
    }
}
