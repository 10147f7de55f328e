//! Weight-only int8: every weight is stored as symmetric int8 `[out, in]` with one scale per
//! output row, and a per-axis `DequantizeLinear` restores the float32 matrix under its
//! state-dict name. The rest of the graph is the float32 graph, so tract folds the
//! dequantization into constants when it loads the model and runs float32 products.

use crate::checkpoint::{Matrix, Weights};

use super::builder::{attr_int, GraphBuilder};
use super::float::Float32;
use super::{quantize_rows, Operand, Precision};

pub(crate) struct WeightsOnly<'a> {
    float: Float32<'a>,
}

impl<'a> WeightsOnly<'a> {
    pub fn new(weights: &'a Weights) -> WeightsOnly<'a> {
        WeightsOnly {
            float: Float32::new(weights),
        }
    }

    fn add_matrix(g: &mut GraphBuilder, name: &str, m: &Matrix) {
        let (values, scales) = quantize_rows(m);
        let quantized = format!("{name}.quantized");
        let scale = format!("{name}.scale");
        g.initializer_i8(&quantized, &[m.rows, m.cols], &values);
        g.initializer_f32(&scale, &[m.rows], &scales);
        let dequantize = g.node("DequantizeLinear", &[&quantized, &scale], &[name]);
        attr_int(dequantize, "axis", 0);
    }
}

impl Precision for WeightsOnly<'_> {
    fn add_weights(&mut self, g: &mut GraphBuilder) {
        let w = self.float.weights;
        w.for_each_matrix(|name, m| Self::add_matrix(g, name, m));
        g.initializer_f32("decoder.bias", &[w.decoder_bias.len()], &w.decoder_bias);
    }

    fn embedding(&mut self, g: &mut GraphBuilder) -> Operand {
        self.float.embedding(g)
    }

    fn project(
        &mut self,
        g: &mut GraphBuilder,
        output: &str,
        input: &Operand,
        weight: &str,
    ) -> String {
        self.float.project(g, output, input, weight)
    }

    fn decoder(&mut self, g: &mut GraphBuilder, state: &str) {
        self.float.decoder(g, state)
    }

    fn format(&self) -> String {
        "int8-weights".to_string()
    }
}
