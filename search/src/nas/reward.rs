//! Rewards that weigh perplexity against the device's budgets.
//!
//! Every mode starts from ENAS's `c / perplexity` and differs in how the costs enter:
//!
//! - `hard`: an architecture over any budget gets `min_reward`.
//! - `soft` (MnasNet, Tan et al. 2019): `c / perplexity * prod_k (cost_k / budget_k)^w_k`, with
//!   `w_k <= 0` per constraint; with `zero_within_budget`, `w_k` is 0 for a cost within budget,
//!   so only overruns are penalised.
//! - `hypervolume`: the hypervolume that the architecture adds to the Pareto front of the
//!   archive, in a space where every objective is normalised by its limit: perplexity by
//!   `reference_perplexity` and each cost by its budget. The reference point is 1 in every
//!   objective, so an architecture over a budget adds nothing.

use std::collections::BTreeMap;

use edgenas_core::cost::BudgetCheck;
use serde::{Deserialize, Serialize};

use super::pareto::hypervolume_gain;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardMode {
    Hard,
    Soft,
    Hypervolume,
}

impl RewardMode {
    pub fn name(self) -> &'static str {
        match self {
            RewardMode::Hard => "hard",
            RewardMode::Soft => "soft",
            RewardMode::Hypervolume => "hypervolume",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    pub mode: RewardMode,
    /// `c` in `c / perplexity` (ENAS: 80).
    pub c: f64,
    /// Reward of an over-budget architecture in `hard` mode.
    pub min_reward: f64,
    /// Exponent for each constraint in `soft` mode, by constraint key (see `constraint_key`);
    /// a constraint not listed uses `soft_default_weight`.
    pub soft_weights: BTreeMap<String, f64>,
    pub soft_default_weight: f64,
    pub soft_zero_within_budget: bool,
    /// Perplexity that bounds the hypervolume box; a model at or above it adds nothing.
    pub reference_perplexity: f64,
}

impl RewardConfig {
    pub fn new(mode: RewardMode, vocab_size: usize) -> RewardConfig {
        RewardConfig {
            mode,
            c: 80.0,
            min_reward: 0.0,
            soft_weights: BTreeMap::new(),
            soft_default_weight: -0.07,
            soft_zero_within_budget: false,
            // A model that guesses uniformly has a perplexity of the vocabulary size.
            reference_perplexity: vocab_size as f64,
        }
    }

    pub fn soft_weight(&self, key: &str) -> f64 {
        self.soft_weights.get(key).copied().unwrap_or(self.soft_default_weight)
    }
}

/// Keys that name the constraints on the command line: `parameters`, `model_size`, `ram`, `latency`, `energy`.
pub fn constraint_key(check_name: &str) -> String {
    check_name.to_lowercase().replace(' ', "_")
}

pub const CONSTRAINT_KEYS: [&str; 5] = ["parameters", "model_size", "ram", "latency", "energy"];

/// `c / perplexity`, or `min_reward` when any budget is not met.
pub fn hard_reward(perplexity: f64, checks: &[BudgetCheck], config: &RewardConfig) -> f64 {
    if checks.iter().all(|c| c.met) {
        config.c / perplexity
    } else {
        config.min_reward
    }
}

/// `c / perplexity` times `(cost / budget)^w` for every constraint.
pub fn soft_reward(perplexity: f64, checks: &[BudgetCheck], config: &RewardConfig) -> f64 {
    let mut reward = config.c / perplexity;
    for check in checks {
        let w = match check.met && config.soft_zero_within_budget {
            true => 0.0,
            false => config.soft_weight(&constraint_key(check.name)),
        };
        if w != 0.0 {
            let ratio = (check.value / check.budget).max(1e-12);
            reward *= ratio.powf(w);
        }
    }
    reward
}

/// Returns the point of an architecture in the normalised objective space of the hypervolume
/// reward: perplexity over the reference, then each cost over its budget, in `checks` order.
pub fn objectives(perplexity: f64, checks: &[BudgetCheck], config: &RewardConfig) -> Vec<f64> {
    let mut point = vec![perplexity / config.reference_perplexity];
    point.extend(checks.iter().map(|c| c.value / c.budget));
    point
}

/// Hypervolume that an architecture adds to the front of `archive` (points from `objectives`).
pub fn hypervolume_reward(perplexity: f64, checks: &[BudgetCheck], archive: &[Vec<f64>], config: &RewardConfig) -> f64 {
    let point = objectives(perplexity, checks, config);
    let reference = vec![1.0; point.len()];
    hypervolume_gain(archive, &point, &reference)
}
