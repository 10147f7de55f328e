//! A plain Rust forward pass of the cell, the reference that the exported graphs are checked
//! against. It shares no code with the ONNX writer and computes in float64 from the float32
//! weights, as the PyTorch fixtures of `search/tests/fixtures/` do.

use edgenas_core::{Activation, Arch};

use crate::checkpoint::{Matrix, Weights};
use crate::ExportError;

/// One step of the model on a batch: `logits` is `[B, V]` and `state` is `[B, H]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    pub logits: Vec<f32>,
    pub state: Vec<f32>,
}

/// The language model of a checkpoint, one recurrent step at a time.
pub struct Reference<'a> {
    arch: &'a Arch,
    weights: &'a Weights,
    loose_ends: Vec<usize>,
}

/// Outputs of every node and the cell output `h_t` for one sequence.
pub struct CellTrace {
    pub nodes: Vec<Vec<f64>>,
    pub output: Vec<f64>,
}

impl<'a> Reference<'a> {
    pub fn new(arch: &'a Arch, weights: &'a Weights) -> Reference<'a> {
        Reference {
            arch,
            weights,
            loose_ends: arch.loose_ends(),
        }
    }

    /// Runs one step for a batch: `tokens` is `[B]` and `state` is `[B, H]`, row-major.
    pub fn step(&self, tokens: &[i64], state: &[f32]) -> Result<StepOutput, ExportError> {
        let h = self.arch.hidden_size;
        assert_eq!(
            state.len(),
            tokens.len() * h,
            "state must be [batch, hidden]"
        );
        let decoder = self.weights.decoder();
        let mut output = StepOutput {
            logits: Vec::with_capacity(tokens.len() * self.arch.vocab_size),
            state: Vec::with_capacity(state.len()),
        };
        for (b, &token) in tokens.iter().enumerate() {
            let trace = self.cell(token, &state[b * h..(b + 1) * h])?;
            for v in 0..decoder.rows {
                let logit =
                    dot(decoder.row(v), &trace.output) + self.weights.decoder_bias[v] as f64;
                output.logits.push(logit as f32);
            }
            output.state.extend(trace.output.iter().map(|&x| x as f32));
        }
        Ok(output)
    }

    /// Runs the cell for one sequence and returns every node's output, without the decoder.
    pub fn cell(&self, token: i64, state: &[f32]) -> Result<CellTrace, ExportError> {
        let h = self.arch.hidden_size;
        let id = usize::try_from(token)
            .ok()
            .filter(|&id| id < self.arch.vocab_size)
            .ok_or(ExportError::TokenOutOfRange {
                id: token,
                vocab_size: self.arch.vocab_size,
            })?;
        let x: Vec<f64> = self
            .weights
            .embedding
            .row(id)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let previous: Vec<f64> = state.iter().map(|&v| v as f64).collect();

        let mut pre0 = matvec(&self.weights.node0_w_x, &x);
        for (p, q) in pre0
            .iter_mut()
            .zip(matvec(&self.weights.node0_w_h, &previous))
        {
            *p += q;
        }
        let mut nodes = vec![highway(&pre0, &previous, self.arch.nodes[0].activation)];
        for (i, w) in self.weights.node_w.iter().enumerate() {
            let node = &self.arch.nodes[i + 1];
            let input = &nodes[node.input.expect("a validated node i > 0 has an input")];
            let pre = matvec(w, input);
            let out = highway(&pre, input, node.activation);
            nodes.push(out);
        }

        let mut output = vec![0.0; h];
        for &i in &self.loose_ends {
            for (o, v) in output.iter_mut().zip(&nodes[i]) {
                *o += v;
            }
        }
        let count = self.loose_ends.len() as f64;
        output.iter_mut().for_each(|o| *o /= count);
        Ok(CellTrace { nodes, output })
    }
}

fn dot(row: &[f32], x: &[f64]) -> f64 {
    row.iter().zip(x).map(|(&w, &v)| w as f64 * v).sum()
}

fn matvec(w: &Matrix, x: &[f64]) -> Vec<f64> {
    (0..w.rows).map(|r| dot(w.row(r), x)).collect()
}

/// Computes `carry + sigmoid(gate) * (f(candidate) - carry)` with `pre = [gate | candidate]`.
fn highway(pre: &[f64], carry: &[f64], activation: Activation) -> Vec<f64> {
    let h = carry.len();
    (0..h)
        .map(|i| {
            let gate = sigmoid(pre[i]);
            let candidate = activate(pre[h + i], activation);
            carry[i] + gate * (candidate - carry[i])
        })
        .collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn activate(x: f64, activation: Activation) -> f64 {
    match activation {
        Activation::Tanh => x.tanh(),
        Activation::Relu => x.max(0.0),
        Activation::Identity => x,
        Activation::Sigmoid => sigmoid(x),
    }
}
