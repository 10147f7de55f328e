//! Errors of the runtime library. Each names the file, value or shape at fault.

use std::path::PathBuf;

use edgenas_export::ExportError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "model file {path} not found; pass --model FILE with a model written by `edgenas export` \
         (model.int8.onnx or model.f32.onnx)"
    )]
    ModelNotFound { path: PathBuf },

    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{0}")]
    Metadata(#[from] ExportError),

    #[error("tract failed to {stage} {path}: {message}; is it a model written by `edgenas export`?")]
    Tract {
        path: PathBuf,
        stage: &'static str,
        message: String,
    },

    #[error(
        "the vocabulary {source_name} has {vocab_len} tokens but the model {path} outputs \
         {logits_len} logits; {fix}"
    )]
    VocabMismatch {
        path: PathBuf,
        source_name: String,
        vocab_len: usize,
        logits_len: usize,
        /// What to do, which depends on where the vocabulary came from.
        fix: &'static str,
    },

    #[error("failed to read the vocabulary: {0}")]
    Vocab(#[from] edgenas_core::VocabError),

    #[error("the model {path} has no `{token}` token, which the runtime needs; export a model trained by `edgenas train`")]
    MissingToken { path: PathBuf, token: &'static str },

    #[error("top-k must be between 1 and {max}, not {k}")]
    InvalidTopK { k: usize, max: usize },
}

/// Returns a closure that wraps a tract error with the stage and model path.
pub(crate) fn tract_error<'a>(
    stage: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(tract_onnx::prelude::TractError) -> RuntimeError + 'a {
    move |e| RuntimeError::Tract {
        path: path.to_path_buf(),
        stage,
        message: format!("{e:#}"),
    }
}
