//! Accuracy, keystroke savings and latency over a replayed transcript.

use super::ReplayedUtterance;

/// Per-word latency figures in milliseconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// The per-word budget the figures are compared with.
    pub budget_ms: f64,
    /// Words whose prediction took longer than the budget.
    pub over_budget: usize,
    /// Words, in a timed transcript, whose prediction took longer than the time to the next
    /// word's start; `None` for an untimed transcript.
    pub late_for_next_word: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub utterances: usize,
    /// Model tokens fed, one per word except for split contractions and numbers.
    pub tokens: usize,
    /// Tokens not in the vocabulary, fed as `<unk>` and counted as misses.
    pub unknown: usize,
    pub top1_accuracy: f64,
    pub top3_accuracy: f64,
    pub top5_accuracy: f64,
    /// Share of keystrokes saved by accepting a correct prediction among the top-k shown,
    /// typing letters of the word until it is shown.
    pub keystroke_savings: f64,
    /// The number of predictions shown, which the keystroke savings depend on.
    pub top_k: usize,
    pub latency: LatencySummary,
}

impl Summary {
    /// Computes the figures of a replay against a budget of `budget_ms` per word.
    pub fn new(replay: &[ReplayedUtterance], top_k: usize, budget_ms: f64) -> Summary {
        let steps: Vec<_> = replay.iter().flat_map(|u| &u.steps).collect();
        let tokens = steps.len();
        let share = |count: usize| if tokens == 0 { 0.0 } else { count as f64 / tokens as f64 };
        let within = |k: usize| steps.iter().filter(|s| s.step.rank.is_some_and(|r| r <= k)).count();
        let typed: usize = steps.iter().map(|s| s.step.keystrokes).sum();
        let without: usize = steps.iter().map(|s| s.step.keystrokes_without).sum();
        let mut ms: Vec<f64> = steps.iter().map(|s| s.step.elapsed.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let timed = steps.iter().any(|s| s.time_to_next_word_s.is_some());
        let late = steps
            .iter()
            .filter(|s| {
                s.time_to_next_word_s
                    .is_some_and(|gap| s.step.elapsed.as_secs_f64() > gap)
            })
            .count();
        Summary {
            utterances: replay.len(),
            tokens,
            unknown: steps.iter().filter(|s| !s.step.known).count(),
            top1_accuracy: share(within(1)),
            top3_accuracy: share(within(3)),
            top5_accuracy: share(within(5)),
            keystroke_savings: if without == 0 { 0.0 } else { 1.0 - typed as f64 / without as f64 },
            top_k,
            latency: LatencySummary {
                median_ms: percentile(&ms, 0.5),
                p99_ms: percentile(&ms, 0.99),
                max_ms: ms.last().copied().unwrap_or(0.0),
                mean_ms: if ms.is_empty() { 0.0 } else { ms.iter().sum::<f64>() / ms.len() as f64 },
                budget_ms,
                over_budget: ms.iter().filter(|&&t| t > budget_ms).count(),
                late_for_next_word: timed.then_some(late),
            },
        }
    }
}

/// Returns the `q` quantile of sorted values by the nearest-rank method.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
