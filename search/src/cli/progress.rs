//! Progress bars for training and search on stderr.

use std::io::IsTerminal;

use edgenas_search::nas::search::{SearchEpoch, SearchReporter, StepProgress};
use edgenas_search::train::{EpochRecord, Reporter};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows one bar per epoch with the running training perplexity and speed, and logs each
/// finished epoch. When stderr is not a terminal (a log file, CI), it logs a line every tenth
/// of an epoch instead of drawing a bar.
pub struct BarReporter {
    bar: Option<ProgressBar>,
    /// Text before every bar and log line, such as `[2/5 train] ` in the pipeline.
    stage: String,
    terminal: bool,
    windows: usize,
    done: usize,
}

impl BarReporter {
    pub fn new() -> BarReporter {
        BarReporter::with_stage("")
    }

    pub fn with_stage(stage: &str) -> BarReporter {
        BarReporter {
            bar: None,
            stage: stage.to_string(),
            terminal: std::io::stderr().is_terminal(),
            windows: 0,
            done: 0,
        }
    }
}

impl Reporter for BarReporter {
    fn epoch_started(&mut self, epoch: usize, windows: usize) {
        self.windows = windows;
        self.done = 0;
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(windows as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{}epoch {{prefix:>3}} [{{bar:30}}] {{pos}}/{{len}} windows {{msg}} (eta {{eta}})",
                self.stage
            ))
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        self.bar = Some(bar);
    }

    fn window_done(&mut self, train_perplexity: f64, words_per_second: f64) {
        self.done += 1;
        let tenth = self.windows.div_ceil(10).max(1);
        if !self.terminal && (self.done.is_multiple_of(tenth) || self.done == self.windows) {
            tracing::info!(
                "{}window {}/{}: train ppl {train_perplexity:.2}, {words_per_second:.0} words/s",
                self.stage,
                self.done,
                self.windows
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "ppl {train_perplexity:8.2} | {words_per_second:6.0} words/s"
            ));
            bar.inc(1);
        }
    }

    fn epoch_done(&mut self, record: &EpochRecord, improved: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "{}epoch {:>3}: lr {:.4}, train ppl {:.2}, valid ppl {:.2}{}, {:.0} s, {:.0} words/s",
            self.stage,
            record.epoch,
            record.lr,
            record.train_perplexity,
            record.valid_perplexity,
            if improved { " (best)" } else { "" },
            record.seconds,
            record.words_per_second
        );
    }
}

impl Drop for BarReporter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the template is valid")
        .progress_chars("=> ")
}

/// Shows one bar per phase of a search epoch (shared-model training, controller training)
/// and one for the derive phase, with the shared model's perplexity, the controller's mean
/// reward and the share of sampled architectures within budget. Without a terminal it logs a
/// line every tenth of a phase.
pub struct SearchBar {
    bar: Option<ProgressBar>,
    /// Text before every bar and log line, such as `[1/5 search] ` in the pipeline.
    stage: String,
    terminal: bool,
    label: String,
    steps: usize,
    done: usize,
}

impl SearchBar {
    pub fn new() -> SearchBar {
        SearchBar::with_stage("")
    }

    pub fn with_stage(stage: &str) -> SearchBar {
        SearchBar {
            bar: None,
            stage: stage.to_string(),
            terminal: std::io::stderr().is_terminal(),
            label: String::new(),
            steps: 0,
            done: 0,
        }
    }

    fn start(&mut self, label: String, steps: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.label = label;
        self.steps = steps;
        self.done = 0;
        if self.terminal {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(bar_style(&format!(
                "{}{{prefix:<24}} [{{bar:30}}] {{pos}}/{{len}} {{msg}} (eta {{eta}})",
                self.stage
            )));
            bar.set_prefix(self.label.clone());
            self.bar = Some(bar);
        }
    }

    fn advance(&mut self, message: String) {
        self.done += 1;
        let tenth = self.steps.div_ceil(10).max(1);
        if !self.terminal && (self.done.is_multiple_of(tenth) || self.done == self.steps) {
            tracing::info!(
                "{}{} {}/{}: {message}",
                self.stage,
                self.label,
                self.done,
                self.steps
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_message(message);
            bar.inc(1);
        }
    }
}

impl SearchReporter for SearchBar {
    fn phase_started(&mut self, epoch: usize, phase: &'static str, steps: usize) {
        self.start(format!("epoch {epoch:>3} {phase}"), steps);
    }

    fn step_done(&mut self, p: &StepProgress) {
        let mut parts = Vec::new();
        if let Some(ppl) = p.shared_perplexity {
            let label = if p.mean_reward.is_some() {
                "valid ppl"
            } else {
                "train ppl"
            };
            parts.push(format!("{label} {ppl:8.2}"));
        }
        if let Some(r) = p.mean_reward {
            parts.push(format!("reward {r:.4}"));
        }
        parts.push(format!("within budget {:3.0}%", p.within_budget * 100.0));
        if let Some(w) = p.words_per_second {
            parts.push(format!("{w:5.0} words/s"));
        }
        self.advance(parts.join(" | "));
    }

    fn epoch_done(&mut self, r: &SearchEpoch) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "{}epoch {:>3}: shared train ppl {:.2}, sampled valid ppl {}, mean reward {}, {:.0}% within budget, {:.0} s",
            self.stage,
            r.epoch,
            r.shared_train_perplexity,
            r.sampled_valid_perplexity.map_or("-".into(), |p| format!("{p:.2}")),
            r.mean_reward.map_or("-".into(), |m| format!("{m:.4}")),
            r.within_budget * 100.0,
            r.seconds
        );
    }

    fn derive_started(&mut self, candidates: usize) {
        self.start("derive".into(), candidates);
    }

    fn candidate_done(&mut self, summary: &str, valid_perplexity: f64, within_budget: bool) {
        let fits = if within_budget { "fits" } else { "over budget" };
        self.advance(format!("{summary}: ppl {valid_perplexity:.2}, {fits}"));
    }
}

impl Drop for SearchBar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
