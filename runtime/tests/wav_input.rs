//! `live --input FILE.wav`: the live pipeline fed from a WAV file, and the errors for WAV files
//! and pocketsphinx models it cannot use.

mod command;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::AtomicBool;

use edgenas_runtime::audio::{AudioError, AudioSource, WavFile};
use edgenas_runtime::live::{self, Event, LiveOptions};
use edgenas_runtime::recognizer::{ModelPaths, PocketSphinx, RecognizerError};
use edgenas_runtime::{Predictor, Session};
use support::{spoken_words, words_in_order, SENTENCES};

fn run_live(args: &[&str], input: &Path) -> Output {
    command::runtime_command()
        .arg("live")
        .arg("--model")
        .arg(support::model_path())
        .arg("--input")
        .arg(input)
        .args(args)
        .output()
        .expect("run edgenas-runtime live")
}

/// Writes flite speech of the first two sentences as a WAV file.
fn speech_wav(dir: &Path) -> PathBuf {
    let samples = support::speech(&SENTENCES[..2], dir);
    let path = dir.join("speech.wav");
    support::write_wav(&path, &samples);
    path
}

#[test]
fn wav_pipeline_predicts_spoken_words() {
    support::require_speech_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = speech_wav(dir.path());

    let predictor = Predictor::load(&support::model_path(), None).expect("load the model");
    let mut session = Session::new(&predictor, 4).expect("session");
    let mut recognizer =
        PocketSphinx::new(&ModelPaths::debian_en_us(), false).expect("pocketsphinx");
    let mut source = WavFile::open(&path).expect("open the flite WAV");
    let mut words = Vec::new();
    let mut ended = Vec::new();
    let stop = AtomicBool::new(false);
    let summary = live::run(
        &mut source,
        &mut recognizer,
        &mut session,
        &LiveOptions::default(),
        &stop,
        &mut |event| {
            match event {
                Event::Word { word, steps, .. } => {
                    assert!(!steps.is_empty(), "`{word}` gave no model step");
                    for step in steps.iter() {
                        assert_eq!(step.predictions.len(), 4, "`{word}` predictions");
                    }
                    words.push(word.to_string());
                }
                Event::Revised { sent, .. } => words.truncate(words.len() - sent.len()),
                Event::UtteranceEnded {
                    words: final_words, ..
                } => {
                    ended.push(
                        final_words
                            .iter()
                            .map(|w| w.text.clone())
                            .collect::<Vec<_>>(),
                    );
                }
                Event::UtteranceStarted { .. } => {}
            }
            Ok(())
        },
    )
    .expect("live pipeline on a WAV file");

    println!("words {words:?}; {summary:?}");
    let expected = spoken_words(&SENTENCES[..2]);
    let matched = words_in_order(&expected, &words);
    assert!(
        matched * 2 >= expected.len(),
        "{matched} of {expected:?} in {words:?}"
    );
    assert_eq!(ended.len(), 2, "one utterance per sentence: {ended:?}");
    let final_words: Vec<String> = ended.concat();
    assert_eq!(
        words, final_words,
        "the sent words are the final hypotheses"
    );
    assert_eq!(summary.utterances, 2);
    if summary.revisions == 0 {
        assert_eq!(summary.words, words.len(), "{summary:?}");
    }
}

#[test]
fn binary_wav_input_prints_predictions() {
    support::require_speech_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = speech_wav(dir.path());

    let output = run_live(&["--json", "--top-k", "2"], &path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    let summary = lines.last().expect("summary line");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["stopped_by"], "end of input");
    assert_eq!(summary["summary"]["utterances"], 2, "{stdout}");
    let words: Vec<String> = lines
        .iter()
        .filter(|line| line["event"] == "word")
        .map(|line| line["word"].as_str().expect("word").to_string())
        .collect();
    let expected = spoken_words(&SENTENCES[..2]);
    assert!(
        words_in_order(&expected, &words) * 2 >= expected.len(),
        "{words:?}"
    );
    for line in lines.iter().filter(|line| line["event"] == "word") {
        assert_eq!(
            line["steps"][0]["predictions"].as_array().map(Vec::len),
            Some(2),
            "{line}"
        );
    }

    let text = run_live(&[], &path);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(stdout.contains("utterance 1 started at"), "{stdout}");
    assert!(
        stdout.contains(" -> "),
        "a word line with predictions: {stdout}"
    );
    assert!(stdout.contains("end of input: utterances 2,"), "{stdout}");
}

fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize) {
    let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
    for i in 0..frames * usize::from(spec.channels) {
        let value = ((i as f32) * 0.05).sin();
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, _) => writer.write_sample(value * 0.3),
            (_, 16) => writer.write_sample((value * 8000.0) as i16),
            _ => writer.write_sample((value * 100.0) as i8),
        }
        .expect("write sample");
    }
    writer.finalize().expect("finalize WAV");
}

fn spec(sample_rate: u32, channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

/// Reads `path` to its end and returns the first error.
fn read_wav(path: &Path) -> Result<usize, AudioError> {
    let mut wav = WavFile::open(path)?;
    let stop = AtomicBool::new(false);
    let mut samples = 0;
    while let Some(block) = wav.next_block(&stop)? {
        samples += block.len();
    }
    Ok(samples)
}

#[test]
fn bad_wavs_give_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let int = hound::SampleFormat::Int;
    let float = hound::SampleFormat::Float;
    let good = dir.path().join("good.wav");
    write_wav(&good, spec(16_000, 1, 16, int), 16_000);
    assert_eq!(read_wav(&good).expect("a good WAV reads"), 16_000);

    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "8 kHz",
            dir.path().join("8k.wav"),
            vec!["8000 Hz", "sox", "-r 16000"],
        ),
        (
            "stereo",
            dir.path().join("stereo.wav"),
            vec!["2 channels", "sox", "-c 1"],
        ),
        (
            "float",
            dir.path().join("float.wav"),
            vec!["32-bit float", "sox", "-b 16"],
        ),
        (
            "8-bit",
            dir.path().join("8bit.wav"),
            vec!["8-bit integer", "-b 16"],
        ),
        (
            "text",
            dir.path().join("notes.wav"),
            vec!["is not a WAV file"],
        ),
        (
            "truncated data",
            dir.path().join("cut.wav"),
            vec!["is truncated", "announces 16000 samples"],
        ),
        (
            "truncated header",
            dir.path().join("head.wav"),
            vec!["is truncated", "WAV header"],
        ),
    ];
    write_wav(&cases[0].1, spec(8_000, 1, 16, int), 8_000);
    write_wav(&cases[1].1, spec(16_000, 2, 16, int), 16_000);
    write_wav(&cases[2].1, spec(16_000, 1, 32, float), 16_000);
    write_wav(&cases[3].1, spec(16_000, 1, 8, int), 16_000);
    std::fs::write(&cases[4].1, "these are notes, not audio\n").expect("write text file");
    let bytes = std::fs::read(&good).expect("read good WAV");
    std::fs::write(&cases[5].1, &bytes[..bytes.len() / 2]).expect("write truncated WAV");
    std::fs::write(&cases[6].1, &bytes[..20]).expect("write truncated header");

    for (name, path, expected) in &cases {
        let message = read_wav(path)
            .err()
            .unwrap_or_else(|| panic!("{name}: must fail"))
            .to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        for part in expected {
            assert!(
                message.contains(part),
                "{name}: `{part}` missing in: {message}"
            );
        }

        let output = run_live(&[], path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: the command must fail");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(stderr.contains(expected[0]), "{name}: {stderr}");
    }
}

#[test]
fn missing_model_files_give_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("silence.wav");
    support::write_wav(&good, &support::silence(0.5));
    let defaults = ModelPaths::debian_en_us();
    let missing = dir.path().join("missing");

    let cases = [
        (
            "--hmm",
            ModelPaths {
                hmm: missing.clone(),
                ..defaults.clone()
            },
        ),
        (
            "--lm",
            ModelPaths {
                lm: missing.join("en-us.lm.bin"),
                ..defaults.clone()
            },
        ),
        (
            "--dict",
            ModelPaths {
                dict: missing.join("cmudict-en-us.dict"),
                ..defaults.clone()
            },
        ),
    ];
    for (flag, models) in &cases {
        let error = PocketSphinx::new(models, false)
            .err()
            .expect("missing model must fail");
        assert!(
            matches!(error, RecognizerError::ModelMissing { .. }),
            "{flag}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&missing.display().to_string()),
            "{flag}: {message}"
        );
        assert!(
            message.contains("apt-get install pocketsphinx-en-us"),
            "{flag}: {message}"
        );
        assert!(
            message.contains("--hmm DIR --lm FILE --dict FILE"),
            "{flag}: {message}"
        );

        let value = match *flag {
            "--hmm" => &models.hmm,
            "--lm" => &models.lm,
            _ => &models.dict,
        };
        let output = run_live(&[flag, &value.display().to_string()], &good);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: the command must fail");
        assert!(!stderr.contains("panicked"), "{flag}: {stderr}");
        assert!(
            stderr.contains(&missing.display().to_string()),
            "{flag}: {stderr}"
        );
        assert!(
            stderr.contains("apt-get install pocketsphinx-en-us"),
            "{flag}: {stderr}"
        );
    }
}
