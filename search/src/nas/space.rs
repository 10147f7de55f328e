//! The search space: ENAS recurrent cells, extended with the hidden size and the node count.
//!
//! An architecture is a sequence of decisions, taken in this order: the hidden size (from a
//! list), the node count (from `min_nodes` to `max_nodes`), node 0's activation, then for each
//! later node `i` its input node `j < i` and its activation. Every sequence of decisions is a
//! valid DAG, so no sample is ever rejected.

use edgenas_core::{Activation, Arch, Dropout};
use serde::{Deserialize, Serialize};

use super::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    pub vocab_size: usize,
    /// Hidden sizes to choose from, ascending. The embedding is tied, so this is also the
    /// embedding width.
    pub hidden_sizes: Vec<usize>,
    pub min_nodes: usize,
    pub max_nodes: usize,
    /// Dropout used while the shared model trains and written into the chosen `arch.json`.
    pub dropout: Dropout,
}

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("--hidden-sizes is empty; give at least one size, such as 64,128,192")]
    NoHiddenSizes,
    #[error("--hidden-sizes has {0}; every hidden size must be at least 1")]
    ZeroHidden(usize),
    #[error("--hidden-sizes lists {0} twice; list each size once")]
    DuplicateHidden(usize),
    #[error("--min-nodes is {0}; a cell needs at least 1 node")]
    ZeroNodes(usize),
    #[error("--min-nodes {min} is above --max-nodes {max}; lower --min-nodes or raise --max-nodes")]
    NodeRange { min: usize, max: usize },
    #[error("--max-nodes is {0}; use at most 64 nodes")]
    TooManyNodes(usize),
}

impl SearchSpace {
    /// Sorts the hidden sizes and checks every setting.
    pub fn new(
        vocab_size: usize,
        mut hidden_sizes: Vec<usize>,
        min_nodes: usize,
        max_nodes: usize,
        dropout: Dropout,
    ) -> Result<SearchSpace, SpaceError> {
        if hidden_sizes.is_empty() {
            return Err(SpaceError::NoHiddenSizes);
        }
        hidden_sizes.sort_unstable();
        if let Some(&0) = hidden_sizes.first() {
            return Err(SpaceError::ZeroHidden(0));
        }
        if let Some(w) = hidden_sizes.windows(2).find(|w| w[0] == w[1]) {
            return Err(SpaceError::DuplicateHidden(w[0]));
        }
        if min_nodes == 0 {
            return Err(SpaceError::ZeroNodes(min_nodes));
        }
        if min_nodes > max_nodes {
            return Err(SpaceError::NodeRange {
                min: min_nodes,
                max: max_nodes,
            });
        }
        if max_nodes > 64 {
            return Err(SpaceError::TooManyNodes(max_nodes));
        }
        Ok(SearchSpace {
            vocab_size,
            hidden_sizes,
            min_nodes,
            max_nodes,
            dropout,
        })
    }

    pub fn max_hidden(&self) -> usize {
        *self.hidden_sizes.last().expect("validated: at least one hidden size")
    }

    /// Number of node counts to choose from.
    pub fn node_choices(&self) -> usize {
        self.max_nodes - self.min_nodes + 1
    }

    /// Number of distinct architectures in the space.
    pub fn size(&self) -> f64 {
        let acts = Activation::ALL.len() as f64;
        let per_count = |n: usize| (1..n).fold(acts, |total, i| total * i as f64 * acts);
        let cells: f64 = (self.min_nodes..=self.max_nodes).map(per_count).sum();
        cells * self.hidden_sizes.len() as f64
    }

    /// Builds the architecture of a decision sequence. `inputs[i - 1]` is node `i`'s input.
    pub fn arch(&self, hidden: usize, activations: &[Activation], inputs: &[usize]) -> Arch {
        let rest: Vec<(usize, Activation)> = inputs
            .iter()
            .copied()
            .zip(activations[1..].iter().copied())
            .collect();
        Arch::new(self.vocab_size, hidden, activations[0], &rest, self.dropout)
            .expect("decisions within the space always form a valid cell")
    }

    /// Draws every decision uniformly, as random search does.
    pub fn sample_uniform(&self, rng: &mut Rng) -> Arch {
        let hidden = self.hidden_sizes[rng.below(self.hidden_sizes.len())];
        let nodes = self.min_nodes + rng.below(self.node_choices());
        let mut activations = vec![Activation::ALL[rng.below(4)]];
        let mut inputs = Vec::with_capacity(nodes - 1);
        for i in 1..nodes {
            inputs.push(rng.below(i));
            activations.push(Activation::ALL[rng.below(4)]);
        }
        self.arch(hidden, &activations, &inputs)
    }

    /// Returns whether `arch` lies in the space.
    pub fn contains(&self, arch: &Arch) -> bool {
        arch.vocab_size == self.vocab_size
            && self.hidden_sizes.contains(&arch.hidden_size)
            && (self.min_nodes..=self.max_nodes).contains(&arch.num_nodes())
            && arch.tie_weights
            && arch.validate().is_ok()
    }
}
