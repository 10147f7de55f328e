//! Float32 projections: one `Gemm` with `transB = 1` per weight, so every initializer keeps
//! the PyTorch `[out, in]` layout and state-dict name.

use crate::checkpoint::{Matrix, Weights};

use super::builder::{attr_int, GraphBuilder};
use super::{Operand, Precision, LOGITS_OUTPUT, TOKEN_INPUT};

pub(crate) struct Float32<'a> {
    pub(crate) weights: &'a Weights,
}

impl<'a> Float32<'a> {
    pub fn new(weights: &'a Weights) -> Float32<'a> {
        Float32 { weights }
    }

    fn add_matrix(g: &mut GraphBuilder, name: &str, m: &Matrix) {
        g.initializer_f32(name, &[m.rows, m.cols], &m.data);
    }
}

impl Precision for Float32<'_> {
    fn add_weights(&mut self, g: &mut GraphBuilder) {
        let w = self.weights;
        w.for_each_matrix(|name, m| Self::add_matrix(g, name, m));
        g.initializer_f32("decoder.bias", &[w.decoder_bias.len()], &w.decoder_bias);
    }

    fn embedding(&mut self, g: &mut GraphBuilder) -> Operand {
        let gather = g.node("Gather", &["embedding.weight", TOKEN_INPUT], &["embedding"]);
        attr_int(gather, "axis", 0);
        Operand::Float("embedding".to_string())
    }

    fn project(
        &mut self,
        g: &mut GraphBuilder,
        output: &str,
        input: &Operand,
        weight: &str,
    ) -> String {
        let Operand::Float(input) = input else {
            unreachable!("the float32 graph has only float32 operands")
        };
        let gemm = g.node("Gemm", &[input, weight], &[output]);
        attr_int(gemm, "transB", 1);
        output.to_string()
    }

    fn decoder(&mut self, g: &mut GraphBuilder, state: &str) {
        let weight = match self.weights.decoder_weight {
            Some(_) => "decoder.weight",
            None => "embedding.weight",
        };
        let gemm = g.node("Gemm", &[state, weight, "decoder.bias"], &[LOGITS_OUTPUT]);
        attr_int(gemm, "transB", 1);
    }

    fn format(&self) -> String {
        "float32".to_string()
    }
}
