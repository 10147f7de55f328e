//! `edgenas search` from the command line: help, errors for bad settings, the exit status when
//! nothing fits, a kill and resume, random search, and training the choice.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_fails_with, edgenas, kill_once_written, repo, text};

/// Writes a corpus folder of eight words in repeating patterns.
fn corpus() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let lines: Vec<String> = (0..500)
        .map(|i: usize| format!("{} {} {}", words[i % 8], words[(i * 5 + 1) % 8], words[(i / 3) % 8]))
        .collect();
    std::fs::write(data.path().join("train.txt"), lines.join("\n")).unwrap();
    std::fs::write(data.path().join("valid.txt"), lines[..80].join("\n")).unwrap();
    std::fs::write(data.path().join("test.txt"), lines[80..160].join("\n")).unwrap();
    data
}

fn pi4() -> String {
    repo().join("profiles/raspberry-pi-4.toml").display().to_string()
}

/// Returns the arguments of a small, fast search of `epochs` epochs. A flag in `extra` replaces
/// the same flag of the small settings.
fn search_args(data: &Path, profile: &str, out: &Path, epochs: usize, extra: &[&str]) -> Vec<String> {
    let epochs = epochs.to_string();
    let small: [(&str, &str); 13] = [
        ("--hidden-sizes", "8,16"),
        ("--max-nodes", "3"),
        ("--shared-steps", "10"),
        ("--controller-steps", "6"),
        ("--batch-size", "4"),
        ("--bptt", "5"),
        ("--reward-batch-size", "4"),
        ("--derive-samples", "5"),
        ("--derive-batch-size", "4"),
        ("--derive-windows", "2"),
        ("--threads", "1"),
        ("--epochs", &epochs),
        ("--seed", "1"),
    ];
    let mut args: Vec<String> = vec![
        "search".into(),
        "--corpus".into(),
        data.display().to_string(),
        "--profile".into(),
        profile.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    for (flag, value) in small {
        if !extra.contains(&flag) {
            args.push(flag.into());
            args.push(value.into());
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn pareto(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pareto.json")).unwrap()).unwrap();
    serde_json::json!({ "chosen": v["chosen"], "candidates": v["candidates"], "strategy": v["strategy"] })
}

#[test]
fn help_names_presets_rewards_and_strategies() {
    let out = edgenas(&["search", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in ["--preset", "quick", "paper", "--reward", "hypervolume", "--strategy", "random", "--then-train", "--resume"] {
        assert!(help.contains(needle), "{needle} missing from help:\n{help}");
    }
}

#[test]
fn bad_settings_name_the_value_and_write_nothing() {
    let data = corpus();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--hidden-sizes", "8,0"], &["--hidden-sizes", "at least 1"]),
        (&["--hidden-sizes", "8,8"], &["lists 8 twice"]),
        (&["--min-nodes", "4"], &["--min-nodes 4 is above --max-nodes 3"]),
        (&["--soft-weight", "speed=-1"], &["unknown constraint \"speed\"", "latency"]),
        (&["--soft-weight", "latency"], &["KEY=W"]),
        (&["--soft-weight", "latency=0.5"], &["latency=0.5", "0 or negative"]),
        (&["--lr", "0"], &["--lr is 0"]),
        (&["--baseline-decay", "1"], &["--baseline-decay is 1"]),
        (&["--dropout", "0.1,0.2"], &["--dropout has 2 values"]),
        (&["--dropout", "0,0,1.5,0"], &["--dropout hidden is 1.5"]),
        (&["--batch-size", "100000"], &["train split", "--batch-size"]),
        (&["--lstm-size", "100000"], &["--lstm-size is 100000", "use 1 to 4096"]),
        (&["--train-time-limit", "0"], &["--train-time-limit is 0"]),
        (&["--train-lr", "0"], &["--then-train settings", "--lr is 0"]),
        (&["--soft-weight", "ram=abc"], &["\"abc\" is not a number"]),
    ];
    for (extra, needles) in cases {
        let out_dir = tempfile::tempdir().unwrap();
        let out = edgenas(&search_args(data.path(), &pi4(), out_dir.path(), 1, extra));
        assert_fails_with(&out, needles);
        assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0, "{extra:?} wrote files");
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = edgenas(&search_args(data.path(), "no/such/profile.toml", out_dir.path(), 1, &[]));
    assert_fails_with(&out, &["no/such/profile.toml", "not found"]);
}

#[test]
fn nothing_fits_exits_3_and_says_which_budget() {
    let data = corpus();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("tiny.toml");
    let pi4_text = std::fs::read_to_string(pi4()).unwrap();
    std::fs::write(&profile, pi4_text.replace("max_parameters = 3000000", "max_parameters = 50")).unwrap();
    let out_dir = dir.path().join("search");
    let out = edgenas(&search_args(data.path(), profile.to_str().unwrap(), &out_dir, 1, &[]));
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("parameters budget"), "{stdout}");
    assert!(stdout.contains("against 50"), "{stdout}");
    assert!(out_dir.join("pareto.json").is_file());
    assert!(!out_dir.join("arch.json").exists());
}

#[test]
fn killed_search_resumes_to_the_same_result() {
    let data = corpus();
    let whole = tempfile::tempdir().unwrap();
    let reference = edgenas(&search_args(data.path(), &pi4(), whole.path(), 4, &[]));
    assert!(reference.status.success(), "{}", text(&reference.stderr));

    let parts = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_edgenas"))
        .args(search_args(data.path(), &pi4(), parts.path(), 4, &[]))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = parts.path().join("search-state.json");
    assert!(kill_once_written(child, &state), "no epoch was checkpointed before the deadline");
    assert!(!parts.path().join("pareto.json").exists(), "the search was killed after it finished; give it more epochs");

    let again = edgenas(&search_args(data.path(), &pi4(), parts.path(), 4, &[]));
    assert_fails_with(&again, &["--resume"]);
    let resumed = edgenas(&search_args(data.path(), &pi4(), parts.path(), 4, &["--resume"]));
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(pareto(whole.path()), pareto(parts.path()));
    assert_eq!(
        std::fs::read_to_string(whole.path().join("arch.json")).unwrap(),
        std::fs::read_to_string(parts.path().join("arch.json")).unwrap()
    );
}

#[test]
fn random_search_then_train() {
    let data = corpus();
    let out_dir = tempfile::tempdir().unwrap();
    let out = edgenas(&search_args(
        data.path(),
        &pi4(),
        out_dir.path(),
        1,
        &["--strategy", "random", "--then-train", "--train-epochs", "1"],
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("test perplexity"), "{stdout}");
    assert_eq!(pareto(out_dir.path())["strategy"], "random");
    let files: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.starts_with("controller")), "random search has no controller: {files:?}");
    let chosen = std::fs::read_to_string(out_dir.path().join("arch.json")).unwrap();
    let trained = std::fs::read_to_string(out_dir.path().join("train/arch.json")).unwrap();
    assert_eq!(chosen, trained);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("train/metrics.json")).unwrap()).unwrap();
    assert!(metrics["test_perplexity"].as_f64().unwrap().is_finite());
}

#[test]
fn then_train_checks_its_batch_sizes_before_searching() {
    let data = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..6).map(|i| format!("a b{} c", i % 2)).collect();
    for split in ["train", "valid", "test"] {
        std::fs::write(data.path().join(format!("{split}.txt")), lines.join("\n")).unwrap();
    }
    let out_dir = tempfile::tempdir().unwrap();
    let small = [
        "--batch-size", "1", "--reward-batch-size", "1", "--derive-batch-size", "1", "--bptt", "2",
        "--then-train",
    ];
    let out = edgenas(&search_args(data.path(), &pi4(), out_dir.path(), 1, &small));
    assert_fails_with(&out, &["--then-train trains with the settings of `edgenas train`", "batch size"]);
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0, "the search did not start");
}
