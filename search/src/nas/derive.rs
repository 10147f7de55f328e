//! Deriving the result of a search: sample architectures, evaluate them with the shared
//! weights, choose the best one that meets every budget, and write `arch.json`, `pareto.json`
//! and `report.md`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Instant;

use edgenas_core::{estimate, Arch, CostReport};
use serde::Serialize;

use super::config::Strategy;
use super::controller::{Controller, Pick};
use super::pareto::front_mask;
use super::rng::Rng;
use super::search::{SearchError, SearchInput, SearchReporter, SearchState};
use super::shared::SharedModel;
use crate::batch::Batched;
use crate::checkpoint::{CheckpointError, RunDir, ARCH_FILE};
use crate::train::{window_tensors, Nll};

pub const PARETO_FILE: &str = "pareto.json";
pub const REPORT_FILE: &str = "report.md";

/// An architecture evaluated after the search.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub summary: String,
    /// `greedy` (the controller's most likely choices), `sampled` or `uniform` (random search).
    pub source: &'static str,
    pub valid_perplexity: f64,
    pub within_budget: bool,
    /// No other candidate is at least as good in perplexity and every cost and better in one.
    pub on_front: bool,
    pub chosen: bool,
    pub arch: Arch,
    pub costs: CostReport,
}

/// The outcome of a search.
#[derive(Clone, Debug, Serialize)]
pub struct Derived {
    pub profile: String,
    pub strategy: &'static str,
    pub reward: &'static str,
    pub epochs: usize,
    pub seed: u64,
    /// Seconds of the search epochs, over every resumed part.
    pub search_seconds: f64,
    pub derive_seconds: f64,
    /// Validation tokens each candidate was evaluated on.
    pub evaluation_tokens: usize,
    /// Index of the chosen candidate; absent when none meets every budget.
    pub chosen: Option<usize>,
    /// Reason nothing was chosen: the budget no candidate met and by how much.
    pub no_fit: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl Derived {
    pub fn chosen(&self) -> Option<&Candidate> {
        self.chosen.map(|i| &self.candidates[i])
    }
}

/// Objectives of the front, all minimised: perplexity, then every cost.
fn front_point(c: &Candidate) -> Vec<f64> {
    vec![
        c.valid_perplexity,
        c.costs.parameters as f64,
        c.costs.model_bytes as f64,
        c.costs.ram_bytes as f64,
        c.costs.macs_per_word as f64,
        c.costs.energy_uj_per_word,
        c.costs.latency_ms_per_word,
    ]
}

/// Proposes up to `derive_samples` distinct architectures: for ENAS the greedy one first,
/// then samples from the controller; for random search, uniform samples.
fn propose(controller: &Controller, input: &SearchInput) -> Vec<(Arch, &'static str)> {
    let config = input.config;
    let mut rng = Rng::new(config.seed ^ 0xde71_7e00_0000_0001);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    if config.strategy == Strategy::Enas {
        let greedy = tch::no_grad(|| controller.sample(Pick::Greedy).arch);
        seen.insert(greedy.summary());
        out.push((greedy, "greedy"));
    }
    let target = match config.space.size() < config.derive_samples as f64 {
        true => {
            tracing::warn!(
                "the search space has only {} cells, fewer than --derive-samples {}",
                config.space.size(),
                config.derive_samples
            );
            config.space.size() as usize
        }
        false => config.derive_samples,
    };
    let mut attempts = 0;
    while out.len() < target && attempts < 50 * target {
        attempts += 1;
        let (arch, source) = match config.strategy {
            Strategy::Enas => (tch::no_grad(|| controller.sample(Pick::Sample(&mut rng)).arch), "sampled"),
            Strategy::Random => (config.space.sample_uniform(&mut rng), "uniform"),
        };
        if seen.insert(arch.summary()) {
            out.push((arch, source));
        }
    }
    out
}

/// Perplexity of `arch` with the shared weights on the first `windows` validation windows,
/// the state carried across them. Returns it with the tokens it covered.
fn evaluate(shared: &SharedModel, arch: &Arch, batches: &Batched, bptt: usize, windows: usize) -> (f64, usize) {
    let all = batches.windows(bptt).expect("checked at start");
    let model = shared.model(arch);
    let vocab = arch.vocab_size as i64;
    let mut nll = Nll::default();
    tch::no_grad(|| {
        let mut state = model.zero_state(batches.batch_size() as i64);
        for window in all.iter().take(windows) {
            let (input, target) = window_tensors(&window);
            let out = model.forward(&input, &state, false);
            let loss = out.logits.view([-1, vocab]).cross_entropy_for_logits(&target.view([-1]));
            nll.sum += loss.double_value(&[]) * target.numel() as f64;
            nll.tokens += target.numel();
            state = out.state;
        }
    });
    (nll.perplexity(), nll.tokens)
}

pub fn derive(
    shared: &SharedModel,
    controller: &Controller,
    input: &SearchInput,
    batches: &Batched,
    state: &SearchState,
    reporter: &mut dyn SearchReporter,
) -> Derived {
    let config = input.config;
    let started = Instant::now();
    let available = batches.windows(config.shared.bptt).expect("checked at start").num_windows();
    if config.derive_windows > available {
        tracing::warn!(
            "the validation split has {available} windows at --derive-batch-size {} and --bptt {}, \
             fewer than --derive-windows {}; evaluating on all {available}",
            config.derive_batch_size,
            config.shared.bptt,
            config.derive_windows
        );
    }
    let proposals = propose(controller, input);
    reporter.derive_started(proposals.len());
    let mut tokens = 0;
    let mut candidates: Vec<Candidate> = proposals
        .into_iter()
        .map(|(arch, source)| {
            let (ppl, covered) = evaluate(shared, &arch, batches, config.shared.bptt, config.derive_windows);
            tokens = covered;
            let costs = estimate(&arch, input.profile);
            let within_budget = costs.all_met();
            reporter.candidate_done(&arch.summary(), ppl, within_budget);
            Candidate {
                summary: arch.summary(),
                source,
                valid_perplexity: ppl,
                within_budget,
                on_front: false,
                chosen: false,
                arch,
                costs,
            }
        })
        .collect();

    let points: Vec<Vec<f64>> = candidates.iter().map(front_point).collect();
    for (c, on) in candidates.iter_mut().zip(front_mask(&points)) {
        c.on_front = on;
    }
    let chosen = choose(&candidates);
    if let Some(i) = chosen {
        candidates[i].chosen = true;
    }
    let no_fit = chosen.is_none().then(|| explain_no_fit(&candidates));
    Derived {
        profile: input.profile.name.clone(),
        strategy: config.strategy.name(),
        reward: config.reward.mode.name(),
        epochs: state.epochs_done,
        seed: config.seed,
        search_seconds: state.history.iter().map(|r| r.seconds).sum(),
        derive_seconds: started.elapsed().as_secs_f64(),
        evaluation_tokens: tokens,
        chosen,
        no_fit,
        candidates,
    }
}

/// Returns the candidate with the lowest perplexity among those within every budget. Ties go to
/// fewer parameters, then to the earlier candidate.
pub fn choose(candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.within_budget)
        .min_by(|(_, a), (_, b)| {
            a.valid_perplexity
                .total_cmp(&b.valid_perplexity)
                .then(a.costs.parameters.cmp(&b.costs.parameters))
        })
        .map(|(i, _)| i)
}

/// Says which budget no candidate met and by how much, or, when each budget was met by some
/// candidate but none met all, which candidate came closest.
pub fn explain_no_fit(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "no architecture was evaluated".into();
    }
    let mut missed = Vec::new();
    for (k, check) in candidates[0].costs.checks.iter().enumerate() {
        let best = candidates
            .iter()
            .map(|c| c.costs.checks[k].value)
            .fold(f64::INFINITY, f64::min);
        if best > check.budget {
            missed.push(format!(
                "no sampled architecture met the {} budget: the lowest was {} against {} ({:.1}% over)",
                check.name,
                format_value(best, check.unit),
                format_value(check.budget, check.unit),
                (best / check.budget - 1.0) * 100.0
            ));
        }
    }
    if !missed.is_empty() {
        return missed.join("; ");
    }
    let worst_ratio = |c: &Candidate| c.costs.checks.iter().map(|k| k.value / k.budget).fold(0.0, f64::max);
    let closest = candidates
        .iter()
        .min_by(|a, b| worst_ratio(a).total_cmp(&worst_ratio(b)))
        .expect("not empty");
    let over: Vec<String> = closest
        .costs
        .checks
        .iter()
        .filter(|k| !k.met)
        .map(|k| format!("{} {:.1}% over", k.name, (k.value / k.budget - 1.0) * 100.0))
        .collect();
    format!(
        "every budget was met by some architecture, but none met all of them at once; the \
         closest, {}, has {}",
        closest.summary,
        over.join(", ")
    )
}

/// Formats a cost or budget for reports: counts and bytes as integers, the rest to three
/// decimals, with the unit.
pub fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "" => format!("{value:.0}"),
        "bytes" => format!("{value:.0} bytes"),
        _ => format!("{value:.3} {unit}"),
    }
}

/// Writes `pareto.json`, `report.md` and, when an architecture was chosen, `arch.json`. A
/// stale `arch.json` from an earlier derive is removed when nothing fits now.
pub fn write_outputs(dir: &RunDir, input: &SearchInput, state: &SearchState, derived: &Derived) -> Result<(), SearchError> {
    dir.write_json(PARETO_FILE, derived)?;
    match derived.chosen() {
        Some(c) => c.arch.save(&dir.file(ARCH_FILE)).map_err(CheckpointError::from)?,
        None => {
            let _ = std::fs::remove_file(dir.file(ARCH_FILE));
        }
    }
    let path = dir.file(REPORT_FILE);
    edgenas_core::write_atomic(&path, report(input, state, derived).as_bytes())
        .map_err(|source| CheckpointError::Write { path, source })?;
    Ok(())
}

/// Renders the readable report: the choice and its costs against the budgets, the front, and
/// the search's progress.
pub fn report(input: &SearchInput, state: &SearchState, d: &Derived) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Search report\n");
    let _ = writeln!(
        s,
        "Profile `{}` ({}), strategy `{}`, reward `{}`, {} epochs, seed {}. Search {:.1} min, \
         derive {:.1} min. Each of the {} candidates was evaluated with the shared weights on \
         {} validation tokens.\n",
        d.profile,
        input.profile.deploy.dtype.name(),
        d.strategy,
        d.reward,
        d.epochs,
        d.seed,
        d.search_seconds / 60.0,
        d.derive_seconds / 60.0,
        d.candidates.len(),
        d.evaluation_tokens
    );

    let _ = writeln!(s, "## Choice\n");
    match d.chosen() {
        Some(c) => {
            let _ = writeln!(
                s,
                "`{}` ({} parameters), validation perplexity {:.2} with the shared weights. \
                 Train it from scratch with `edgenas train --corpus DIR --arch {} --out DIR`, \
                 or search with `--then-train`.\n",
                c.summary,
                c.costs.parameters,
                c.valid_perplexity,
                input.out.join(ARCH_FILE).display()
            );
            let _ = writeln!(s, "| cost | value | budget | met |\n|---|---:|---:|---|");
            for k in &c.costs.checks {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    k.name,
                    format_value(k.value, k.unit),
                    format_value(k.budget, k.unit),
                    if k.met { "yes" } else { "**no**" }
                );
            }
            let _ = writeln!(s, "| MACs per word | {} | | |", c.costs.macs_per_word);
            if !c.costs.checks.iter().any(|k| k.name == "energy") {
                let _ = writeln!(s, "| energy | {:.3} uJ/word | | |", c.costs.energy_uj_per_word);
            }
            let _ = writeln!(s);
        }
        None => {
            let _ = writeln!(
                s,
                "No candidate meets every budget: {}.\n",
                d.no_fit.as_deref().unwrap_or("no reason recorded")
            );
        }
    }

    let within = d.candidates.iter().filter(|c| c.within_budget).count();
    let _ = writeln!(s, "## Pareto front\n");
    let on_front = d.candidates.iter().filter(|c| c.on_front).count();
    let _ = writeln!(
        s,
        "{} of {} candidates meet every budget; {} on the front of perplexity against \
         every cost. `pareto.json` lists all of them.\n",
        within,
        d.candidates.len(),
        if on_front == 1 { "1 is".to_string() } else { format!("{on_front} are") }
    );
    let _ = writeln!(
        s,
        "| architecture | valid ppl | parameters | model bytes | RAM bytes | MACs/word | uJ/word | ms/word | within budget |\n|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );

    let mut front: Vec<&Candidate> = d.candidates.iter().filter(|c| c.on_front).collect();
    front.sort_by(|a, b| a.valid_perplexity.total_cmp(&b.valid_perplexity));
    for c in front {
        let _ = writeln!(
            s,
            "| `{}`{} | {:.2} | {} | {} | {} | {} | {:.3} | {:.3} | {} |",
            c.summary,
            if c.chosen { " (chosen)" } else { "" },
            c.valid_perplexity,
            c.costs.parameters,
            c.costs.model_bytes,
            c.costs.ram_bytes,
            c.costs.macs_per_word,
            c.costs.energy_uj_per_word,
            c.costs.latency_ms_per_word,
            if c.within_budget { "yes" } else { "no" }
        );
    }

    let _ = writeln!(s, "\n## Search progress\n");
    let _ = writeln!(
        s,
        "| epoch | shared train ppl | sampled valid ppl (geometric mean) | mean reward | within budget | seconds |\n|---:|---:|---:|---:|---:|---:|"
    );
    for r in &state.history {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {:.0}% | {:.0} |",
            r.epoch,
            r.shared_train_perplexity,
            r.sampled_valid_perplexity.map_or("-".into(), |p| format!("{p:.2}")),
            r.mean_reward.map_or("-".into(), |m| format!("{m:.4}")),
            r.within_budget * 100.0,
            r.seconds
        );
    }
    s
}
