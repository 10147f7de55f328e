//! Training throughput of the ENAS cell in this crate (tch) and in plain PyTorch. One step is
//! an SGD update: forward over a BPTT window with dropout, backward, clipping and the update.
//! Both sides use the same architecture, batch, window and number of CPU threads.
//!
//! Run with `cargo bench -p edgenas-benches --bench train_throughput`. The PyTorch side needs
//! `.venv-torch` (`scripts/setup-python-ref.sh`); without it only the tch side runs. At the
//! end the bench prints words per second of both and their ratio, tch / PyTorch.
//! Environment: `EDGENAS_BENCH_ARCH` (default `archs/small.json`), `EDGENAS_BENCH_BATCH`
//! (default 32), `EDGENAS_BENCH_THREADS` (default: all cores).

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgenas_core::Arch;
use edgenas_search::train::Trainer;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

const BPTT: i64 = 35;
const CLIP: f64 = 0.25;
const LR: f64 = 20.0;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// Total time and steps measured for one implementation, to print the ratio at the end.
#[derive(Default, Clone, Copy)]
struct Tally {
    seconds: f64,
    steps: u64,
}

impl Tally {
    fn words_per_second(&self, words_per_step: f64) -> f64 {
        self.steps as f64 * words_per_step / self.seconds
    }
}

/// The PyTorch training server of `benches/python/torch_train_server.py`.
struct TorchServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl TorchServer {
    fn start(arch: &Path, batch: i64, threads: i32) -> Option<TorchServer> {
        let python = repo_root().join(".venv-torch/bin/python");
        if !python.exists() {
            eprintln!(
                "skipping PyTorch: {} not found; run scripts/setup-python-ref.sh",
                python.display()
            );
            return None;
        }
        let mut child = Command::new(python)
            .arg(repo_root().join("benches/python/torch_train_server.py"))
            .args(["--arch", &arch.display().to_string()])
            .args(["--batch-size", &batch.to_string(), "--bptt", &BPTT.to_string()])
            .args(["--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the PyTorch server");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the server's ready line");
        assert_eq!(line.trim(), "ready", "the PyTorch server did not start");
        Some(TorchServer { child, stdin, stdout })
    }

    fn run(&mut self, steps: u64) -> Duration {
        writeln!(self.stdin, "run {steps}").expect("writing to the PyTorch server");
        self.stdin.flush().expect("flushing the request");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading the server's response");
        let seconds: f64 = line.trim().parse().expect("the server responds with seconds");
        Duration::from_secs_f64(seconds)
    }
}

impl Drop for TorchServer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

fn train_throughput(c: &mut Criterion) {
    let arch_path = repo_root().join(env_or("EDGENAS_BENCH_ARCH", "archs/small.json".to_string()));
    let arch = Arch::load(&arch_path).expect("loading the benchmark architecture");
    let batch: i64 = env_or("EDGENAS_BENCH_BATCH", 32);
    let threads: i32 = env_or("EDGENAS_BENCH_THREADS", tch::get_num_threads());
    tch::set_num_threads(threads);
    let words = (batch * BPTT) as f64;

    let name = format!(
        "train_step/h{}_n{}_v{}_b{batch}_t{BPTT}_threads{threads}",
        arch.hidden_size,
        arch.num_nodes(),
        arch.vocab_size
    );
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(words as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));

    let trainer = Trainer::new(&arch, 1).expect("allocating the benchmark model");
    let mut opt = nn::Sgd::default().build(&trainer.vs, LR).expect("SGD");
    let tokens = || Tensor::randint(arch.vocab_size as i64, [BPTT, batch], (Kind::Int64, tch::Device::Cpu));
    let (input, target) = (tokens(), tokens());
    let state = RefCell::new(trainer.model.zero_state(batch));
    let tch_tally = RefCell::new(Tally::default());
    group.bench_function(BenchmarkId::new("tch", "sgd_step"), |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let (_, next) = trainer.train_window(&mut opt, &input, &target, &state.borrow(), CLIP);
                *state.borrow_mut() = next;
            }
            let elapsed = started.elapsed();
            let mut tally = tch_tally.borrow_mut();
            tally.seconds += elapsed.as_secs_f64();
            tally.steps += iters;
            elapsed
        })
    });

    let torch_tally = RefCell::new(Tally::default());
    if let Some(mut server) = TorchServer::start(&arch_path, batch, threads) {
        group.bench_function(BenchmarkId::new("pytorch", "sgd_step"), |b| {
            b.iter_custom(|iters| {
                let elapsed = server.run(iters);
                let mut tally = torch_tally.borrow_mut();
                tally.seconds += elapsed.as_secs_f64();
                tally.steps += iters;
                elapsed
            })
        });
    }
    group.finish();

    let ours = tch_tally.borrow().words_per_second(words);
    println!("tch:     {ours:8.0} words/s");
    let theirs = *torch_tally.borrow();
    if theirs.steps > 0 {
        let theirs = theirs.words_per_second(words);
        println!("pytorch: {theirs:8.0} words/s");
        println!("ratio tch / pytorch (words per second): {:.3}", ours / theirs);
    }
}

criterion_group!(benches, train_throughput);
criterion_main!(benches);
