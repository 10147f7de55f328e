//! Export of a trained edgenas checkpoint to ONNX, in float32 and int8, without libtorch.
//!
//! Each graph is one recurrent step: `token` and `state` in, `logits` and `next_state` out.
//! The architecture and vocabulary travel in its metadata, so the runtime needs one file.
//! The export checks both graphs with tract, the runtime used on the device. It compares the
//! float32 logits with a plain Rust forward pass of the cell ([`reference`]), and the int8
//! perplexity with the float32 one. The `## Export` section of docs/ARCHITECTURE.md describes
//! the graphs and the int8 schemes.

pub mod calibrate;
pub mod checkpoint;
pub mod checks;
mod error;
pub mod export;
pub mod onnx;
pub mod reference;
pub mod report;
pub mod tract;

pub use checkpoint::Checkpoint;
pub use error::ExportError;
pub use export::{export, ActivationQuantization, ExportOptions, ExportReport, ExportText};

/// Progress of a long check, such as the perplexity over a split.
pub trait Progress {
    fn start(&mut self, label: &str, total: u64);
    fn advance(&mut self, done: u64);
    fn finish(&mut self);
}

/// A `Progress` that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _label: &str, _total: u64) {}
    fn advance(&mut self, _done: u64) {}
    fn finish(&mut self) {}
}
