//! Int8 projections with standard ONNX ops only (`MatMulInteger`, `DynamicQuantizeLinear` or
//! `QuantizeLinear`, `Cast`, `Mul`), all of which tract 0.23 runs.
//!
//! Weights are symmetric int8 with one float32 scale per output row (per output channel),
//! stored transposed to `[in, out]` as `MatMulInteger` reads them, under `{name}.quantized`
//! and `{name}.scale`. The embedding table is stored once, as `[H, V]`: the decoder reads it
//! directly and the lookup gathers its columns, so a tied model carries one int8 copy. The
//! looked-up int8 rows enter node 0 with their row scales and are never quantized again.
//! Every other activation is quantized to uint8 with a zero point, per tensor: at run time
//! (`DynamicQuantizeLinear`) or from ranges calibrated on training text (`QuantizeLinear`).
//! Products accumulate in int32 and are scaled back to float32; the gates, activations and
//! the mean of the loose ends run in float32.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Matrix, Weights};

use super::builder::{attr_int, GraphBuilder};
use super::{Operand, Precision, LOGITS_OUTPUT, TOKEN_INPUT};

/// Largest magnitude of a symmetric int8 weight; -128 is left out so the range is symmetric.
const INT8_MAX: f32 = 127.0;

/// Observed range of one float32 activation tensor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationRange {
    pub min: f32,
    pub max: f32,
}

impl ActivationRange {
    pub const EMPTY: ActivationRange = ActivationRange { min: 0.0, max: 0.0 };

    pub fn include(&mut self, value: f32) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Returns the uint8 scale and zero point that cover the range and 0, as
    /// `DynamicQuantizeLinear` computes them.
    pub fn uint8_parameters(&self) -> (f32, u8) {
        let (min, max) = (self.min.min(0.0), self.max.max(0.0));
        let scale = (max - min) / 255.0;
        if scale == 0.0 {
            return (1.0, 0);
        }
        let zero_point = (-min / scale).round_ties_even().clamp(0.0, 255.0);
        (scale, zero_point as u8)
    }
}

/// Calibrated ranges of the activations that the static scheme quantizes, by tensor name
/// (`state`, `node{i}.out`, `next_state`).
pub type StaticRanges = BTreeMap<String, ActivationRange>;

/// Activation quantization before a `MatMulInteger`, or none for weight-only int8.
#[derive(Clone, Debug, PartialEq)]
pub enum Int8Scheme {
    /// Int8 weights only: `DequantizeLinear` turns them back into float32 and every product
    /// runs in float32.
    WeightsOnly,
    /// Scale and zero point from each tensor's range at run time (`DynamicQuantizeLinear`).
    Dynamic,
    /// Constant scales and zero points from calibrated ranges (`QuantizeLinear`).
    Static(StaticRanges),
}

impl Int8Scheme {
    pub fn name(&self) -> &'static str {
        match self {
            Int8Scheme::WeightsOnly => "weights",
            Int8Scheme::Dynamic => "dynamic",
            Int8Scheme::Static(_) => "static",
        }
    }
}

/// Quantizes a `[out, in]` matrix to symmetric int8 with one scale per output row.
/// Returns the values, still `[out, in]`, and the `out` scales.
pub fn quantize_rows(m: &Matrix) -> (Vec<i8>, Vec<f32>) {
    let mut values = vec![0i8; m.rows * m.cols];
    let mut scales = Vec::with_capacity(m.rows);
    for r in 0..m.rows {
        let row = m.row(r);
        let max = row.iter().fold(0.0f32, |acc, v| acc.max(v.abs()));
        // An all-zero row gets scale 1 so that dequantization never divides by zero.
        let scale = if max > 0.0 { max / INT8_MAX } else { 1.0 };
        for (c, v) in row.iter().enumerate() {
            values[r * m.cols + c] = (v / scale).round_ties_even().clamp(-INT8_MAX, INT8_MAX) as i8;
        }
        scales.push(scale);
    }
    (values, scales)
}

/// Names of a quantized activation: uint8 values, scale and zero point.
#[derive(Clone)]
struct QuantizedActivation {
    values: String,
    scale: String,
    zero_point: String,
}

pub(crate) struct Int8<'a> {
    weights: &'a Weights,
    scheme: Int8Scheme,
    /// Quantized activations already wired, by float32 tensor name, so a node output that
    /// several nodes read is quantized once.
    quantized: HashMap<String, QuantizedActivation>,
}

impl<'a> Int8<'a> {
    pub fn new(weights: &'a Weights, scheme: Int8Scheme) -> Int8<'a> {
        Int8 {
            weights,
            scheme,
            quantized: HashMap::new(),
        }
    }

    fn add_matrix(g: &mut GraphBuilder, name: &str, m: &Matrix) {
        let (values, scales) = quantize_rows(m);
        let mut transposed = vec![0i8; values.len()];
        for r in 0..m.rows {
            for c in 0..m.cols {
                transposed[c * m.rows + r] = values[r * m.cols + c];
            }
        }
        g.initializer_i8(&format!("{name}.quantized"), &[m.cols, m.rows], &transposed);
        g.initializer_f32(&format!("{name}.scale"), &[m.rows], &scales);
    }

    fn quantize(&mut self, g: &mut GraphBuilder, input: &str) -> QuantizedActivation {
        if let Some(q) = self.quantized.get(input) {
            return q.clone();
        }
        let q = QuantizedActivation {
            values: format!("{input}.quantized"),
            scale: format!("{input}.scale"),
            zero_point: format!("{input}.zero_point"),
        };
        match &self.scheme {
            Int8Scheme::Dynamic => {
                g.node(
                    "DynamicQuantizeLinear",
                    &[input],
                    &[&q.values, &q.scale, &q.zero_point],
                );
            }
            Int8Scheme::WeightsOnly => {
                unreachable!("the weight-only graph quantizes no activation")
            }
            Int8Scheme::Static(ranges) => {
                let range = ranges.get(input).copied().unwrap_or_else(|| {
                    panic!("calibration covers every quantized activation, but not {input}")
                });
                let (scale, zero_point) = range.uint8_parameters();
                g.initializer_f32(&q.scale, &[], &[scale]);
                g.initializer_u8(&q.zero_point, &[], &[zero_point]);
                g.op(
                    "QuantizeLinear",
                    &[input, &q.scale, &q.zero_point],
                    &q.values,
                );
            }
        }
        self.quantized.insert(input.to_string(), q.clone());
        q
    }
}

impl Precision for Int8<'_> {
    fn add_weights(&mut self, g: &mut GraphBuilder) {
        let w = self.weights;
        w.for_each_matrix(|name, m| Self::add_matrix(g, name, m));
        g.initializer_f32("decoder.bias", &[w.decoder_bias.len()], &w.decoder_bias);
        g.initializer_i64("axes.1", &[1], &[1]);
    }

    fn embedding(&mut self, g: &mut GraphBuilder) -> Operand {
        // [H, batch] columns of the [H, V] table, then [batch, H] rows.
        let gather = g.node(
            "Gather",
            &["embedding.weight.quantized", TOKEN_INPUT],
            &["embedding.columns"],
        );
        attr_int(gather, "axis", 1);
        g.op("Transpose", &["embedding.columns"], "embedding.quantized");
        let scale = g.op(
            "Gather",
            &["embedding.weight.scale", TOKEN_INPUT],
            "embedding.scale",
        );
        g.op("Unsqueeze", &[&scale, "axes.1"], "embedding.row_scale");
        Operand::Int8Rows {
            values: "embedding.quantized".to_string(),
            row_scale: "embedding.row_scale".to_string(),
        }
    }

    fn project(
        &mut self,
        g: &mut GraphBuilder,
        output: &str,
        input: &Operand,
        weight: &str,
    ) -> String {
        let weight_values = format!("{weight}.quantized");
        let weight_scale = format!("{weight}.scale");
        let (product, input_scale) = match input {
            Operand::Float(name) => {
                let q = self.quantize(g, name);
                let product = g.op(
                    "MatMulInteger",
                    &[&q.values, &weight_values, &q.zero_point],
                    &format!("{output}.int32"),
                );
                (product, q.scale)
            }
            Operand::Int8Rows { values, row_scale } => {
                let product = g.op(
                    "MatMulInteger",
                    &[values, &weight_values],
                    &format!("{output}.int32"),
                );
                (product, row_scale.clone())
            }
        };
        let cast = g.node("Cast", &[&product], &[&format!("{output}.float")]);
        attr_int(
            cast,
            "to",
            onnx_protobuf::tensor_proto::DataType::FLOAT as i64,
        );
        let scaled = g.op(
            "Mul",
            &[&format!("{output}.float"), &input_scale],
            &format!("{output}.input_scaled"),
        );
        g.op("Mul", &[&scaled, &weight_scale], output)
    }

    fn decoder(&mut self, g: &mut GraphBuilder, state: &str) {
        let weight = match self.weights.decoder_weight {
            Some(_) => "decoder.weight",
            None => "embedding.weight",
        };
        let product = self.project(
            g,
            "decoder.product",
            &Operand::Float(state.to_string()),
            weight,
        );
        g.op("Add", &[&product, "decoder.bias"], LOGITS_OUTPUT);
    }

    fn format(&self) -> String {
        format!("int8-{}", self.scheme.name())
    }
}
