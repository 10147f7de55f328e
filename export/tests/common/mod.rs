//! Helpers shared by the export tests: the repository paths, Penn Treebank, the PyTorch cell
//! fixtures as checkpoint folders, and the Python ONNX tools.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgenas_core::Vocab;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tempfile::TempDir;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Returns the folder of the committed Penn Treebank checkpoint.
pub fn ptb_small() -> PathBuf {
    repo().join("models/ptb-small")
}

/// Penn Treebank folder: `EDGENAS_PTB_DIR`, or the data folder beside the repository that CI
/// provides.
pub fn ptb_dir() -> PathBuf {
    match std::env::var_os("EDGENAS_PTB_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ptb"),
    }
}

/// Reads the first `max_tokens` token ids of a Penn Treebank split, as the corpus reader of
/// `edgenas train` does: words split on whitespace, `<eos>` after every non-blank line, and
/// words outside the vocabulary mapped to `<unk>`.
pub fn ptb_ids(split: &str, vocab: &Vocab, max_tokens: usize) -> Vec<i64> {
    let path = ptb_dir().join(format!("ptb.{split}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; set EDGENAS_PTB_DIR to the Penn Treebank folder",
            path.display()
        )
    });
    let mut ids = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        ids.extend(words.iter().map(|w| vocab.id_or_unk(w) as i64));
        ids.push(vocab.eos_id() as i64);
        if ids.len() >= max_tokens {
            ids.truncate(max_tokens);
            break;
        }
    }
    ids
}

/// A cell fixture of `search/tests/fixtures/`: inputs and the outputs PyTorch computed.
pub struct Fixture {
    /// Checkpoint folder with the fixture's weights, arch.json and a made-up vocabulary.
    pub dir: TempDir,
    /// `[T, B]` token ids.
    pub tokens: Vec<i64>,
    pub steps: usize,
    pub batch: usize,
    /// `[B, H]` state before the first step.
    pub state: Vec<f32>,
    /// `[T, B, V]` logits and `[B, H]` final state, from PyTorch in float64.
    pub expected_logits: Vec<f32>,
    pub expected_state: Vec<f32>,
}

fn f32_values(view: &TensorView) -> Vec<f32> {
    assert_eq!(view.dtype(), Dtype::F32);
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Turns fixture `case` (`tied`, `untied` or `single`) into a checkpoint folder.
pub fn fixture(case: &str) -> Fixture {
    let fixtures = repo().join("search/tests/fixtures");
    let bytes = std::fs::read(fixtures.join(format!("cell_{case}.safetensors"))).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let arch_text =
        std::fs::read_to_string(fixtures.join(format!("cell_{case}.arch.json"))).unwrap();
    let arch: edgenas_core::Arch = serde_json::from_str(&arch_text).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let weights: HashMap<String, TensorView> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("input.") && !name.starts_with("expected."))
        .collect();
    safetensors::serialize_to_file(&weights, None, &dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("arch.json"), &arch_text).unwrap();
    write_vocab(dir.path(), arch.vocab_size);

    let tokens_view = file.tensor("input.tokens").unwrap();
    let shape = tokens_view.shape().to_vec();
    let tokens = tokens_view
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Fixture {
        dir,
        tokens,
        steps: shape[0],
        batch: shape[1],
        state: f32_values(&file.tensor("input.state").unwrap()),
        expected_logits: f32_values(&file.tensor("expected.logits").unwrap()),
        expected_state: f32_values(&file.tensor("expected.state").unwrap()),
    }
}

/// Writes a vocabulary of `size` tokens: `<unk>`, `<eos>`, then `w2`, `w3`, ...
pub fn write_vocab(dir: &Path, size: usize) {
    let mut tokens = vec!["<unk>".to_string(), "<eos>".to_string()];
    tokens.extend((2..size).map(|i| format!("w{i}")));
    std::fs::write(dir.join("vocab.txt"), tokens.join("\n") + "\n").unwrap();
}

/// Copies the files of checkpoint folder `from` into a new temporary folder.
pub fn copy_checkpoint(from: &Path) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["arch.json", "vocab.txt", "model.safetensors"] {
        std::fs::copy(from.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Lists the entries of `dir`, sorted; empty when it does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Returns the Python of `.venv-onnx`, or of `EDGENAS_PYTHON`. Panics with the set-up command when it
/// is missing, so the ONNX tests fail and never skip.
pub fn python() -> PathBuf {
    let python = match std::env::var_os("EDGENAS_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => repo().join(".venv-onnx/bin/python"),
    };
    assert!(
        python.is_file(),
        "Python with onnx and onnxruntime not found at {}; run scripts/setup-python-onnx.sh \
         (or set EDGENAS_PYTHON)",
        python.display()
    );
    python
}

/// Runs `export/tests/python/onnx_tools.py` with `args` and returns its stdout; panics with
/// its stderr when it fails.
pub fn onnx_tools(args: &[&std::ffi::OsStr]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/onnx_tools.py");
    let output = std::process::Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("running the Python ONNX tools");
    assert!(
        output.status.success(),
        "onnx_tools.py {:?} failed: {}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Writes a little-endian array in NumPy's `.npy` format, version 1.0.
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "{}: shape and data differ",
        path.display()
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        T::DESCR
    );
    // The magic, version and length take 10 bytes; the header ends in a newline and pads the
    // total to a multiple of 64.
    let total = (10 + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for value in data {
        bytes.extend(value.to_le());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Reads a little-endian float32 `.npy` file written by NumPy; returns the shape and values.
pub fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{} is not a .npy file",
        path.display()
    );
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'"),
        "{}: not little-endian float32: {header}",
        path.display()
    );
    assert!(
        header.contains("'fortran_order': False"),
        "{}: not C order",
        path.display()
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (shape, data)
}

pub trait NpyElement {
    const DESCR: &'static str;
    fn to_le(&self) -> Vec<u8>;
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn to_le(&self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn to_le(&self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
