//! The architecture search: controller sampling, REINFORCE, rewards, Pareto fronts and
//! hypervolume, and whole seeded searches (reproducible, resumable, within budget).

use std::path::Path;
use std::sync::Mutex;

use edgenas_core::cost::BudgetCheck;
use edgenas_core::profile::Profile;
use edgenas_core::{Activation, Dropout};
use edgenas_search::corpus::Corpus;
use edgenas_search::nas::config::{Preset, SearchConfig, Strategy};
use edgenas_search::nas::controller::{Controller, ControllerConfig, Pick};
use edgenas_search::nas::pareto::{front_mask, hypervolume, hypervolume_gain};
use edgenas_search::nas::reward::{hard_reward, hypervolume_reward, soft_reward, RewardConfig, RewardMode};
use edgenas_search::nas::rng::Rng;
use edgenas_search::nas::search::{search_run, SearchError, SearchInput, Silent};
use edgenas_search::nas::space::SearchSpace;

/// Searches draw dropout masks and initial weights from libtorch's process-wide generator, so
/// tests that must be reproducible hold this lock.
static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const DROPOUT: Dropout = Dropout {
    embedding: 0.0,
    input: 0.1,
    hidden: 0.1,
    output: 0.1,
};

fn space(hidden: &[usize], min_nodes: usize, max_nodes: usize) -> SearchSpace {
    SearchSpace::new(50, hidden.to_vec(), min_nodes, max_nodes, DROPOUT).unwrap()
}

// ---------------------------------------------------------------- controller

#[test]
fn controller_samples_are_valid_cells_within_the_space() {
    let _guard = lock();
    for (hidden, min, max) in [(&[8usize][..], 1, 1), (&[16, 8, 32][..], 1, 6), (&[4, 12][..], 3, 12)] {
        let space = space(hidden, min, max);
        tch::manual_seed(3);
        let controller = Controller::new(&space, &ControllerConfig::default());
        let mut rng = Rng::new(11);
        let mut node_counts = std::collections::BTreeSet::new();
        let mut sizes = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let arch = tch::no_grad(|| controller.sample(Pick::Sample(&mut rng)).arch);
            arch.validate().unwrap();
            assert!(space.contains(&arch), "{} is outside the space", arch.summary());
            for (i, node) in arch.nodes.iter().enumerate().skip(1) {
                assert!(node.input.unwrap() < i, "node {i} reads a later node in {}", arch.summary());
            }
            node_counts.insert(arch.num_nodes());
            sizes.insert(arch.hidden_size);
        }
        // An untrained controller explores the whole range.
        assert_eq!(node_counts.len(), max - min + 1, "node counts seen: {node_counts:?}");
        assert_eq!(sizes.len(), hidden.len(), "hidden sizes seen: {sizes:?}");
        let greedy = tch::no_grad(|| controller.sample(Pick::Greedy).arch);
        assert!(space.contains(&greedy));
    }
}

#[test]
fn uniform_samples_are_valid_and_cover_the_space() {
    let space = space(&[8, 16], 2, 4);
    let mut rng = Rng::new(5);
    let mut inputs_of_node3 = [0usize; 3];
    for _ in 0..2000 {
        let arch = space.sample_uniform(&mut rng);
        assert!(space.contains(&arch));
        if arch.num_nodes() == 4 {
            inputs_of_node3[arch.nodes[3].input.unwrap()] += 1;
        }
    }
    assert!(inputs_of_node3.iter().all(|&n| n > 100), "inputs of node 3: {inputs_of_node3:?}");
}

#[test]
fn space_counts_its_cells() {
    // One hidden size, one node: 4 cells; two nodes: 4 * (1 * 4) = 16 more.
    assert_eq!(space(&[8], 1, 1).size(), 4.0);
    assert_eq!(space(&[8], 1, 2).size(), 20.0);
    assert_eq!(space(&[8, 16], 1, 2).size(), 40.0);
}

#[test]
fn bad_spaces_are_rejected_with_the_value() {
    let err = |hidden: Vec<usize>, min, max| SearchSpace::new(50, hidden, min, max, DROPOUT).unwrap_err().to_string();
    assert!(err(vec![], 1, 2).contains("--hidden-sizes is empty"));
    assert!(err(vec![8, 0], 1, 2).contains("at least 1"));
    assert!(err(vec![8, 8], 1, 2).contains("lists 8 twice"));
    assert!(err(vec![8], 0, 2).contains("--min-nodes is 0"));
    assert!(err(vec![8], 3, 2).contains("--min-nodes 3 is above --max-nodes 2"));
}

#[test]
fn reinforce_learns_to_prefer_the_rewarded_activation() {
    let _guard = lock();
    let space = space(&[8], 4, 4);
    tch::manual_seed(1);
    let config = ControllerConfig {
        lr: 0.01,
        ..ControllerConfig::default()
    };
    let mut controller = Controller::new(&space, &config);
    let mut rng = Rng::new(2);
    let before = controller.activation_frequencies(&mut Rng::new(9), 200);
    let mut baseline: Option<f64> = None;
    for _ in 0..300 {
        let sampled = controller.sample(Pick::Sample(&mut rng));
        let relu = sampled.arch.nodes.iter().filter(|n| n.activation == Activation::Relu).count();
        let reward = relu as f64 / sampled.arch.num_nodes() as f64;
        let b = baseline.unwrap_or(reward);
        controller.reinforce(&sampled, reward - b);
        baseline = Some(0.9 * b + 0.1 * reward);
    }
    let after = controller.activation_frequencies(&mut Rng::new(9), 200);
    let relu = 1; // Activation::ALL is [tanh, relu, identity, sigmoid]
    assert_eq!(Activation::ALL[relu], Activation::Relu);
    assert!((0.15..0.4).contains(&before[relu]), "untrained relu share {before:?}");
    assert!(after[relu] > 0.8, "relu share after training: {after:?} (before {before:?})");
}

#[test]
fn controller_checkpoint_round_trips_weights_and_adam_moments() {
    let _guard = lock();
    let space = space(&[8, 16], 1, 3);
    tch::manual_seed(4);
    let mut a = Controller::new(&space, &ControllerConfig::default());
    let mut rng = Rng::new(1);
    for _ in 0..5 {
        let s = a.sample(Pick::Sample(&mut rng));
        a.reinforce(&s, 0.5);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.safetensors");
    a.save(&path).unwrap();
    tch::manual_seed(99);
    let mut b = Controller::new(&space, &ControllerConfig::default());
    b.load(&path).unwrap();
    // The same update on both gives the same policy afterwards only if Adam's state matched.
    let (mut ra, mut rb) = (Rng::new(7), Rng::new(7));
    let sa = a.sample(Pick::Sample(&mut ra));
    let sb = b.sample(Pick::Sample(&mut rb));
    assert_eq!(sa.arch, sb.arch);
    a.reinforce(&sa, 1.0);
    b.reinforce(&sb, 1.0);
    let fa = a.activation_frequencies(&mut Rng::new(3), 50);
    let fb = b.activation_frequencies(&mut Rng::new(3), 50);
    assert_eq!(fa, fb);
    let lp = |c: &Controller| c.sample(Pick::Greedy).log_prob.double_value(&[]);
    assert_eq!(lp(&a), lp(&b));

    let other = space_with_more_nodes();
    let mut c = Controller::new(&other, &ControllerConfig::default());
    let err = c.load(&path).unwrap_err();
    assert!(err.contains("head.num_nodes") || err.contains("embedding"), "{err}");
}

fn space_with_more_nodes() -> SearchSpace {
    space(&[8, 16], 1, 5)
}

// ---------------------------------------------------------------- rewards

fn check(name: &'static str, value: f64, budget: f64) -> BudgetCheck {
    BudgetCheck {
        name,
        value,
        budget,
        unit: "",
        met: value <= budget,
    }
}

#[test]
fn hard_reward_hand_computed() {
    let mut config = RewardConfig::new(RewardMode::Hard, 10_000);
    config.min_reward = -1.0;
    let fits = [check("parameters", 1e6, 2e6), check("latency", 40.0, 40.0)];
    let over = [check("parameters", 3e6, 2e6), check("latency", 10.0, 40.0)];
    assert!((hard_reward(100.0, &fits, &config) - 0.8).abs() < 1e-12);
    assert_eq!(hard_reward(100.0, &over, &config), -1.0);
}

#[test]
fn soft_reward_hand_computed() {
    let mut config = RewardConfig::new(RewardMode::Soft, 10_000);
    // parameters 2x over budget, latency at a quarter of its budget.
    let checks = [check("parameters", 2e6, 1e6), check("latency", 10.0, 40.0)];
    // 0.8 * 2^-0.07 * 0.25^-0.07 = 0.8 * 0.952638 * 1.101905
    assert!((soft_reward(100.0, &checks, &config) - 0.839_774).abs() < 1e-6);
    config.soft_zero_within_budget = true;
    // Latency is within budget, so only 0.8 * 2^-0.07 remains.
    assert!((soft_reward(100.0, &checks, &config) - 0.762_110).abs() < 1e-6);
    config.soft_zero_within_budget = false;
    config.soft_weights.insert("latency".into(), -1.0);
    // 0.8 * 0.952638 * 0.25^-1 = 3.048442
    assert!((soft_reward(100.0, &checks, &config) - 3.048_442).abs() < 1e-6);
    config.soft_weights.insert("model_size".into(), -5.0);
    let spaced = [check("model size", 2.0, 1.0)];
    // 0.8 * 2^-5 = 0.025
    assert!((soft_reward(100.0, &spaced, &config) - 0.025).abs() < 1e-12);
}

#[test]
fn hypervolume_reward_hand_computed() {
    let mut config = RewardConfig::new(RewardMode::Hypervolume, 10_000);
    config.reference_perplexity = 1000.0;
    let fits = [check("parameters", 0.5e6, 1e6)];
    // Empty archive: the box from (0.5, 0.5) to (1, 1).
    assert!((hypervolume_reward(500.0, &fits, &[], &config) - 0.25).abs() < 1e-12);
    // Archive point (0.25, 0.75): area 0.1875 before, 0.3125 after.
    let archive = vec![vec![0.25, 0.75]];
    assert!((hypervolume_reward(500.0, &fits, &archive, &config) - 0.125).abs() < 1e-12);
    // Over budget (1.2 of the parameter budget): outside the box, no gain.
    let over = [check("parameters", 1.2e6, 1e6)];
    assert_eq!(hypervolume_reward(500.0, &over, &archive, &config), 0.0);
    // Dominated by the archive: no gain.
    let dominated = [check("parameters", 0.8e6, 1e6)];
    assert_eq!(hypervolume_reward(300.0, &dominated, &archive, &config), 0.0);
}

// ---------------------------------------------------------------- Pareto front, hypervolume

fn pts(list: &[&[f64]]) -> Vec<Vec<f64>> {
    list.iter().map(|p| p.to_vec()).collect()
}

type FrontCase = (&'static str, Vec<Vec<f64>>, Vec<bool>);
type VolumeCase<'a> = (&'static str, Vec<Vec<f64>>, &'a [f64], f64);

#[test]
fn pareto_front_table() {
    let cases: &[FrontCase] = &[
        ("empty", vec![], vec![]),
        ("one point", pts(&[&[1.0, 1.0]]), vec![true]),
        ("staircase", pts(&[&[1.0, 3.0], &[2.0, 2.0], &[3.0, 1.0]]), vec![true, true, true]),
        ("dominated", pts(&[&[1.0, 1.0], &[2.0, 2.0]]), vec![true, false]),
        ("duplicates both stay", pts(&[&[2.0, 2.0], &[2.0, 2.0], &[3.0, 3.0]]), vec![true, true, false]),
        ("tie in one objective", pts(&[&[1.0, 2.0], &[1.0, 3.0]]), vec![true, false]),
        (
            "three objectives",
            pts(&[&[1.0, 5.0, 5.0], &[5.0, 1.0, 5.0], &[5.0, 5.0, 1.0], &[5.0, 5.0, 5.0]]),
            vec![true, true, true, false],
        ),
    ];
    for (name, points, expected) in cases {
        assert_eq!(&front_mask(points), expected, "{name}");
    }
}

#[test]
fn hypervolume_table() {
    let r2 = [4.0, 4.0];
    let r3 = [1.0, 1.0, 1.0];
    let cases: &[VolumeCase] = &[
        ("empty", vec![], &r2, 0.0),
        ("one box", pts(&[&[1.0, 1.0]]), &r2, 9.0),
        ("staircase", pts(&[&[1.0, 3.0], &[2.0, 2.0], &[3.0, 1.0]]), &r2, 6.0),
        ("with a duplicate", pts(&[&[1.0, 3.0], &[2.0, 2.0], &[2.0, 2.0], &[3.0, 1.0]]), &r2, 6.0),
        ("with a dominated point", pts(&[&[1.0, 3.0], &[2.0, 2.0], &[3.0, 3.0], &[3.0, 1.0]]), &r2, 6.0),
        ("tie in one objective", pts(&[&[1.0, 2.0], &[1.0, 3.0]]), &r2, 6.0),
        ("outside the box", pts(&[&[5.0, 0.0], &[4.0, 0.0], &[2.0, 2.0]]), &r2, 4.0),
        ("unit cube", pts(&[&[0.0, 0.0, 0.0]]), &r3, 1.0),
        ("two boxes in 3-D", pts(&[&[0.0, 0.0, 0.5], &[0.5, 0.5, 0.0]]), &r3, 0.625),
        (
            "three slabs in 3-D",
            pts(&[&[0.5, 0.0, 0.0], &[0.0, 0.5, 0.0], &[0.0, 0.0, 0.5]]),
            &r3,
            0.875,
        ),
    ];
    for (name, points, reference, expected) in cases {
        let hv = hypervolume(points, reference);
        assert!((hv - expected).abs() < 1e-12, "{name}: {hv} != {expected}");
    }
    let gain = hypervolume_gain(&pts(&[&[1.0, 3.0], &[3.0, 1.0]]), &[2.0, 2.0], &r2);
    assert!((gain - 1.0).abs() < 1e-12, "gain {gain}");
    assert_eq!(hypervolume_gain(&pts(&[&[1.0, 1.0]]), &[2.0, 2.0], &r2), 0.0);
}

// ---------------------------------------------------------------- whole searches

/// Writes a small corpus whose next word depends on the previous ones.
fn write_corpus(dir: &Path) {
    let words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "fast"];
    let mut lines = Vec::new();
    for i in 0..300usize {
        let a = words[i % 10];
        let b = words[(i * 7 + 3) % 10];
        let c = words[(i * 3 + 1) % 10];
        lines.push(format!("{a} {b} {c} {b} {a}"));
    }
    std::fs::write(dir.join("train.txt"), lines.join("\n")).unwrap();
    std::fs::write(dir.join("valid.txt"), lines[..80].join("\n")).unwrap();
    std::fs::write(dir.join("test.txt"), lines[80..140].join("\n")).unwrap();
}

fn pi4_profile_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/raspberry-pi-4.toml")).unwrap()
}

/// Returns the Pi 4 profile with a parameter budget of `max_parameters`.
fn profile_with_parameter_budget(max_parameters: u64) -> String {
    pi4_profile_text().replace("max_parameters = 3000000", &format!("max_parameters = {max_parameters}"))
}

fn tiny_config(vocab_size: usize, strategy: Strategy, mode: RewardMode, epochs: usize) -> SearchConfig {
    let mut c = SearchConfig::preset(Preset::Quick, vocab_size, strategy, mode);
    c.space = SearchSpace::new(vocab_size, vec![8, 16], 1, 3, DROPOUT).unwrap();
    c.epochs = epochs;
    c.shared.batch_size = 4;
    c.shared.bptt = 5;
    c.shared.steps_per_epoch = 8;
    c.controller_steps_per_epoch = 6;
    c.reward_batch_size = 4;
    c.derive_samples = 6;
    c.derive_batch_size = 4;
    c.derive_windows = 3;
    c
}

struct Setup {
    _guard: std::sync::MutexGuard<'static, ()>,
    _data: tempfile::TempDir,
    corpus: Corpus,
}

fn setup() -> Setup {
    let guard = lock();
    tch::set_num_threads(1);
    let data = tempfile::tempdir().unwrap();
    write_corpus(data.path());
    let corpus = Corpus::load(data.path(), None).unwrap();
    Setup {
        _guard: guard,
        _data: data,
        corpus,
    }
}

fn run(s: &Setup, profile_text: &str, config: &SearchConfig, out: &Path, resume: bool) -> Result<edgenas_search::nas::derive::Derived, SearchError> {
    let profile = Profile::parse(profile_text, "test profile").unwrap();
    let input = SearchInput {
        corpus: &s.corpus,
        profile: &profile,
        profile_text,
        config,
        out,
        resume,
    };
    search_run(&input, &mut Silent)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Returns the parts of `pareto.json` that do not depend on timing.
fn candidates(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&read(&dir.join("pareto.json"))).unwrap();
    serde_json::json!({ "chosen": v["chosen"], "candidates": v["candidates"] })
}

#[test]
fn seeded_search_gives_the_same_architecture_twice() {
    let s = setup();
    let config = tiny_config(s.corpus.vocab.len(), Strategy::Enas, RewardMode::Hard, 2);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let da = run(&s, &pi4_profile_text(), &config, a.path(), false).unwrap();
    run(&s, &pi4_profile_text(), &config, b.path(), false).unwrap();
    assert!(da.chosen.is_some());
    assert_eq!(read(&a.path().join("arch.json")), read(&b.path().join("arch.json")));
    assert_eq!(candidates(a.path()), candidates(b.path()));
    let state = |d: &Path| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(&read(&d.join("search-state.json"))).unwrap();
        for r in v["history"].as_array_mut().unwrap() {
            r["seconds"] = 0.into();
            r["words_per_second"] = 0.into();
        }
        v
    };
    assert_eq!(state(a.path()), state(b.path()));

    let mut other = config.clone();
    other.seed = 2;
    let c = tempfile::tempdir().unwrap();
    run(&s, &pi4_profile_text(), &other, c.path(), false).unwrap();
    assert_ne!(candidates(a.path()), candidates(c.path()), "another seed samples other cells");
    for file in ["report.md", "search-config.json", "profile.toml", "vocab.txt", "corpus.json"] {
        assert!(a.path().join(file).is_file(), "{file} missing");
    }
}

#[test]
fn resumed_search_matches_an_uninterrupted_one() {
    let s = setup();
    for strategy in [Strategy::Enas, Strategy::Random] {
        let whole_config = tiny_config(s.corpus.vocab.len(), strategy, RewardMode::Hypervolume, 3);
        let whole = tempfile::tempdir().unwrap();
        run(&s, &pi4_profile_text(), &whole_config, whole.path(), false).unwrap();

        let parts = tempfile::tempdir().unwrap();
        for epochs in 1..=3 {
            let config = SearchConfig {
                epochs,
                ..whole_config.clone()
            };
            run(&s, &pi4_profile_text(), &config, parts.path(), epochs > 1).unwrap();
        }
        assert_eq!(candidates(whole.path()), candidates(parts.path()), "{strategy:?}");
        assert_eq!(read(&whole.path().join("arch.json")), read(&parts.path().join("arch.json")));
        let files: Vec<String> = std::fs::read_dir(parts.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".safetensors"))
            .collect();
        let expected = if strategy == Strategy::Enas { 2 } else { 1 };
        assert_eq!(files.len(), expected, "only the last epoch's weights stay: {files:?}");
    }
}

#[test]
fn resume_with_other_settings_or_profile_is_rejected() {
    let s = setup();
    let config = tiny_config(s.corpus.vocab.len(), Strategy::Enas, RewardMode::Hard, 2);
    let dir = tempfile::tempdir().unwrap();
    run(&s, &pi4_profile_text(), &config, dir.path(), false).unwrap();
    let before = candidates(dir.path());

    let mut other = config.clone();
    other.shared.lr = 1.0;
    let err = run(&s, &pi4_profile_text(), &other, dir.path(), true).unwrap_err().to_string();
    assert!(err.contains("shared.lr was 20.0, now 1.0"), "{err}");
    let fewer = SearchConfig {
        epochs: 1,
        ..config.clone()
    };
    let err = run(&s, &pi4_profile_text(), &fewer, dir.path(), true).unwrap_err().to_string();
    assert!(err.contains("--epochs is 1"), "{err}");
    assert!(err.contains("already done 2 epochs"), "{err}");
    let err = run(&s, &profile_with_parameter_budget(1000), &config, dir.path(), true).unwrap_err().to_string();
    assert!(err.contains("profile.toml"), "{err}");
    let err = run(&s, &pi4_profile_text(), &config, dir.path(), false).unwrap_err().to_string();
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(before, candidates(dir.path()), "a rejected run changes nothing");

    let empty = tempfile::tempdir().unwrap();
    let err = run(&s, &pi4_profile_text(), &config, empty.path(), true).unwrap_err().to_string();
    assert!(err.contains("no search to resume"), "{err}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "a failed resume writes no lock");
    std::fs::write(empty.path().join("notes.txt"), "mine").unwrap();
    let err = run(&s, &pi4_profile_text(), &config, empty.path(), false).unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(read(&empty.path().join("notes.txt")), "mine");
}

#[test]
fn choice_meets_budgets_that_steer_it() {
    let s = setup();
    let v = s.corpus.vocab.len();
    // Parameters of a cell: V*H + V + 2*H^2*(n + 1). With H=8 at most 108 + 128*4 + V*... so
    // a budget between the largest H=8 cell and the smallest H=16 cell allows only H=8.
    let largest_small = v * 8 + v + 2 * 64 * 4;
    let smallest_large = v * 16 + v + 2 * 256 * 2;
    assert!(largest_small < smallest_large);
    let budget = (largest_small + smallest_large) / 2;
    for mode in [RewardMode::Hard, RewardMode::Soft, RewardMode::Hypervolume] {
        let mut config = tiny_config(v, Strategy::Enas, mode, 2);
        config.derive_samples = 12;
        let dir = tempfile::tempdir().unwrap();
        let derived = run(&s, &profile_with_parameter_budget(budget as u64), &config, dir.path(), false).unwrap();
        let chosen = derived.chosen().expect("an H=8 cell fits");
        assert_eq!(chosen.arch.hidden_size, 8, "{mode:?}: {}", chosen.summary);
        assert!(chosen.costs.all_met());
        assert!(derived.candidates.iter().any(|c| c.arch.hidden_size == 16 && !c.within_budget));
        let report = read(&dir.path().join("report.md"));
        assert!(report.contains(&chosen.summary), "{report}");
        let arch = edgenas_core::Arch::load(&dir.path().join("arch.json")).unwrap();
        assert_eq!(arch, chosen.arch);
    }
}

#[test]
fn no_fit_names_budget_and_excess() {
    let s = setup();
    let config = tiny_config(s.corpus.vocab.len(), Strategy::Random, RewardMode::Hard, 1);
    let dir = tempfile::tempdir().unwrap();
    let derived = run(&s, &profile_with_parameter_budget(10), &config, dir.path(), false).unwrap();
    assert!(derived.chosen.is_none());
    let reason = derived.no_fit.unwrap();
    assert!(reason.contains("parameters budget"), "{reason}");
    assert!(reason.contains("against 10"), "{reason}");
    assert!(reason.contains("% over"), "{reason}");
    assert!(!dir.path().join("arch.json").exists());
    assert!(read(&dir.path().join("report.md")).contains("No candidate meets every budget"));
}
