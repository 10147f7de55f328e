//! Training runs: a run stopped after any completed epoch and resumed ends with the same
//! weights and perplexities as an uninterrupted run with the same seed.

use std::path::Path;
use std::sync::Mutex;

use edgenas_core::{Activation, Arch, Dropout};
use edgenas_search::corpus::Corpus;
use edgenas_search::run::{train_run, Metrics, RunError};
use edgenas_search::train::{Silent, TrainConfig};
use tch::Tensor;

/// Training draws dropout masks from libtorch's process-wide generator, so runs that must be
/// reproducible cannot overlap: tests that train hold this lock.
static TRAINING: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    TRAINING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes a small corpus whose next word depends on the previous ones, so training makes
/// measurable progress in a few epochs.
fn write_corpus(dir: &Path) {
    let words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "fast"];
    let mut lines = Vec::new();
    for i in 0..400usize {
        let a = words[i % 10];
        let b = words[(i * 7 + 3) % 10];
        let c = words[(i * 3 + 1) % 10];
        lines.push(format!("{a} {b} {c} {b} {a}"));
    }
    let text = lines.join("\n");
    std::fs::write(dir.join("train.txt"), &text).unwrap();
    std::fs::write(dir.join("valid.txt"), lines[..60].join("\n")).unwrap();
    std::fs::write(dir.join("test.txt"), lines[60..120].join("\n")).unwrap();
}

fn small_arch(vocab_size: usize) -> Arch {
    let dropout = Dropout {
        embedding: 0.1,
        input: 0.2,
        hidden: 0.1,
        output: 0.2,
    };
    let rest = [(0, Activation::Relu), (0, Activation::Sigmoid), (1, Activation::Identity)];
    Arch::new(vocab_size, 16, Activation::Tanh, &rest, dropout).unwrap()
}

/// Takes the training lock and returns a corpus folder, its corpus and a matching
/// architecture.
fn setup() -> (std::sync::MutexGuard<'static, ()>, tempfile::TempDir, Corpus, Arch) {
    let guard = lock();
    let data = tempfile::tempdir().unwrap();
    write_corpus(data.path());
    let corpus = Corpus::load(data.path(), None).unwrap();
    let arch = small_arch(corpus.vocab.len());
    (guard, data, corpus, arch)
}

fn config(max_epochs: usize) -> TrainConfig {
    TrainConfig {
        batch_size: 4,
        bptt: 8,
        lr: 5.0,
        max_epochs,
        patience: 10,
        eval_batch_size: 2,
        seed: 7,
        ..TrainConfig::default()
    }
}

fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    let mut t = Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn assert_same_run(a: &Metrics, b: &Metrics, dir_a: &Path, dir_b: &Path) {
    assert_eq!(a.epochs, b.epochs);
    assert_eq!(a.best_epoch, b.best_epoch);
    assert_eq!(a.train_perplexity, b.train_perplexity);
    assert_eq!(a.valid_perplexity, b.valid_perplexity);
    assert_eq!(a.test_perplexity, b.test_perplexity);
    for ((name_a, ta), (name_b, tb)) in weights(dir_a).iter().zip(weights(dir_b).iter()) {
        assert_eq!(name_a, name_b);
        assert!(ta.equal(tb), "tensor {name_a} differs after resume");
    }
}

#[test]
fn resume_after_each_epoch_matches_uninterrupted() {
    let (_guard, _data, corpus, arch) = setup();

    let whole = tempfile::tempdir().unwrap();
    let reference = train_run(&corpus, &arch, &config(3), whole.path(), false, &mut Silent).unwrap();
    assert!(
        reference.valid_perplexity < corpus.vocab.len() as f64,
        "training made no progress: valid perplexity {}",
        reference.valid_perplexity
    );

    for stop_after in 1..3 {
        let parts = tempfile::tempdir().unwrap();
        train_run(&corpus, &arch, &config(stop_after), parts.path(), false, &mut Silent).unwrap();
        let resumed = train_run(&corpus, &arch, &config(3), parts.path(), true, &mut Silent).unwrap();
        assert_same_run(&reference, &resumed, whole.path(), parts.path());
    }
}

#[test]
fn same_seed_gives_same_model() {
    let (_guard, _data, corpus, arch) = setup();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ma = train_run(&corpus, &arch, &config(2), a.path(), false, &mut Silent).unwrap();
    let mb = train_run(&corpus, &arch, &config(2), b.path(), false, &mut Silent).unwrap();
    assert_same_run(&ma, &mb, a.path(), b.path());
}

#[test]
fn existing_run_needs_resume_flag() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();
    let before = std::fs::read(out.path().join("model.safetensors")).unwrap();

    let err = train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    let after = std::fs::read(out.path().join("model.safetensors")).unwrap();
    assert_eq!(before, after, "a rejected start must not touch the existing checkpoint");
}

#[test]
fn resume_with_other_architecture_is_rejected() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();

    let mut other = arch.clone();
    other.hidden_size = 8;
    let err = train_run(&corpus, &other, &config(2), out.path(), true, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("arch.json"), "{err}");
}

#[test]
fn resume_without_run_is_rejected() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    let err = train_run(&corpus, &arch, &config(1), out.path(), true, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
}

#[test]
fn vocab_size_mismatch_names_both_sizes() {
    let _guard = lock();
    let data = tempfile::tempdir().unwrap();
    write_corpus(data.path());
    let corpus = Corpus::load(data.path(), None).unwrap();
    let arch = small_arch(corpus.vocab.len() + 5);
    let out = tempfile::tempdir().unwrap();
    let err = train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap_err();
    assert!(matches!(err, RunError::VocabSize { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&(corpus.vocab.len() + 5).to_string()), "{message}");
    assert!(message.contains(&corpus.vocab.len().to_string()), "{message}");
}

#[test]
fn invalid_settings_are_rejected_before_training() {
    let (_guard, _data, corpus, arch) = setup();
    let cases = [
        (TrainConfig { batch_size: 0, ..config(1) }, "--batch-size"),
        (TrainConfig { bptt: 0, ..config(1) }, "--bptt"),
        (TrainConfig { lr: -1.0, ..config(1) }, "--lr"),
        (TrainConfig { lr_decay: 1.5, ..config(1) }, "--lr-decay"),
        (TrainConfig { batch_size: 100_000, ..config(1) }, "100000"),
        (TrainConfig { max_epochs: 0, ..config(1) }, "--epochs"),
        (TrainConfig { patience: 0, ..config(1) }, "--patience"),
        (TrainConfig { eval_batch_size: 5_000, ..config(1) }, "--eval-batch-size"),
    ];
    for (bad, needle) in cases {
        let out = tempfile::tempdir().unwrap();
        let err = train_run(&corpus, &arch, &bad, out.path(), false, &mut Silent).unwrap_err();
        assert!(err.to_string().contains(needle), "expected {needle} in: {err}");
        assert!(
            !out.path().join("train-state.json").exists(),
            "a rejected run must not start a checkpoint"
        );
    }
}

#[test]
fn diverged_training_stops_with_error() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    let wild = TrainConfig {
        lr: 1e6,
        clip: 1e6,
        ..config(3)
    };
    let err = train_run(&corpus, &arch, &wild, out.path(), false, &mut Silent).unwrap_err();
    assert!(matches!(err, RunError::Diverged { epoch: 1, .. }), "{err}");
    assert!(err.to_string().contains("--lr"), "{err}");
    assert!(
        !out.path().join("train-state.json").exists(),
        "a diverged epoch must not be checkpointed"
    );
}

#[test]
fn resume_on_other_corpus_is_rejected() {
    let (_guard, data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();

    // One more line holding every word once: each count grows by one, so the vocabulary and
    // its order stay the same while the text differs.
    let train = data.path().join("train.txt");
    let mut text = std::fs::read_to_string(&train).unwrap();
    text.push_str("\nthe cat dog sat ran on a mat log fast");
    std::fs::write(&train, text).unwrap();
    let other = Corpus::load(data.path(), None).unwrap();
    assert_eq!(other.vocab, corpus.vocab);

    let err = train_run(&other, &arch, &config(2), out.path(), true, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("corpus.json"), "{err}");
}

#[test]
fn folder_of_other_files_is_not_overwritten() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("vocab.txt"), "precious\n").unwrap();

    let err = train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("not a training run folder"), "{err}");
    let vocab_after = std::fs::read_to_string(out.path().join("vocab.txt")).unwrap();
    assert_eq!(vocab_after, "precious\n");
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["vocab.txt"], "a rejected folder gets no new files");
}

#[test]
fn run_stopped_before_first_epoch_starts_over() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    // What a stop during epoch 1 leaves: the start files and a half-written temporary.
    let started = serde_json::to_string(&config(1)).unwrap();
    std::fs::write(out.path().join("train-config.json"), started).unwrap();
    std::fs::write(out.path().join(".model.safetensors.tmp-1.safetensors"), "partial").unwrap();

    let metrics = train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();
    assert_eq!(metrics.epochs, 1);
    assert!(
        !out.path().join(".model.safetensors.tmp-1.safetensors").exists(),
        "the stale temporary must be removed"
    );
}

#[test]
fn locked_run_folder_is_rejected() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    let other_process_lock = edgenas_search::checkpoint::RunDir::new(out.path()).lock().unwrap();

    let err = train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("in use by another edgenas process"), "{err}");

    drop(other_process_lock);
    train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();
}

#[test]
fn resume_may_lower_learning_rate() {
    let (_guard, _data, corpus, arch) = setup();
    let out = tempfile::tempdir().unwrap();
    train_run(&corpus, &arch, &config(1), out.path(), false, &mut Silent).unwrap();

    let gentler = TrainConfig { lr: 0.5, ..config(2) };
    train_run(&corpus, &arch, &gentler, out.path(), true, &mut Silent).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("train-state.json")).unwrap()).unwrap();
    assert_eq!(state["history"][1]["lr"], 0.5);

    let other_batch = TrainConfig { batch_size: 3, ..config(3) };
    let err = train_run(&corpus, &arch, &other_batch, out.path(), true, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("train-config.json"), "{err}");
}

#[test]
fn architecture_beyond_memory_is_rejected() {
    let (_guard, _data, corpus, _) = setup();
    // 2 * 100000^2 * 2 = 4e10 parameters, 320 GB of weights and gradients.
    let huge = Arch::new(corpus.vocab.len(), 100_000, Activation::Tanh, &[], Dropout::NONE).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = train_run(&corpus, &huge, &config(1), out.path(), false, &mut Silent).unwrap_err();
    assert!(matches!(err, RunError::OutOfMemory { .. }), "{err}");
}

#[test]
fn train_split_shorter_than_eval_batch_is_rejected() {
    let (_guard, _data, corpus, arch) = setup();
    let tokens = corpus.train.ids.len();
    let wide = TrainConfig {
        eval_batch_size: tokens,
        ..config(1)
    };
    let out = tempfile::tempdir().unwrap();
    let err = train_run(&corpus, &arch, &wide, out.path(), false, &mut Silent).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("train split"), "{message}");
    assert!(message.contains("--eval-batch-size"), "{message}");
}
