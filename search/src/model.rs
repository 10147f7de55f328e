//! The ENAS recurrent cell and the word-level language model around it, as a tch module.
//!
//! Weights live in a `VarStore` under PyTorch state-dict names (`embedding.weight`,
//! `cell.node0.w_x`, `cell.node0.w_h`, `cell.node{i}.w`, `decoder.bias`, and
//! `decoder.weight` when the decoder is untied), so a checkpoint reads the same from Python.
//! Every matrix has the PyTorch `[out, in]` layout; a node matrix is `[2H, H]` with the gate
//! rows first and the candidate rows second.

use edgenas_core::{Activation, Arch};
use tch::{nn, Kind, Tensor};

/// The language model of one architecture: embedding, cell and decoder.
#[derive(Debug)]
pub struct LanguageModel {
    arch: Arch,
    embedding: Tensor,
    node0_w_x: Tensor,
    node0_w_h: Tensor,
    /// Matrices of nodes 1.., in node order.
    node_w: Vec<Tensor>,
    decoder_weight: Option<Tensor>,
    decoder_bias: Tensor,
    loose_ends: Vec<usize>,
    /// When set, each step rescales a state row whose L2 norm exceeds this.
    max_state_norm: Option<f64>,
}

/// The weight tensors of one architecture, in the layout of the module docs.
pub struct CellWeights {
    /// `[V, H]`
    pub embedding: Tensor,
    /// `[2H, H]`
    pub node0_w_x: Tensor,
    /// `[2H, H]`
    pub node0_w_h: Tensor,
    /// `[2H, H]` for nodes 1.., in node order.
    pub node_w: Vec<Tensor>,
    /// `[V, H]`, only when the decoder is untied.
    pub decoder_weight: Option<Tensor>,
    /// `[V]`
    pub decoder_bias: Tensor,
}

/// Output of a forward pass over a window of `T` steps.
pub struct Forward {
    /// `[T, B, V]` unnormalised next-word scores.
    pub logits: Tensor,
    /// `[B, H]` state after the last step.
    pub state: Tensor,
}

impl LanguageModel {
    /// Creates the variables of `arch` under `root` with their initial values: embedding
    /// uniform in [-0.1, 0.1], node matrices uniform in [-1/sqrt(H), 1/sqrt(H)], bias 0.
    /// Fails when libtorch cannot allocate them.
    pub fn new(root: &nn::Path, arch: &Arch) -> Result<LanguageModel, tch::TchError> {
        let (v, h) = (arch.vocab_size as i64, arch.hidden_size as i64);
        let bound = 1.0 / (h as f64).sqrt();
        let uniform = |lo: f64, hi: f64| nn::Init::Uniform { lo, up: hi };

        let embedding = (root / "embedding").f_var("weight", &[v, h], uniform(-0.1, 0.1))?;
        let cell = root / "cell";
        let node0 = &cell / "node0";
        let node0_w_x = node0.f_var("w_x", &[2 * h, h], uniform(-bound, bound))?;
        let node0_w_h = node0.f_var("w_h", &[2 * h, h], uniform(-bound, bound))?;
        let node_w = (1..arch.num_nodes())
            .map(|i| (&cell / format!("node{i}")).f_var("w", &[2 * h, h], uniform(-bound, bound)))
            .collect::<Result<Vec<_>, _>>()?;
        let decoder = root / "decoder";
        let decoder_weight = match arch.tie_weights {
            true => None,
            false => Some(decoder.f_var("weight", &[v, h], uniform(-0.1, 0.1))?),
        };
        let decoder_bias = decoder.f_var("bias", &[v], nn::Init::Const(0.0))?;

        Ok(LanguageModel::from_weights(
            arch,
            CellWeights {
                embedding,
                node0_w_x,
                node0_w_h,
                node_w,
                decoder_weight,
                decoder_bias,
            },
        ))
    }

    /// Wraps tensors that already contain the weights of `arch`, such as slices of a shared
    /// model's variables. Gradients flow back to whatever the tensors were made from.
    ///
    /// Panics when the shapes do not match `arch`, which is a bug in the caller.
    pub fn from_weights(arch: &Arch, w: CellWeights) -> LanguageModel {
        let (v, h) = (arch.vocab_size as i64, arch.hidden_size as i64);
        assert_eq!(w.embedding.size(), [v, h], "embedding shape");
        assert_eq!(w.node0_w_x.size(), [2 * h, h], "node 0 w_x shape");
        assert_eq!(w.node0_w_h.size(), [2 * h, h], "node 0 w_h shape");
        assert_eq!(w.node_w.len() + 1, arch.num_nodes(), "one matrix per node after node 0");
        assert_eq!(w.decoder_weight.is_none(), arch.tie_weights, "decoder weight iff untied");
        LanguageModel {
            arch: arch.clone(),
            embedding: w.embedding,
            node0_w_x: w.node0_w_x,
            node0_w_h: w.node0_w_h,
            node_w: w.node_w,
            decoder_weight: w.decoder_weight,
            decoder_bias: w.decoder_bias,
            loose_ends: arch.loose_ends(),
            max_state_norm: None,
        }
    }

    /// Rescales, at every step, each state row whose L2 norm exceeds `max_norm` to that norm.
    /// The shared model of a search uses it: cells of ReLU and identity nodes have no bound on
    /// their state and, with weights shaped by other cells, can blow up within a window.
    pub fn with_max_state_norm(mut self, max_norm: f64) -> LanguageModel {
        self.max_state_norm = Some(max_norm);
        self
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Returns a zero state `[batch, H]`.
    pub fn zero_state(&self, batch: i64) -> Tensor {
        Tensor::zeros([batch, self.arch.hidden_size as i64], (Kind::Float, self.embedding.device()))
    }

    /// Runs the model over `tokens` (`[T, B]` int64) from `state` (`[B, H]`).
    ///
    /// With `train` set, the dropouts of the architecture apply, as ENAS uses them. Embedding
    /// dropout removes whole rows of the table for this window. The input, hidden and output
    /// dropouts draw one mask per sequence that every step shares (variational dropout, Gal
    /// and Ghahramani 2016). All masks use inverted scaling, so inference needs no rescaling.
    pub fn forward(&self, tokens: &Tensor, state: &Tensor, train: bool) -> Forward {
        let (steps, batch) = tokens.size2().expect("tokens must be [T, B]");
        let h = self.arch.hidden_size as i64;
        let dropout = if train { self.arch.dropout } else { Default::default() };

        let table = match dropout.embedding {
            p if p > 0.0 => &self.embedding * row_mask(self.arch.vocab_size as i64, p, &self.embedding),
            _ => self.embedding.shallow_clone(),
        };
        // [T, B, H]
        let mut x = Tensor::embedding(&table, tokens, -1, false, false);
        if dropout.input > 0.0 {
            x = &x * sequence_mask(&[1, batch, h], dropout.input, &x);
        }
        // One matmul for every step's input projection: [T, B, 2H].
        let x_proj = x.matmul(&self.node0_w_x.tr());
        let hidden_mask =
            (dropout.hidden > 0.0).then(|| sequence_mask(&[batch, h], dropout.hidden, &x));

        let mut state = state.shallow_clone();
        let mut outputs = Vec::with_capacity(steps as usize);
        for t in 0..steps {
            let read = match &hidden_mask {
                Some(mask) => &state * mask,
                None => state.shallow_clone(),
            };
            let pre0 = x_proj.get(t) + read.mm(&self.node0_w_h.tr());
            state = self.cell_after_node0(&pre0, &state);
            if let Some(max_norm) = self.max_state_norm {
                let norm = state.norm_scalaropt_dim(2, [1], true);
                state = &state * (norm.clamp_min(max_norm) / max_norm).reciprocal();
            }
            outputs.push(state.shallow_clone());
        }

        // [T, B, H]
        let mut out = Tensor::stack(&outputs, 0);
        if dropout.output > 0.0 {
            out = &out * sequence_mask(&[1, batch, h], dropout.output, &out);
        }
        let decoder = self.decoder_weight.as_ref().unwrap_or(&self.embedding);
        let logits = out.matmul(&decoder.tr()) + &self.decoder_bias;
        Forward { logits, state }
    }

    /// Computes the cell output `[B, H]` from node 0's pre-activation `[B, 2H]` and the
    /// previous state, running nodes 1.. and averaging the loose ends.
    fn cell_after_node0(&self, pre0: &Tensor, previous: &Tensor) -> Tensor {
        let mut nodes: Vec<Tensor> = Vec::with_capacity(self.arch.num_nodes());
        nodes.push(highway(pre0, previous, self.arch.nodes[0].activation));
        for (i, w) in self.node_w.iter().enumerate() {
            let node = &self.arch.nodes[i + 1];
            let input = &nodes[node.input.expect("validated: node i > 0 has an input")];
            let pre = input.mm(&w.tr());
            let out = highway(&pre, input, node.activation);
            nodes.push(out);
        }
        let mut sum = nodes[self.loose_ends[0]].shallow_clone();
        for &i in &self.loose_ends[1..] {
            sum += &nodes[i];
        }
        if self.loose_ends.len() == 1 {
            sum
        } else {
            sum / self.loose_ends.len() as f64
        }
    }
}

/// Computes the highway node `c * f(candidate) + (1 - c) * carry`, written as
/// `carry + c * (f(candidate) - carry)`, with `c = sigmoid(gate)` and `pre = [gate | candidate]`.
fn highway(pre: &Tensor, carry: &Tensor, activation: Activation) -> Tensor {
    let parts = pre.chunk(2, 1);
    let gate = parts[0].sigmoid();
    let candidate = activate(&parts[1], activation);
    carry + gate * (candidate - carry)
}

pub fn activate(x: &Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::Tanh => x.tanh(),
        Activation::Relu => x.relu(),
        Activation::Identity => x.shallow_clone(),
        Activation::Sigmoid => x.sigmoid(),
    }
}

/// Draws a `[rows, 1]` mask that keeps each row with probability `1 - p`, scaled by `1 / (1 - p)`.
fn row_mask(rows: i64, p: f64, like: &Tensor) -> Tensor {
    sequence_mask(&[rows, 1], p, like)
}

/// Draws a Bernoulli keep-mask of `shape` with inverted scaling.
fn sequence_mask(shape: &[i64], p: f64, like: &Tensor) -> Tensor {
    let keep = 1.0 - p;
    Tensor::empty(shape, (Kind::Float, like.device())).bernoulli_float_(keep) / keep
}
