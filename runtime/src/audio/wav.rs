//! WAV files as an audio source, read with hound.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use hound::{SampleFormat, WavReader};

use super::{AudioError, AudioSource, SAMPLE_RATE, WAV_BLOCK_SAMPLES};

/// A 16 kHz mono 16-bit integer WAV file, read in blocks of [`WAV_BLOCK_SAMPLES`] samples
/// without real-time pacing.
pub struct WavFile {
    path: PathBuf,
    reader: WavReader<BufReader<File>>,
    read: u32,
}

impl WavFile {
    /// Opens `path` and checks its format, which must be what the recognizer decodes, because
    /// this source never converts.
    pub fn open(path: &Path) -> Result<WavFile, AudioError> {
        let file = File::open(path).map_err(|source| AudioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let reader =
            WavReader::new(BufReader::new(file)).map_err(|error| open_error(path, error))?;
        let spec = reader.spec();
        let expected = spec.sample_rate == SAMPLE_RATE
            && spec.channels == 1
            && spec.bits_per_sample == 16
            && spec.sample_format == SampleFormat::Int;
        if !expected {
            let kind = match spec.sample_format {
                SampleFormat::Int => "integer",
                SampleFormat::Float => "float",
            };
            let found = format!(
                "{} Hz, {} channel{}, {}-bit {kind} samples",
                spec.sample_rate,
                spec.channels,
                if spec.channels == 1 { "" } else { "s" },
                spec.bits_per_sample,
            );
            return Err(AudioError::WavFormat {
                path: path.to_path_buf(),
                found,
            });
        }
        Ok(WavFile {
            path: path.to_path_buf(),
            reader,
            read: 0,
        })
    }

    /// Samples the header announces.
    pub fn len(&self) -> u32 {
        self.reader.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reader.len() == 0
    }
}

impl AudioSource for WavFile {
    fn next_block(&mut self, stop: &AtomicBool) -> Result<Option<Vec<i16>>, AudioError> {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut block = Vec::with_capacity(WAV_BLOCK_SAMPLES);
        for sample in self.reader.samples::<i16>().take(WAV_BLOCK_SAMPLES) {
            match sample {
                Ok(sample) => block.push(sample),
                // hound reports a short read as an I/O error of kind `Other` ("Failed to
                // read enough bytes"), so any I/O error before the announced end is taken as
                // the end of a truncated file.
                Err(hound::Error::IoError(_))
                    if self.read + (block.len() as u32) < self.reader.len() =>
                {
                    return Err(AudioError::Truncated {
                        path: self.path.clone(),
                        expected: self.reader.len(),
                        read: self.read + block.len() as u32,
                    });
                }
                Err(error) => return Err(read_error(&self.path, error)),
            }
        }
        self.read += block.len() as u32;
        if block.is_empty() {
            return Ok(None);
        }
        Ok(Some(block))
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// Maps an error of `WavReader::open` to what went wrong with the file.
fn open_error(path: &Path, error: hound::Error) -> AudioError {
    let path = path.to_path_buf();
    match error {
        // The file opened, so an I/O error while parsing the header is a short read: hound
        // reports one as kind `UnexpectedEof` or `Other` ("Failed to read enough bytes").
        hound::Error::IoError(error)
            if matches!(error.kind(), ErrorKind::UnexpectedEof | ErrorKind::Other) =>
        {
            AudioError::TruncatedHeader { path }
        }
        hound::Error::IoError(source) => AudioError::Read { path, source },
        hound::Error::FormatError(message) => AudioError::NotWav {
            path,
            message: message.to_string(),
        },
        hound::Error::Unsupported => AudioError::NotWav {
            path,
            message: "a WAV encoding hound cannot read, such as compressed audio".to_string(),
        },
        other => AudioError::NotWav {
            path,
            message: other.to_string(),
        },
    }
}

fn read_error(path: &Path, error: hound::Error) -> AudioError {
    match error {
        hound::Error::IoError(source) => AudioError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => AudioError::NotWav {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}
