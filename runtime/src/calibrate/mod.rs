//! Latency calibration on the device: times one word of prediction for a grid of cell sizes,
//! refits the latency model of a device profile to the times, and writes the profile that
//! `edgenas search --profile` and `edgenas cost --profile` read.
//!
//! Each grid point is a chain cell with random weights (`chain_arch`, `random_checkpoint`),
//! built in memory as ONNX by `edgenas_export` and loaded by `Predictor::load`, the path a
//! trained model takes. One word is `Predictor::step`, softmax and the top 5 words, all that a
//! user waits for after a word is recognized. tract runs it on one thread, its default.

mod fit;
mod model;
mod profile_file;

use std::path::{Path, PathBuf};
use std::time::Instant;

use edgenas_core::cost::{elementwise_ops_per_word, macs_per_word};
use edgenas_core::{estimate, Arch, ArchError, Dtype, Profile, ProfileError};
use edgenas_export::ExportError;

use crate::predictor::softmax;
use crate::{Prediction, Predictor, RuntimeError, State};

pub use fit::{fit_latency, LatencyFit};
pub use model::{
    chain_arch, load_predictor, numbered_vocab, onnx_model, random_checkpoint, SplitMix64,
    WeightFormat,
};
pub use profile_file::{cpu_model, profile_text};

/// Largest node count accepted: `edgenas search` rejects a search space with more than 64
/// nodes, so a larger cell is never a candidate.
pub const MAX_NODES: usize = 64;
/// Smallest vocabulary: `<unk>`, `<eos>` and one word that can be predicted.
pub const MIN_VOCAB_SIZE: usize = 3;
/// Words offered after each step, as `edgenas-runtime predict` offers by default.
pub const TOP_K: usize = 5;
/// Token ids the static int8 scheme reads to set its activation ranges.
const STATIC_CALIBRATION_WORDS: usize = 200;

/// An invalid setting, or a failure while measuring or writing the profile.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("--hidden {value} is invalid: a hidden size must be at least 1 (for example --hidden 64,128,256)")]
    HiddenSize { value: usize },
    #[error("--nodes {value} is invalid: a cell has 1 to {MAX_NODES} nodes, the range `edgenas search` allows (for example --nodes 1,4,8)")]
    Nodes { value: usize },
    #[error("--vocab-size {value} is invalid: a vocabulary needs at least {MIN_VOCAB_SIZE} tokens (<unk>, <eos> and one word)")]
    VocabSize { value: usize },
    #[error("--{option} has no values; give at least one, separated by commas")]
    EmptyList { option: &'static str },
    #[error("--words 0 is invalid: time at least 1 word per grid point (for example --words 200)")]
    Words,
    #[error("unknown dtype \"{value}\" in --dtypes; use f32, int8 or both (--dtypes f32,int8)")]
    Dtype { value: String },
    #[error("--int8-scheme float32 is invalid: choose an int8 scheme (weights, dynamic or static)")]
    Int8Format,
    #[error("the cell with hidden size {hidden_size}, {num_nodes} nodes and vocabulary {vocab_size} is invalid: {source}")]
    Arch {
        hidden_size: usize,
        num_nodes: usize,
        vocab_size: usize,
        source: ArchError,
    },
    #[error("invalid base profile: {source}; pass --base FILE with a valid device profile such as profiles/raspberry-pi-4.toml")]
    BaseProfile { source: ProfileError },
    #[error("failed to edit the base profile {path}: {message}")]
    BaseProfileSyntax { path: PathBuf, message: String },
    #[error("{path} already exists; pass --force to replace it, or choose another --out")]
    OutExists { path: PathBuf },
    #[error("{path} exists and is not a regular file (a folder, link or device); choose another --out")]
    OutNotFile { path: PathBuf },
    #[error("the folder {folder} of --out does not exist; create it or choose another --out")]
    OutFolderMissing { folder: PathBuf },
    #[error(
        "the largest cell (hidden {hidden_size}, {num_nodes} nodes, vocabulary {vocab_size}) has \
         {parameters} parameters, {gib:.1} GiB of float32 weights, above the {limit_gib} GiB \
         that calibrate builds; choose smaller --hidden or --vocab-size values"
    )]
    TooLarge {
        hidden_size: usize,
        num_nodes: usize,
        vocab_size: usize,
        parameters: usize,
        gib: f64,
        limit_gib: u64,
    },
    #[error("--{option} lists {value} twice; give each value once")]
    Duplicate { option: &'static str, value: String },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write a temporary model file: {source}; check that TMPDIR is writable")]
    TempFile { source: std::io::Error },
    #[error("failed to build the ONNX model: {0}")]
    Export(#[from] ExportError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the calibrated profile failed validation, which is a bug in calibrate: {message}")]
    InvalidResult { message: String },
}

/// Parses a dtype of `--dtypes`: `f32` (or `float32`) and `int8`.
pub fn parse_dtype(text: &str) -> Result<Dtype, CalibrateError> {
    match text.trim() {
        "f32" | "float32" => Ok(Dtype::Float32),
        "int8" => Ok(Dtype::Int8),
        other => Err(CalibrateError::Dtype {
            value: other.to_string(),
        }),
    }
}

/// Largest float32 weight size of one calibrated cell, in GiB.
pub const MAX_CELL_GIB: u64 = 1;

/// Rejects a value given twice in one list option.
fn duplicate<T: PartialEq + std::fmt::Debug>(
    option: &'static str,
    values: &[T],
) -> Result<(), CalibrateError> {
    for (i, value) in values.iter().enumerate() {
        if values[..i].contains(value) {
            return Err(CalibrateError::Duplicate {
                option,
                value: format!("{value:?}").to_lowercase(),
            });
        }
    }
    Ok(())
}

/// Cell sizes and dtypes to time: every hidden size with every node count, at each dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub hidden_sizes: Vec<usize>,
    pub node_counts: Vec<usize>,
    pub vocab_size: usize,
    pub dtypes: Vec<Dtype>,
}

impl Grid {
    /// Checks every value, and that the largest cell is a valid `Arch`.
    pub fn validate(&self) -> Result<(), CalibrateError> {
        let lists = [
            ("hidden", self.hidden_sizes.is_empty()),
            ("nodes", self.node_counts.is_empty()),
            ("dtypes", self.dtypes.is_empty()),
        ];
        if let Some((option, _)) = lists.iter().find(|(_, empty)| *empty) {
            return Err(CalibrateError::EmptyList { option: *option });
        }
        if let Some(&value) = self.hidden_sizes.iter().find(|&&h| h == 0) {
            return Err(CalibrateError::HiddenSize { value });
        }
        if let Some(&value) = self.node_counts.iter().find(|&&n| n == 0 || n > MAX_NODES) {
            return Err(CalibrateError::Nodes { value });
        }
        if self.vocab_size < MIN_VOCAB_SIZE {
            return Err(CalibrateError::VocabSize {
                value: self.vocab_size,
            });
        }
        duplicate("hidden", &self.hidden_sizes)?;
        duplicate("nodes", &self.node_counts)?;
        duplicate("dtypes", &self.dtypes)?;
        let hidden_size = *self.hidden_sizes.iter().max().expect("checked non-empty");
        let num_nodes = *self.node_counts.iter().max().expect("checked non-empty");
        let arch = self.arch(hidden_size, num_nodes)?;
        // Each cell's weights exist three times at once (the random weights, the ONNX bytes and
        // tract's copy), so the limit keeps the peak well inside a Pi's RAM.
        let parameters = arch.num_parameters();
        let gib = parameters as f64 * 4.0 / (1u64 << 30) as f64;
        if gib > MAX_CELL_GIB as f64 {
            return Err(CalibrateError::TooLarge {
                hidden_size,
                num_nodes,
                vocab_size: self.vocab_size,
                parameters,
                gib,
                limit_gib: MAX_CELL_GIB,
            });
        }
        Ok(())
    }

    /// Returns the `(hidden_size, num_nodes)` cells in grid order, hidden size outermost.
    pub fn cells(&self) -> Vec<(usize, usize)> {
        let mut cells = Vec::new();
        for &h in &self.hidden_sizes {
            cells.extend(self.node_counts.iter().map(|&n| (h, n)));
        }
        cells
    }

    fn arch(&self, hidden_size: usize, num_nodes: usize) -> Result<Arch, CalibrateError> {
        chain_arch(self.vocab_size, hidden_size, num_nodes).map_err(|source| CalibrateError::Arch {
            hidden_size,
            num_nodes,
            vocab_size: self.vocab_size,
            source,
        })
    }
}

/// Timing settings shared by every grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Words timed per grid point; the median is recorded.
    pub words: usize,
    /// Seed of the random weights and token ids.
    pub seed: u64,
    /// Int8 format timed for the `int8` dtype; `edgenas export` writes `Int8Weights` by default.
    pub int8_format: WeightFormat,
}

impl Settings {
    /// Returns the untimed words run before timing: a tenth of `words`, at least 5, so that
    /// caches and the allocator reach their steady state.
    pub fn warm_up_words(&self) -> usize {
        (self.words / 10).max(5)
    }

    pub fn validate(&self) -> Result<(), CalibrateError> {
        if self.words == 0 {
            return Err(CalibrateError::Words);
        }
        if self.int8_format.dtype() != Dtype::Int8 {
            return Err(CalibrateError::Int8Format);
        }
        Ok(())
    }
}

/// The median time per word of one cell at one weight format.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub hidden_size: usize,
    pub num_nodes: usize,
    pub vocab_size: usize,
    pub format: WeightFormat,
    /// Median wall time of one word in microseconds.
    pub us_per_word: f64,
    /// MACs per word, as `edgenas_core::cost::macs_per_word` counts them.
    pub macs_per_word: u64,
    /// Float32 element-wise adds and mults per word, as `edgenas_core::cost` counts them.
    pub elementwise_ops_per_word: u64,
}

/// Every measurement of a grid and the latency model fitted to them.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub measurements: Vec<Measurement>,
    pub fit: LatencyFit,
    /// Words timed per measurement.
    pub words: usize,
}

/// Runs the prediction for one word: a step on `id`, softmax and the top `TOP_K` words.
pub fn predict_word(
    predictor: &Predictor,
    state: &mut State,
    id: usize,
) -> Result<Vec<Prediction>, RuntimeError> {
    let mut probabilities = predictor.step(state, id)?;
    softmax(&mut probabilities);
    Ok(predictor.top_k(&probabilities, TOP_K))
}

/// Times every grid point and fits the latency model. `on_point` is called after each
/// measurement with its index (from 1) and the number of points.
pub fn calibrate(
    grid: &Grid,
    settings: &Settings,
    on_point: &mut dyn FnMut(usize, usize, &Measurement),
) -> Result<Calibration, CalibrateError> {
    grid.validate()?;
    settings.validate()?;
    let total = grid.cells().len() * grid.dtypes.len();
    let mut measurements = Vec::with_capacity(total);
    for (hidden_size, num_nodes) in grid.cells() {
        let arch = grid.arch(hidden_size, num_nodes)?;
        let checkpoint = random_checkpoint(&arch, cell_seed(settings.seed, &arch));
        for &dtype in &grid.dtypes {
            let format = match dtype {
                Dtype::Float32 => WeightFormat::Float32,
                Dtype::Int8 => settings.int8_format,
            };
            let ids = token_ids(&arch, settings.seed, STATIC_CALIBRATION_WORDS);
            let predictor = load_predictor(&onnx_model(&checkpoint, format, &ids)?)?;
            let measurement = Measurement {
                hidden_size,
                num_nodes,
                vocab_size: arch.vocab_size,
                format,
                us_per_word: median_us_per_word(&predictor, settings)?,
                macs_per_word: macs_per_word(&arch),
                elementwise_ops_per_word: count_elementwise(&arch, dtype),
            };
            on_point(measurements.len() + 1, total, &measurement);
            measurements.push(measurement);
        }
    }
    let fit = fit_latency(&measurements);
    Ok(Calibration {
        measurements,
        fit,
        words: settings.words,
    })
}

/// Returns a seed for one cell, so a cell gets the same weights in any grid.
fn cell_seed(seed: u64, arch: &Arch) -> u64 {
    let shape = (arch.hidden_size as u64) << 32 | arch.num_nodes() as u64;
    SplitMix64::new(seed ^ shape).next_u64()
}

fn token_ids(arch: &Arch, seed: u64, count: usize) -> Vec<i64> {
    let mut rng = SplitMix64::new(seed.wrapping_add(1));
    (0..count).map(|_| rng.below(arch.vocab_size) as i64).collect()
}

fn count_elementwise(arch: &Arch, dtype: Dtype) -> u64 {
    let ops = elementwise_ops_per_word(arch, dtype);
    ops.adds + ops.mults
}

/// Times `settings.words` words after the warm-up, each on its own, and returns the median in
/// microseconds. The median ignores the rare word delayed by another process.
fn median_us_per_word(predictor: &Predictor, settings: &Settings) -> Result<f64, RuntimeError> {
    let vocab_size = predictor.arch().vocab_size;
    let mut rng = SplitMix64::new(settings.seed.wrapping_add(2));
    let mut state = predictor.initial_state();
    for _ in 0..settings.warm_up_words() {
        predict_word(predictor, &mut state, rng.below(vocab_size))?;
    }
    let mut times = Vec::with_capacity(settings.words);
    for _ in 0..settings.words {
        let id = rng.below(vocab_size);
        let started = Instant::now();
        let predictions = predict_word(predictor, &mut state, id)?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(predictions);
    }
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    Ok(if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2.0
    })
}

/// Reads and validates the base profile, returning its text for `profile_text`.
pub fn read_base_profile(path: &Path) -> Result<String, CalibrateError> {
    Profile::load(path).map_err(|source| CalibrateError::BaseProfile { source })?;
    std::fs::read_to_string(path).map_err(|source| CalibrateError::BaseProfile {
        source: ProfileError::Read {
            path: path.display().to_string(),
            source,
        },
    })
}

/// Rejects an `out` whose folder is missing, an `out` that is not a regular file, and an
/// existing `out` unless `force` is set.
pub fn check_out(out: &Path, force: bool) -> Result<(), CalibrateError> {
    let folder = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(CalibrateError::OutFolderMissing {
            folder: folder.to_path_buf(),
        });
    }
    let Ok(metadata) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if !metadata.file_type().is_file() {
        return Err(CalibrateError::OutNotFile {
            path: out.to_path_buf(),
        });
    }
    if !force {
        return Err(CalibrateError::OutExists {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `text` to `out` atomically.
pub fn write_profile(out: &Path, text: &str) -> Result<(), CalibrateError> {
    edgenas_core::write_atomic(out, text.as_bytes()).map_err(|source| CalibrateError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// Returns the time per word that `profile`'s fitted rates give for the cell of `m`, through
/// `edgenas_core::estimate` with the measured entries left out.
pub fn estimated_us_per_word(profile: &Profile, m: &Measurement) -> Result<f64, ArchError> {
    let arch = chain_arch(m.vocab_size, m.hidden_size, m.num_nodes)?;
    let mut rates_only = profile.clone();
    rates_only.latency.measured.clear();
    rates_only.deploy.dtype = m.format.dtype();
    Ok(estimate(&arch, &rates_only).latency_ms_per_word * 1e3)
}
