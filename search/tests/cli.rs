//! The `edgenas` binary: errors for bad input are printed once, name the file or value at
//! fault, exit with status 1, and the happy paths print results on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn edgenas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgenas"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running edgenas")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in stderr: {err}");
    }
    assert_eq!(err.matches("error:").count(), 1, "the error is printed once: {err}");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn cost_with_missing_arch_names_the_path() {
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", "no/such/arch.json", "--profile", profile.to_str().unwrap()]);
    assert_fails_with(&out, &["no/such/arch.json", "not found"]);
}

#[test]
fn cost_with_missing_profile_names_the_path() {
    let arch = repo().join("archs/small.json");
    let out = edgenas(&["cost", "--arch", arch.to_str().unwrap(), "--profile", "missing.toml"]);
    assert_fails_with(&out, &["missing.toml", "not found"]);
}

#[test]
fn malformed_arch_json_names_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let arch = write(dir.path(), "arch.json", "{\"version\": 1, \"vocab_size\": 10,\n \"hidden_size\": }");
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", &arch, "--profile", profile.to_str().unwrap()]);
    assert_fails_with(&out, &[&arch, "line 2"]);
}

#[test]
fn arch_with_forward_edge_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let arch = write(
        dir.path(),
        "arch.json",
        r#"{"version": 1, "vocab_size": 10, "hidden_size": 4, "tie_weights": true,
            "nodes": [{"activation": "tanh"}, {"input": 1, "activation": "relu"}]}"#,
    );
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", &arch, "--profile", profile.to_str().unwrap()]);
    assert_fails_with(&out, &["node 1 reads node 1"]);
}

#[test]
fn arch_with_unknown_activation_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let arch = write(
        dir.path(),
        "arch.json",
        r#"{"version": 1, "vocab_size": 10, "hidden_size": 4, "tie_weights": true,
            "nodes": [{"activation": "gelu"}]}"#,
    );
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", &arch, "--profile", profile.to_str().unwrap()]);
    assert_fails_with(&out, &[&arch, "gelu"]);
}

#[test]
fn malformed_profile_names_file() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write(dir.path(), "profile.toml", "name = \"x\"\n[budgets\nmax_parameters = 5\n");
    let arch = repo().join("archs/small.json");
    let out = edgenas(&["cost", "--arch", arch.to_str().unwrap(), "--profile", &profile]);
    assert_fails_with(&out, &[&profile]);
}

#[test]
fn cost_prints_table_on_stdout() {
    let arch = repo().join("archs/small.json");
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", arch.to_str().unwrap(), "--profile", profile.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    // 10000*128 + 10000 + 2*128*128*(5+1) parameters.
    assert!(table.contains("1486608"), "{table}");
}

#[test]
fn cost_json_is_valid_json() {
    let arch = repo().join("archs/small.json");
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&[
        "cost",
        "--arch",
        arch.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["parameters"], 1486608);
}

#[test]
fn train_with_missing_corpus_names_the_directory() {
    let arch = repo().join("archs/small.json");
    let out_dir = tempfile::tempdir().unwrap();
    let out = edgenas(&[
        "train",
        "--corpus",
        "no/such/corpus",
        "--arch",
        arch.to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert_fails_with(&out, &["no/such/corpus"]);
}

#[test]
fn evaluate_without_checkpoint_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = edgenas(&["evaluate", "--checkpoint", dir.path().to_str().unwrap(), "--corpus", "x"]);
    assert_fails_with(&out, &["arch.json", "edgenas train"]);
}

#[test]
fn invalid_option_value_is_a_usage_error() {
    let out = edgenas(&["train", "--corpus", "c", "--arch", "a", "--out", "o", "--bptt", "many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--bptt"), "{}", stderr(&out));
}

#[test]
fn killed_training_resumes_to_the_same_result() {
    let data = tempfile::tempdir().unwrap();
    let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let lines: Vec<String> = (0..600)
        .map(|i: usize| format!("{} {} {}", words[i % 8], words[(i * 5 + 1) % 8], words[(i / 3) % 8]))
        .collect();
    write(data.path(), "train.txt", &lines.join("\n"));
    write(data.path(), "valid.txt", &lines[..80].join("\n"));
    write(data.path(), "test.txt", &lines[80..160].join("\n"));
    let vocab = words.len() + 2;
    let arch = write(
        data.path(),
        "arch.json",
        &format!(
            r#"{{"version": 1, "vocab_size": {vocab}, "hidden_size": 8, "tie_weights": true,
                "nodes": [{{"activation": "tanh"}}, {{"input": 0, "activation": "relu"}}],
                "dropout": {{"embedding": 0.0, "input": 0.1, "hidden": 0.1, "output": 0.1}}}}"#
        ),
    );
    let common = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train", "--corpus", data.path().to_str().unwrap(), "--arch", &arch, "--out", out,
            "--epochs", "4", "--batch-size", "4", "--bptt", "6", "--threads", "1", "--seed", "3",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };

    let whole = tempfile::tempdir().unwrap();
    let reference = edgenas(&common(whole.path().to_str().unwrap(), &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(reference.status.success(), "{}", stderr(&reference));

    // Start a run, kill it once its first epoch is checkpointed, then resume it.
    let parts = tempfile::tempdir().unwrap();
    let parts_dir = parts.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgenas"))
        .args(common(parts_dir, &[]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = parts.path().join("train-state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !state.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state.exists(), "no epoch was checkpointed before the deadline");

    let resumed = edgenas(&common(parts_dir, &["--resume"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(resumed.status.success(), "{}", stderr(&resumed));

    let metrics = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
    };
    let (a, b) = (metrics(whole.path()), metrics(parts.path()));
    for key in ["train_perplexity", "valid_perplexity", "test_perplexity", "best_epoch", "epochs"] {
        assert_eq!(a[key], b[key], "{key} differs after kill and resume");
    }
}

/// Trains a tiny model for one epoch and returns its run folder and corpus folder.
fn tiny_checkpoint() -> (tempfile::TempDir, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..200).map(|i: usize| format!("w{} w{} w{}", i % 5, (i * 3) % 5, (i / 2) % 5)).collect();
    write(data.path(), "train.txt", &lines.join("\n"));
    write(data.path(), "valid.txt", &lines[..40].join("\n"));
    write(data.path(), "test.txt", &lines[40..80].join("\n"));
    let arch = write(
        data.path(),
        "arch.json",
        r#"{"version": 1, "vocab_size": 7, "hidden_size": 4, "tie_weights": true,
            "nodes": [{"activation": "tanh"}]}"#,
    );
    let run = tempfile::tempdir().unwrap();
    let out = edgenas(&[
        "train", "--corpus", data.path().to_str().unwrap(), "--arch", &arch, "--out",
        run.path().to_str().unwrap(), "--epochs", "1", "--batch-size", "2", "--bptt", "5",
        "--eval-batch-size", "2", "--threads", "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (run, data)
}

fn evaluate(run: &Path, data: &Path) -> Output {
    edgenas(&[
        "evaluate", "--checkpoint", run.to_str().unwrap(), "--corpus", data.to_str().unwrap(),
        "--batch-size", "2",
    ])
}

#[test]
fn evaluate_reports_test_perplexity() {
    let (run, data) = tiny_checkpoint();
    let out = evaluate(run.path(), data.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("test perplexity "), "{text}");
}

#[test]
fn evaluate_missing_weights_says_not_found() {
    let (run, data) = tiny_checkpoint();
    std::fs::remove_file(run.path().join("model.safetensors")).unwrap();
    assert_fails_with(&evaluate(run.path(), data.path()), &["model.safetensors", "not found"]);
}

#[test]
fn evaluate_truncated_weights_says_truncated() {
    let (run, data) = tiny_checkpoint();
    let path = run.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = evaluate(run.path(), data.path());
    assert_fails_with(&out, &["model.safetensors", "truncated"]);
    assert!(!stderr(&out).contains("frame #"), "no libtorch backtrace: {}", stderr(&out));
}

#[test]
fn evaluate_wrong_shape_names_tensor() {
    let (run, data) = tiny_checkpoint();
    // Same vocabulary, twice the hidden size: every tensor has the wrong shape.
    let arch = run.path().join("arch.json");
    let text = std::fs::read_to_string(&arch).unwrap().replace("\"hidden_size\": 4", "\"hidden_size\": 8");
    std::fs::write(&arch, text).unwrap();
    let out = evaluate(run.path(), data.path());
    assert_fails_with(&out, &["model.safetensors", "has shape"]);
}

#[test]
fn evaluate_vocab_mismatch_names_both_files() {
    let (run, data) = tiny_checkpoint();
    let vocab = run.path().join("vocab.txt");
    let mut text = std::fs::read_to_string(&vocab).unwrap();
    text.push_str("extra\n");
    std::fs::write(&vocab, text).unwrap();
    assert_fails_with(&evaluate(run.path(), data.path()), &["vocab.txt", "arch.json", "8 tokens"]);
}

#[test]
fn oversized_arch_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let arch = write(
        dir.path(),
        "arch.json",
        r#"{"version": 1, "vocab_size": 2, "hidden_size": 9223372036854775808, "tie_weights": true,
            "nodes": [{"activation": "tanh"}]}"#,
    );
    let profile = repo().join("profiles/raspberry-pi-4.toml");
    let out = edgenas(&["cost", "--arch", &arch, "--profile", profile.to_str().unwrap()]);
    assert_fails_with(&out, &[&arch, "choose smaller sizes"]);
}

#[test]
fn strict_cost_over_budget_exits_3() {
    let arch = repo().join("archs/small.json");
    let args = |profile: &str, strict: bool| {
        let profile = repo().join(profile);
        let mut args = vec![
            "cost".to_string(),
            "--arch".to_string(),
            arch.display().to_string(),
            "--profile".to_string(),
            profile.display().to_string(),
        ];
        if strict {
            args.push("--strict".to_string());
        }
        args
    };
    let run = |args: Vec<String>| edgenas(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The small cell exceeds the Zero 2 W's parameter budget and fits the Pi 4's.
    assert_eq!(run(args("profiles/raspberry-pi-zero-2w.toml", true)).status.code(), Some(3));
    assert_eq!(run(args("profiles/raspberry-pi-zero-2w.toml", false)).status.code(), Some(0));
    assert_eq!(run(args("profiles/raspberry-pi-4.toml", true)).status.code(), Some(0));
}
