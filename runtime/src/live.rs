//! The live speech pipeline: audio blocks to the recognizer, recognized words to the
//! next-word predictor, one utterance at a time.
//!
//! Utterances come from the recognizer's voice activity detector ([`Recognizer::in_speech`];
//! for pocketsphinx, the detector of its front end). The session is reset when an utterance
//! starts, so the predictions of its first word follow a sentence boundary, as in training.
//!
//! Words reach the predictor while the speaker talks. Every [`LiveOptions::partial_interval`]
//! of audio the pipeline reads the recognizer's partial hypothesis, and a word is sent once
//! the words up to it have been the same in [`LiveOptions::stable_checks`] partial hypotheses
//! in a row and another word follows it. The rest of the words are sent when the utterance
//! ends, from the final hypothesis. Sending only at the end would be exact but would hold
//! every prediction back until the speaker pauses. Sending each partial word at once would
//! feed the model words that the recognizer still replaces. When the final hypothesis changes
//! a word already sent, the pipeline resets the session and sends all final words again, so
//! the predictor's state always matches what the recognizer settled on.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::audio::{AudioError, AudioSource, SAMPLE_RATE};
use crate::recognizer::{RecognizedWord, Recognizer, RecognizerError};
use crate::session::{Session, Step};
use crate::RuntimeError;

/// When the pipeline reads partial hypotheses and how stable a word must be to be sent.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Audio between two reads of the partial hypothesis.
    pub partial_interval: Duration,
    /// Consecutive partial hypotheses that must agree on a word before it is sent; 0 sends
    /// words only when the utterance ends.
    pub stable_checks: usize,
}

impl Default for LiveOptions {
    fn default() -> LiveOptions {
        LiveOptions {
            partial_interval: Duration::from_millis(100),
            stable_checks: 3,
        }
    }
}

/// A step of the pipeline, reported in order. Times are audio time since the source started.
#[derive(Debug)]
pub enum Event<'a> {
    UtteranceStarted {
        utterance: usize,
        audio_time: Duration,
    },
    /// A recognized word and the steps the predictor made for it (one per model token).
    Word {
        utterance: usize,
        word: &'a str,
        audio_time: Duration,
        /// Whether the word came from a stable partial hypothesis rather than the final one.
        from_partial: bool,
        steps: &'a [Step],
    },
    /// The final hypothesis changed words already sent, so the session was reset and the
    /// final words follow as new `Word` events.
    Revised {
        utterance: usize,
        sent: &'a [String],
    },
    UtteranceEnded {
        utterance: usize,
        audio_time: Duration,
        words: &'a [RecognizedWord],
    },
}

/// Totals of one run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub audio_seconds: f64,
    pub utterances: usize,
    /// Recognized words sent to the predictor, counting words sent again after a revision.
    pub words: usize,
    /// Model steps, one per token.
    pub steps: usize,
    /// Steps on tokens outside the model's vocabulary.
    pub unknown_steps: usize,
    pub revisions: usize,
    /// Total time of the model steps, in milliseconds.
    pub prediction_ms: f64,
}

impl Summary {
    /// Mean time of one model step in milliseconds, or zero without steps.
    pub fn mean_prediction_ms(&self) -> f64 {
        if self.steps == 0 {
            return 0.0;
        }
        self.prediction_ms / self.steps as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Recognizer(#[from] RecognizerError),
    #[error(transparent)]
    Predictor(#[from] RuntimeError),
    #[error("failed to write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// A receiver of each [`Event`]. An error it returns stops the pipeline.
pub type EventSink<'a> = dyn FnMut(&Event<'_>) -> std::io::Result<()> + 'a;

/// Runs the pipeline until the source ends or `stop` is set, then ends the open utterance so
/// its last words are still sent.
pub fn run(
    source: &mut dyn AudioSource,
    recognizer: &mut dyn Recognizer,
    session: &mut Session<'_>,
    options: &LiveOptions,
    stop: &AtomicBool,
    on_event: &mut EventSink<'_>,
) -> Result<Summary, LiveError> {
    let mut pipeline = Pipeline {
        recognizer,
        session,
        options,
        on_event,
        summary: Summary::default(),
        utterance: None,
        samples: 0,
    };
    pipeline.recognizer.start_utterance()?;
    while let Some(block) = source.next_block(stop)? {
        pipeline.process_block(&block)?;
    }
    pipeline.finish()
}

/// The utterance in progress.
struct Utterance {
    index: usize,
    /// Words sent to the session so far.
    sent: Vec<String>,
    /// The last partial hypotheses, newest last.
    partials: VecDeque<Vec<String>>,
    samples_since_partial: usize,
}

struct Pipeline<'r, 's, 'p, 'o, 'e> {
    recognizer: &'r mut dyn Recognizer,
    session: &'s mut Session<'p>,
    options: &'o LiveOptions,
    on_event: &'e mut EventSink<'e>,
    summary: Summary,
    utterance: Option<Utterance>,
    samples: u64,
}

impl Pipeline<'_, '_, '_, '_, '_> {
    fn audio_time(&self) -> Duration {
        Duration::from_secs_f64(self.samples as f64 / f64::from(SAMPLE_RATE))
    }

    fn process_block(&mut self, block: &[i16]) -> Result<(), LiveError> {
        self.recognizer.process(block)?;
        self.samples += block.len() as u64;
        let in_speech = self.recognizer.in_speech();

        if in_speech && self.utterance.is_none() {
            self.begin_utterance()?;
        }
        let interval = partial_interval_samples(self.options);
        if let Some(utterance) = &mut self.utterance {
            utterance.samples_since_partial += block.len();
            if self.options.stable_checks > 0 && utterance.samples_since_partial >= interval {
                utterance.samples_since_partial = 0;
                self.send_stable_words()?;
            }
        }
        if !in_speech && self.utterance.is_some() {
            self.end_utterance()?;
            self.recognizer.start_utterance()?;
        }
        Ok(())
    }

    fn begin_utterance(&mut self) -> Result<(), LiveError> {
        self.session.start_utterance()?;
        self.summary.utterances += 1;
        let index = self.summary.utterances;
        self.utterance = Some(Utterance {
            index,
            sent: Vec::new(),
            partials: VecDeque::new(),
            samples_since_partial: 0,
        });
        let audio_time = self.audio_time();
        (self.on_event)(&Event::UtteranceStarted {
            utterance: index,
            audio_time,
        })?;
        Ok(())
    }

    /// Reads the partial hypothesis and sends the words that became stable.
    fn send_stable_words(&mut self) -> Result<(), LiveError> {
        let partial = self.recognizer.partial_words();
        let checks = self.options.stable_checks;
        let Some(utterance) = &mut self.utterance else {
            return Ok(());
        };
        utterance.partials.push_back(partial);
        while utterance.partials.len() > checks {
            utterance.partials.pop_front();
        }
        let stable = stable_prefix_len(&utterance.partials, checks);
        let latest = utterance.partials.back().cloned().unwrap_or_default();
        let sent = utterance.sent.len();
        if stable <= sent || latest[..sent] != utterance.sent[..] {
            // Nothing new is stable, or the recognizer replaced a word already sent, which
            // the final hypothesis settles.
            return Ok(());
        }
        for word in &latest[sent..stable] {
            self.send_word(word, true)?;
        }
        Ok(())
    }

    fn send_word(&mut self, word: &str, from_partial: bool) -> Result<(), LiveError> {
        let steps = self.session.push_word(word)?;
        let audio_time = self.audio_time();
        let Some(utterance) = &mut self.utterance else {
            return Ok(());
        };
        utterance.sent.push(word.to_string());
        self.summary.words += 1;
        for step in &steps {
            self.summary.steps += 1;
            self.summary.unknown_steps += usize::from(!step.known);
            self.summary.prediction_ms += step.elapsed.as_secs_f64() * 1e3;
        }
        let index = utterance.index;
        (self.on_event)(&Event::Word {
            utterance: index,
            word,
            audio_time,
            from_partial,
            steps: &steps,
        })?;
        Ok(())
    }

    /// Ends the recognizer's utterance and sends the final words not sent yet.
    fn end_utterance(&mut self) -> Result<(), LiveError> {
        let words = self.recognizer.end_utterance()?;
        let Some(utterance) = &self.utterance else {
            return Ok(());
        };
        let index = utterance.index;
        let sent = utterance.sent.clone();
        let final_words: Vec<String> = words.iter().map(|word| word.text.clone()).collect();

        let mut first_unsent = sent.len();
        if !final_words.starts_with(&sent) {
            tracing::debug!(
                ?sent,
                ?final_words,
                "the final hypothesis revised words already sent"
            );
            self.summary.revisions += 1;
            (self.on_event)(&Event::Revised {
                utterance: index,
                sent: &sent,
            })?;
            self.session.start_utterance()?;
            first_unsent = 0;
        }
        for word in &final_words[first_unsent..] {
            self.send_word(word, false)?;
        }
        self.utterance = None;
        let audio_time = self.audio_time();
        (self.on_event)(&Event::UtteranceEnded {
            utterance: index,
            audio_time,
            words: &words,
        })?;
        Ok(())
    }

    fn finish(mut self) -> Result<Summary, LiveError> {
        if self.utterance.is_some() {
            self.end_utterance()?;
        } else {
            // Audio after the last utterance held no speech, so its hypothesis is dropped.
            self.recognizer.end_utterance()?;
        }
        self.summary.audio_seconds = self.audio_time().as_secs_f64();
        Ok(self.summary)
    }
}

fn partial_interval_samples(options: &LiveOptions) -> usize {
    let samples = options.partial_interval.as_secs_f64() * f64::from(SAMPLE_RATE);
    (samples as usize).max(1)
}

/// Returns how many leading words of the newest partial hypothesis are stable: the same in
/// each of the last `checks` hypotheses, and followed by another word in the newest, because
/// the recognizer often still changes the last word.
fn stable_prefix_len(partials: &VecDeque<Vec<String>>, checks: usize) -> usize {
    let Some(latest) = partials.back() else {
        return 0;
    };
    if checks == 0 || partials.len() < checks {
        return 0;
    }
    let mut stable = latest.len().saturating_sub(1);
    for other in partials.iter().rev().take(checks) {
        let common = latest.iter().zip(other).take_while(|(a, b)| a == b).count();
        stable = stable.min(common);
    }
    stable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partials(list: &[&str]) -> VecDeque<Vec<String>> {
        list.iter()
            .map(|text| text.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn stable_prefix_excludes_last_word() {
        let history = partials(&["the stock", "the stock", "the stock"]);
        assert_eq!(stable_prefix_len(&history, 3), 1);
    }

    #[test]
    fn stable_prefix_needs_all_checks() {
        let history = partials(&["the stock market", "the stock market"]);
        assert_eq!(stable_prefix_len(&history, 3), 0);
        assert_eq!(stable_prefix_len(&history, 2), 2);
    }

    #[test]
    fn stable_prefix_stops_at_change() {
        let history = partials(&[
            "the stuck market",
            "the stock market fell",
            "the stock market fell",
        ]);
        assert_eq!(stable_prefix_len(&history, 3), 1);
        assert_eq!(stable_prefix_len(&history, 2), 3);
    }
}
