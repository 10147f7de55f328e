//! Reads a checkpoint folder of `edgenas train` (`arch.json`, `vocab.txt`,
//! `model.safetensors`) without libtorch, and checks every tensor against the architecture.

use std::path::{Path, PathBuf};

use edgenas_core::{Arch, Vocab};
use safetensors::{Dtype, SafeTensors};

use crate::ExportError;

pub const ARCH_FILE: &str = "arch.json";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A row-major float32 matrix in the PyTorch `[out, in]` layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// The weights of one architecture, under the names of the PyTorch state dict.
#[derive(Clone, Debug)]
pub struct Weights {
    /// `embedding.weight`, `[V, H]`.
    pub embedding: Matrix,
    /// `cell.node0.w_x`, `[2H, H]`: gate rows, then candidate rows.
    pub node0_w_x: Matrix,
    /// `cell.node0.w_h`, `[2H, H]`.
    pub node0_w_h: Matrix,
    /// `cell.node{i}.w` for nodes 1.., in node order, each `[2H, H]`.
    pub node_w: Vec<Matrix>,
    /// `decoder.weight`, `[V, H]`; `None` when the decoder reuses the embedding.
    pub decoder_weight: Option<Matrix>,
    /// `decoder.bias`, `[V]`.
    pub decoder_bias: Vec<f32>,
}

impl Weights {
    /// Calls `f` with the state-dict name and matrix of every weight matrix, in file order:
    /// embedding, node 0's two matrices, nodes 1.., then an untied decoder.
    pub fn for_each_matrix(&self, mut f: impl FnMut(&str, &Matrix)) {
        f("embedding.weight", &self.embedding);
        f("cell.node0.w_x", &self.node0_w_x);
        f("cell.node0.w_h", &self.node0_w_h);
        for (i, m) in self.node_w.iter().enumerate() {
            f(&format!("cell.node{}.w", i + 1), m);
        }
        if let Some(decoder) = &self.decoder_weight {
            f("decoder.weight", decoder);
        }
    }

    /// Returns the decoder matrix `[V, H]`: `decoder.weight`, or the embedding when tied.
    pub fn decoder(&self) -> &Matrix {
        self.decoder_weight.as_ref().unwrap_or(&self.embedding)
    }
}

/// A trained model: architecture, vocabulary and weights.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub arch: Arch,
    pub vocab: Vocab,
    pub weights: Weights,
    /// Text of `arch.json` as written by `edgenas train`, stored unchanged in the ONNX metadata.
    pub arch_text: String,
}

/// Names and shapes of every tensor `arch` needs, in state-dict order.
pub fn expected_tensors(arch: &Arch) -> Vec<(String, Vec<usize>)> {
    let (v, h) = (arch.vocab_size, arch.hidden_size);
    let mut tensors = vec![
        ("embedding.weight".to_string(), vec![v, h]),
        ("cell.node0.w_x".to_string(), vec![2 * h, h]),
        ("cell.node0.w_h".to_string(), vec![2 * h, h]),
    ];
    for i in 1..arch.num_nodes() {
        tensors.push((format!("cell.node{i}.w"), vec![2 * h, h]));
    }
    if !arch.tie_weights {
        tensors.push(("decoder.weight".to_string(), vec![v, h]));
    }
    tensors.push(("decoder.bias".to_string(), vec![v]));
    tensors
}

impl Checkpoint {
    /// Reads and checks a checkpoint folder. Every tensor the architecture needs must be
    /// present as float32 with its shape and finite values, and no other tensor may be
    /// present, so an `arch.json` from another run is caught here and not in the graph.
    pub fn load(dir: &Path) -> Result<Checkpoint, ExportError> {
        for file in [ARCH_FILE, VOCAB_FILE, WEIGHTS_FILE] {
            if !dir.join(file).is_file() {
                return Err(ExportError::NotACheckpoint {
                    path: dir.to_path_buf(),
                    file,
                });
            }
        }
        let arch_path = dir.join(ARCH_FILE);
        let arch = Arch::load(&arch_path)?;
        let arch_text =
            std::fs::read_to_string(&arch_path).map_err(|source| ExportError::Read {
                path: arch_path.clone(),
                source,
            })?;
        let vocab_path = dir.join(VOCAB_FILE);
        let vocab = Vocab::load(&vocab_path)?;
        if vocab.len() != arch.vocab_size {
            return Err(ExportError::VocabMismatch {
                vocab: vocab_path,
                tokens: vocab.len(),
                arch: arch_path,
                vocab_size: arch.vocab_size,
            });
        }
        let weights = read_weights(&dir.join(WEIGHTS_FILE), &arch)?;
        Ok(Checkpoint {
            path: dir.to_path_buf(),
            arch,
            vocab,
            weights,
            arch_text,
        })
    }
}

/// Reads the weights of `arch` from a safetensors file.
pub fn read_weights(path: &Path, arch: &Arch) -> Result<Weights, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| ExportError::UnreadableWeights {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;

    let expected = expected_tensors(arch);
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    for name in names {
        if !expected.iter().any(|(known, _)| *known == name) {
            return Err(ExportError::UnexpectedTensor {
                path: path.to_path_buf(),
                name,
                arch: arch.summary(),
            });
        }
    }

    let mut tensors = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        tensors.push(read_tensor(&file, path, name, shape, arch)?);
    }
    let mut tensors = tensors.into_iter();
    let mut next = || tensors.next().expect("one tensor per expected name");
    let embedding = next();
    let node0_w_x = next();
    let node0_w_h = next();
    let node_w = (1..arch.num_nodes()).map(|_| next()).collect();
    let decoder_weight = (!arch.tie_weights).then(&mut next);
    let decoder_bias = next().data;
    Ok(Weights {
        embedding,
        node0_w_x,
        node0_w_h,
        node_w,
        decoder_weight,
        decoder_bias,
    })
}

fn read_tensor(
    file: &SafeTensors,
    path: &Path,
    name: &str,
    shape: &[usize],
    arch: &Arch,
) -> Result<Matrix, ExportError> {
    let view = file.tensor(name).map_err(|_| ExportError::MissingTensor {
        path: path.to_path_buf(),
        name: name.to_string(),
        arch: arch.summary(),
    })?;
    if view.shape() != shape {
        return Err(ExportError::TensorShape {
            path: path.to_path_buf(),
            name: name.to_string(),
            found: view.shape().to_vec(),
            expected: shape.to_vec(),
            arch: arch.summary(),
        });
    }
    if view.dtype() != Dtype::F32 {
        return Err(ExportError::TensorDtype {
            path: path.to_path_buf(),
            name: name.to_string(),
            found: format!("{:?}", view.dtype()),
        });
    }
    // safetensors stores little-endian values with no alignment guarantee.
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if data.iter().any(|x| !x.is_finite()) {
        return Err(ExportError::NonFiniteWeight {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    }
    let (rows, cols) = match shape {
        [rows, cols] => (*rows, *cols),
        [len] => (1, *len),
        _ => unreachable!("every edgenas tensor is a vector or a matrix"),
    };
    Ok(Matrix { rows, cols, data })
}
