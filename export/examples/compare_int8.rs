//! Compares the int8 schemes of the export on one checkpoint: file size, validation and test
//! perplexity through tract, and tract time per step at batch size 1.
//!
//! ```sh
//! cargo run --release -p edgenas-export --example compare_int8 -- models/ptb-small ../shared/data/ptb
//! ```
//!
//! The corpus folder contains `ptb.{train,valid,test}.txt` or `{train,valid,test}.txt`. Words are
//! split on whitespace, `<eos>` ends every non-blank line and unknown words become `<unk>`, as
//! `edgenas train` reads a corpus. Latency rounds alternate between the models, so a load
//! from other processes slows each of them alike; the median round is reported.

use std::path::{Path, PathBuf};

use edgenas_core::Vocab;
use edgenas_export::calibrate::calibrate;
use edgenas_export::checks::{perplexity, step_latency_ms};
use edgenas_export::export::CALIBRATION_SENTENCES;
use edgenas_export::onnx::{self, Int8Scheme};
use edgenas_export::reference::Reference;
use edgenas_export::tract::TractModel;
use edgenas_export::{calibrate::first_sentences, Checkpoint, NoProgress};

const EVAL_BATCH_SIZE: usize = 10;
const LATENCY_ROUNDS: usize = 7;
const LATENCY_STEPS: usize = 300;

fn split_ids(corpus: &Path, split: &str, vocab: &Vocab) -> Vec<i64> {
    let path = [format!("{split}.txt"), format!("ptb.{split}.txt")]
        .into_iter()
        .map(|name| corpus.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{} has no {split} split", corpus.display()));
    let text = std::fs::read_to_string(&path).expect("readable split");
    let mut ids = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        ids.extend(line.split_whitespace().map(|w| vocab.id_or_unk(w) as i64));
        ids.push(vocab.eos_id() as i64);
    }
    ids
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [checkpoint_dir, corpus] = args.as_slice() else {
        eprintln!("usage: compare_int8 CHECKPOINT_DIR CORPUS_DIR");
        std::process::exit(2);
    };
    let checkpoint = Checkpoint::load(checkpoint_dir).expect("a valid checkpoint");
    let (h, v) = (checkpoint.arch.hidden_size, checkpoint.arch.vocab_size);
    let valid = split_ids(corpus, "valid", &checkpoint.vocab);
    let test = split_ids(corpus, "test", &checkpoint.vocab);
    let train = split_ids(corpus, "train", &checkpoint.vocab);

    let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
    let calibration = first_sentences(
        &train,
        checkpoint.vocab.eos_id() as i64,
        CALIBRATION_SENTENCES,
    );
    let ranges = calibrate(&reference, &checkpoint.arch, calibration).expect("calibration");
    let graphs = [
        ("float32", onnx::float_model(&checkpoint)),
        (
            "int8 weights",
            onnx::int8_model(&checkpoint, &Int8Scheme::WeightsOnly),
        ),
        (
            "int8 dynamic",
            onnx::int8_model(&checkpoint, &Int8Scheme::Dynamic),
        ),
        (
            "int8 static",
            onnx::int8_model(&checkpoint, &Int8Scheme::Static(ranges)),
        ),
    ];
    let models: Vec<TractModel> = graphs
        .iter()
        .map(|(name, bytes)| {
            TractModel::load(bytes, h, "compared").unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect();

    let mut rounds = vec![Vec::new(); models.len()];
    for _ in 0..LATENCY_ROUNDS {
        for (i, model) in models.iter().enumerate() {
            rounds[i].push(step_latency_ms(model, &valid, h, LATENCY_STEPS).expect("latency"));
        }
    }

    println!("| graph | bytes | size / float32 | valid ppl | test ppl | tract ms per step (batch 1, median of {LATENCY_ROUNDS} x {LATENCY_STEPS}) |");
    println!("|---|---|---|---|---|---|");
    let float_bytes = graphs[0].1.len() as f64;
    for (i, ((name, bytes), model)) in graphs.iter().zip(&models).enumerate() {
        let valid_ppl =
            perplexity(model, &valid, EVAL_BATCH_SIZE, v, h, name, &mut NoProgress).expect("valid");
        let test_ppl =
            perplexity(model, &test, EVAL_BATCH_SIZE, v, h, name, &mut NoProgress).expect("test");
        let mut times = rounds[i].clone();
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {:.1}% | {:.2} | {:.2} | {:.3} |",
            bytes.len(),
            bytes.len() as f64 / float_bytes * 100.0,
            valid_ppl.perplexity,
            test_ppl.perplexity,
            times[times.len() / 2]
        );
    }
}
