//! Loads an exported model with tract and predicts the next word, one word at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgenas_core::{Arch, Vocab};
use edgenas_export::onnx::{read_metadata, ModelMetadata};
use tract_onnx::prelude::*;

use crate::error::tract_error;
use crate::RuntimeError;

/// The recurrent state between words: one row of `hidden_size` values (`[1, H]`).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    hidden: Vec<f32>,
}

impl State {
    /// Returns the state at the start of an utterance: all zeros, as in training.
    pub fn zeros(hidden_size: usize) -> State {
        State {
            hidden: vec![0.0; hidden_size],
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.hidden
    }
}

/// One candidate next word.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub token: String,
    pub id: usize,
    pub probability: f32,
}

/// An exported model, planned by tract for one word per step, with its vocabulary.
pub struct Predictor {
    plan: Arc<TypedRunnableModel>,
    arch: Arch,
    vocab: Vocab,
    format: String,
    path: PathBuf,
    /// Ids never offered as predictions: `<unk>` and `<eos>` are not words a user can accept.
    hidden_ids: [usize; 2],
}

impl Predictor {
    /// Loads `path` (`model.f32.onnx` or `model.int8.onnx`). The vocabulary comes from the
    /// model's metadata unless `vocab` names a `vocab.txt`; either way its size must match
    /// the model's output.
    pub fn load(path: &Path, vocab: Option<&Path>) -> Result<Predictor, RuntimeError> {
        if !path.exists() {
            return Err(RuntimeError::ModelNotFound {
                path: path.to_path_buf(),
            });
        }
        let ModelMetadata {
            arch,
            vocab: stored_vocab,
            format,
        } = read_metadata(path)?;
        let (vocab, source_name, fix) = match vocab {
            Some(vocab_path) => {
                let replacement = Vocab::load(vocab_path)?;
                if replacement.len() == stored_vocab.len()
                    && replacement.tokens() != stored_vocab.tokens()
                {
                    tracing::warn!(
                        "{} orders its tokens differently from the vocabulary stored in {}; \
                         predictions use the order of {}",
                        vocab_path.display(),
                        path.display(),
                        vocab_path.display()
                    );
                }
                let fix = "use the vocab.txt written with this model, or leave out --vocab to \
                           use the one stored in the model";
                (replacement, vocab_path.display().to_string(), fix)
            }
            None => {
                let fix = "the file is damaged or was not written by `edgenas export`; export \
                           the checkpoint again";
                (stored_vocab, "stored in the model".to_string(), fix)
            }
        };
        let plan = plan_single_step(path, arch.hidden_size)?;
        let logits_len = logits_len(&plan, path)?;
        if logits_len != vocab.len() {
            return Err(RuntimeError::VocabMismatch {
                path: path.to_path_buf(),
                source_name,
                vocab_len: vocab.len(),
                logits_len,
                fix,
            });
        }
        let required = |token: &'static str| {
            vocab.id(token).ok_or(RuntimeError::MissingToken {
                path: path.to_path_buf(),
                token,
            })
        };
        let hidden_ids = [
            required(edgenas_core::vocab::UNK)?,
            required(edgenas_core::vocab::EOS)?,
        ];
        Ok(Predictor {
            plan,
            arch,
            vocab,
            format,
            path: path.to_path_buf(),
            hidden_ids,
        })
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Weight format from the model metadata: `float32`, `int8-weights`, and so on.
    pub fn format(&self) -> &str {
        &self.format
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn initial_state(&self) -> State {
        State::zeros(self.arch.hidden_size)
    }

    /// Runs one step on token `id`, replaces `state` with the next state, and returns the
    /// logits of the next token (`[V]`).
    pub fn step(&self, state: &mut State, id: usize) -> Result<Vec<f32>, RuntimeError> {
        let h = self.arch.hidden_size;
        let inputs = || -> TractResult<TVec<TValue>> {
            Ok(tvec![
                Tensor::from_shape(&[1], &[id as i64])?.into_tvalue(),
                Tensor::from_shape(&[1, h], &state.hidden)?.into_tvalue(),
            ])
        };
        let outputs = inputs()
            .and_then(|inputs| self.plan.run(inputs))
            .map_err(tract_error("run", &self.path))?;
        let read = |i: usize| -> TractResult<Vec<f32>> {
            Ok(outputs[i].try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        };
        let logits = read(0).map_err(tract_error("read the logits of", &self.path))?;
        state.hidden = read(1).map_err(tract_error("read the state of", &self.path))?;
        Ok(logits)
    }

    /// Returns the `k` most probable next words from `probabilities`, most probable first,
    /// leaving out `<unk>` and `<eos>`. Ties go to the lower id, so the order is stable.
    pub fn top_k(&self, probabilities: &[f32], k: usize) -> Vec<Prediction> {
        let mut best: Vec<usize> = Vec::with_capacity(k + 1);
        for (id, &p) in probabilities.iter().enumerate() {
            if self.hidden_ids.contains(&id) {
                continue;
            }
            if best.len() == k && p <= probabilities[best[k - 1]] {
                continue;
            }
            let at = best.partition_point(|&b| probabilities[b] >= p);
            best.insert(at, id);
            best.truncate(k);
        }
        best.into_iter()
            .map(|id| Prediction {
                token: self.vocab.token(id).unwrap_or_default().to_string(),
                id,
                probability: probabilities[id],
            })
            .collect()
    }

    /// Returns whether `id` is a token offered as a prediction (not `<unk>` or `<eos>`).
    pub fn is_predictable(&self, id: usize) -> bool {
        !self.hidden_ids.contains(&id)
    }
}

/// Turns logits into probabilities in place, with the maximum subtracted for stability.
pub fn softmax(logits: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in logits.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in logits.iter_mut() {
        *x /= sum;
    }
}

/// Loads the ONNX file and plans it for a batch of one word, which lets tract fix every
/// shape before optimizing.
fn plan_single_step(
    path: &Path,
    hidden_size: usize,
) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    tract_onnx::onnx()
        .model_for_read(&mut &*bytes)
        .map_err(tract_error("load", path))?
        .with_input_fact(0, i64::fact([1]).into())
        .and_then(|m| m.with_input_fact(1, f32::fact([1, hidden_size]).into()))
        .map_err(tract_error("set the input shapes of", path))?
        .into_optimized()
        .map_err(tract_error("optimize", path))?
        .into_runnable()
        .map_err(tract_error("plan", path))
}

/// Reads the vocabulary size from the planned model's `logits` output (`[1, V]`).
fn logits_len(plan: &TypedRunnableModel, path: &Path) -> Result<usize, RuntimeError> {
    let model = plan.model();
    let fact = model
        .outlet_fact(model.output_outlets().map_err(tract_error("inspect", path))?[0])
        .map_err(tract_error("inspect", path))?;
    let shape = fact.shape.as_concrete().map(|dims| dims.to_vec());
    match shape.as_deref() {
        Some([1, v]) => Ok(*v),
        _ => Err(RuntimeError::Tract {
            path: path.to_path_buf(),
            stage: "check the logits shape of",
            message: format!("expected [1, vocabulary], found {:?}", fact.shape),
        }),
    }
}
