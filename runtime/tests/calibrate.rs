//! `edgenas-runtime calibrate` on tiny grids: the profile it writes, through the binary and
//! the library, and the errors for invalid settings. Times are checked for sanity only.

mod command;

use std::path::{Path, PathBuf};
use std::process::Output;

use edgenas_core::{estimate, Dtype, LatencySource, Profile};
use edgenas_runtime::calibrate::{self, chain_arch, Grid, Measurement, Settings, WeightFormat};

const HIDDEN: [usize; 2] = [16, 128];
const NODES: [usize; 2] = [1, 2];
const VOCAB: usize = 50;

fn base_profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/raspberry-pi-4.toml")
}

/// Runs `calibrate` with `args`, adding `--base` with the Raspberry Pi profile unless `args`
/// names one.
fn run_calibrate(out: &Path, args: &[&str]) -> Output {
    let mut command = command::runtime_command();
    command.arg("calibrate").arg("--out").arg(out).args(args);
    if !args.contains(&"--base") {
        command.arg("--base").arg(base_profile());
    }
    command.output().expect("run edgenas-runtime calibrate")
}

/// Runs the smallest grid, one cell at float32, into `out`. Each option in `overrides`
/// replaces its default.
fn run_one_cell(out: &Path, overrides: &[&str]) -> Output {
    let vocab = VOCAB.to_string();
    let defaults = [
        ("--hidden", "8"),
        ("--nodes", "1"),
        ("--dtypes", "f32"),
        ("--words", "5"),
        ("--vocab-size", vocab.as_str()),
    ];
    let mut args: Vec<&str> = overrides.to_vec();
    for (option, value) in defaults {
        if !overrides.contains(&option) {
            args.extend([option, value]);
        }
    }
    run_calibrate(out, &args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn binary_writes_profile_with_grid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("calibrated.toml");
    let vocab = VOCAB.to_string();
    let args = ["--hidden", "16,128", "--nodes", "1,2", "--words", "30", "--vocab-size", &vocab];
    let output = run_calibrate(&out, &args);
    assert!(output.status.success(), "calibrate failed: {}", stderr(&output));

    let profile = Profile::load(&out).expect("the calibrated profile loads");
    let measured = &profile.latency.measured;
    assert_eq!(measured.len(), HIDDEN.len() * NODES.len() * 2);
    for h in HIDDEN {
        for n in NODES {
            for dtype in [Dtype::Float32, Dtype::Int8] {
                let arch = chain_arch(VOCAB, h, n).expect("valid chain cell");
                let entry = profile.latency.find_measured(&arch, dtype);
                let entry = entry.unwrap_or_else(|| panic!("no entry for h={h} n={n} {dtype}"));
                assert_eq!(entry.vocab_size, Some(VOCAB));
                assert!(entry.us_per_word > 0.0, "h={h} n={n} {dtype}: {}", entry.us_per_word);
            }
        }
    }
    assert!(profile.latency.f32_macs_per_second > 0.0);
    assert!(profile.latency.int8_macs_per_second > 0.0);
    assert!(profile.latency.overhead_us_per_word >= 0.0);

    let mean_us = |h: usize| {
        let times: Vec<f64> =
            measured.iter().filter(|m| m.hidden_size == h).map(|m| m.us_per_word).collect();
        times.iter().sum::<f64>() / times.len() as f64
    };
    assert!(
        mean_us(128) > mean_us(16),
        "hidden 128 took {} us/word on average, hidden 16 took {}",
        mean_us(128),
        mean_us(16)
    );

    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows = stdout
        .lines()
        .filter(|line| line.split_whitespace().next().is_some_and(|first| first.parse::<usize>().is_ok()));
    assert_eq!(rows.count(), 8, "{stdout}");
    assert!(stdout.contains("fitted:"), "{stdout}");
    assert_eq!(stderr(&output).matches("calibrate: [").count(), 8);
}

#[test]
fn profile_gives_measured_latency() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("calibrated.toml");
    let output = run_one_cell(&out, &["--hidden", "16", "--nodes", "2", "--dtypes", "f32,int8"]);
    assert!(output.status.success(), "calibrate failed: {}", stderr(&output));
    let profile = Profile::load(&out).expect("the calibrated profile loads");
    let arch = chain_arch(VOCAB, 16, 2).expect("valid chain cell");
    let expected = profile
        .latency
        .find_measured(&arch, profile.deploy.dtype)
        .expect("an entry at the deploy dtype")
        .us_per_word;

    let report = estimate(&arch, &profile);
    assert_eq!(report.latency_source, LatencySource::Measured);
    assert!((report.latency_ms_per_word * 1e3 - expected).abs() < 1e-9);

    let other_shape = chain_arch(VOCAB, 24, 2).expect("valid chain cell");
    assert_eq!(estimate(&other_shape, &profile).latency_source, LatencySource::Estimate);
}

#[test]
fn profile_keeps_base_and_adds_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("calibrated.toml");
    let output = run_one_cell(&out, &[]);
    assert!(output.status.success(), "calibrate failed: {}", stderr(&output));
    let text = std::fs::read_to_string(&out).expect("read the profile");
    let base = Profile::load(&base_profile()).expect("base profile");
    let profile = Profile::load(&out).expect("calibrated profile");

    assert!(text.starts_with("# Measured by `edgenas-runtime calibrate`"), "{text}");
    assert!(text.contains(std::env::consts::ARCH), "{text}");
    assert!(text.contains("# choice: twice a 1.5 M-parameter model"), "base comments dropped:\n{text}");
    assert_eq!(profile.budgets, base.budgets);
    assert_eq!(profile.device, base.device);
    assert_eq!(profile.energy, base.energy);
    // No int8 point was measured, so the int8 rate stays as in the base profile.
    assert_eq!(profile.latency.int8_macs_per_second, base.latency.int8_macs_per_second);
    assert!(text.contains("kept from the base profile"), "{text}");
    // The commented example entry at the end of the base file is dropped.
    assert!(!text.contains("us_per_word = 2500.0"), "{text}");
}

#[test]
fn library_measures_every_point() {
    let grid = Grid {
        hidden_sizes: vec![8, 16],
        node_counts: vec![1, 3],
        vocab_size: VOCAB,
        dtypes: vec![Dtype::Float32, Dtype::Int8],
    };
    let settings = Settings {
        words: 5,
        seed: 7,
        int8_format: WeightFormat::Int8Dynamic,
    };
    let mut seen = Vec::new();
    let calibration = calibrate::calibrate(&grid, &settings, &mut |index, total, m: &Measurement| {
        seen.push((index, total, m.hidden_size, m.num_nodes, m.format));
    })
    .expect("calibrate the tiny grid");

    assert_eq!(calibration.measurements.len(), 8);
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[0], (1, 8, 8, 1, WeightFormat::Float32));
    assert_eq!(seen[7], (8, 8, 16, 3, WeightFormat::Int8Dynamic));
    for m in &calibration.measurements {
        let arch = chain_arch(VOCAB, m.hidden_size, m.num_nodes).expect("valid chain cell");
        assert_eq!(m.macs_per_word, edgenas_core::cost::macs_per_word(&arch));
        assert!(m.us_per_word > 0.0);
    }
    assert_eq!(calibration.fit.points, 8);
    assert!(calibration.fit.overhead_us_per_word >= 0.0);
}

#[test]
fn existing_out_needs_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("calibrated.toml");
    std::fs::write(&out, "keep me\n").expect("write the existing file");

    let output = run_one_cell(&out, &[]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("already exists; pass --force"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "keep me\n");

    let output = run_one_cell(&out, &["--force"]);
    assert!(output.status.success(), "calibrate --force failed: {}", stderr(&output));
    Profile::load(&out).expect("the replaced file is a profile");
}

#[test]
fn invalid_values_name_value_and_fix() {
    let cases: [(&[&str], &str); 8] = [
        (&["--hidden", "0"], "--hidden 0 is invalid"),
        (&["--nodes", "0"], "--nodes 0 is invalid"),
        (&["--nodes", "65"], "--nodes 65 is invalid: a cell has 1 to 64 nodes"),
        (&["--dtypes", "f16"], "unknown dtype \"f16\" in --dtypes; use f32, int8"),
        (&["--words", "0"], "--words 0 is invalid"),
        (&["--vocab-size", "2"], "--vocab-size 2 is invalid"),
        (&["--int8-scheme", "float32"], "--int8-scheme float32 is invalid"),
        (&["--base", "/nonexistent/profile.toml"], "/nonexistent/profile.toml"),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("never-written.toml");
    for (args, expected) in cases {
        let output = run_one_cell(&out, args);
        let message = stderr(&output);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn unreadable_base_names_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("broken.toml");
    std::fs::write(&base, "name = \"broken\"\n").expect("write the broken profile");
    let out = dir.path().join("out.toml");
    let output = run_one_cell(&out, &["--base", base.to_str().expect("UTF-8 path")]);
    let message = stderr(&output);
    assert!(!output.status.success());
    assert!(message.contains("broken.toml"), "{message}");
    assert!(message.contains("pass --base FILE"), "{message}");
}

#[test]
fn unsafe_out_rejected_before_measuring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).expect("create the folder");
    let target = dir.path().join("target.toml");
    std::fs::write(&target, "kept\n").expect("write the link target");
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).expect("create the link");
    let missing = dir.path().join("no-such-folder/out.toml");

    let cases: [(&Path, &str); 4] = [
        (&folder, "is not a regular file"),
        (&link, "is not a regular file"),
        (Path::new("/dev/null"), "is not a regular file"),
        (&missing, "does not exist; create it"),
    ];
    for (out, expected) in cases {
        let output = run_one_cell(out, &["--force"]);
        let message = stderr(&output);
        assert!(!output.status.success(), "{}", out.display());
        assert!(message.contains(expected), "{}: {message}", out.display());
        assert!(!message.contains("calibrate: ["), "{} measured first", out.display());
    }
    assert!(folder.is_dir());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept\n");
    let litter: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

#[test]
fn duplicate_and_huge_grids_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.toml");
    let cases: [(&[&str], &str); 3] = [
        (&["--hidden", "8,8"], "--hidden lists 8 twice"),
        (&["--dtypes", "int8,int8"], "--dtypes lists int8 twice"),
        (&["--hidden", "100000", "--vocab-size", "10000"], "GiB of float32 weights"),
    ];
    for (args, expected) in cases {
        let output = run_one_cell(&out, args);
        let message = stderr(&output);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{args:?}: {message}");
    }
}
