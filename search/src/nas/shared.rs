//! The shared model: one set of weights from which every cell in the search space is cut.
//!
//! As in ENAS, a node's matrix is shared by every architecture that puts that node there with
//! that activation. Node `i` has one `[2, Hmax, Hmax]` variable (gate and candidate halves) per
//! activation, and node 0 has one for `x_t` and one for `h_{t-1}` per activation.
//! Beyond ENAS, a cell of hidden size `h < Hmax` uses the top-left `h x h` corner of each
//! half and the first `h` columns of the embedding, so one model trains every size.
//!
//! Variable names: `embedding.weight` `[V, Hmax]`, `decoder.bias` `[V]`,
//! `cell.node0.{act}.w_x`, `cell.node0.{act}.w_h` and `cell.node{i}.{act}.w`, each
//! `[2, Hmax, Hmax]`.

use edgenas_core::{Activation, Arch};
use tch::{nn, Device, Kind, Tensor};

use super::space::SearchSpace;
use crate::model::{CellWeights, LanguageModel};

/// Largest L2 norm of a state row in the shared model, the bound that the PyTorch port of ENAS
/// (carpedm20/ENAS-pytorch) applies at every step. Without it, a cell of unbounded activations
/// diverges while other cells shape its weights.
pub const MAX_STATE_NORM: f64 = 25.0;

pub struct SharedModel {
    pub vs: nn::VarStore,
    space: SearchSpace,
    embedding: Tensor,
    decoder_bias: Tensor,
    /// `[activation]` for node 0's input matrix.
    node0_w_x: Vec<Tensor>,
    /// `[activation]` for node 0's state matrix.
    node0_w_h: Vec<Tensor>,
    /// `[node - 1][activation]` for nodes 1..max_nodes.
    node_w: Vec<Vec<Tensor>>,
}

impl SharedModel {
    /// Creates the shared variables with the same initial ranges as a single model of the
    /// largest size. Draws from libtorch's generator, so seed it first.
    pub fn new(space: &SearchSpace) -> Result<SharedModel, tch::TchError> {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let (v, h) = (space.vocab_size as i64, space.max_hidden() as i64);
        let bound = 1.0 / (h as f64).sqrt();
        let uniform = |lo: f64, up: f64| nn::Init::Uniform { lo, up };

        let embedding = (&root / "embedding").f_var("weight", &[v, h], uniform(-0.1, 0.1))?;
        let decoder_bias = (&root / "decoder").f_var("bias", &[v], nn::Init::Const(0.0))?;
        let cell = &root / "cell";
        let mut node0_w_x = Vec::new();
        let mut node0_w_h = Vec::new();
        for act in Activation::ALL {
            let path = &cell / "node0" / act.name();
            node0_w_x.push(path.f_var("w_x", &[2, h, h], uniform(-bound, bound))?);
            node0_w_h.push(path.f_var("w_h", &[2, h, h], uniform(-bound, bound))?);
        }
        let mut node_w = Vec::new();
        for i in 1..space.max_nodes {
            let per_act = Activation::ALL
                .iter()
                .map(|act| (&cell / format!("node{i}") / act.name()).f_var("w", &[2, h, h], uniform(-bound, bound)))
                .collect::<Result<Vec<_>, _>>()?;
            node_w.push(per_act);
        }
        Ok(SharedModel {
            vs,
            space: space.clone(),
            embedding,
            decoder_bias,
            node0_w_x,
            node0_w_h,
            node_w,
        })
    }

    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// Number of shared parameters.
    pub fn num_parameters(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    /// Returns the model of `arch`, made of slices of the shared variables, so training it
    /// trains them. Panics when `arch` is outside the space, which is a bug in the caller.
    pub fn model(&self, arch: &Arch) -> LanguageModel {
        assert!(self.space.contains(arch), "{} is outside the search space", arch.summary());
        let h = arch.hidden_size as i64;
        let corner = |w: &Tensor| w.narrow(1, 0, h).narrow(2, 0, h).reshape([2 * h, h]);
        let act = |i: usize| activation_index(arch.nodes[i].activation);
        let weights = CellWeights {
            embedding: self.embedding.narrow(1, 0, h),
            node0_w_x: corner(&self.node0_w_x[act(0)]),
            node0_w_h: corner(&self.node0_w_h[act(0)]),
            node_w: (1..arch.num_nodes()).map(|i| corner(&self.node_w[i - 1][act(i)])).collect(),
            decoder_weight: None,
            decoder_bias: self.decoder_bias.shallow_clone(),
        };
        LanguageModel::from_weights(arch, weights).with_max_state_norm(MAX_STATE_NORM)
    }

    /// Returns a zero state of the largest size, `[batch, Hmax]`.
    pub fn zero_state(&self, batch: i64) -> Tensor {
        Tensor::zeros([batch, self.space.max_hidden() as i64], (Kind::Float, Device::Cpu))
    }
}

pub fn activation_index(act: Activation) -> usize {
    Activation::ALL
        .iter()
        .position(|&a| a == act)
        .expect("ALL lists every activation")
}

/// Runs one SGD step on the variables that have a gradient: clips their joint L2 norm to `clip`,
/// adds `weight_decay` times the weights, steps by `lr`, and zeroes the gradients. A variable
/// keeps a zeroed gradient once it has had one, so weight decay also shrinks the weights of
/// choices the window did not use.
///
/// libtorch's own optimizer expects a gradient on every variable, but a window trains only the
/// slices one architecture uses, so this step skips variables without a gradient.
pub fn sgd_step(vs: &nn::VarStore, lr: f64, clip: f64, weight_decay: f64) {
    tch::no_grad(|| {
        let mut vars = vs.trainable_variables();
        vars.retain(|v| v.grad().defined());
        if vars.is_empty() {
            return;
        }
        let sq: f64 = vars.iter().map(|v| v.grad().square().sum(Kind::Double).double_value(&[])).sum();
        let norm = sq.sqrt();
        let scale = if norm > clip { clip / (norm + 1e-6) } else { 1.0 };
        for v in vars.iter_mut() {
            let mut g = v.grad();
            let mut update = &g * scale;
            if weight_decay > 0.0 {
                update += &*v * weight_decay;
            }
            let _ = v.g_add_(&(update * -lr));
            let _ = g.zero_();
        }
    });
}
