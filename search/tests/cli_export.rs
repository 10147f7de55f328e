//! `edgenas export` end to end on `models/ptb-small`, with a slice of Penn Treebank so the
//! test stays short, and its usage and input errors.

mod common;

use std::path::{Path, PathBuf};

use common::{edgenas, repo, text};

/// Penn Treebank folder: `EDGENAS_PTB_DIR`, or the data folder beside the repository that CI
/// provides.
fn ptb_dir() -> PathBuf {
    match std::env::var_os("EDGENAS_PTB_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ptb"),
    }
}

/// Writes a corpus of the first `lines` lines of each Penn Treebank split.
fn ptb_slice(dir: &Path, lines: usize) {
    for split in ["train", "valid", "test"] {
        let path = ptb_dir().join(format!("ptb.{split}.txt"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; set EDGENAS_PTB_DIR", path.display()));
        let slice: Vec<&str> = text.lines().take(lines).collect();
        std::fs::write(dir.join(format!("{split}.txt")), slice.join("\n") + "\n").unwrap();
    }
}

#[test]
fn export_ptb_small_writes_checked_files() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    ptb_slice(&corpus, 500);
    let out = dir.path().join("export");
    let checkpoint = repo().join("models/ptb-small");

    let output = edgenas(&[
        "export",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--int8",
        "static",
    ]);

    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&output.stderr)
    );
    assert!(stdout.contains("float32 vs reference"), "{stdout}");
    assert_eq!(stdout.matches(": passed").count(), 2, "{stdout}");
    for file in ["model.f32.onnx", "model.int8.onnx", "export-report.json"] {
        assert!(out.join(file).is_file(), "{file} missing; stdout: {stdout}");
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("export-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["int8_activations"], "static");
    assert_eq!(report["perplexity_check"]["passed"], true);
}

#[test]
fn export_without_corpus_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = repo().join("models/ptb-small");
    let out = dir.path().join("export");
    let output = edgenas(&[
        "export",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--corpus <DIR>"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn export_into_foreign_folder_fails_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();
    let checkpoint = repo().join("models/ptb-small");
    let output = edgenas(&[
        "export",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--corpus",
        ptb_dir().to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not an earlier export"), "{stderr}");
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "the error is printed once: {stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn export_of_missing_checkpoint_names_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let output = edgenas(&[
        "export",
        "--checkpoint",
        "no/such/run",
        "--out",
        out.to_str().unwrap(),
        "--corpus",
        ptb_dir().to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no/such/run is not a checkpoint folder"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn calibration_without_static_scheme_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = repo().join("models/ptb-small");
    let out = dir.path().join("export");
    let output = edgenas(&[
        "export",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--corpus",
        ptb_dir().to_str().unwrap(),
        "--int8",
        "dynamic",
        "--calibration",
        "calibration.txt",
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--calibration sets the scales of --int8 static"),
        "{stderr}"
    );
    assert!(!out.exists());
}
