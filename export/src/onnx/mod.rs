//! The ONNX graph of one recurrent step, in float32 or int8, and its metadata.
//!
//! Inputs are `token` (int64 `[batch]`) and `state` (float32 `[batch, hidden]`); outputs are
//! `logits` (float32 `[batch, vocab]`) and `next_state` (float32 `[batch, hidden]`). The
//! batch dimension is symbolic. Node names start with the cell node they belong to
//! (`node3.gate`, `node3.out`), and the float32 initializers keep the PyTorch state-dict names
//! (`cell.node3.w`), so the graph reads like `search/src/model.rs` in a viewer such as Netron.

mod builder;
mod float;
mod int8;
mod weights_only;

use std::path::Path;

use edgenas_core::{Activation, Arch, Vocab};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{Message, ModelProto, OperatorSetIdProto, StringStringEntryProto};

use crate::checkpoint::Checkpoint;
use crate::ExportError;
use builder::{attr_int, Dim, GraphBuilder};
pub use int8::{quantize_rows, ActivationRange, Int8Scheme, StaticRanges};

/// Version of the default ONNX operator set (`ai.onnx`) the graphs use. Opset 13 is the first
/// with per-axis `QuantizeLinear` and `DequantizeLinear`; every op used here exists in it.
pub const OPSET: i64 = 13;
/// ONNX IR version 7, the one that goes with opset 13.
pub const IR_VERSION: i64 = 7;

/// Metadata key of the `arch.json` text.
pub const ARCH_KEY: &str = "edgenas.arch";
/// Metadata key of the vocabulary: the tokens in id order, joined by "\n".
pub const VOCAB_KEY: &str = "edgenas.vocab";
/// Metadata key of the weight format: `float32`, `int8-dynamic` or `int8-static`.
pub const FORMAT_KEY: &str = "edgenas.format";

pub const TOKEN_INPUT: &str = "token";
pub const STATE_INPUT: &str = "state";
pub const LOGITS_OUTPUT: &str = "logits";
pub const STATE_OUTPUT: &str = "next_state";

/// An operand of a projection: a float32 tensor, or the int8 embedding rows with one scale
/// per batch row (`[batch, 1]`).
pub(crate) enum Operand {
    Float(String),
    Int8Rows { values: String, row_scale: String },
}

/// Matrix-product strategy of a graph: float32 `Gemm`, or int8 `MatMulInteger`.
pub(crate) trait Precision {
    /// Adds the weights as initializers.
    fn add_weights(&mut self, g: &mut GraphBuilder);
    /// Wires the embedding lookup of the `token` input.
    fn embedding(&mut self, g: &mut GraphBuilder) -> Operand;
    /// Wires `input W^T` for the `[out, in]` weight `weight` (a state-dict name) into a
    /// float32 tensor named `output`.
    fn project(
        &mut self,
        g: &mut GraphBuilder,
        output: &str,
        input: &Operand,
        weight: &str,
    ) -> String;
    /// Wires the decoder, `state E^T + b`, into the `logits` output.
    fn decoder(&mut self, g: &mut GraphBuilder, state: &str);
    /// Value of the `edgenas.format` metadata key.
    fn format(&self) -> String;
}

/// Writes the float32 model of `checkpoint` as ONNX bytes.
pub fn float_model(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut precision = float::Float32::new(&checkpoint.weights);
    model_bytes(checkpoint, &mut precision)
}

/// Writes the int8 model of `checkpoint` as ONNX bytes.
pub fn int8_model(checkpoint: &Checkpoint, scheme: &Int8Scheme) -> Vec<u8> {
    if *scheme == Int8Scheme::WeightsOnly {
        return model_bytes(
            checkpoint,
            &mut weights_only::WeightsOnly::new(&checkpoint.weights),
        );
    }
    let mut precision = int8::Int8::new(&checkpoint.weights, scheme.clone());
    model_bytes(checkpoint, &mut precision)
}

fn model_bytes(checkpoint: &Checkpoint, precision: &mut dyn Precision) -> Vec<u8> {
    let arch = &checkpoint.arch;
    let mut g = GraphBuilder::new("edgenas_step");
    let (h, v) = (arch.hidden_size, arch.vocab_size);
    g.input(TOKEN_INPUT, DataType::INT64, &[Dim::Batch]);
    g.input(STATE_INPUT, DataType::FLOAT, &[Dim::Batch, Dim::Fixed(h)]);
    precision.add_weights(&mut g);
    wire_cell(&mut g, arch, precision);
    g.output(LOGITS_OUTPUT, DataType::FLOAT, &[Dim::Batch, Dim::Fixed(v)]);
    g.output(STATE_OUTPUT, DataType::FLOAT, &[Dim::Batch, Dim::Fixed(h)]);

    let metadata = [
        (ARCH_KEY, checkpoint.arch_text.clone()),
        (VOCAB_KEY, checkpoint.vocab.tokens().join("\n")),
        (FORMAT_KEY, precision.format()),
    ];
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "edgenas".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: format!(
            "One step of the edgenas language model {}: token [batch] and state [batch, {h}] \
             in, logits [batch, {v}] and next_state out.",
            arch.summary()
        ),
        graph: Some(g.finish()).into(),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: key.to_string(),
                value,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    model
        .write_to_bytes()
        .expect("an in-memory ONNX model always serializes")
}

/// Wires the cell and the decoder between the graph inputs and outputs.
fn wire_cell(g: &mut GraphBuilder, arch: &Arch, precision: &mut dyn Precision) {
    let x = precision.embedding(g);
    let state = Operand::Float(STATE_INPUT.to_string());
    let pre_x = precision.project(g, "node0.pre_x", &x, "cell.node0.w_x");
    let pre_h = precision.project(g, "node0.pre_h", &state, "cell.node0.w_h");
    let pre0 = g.op("Add", &[&pre_x, &pre_h], "node0.pre");
    let mut outputs = vec![highway(g, 0, &pre0, STATE_INPUT, arch.nodes[0].activation)];

    for (i, node) in arch.nodes.iter().enumerate().skip(1) {
        let input = outputs[node.input.expect("a validated node i > 0 has an input")].clone();
        let weight = format!("cell.node{i}.w");
        let pre = precision.project(
            g,
            &format!("node{i}.pre"),
            &Operand::Float(input.clone()),
            &weight,
        );
        outputs.push(highway(g, i, &pre, &input, node.activation));
    }

    // The cell output is the mean of the loose ends, summed in node order as the tch model does.
    let loose_ends = arch.loose_ends();
    if loose_ends.len() == 1 {
        g.op("Identity", &[&outputs[loose_ends[0]]], STATE_OUTPUT);
    } else {
        let mut sum = outputs[loose_ends[0]].clone();
        for (k, &i) in loose_ends.iter().enumerate().skip(1) {
            let name = format!("cell.sum{k}");
            sum = g.op("Add", &[&sum, &outputs[i]], &name);
        }
        g.initializer_f32("cell.loose_end_count", &[], &[loose_ends.len() as f32]);
        g.op("Div", &[&sum, "cell.loose_end_count"], STATE_OUTPUT);
    }
    precision.decoder(g, STATE_OUTPUT);
}

/// Wires highway node `i`: `carry + sigmoid(gate) * (f(candidate) - carry)`, where
/// `pre = [gate | candidate]` is `[batch, 2H]`. Returns the name of the node output.
fn highway(
    g: &mut GraphBuilder,
    i: usize,
    pre: &str,
    carry: &str,
    activation: Activation,
) -> String {
    let gate_pre = format!("node{i}.gate_pre");
    let candidate_pre = format!("node{i}.candidate_pre");
    let split = g.node("Split", &[pre], &[&gate_pre, &candidate_pre]);
    attr_int(split, "axis", 1);
    let gate = g.op("Sigmoid", &[&gate_pre], &format!("node{i}.gate"));
    let candidate = match activation {
        Activation::Identity => candidate_pre,
        Activation::Tanh => g.op("Tanh", &[&candidate_pre], &format!("node{i}.candidate")),
        Activation::Relu => g.op("Relu", &[&candidate_pre], &format!("node{i}.candidate")),
        Activation::Sigmoid => g.op("Sigmoid", &[&candidate_pre], &format!("node{i}.candidate")),
    };
    let delta = g.op("Sub", &[&candidate, carry], &format!("node{i}.delta"));
    let gated = g.op("Mul", &[&gate, &delta], &format!("node{i}.gated"));
    g.op("Add", &[carry, &gated], &format!("node{i}.out"))
}

/// The architecture, vocabulary and weight format stored in an exported model's metadata.
#[derive(Clone, Debug)]
pub struct ModelMetadata {
    pub arch: Arch,
    pub vocab: Vocab,
    pub format: String,
}

/// Reads the metadata of an exported ONNX file, so one file is enough for the runtime.
pub fn read_metadata(path: &Path) -> Result<ModelMetadata, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| ExportError::NotOnnx {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let value = |key: &'static str| {
        model
            .metadata_props
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.clone())
            .ok_or_else(|| ExportError::MissingMetadata {
                path: path.to_path_buf(),
                key,
            })
    };
    let source = format!("{} metadata {ARCH_KEY}", path.display());
    let arch: Arch =
        serde_json::from_str(&value(ARCH_KEY)?).map_err(|e| edgenas_core::ArchError::Parse {
            path: source.clone(),
            source: e,
        })?;
    arch.validate()
        .map_err(|e| edgenas_core::ArchError::InvalidFile {
            path: source,
            source: Box::new(e),
        })?;
    let tokens = value(VOCAB_KEY)?.split('\n').map(str::to_string).collect();
    let vocab = Vocab::from_tokens(tokens, &format!("{} metadata {VOCAB_KEY}", path.display()))?;
    Ok(ModelMetadata {
        arch,
        vocab,
        format: value(FORMAT_KEY)?,
    })
}
