//! The tch cell against an independent PyTorch implementation of the same math.
//!
//! The fixtures come from `search/tests/fixtures/make_cell_fixtures.py`: random weights,
//! tokens `[T, B]` and an initial state, with logits and final state computed by PyTorch in
//! float64 and stored as float32. The Rust model loads the same weights by their state-dict
//! names and runs in eval mode (no dropout).

use std::collections::HashMap;
use std::path::PathBuf;

use edgenas_core::Arch;
use edgenas_search::model::LanguageModel;
use tch::{nn, Device, Tensor};

/// Largest absolute difference accepted between float32 logits and the float64 reference.
const F32_TOLERANCE: f64 = 1e-5;

fn fixture(case: &str) -> (Arch, PathBuf, HashMap<String, Tensor>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let arch = Arch::load(&dir.join(format!("cell_{case}.arch.json"))).expect("fixture arch");
    let weights = dir.join(format!("cell_{case}.safetensors"));
    let tensors = Tensor::read_safetensors(&weights)
        .expect("fixture tensors")
        .into_iter()
        .collect();
    (arch, weights, tensors)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

fn check_case(case: &str) {
    // One thread fixes the order of every float32 sum. With the default thread count, a run
    // on a busy machine once moved the logits of the single-node case by 5e-5.
    tch::set_num_threads(1);
    let (arch, weights, tensors) = fixture(case);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = LanguageModel::new(&vs.root(), &arch).expect("fixture model");
    vs.load(&weights).expect("the fixture holds every model tensor");

    let out = tch::no_grad(|| model.forward(&tensors["input.tokens"], &tensors["input.state"], false));

    let logits_diff = max_abs_diff(&out.logits, &tensors["expected.logits"]);
    assert!(
        logits_diff < F32_TOLERANCE,
        "{case}: logits differ from PyTorch by {logits_diff:e}"
    );
    let state_diff = max_abs_diff(&out.state, &tensors["expected.state"]);
    assert!(
        state_diff < F32_TOLERANCE,
        "{case}: final state differs from PyTorch by {state_diff:e}"
    );
}

#[test]
fn tied_cell_with_every_activation_matches_pytorch() {
    check_case("tied");
}

#[test]
fn untied_chain_matches_pytorch() {
    check_case("untied");
}

#[test]
fn single_node_cell_matches_pytorch() {
    check_case("single");
}

#[test]
fn variables_use_pytorch_state_dict_names() {
    let (arch, _, tensors) = fixture("untied");
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = LanguageModel::new(&vs.root(), &arch).expect("fixture model");
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    let mut expected: Vec<String> = tensors
        .keys()
        .filter(|k| !k.starts_with("input.") && !k.starts_with("expected."))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn perturbed_weight_breaks_parity() {
    // Guards the parity check itself: a small change to one node matrix must show.
    let (arch, weights, tensors) = fixture("tied");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = LanguageModel::new(&vs.root(), &arch).expect("fixture model");
    vs.load(&weights).expect("fixture weights");
    tch::no_grad(|| {
        let mut vars = vs.variables();
        let w = vars.get_mut("cell.node3.w").expect("node 3 exists");
        let _ = w.g_add_scalar_(1e-2);
    });
    let out = tch::no_grad(|| model.forward(&tensors["input.tokens"], &tensors["input.state"], false));
    let diff = max_abs_diff(&out.logits, &tensors["expected.logits"]);
    assert!(diff > F32_TOLERANCE, "a perturbed weight went unnoticed ({diff:e})");
}
