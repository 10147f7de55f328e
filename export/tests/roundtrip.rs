//! The reference forward pass and the float32 graph against the PyTorch fixtures of
//! `search/tests/fixtures/`, the metadata round trip, and a whole export of a fixture.

mod common;

use edgenas_export::checks::max_abs_diff;
use edgenas_export::export::{EXPORT_FILES, FLOAT_FILE, INT8_FILE, REPORT_FILE};
use edgenas_export::onnx::{self, read_metadata, Int8Scheme};
use edgenas_export::reference::{Reference, StepOutput};
use edgenas_export::tract::TractModel;
use edgenas_export::{export, Checkpoint, ExportOptions, ExportReport, ExportText, NoProgress};

/// Largest absolute difference accepted between a float32 forward pass and the fixtures'
/// float64 PyTorch values, as in `search/tests/cell_parity.rs`.
const F32_TOLERANCE: f64 = 1e-5;

const CASES: [&str; 3] = ["tied", "untied", "single"];

/// Runs `step` over the fixture's `[T, B]` tokens from its start state; returns the logits
/// `[T, B, V]` and the final state.
fn run_fixture(
    fixture: &common::Fixture,
    mut step: impl FnMut(&[i64], &[f32]) -> StepOutput,
) -> (Vec<f32>, Vec<f32>) {
    let mut state = fixture.state.clone();
    let mut logits = Vec::new();
    for t in 0..fixture.steps {
        let out = step(
            &fixture.tokens[t * fixture.batch..(t + 1) * fixture.batch],
            &state,
        );
        logits.extend(out.logits);
        state = out.state;
    }
    (logits, state)
}

#[test]
fn reference_matches_pytorch_fixtures() {
    for case in CASES {
        let fixture = common::fixture(case);
        let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
        let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
        let (logits, state) = run_fixture(&fixture, |tokens, state| {
            reference.step(tokens, state).unwrap()
        });
        let logit_diff = max_abs_diff(&logits, &fixture.expected_logits);
        let state_diff = max_abs_diff(&state, &fixture.expected_state);
        assert!(
            logit_diff < F32_TOLERANCE,
            "{case}: logits differ from PyTorch by {logit_diff:e}"
        );
        assert!(
            state_diff < F32_TOLERANCE,
            "{case}: final state differs from PyTorch by {state_diff:e}"
        );
    }
}

#[test]
fn perturbed_weight_breaks_reference_parity() {
    // Guards the parity check itself: a small change to one node matrix must show.
    let fixture = common::fixture("tied");
    let mut checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
    checkpoint.weights.node_w[2]
        .data
        .iter_mut()
        .for_each(|w| *w += 1e-2);
    let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
    let (logits, _) = run_fixture(&fixture, |tokens, state| {
        reference.step(tokens, state).unwrap()
    });
    let diff = max_abs_diff(&logits, &fixture.expected_logits);
    assert!(
        diff > F32_TOLERANCE,
        "a perturbed weight went unnoticed ({diff:e})"
    );
}

#[test]
fn float32_graph_matches_pytorch_fixtures() {
    for case in CASES {
        let fixture = common::fixture(case);
        let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
        let model = TractModel::load(
            &onnx::float_model(&checkpoint),
            checkpoint.arch.hidden_size,
            "float32",
        )
        .unwrap();
        let (logits, state) =
            run_fixture(&fixture, |tokens, state| model.step(tokens, state).unwrap());
        let logit_diff = max_abs_diff(&logits, &fixture.expected_logits);
        let state_diff = max_abs_diff(&state, &fixture.expected_state);
        assert!(
            logit_diff < F32_TOLERANCE,
            "{case}: tract logits differ from PyTorch by {logit_diff:e}"
        );
        assert!(
            state_diff < F32_TOLERANCE,
            "{case}: tract final state differs from PyTorch by {state_diff:e}"
        );
    }
}

#[test]
fn metadata_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["tied", "untied"] {
        let fixture = common::fixture(case);
        let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
        let graphs = [
            ("float32", onnx::float_model(&checkpoint)),
            (
                "int8-weights",
                onnx::int8_model(&checkpoint, &Int8Scheme::WeightsOnly),
            ),
            (
                "int8-dynamic",
                onnx::int8_model(&checkpoint, &Int8Scheme::Dynamic),
            ),
        ];
        for (format, bytes) in graphs {
            let path = dir.path().join(format!("{case}.{format}.onnx"));
            std::fs::write(&path, bytes).unwrap();
            let metadata = read_metadata(&path).unwrap();
            assert_eq!(metadata.arch, checkpoint.arch, "{case} {format}: arch");
            assert_eq!(
                metadata.vocab, checkpoint.vocab,
                "{case} {format}: vocabulary"
            );
            assert_eq!(metadata.format, format, "{case} {format}: format");
        }
    }
}

#[test]
fn metadata_of_non_onnx_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, b"\xff\xff not protobuf").unwrap();
    let error = read_metadata(&path).unwrap_err().to_string();
    assert!(error.contains("is not an ONNX model"), "{error}");
    assert!(error.contains(&path.display().to_string()), "{error}");
}

/// Token ids `0..vocab` repeated, a stand-in text for the fixtures' made-up vocabularies.
fn counting_text(vocab: usize, tokens: usize) -> Vec<i64> {
    (0..tokens).map(|i| ((i * 7) % vocab) as i64).collect()
}

#[test]
fn export_of_fixture_writes_three_files() {
    let fixture = common::fixture("tied");
    let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
    let text = counting_text(checkpoint.arch.vocab_size, 3_000);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("export");
    let options = ExportOptions {
        allow_accuracy_drop: true,
        latency_steps: 20,
        ..Default::default()
    };
    let report = export(
        &checkpoint,
        &out_dir,
        &ExportText {
            valid: &text,
            calibration: None,
        },
        &options,
        &mut NoProgress,
    )
    .unwrap();

    assert_eq!(common::entries(&out_dir), sorted(&EXPORT_FILES));
    let written = std::fs::read_to_string(out_dir.join(REPORT_FILE)).unwrap();
    assert_eq!(
        written,
        serde_json::to_string_pretty(&report).unwrap() + "\n"
    );
    let parsed: ExportReport = serde_json::from_str(&written).unwrap();
    assert_eq!(parsed.files, report.files);
    assert_eq!(
        report.files[0].bytes,
        std::fs::metadata(out_dir.join(FLOAT_FILE)).unwrap().len()
    );
    assert_eq!(
        report.files[1].bytes,
        std::fs::metadata(out_dir.join(INT8_FILE)).unwrap().len()
    );
    assert!(report.float_check.passed, "{report}");
    assert!(
        report.float_check.comparison.max_abs_logit_diff < F32_TOLERANCE,
        "{report}"
    );
    assert_eq!(
        read_metadata(&out_dir.join(INT8_FILE)).unwrap().format,
        "int8-weights"
    );
    // Nothing is left beside the output folder.
    assert_eq!(common::entries(out.path()), ["export"]);
}

#[test]
fn export_replaces_an_earlier_export() {
    let fixture = common::fixture("single");
    let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
    let text = counting_text(checkpoint.arch.vocab_size, 500);
    let out = tempfile::tempdir().unwrap();
    let options = ExportOptions {
        allow_accuracy_drop: true,
        latency_steps: 10,
        ..Default::default()
    };
    let run = || {
        export(
            &checkpoint,
            out.path(),
            &ExportText {
                valid: &text,
                calibration: None,
            },
            &options,
            &mut NoProgress,
        )
    };
    run().unwrap();
    std::fs::write(out.path().join(FLOAT_FILE), b"stale").unwrap();
    run().unwrap();
    assert_eq!(common::entries(out.path()), sorted(&EXPORT_FILES));
    assert_ne!(
        std::fs::read(out.path().join(FLOAT_FILE)).unwrap(),
        b"stale"
    );
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}
