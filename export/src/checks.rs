//! The checks an export runs on its graphs: logits against the reference forward pass,
//! perplexity on a token stream, and time per step.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::reference::{Reference, StepOutput};
use crate::tract::TractModel;
use crate::{ExportError, Progress};

/// Largest absolute difference between the float32 graph's logits and the reference that the
/// float32 check accepts.
pub const FLOAT_LOGIT_TOLERANCE: f64 = 1e-4;
/// Largest relative change of perplexity from float32 to int8 that the int8 check accepts.
pub const INT8_PERPLEXITY_TOLERANCE: f64 = 0.03;

/// Result of running the float32 graph beside the reference with the state carried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogitComparison {
    pub steps: usize,
    pub batch_size: usize,
    pub max_abs_logit_diff: f64,
    pub max_abs_state_diff: f64,
}

/// Runs `model` and `reference` side by side for `steps` steps on `batch_size` columns of
/// `ids`, each carrying its own state from zero, and returns the largest differences.
pub fn compare_with_reference(
    model: &TractModel,
    reference: &Reference,
    hidden_size: usize,
    ids: &[i64],
    batch_size: usize,
    steps: usize,
) -> Result<LogitComparison, ExportError> {
    let columns = Columns::new(ids, batch_size, "the logit check text")?;
    let steps = steps.min(columns.steps);
    let mut tract_state = vec![0.0f32; batch_size * hidden_size];
    let mut reference_state = tract_state.clone();
    let mut comparison = LogitComparison {
        steps,
        batch_size,
        max_abs_logit_diff: 0.0,
        max_abs_state_diff: 0.0,
    };
    for t in 0..steps {
        let tokens = columns.row(t);
        let got = model.step(tokens, &tract_state)?;
        let expected = reference.step(tokens, &reference_state)?;
        comparison.max_abs_logit_diff = comparison
            .max_abs_logit_diff
            .max(max_abs_diff(&got.logits, &expected.logits));
        comparison.max_abs_state_diff = comparison
            .max_abs_state_diff
            .max(max_abs_diff(&got.state, &expected.state));
        tract_state = got.state;
        reference_state = expected.state;
    }
    Ok(comparison)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

/// Negative log-likelihood of a token stream.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Perplexity {
    /// Predicted tokens.
    pub tokens: usize,
    /// Sum of the negative log-likelihoods in nats.
    pub nll: f64,
    pub perplexity: f64,
}

/// Computes the perplexity of `model` on `ids`, read as `batch_size` columns the way
/// `edgenas evaluate` reads a split, with the state carried from zero through every step.
pub fn perplexity(
    model: &TractModel,
    ids: &[i64],
    batch_size: usize,
    vocab_size: usize,
    hidden_size: usize,
    label: &str,
    progress: &mut dyn Progress,
) -> Result<Perplexity, ExportError> {
    let columns = Columns::new(ids, batch_size, "the perplexity text")?;
    let mut state = vec![0.0f32; batch_size * hidden_size];
    let mut nll = 0.0;
    progress.start(label, columns.steps as u64);
    for t in 0..columns.steps {
        let StepOutput {
            logits,
            state: next,
        } = model.step(columns.row(t), &state)?;
        for (b, &target) in columns.row(t + 1).iter().enumerate() {
            let row = &logits[b * vocab_size..(b + 1) * vocab_size];
            let target = usize::try_from(target)
                .ok()
                .filter(|&id| id < vocab_size)
                .ok_or(ExportError::TokenOutOfRange {
                    id: target,
                    vocab_size,
                })?;
            nll += log_sum_exp(row) - row[target] as f64;
        }
        state = next;
        progress.advance(1);
    }
    progress.finish();
    let tokens = columns.steps * batch_size;
    Ok(Perplexity {
        tokens,
        nll,
        perplexity: (nll / tokens as f64).exp(),
    })
}

fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    max + row
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

/// Measures the mean wall time of one step at batch size 1, in milliseconds, over `steps`
/// steps of `ids` after a warm-up of `steps / 10` steps.
pub fn step_latency_ms(
    model: &TractModel,
    ids: &[i64],
    hidden_size: usize,
    steps: usize,
) -> Result<f64, ExportError> {
    let warm_up = steps / 10;
    let mut state = vec![0.0f32; hidden_size];
    let mut started = Instant::now();
    for (t, id) in ids.iter().cycle().take(warm_up + steps).enumerate() {
        if t == warm_up {
            started = Instant::now();
        }
        state = model.step(std::slice::from_ref(id), &state)?.state;
    }
    Ok(started.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64)
}

/// A token stream laid out as `batch_size` contiguous columns, time-major, as
/// `edgenas_search::batch::Batched` lays out a split: column `j` contains
/// `ids[j * steps ..= (j + 1) * steps]`, so neighbouring columns share one token.
pub struct Columns {
    data: Vec<i64>,
    batch_size: usize,
    /// Input steps per column; row `steps` holds only targets.
    pub steps: usize,
}

impl Columns {
    pub fn new(ids: &[i64], batch_size: usize, text: &'static str) -> Result<Columns, ExportError> {
        if batch_size == 0 || ids.len() <= batch_size {
            return Err(ExportError::TooFewTokens {
                text,
                tokens: ids.len(),
                needed: batch_size.max(1) + 1,
            });
        }
        let steps = (ids.len() - 1) / batch_size;
        let mut data = Vec::with_capacity((steps + 1) * batch_size);
        for row in 0..=steps {
            for column in 0..batch_size {
                data.push(ids[column * steps + row]);
            }
        }
        Ok(Columns {
            data,
            batch_size,
            steps,
        })
    }

    pub fn row(&self, t: usize) -> &[i64] {
        &self.data[t * self.batch_size..(t + 1) * self.batch_size]
    }
}
