//! Speech recognizers that turn 16 kHz mono audio into words, utterance by utterance.
//!
//! [`Recognizer`] is what the live pipeline needs from a recognizer: voice activity to find
//! the utterances, a partial hypothesis to emit words while the speaker talks, and the final
//! words of each utterance. [`PocketSphinx`] implements it with the pocketsphinx C library.

mod pocketsphinx;
mod pocketsphinx_sys;

use std::path::PathBuf;
use std::time::Duration;

pub use pocketsphinx::{ModelPaths, PocketSphinx};

/// One word of a final hypothesis, with its place in the audio of the utterance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecognizedWord {
    pub text: String,
    /// Start of the word from the start of the utterance's audio.
    pub start: Duration,
    /// End of the word from the start of the utterance's audio.
    pub end: Duration,
}

/// A speech recognizer fed with blocks of 16 kHz mono samples.
///
/// The pipeline calls [`Recognizer::start_utterance`] once before the first block and again
/// after each [`Recognizer::end_utterance`], so every block belongs to an open utterance.
pub trait Recognizer {
    /// Opens an utterance. Audio before speech starts may be part of it.
    fn start_utterance(&mut self) -> Result<(), RecognizerError>;

    /// Decodes a block of 16 kHz mono samples of the open utterance.
    fn process(&mut self, samples: &[i16]) -> Result<(), RecognizerError>;

    /// Returns whether the voice activity detector considers the audio so far to be inside
    /// speech. It turns false some time after the speaker stops, which ends the utterance.
    fn in_speech(&mut self) -> bool;

    /// Returns the words of the current partial hypothesis, without fillers such as silence
    /// or breath. Later words, and sometimes earlier ones, may still change.
    fn partial_words(&mut self) -> Vec<String>;

    /// Closes the utterance and returns its final words.
    fn end_utterance(&mut self) -> Result<Vec<RecognizedWord>, RecognizerError>;
}

/// Errors of a recognizer, each naming the file or call at fault.
#[derive(Debug, thiserror::Error)]
pub enum RecognizerError {
    #[error(
        "pocketsphinx {what} {path} not found; install the US English model with \
         `apt-get install pocketsphinx-en-us` or pass --hmm DIR --lm FILE --dict FILE"
    )]
    ModelMissing { what: &'static str, path: PathBuf },

    #[error("the path {path} contains a NUL byte and cannot be passed to pocketsphinx")]
    InvalidPath { path: PathBuf },

    #[error(
        "pocketsphinx failed to load the models (acoustic model {hmm}, language model {lm}, \
         dictionary {dict}); rerun with -v to see its log"
    )]
    Load {
        hmm: PathBuf,
        lm: PathBuf,
        dict: PathBuf,
    },

    #[error("pocketsphinx rejected its configuration; rerun with -v to see its log")]
    Config,

    #[error("pocketsphinx call {call} failed with status {status}")]
    Call { call: &'static str, status: i32 },
}
