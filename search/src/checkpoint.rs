//! The files of a training run and how they are written so that a stop loses nothing.
//!
//! A run folder contains `arch.json`, `vocab.txt`, `train-config.json`, `corpus.json`, the
//! lock file `.edgenas.lock`, the weights after the last completed epoch
//! (`epoch-NNN.safetensors`, named in `train-state.json`), the weights with the best
//! validation perplexity (`model.safetensors`) and, once training ends, `metrics.json`. Every
//! file is written to a temporary name and renamed into place, and the state file is written
//! last, so after a stop `train-state.json` always names complete weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgenas_core::{Arch, ArchError, Vocab, VocabError};
use serde::{de::DeserializeOwned, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

pub const ARCH_FILE: &str = "arch.json";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const CONFIG_FILE: &str = "train-config.json";
pub const STATE_FILE: &str = "train-state.json";
pub const BEST_WEIGHTS_FILE: &str = "model.safetensors";
pub const METRICS_FILE: &str = "metrics.json";
pub const CORPUS_FILE: &str = "corpus.json";
/// Empty file that `edgenas train` locks while it writes the run.
pub const LOCK_FILE: &str = ".edgenas.lock";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error(transparent)]
    Vocab(#[from] VocabError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid JSON in {path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("cannot save weights to {path}: {source}")]
    SaveWeights { path: PathBuf, source: tch::TchError },
    #[error(
        "weights file {path} not found; train again, or restore the file from a backup"
    )]
    WeightsNotFound { path: PathBuf },
    #[error(
        "cannot read weights file {path}: {reason}; the file is truncated or not safetensors, \
         so train again or restore it"
    )]
    UnreadableWeights { path: PathBuf, reason: String },
    #[error("weights file {path} lacks tensor {name}, which {arch} needs")]
    MissingTensor { path: PathBuf, name: String, arch: String },
    #[error("tensor {name} in {path} has shape {found:?}, but {arch} needs {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        found: Vec<i64>,
        expected: Vec<i64>,
        arch: String,
    },
    #[error(
        "{vocab} has {tokens} tokens, but {arch} says vocab_size {vocab_size}; the two files \
         come from different runs"
    )]
    VocabMismatch {
        vocab: PathBuf,
        tokens: usize,
        arch: PathBuf,
        vocab_size: usize,
    },
    #[error(
        "--out {path} exists and is not a training run folder; choose a new or empty folder"
    )]
    NotEmpty { path: PathBuf },
    #[error("--out {path} is a file; choose a folder")]
    NotAFolder { path: PathBuf },
    #[error(
        "{path} is in use by another edgenas process; wait for it to end, or choose another \
         --out folder"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path} already holds a training run; pass --resume to continue it, or choose another \
         --out folder"
    )]
    RunExists { path: PathBuf },
    #[error("nothing to resume in {path}: {STATE_FILE} not found; run without --resume to start")]
    NothingToResume { path: PathBuf },
    #[error(
        "cannot resume {path}: its {file} differs from this run's; resume with the same \
         settings, or choose another --out folder"
    )]
    Mismatch { path: PathBuf, file: &'static str },
    #[error("{path} is not a checkpoint folder: {file} not found; pass the --out folder of `edgenas train`")]
    NotACheckpoint { path: PathBuf, file: &'static str },
}

/// A training run's folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn has_state(&self) -> bool {
        self.file(STATE_FILE).is_file()
    }

    /// Checks that the folder can take a new run: it is absent, empty but for the lock and
    /// interrupted writes, or a run stopped before its first epoch ended (a readable
    /// `train-config.json` and no state). A run therefore never overwrites files it did not
    /// write.
    pub fn check_new(&self) -> Result<(), CheckpointError> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(CheckpointError::NotAFolder {
                path: self.path.clone(),
            });
        }
        if !self.path.is_dir() || self.has_state() {
            return Ok(());
        }
        if self.read_json::<crate::train::TrainConfig>(CONFIG_FILE).is_ok() {
            return Ok(());
        }
        let entries = std::fs::read_dir(&self.path).map_err(|source| CheckpointError::Read {
            path: self.path.clone(),
            source,
        })?;
        for entry in entries {
            let name = entry
                .map_err(|source| CheckpointError::Read {
                    path: self.path.clone(),
                    source,
                })?
                .file_name();
            let name = name.to_string_lossy();
            if name != LOCK_FILE && !is_temporary(&name) {
                return Err(CheckpointError::NotEmpty {
                    path: self.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Checks the folder again, under the lock, and creates it.
    pub fn create(&self) -> Result<(), CheckpointError> {
        self.check_new()?;
        std::fs::create_dir_all(&self.path).map_err(|source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Takes an exclusive lock on the run folder, creating it if needed, so two processes
    /// never write the same run. The lock ends when the returned file is dropped or the
    /// process exits.
    pub fn lock(&self) -> Result<std::fs::File, CheckpointError> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(CheckpointError::NotAFolder {
                path: self.path.clone(),
            });
        }
        let write_error = |source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.path).map_err(write_error)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.file(LOCK_FILE))
            .map_err(write_error)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(CheckpointError::Locked {
                path: self.path.clone(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(write_error(source)),
        }
    }

    /// Removes temporary files that a stop in the middle of a write left behind.
    pub fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_temporary(&name) {
                tracing::debug!("removing {name}, left by an interrupted write");
                self.remove_quietly(&name);
            }
        }
    }

    /// Writes `value` as pretty JSON, atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), CheckpointError> {
        let path = self.file(name);
        let text = serde_json::to_string_pretty(value).expect("run files always serialize");
        edgenas_core::write_atomic(&path, format!("{text}\n").as_bytes())
            .map_err(|source| CheckpointError::Write { path, source })
    }

    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T, CheckpointError> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(|source| CheckpointError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| CheckpointError::Json { path, source })
    }

    /// Saves the variables of `vs` as safetensors under `name`, atomically.
    pub fn save_weights(&self, vs: &VarStore, name: &str) -> Result<(), CheckpointError> {
        let path = self.file(name);
        // The temporary name keeps the `.safetensors` extension, which selects the format.
        let tmp = self.file(&format!(".{}.tmp-{}.safetensors", name, std::process::id()));
        vs.save(&tmp).map_err(|source| CheckpointError::SaveWeights {
            path: path.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| CheckpointError::Write { path, source })
    }

    /// Loads weights saved under `name` into `vs`. Every variable must be present with its
    /// shape; extra tensors in the file are ignored.
    pub fn load_weights(&self, vs: &mut VarStore, name: &str, arch: &Arch) -> Result<(), CheckpointError> {
        let path = self.file(name);
        if !path.is_file() {
            return Err(CheckpointError::WeightsNotFound { path });
        }
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
            .map_err(|e| CheckpointError::UnreadableWeights {
                path: path.clone(),
                reason: first_line(&e.to_string()),
            })?
            .into_iter()
            .collect();
        let mut variables = vs.variables();
        for (var_name, var) in variables.iter_mut() {
            let Some(saved) = tensors.get(var_name) else {
                return Err(CheckpointError::MissingTensor {
                    path,
                    name: var_name.clone(),
                    arch: arch.summary(),
                });
            };
            if saved.size() != var.size() {
                return Err(CheckpointError::TensorShape {
                    path,
                    name: var_name.clone(),
                    found: saved.size(),
                    expected: var.size(),
                    arch: arch.summary(),
                });
            }
            tch::no_grad(|| var.copy_(&saved.to_kind(var.kind())));
        }
        Ok(())
    }

    /// Reads the architecture and vocabulary of a finished or running checkpoint.
    pub fn load_model_files(&self) -> Result<(Arch, Vocab), CheckpointError> {
        for file in [ARCH_FILE, VOCAB_FILE] {
            if !self.file(file).is_file() {
                return Err(CheckpointError::NotACheckpoint {
                    path: self.path.clone(),
                    file,
                });
            }
        }
        let arch = Arch::load(&self.file(ARCH_FILE))?;
        let vocab = Vocab::load(&self.file(VOCAB_FILE))?;
        if vocab.len() != arch.vocab_size {
            return Err(CheckpointError::VocabMismatch {
                vocab: self.file(VOCAB_FILE),
                tokens: vocab.len(),
                arch: self.file(ARCH_FILE),
                vocab_size: arch.vocab_size,
            });
        }
        Ok((arch, vocab))
    }

    pub fn remove_quietly(&self, name: &str) {
        if let Err(e) = std::fs::remove_file(self.file(name)) {
            tracing::debug!("could not remove old checkpoint {name}: {e}");
        }
    }
}

/// Returns whether `name` is a temporary file of `edgenas_core::write_atomic` or `save_weights`.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Returns the first line of `message`, since libtorch errors append a C++ backtrace.
pub fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_string()
}

/// File name of the weights after `epoch`.
pub fn epoch_weights_name(epoch: usize) -> String {
    format!("epoch-{epoch:03}.safetensors")
}
