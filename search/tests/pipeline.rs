//! `edgenas pipeline` end to end on a slice of Penn Treebank with tiny cells (`--preset
//! smoke`). Every artefact is written and checked, the ONNX files by the onnx checker of
//! `.venv-onnx`. A second run skips every finished stage, a stopped run resumes, and bad
//! input fails before any work.
//!
//! Penn Treebank is read from `EDGENAS_PTB_DIR`, or from the data folder beside the repository
//! that CI provides; these tests fail without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails_with, edgenas, repo, text};
use edgenas_core::Arch;
use tempfile::TempDir;

fn ptb_dir() -> PathBuf {
    match std::env::var_os("EDGENAS_PTB_DIR") {
        Some(dir) => dir.into(),
        None => repo().join("../shared/data/ptb"),
    }
}

/// Returns a corpus folder with the first lines of each Penn Treebank split.
fn ptb_slice() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (split, lines) in [("train", 3000), ("valid", 300), ("test", 300)] {
        let path = ptb_dir().join(format!("ptb.{split}.txt"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e}; set EDGENAS_PTB_DIR to a Penn Treebank folder",
                path.display()
            )
        });
        let slice: Vec<&str> = text.lines().take(lines).collect();
        std::fs::write(
            dir.path().join(format!("{split}.txt")),
            slice.join("\n") + "\n",
        )
        .unwrap();
    }
    dir
}

fn profile() -> String {
    repo()
        .join("profiles/raspberry-pi-4.toml")
        .display()
        .to_string()
}

fn pipeline_args(corpus: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "pipeline",
        "--corpus",
        &corpus.display().to_string(),
        "--profile",
        &profile(),
        "--out",
        &out.display().to_string(),
        "--preset",
        "smoke",
        "--threads",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Runs `onnx.checker.check_model(..., full_check=True)` on each file with the Python of
/// `.venv-onnx` and returns the checker's output.
fn onnx_check(files: &[PathBuf]) -> Output {
    let python = match std::env::var_os("EDGENAS_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => repo().join(".venv-onnx/bin/python"),
    };
    assert!(
        python.is_file(),
        "Python with onnx not found at {}; run scripts/setup-python-onnx.sh (or set EDGENAS_PYTHON)",
        python.display()
    );
    let script = "import sys, onnx\n\
                  for path in sys.argv[1:]:\n    \
                      onnx.checker.check_model(onnx.load(path), full_check=True)\n    \
                      print('ok', path)\n";
    Command::new(python)
        .arg("-c")
        .arg(script)
        .args(files)
        .output()
        .expect("running the onnx checker")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn smoke_run_writes_then_skips() {
    let corpus = ptb_slice();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");

    let first = edgenas(&pipeline_args(corpus.path(), &out_dir, &[]));
    assert_success(&first);

    // The search chose a cell and saved it.
    let arch =
        Arch::load(&out_dir.join("search/arch.json")).expect("search/arch.json is an architecture");
    let summary = arch.summary();
    assert!(out_dir.join("search/pareto.json").is_file());

    // The training checkpoint has the same cell and its weights.
    let trained = Arch::load(&out_dir.join("train/arch.json")).expect("train/arch.json");
    assert_eq!(trained, arch);
    assert!(out_dir.join("train/model.safetensors").is_file());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("train/metrics.json")).unwrap())
            .unwrap();
    let test_ppl = metrics["test_perplexity"]
        .as_f64()
        .expect("test_perplexity is a number");
    assert!(
        test_ppl.is_finite() && test_ppl > 1.0,
        "test perplexity {test_ppl}"
    );

    // Both ONNX files pass the onnx checker.
    let onnx = [
        out_dir.join("onnx/model.f32.onnx"),
        out_dir.join("onnx/model.int8.onnx"),
    ];
    let checked = onnx_check(&onnx);
    assert!(
        checked.status.success(),
        "onnx.checker failed:\n{}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    assert_eq!(text(&checked.stdout).matches("ok ").count(), 2);

    // The transcript replay scored the default transcript, the corpus test split.
    let replay: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("transcript-summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(replay["utterances"].as_u64(), Some(300));
    assert!(replay["summary"]["tokens"].as_u64().unwrap() > 1000);

    // The reports name the chosen architecture; the HTML page embeds both plots.
    let md = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    assert!(md.contains(&summary), "report.md does not name {summary}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(
        html.contains(&escape_html(&summary)),
        "report.html does not name {summary}"
    );
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(out_dir.join("pareto.svg").is_file());
    assert!(out_dir.join("search.svg").is_file());
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains(&format!("chosen              {summary}")),
        "stdout: {stdout}"
    );

    // A second run finds every stage done and changes no model file.
    let int8_before = std::fs::read(&onnx[1]).unwrap();
    let weights_before = std::fs::read(out_dir.join("train/model.safetensors")).unwrap();
    let second = edgenas(&pipeline_args(corpus.path(), &out_dir, &[]));
    assert_success(&second);
    let err = text(&second.stderr);
    for stage in ["search", "train", "export", "transcript"] {
        assert!(
            err.contains(&format!("{stage}] skipped")),
            "stage {stage} was not skipped: {err}"
        );
    }
    assert_eq!(std::fs::read(&onnx[1]).unwrap(), int8_before);
    assert_eq!(
        std::fs::read(out_dir.join("train/model.safetensors")).unwrap(),
        weights_before
    );

    // A new transcript redoes only the replay, and the report names it.
    let harvard = repo().join("../shared/data/commonvoice-en/harvsents.txt");
    let third = edgenas(&pipeline_args(
        corpus.path(),
        &out_dir,
        &["--transcript", &harvard.display().to_string()],
    ));
    assert_success(&third);
    let err = text(&third.stderr);
    assert!(err.contains("export] skipped"), "{err}");
    assert!(!err.contains("transcript] skipped"), "{err}");
    let replay: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("transcript-summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(replay["utterances"].as_u64(), Some(720));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("harvsents.txt"),
        "report.md does not name the transcript"
    );

    // Other search settings on the same folder are refused instead of mixing two searches.
    let other = edgenas(&pipeline_args(corpus.path(), &out_dir, &["--seed", "2"]));
    assert_fails_with(&other, &["other settings", "new --out"]);

    // So are other training options, and another device profile.
    let other = edgenas(&pipeline_args(corpus.path(), &out_dir, &["--train-epochs", "3"]));
    assert_fails_with(&other, &["training with other settings", "--train-epochs"]);
    let zero = repo().join("profiles/raspberry-pi-zero-2w.toml").display().to_string();
    let mut args = pipeline_args(corpus.path(), &out_dir, &[]);
    let at = args.iter().position(|a| a == "--profile").unwrap() + 1;
    args[at] = zero;
    let other = edgenas(&args);
    assert_fails_with(&other, &["another device profile", "new --out"]);
}

#[test]
fn stale_export_and_replay_are_redone() {
    let corpus = ptb_slice();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let transcript = work.path().join("talk.txt");
    std::fs::write(&transcript, "the company said it expects a loss\n").unwrap();
    let transcript_arg = transcript.display().to_string();
    let args = pipeline_args(corpus.path(), &out_dir, &["--transcript", &transcript_arg]);
    assert_success(&edgenas(&args));
    let replay = |dir: &Path| -> serde_json::Value {
        let path = dir.join("transcript-summary.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    assert_eq!(replay(&out_dir)["utterances"].as_u64(), Some(1));

    // New text under the same transcript path is replayed again.
    std::fs::write(&transcript, "the company said\nprices rose\n").unwrap();
    let out = edgenas(&args);
    assert_success(&out);
    let err = text(&out.stderr);
    assert!(err.contains("export] skipped"), "{err}");
    assert!(!err.contains("transcript] skipped"), "{err}");
    assert_eq!(replay(&out_dir)["utterances"].as_u64(), Some(2));

    // A truncated ONNX file is exported again rather than reported as checked.
    let int8 = out_dir.join("onnx/model.int8.onnx");
    let full = std::fs::metadata(&int8).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&int8).unwrap();
    file.set_len(1000).unwrap();
    drop(file);
    let out = edgenas(&args);
    assert_success(&out);
    let err = text(&out.stderr);
    assert!(err.contains("exporting again"), "{err}");
    assert_eq!(std::fs::metadata(&int8).unwrap().len(), full);

    // Weights trained again (at another rate, so they differ) are exported and replayed
    // again. The same seed and settings would give the same weights, which are reused.
    std::fs::remove_dir_all(out_dir.join("train")).unwrap();
    let mut args = args;
    args.extend(["--train-lr".to_string(), "10".to_string()]);
    let out = edgenas(&args);
    assert_success(&out);
    let err = text(&out.stderr);
    assert!(err.contains("training from scratch"), "{err}");
    assert!(err.contains("the trained weights changed"), "{err}");
    assert!(!err.contains("transcript] skipped"), "{err}");
}

#[test]
fn stopped_pipeline_resumes_its_training() {
    let corpus = ptb_slice();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let args = pipeline_args(corpus.path(), &out_dir, &["--train-epochs", "3"]);

    // Press Ctrl-C (SIGINT) once the first training epoch is saved.
    let child = Command::new(env!("CARGO_BIN_EXE_edgenas"))
        .args(&args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = out_dir.join("train/train-state.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(state.exists(), "the training never saved an epoch");
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let stopped = child.wait_with_output().unwrap();
    let err = text(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(130), "stderr: {err}");
    assert!(err.contains("run the same command again to resume"), "{err}");
    assert!(
        !out_dir.join("train/metrics.json").exists(),
        "the training finished before it was stopped"
    );

    let resumed = edgenas(&args);
    assert_success(&resumed);
    let err = text(&resumed.stderr);
    assert!(err.contains("search] skipped"), "{err}");
    assert!(err.contains("resuming the training of"), "{err}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("train/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["epochs"].as_u64(), Some(3));
    assert!(out_dir.join("report.html").is_file());
}

#[test]
fn diverged_training_retried_then_fails() {
    let corpus = ptb_slice();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = edgenas(&pipeline_args(
        corpus.path(),
        &out_dir,
        &["--train-lr", "1e9"],
    ));
    assert_fails_with(&out, &["--train-lr", "diverged"]);
    let err = text(&out.stderr);
    assert_eq!(err.matches("starting again at").count(), 2, "{err}");
    // The diverged attempts are kept, not deleted.
    assert!(out_dir.join("train-diverged-lr1000000000").is_dir());
    assert!(out_dir.join("train-diverged-lr250000000").is_dir());
}

#[test]
fn bad_input_fails_before_any_work() {
    let corpus = ptb_slice();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");

    let missing = work.path().join("missing.txt");
    let out = edgenas(&pipeline_args(
        corpus.path(),
        &out_dir,
        &["--transcript", &missing.display().to_string()],
    ));
    assert_fails_with(&out, &["transcript", "missing.txt", "not found"]);
    assert!(
        !out_dir.exists(),
        "a failed start wrote {}",
        out_dir.display()
    );

    let empty = work.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out = edgenas(&pipeline_args(
        corpus.path(),
        &out_dir,
        &["--transcript", &empty.display().to_string()],
    ));
    assert_fails_with(&out, &["empty.txt"]);
    assert!(!out_dir.exists());

    let file = work.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = edgenas(&pipeline_args(corpus.path(), &file, &[]));
    assert_fails_with(&out, &["a-file", "is a file"]);

    let out = edgenas(&pipeline_args(corpus.path(), &out_dir, &["--top-k", "0"]));
    assert_fails_with(&out, &["--top-k is 0"]);

    let out = edgenas(&pipeline_args(
        corpus.path(),
        &out_dir,
        &["--train-time-limit", "-3"],
    ));
    assert_fails_with(&out, &["--train-time-limit is -3"]);

    let out = edgenas(&pipeline_args(corpus.path(), &out_dir, &["--train-lr", "-1"]));
    assert_fails_with(&out, &["--train-lr is -1"]);

    let out = edgenas(&pipeline_args(corpus.path(), &out_dir, &["--search-epochs", "0"]));
    assert_fails_with(&out, &["--search-epochs is 0"]);

    let out = edgenas(&[
        "pipeline",
        "--corpus",
        "x",
        "--profile",
        &profile(),
        "--out",
        "y",
        "--preset",
        "huge",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown preset is a usage error"
    );
    assert!(
        text(&out.stderr).contains("smoke"),
        "the error lists the presets"
    );

    // A corpus too short for the training batches fails before the search starts.
    let tiny = tempfile::tempdir().unwrap();
    for split in ["train", "valid", "test"] {
        std::fs::write(tiny.path().join(format!("{split}.txt")), "the cat sat\n").unwrap();
    }
    let out = edgenas(&pipeline_args(tiny.path(), &out_dir, &[]));
    assert_fails_with(&out, &["long enough"]);
    assert!(!out_dir.exists());
}
