//! Replays a speech transcript through a [`Session`] and scores the predictions.

mod parse;
mod summary;

pub use parse::{plain, read, timestamp, vtt, Format, TranscriptError, Utterance, Word};
pub use summary::{LatencySummary, Summary};

use std::time::Duration;

use crate::session::{Session, Step};
use crate::RuntimeError;

/// The steps of one utterance, with the time to the next word where the transcript is timed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplayedUtterance {
    pub steps: Vec<ReplayedStep>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplayedStep {
    #[serde(flatten)]
    pub step: Step,
    /// Seconds from this word's start to the next word's start, where the transcript times
    /// both words: the time the prediction has before the speaker goes on.
    pub time_to_next_word_s: Option<f64>,
}

/// Replays `utterances`, calling `on_step` after each token so the caller can print as it
/// goes. When `on_step` returns `false`, the replay stops and returns the steps so far. The
/// state is reset at the start of every utterance.
pub fn replay(
    session: &mut Session<'_>,
    utterances: &[Utterance],
    mut on_step: impl FnMut(&ReplayedStep) -> bool,
) -> Result<Vec<ReplayedUtterance>, RuntimeError> {
    let mut out = Vec::with_capacity(utterances.len());
    for utterance in utterances {
        session.start_utterance()?;
        let mut steps = Vec::new();
        for (i, word) in utterance.words.iter().enumerate() {
            let next_start = utterance.words.get(i + 1).and_then(|w| w.start);
            let gap = match (word.start, next_start) {
                (Some(start), Some(next)) => Some(next - start),
                _ => None,
            };
            for step in session.push_word(&word.text)? {
                let replayed = ReplayedStep {
                    step,
                    time_to_next_word_s: gap,
                };
                let go_on = on_step(&replayed);
                steps.push(replayed);
                if !go_on {
                    out.push(ReplayedUtterance { steps });
                    return Ok(out);
                }
            }
        }
        out.push(ReplayedUtterance { steps });
    }
    Ok(out)
}

/// Sum of the step times of a replay, for throughput figures.
pub fn total_time(utterances: &[ReplayedUtterance]) -> Duration {
    utterances
        .iter()
        .flat_map(|u| &u.steps)
        .map(|s| s.step.elapsed)
        .sum()
}
