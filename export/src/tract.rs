//! Runs an exported model with tract, the runtime used on the device.

use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::tract_error;
use crate::reference::StepOutput;
use crate::ExportError;

/// An exported model loaded and optimized by tract, ready to run one step at a time.
pub struct TractModel {
    plan: Arc<TypedRunnableModel>,
    hidden_size: usize,
    /// Label used in errors: `float32` or `int8`.
    label: &'static str,
}

impl TractModel {
    /// Loads ONNX bytes with tract and optimizes the graph for the symbolic batch size.
    pub fn load(
        bytes: &[u8],
        hidden_size: usize,
        label: &'static str,
    ) -> Result<TractModel, ExportError> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &*bytes)
            .map_err(tract_error("load", label))?
            .into_optimized()
            .map_err(tract_error("optimize", label))?
            .into_runnable()
            .map_err(tract_error("plan", label))?;
        Ok(TractModel {
            plan,
            hidden_size,
            label,
        })
    }

    /// Runs one step: `tokens` is `[B]` and `state` is `[B, H]`, row-major.
    pub fn step(&self, tokens: &[i64], state: &[f32]) -> Result<StepOutput, ExportError> {
        let batch = tokens.len();
        let inputs = || -> TractResult<TVec<TValue>> {
            Ok(tvec![
                Tensor::from_shape(&[batch], tokens)?.into_tvalue(),
                Tensor::from_shape(&[batch, self.hidden_size], state)?.into_tvalue(),
            ])
        };
        let outputs = inputs()
            .and_then(|inputs| self.plan.run(inputs))
            .map_err(tract_error("run", self.label))?;
        let read = |i: usize| -> TractResult<Vec<f32>> {
            Ok(outputs[i].try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        };
        let logits = read(0).map_err(tract_error("read the logits of", self.label))?;
        let state = read(1).map_err(tract_error("read the state of", self.label))?;
        Ok(StepOutput { logits, state })
    }
}
