//! The files of a training run and how they are written so that a stop loses nothing.
//!
//! A run folder holds `arch.json`, `vocab.txt`, `train-config.json`, the weights after the
//! last completed epoch (`epoch-NNN.safetensors`, named in `train-state.json`), the weights
//! with the best validation perplexity (`model.safetensors`) and, once training ends,
//! `metrics.json`. Every file is written to a temporary name and renamed into place, and the
//! state file is written last, so after a stop `train-state.json` always names complete
//! weights.

use std::path::{Path, PathBuf};

use edgenas_core::{Arch, ArchError, Vocab, VocabError};
use serde::{de::DeserializeOwned, Serialize};
use tch::nn::VarStore;

pub const ARCH_FILE: &str = "arch.json";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const CONFIG_FILE: &str = "train-config.json";
pub const STATE_FILE: &str = "train-state.json";
pub const BEST_WEIGHTS_FILE: &str = "model.safetensors";
pub const METRICS_FILE: &str = "metrics.json";

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
    #[error("cannot load weights from {path}: {source}; the file does not match {arch}")]
    LoadWeights {
        path: PathBuf,
        arch: String,
        source: tch::TchError,
    },
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

    pub fn create(&self) -> Result<(), CheckpointError> {
        std::fs::create_dir_all(&self.path).map_err(|source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        })
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

    /// Loads weights saved under `name` into `vs`; every variable must be present.
    pub fn load_weights(&self, vs: &mut VarStore, name: &str, arch: &Arch) -> Result<(), CheckpointError> {
        let path = self.file(name);
        vs.load(&path).map_err(|source| CheckpointError::LoadWeights {
            path,
            arch: arch.summary(),
            source,
        })
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
        Ok((arch, vocab))
    }

    pub fn remove_quietly(&self, name: &str) {
        if let Err(e) = std::fs::remove_file(self.file(name)) {
            tracing::debug!("could not remove old checkpoint {name}: {e}");
        }
    }
}

/// File name of the weights after `epoch`.
pub fn epoch_weights_name(epoch: usize) -> String {
    format!("epoch-{epoch:03}.safetensors")
}
