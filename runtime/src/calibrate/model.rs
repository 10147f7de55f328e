//! Models with random weights for timing: a chain cell of a given size, built in memory as
//! ONNX by `edgenas_export` and loaded through the same `Predictor` path as a trained model.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use edgenas_core::{Activation, Arch, ArchError, Dropout, Dtype, Vocab};
use edgenas_export::calibrate::calibrate;
use edgenas_export::checkpoint::{Matrix, Weights};
use edgenas_export::onnx::{float_model, int8_model, Int8Scheme};
use edgenas_export::reference::Reference;
use edgenas_export::{Checkpoint, ExportError};

use super::CalibrateError;
use crate::Predictor;

/// Half-width of the uniform range of random weights. Timing does not depend on the values.
const WEIGHT_RANGE: f32 = 0.1;

/// SplitMix64, a 64-bit counter passed through a mixing function: a small deterministic
/// generator for random weights and token ids. It is not meant for statistics.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a value uniform in `[-half_width, half_width)`, from the top 24 bits.
    pub fn symmetric(&mut self, half_width: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        half_width * (2.0 * unit - 1.0)
    }

    /// Returns an integer uniform in `0..n` (with a bias below 2^-40 for `n` under 2^24).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Weight format of a timed model, as the `edgenas.format` metadata names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    Float32,
    /// Int8 weights dequantized to float32; `edgenas export` writes this scheme by default.
    Int8Weights,
    /// Int8 `MatMulInteger` with activation scales computed at run time.
    Int8Dynamic,
    /// Int8 `MatMulInteger` with activation scales calibrated beforehand.
    Int8Static,
}

impl WeightFormat {
    pub const ALL: [WeightFormat; 4] = [
        WeightFormat::Float32,
        WeightFormat::Int8Weights,
        WeightFormat::Int8Dynamic,
        WeightFormat::Int8Static,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Float32 => "float32",
            WeightFormat::Int8Weights => "int8-weights",
            WeightFormat::Int8Dynamic => "int8-dynamic",
            WeightFormat::Int8Static => "int8-static",
        }
    }

    /// Returns the profile dtype that this format's measurements are recorded under.
    pub fn dtype(self) -> Dtype {
        match self {
            WeightFormat::Float32 => Dtype::Float32,
            _ => Dtype::Int8,
        }
    }
}

impl FromStr for WeightFormat {
    type Err = String;

    /// Parses a format name, or an int8 scheme name as `edgenas export --int8` takes it.
    fn from_str(text: &str) -> Result<WeightFormat, String> {
        match text {
            "weights" => return Ok(WeightFormat::Int8Weights),
            "dynamic" => return Ok(WeightFormat::Int8Dynamic),
            "static" => return Ok(WeightFormat::Int8Static),
            _ => {}
        }
        WeightFormat::ALL
            .into_iter()
            .find(|format| format.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown weight format \"{text}\"; use float32, int8-weights, int8-dynamic \
                     or int8-static"
                )
            })
    }
}

/// Returns a chain cell: node `i > 0` reads node `i - 1`, and the activations cycle through
/// tanh, ReLU, identity and sigmoid. The chain has one loose end, so the cell output needs no
/// mean, and its cost per word depends only on the hidden size and node count.
pub fn chain_arch(vocab_size: usize, hidden_size: usize, num_nodes: usize) -> Result<Arch, ArchError> {
    let rest: Vec<(usize, Activation)> = (1..num_nodes.max(1))
        .map(|i| (i - 1, Activation::ALL[i % Activation::ALL.len()]))
        .collect();
    Arch::new(vocab_size, hidden_size, Activation::Tanh, &rest, Dropout::NONE)
}

/// Returns a vocabulary of `size` tokens: `<unk>`, `<eos>`, then `w2`, `w3`, ...
pub fn numbered_vocab(size: usize) -> Vocab {
    let mut tokens = vec![
        edgenas_core::vocab::UNK.to_string(),
        edgenas_core::vocab::EOS.to_string(),
    ];
    tokens.extend((2..size).map(|id| format!("w{id}")));
    Vocab::from_tokens(tokens, "numbered vocabulary").expect("numbered tokens are unique and valid")
}

/// Builds a checkpoint of `arch` with weights uniform in `[-0.1, 0.1)` from `seed`, a zero
/// decoder bias and a numbered vocabulary. `arch` must have `vocab_size >= 2`.
pub fn random_checkpoint(arch: &Arch, seed: u64) -> Checkpoint {
    let mut rng = SplitMix64::new(seed);
    let (v, h) = (arch.vocab_size, arch.hidden_size);
    let mut matrix = |rows: usize| Matrix {
        rows,
        cols: h,
        data: (0..rows * h).map(|_| rng.symmetric(WEIGHT_RANGE)).collect(),
    };
    let embedding = matrix(v);
    let node0_w_x = matrix(2 * h);
    let node0_w_h = matrix(2 * h);
    let node_w = (1..arch.num_nodes()).map(|_| matrix(2 * h)).collect();
    let decoder_weight = (!arch.tie_weights).then(|| matrix(v));
    Checkpoint {
        path: PathBuf::from(format!("random weights, seed {seed}")),
        arch: arch.clone(),
        vocab: numbered_vocab(v),
        weights: Weights {
            embedding,
            node0_w_x,
            node0_w_h,
            node_w,
            decoder_weight,
            decoder_bias: vec![0.0; v],
        },
        arch_text: serde_json::to_string_pretty(arch).expect("an Arch always serializes"),
    }
}

/// Writes the ONNX model of `checkpoint` in `format`. The static int8 scheme takes its
/// activation ranges from the reference forward pass over `calibration_ids`.
pub fn onnx_model(
    checkpoint: &Checkpoint,
    format: WeightFormat,
    calibration_ids: &[i64],
) -> Result<Vec<u8>, ExportError> {
    let scheme = match format {
        WeightFormat::Float32 => return Ok(float_model(checkpoint)),
        WeightFormat::Int8Weights => Int8Scheme::WeightsOnly,
        WeightFormat::Int8Dynamic => Int8Scheme::Dynamic,
        WeightFormat::Int8Static => {
            let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
            Int8Scheme::Static(calibrate(&reference, &checkpoint.arch, calibration_ids)?)
        }
    };
    Ok(int8_model(checkpoint, &scheme))
}

/// Loads ONNX bytes with `Predictor::load` through a temporary file, which is deleted once
/// tract has planned the model.
pub fn load_predictor(onnx: &[u8]) -> Result<Predictor, CalibrateError> {
    let temp_error = |source| CalibrateError::TempFile { source };
    let mut file = tempfile::Builder::new()
        .prefix("edgenas-calibrate-")
        .suffix(".onnx")
        .tempfile()
        .map_err(temp_error)?;
    file.write_all(onnx).map_err(temp_error)?;
    file.flush().map_err(temp_error)?;
    Ok(Predictor::load(file.path(), None)?)
}
