//! Transcript reading (plain text and WebVTT), the summary figures, and the `transcript`
//! command on Harvard sentences from Common Voice, a transcript this project did not write.

mod command;

use std::path::{Path, PathBuf};
use std::process::Output;

use edgenas_runtime::transcript::{self, timestamp, Format, TranscriptError};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    command::runtime_command()
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap()
}

/// Writes the first `lines` Harvard sentences to a file in `dir`.
fn harvard(dir: &Path, lines: usize) -> PathBuf {
    let all = std::fs::read_to_string(repo().join("../shared/data/commonvoice-en/harvsents.txt"))
        .expect("Common Voice sentence lists beside the repository, in ../shared/data");
    let path = dir.join("harvard.txt");
    let head: Vec<&str> = all.lines().take(lines).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

const VTT: &str = "WEBVTT - a timed transcript

NOTE this block is skipped
even its second line

1
00:00:01.000 --> 00:00:03.000
<v Anna>the <00:00:01.400>company <00:00:01.900>said

00:00:04.000 --> 00:00:05.500 align:start
<c>stocks</c> <00:00:04.600>fell
";

#[test]
fn plain_lines_are_utterances() {
    let utterances = transcript::plain("The birch canoe.\n\n  \nGlue the sheet.\n");
    assert_eq!(utterances.len(), 2);
    let words: Vec<&str> = utterances[1].words.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(words, ["Glue", "the", "sheet."]);
    assert!(utterances[0].words.iter().all(|w| w.start.is_none()));
}

#[test]
fn vtt_cues_and_word_times() {
    let utterances = transcript::vtt(VTT, Path::new("t.vtt")).unwrap();
    assert_eq!(utterances.len(), 2);
    let first: Vec<(&str, f64)> = utterances[0]
        .words
        .iter()
        .map(|w| (w.text.as_str(), w.start.unwrap()))
        .collect();
    assert_eq!(first, [("the", 1.0), ("company", 1.4), ("said", 1.9)]);
    let second: Vec<(&str, f64)> = utterances[1]
        .words
        .iter()
        .map(|w| (w.text.as_str(), w.start.unwrap()))
        .collect();
    assert_eq!(second, [("stocks", 4.0), ("fell", 4.6)]);
}

#[test]
fn vtt_errors_name_line() {
    let missing_header = transcript::vtt("00:01.000 --> 00:02.000\nhello\n", Path::new("a.vtt"));
    assert!(matches!(missing_header, Err(TranscriptError::InvalidVtt { line: 1, .. })));
    let bad_time = transcript::vtt("WEBVTT\n\n1:2 --> 00:02.000\nhello\n", Path::new("b.vtt"));
    let err = bad_time.err().unwrap();
    assert!(matches!(err, TranscriptError::InvalidVtt { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("1:2"), "{err}");
    let open_tag = transcript::vtt("WEBVTT\n\n00:01.000 --> 00:02.000\nhi <c\n", Path::new("c.vtt"));
    assert!(matches!(open_tag, Err(TranscriptError::InvalidVtt { line: 4, .. })));
}

#[test]
fn timestamps_parse() {
    assert_eq!(timestamp("00:00:01.500"), Some(1.5));
    assert_eq!(timestamp("01:02:03.004"), Some(3723.004));
    assert_eq!(timestamp("02:03.250"), Some(123.25));
    for bad in ["1.5", "00:61.000", "00:01.5", "aa:01.000", "00:01:02:03.000"] {
        assert_eq!(timestamp(bad), None, "{bad}");
    }
}

#[test]
fn read_detects_format_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let vtt = dir.path().join("talk.vtt");
    std::fs::write(&vtt, VTT).unwrap();
    assert_eq!(transcript::read(&vtt, None).unwrap().0, Format::Vtt);

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, " \n\n").unwrap();
    assert!(matches!(transcript::read(&empty, None), Err(TranscriptError::Empty { .. })));

    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait\nsecond line\n").unwrap();
    let err = transcript::read(&latin1, None).err().unwrap();
    assert!(matches!(err, TranscriptError::NotUtf8 { line: 1, offset: 3, .. }), "{err}");

    let missing = dir.path().join("missing.txt");
    assert!(matches!(transcript::read(&missing, None), Err(TranscriptError::NotFound { .. })));
}

#[test]
fn harvard_sentences_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = harvard(dir.path(), 30);
    let output = run(&["transcript", "--json", "--top-k", "4", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary = &json["summary"];
    let utterances = json["utterances"].as_array().unwrap();
    assert_eq!(utterances.len(), 30);
    assert_eq!(summary["utterances"], 30);

    let steps: Vec<&serde_json::Value> =
        utterances.iter().flat_map(|u| u["steps"].as_array().unwrap()).collect();
    assert_eq!(summary["tokens"].as_u64().unwrap() as usize, steps.len());
    assert!(steps.iter().all(|s| s["predictions"].as_array().unwrap().len() == 4));
    let top1 = steps.iter().filter(|s| s["rank"] == 1).count();
    let expected_top1 = top1 as f64 / steps.len() as f64;
    assert!((summary["top1_accuracy"].as_f64().unwrap() - expected_top1).abs() < 1e-12);

    let (a1, a3, a5) = (
        summary["top1_accuracy"].as_f64().unwrap(),
        summary["top3_accuracy"].as_f64().unwrap(),
        summary["top5_accuracy"].as_f64().unwrap(),
    );
    assert!(0.0 < a1, "top-1 {a1}");
    assert!(a1 <= a3, "top-1 {a1} above top-3 {a3}");
    assert!(a3 <= a5, "top-3 {a3} above top-5 {a5}");
    assert!(a5 < 1.0, "top-5 {a5}");
    let savings = summary["keystroke_savings"].as_f64().unwrap();
    assert!(0.0 < savings, "{savings}");
    assert!(savings < 1.0, "{savings}");
    assert_eq!(summary["latency"]["budget_ms"], 40.0);
    assert!(summary["latency"]["late_for_next_word"].is_null());
}

#[test]
fn harvard_sentences_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = harvard(dir.path(), 3);
    let output = run(&["transcript", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert!(first.starts_with("the "), "{first}");
    assert!(first.contains("next: "), "{first}");
    assert!(stdout.contains("birch"), "{stdout}");
    assert!(stdout.contains("unknown"), "{stdout}");
    assert!(stdout.contains("accuracy: top-1 "), "{stdout}");
    assert!(stdout.contains("keystroke savings: "), "{stdout}");
    assert!(stdout.contains("latency per word: median "), "{stdout}");
}

#[test]
fn timed_transcript_counts_late_words() {
    let dir = tempfile::tempdir().unwrap();
    let vtt = dir.path().join("talk.vtt");
    std::fs::write(&vtt, VTT).unwrap();
    let output = run(&["transcript", "--json", vtt.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["transcript_format"], "vtt");
    assert!(json["summary"]["latency"]["late_for_next_word"].is_u64());
    let first = &json["utterances"][0]["steps"][0];
    assert!((first["time_to_next_word_s"].as_f64().unwrap() - 0.4).abs() < 1e-9);
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = harvard(dir.path(), 2);
    let t = transcript.to_str().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"not an onnx file").unwrap();
    let vocab = dir.path().join("vocab.txt");
    std::fs::write(&vocab, "<unk>\n<eos>\nthe\n").unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, [0u8, 159, 146, 150, 10]).unwrap();

    let cases: [(&[&str], &str); 6] = [
        (&["transcript", "--model", "/nonexistent.onnx", t], "/nonexistent.onnx"),
        (&["transcript", "--model", garbage.to_str().unwrap(), t], "garbage.onnx"),
        (&["transcript", "--vocab", vocab.to_str().unwrap(), t], "3 tokens"),
        (&["transcript", empty.to_str().unwrap()], "has no words"),
        (&["transcript", binary.to_str().unwrap()], "not UTF-8"),
        (&["transcript", "--profile", "/nonexistent.toml", t], "--profile"),
    ];
    for (args, expected) in cases {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn vtt_untimed_words_have_no_start() {
    let text = "WEBVTT\n\n00:00:02.000 --> 00:00:04.000\nstocks fell <00:00:03.000>sharply today\n";
    let utterances = transcript::vtt(text, Path::new("t.vtt")).unwrap();
    let starts: Vec<Option<f64>> = utterances[0].words.iter().map(|w| w.start).collect();
    assert_eq!(starts, [Some(2.0), None, Some(3.0), None]);
}

#[test]
fn vtt_extension_selects_webvtt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("talk.vtt");
    std::fs::write(&file, "00:00:01.000 --> 00:00:02.000\nhello\n").unwrap();
    let err = transcript::read(&file, None).err().unwrap();
    assert!(matches!(err, TranscriptError::InvalidVtt { line: 1, .. }), "{err}");
}

#[test]
fn punctuation_only_transcript_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("punct.txt");
    std::fs::write(&file, "...\n-- !\n").unwrap();
    let output = run(&["transcript", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("only punctuation"), "{stderr}");
}

#[test]
fn top_k_out_of_range_is_usage_error() {
    for k in ["0", "101", "many"] {
        let output = run(&["predict", "--top-k", k, "the"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{k}: {stderr}");
        assert!(stderr.contains("from 1 to 100"), "{k}: {stderr}");
    }
}

#[test]
fn predict_full_stdout_fails_cleanly() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = command::runtime_command()
        .current_dir(repo())
        .args(["predict", "the", "company"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed to write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
