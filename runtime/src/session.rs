//! Word-by-word prediction over utterances, with the scores the transcript report needs.

use std::time::{Duration, Instant};

use crate::normalize::{Normalizer, Token};
use crate::predictor::{softmax, Prediction, Predictor, State};
use crate::RuntimeError;

/// Most predictions a session offers per word.
pub const MAX_TOP_K: usize = 100;

/// One model token fed to the predictor, scored against what was predicted before it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    /// The word as heard or written.
    pub spoken: String,
    /// The vocabulary token fed to the model (or the lowercased word when unknown).
    pub token: String,
    pub id: usize,
    pub known: bool,
    /// Rank of this token among the predictions made before it (1 is the first); `None` for
    /// an unknown word, which is never predicted.
    pub rank: Option<usize>,
    /// Keystrokes to enter the token with predictions: the letters typed until it shows up in
    /// the top-k for the typed prefix, plus one to accept it (which also adds the space).
    pub keystrokes: usize,
    /// Keystrokes to type the token and a space without predictions.
    pub keystrokes_without: usize,
    /// Top-k next words after this token.
    pub predictions: Vec<Prediction>,
    /// Time for the model step, softmax and top-k of this token.
    #[serde(serialize_with = "serialize_ms")]
    pub elapsed: Duration,
}

fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// A predictor with its recurrent state and the current next-word distribution.
pub struct Session<'p> {
    predictor: &'p Predictor,
    normalizer: Normalizer<'p>,
    state: State,
    /// Probabilities of the next token, `[V]`.
    probabilities: Vec<f32>,
    predictions: Vec<Prediction>,
    top_k: usize,
}

impl<'p> Session<'p> {
    /// Starts a session that offers `top_k` predictions per word. Call
    /// [`Session::start_utterance`] before the first word.
    pub fn new(predictor: &'p Predictor, top_k: usize) -> Result<Session<'p>, RuntimeError> {
        let max = MAX_TOP_K.min(predictor.vocab().len().saturating_sub(2));
        if top_k == 0 || top_k > max {
            return Err(RuntimeError::InvalidTopK { k: top_k, max });
        }
        Ok(Session {
            predictor,
            normalizer: Normalizer::new(predictor.vocab()),
            state: predictor.initial_state(),
            probabilities: Vec::new(),
            predictions: Vec::new(),
            top_k,
        })
    }

    pub fn predictor(&self) -> &'p Predictor {
        self.predictor
    }

    /// Resets the state and feeds `<eos>`, the sentence boundary the model was trained with,
    /// so the predictions are for the first word of an utterance. Returns the time it took.
    pub fn start_utterance(&mut self) -> Result<Duration, RuntimeError> {
        self.state = self.predictor.initial_state();
        let eos = self.predictor.vocab().eos_id();
        self.advance(eos)
    }

    /// Returns the top-k predictions for the next word.
    pub fn predictions(&self) -> &[Prediction] {
        &self.predictions
    }

    /// Feeds one spoken or written word and returns one step per model token it gives
    /// (none for punctuation alone, two for `don't`).
    pub fn push_word(&mut self, spoken: &str) -> Result<Vec<Step>, RuntimeError> {
        if self.probabilities.is_empty() {
            self.start_utterance()?;
        }
        let mut tokens = Vec::new();
        self.normalizer.push_word(spoken, &mut tokens);
        let mut steps = Vec::with_capacity(tokens.len());
        for token in tokens {
            let score = self.score(&token);
            let elapsed = self.advance(token.id)?;
            steps.push(Step {
                spoken: spoken.to_string(),
                token: token.text,
                id: token.id,
                known: token.known,
                rank: score.rank,
                keystrokes: score.keystrokes,
                keystrokes_without: score.keystrokes_without,
                predictions: self.predictions.clone(),
                elapsed,
            });
        }
        Ok(steps)
    }

    /// Runs the model on `id` and refreshes the distribution and the top-k.
    fn advance(&mut self, id: usize) -> Result<Duration, RuntimeError> {
        let started = Instant::now();
        let mut logits = self.predictor.step(&mut self.state, id)?;
        softmax(&mut logits);
        self.predictions = self.predictor.top_k(&logits, self.top_k);
        let elapsed = started.elapsed();
        self.probabilities = logits;
        Ok(elapsed)
    }

    /// Scores `token` against the current distribution, before it is fed.
    fn score(&self, token: &Token) -> Score {
        let chars: Vec<char> = token.text.chars().collect();
        let keystrokes_without = chars.len() + 1;
        if !token.known || !self.predictor.is_predictable(token.id) {
            return Score {
                rank: None,
                keystrokes: keystrokes_without,
                keystrokes_without,
            };
        }
        let target = self.probabilities[token.id];
        // `ahead[p]` counts the tokens ranked above the target that also start with its first
        // `p` characters, so with `p` letters typed the target is offered when `ahead[p] < k`.
        let mut ahead = vec![0usize; chars.len() + 1];
        for (id, &p) in self.probabilities.iter().enumerate() {
            let above = p > target || (p == target && id < token.id);
            if !above || !self.predictor.is_predictable(id) {
                continue;
            }
            let other = self.predictor.vocab().token(id).unwrap_or_default();
            let shared = other.chars().zip(&chars).take_while(|(a, b)| a == *b).count();
            for count in &mut ahead[..=shared] {
                *count += 1;
            }
        }
        let typed = (0..=chars.len()).find(|&p| ahead[p] < self.top_k);
        Score {
            rank: Some(ahead[0] + 1),
            keystrokes: typed.map_or(keystrokes_without, |p| (p + 1).min(keystrokes_without)),
            keystrokes_without,
        }
    }
}

struct Score {
    rank: Option<usize>,
    keystrokes: usize,
    keystrokes_without: usize,
}
