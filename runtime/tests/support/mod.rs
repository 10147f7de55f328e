//! Shared fixtures of the live speech tests: synthetic speech from flite, an ALSA capture
//! device fed from a FIFO, and word matching.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const SAMPLE_RATE: u32 = 16_000;

/// Sentences of common Penn Treebank words that flite's `rms` voice speaks clearly enough for
/// pocketsphinx's US English model to recognize.
pub const SENTENCES: [&str; 3] = [
    "the company said it will report earnings next week",
    "the stock market fell sharply today",
    "the president of the united states",
];

/// Returns the path of the trained model of the repository.
pub fn model_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ptb-small/model.int8.onnx");
    assert!(
        path.is_file(),
        "{} is missing; it is the model the live tests predict with",
        path.display()
    );
    path
}

/// Panics with the set-up command when `tool` is not installed.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "`{tool}` is not installed; the live speech tests need it. \
         Run scripts/setup-runtime-deps.sh (as root) to install it."
    );
}

/// Panics with the set-up command when the pocketsphinx US English model is not installed.
pub fn require_speech_tools() {
    require_tool("flite");
    let model = Path::new("/usr/share/pocketsphinx/model/en-us/en-us/mdef");
    assert!(
        model.is_file(),
        "{} is missing; the live speech tests need the pocketsphinx US English model. \
         Run scripts/setup-runtime-deps.sh (as root) to install it.",
        model.display()
    );
}

/// Says `text` with flite's `rms` voice and returns its 16 kHz mono samples.
pub fn synthesize(text: &str, dir: &Path) -> Vec<i16> {
    let path = dir.join("flite.wav");
    let status = Command::new("flite")
        .args(["-voice", "rms", "-t", text, "-o"])
        .arg(&path)
        .status()
        .expect("failed to run flite");
    assert!(status.success(), "flite failed on {text:?}: {status}");
    let mut reader = hound::WavReader::open(&path).expect("flite wrote an unreadable WAV");
    let spec = reader.spec();
    // flite's rms voice speaks at 16 kHz mono 16-bit, so no resampling is needed.
    assert_eq!(
        spec.sample_rate, SAMPLE_RATE,
        "flite's rms voice changed its sample rate"
    );
    assert_eq!(spec.channels, 1);
    assert_eq!(spec.bits_per_sample, 16);
    reader
        .samples::<i16>()
        .map(|s| s.expect("flite WAV sample"))
        .collect()
}

pub fn silence(seconds: f64) -> Vec<i16> {
    vec![0; (seconds * f64::from(SAMPLE_RATE)) as usize]
}

/// Speech of `sentences` with a pause of 1.2 s after each, longer than the voice activity
/// detector's end-of-speech delay, so each sentence becomes its own utterance.
pub fn speech(sentences: &[&str], dir: &Path) -> Vec<i16> {
    let mut samples = silence(0.5);
    for sentence in sentences {
        samples.extend(synthesize(sentence, dir));
        samples.extend(silence(1.2));
    }
    samples
}

pub fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
    for &sample in samples {
        writer.write_sample(sample).expect("write WAV sample");
    }
    writer.finalize().expect("finalize WAV");
}

/// Counts the words of `spoken` that appear in `recognized` in the same order (the length of
/// the longest common subsequence).
pub fn words_in_order(spoken: &[String], recognized: &[String]) -> usize {
    let mut previous = vec![0usize; recognized.len() + 1];
    for word in spoken {
        let mut current = vec![0usize; recognized.len() + 1];
        for (j, other) in recognized.iter().enumerate() {
            current[j + 1] = if word == other {
                previous[j] + 1
            } else {
                current[j].max(previous[j + 1])
            };
        }
        previous = current;
    }
    previous[recognized.len()]
}

/// Returns how many of `expected` spoken words a live test must see recognized in order.
///
/// Natively it is half of them. Under user-mode qemu (`EDGENAS_RUNTIME_RUNNER` set), the
/// recognizer and the model run far slower than the audio arrives, so a stop drops the audio
/// still queued. On a busy 2-core machine only the first sentence was recognized there.
/// There the test asks for the first few words, which still shows that recognized words reach
/// the predictor.
pub fn required_matches(expected: usize) -> usize {
    if emulated() {
        expected.min(3)
    } else {
        expected.div_ceil(2)
    }
}

/// Returns whether the test binaries run under an emulator.
pub fn emulated() -> bool {
    std::env::var_os("EDGENAS_RUNTIME_RUNNER").is_some()
}

pub fn spoken_words(sentences: &[&str]) -> Vec<String> {
    sentences
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// An ALSA configuration whose `default` capture device reads raw 16 kHz mono S16_LE samples
/// from a FIFO: the `file` plugin over the `null` plugin.
///
/// The `null` plugin has no clock, so the FIFO paces the capture: each read blocks until the
/// writer sends the next block. The `file` plugin (alsa-lib 1.2) calls `read` on the FIFO once
/// per read request and fills what that call did not return with the null plugin's silence.
/// So the writer sends blocks of [`FIFO_BLOCK`] samples, each in a single write of at most
/// `PIPE_BUF` (4096) bytes, which reaches the reader whole. cpal 0.16 requests what the device
/// reports as available, its whole buffer of 100 ms here, which is this block size.
pub struct AlsaFifo {
    pub config: PathBuf,
    pub fifo: PathBuf,
    /// Held open for reading and writing, so opening the read end never blocks and reads block
    /// (rather than end) while no audio is written.
    handle: File,
}

/// Samples per FIFO write: 100 ms.
pub const FIFO_BLOCK: usize = SAMPLE_RATE as usize / 10;

impl AlsaFifo {
    pub fn create(dir: &Path) -> AlsaFifo {
        let fifo = dir.join("capture.fifo");
        let status = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("failed to run mkfifo");
        assert!(status.success(), "mkfifo {} failed", fifo.display());
        let handle = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open FIFO");
        let config = dir.join("asound.conf");
        let text = format!(
            "# Capture from a FIFO without a sound card.\n\
             pcm.!default {{\n    type file\n    slave.pcm \"silent\"\n    file \"/dev/null\"\n    \
             infile \"{}\"\n    format \"raw\"\n}}\n\
             pcm.silent {{\n    type null\n}}\n",
            fifo.display()
        );
        std::fs::write(&config, text).expect("write ALSA config");
        AlsaFifo {
            config,
            fifo,
            handle,
        }
    }

    /// Starts a thread that writes `samples` in real time, then silence until `done` is set.
    /// It sets `spoken` once all of `samples` is written.
    pub fn play(
        &self,
        samples: Vec<i16>,
        spoken: Arc<AtomicBool>,
        done: Arc<AtomicBool>,
    ) -> JoinHandle<()> {
        let mut handle = self.handle.try_clone().expect("clone FIFO handle");
        std::thread::spawn(move || {
            let block_time = Duration::from_secs_f64(FIFO_BLOCK as f64 / f64::from(SAMPLE_RATE));
            let started = Instant::now();
            let blocks = samples.chunks(FIFO_BLOCK).map(<[i16]>::to_vec);
            let tail = std::iter::repeat_with(|| vec![0i16; FIFO_BLOCK]);
            for (index, mut block) in blocks.chain(tail).enumerate() {
                if index * FIFO_BLOCK >= samples.len() {
                    spoken.store(true, Ordering::SeqCst);
                }
                if done.load(Ordering::SeqCst) {
                    return;
                }
                block.resize(FIFO_BLOCK, 0);
                let bytes: Vec<u8> = block.iter().flat_map(|s| s.to_le_bytes()).collect();
                handle.write_all(&bytes).expect("write to the capture FIFO");
                let due = started + block_time * (index as u32 + 1);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        })
    }
}
