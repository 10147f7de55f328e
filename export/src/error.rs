//! Errors of the export: bad checkpoint files, an unusable output folder, a model that tract
//! cannot run, and failed accuracy checks.

use std::path::PathBuf;

use edgenas_core::{ArchError, VocabError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error(transparent)]
    Vocab(#[from] VocabError),
    #[error(
        "{path} is not a checkpoint folder: {file} not found; pass the --out folder of \
         `edgenas train`"
    )]
    NotACheckpoint { path: PathBuf, file: &'static str },
    #[error(
        "{vocab} has {tokens} tokens, but {arch} says vocab_size {vocab_size}; the two files \
         come from different runs, so restore the vocab.txt of this run"
    )]
    VocabMismatch {
        vocab: PathBuf,
        tokens: usize,
        arch: PathBuf,
        vocab_size: usize,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot read weights file {path}: {reason}; the file is truncated or not safetensors, \
         so train again or restore it"
    )]
    UnreadableWeights { path: PathBuf, reason: String },
    #[error(
        "weights file {path} lacks tensor {name}, which {arch} needs; export the checkpoint \
         folder whose arch.json these weights were trained with"
    )]
    MissingTensor {
        path: PathBuf,
        name: String,
        arch: String,
    },
    #[error(
        "tensor {name} in {path} has shape {found:?}, but {arch} needs {expected:?}; the \
         arch.json does not describe these weights (check hidden_size, vocab_size and \
         tie_weights)"
    )]
    TensorShape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
        arch: String,
    },
    #[error("tensor {name} in {path} has dtype {found}; the export reads float32 weights only")]
    TensorDtype {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error(
        "tensor {name} in {path} is not part of {arch}; the arch.json and the weights come \
         from different runs (check the node count and tie_weights)"
    )]
    UnexpectedTensor {
        path: PathBuf,
        name: String,
        arch: String,
    },
    #[error(
        "tensor {name} in {path} holds a NaN or infinite value; train again or restore the file"
    )]
    NonFiniteWeight { path: PathBuf, name: String },
    #[error(
        "--out {path} exists and is not an earlier export (it contains {entry}); choose a new \
         or empty folder"
    )]
    OutNotEmpty { path: PathBuf, entry: String },
    #[error("--out {path} is a file; choose a folder")]
    OutNotAFolder { path: PathBuf },
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange { id: i64, vocab_size: usize },
    #[error(
        "{text} has {tokens} tokens, but the check needs at least {needed}; use a longer text"
    )]
    TooFewTokens {
        text: &'static str,
        tokens: usize,
        needed: usize,
    },
    #[error(
        "the static int8 scheme needs calibration text; pass --calibration FILE, or a corpus \
         whose training split it can read"
    )]
    MissingCalibration,
    #[error("tract cannot {action} the {model} model: {reason}")]
    Tract {
        action: &'static str,
        model: &'static str,
        reason: String,
    },
    #[error("{path} is not an ONNX model: {reason}")]
    NotOnnx { path: PathBuf, reason: String },
    #[error(
        "{path} lacks the metadata key {key}; export the checkpoint again with `edgenas export`"
    )]
    MissingMetadata { path: PathBuf, key: &'static str },
    #[error(
        "export checks failed: {failures}; the files were not written. Pass \
         --allow-accuracy-drop to write them anyway"
    )]
    ChecksFailed { failures: String },
}

/// Converts a tract error into `ExportError::Tract`, keeping the whole cause chain on one line.
pub(crate) fn tract_error(
    action: &'static str,
    model: &'static str,
) -> impl FnOnce(tract_onnx::prelude::TractError) -> ExportError {
    move |error| ExportError::Tract {
        action,
        model,
        reason: format!("{error:#}"),
    }
}
