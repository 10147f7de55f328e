//! Bad checkpoints and output folders: each error names the file or tensor at fault and what
//! to do, and the output folder is left as it was.

mod common;

use std::collections::HashMap;
use std::path::Path;

use edgenas_export::export::REPORT_FILE;
use edgenas_export::{export, Checkpoint, ExportOptions, ExportText, NoProgress};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tempfile::TempDir;

/// Loads the checkpoint in `dir` and exports it into `out`, as `edgenas export` does; returns
/// the error message.
fn export_error(dir: &Path, out: &Path, options: &ExportOptions) -> String {
    let result = Checkpoint::load(dir).and_then(|checkpoint| {
        let text: Vec<i64> = (0..600)
            .map(|i| (i % checkpoint.arch.vocab_size) as i64)
            .collect();
        export(
            &checkpoint,
            out,
            &ExportText {
                valid: &text,
                calibration: None,
            },
            options,
            &mut NoProgress,
        )
    });
    match result {
        Ok(_) => panic!("exporting {} succeeded, expected an error", dir.display()),
        Err(error) => error.to_string(),
    }
}

/// Runs the export of a broken checkpoint into a fresh output path and checks that the error
/// contains every needle and that nothing was written.
fn assert_rejected(dir: &Path, needles: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("export");
    let error = export_error(
        dir,
        &out_dir,
        &ExportOptions {
            latency_steps: 5,
            ..Default::default()
        },
    );
    for needle in needles {
        assert!(error.contains(needle), "expected {needle:?} in: {error}");
    }
    assert!(
        common::entries(out.path()).is_empty(),
        "files written for a bad checkpoint: {:?}",
        common::entries(out.path())
    );
}

/// Rewrites the fixture's weights with `edit` applied to the map from names to (shape, values).
fn edit_weights(dir: &TempDir, edit: impl FnOnce(&mut HashMap<String, (Vec<usize>, Vec<u8>)>)) {
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: HashMap<String, (Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.shape().to_vec(), view.data().to_vec())))
        .collect();
    edit(&mut tensors);
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .map(|(name, (shape, data))| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(&views, None, &path).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    let fixture = common::fixture("tied");
    edit_weights(&fixture.dir, |t| {
        t.remove("cell.node3.w");
    });
    assert_rejected(
        fixture.dir.path(),
        &[
            "lacks tensor cell.node3.w",
            "model.safetensors",
            "export the checkpoint folder",
        ],
    );
}

#[test]
fn wrong_tensor_shape_is_named() {
    let fixture = common::fixture("tied");
    edit_weights(&fixture.dir, |t| {
        t.insert(
            "cell.node1.w".to_string(),
            (vec![32, 17], vec![0; 32 * 17 * 4]),
        );
    });
    assert_rejected(
        fixture.dir.path(),
        &[
            "tensor cell.node1.w",
            "[32, 17]",
            "needs [32, 16]",
            "check hidden_size",
        ],
    );
}

#[test]
fn arch_with_fewer_nodes_than_weights_is_rejected() {
    let fixture = common::fixture("tied");
    let arch = fixture.dir.path().join("arch.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&arch).unwrap()).unwrap();
    value["nodes"].as_array_mut().unwrap().pop();
    std::fs::write(&arch, value.to_string()).unwrap();
    assert_rejected(
        fixture.dir.path(),
        &["tensor cell.node4.w", "is not part of", "different runs"],
    );
}

#[test]
fn untied_arch_for_tied_weights_is_rejected() {
    let fixture = common::fixture("tied");
    let arch = fixture.dir.path().join("arch.json");
    let text = std::fs::read_to_string(&arch)
        .unwrap()
        .replace("\"tie_weights\": true", "\"tie_weights\": false");
    std::fs::write(&arch, text).unwrap();
    assert_rejected(fixture.dir.path(), &["lacks tensor decoder.weight"]);
}

#[test]
fn arch_with_other_hidden_size_is_rejected() {
    let fixture = common::fixture("single");
    let arch = fixture.dir.path().join("arch.json");
    let text = std::fs::read_to_string(&arch)
        .unwrap()
        .replace("\"hidden_size\": 4", "\"hidden_size\": 8");
    std::fs::write(&arch, text).unwrap();
    assert_rejected(
        fixture.dir.path(),
        &["tensor embedding.weight", "needs [11, 8]"],
    );
}

#[test]
fn vocabulary_of_wrong_length_is_rejected() {
    let fixture = common::fixture("tied");
    common::write_vocab(fixture.dir.path(), 49);
    assert_rejected(
        fixture.dir.path(),
        &["vocab.txt has 49 tokens", "vocab_size 50", "arch.json"],
    );
}

#[test]
fn missing_weights_file_is_named() {
    let fixture = common::fixture("tied");
    std::fs::remove_file(fixture.dir.path().join("model.safetensors")).unwrap();
    assert_rejected(
        fixture.dir.path(),
        &["model.safetensors not found", "not a checkpoint folder"],
    );
}

#[test]
fn truncated_weights_file_is_rejected() {
    let fixture = common::fixture("tied");
    let path = fixture.dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_rejected(
        fixture.dir.path(),
        &["cannot read weights file", "truncated"],
    );
}

#[test]
fn non_finite_weight_is_rejected() {
    let fixture = common::fixture("single");
    edit_weights(&fixture.dir, |t| {
        let (_, data) = t.get_mut("decoder.bias").unwrap();
        data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert_rejected(fixture.dir.path(), &["tensor decoder.bias", "NaN"]);
}

#[test]
fn non_empty_out_folder_is_left_untouched() {
    let fixture = common::fixture("single");
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("notes.txt"), "keep me").unwrap();
    let error = export_error(fixture.dir.path(), out.path(), &ExportOptions::default());
    assert!(error.contains("is not an earlier export"), "{error}");
    assert!(error.contains("notes.txt"), "{error}");
    assert_eq!(common::entries(out.path()), ["notes.txt"]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn lone_model_file_is_not_an_export() {
    // model.f32.onnx alone, with no report, may be another tool's file.
    let fixture = common::fixture("single");
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("model.f32.onnx"), "someone else's").unwrap();
    let error = export_error(fixture.dir.path(), out.path(), &ExportOptions::default());
    assert!(error.contains("model.f32.onnx"), "{error}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("model.f32.onnx")).unwrap(),
        "someone else's"
    );
    assert!(!out.path().join(REPORT_FILE).exists());
}

#[test]
fn out_path_that_is_a_file_is_rejected() {
    let fixture = common::fixture("single");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("export");
    std::fs::write(&file, "a file").unwrap();
    let error = export_error(fixture.dir.path(), &file, &ExportOptions::default());
    assert!(error.contains("is a file; choose a folder"), "{error}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a file");
}

#[test]
fn failed_check_writes_nothing() {
    // A perplexity limit of 0 fails for any int8 graph that is not exact.
    let fixture = common::fixture("tied");
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("export");
    let options = ExportOptions {
        int8_perplexity_tolerance: 0.0,
        latency_steps: 5,
        ..Default::default()
    };
    let error = export_error(fixture.dir.path(), &out_dir, &options);
    assert!(
        error.contains("export checks failed: int8 valid perplexity"),
        "{error}"
    );
    assert!(error.contains("--allow-accuracy-drop"), "{error}");
    assert!(
        common::entries(out.path()).is_empty(),
        "{:?}",
        common::entries(out.path())
    );
}

#[test]
fn allowed_accuracy_drop_writes_and_records_failure() {
    let fixture = common::fixture("tied");
    let checkpoint = Checkpoint::load(fixture.dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = ExportOptions {
        int8_perplexity_tolerance: 0.0,
        allow_accuracy_drop: true,
        latency_steps: 5,
        ..Default::default()
    };
    let text: Vec<i64> = (0..600).map(|i| (i % 50) as i64).collect();
    let report = export(
        &checkpoint,
        out.path(),
        &ExportText {
            valid: &text,
            calibration: None,
        },
        &options,
        &mut NoProgress,
    )
    .unwrap();
    assert!(!report.perplexity_check.passed);
    assert!(report.allow_accuracy_drop);
    let written = std::fs::read_to_string(out.path().join(REPORT_FILE)).unwrap();
    assert!(
        written.contains("\"allow_accuracy_drop\": true"),
        "{written}"
    );
}

#[test]
fn static_scheme_without_calibration_text_is_rejected() {
    let fixture = common::fixture("single");
    let out = tempfile::tempdir().unwrap();
    let options = ExportOptions {
        activations: edgenas_export::ActivationQuantization::Static,
        ..Default::default()
    };
    let error = export_error(fixture.dir.path(), &out.path().join("export"), &options);
    assert!(error.contains("calibration text"), "{error}");
    assert!(common::entries(out.path()).is_empty());
}
