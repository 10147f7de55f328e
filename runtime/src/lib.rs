//! Next-word prediction on the device: an exported edgenas model run by tract, one word at a
//! time, fed from transcripts or live speech. This crate never depends on libtorch, so it
//! cross-builds for `aarch64-unknown-linux-gnu`.

#[cfg(feature = "live")]
pub mod audio;
pub mod calibrate;
mod error;
#[cfg(feature = "live")]
pub mod live;
pub mod locate;
pub mod normalize;
pub mod predictor;
#[cfg(feature = "live")]
pub mod recognizer;
pub mod session;
pub mod transcript;

pub use error::RuntimeError;
pub use predictor::{Prediction, Predictor, State};
pub use session::{Session, Step};
