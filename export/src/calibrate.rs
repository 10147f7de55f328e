//! Calibration of the static int8 scheme: the range of every activation that the int8 graph
//! quantizes, observed by the reference forward pass on training text.

use edgenas_core::Arch;

use crate::onnx::{ActivationRange, StaticRanges, STATE_INPUT, STATE_OUTPUT};
use crate::reference::Reference;
use crate::ExportError;

/// Runs the reference over `ids` as one sequence, the state carried from zero, and returns the
/// min and max of the input state, of each node output that another node reads, and of the
/// cell output. No clipping is applied, so the quantized graph never saturates on this text.
pub fn calibrate(
    reference: &Reference,
    arch: &Arch,
    ids: &[i64],
) -> Result<StaticRanges, ExportError> {
    if ids.is_empty() {
        return Err(ExportError::TooFewTokens {
            text: "the calibration text",
            tokens: 0,
            needed: 1,
        });
    }
    let read: Vec<usize> = arch.nodes.iter().filter_map(|n| n.input).collect();
    let mut state_range = ActivationRange::EMPTY;
    let mut output_range = ActivationRange::EMPTY;
    let mut node_ranges = vec![ActivationRange::EMPTY; arch.num_nodes()];
    let mut state = vec![0.0f32; arch.hidden_size];
    for &id in ids {
        state.iter().for_each(|&v| state_range.include(v));
        let trace = reference.cell(id, &state)?;
        for &i in &read {
            trace.nodes[i]
                .iter()
                .for_each(|&v| node_ranges[i].include(v as f32));
        }
        state = trace.output.iter().map(|&v| v as f32).collect();
        state.iter().for_each(|&v| output_range.include(v));
    }

    let mut ranges = StaticRanges::new();
    ranges.insert(STATE_INPUT.to_string(), state_range);
    ranges.insert(STATE_OUTPUT.to_string(), output_range);
    for i in read {
        ranges.insert(format!("node{i}.out"), node_ranges[i]);
    }
    Ok(ranges)
}

/// Returns the prefix of `ids` with the first `sentences` sentences, each ended by `eos`, or
/// all of `ids` when it has fewer.
pub fn first_sentences(ids: &[i64], eos: i64, sentences: usize) -> &[i64] {
    let mut seen = 0;
    for (i, &id) in ids.iter().enumerate() {
        if id == eos {
            seen += 1;
            if seen == sentences {
                return &ids[..=i];
            }
        }
    }
    ids
}
