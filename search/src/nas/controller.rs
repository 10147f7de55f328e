//! The ENAS controller: an LSTM policy that samples architectures decision by decision, and its
//! REINFORCE update.
//!
//! Each decision feeds the LSTM the embedding of the previous choice, then reads a softmax off
//! the LSTM output. The hidden size, the node count and each activation have a linear head.
//! Node `i`'s input is an attention over the outputs recorded after nodes `0..i` (Pham et al.
//! 2018, Appendix). Logits are divided by a temperature and squashed as `C * tanh(logits)`.
//!
//! Adam is written here rather than taken from libtorch so that its moments can be saved in a
//! checkpoint and restored exactly. As in the ENAS code, it uses `beta1 = 0` and `eps = 1e-3`.

use std::collections::HashMap;
use std::path::Path;

use edgenas_core::{Activation, Arch};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::rng::Rng;
use super::space::SearchSpace;

const ADAM_BETA1: f64 = 0.0;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Units of the LSTM (ENAS: 100).
    pub lstm_size: usize,
    /// Logits are divided by this before the tanh (ENAS: 5).
    pub temperature: f64,
    /// `C` in `C * tanh(logits)`; 0 turns the squashing off (ENAS: 2.5).
    pub tanh_constant: f64,
    /// Weight of the policy's entropy in the loss, a bonus for exploring (ENAS: 1e-4).
    pub entropy_weight: f64,
    /// Decay of the exponential moving average of rewards used as the baseline.
    pub baseline_decay: f64,
    /// Adam learning rate.
    pub lr: f64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            lstm_size: 100,
            temperature: 5.0,
            tanh_constant: 2.5,
            entropy_weight: 1e-4,
            baseline_decay: 0.95,
            lr: 3.5e-4,
        }
    }
}

/// Rule for taking a decision from its distribution.
pub enum Pick<'a> {
    /// Draw from the distribution.
    Sample(&'a mut Rng),
    /// Take the most likely choice.
    Greedy,
}

/// An architecture with the log-probability and entropy of the decisions that made it. Both
/// tensors carry gradients when sampling ran with gradients enabled.
pub struct Sampled {
    pub arch: Arch,
    pub log_prob: Tensor,
    pub entropy: Tensor,
}

pub struct Controller {
    space: SearchSpace,
    config: ControllerConfig,
    /// Variables in creation order, with their checkpoint names.
    vars: Vec<(String, Tensor)>,
    adam: Vec<(Tensor, Tensor)>,
    adam_steps: u64,
    _vs: nn::VarStore,
}

/// Indices of the variables in `Controller::vars`.
mod var {
    pub const EMBED: usize = 0;
    pub const LSTM_W: usize = 1;
    pub const LSTM_B: usize = 2;
    pub const HEAD_HIDDEN: usize = 3;
    pub const HEAD_NODES: usize = 4;
    pub const HEAD_ACT: usize = 5;
    pub const ATTN_ANCHOR: usize = 6;
    pub const ATTN_QUERY: usize = 7;
    pub const ATTN_V: usize = 8;
}

impl Controller {
    /// Creates a controller with weights uniform in [-0.1, 0.1], as ENAS initialises it. Draws
    /// from libtorch's generator, so seed it first.
    pub fn new(space: &SearchSpace, config: &ControllerConfig) -> Controller {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let l = config.lstm_size as i64;
        let tokens = 1 + space.hidden_sizes.len() + space.node_choices() + Activation::ALL.len() + space.max_nodes;
        let shapes: [(&str, Vec<i64>); 9] = [
            ("embedding", vec![tokens as i64, l]),
            ("lstm.weight", vec![4 * l, 2 * l]),
            ("lstm.bias", vec![4 * l]),
            ("head.hidden_size", vec![space.hidden_sizes.len() as i64, l]),
            ("head.num_nodes", vec![space.node_choices() as i64, l]),
            ("head.activation", vec![Activation::ALL.len() as i64, l]),
            ("attention.anchor", vec![l, l]),
            ("attention.query", vec![l, l]),
            ("attention.v", vec![l]),
        ];
        let init = nn::Init::Uniform { lo: -0.1, up: 0.1 };
        let vars: Vec<(String, Tensor)> = shapes
            .into_iter()
            .map(|(name, shape)| (name.to_string(), root.var(&name.replace('.', "_"), &shape, init)))
            .collect();
        let adam = vars.iter().map(|(_, v)| (v.zeros_like(), v.zeros_like())).collect();
        Controller {
            space: space.clone(),
            config: config.clone(),
            vars,
            adam,
            adam_steps: 0,
            _vs: vs,
        }
    }

    fn v(&self, index: usize) -> &Tensor {
        &self.vars[index].1
    }

    fn token(&self, id: usize) -> Tensor {
        self.v(var::EMBED).narrow(0, id as i64, 1)
    }

    fn lstm(&self, x: &Tensor, state: &(Tensor, Tensor)) -> (Tensor, Tensor) {
        let (h, c) = state;
        let gates = Tensor::cat(&[x, h], 1).matmul(&self.v(var::LSTM_W).tr()) + self.v(var::LSTM_B);
        let parts = gates.chunk(4, 1);
        let c = parts[1].sigmoid() * c + parts[0].sigmoid() * parts[2].tanh();
        let h = parts[3].sigmoid() * c.tanh();
        (h, c)
    }

    /// Takes one decision from raw `logits` `[1, k]`; returns the choice, its log-probability
    /// and the distribution's entropy.
    fn decide(&self, logits: Tensor, pick: &mut Pick) -> (usize, Tensor, Tensor) {
        let mut logits = logits / self.config.temperature;
        if self.config.tanh_constant > 0.0 {
            logits = logits.tanh() * self.config.tanh_constant;
        }
        let log_p = logits.log_softmax(-1, Kind::Float).view([-1]);
        let p = log_p.exp();
        let probs: Vec<f64> = Vec::try_from(p.detach().to_kind(Kind::Double)).expect("a 1-D CPU tensor");
        let choice = match pick {
            Pick::Sample(rng) => rng.categorical(&probs),
            Pick::Greedy => argmax(&probs),
        };
        let entropy = -(&p * &log_p).sum(Kind::Float);
        (choice, log_p.get(choice as i64), entropy)
    }

    /// Samples one architecture. Run it inside `tch::no_grad` when no update follows.
    pub fn sample(&self, mut pick: Pick) -> Sampled {
        let l = self.config.lstm_size as i64;
        let space = &self.space;
        let node_base = 1 + space.hidden_sizes.len();
        let act_base = node_base + space.node_choices();
        let input_base = act_base + Activation::ALL.len();

        let mut state = (Tensor::zeros([1, l], (Kind::Float, Device::Cpu)), Tensor::zeros([1, l], (Kind::Float, Device::Cpu)));
        let mut log_probs = Vec::new();
        let mut entropies = Vec::new();
        let mut step = |ctl: &Controller, state: &mut (Tensor, Tensor), x: Tensor, head: Option<usize>, anchors: &[Tensor], pick: &mut Pick| {
            *state = ctl.lstm(&x, state);
            let logits = match head {
                Some(index) => state.0.matmul(&ctl.v(index).tr()),
                None => {
                    let query = state.0.matmul(&ctl.v(var::ATTN_QUERY).tr());
                    let keys = Tensor::cat(anchors, 0);
                    (keys + query).tanh().matmul(ctl.v(var::ATTN_V)).view([1, -1])
                }
            };
            let (choice, lp, ent) = ctl.decide(logits, pick);
            log_probs.push(lp);
            entropies.push(ent);
            choice
        };

        let k_hidden = step(self, &mut state, self.token(0), Some(var::HEAD_HIDDEN), &[], &mut pick);
        let k_nodes = step(self, &mut state, self.token(1 + k_hidden), Some(var::HEAD_NODES), &[], &mut pick);
        let nodes = space.min_nodes + k_nodes;
        let mut x = self.token(node_base + k_nodes);
        let mut anchors: Vec<Tensor> = Vec::with_capacity(nodes);
        let mut activations = Vec::with_capacity(nodes);
        let mut inputs = Vec::with_capacity(nodes.saturating_sub(1));
        for i in 0..nodes {
            if i > 0 {
                let j = step(self, &mut state, x, None, &anchors, &mut pick);
                inputs.push(j);
                x = self.token(input_base + j);
            }
            let a = step(self, &mut state, x, Some(var::HEAD_ACT), &[], &mut pick);
            activations.push(Activation::ALL[a]);
            x = self.token(act_base + a);
            anchors.push(state.0.matmul(&self.v(var::ATTN_ANCHOR).tr()));
        }

        Sampled {
            arch: space.arch(space.hidden_sizes[k_hidden], &activations, &inputs),
            log_prob: Tensor::stack(&log_probs, 0).sum(Kind::Float),
            entropy: Tensor::stack(&entropies, 0).sum(Kind::Float),
        }
    }

    /// Runs one REINFORCE step on a sample drawn with gradients: minimises
    /// `-advantage * log_prob - entropy_weight * entropy` with Adam.
    pub fn reinforce(&mut self, sampled: &Sampled, advantage: f64) {
        let loss = &sampled.log_prob * (-advantage) - &sampled.entropy * self.config.entropy_weight;
        loss.backward();
        self.adam_steps += 1;
        let t = self.adam_steps as i32;
        let (c1, c2) = (1.0 - ADAM_BETA1.powi(t), 1.0 - ADAM_BETA2.powi(t));
        tch::no_grad(|| {
            for ((_, p), (m, v)) in self.vars.iter_mut().zip(self.adam.iter_mut()) {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                *m = &*m * ADAM_BETA1 + &g * (1.0 - ADAM_BETA1);
                *v = &*v * ADAM_BETA2 + g.square() * (1.0 - ADAM_BETA2);
                let step = (&*m / c1) / ((&*v / c2).sqrt() + ADAM_EPS) * self.config.lr;
                let _ = p.g_sub_(&step);
                let _ = g.zero_();
            }
        });
    }

    /// Probability of each activation at every node decision, averaged over `samples` greedy
    /// paths; used in tests and logs to see what the policy prefers.
    pub fn activation_frequencies(&self, rng: &mut Rng, samples: usize) -> [f64; 4] {
        let mut counts = [0f64; 4];
        let mut total = 0f64;
        tch::no_grad(|| {
            for _ in 0..samples {
                let s = self.sample(Pick::Sample(rng));
                for node in &s.arch.nodes {
                    counts[super::shared::activation_index(node.activation)] += 1.0;
                    total += 1.0;
                }
            }
        });
        counts.map(|c| c / total.max(1.0))
    }

    /// Writes the weights and Adam's moments as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<(), tch::TchError> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for ((name, p), (m, v)) in self.vars.iter().zip(&self.adam) {
            named.push((name.clone(), p.detach()));
            named.push((format!("adam.m.{name}"), m.shallow_clone()));
            named.push((format!("adam.v.{name}"), v.shallow_clone()));
        }
        named.push(("adam.steps".into(), Tensor::from_slice(&[self.adam_steps as i64])));
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}.safetensors",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("controller"),
            std::process::id()
        ));
        Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| tch::TchError::FileFormat(format!("{}: {e}", path.display())))
    }

    /// Restores what `save` wrote. Fails, naming the tensor, when one is missing or of
    /// another shape (a checkpoint of another search space or LSTM size).
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| crate::checkpoint::first_line(&e.to_string()))?
            .into_iter()
            .collect();
        let get = |name: &str, like: &Tensor| -> Result<Tensor, String> {
            let t = tensors.get(name).ok_or_else(|| format!("tensor {name} is missing"))?;
            if t.size() != like.size() {
                return Err(format!("tensor {name} has shape {:?}, expected {:?}", t.size(), like.size()));
            }
            Ok(t.shallow_clone())
        };
        tch::no_grad(|| -> Result<(), String> {
            for ((name, p), (m, v)) in self.vars.iter_mut().zip(self.adam.iter_mut()) {
                p.copy_(&get(name, p)?);
                *m = get(&format!("adam.m.{name}"), m)?;
                *v = get(&format!("adam.v.{name}"), v)?;
            }
            Ok(())
        })?;
        let steps = tensors.get("adam.steps").ok_or("tensor adam.steps is missing")?;
        self.adam_steps = steps.int64_value(&[0]) as u64;
        Ok(())
    }
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
