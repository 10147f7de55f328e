//! Checks of the exported graphs by independent tools: the onnx checker, and onnxruntime
//! (graph optimizations disabled) against tract on the same inputs.
//!
//! These tests need `.venv-onnx` (scripts/setup-python-onnx.sh) and fail without it.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use edgenas_export::calibrate::calibrate;
use edgenas_export::checks::max_abs_diff;
use edgenas_export::onnx::{self, quantize_rows, Int8Scheme};
use edgenas_export::reference::Reference;
use edgenas_export::tract::TractModel;
use edgenas_export::Checkpoint;

/// Largest absolute logit or state difference accepted between onnxruntime and tract on the
/// float32 graph, and on the weight-only int8 graph, which also computes in float32.
const FLOAT_TOLERANCE: f64 = 1e-5;

/// Ops the graphs may use: standard `ai.onnx` ops that tract 0.23 runs.
const ALLOWED_OPS: [&str; 18] = [
    "Add",
    "Cast",
    "DequantizeLinear",
    "Div",
    "DynamicQuantizeLinear",
    "Gather",
    "Gemm",
    "Identity",
    "MatMulInteger",
    "Mul",
    "QuantizeLinear",
    "Relu",
    "Sigmoid",
    "Split",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// The checkpoints under test: the three PyTorch fixtures and models/ptb-small, with token ids
/// `[T, B]` and a start state `[B, H]` for each.
struct Case {
    name: String,
    checkpoint: Checkpoint,
    steps: usize,
    batch: usize,
    tokens: Vec<i64>,
    state: Vec<f32>,
    /// Keeps the fixture's checkpoint folder alive.
    _dir: Option<tempfile::TempDir>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for name in ["tied", "untied", "single"] {
        let fixture = common::fixture(name);
        cases.push(Case {
            name: name.to_string(),
            checkpoint: Checkpoint::load(fixture.dir.path()).unwrap(),
            steps: fixture.steps,
            batch: fixture.batch,
            tokens: fixture.tokens.clone(),
            state: fixture.state.clone(),
            _dir: Some(fixture.dir),
        });
    }
    let checkpoint = Checkpoint::load(&common::ptb_small()).unwrap();
    let (steps, batch) = (20, 3);
    let ids = common::ptb_ids("valid", &checkpoint.vocab, steps * batch);
    // Time-major [T, B]: column b reads the text from token b * steps.
    let tokens = (0..steps)
        .flat_map(|t| (0..batch).map(move |b| (t, b)))
        .map(|(t, b)| ids[b * steps + t])
        .collect();
    let h = checkpoint.arch.hidden_size;
    cases.push(Case {
        name: "ptb-small".to_string(),
        checkpoint,
        steps,
        batch,
        tokens,
        state: vec![0.0; batch * h],
        _dir: None,
    });
    cases
}

/// Returns the int8 scheme's graph; the static scheme is calibrated on the case's tokens.
fn int8_bytes(case: &Case, scheme: &str) -> (Vec<u8>, Int8Scheme) {
    let checkpoint = &case.checkpoint;
    let scheme = match scheme {
        "weights" => Int8Scheme::WeightsOnly,
        "dynamic" => Int8Scheme::Dynamic,
        "static" => {
            let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
            Int8Scheme::Static(calibrate(&reference, &checkpoint.arch, &case.tokens).unwrap())
        }
        other => panic!("unknown scheme {other}"),
    };
    (onnx::int8_model(checkpoint, &scheme), scheme)
}

fn check_model(path: &Path) -> serde_json::Value {
    let stdout = common::onnx_tools(&[OsStr::new("check"), path.as_os_str()]);
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn checker_accepts_every_graph() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let mut graphs = vec![("float32".to_string(), onnx::float_model(&case.checkpoint))];
        for scheme in ["weights", "dynamic", "static"] {
            graphs.push((format!("int8-{scheme}"), int8_bytes(&case, scheme).0));
        }
        for (format, bytes) in graphs {
            let path = dir.path().join(format!("{}.{format}.onnx", case.name));
            std::fs::write(&path, bytes).unwrap();
            let summary = check_model(&path);
            let label = format!("{} {format}", case.name);
            assert_eq!(summary["ir_version"], onnx::IR_VERSION, "{label}");
            assert_eq!(
                summary["opsets"],
                serde_json::json!({"ai.onnx": onnx::OPSET}),
                "{label}"
            );
            assert_eq!(
                summary["inputs"],
                serde_json::json!(["token", "state"]),
                "{label}"
            );
            assert_eq!(
                summary["outputs"],
                serde_json::json!(["logits", "next_state"]),
                "{label}"
            );
            assert_eq!(
                summary["metadata_keys"],
                serde_json::json!(["edgenas.arch", "edgenas.format", "edgenas.vocab"]),
                "{label}"
            );
            for op in summary["ops"].as_array().unwrap() {
                let op = op.as_str().unwrap();
                let name = op
                    .strip_prefix("ai.onnx:")
                    .unwrap_or_else(|| panic!("{label}: {op} is not a standard op"));
                assert!(ALLOWED_OPS.contains(&name), "{label}: unexpected op {name}");
            }
        }
    }
}

/// Inputs and outputs of tract over `case.steps` steps with the state carried.
struct Trace {
    states: Vec<f32>,
    logits: Vec<f32>,
    next_states: Vec<f32>,
}

fn run_tract(case: &Case, bytes: &[u8]) -> Trace {
    let h = case.checkpoint.arch.hidden_size;
    let model = TractModel::load(bytes, h, "test").unwrap();
    let mut trace = Trace {
        states: Vec::new(),
        logits: Vec::new(),
        next_states: Vec::new(),
    };
    let mut state = case.state.clone();
    for t in 0..case.steps {
        let tokens = &case.tokens[t * case.batch..(t + 1) * case.batch];
        let out = model.step(tokens, &state).unwrap();
        trace.states.extend(&state);
        trace.logits.extend(&out.logits);
        trace.next_states.extend(&out.state);
        state = out.state;
    }
    trace
}

/// Runs onnxruntime on the inputs tract saw at each step; returns its logits and next states.
fn run_onnxruntime(case: &Case, bytes: &[u8]) -> (Vec<f32>, Vec<f32>, Trace) {
    let trace = run_tract(case, bytes);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, bytes).unwrap();
    let h = case.checkpoint.arch.hidden_size;
    common::write_npy(
        &dir.path().join("token.npy"),
        &[case.steps, case.batch],
        &case.tokens,
    );
    common::write_npy(
        &dir.path().join("state.npy"),
        &[case.steps, case.batch, h],
        &trace.states,
    );
    common::onnx_tools(&[OsStr::new("run"), model.as_os_str(), dir.path().as_os_str()]);
    let (logit_shape, logits) = common::read_npy_f32(&dir.path().join("logits.npy"));
    let (state_shape, next_states) = common::read_npy_f32(&dir.path().join("next_state.npy"));
    assert_eq!(
        logit_shape,
        [case.steps, case.batch, case.checkpoint.arch.vocab_size]
    );
    assert_eq!(state_shape, [case.steps, case.batch, h]);
    (logits, next_states, trace)
}

#[test]
fn onnxruntime_matches_tract_float32() {
    for case in cases() {
        let (logits, states, trace) = run_onnxruntime(&case, &onnx::float_model(&case.checkpoint));
        let logit_diff = max_abs_diff(&logits, &trace.logits);
        let state_diff = max_abs_diff(&states, &trace.next_states);
        eprintln!(
            "{} float32: logits {logit_diff:.2e}, state {state_diff:.2e}",
            case.name
        );
        assert!(
            logit_diff <= FLOAT_TOLERANCE,
            "{}: logits differ by {logit_diff:e}",
            case.name
        );
        assert!(
            state_diff <= FLOAT_TOLERANCE,
            "{}: next_state differs by {state_diff:e}",
            case.name
        );
    }
}

#[test]
fn onnxruntime_matches_tract_int8_weights_only() {
    for case in cases() {
        let (bytes, _) = int8_bytes(&case, "weights");
        let (logits, states, trace) = run_onnxruntime(&case, &bytes);
        let logit_diff = max_abs_diff(&logits, &trace.logits);
        let state_diff = max_abs_diff(&states, &trace.next_states);
        eprintln!(
            "{} int8 weights: logits {logit_diff:.2e}, state {state_diff:.2e}",
            case.name
        );
        assert!(
            logit_diff <= FLOAT_TOLERANCE,
            "{}: logits differ by {logit_diff:e}",
            case.name
        );
        assert!(
            state_diff <= FLOAT_TOLERANCE,
            "{}: next_state differs by {state_diff:e}",
            case.name
        );
    }
}

/// Compares the int8 graph of `scheme` in both runtimes, step by step. A logit is
/// `(int32 accumulator) * s_h * s_w[v] + b[v]`, so one quantization step of logit `v` is
/// `s_h * s_w[v]`, with `s_h` the uint8 scale of the state that enters the decoder and `s_w`
/// the decoder's row scales. Each step's logits may differ by one step of the largest row
/// scale. The state may differ by one uint8 step of its own range.
fn check_int8_against_onnxruntime(scheme_name: &str) {
    for case in cases() {
        let (bytes, scheme) = int8_bytes(&case, scheme_name);
        let (logits, states, trace) = run_onnxruntime(&case, &bytes);
        let (_, weight_scales) = quantize_rows(case.checkpoint.weights.decoder());
        let max_weight_scale = weight_scales.iter().fold(0.0f32, |a, &b| a.max(b)) as f64;
        let (h, v, b) = (
            case.checkpoint.arch.hidden_size,
            case.checkpoint.arch.vocab_size,
            case.batch,
        );
        for t in 0..case.steps {
            let next = &trace.next_states[t * b * h..(t + 1) * b * h];
            let state_scale = match &scheme {
                Int8Scheme::Static(ranges) => ranges["next_state"].uint8_parameters().0 as f64,
                _ => {
                    let (lo, hi) = next
                        .iter()
                        .fold((0.0f32, 0.0f32), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                    ((hi - lo) / 255.0) as f64
                }
            };
            let logit_step = state_scale * max_weight_scale;
            let logit_diff = max_abs_diff(
                &logits[t * b * v..(t + 1) * b * v],
                &trace.logits[t * b * v..(t + 1) * b * v],
            );
            let state_diff = max_abs_diff(&states[t * b * h..(t + 1) * b * h], next);
            assert!(
                logit_diff <= logit_step,
                "{} int8 {scheme_name} step {t}: logits differ by {logit_diff:e}, more than one step {logit_step:e}",
                case.name
            );
            assert!(
                state_diff <= state_scale,
                "{} int8 {scheme_name} step {t}: next_state differs by {state_diff:e}, more than one step {state_scale:e}",
                case.name
            );
        }
        eprintln!(
            "{} int8 {scheme_name}: max logit diff {:.2e}, max state diff {:.2e}",
            case.name,
            max_abs_diff(&logits, &trace.logits),
            max_abs_diff(&states, &trace.next_states)
        );
    }
}

#[test]
fn onnxruntime_matches_tract_int8_dynamic() {
    check_int8_against_onnxruntime("dynamic");
}

#[test]
fn onnxruntime_matches_tract_int8_static() {
    check_int8_against_onnxruntime("static");
}
