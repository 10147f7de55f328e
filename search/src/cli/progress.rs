//! Progress bars for training on stderr.

use std::io::IsTerminal;

use edgenas_search::train::{EpochRecord, Reporter};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows one bar per epoch with the running training perplexity and speed, and logs each
/// finished epoch. When stderr is not a terminal (a log file, CI), it logs a line every tenth
/// of an epoch instead of drawing a bar.
pub struct BarReporter {
    bar: Option<ProgressBar>,
    terminal: bool,
    windows: usize,
    done: usize,
}

impl BarReporter {
    pub fn new() -> BarReporter {
        BarReporter {
            bar: None,
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
            ProgressStyle::with_template(
                "epoch {prefix:>3} [{bar:30}] {pos}/{len} windows {msg} (eta {eta})",
            )
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
                "window {}/{}: train ppl {train_perplexity:.2}, {words_per_second:.0} words/s",
                self.done,
                self.windows
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("ppl {train_perplexity:8.2} | {words_per_second:6.0} words/s"));
            bar.inc(1);
        }
    }

    fn epoch_done(&mut self, record: &EpochRecord, improved: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "epoch {:>3}: lr {:.4}, train ppl {:.2}, valid ppl {:.2}{}, {:.0} s, {:.0} words/s",
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
