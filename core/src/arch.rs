//! The ENAS recurrent cell as a data structure, read from and written to `arch.json`.
//!
//! A cell has `nodes.len()` nodes. Node 0 reads the word embedding `x_t` and the previous
//! state `h_{t-1}`; node `i > 0` reads the output of one earlier node `nodes[i].input < i`.
//! Every node has a highway gate:
//!
//! ```text
//! node 0:   c = sigmoid(W_xc x + W_hc h_{t-1}),  h_0 = c * f(W_xh x + W_hh h_{t-1}) + (1 - c) * h_{t-1}
//! node i:   c = sigmoid(W_c h_j),                h_i = c * f(W_h h_j)                + (1 - c) * h_j
//! ```
//!
//! The cell output `h_t` is the mean of the loose ends, the nodes that no other node reads.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Version of the `arch.json` layout written by this crate.
pub const ARCH_VERSION: u32 = 1;

/// Largest parameter count accepted (2^40, 4 TB as float32), so every size and cost derived
/// from an architecture fits in 64 bits.
pub const MAX_PARAMETERS: u64 = 1 << 40;

/// Activation of one node, as in the ENAS search space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Identity,
    Sigmoid,
}

impl Activation {
    /// All activations in the order the search space enumerates them.
    pub const ALL: [Activation; 4] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Identity,
        Activation::Sigmoid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One node of the cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Index of the earlier node this node reads; absent for node 0, which reads `x_t` and
    /// `h_{t-1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    pub activation: Activation,
}

/// Dropout probabilities used in training, as ENAS applies them. All are 0 at inference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    /// Probability of dropping a whole word type from the embedding table in a batch.
    pub embedding: f64,
    /// Dropout on the embedded input `x_t`, one mask per sequence (variational).
    pub input: f64,
    /// Dropout on the previous state `h_{t-1}` as node 0 reads it, one mask per sequence.
    pub hidden: f64,
    /// Dropout on the cell output before the decoder, one mask per sequence.
    pub output: f64,
}

impl Dropout {
    pub const NONE: Dropout = Dropout {
        embedding: 0.0,
        input: 0.0,
        hidden: 0.0,
        output: 0.0,
    };
}

impl Default for Dropout {
    fn default() -> Self {
        Dropout::NONE
    }
}

/// A complete word-level language model architecture: vocabulary size, hidden size and cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    pub version: u32,
    pub vocab_size: usize,
    /// Width of the embedding, of every node and of the recurrent state.
    pub hidden_size: usize,
    pub nodes: Vec<Node>,
    /// Whether the decoder reuses the embedding table (Inan et al. 2017, Press and Wolf 2017).
    pub tie_weights: bool,
    #[serde(default)]
    pub dropout: Dropout,
}

/// An `arch.json` that cannot be read or describes no valid cell.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error("cannot read architecture file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write architecture file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid architecture file {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    InvalidFile {
        path: String,
        source: Box<ArchError>,
    },
    #[error("unsupported arch.json version {found}; this build reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("the cell has no nodes; add at least node 0 (it reads the embedding and the state)")]
    NoNodes,
    #[error("node 0 reads the embedding and the previous state, so it takes no \"input\" (found {found})")]
    FirstNodeInput { found: usize },
    #[error("node {node} has no \"input\"; give the index of an earlier node (0 to {max})")]
    MissingInput { node: usize, max: usize },
    #[error("node {node} reads node {input}, which is not earlier; an input must be between 0 and {max}")]
    InputNotEarlier { node: usize, input: usize, max: usize },
    #[error("{field} is {value}; it must be at least 1")]
    ZeroSize { field: &'static str, value: usize },
    #[error(
        "vocab_size {vocab_size}, hidden_size {hidden_size} and {nodes} nodes give more than \
         {MAX_PARAMETERS} parameters; choose smaller sizes"
    )]
    TooLarge {
        vocab_size: usize,
        hidden_size: usize,
        nodes: usize,
    },
    #[error("dropout.{field} is {value}; a dropout probability must be in [0, 1)")]
    DropoutRange { field: &'static str, value: f64 },
}

impl Arch {
    /// Builds an architecture from `(input, activation)` pairs for nodes 1.., with node 0's
    /// activation given separately, and validates it.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        first: Activation,
        rest: &[(usize, Activation)],
        dropout: Dropout,
    ) -> Result<Arch, ArchError> {
        let mut nodes = vec![Node {
            input: None,
            activation: first,
        }];
        nodes.extend(rest.iter().map(|&(input, activation)| Node {
            input: Some(input),
            activation,
        }));
        let arch = Arch {
            version: ARCH_VERSION,
            vocab_size,
            hidden_size,
            nodes,
            tie_weights: true,
            dropout,
        };
        arch.validate()?;
        Ok(arch)
    }

    /// Checks the version, sizes, that every node reads an earlier node, and dropout ranges.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.version != ARCH_VERSION {
            return Err(ArchError::Version {
                found: self.version,
                expected: ARCH_VERSION,
            });
        }
        if self.vocab_size == 0 {
            return Err(ArchError::ZeroSize {
                field: "vocab_size",
                value: 0,
            });
        }
        if self.hidden_size == 0 {
            return Err(ArchError::ZeroSize {
                field: "hidden_size",
                value: 0,
            });
        }
        let Some(first) = self.nodes.first() else {
            return Err(ArchError::NoNodes);
        };
        if let Some(found) = first.input {
            return Err(ArchError::FirstNodeInput { found });
        }
        for (node, n) in self.nodes.iter().enumerate().skip(1) {
            match n.input {
                None => return Err(ArchError::MissingInput { node, max: node - 1 }),
                Some(input) if input >= node => {
                    return Err(ArchError::InputNotEarlier {
                        node,
                        input,
                        max: node - 1,
                    })
                }
                Some(_) => {}
            }
        }
        if self.checked_num_parameters().is_none_or(|p| p > MAX_PARAMETERS) {
            return Err(ArchError::TooLarge {
                vocab_size: self.vocab_size,
                hidden_size: self.hidden_size,
                nodes: self.nodes.len(),
            });
        }
        let d = &self.dropout;
        for (field, value) in [
            ("embedding", d.embedding),
            ("input", d.input),
            ("hidden", d.hidden),
            ("output", d.output),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(ArchError::DropoutRange { field, value });
            }
        }
        Ok(())
    }

    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Indices of the nodes that no other node reads; the cell output is their mean.
    pub fn loose_ends(&self) -> Vec<usize> {
        let mut read = vec![false; self.nodes.len()];
        for n in &self.nodes {
            if let Some(i) = n.input {
                read[i] = true;
            }
        }
        (0..self.nodes.len()).filter(|&i| !read[i]).collect()
    }

    /// Number of trainable parameters: embedding `V x H`, decoder bias `V`, an untied decoder
    /// `V x H`, node 0's two `2H x H` matrices and one `2H x H` matrix per later node.
    pub fn num_parameters(&self) -> usize {
        let (v, h) = (self.vocab_size, self.hidden_size);
        let decoder = if self.tie_weights { 0 } else { v * h };
        v * h + v + decoder + 2 * h * h * (self.nodes.len() + 1)
    }

    /// `num_parameters` in u64 arithmetic, or `None` on overflow.
    fn checked_num_parameters(&self) -> Option<u64> {
        let v = self.vocab_size as u64;
        let h = self.hidden_size as u64;
        let vh = v.checked_mul(h)?;
        let decoder = if self.tie_weights { 0 } else { vh };
        let nodes = (self.nodes.len() as u64).checked_add(1)?;
        let cell = h.checked_mul(h)?.checked_mul(2)?.checked_mul(nodes)?;
        vh.checked_add(v)?.checked_add(decoder)?.checked_add(cell)
    }

    /// Reads and validates an `arch.json`.
    pub fn load(path: &Path) -> Result<Arch, ArchError> {
        let display_path = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ArchError::Read {
            path: display_path.clone(),
            source,
        })?;
        let arch: Arch = serde_json::from_str(&text).map_err(|source| ArchError::Parse {
            path: display_path.clone(),
            source,
        })?;
        arch.validate().map_err(|source| ArchError::InvalidFile {
            path: display_path,
            source: Box::new(source),
        })?;
        Ok(arch)
    }

    /// Writes `arch.json` through a temporary file and a rename, so a stop never leaves a
    /// half-written file.
    pub fn save(&self, path: &Path) -> Result<(), ArchError> {
        let text = serde_json::to_string_pretty(self).expect("an Arch always serializes");
        crate::write_atomic(path, format!("{text}\n").as_bytes()).map_err(|source| {
            ArchError::Write {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// One-line summary such as `h=128 tanh | 0>relu 1>identity` for logs and reports.
    pub fn summary(&self) -> String {
        let mut s = format!("h={} {}", self.hidden_size, self.nodes[0].activation);
        for n in &self.nodes[1..] {
            s.push_str(&format!(" {}>{}", n.input.unwrap_or(0), n.activation));
        }
        s
    }
}
