//! Latency per word of next-word prediction with tract (the device runtime) and with
//! onnxruntime on the same ONNX files, in float32 and int8. One word is what a user waits
//! for after a word is recognized: one recurrent step on the token, a softmax over the
//! vocabulary and the 5 most probable words, with the state fed back for the next word.
//!
//! Models: the trained `models/ptb-small` (H=128, 5 nodes, V=10000) as committed
//! (`model.int8.onnx`, int8 weights) and rebuilt from its checkpoint in float32 and in the
//! dynamic and static int8 schemes; and chain cells with random weights at V=10000 in
//! float32 and int8 weights, over hidden sizes 64/128/256/512 and 1/4/8 nodes.
//!
//! Run with `cargo bench -p edgenas-benches --bench latency --no-default-features`; the
//! figures at the end need no libtorch. tract runs on one thread, its default (no executor
//! is set). The onnxruntime side (`benches/python/ort_latency_server.py`) needs `.venv-onnx`
//! (`scripts/setup-python-onnx.sh`) and uses one thread. Without it, as on the device, only
//! tract runs. At the end the bench prints ms per word of both, tract / onnxruntime and
//! int8 / float32 for each model.
//!
//! Environment: `EDGENAS_BENCH_GRID` = `quick` (default: hidden 64 to 512 at 4 nodes, and 1
//! and 8 nodes at hidden 128), `full` (all 12 sizes) or `off` (only ptb-small).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgenas_export::Checkpoint;
use edgenas_runtime::calibrate::{
    chain_arch, onnx_model, predict_word, random_checkpoint, SplitMix64, WeightFormat,
};
use edgenas_runtime::locate::{default_file, DEFAULT_MODEL};
use edgenas_runtime::Predictor;

const VOCAB_SIZE: usize = 10_000;
const SEED: u64 = 0;
/// Token ids the static int8 scheme reads to set its activation ranges. They are random, not
/// Penn Treebank text, which changes the scales but not the work per word.
const CALIBRATION_WORDS: usize = 300;

/// One ONNX file to time, with the model it comes from.
struct ModelFile {
    /// Model name and shape, such as `ptb-small_h128_n5_v10000`.
    label: String,
    format: WeightFormat,
    path: PathBuf,
}

/// Total time and words measured for one engine on one file.
#[derive(Default, Clone, Copy)]
struct Tally {
    seconds: f64,
    words: u64,
}

impl Tally {
    fn add(&mut self, elapsed: Duration, words: u64) {
        self.seconds += elapsed.as_secs_f64();
        self.words += words;
    }

    fn ms_per_word(&self) -> Option<f64> {
        (self.words > 0).then(|| self.seconds * 1e3 / self.words as f64)
    }
}

/// Tallies by model label, format and engine (`tract` or `onnxruntime`).
type Tallies = BTreeMap<(String, &'static str, &'static str), Tally>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn shape_label(hidden_size: usize, num_nodes: usize, vocab_size: usize) -> String {
    format!("h{hidden_size}_n{num_nodes}_v{vocab_size}")
}

/// Returns the `(hidden_size, num_nodes)` cells of the random-weight grid.
fn grid_cells() -> Vec<(usize, usize)> {
    match env_or("EDGENAS_BENCH_GRID", "quick").as_str() {
        "off" => Vec::new(),
        "full" => [64, 128, 256, 512]
            .into_iter()
            .flat_map(|h| [1, 4, 8].map(|n| (h, n)))
            .collect(),
        "quick" => vec![(64, 4), (128, 4), (256, 4), (512, 4), (128, 1), (128, 8)],
        other => panic!("EDGENAS_BENCH_GRID={other:?} is invalid; use quick, full or off"),
    }
}

fn calibration_ids(vocab_size: usize) -> Vec<i64> {
    let mut rng = SplitMix64::new(SEED);
    (0..CALIBRATION_WORDS).map(|_| rng.below(vocab_size) as i64).collect()
}

fn write_model(dir: &Path, checkpoint: &Checkpoint, label: &str, format: WeightFormat) -> ModelFile {
    let ids = calibration_ids(checkpoint.arch.vocab_size);
    let bytes = onnx_model(checkpoint, format, &ids).expect("build the ONNX model");
    let path = dir.join(format!("{label}.{}.onnx", format.name()));
    std::fs::write(&path, bytes).expect("write the ONNX model");
    ModelFile {
        label: label.to_string(),
        format,
        path,
    }
}

/// Returns the ptb-small files: the committed int8 file and, when the checkpoint is there,
/// the float32 and the other int8 schemes built from it.
fn ptb_small_models(dir: &Path) -> Vec<ModelFile> {
    let committed = default_file(DEFAULT_MODEL);
    let checkpoint_dir = committed.parent().expect("the model path has a folder").to_path_buf();
    let predictor = Predictor::load(&committed, None).expect("load models/ptb-small/model.int8.onnx");
    let arch = predictor.arch();
    let label = format!("ptb-small_{}", shape_label(arch.hidden_size, arch.num_nodes(), arch.vocab_size));
    let mut models = vec![ModelFile {
        label: label.clone(),
        format: WeightFormat::Int8Weights,
        path: committed,
    }];
    match Checkpoint::load(&checkpoint_dir) {
        Ok(checkpoint) => {
            for format in [WeightFormat::Float32, WeightFormat::Int8Dynamic, WeightFormat::Int8Static] {
                models.push(write_model(dir, &checkpoint, &label, format));
            }
        }
        Err(e) => eprintln!("skipping ptb-small float32 and other int8 schemes: {e}"),
    }
    models
}

fn grid_models(dir: &Path) -> Vec<ModelFile> {
    let mut models = Vec::new();
    for (hidden_size, num_nodes) in grid_cells() {
        let arch = chain_arch(VOCAB_SIZE, hidden_size, num_nodes).expect("a valid chain cell");
        let checkpoint = random_checkpoint(&arch, SEED);
        let label = format!("random_{}", shape_label(hidden_size, num_nodes, VOCAB_SIZE));
        for format in [WeightFormat::Float32, WeightFormat::Int8Weights] {
            models.push(write_model(dir, &checkpoint, &label, format));
        }
    }
    models
}

/// The onnxruntime server of `benches/python/ort_latency_server.py`.
struct OrtServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl OrtServer {
    fn start() -> Option<OrtServer> {
        let python = default_file(".venv-onnx/bin/python");
        let script = default_file("benches/python/ort_latency_server.py");
        if !python.is_file() || !script.is_file() {
            eprintln!(
                "skipping onnxruntime: {} or {} not found; run scripts/setup-python-onnx.sh",
                python.display(),
                script.display()
            );
            return None;
        }
        let mut child = Command::new(python)
            .arg(script)
            .args(["--seed", &SEED.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the onnxruntime server");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut server = OrtServer { child, stdin, stdout };
        assert_eq!(server.read_line(), "ready", "the onnxruntime server did not start");
        Some(server)
    }

    fn request(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to the onnxruntime server");
        self.stdin.flush().expect("flush the request");
        self.read_line()
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the server's response");
        assert!(!line.is_empty(), "the onnxruntime server exited; its log is above");
        line.trim().to_string()
    }

    fn load(&mut self, path: &Path) {
        let response = self.request(&format!("load {}", path.display()));
        assert!(response.starts_with("loaded "), "unexpected response {response:?}");
    }

    fn run(&mut self, words: u64) -> Duration {
        let response = self.request(&format!("run {words}"));
        let seconds: f64 = response.parse().expect("the server responds with seconds");
        Duration::from_secs_f64(seconds)
    }
}

impl Drop for OrtServer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

/// Benchmarks one file in tract and, when the server runs, in onnxruntime, in one group.
fn bench_model(c: &mut Criterion, model: &ModelFile, server: &mut Option<OrtServer>, tallies: &RefCell<Tallies>) {
    let predictor = Predictor::load(&model.path, None).expect("load the model in tract");
    let arch = predictor.arch().clone();
    let shape = shape_label(arch.hidden_size, arch.num_nodes(), arch.vocab_size);
    let format = model.format.name();
    let mut group = c.benchmark_group(format!("latency/{}/{format}", model.label));
    group.throughput(Throughput::Elements(1));

    let mut state = predictor.initial_state();
    let mut rng = SplitMix64::new(SEED);
    let key = |engine| (model.label.clone(), format, engine);
    group.bench_function(BenchmarkId::new("tract", format!("{format}_{shape}")), |b| {
        b.iter_custom(|words| {
            let started = Instant::now();
            for _ in 0..words {
                let id = rng.below(arch.vocab_size);
                black_box(predict_word(&predictor, &mut state, id).expect("tract step"));
            }
            let elapsed = started.elapsed();
            tallies.borrow_mut().entry(key("tract")).or_default().add(elapsed, words);
            elapsed
        })
    });

    if let Some(server) = server.as_mut() {
        server.load(&model.path);
        group.bench_function(BenchmarkId::new("onnxruntime", format!("{format}_{shape}")), |b| {
            b.iter_custom(|words| {
                let elapsed = server.run(words);
                tallies.borrow_mut().entry(key("onnxruntime")).or_default().add(elapsed, words);
                elapsed
            })
        });
    }
    group.finish();
}

fn latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder for the ONNX files");
    let mut models = ptb_small_models(dir.path());
    models.extend(grid_models(dir.path()));
    let mut server = OrtServer::start();
    eprintln!("tract: one thread; onnxruntime: one intra-op and one inter-op thread");

    let tallies = RefCell::new(Tallies::new());
    for model in &models {
        bench_model(c, model, &mut server, &tallies);
    }
    print_summary(&models, &tallies.borrow());
}

fn format_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| format!("{ms:.4}"))
}

fn format_ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) => format!("{:.2}", n / d),
        _ => "-".to_string(),
    }
}

/// Prints ms per word by model and format, tract / onnxruntime, then int8 / float32.
fn print_summary(models: &[ModelFile], tallies: &Tallies) {
    let ms = |label: &str, format: WeightFormat, engine| {
        tallies
            .get(&(label.to_string(), format.name(), engine))
            .and_then(Tally::ms_per_word)
    };
    println!("\nms per word (mean over all timed words)");
    println!("{:<32} {:<13} {:>10} {:>12} {:>11}", "model", "format", "tract", "onnxruntime", "tract/ort");
    for m in models {
        let (tract, ort) = (ms(&m.label, m.format, "tract"), ms(&m.label, m.format, "onnxruntime"));
        println!(
            "{:<32} {:<13} {:>10} {:>12} {:>11}",
            m.label,
            m.format.name(),
            format_ms(tract),
            format_ms(ort),
            format_ratio(tract, ort)
        );
    }
    println!("\nint8 / float32 time per word");
    println!("{:<32} {:<13} {:>10} {:>12}", "model", "int8 format", "tract", "onnxruntime");
    for m in models.iter().filter(|m| m.format != WeightFormat::Float32) {
        let ratio = |engine| format_ratio(ms(&m.label, m.format, engine), ms(&m.label, WeightFormat::Float32, engine));
        println!("{:<32} {:<13} {:>10} {:>12}", m.label, m.format.name(), ratio("tract"), ratio("onnxruntime"));
    }
}

criterion_group!(benches, latency);
criterion_main!(benches);
