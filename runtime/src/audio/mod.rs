//! Audio input for the live pipeline: 16 kHz mono 16-bit samples from a capture device
//! ([`Capture`], through cpal) or from a WAV file ([`WavFile`]).

mod capture;
mod wav;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub use capture::{input_device_names, Capture};
pub use wav::WavFile;

/// Sample rate of every source, the rate of the pocketsphinx US English acoustic model.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples in the blocks a [`WavFile`] returns: 20 ms, close to a capture device's period.
pub const WAV_BLOCK_SAMPLES: usize = SAMPLE_RATE as usize / 50;

/// A source of 16 kHz mono 16-bit audio, read block by block.
pub trait AudioSource {
    /// Returns the next block of samples, or `None` at the end of the input or once `stop` is
    /// set. Blocks may have any length, including zero.
    fn next_block(&mut self, stop: &AtomicBool) -> Result<Option<Vec<i16>>, AudioError>;

    /// Names the source for messages, such as the device name or the file path.
    fn name(&self) -> String;
}

/// Errors of an audio source, each naming the device or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(
        "no audio input device found (the audio host {host} lists {}); connect a microphone \
         or pass --input FILE.wav",
        list_or_none(available)
    )]
    NoInputDevice {
        host: String,
        available: Vec<String>,
    },

    #[error(
        "audio input device `{name}` not found; available input devices: {}",
        list_or_none(available)
    )]
    DeviceNotFound {
        name: String,
        available: Vec<String>,
    },

    #[error(
        "failed to open audio input device `{name}`: {message}; available input devices: {}",
        list_or_none(available)
    )]
    DeviceOpen {
        name: String,
        message: String,
        available: Vec<String>,
    },

    #[error(
        "audio input device `{name}` cannot capture 16 kHz mono 16-bit integer audio, which \
         the recognizer needs; it supports: {}. Pick another device with --device NAME",
        list_or_none(supported)
    )]
    UnsupportedDevice {
        name: String,
        supported: Vec<String>,
    },

    #[error("failed to start capturing from audio input device `{name}`: {message}")]
    Stream { name: String, message: String },

    #[error("audio input device `{name}` disconnected or stopped delivering audio: {message}")]
    DeviceLost { name: String, message: String },

    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "{path} is not a WAV file ({message}); pass a 16 kHz mono 16-bit WAV file, for example \
         one converted with `sox IN -r 16000 -c 1 -b 16 OUT.wav`"
    )]
    NotWav { path: PathBuf, message: String },

    #[error(
        "{path} is {found}, but the recognizer needs 16000 Hz, 1 channel, 16-bit integer \
         samples; convert it with `sox {path} -r 16000 -c 1 -b 16 -e signed-integer OUT.wav`"
    )]
    WavFormat { path: PathBuf, found: String },

    #[error("{path} is truncated: the file ends inside its WAV header")]
    TruncatedHeader { path: PathBuf },

    #[error(
        "{path} is truncated: its header announces {expected} samples but the file ends after \
         {read}; the file was cut short while being written or copied"
    )]
    Truncated {
        path: PathBuf,
        expected: u32,
        read: u32,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
