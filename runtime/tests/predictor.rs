//! The tract predictor on the default model: logits against onnxruntime, top-k, state reset
//! and keystroke scores against a direct count, and errors for bad model and vocabulary files.

use std::path::{Path, PathBuf};
use std::process::Command;

use edgenas_runtime::predictor::softmax;
use edgenas_runtime::{Predictor, RuntimeError, Session};

/// Largest logit difference accepted between tract and onnxruntime. The default model keeps
/// int8 weights but computes in float32 in both runtimes, so only summation order differs.
const LOGIT_TOLERANCE: f32 = 1e-4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn default_model() -> PathBuf {
    repo().join("models/ptb-small/model.int8.onnx")
}

fn python() -> PathBuf {
    let python = match std::env::var_os("EDGENAS_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => repo().join(".venv-onnx/bin/python"),
    };
    assert!(
        python.is_file(),
        "Python with onnxruntime not found at {}; run scripts/setup-python-onnx.sh",
        python.display()
    );
    python
}

fn ids(predictor: &Predictor, words: &str) -> Vec<usize> {
    let vocab = predictor.vocab();
    let mut ids = vec![vocab.eos_id()];
    ids.extend(words.split(' ').map(|w| vocab.id(w).expect("test words are in the vocabulary")));
    ids
}

#[test]
fn logits_match_onnxruntime() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    let ids = ids(&predictor, "the company said it expects a loss of $ N million");
    let output = Command::new(python())
        .arg(repo().join("runtime/tests/python/ort_steps.py"))
        .arg(default_model())
        .args(ids.iter().map(|id| id.to_string()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected: Vec<Vec<f32>> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(expected.len(), ids.len());

    let mut state = predictor.initial_state();
    for (step, (&id, want)) in ids.iter().zip(&expected).enumerate() {
        let got = predictor.step(&mut state, id).unwrap();
        assert_eq!(got.len(), want.len());
        let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < LOGIT_TOLERANCE, "step {step}: max logit difference {diff}");
    }
}

#[test]
fn top_k_sorted_without_special_tokens() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    let mut state = predictor.initial_state();
    let mut probabilities = predictor.step(&mut state, predictor.vocab().eos_id()).unwrap();
    softmax(&mut probabilities);
    let sum: f32 = probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");

    let top = predictor.top_k(&probabilities, 20);
    assert_eq!(top.len(), 20);
    assert!(top.windows(2).all(|w| w[0].probability >= w[1].probability));
    assert!(top.iter().all(|p| p.token != "<unk>" && p.token != "<eos>"));
    let mut rest: Vec<(usize, f32)> = probabilities
        .iter()
        .copied()
        .enumerate()
        .filter(|(id, _)| predictor.is_predictable(*id))
        .collect();
    rest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let expected: Vec<usize> = rest.iter().take(20).map(|(id, _)| *id).collect();
    let got: Vec<usize> = top.iter().map(|p| p.id).collect();
    assert_eq!(got, expected);
}

#[test]
fn utterance_start_resets_state() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    let mut session = Session::new(&predictor, 5).unwrap();
    session.start_utterance().unwrap();
    let first: Vec<_> = session.push_word("stocks").unwrap();
    session.push_word("fell").unwrap();
    session.start_utterance().unwrap();
    let again = session.push_word("stocks").unwrap();
    assert_eq!(first[0].predictions, again[0].predictions);
    assert_eq!(first[0].rank, again[0].rank);
}

/// Counts the keystrokes for `target` the slow way: for each typed prefix, the target is
/// offered when fewer than `k` predictable tokens with that prefix rank above it.
fn keystrokes_by_count(predictor: &Predictor, probabilities: &[f32], target: usize, k: usize) -> usize {
    let word = predictor.vocab().token(target).unwrap();
    let len = word.chars().count();
    for typed in 0..=len {
        let prefix: String = word.chars().take(typed).collect();
        let above = (0..probabilities.len())
            .filter(|&id| predictor.is_predictable(id) && id != target)
            .filter(|&id| predictor.vocab().token(id).unwrap().starts_with(&prefix))
            .filter(|&id| {
                probabilities[id] > probabilities[target]
                    || (probabilities[id] == probabilities[target] && id < target)
            })
            .count();
        if above < k {
            return (typed + 1).min(len + 1);
        }
    }
    len + 1
}

#[test]
fn keystrokes_match_direct_count() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    let k = 3;
    let mut session = Session::new(&predictor, k).unwrap();
    session.start_utterance().unwrap();
    let mut state = predictor.initial_state();
    let mut probabilities = predictor.step(&mut state, predictor.vocab().eos_id()).unwrap();
    softmax(&mut probabilities);
    for word in "the board approved a plan to buy back shares of stock".split(' ') {
        let step = session.push_word(word).unwrap().remove(0);
        let id = predictor.vocab().id(word).unwrap();
        assert_eq!(step.keystrokes, keystrokes_by_count(&predictor, &probabilities, id, k), "{word}");
        assert_eq!(step.keystrokes_without, word.len() + 1, "{word}");
        let above = (0..probabilities.len())
            .filter(|&i| predictor.is_predictable(i) && probabilities[i] > probabilities[id])
            .count();
        assert_eq!(step.rank, Some(above + 1), "{word}");
        probabilities = predictor.step(&mut state, id).unwrap();
        softmax(&mut probabilities);
    }
}

#[test]
fn unknown_word_costs_full_typing() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    let mut session = Session::new(&predictor, 3).unwrap();
    let step = session.push_word("Zyzzyva,").unwrap().remove(0);
    assert!(!step.known);
    assert_eq!(step.token, "zyzzyva");
    assert_eq!(step.rank, None);
    assert_eq!(step.keystrokes, step.keystrokes_without);
}

#[test]
fn missing_model_names_path() {
    let err = Predictor::load(Path::new("/nonexistent/model.onnx"), None).err().unwrap();
    assert!(matches!(err, RuntimeError::ModelNotFound { .. }));
    let message = err.to_string();
    assert!(message.contains("/nonexistent/model.onnx"), "{message}");
    assert!(message.contains("--model"), "{message}");
}

#[test]
fn corrupt_model_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf file \xff\xfe").unwrap();
    let message = Predictor::load(&garbage, None).err().unwrap().to_string();
    assert!(message.contains("garbage.onnx"), "{message}");

    let bytes = std::fs::read(default_model()).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let message = Predictor::load(&truncated, None).err().unwrap().to_string();
    assert!(message.contains("truncated.onnx"), "{message}");
}

#[test]
fn vocab_size_mismatch_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = std::fs::read_to_string(repo().join("models/ptb-small/vocab.txt")).unwrap();
    let short: Vec<&str> = vocab.lines().take(9_000).collect();
    let path = dir.path().join("vocab.txt");
    std::fs::write(&path, short.join("\n") + "\n").unwrap();
    let err = Predictor::load(&default_model(), Some(&path)).err().unwrap();
    assert!(matches!(err, RuntimeError::VocabMismatch { vocab_len: 9_000, logits_len: 10_000, .. }), "{err}");
    assert!(err.to_string().contains("vocab.txt"), "{err}");
}

#[test]
fn top_k_out_of_range_rejected() {
    let predictor = Predictor::load(&default_model(), None).unwrap();
    for k in [0, 101] {
        let err = Session::new(&predictor, k).err().unwrap();
        assert!(matches!(err, RuntimeError::InvalidTopK { .. }), "k {k}: {err}");
        assert!(err.to_string().contains(&k.to_string()), "{err}");
    }
}
