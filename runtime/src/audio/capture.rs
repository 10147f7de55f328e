//! Capture from an audio input device through cpal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, SampleRate, StreamConfig, SupportedStreamConfigRange};

use super::{AudioError, AudioSource, SAMPLE_RATE};

/// How long [`Capture::next_block`] waits for audio before it checks the stop flag again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A message from the capture callbacks to the pipeline thread.
enum Message {
    Samples(Vec<i16>),
    Error(cpal::StreamError),
}

/// A running capture stream of 16 kHz mono 16-bit integer samples.
///
/// The stream requests that exact format from the device and never converts, so a device that
/// cannot deliver it is rejected when opened. The stream stops when this value is dropped.
pub struct Capture {
    name: String,
    receiver: Receiver<Message>,
    /// Kept alive for as long as samples are read; cpal stops the stream on drop.
    _stream: cpal::Stream,
    stream_errors: usize,
}

impl Capture {
    /// Opens the host's default input device, or the input device called `device`, and
    /// starts capturing.
    pub fn open(device: Option<&str>) -> Result<Capture, AudioError> {
        let host = cpal::default_host();
        let device = find_device(&host, device)?;
        let name = device.name().unwrap_or_else(|_| "(unnamed)".to_string());
        check_supported(&host, &device, &name)?;

        let config = StreamConfig {
            channels: 1,
            sample_rate: SampleRate(SAMPLE_RATE),
            buffer_size: cpal::BufferSize::Default,
        };
        let (sender, receiver) = mpsc::channel();
        let error_sender = sender.clone();
        let stream = device
            .build_input_stream(
                &config,
                move |data: &[i16], _: &cpal::InputCallbackInfo| {
                    send(&sender, Message::Samples(data.to_vec()))
                },
                move |error| send(&error_sender, Message::Error(error)),
                None,
            )
            .map_err(|error| AudioError::Stream {
                name: name.clone(),
                message: error.to_string(),
            })?;
        stream.play().map_err(|error| AudioError::Stream {
            name: name.clone(),
            message: error.to_string(),
        })?;
        tracing::info!(device = %name, "capturing 16 kHz mono 16-bit audio");
        Ok(Capture {
            name,
            receiver,
            _stream: stream,
            stream_errors: 0,
        })
    }
}

impl AudioSource for Capture {
    fn next_block(&mut self, stop: &AtomicBool) -> Result<Option<Vec<i16>>, AudioError> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.receiver.recv_timeout(POLL_INTERVAL) {
                Ok(Message::Samples(samples)) => {
                    tracing::trace!(samples = samples.len(), "captured block");
                    return Ok(Some(samples));
                }
                Ok(Message::Error(cpal::StreamError::DeviceNotAvailable)) => {
                    return Err(AudioError::DeviceLost {
                        name: self.name.clone(),
                        message: "the device is no longer available".to_string(),
                    });
                }
                Ok(Message::Error(error)) => {
                    // cpal reports recoverable problems such as an overrun here, and the
                    // stream goes on, so they are logged rather than returned.
                    self.stream_errors += 1;
                    if self.stream_errors <= 10 || self.stream_errors.is_power_of_two() {
                        tracing::warn!(device = %self.name, count = self.stream_errors, %error, "capture stream error");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(AudioError::DeviceLost {
                        name: self.name.clone(),
                        message: "the capture stream ended".to_string(),
                    });
                }
            }
        }
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Sends from a cpal callback thread. A failure means the pipeline has dropped the receiver
/// while stopping, so the block is no longer needed.
fn send(sender: &Sender<Message>, message: Message) {
    let _ = sender.send(message);
}

/// Returns the names of the host's input devices, for messages and `--device`.
pub fn input_device_names() -> Vec<String> {
    device_names(&cpal::default_host())
}

fn device_names(host: &cpal::Host) -> Vec<String> {
    match host.input_devices() {
        Ok(devices) => devices.filter_map(|device| device.name().ok()).collect(),
        Err(error) => {
            tracing::warn!(%error, "failed to list audio input devices");
            Vec::new()
        }
    }
}

fn find_device(host: &cpal::Host, name: Option<&str>) -> Result<cpal::Device, AudioError> {
    let Some(name) = name else {
        return host
            .default_input_device()
            .ok_or_else(|| AudioError::NoInputDevice {
                host: host.id().name().to_string(),
                available: device_names(host),
            });
    };
    let devices = host
        .input_devices()
        .map_err(|error| AudioError::DeviceOpen {
            name: name.to_string(),
            message: error.to_string(),
            available: Vec::new(),
        })?;
    for device in devices {
        if device.name().is_ok_and(|found| found == name) {
            return Ok(device);
        }
    }
    Err(AudioError::DeviceNotFound {
        name: name.to_string(),
        available: device_names(host),
    })
}

/// Checks that `device` offers 16 kHz mono 16-bit integer capture.
fn check_supported(host: &cpal::Host, device: &cpal::Device, name: &str) -> Result<(), AudioError> {
    let ranges: Vec<SupportedStreamConfigRange> = match device.supported_input_configs() {
        Ok(ranges) => ranges.collect(),
        Err(error) => {
            // ALSA always offers a `default` device, even on a machine without a sound card,
            // and only opening it fails.
            let available: Vec<String> = device_names(host)
                .into_iter()
                .filter(|other| other != name)
                .collect();
            if available.is_empty() {
                return Err(AudioError::NoInputDevice {
                    host: host.id().name().to_string(),
                    available,
                });
            }
            return Err(AudioError::DeviceOpen {
                name: name.to_string(),
                message: error.to_string(),
                available,
            });
        }
    };
    if ranges.iter().any(supports_recognizer_format) {
        return Ok(());
    }
    Err(AudioError::UnsupportedDevice {
        name: name.to_string(),
        supported: ranges.iter().map(describe_range).collect(),
    })
}

fn supports_recognizer_format(range: &SupportedStreamConfigRange) -> bool {
    range.channels() == 1
        && range.sample_format() == SampleFormat::I16
        && range.min_sample_rate().0 <= SAMPLE_RATE
        && SAMPLE_RATE <= range.max_sample_rate().0
}

fn describe_range(range: &SupportedStreamConfigRange) -> String {
    let (min, max) = (range.min_sample_rate().0, range.max_sample_rate().0);
    let rates = if min == max {
        format!("{min} Hz")
    } else {
        format!("{min}-{max} Hz")
    };
    let channels = range.channels();
    let plural = if channels == 1 { "" } else { "s" };
    format!(
        "{channels} channel{plural} {} at {rates}",
        range.sample_format()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::SupportedBufferSize;

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        let buffer = SupportedBufferSize::Unknown;
        SupportedStreamConfigRange::new(channels, SampleRate(min), SampleRate(max), buffer, format)
    }

    #[test]
    fn format_check_needs_mono_i16_at_16_khz() {
        assert!(supports_recognizer_format(&range(
            1,
            8_000,
            48_000,
            SampleFormat::I16
        )));
        assert!(supports_recognizer_format(&range(
            1,
            16_000,
            16_000,
            SampleFormat::I16
        )));
        assert!(!supports_recognizer_format(&range(
            2,
            8_000,
            48_000,
            SampleFormat::I16
        )));
        assert!(!supports_recognizer_format(&range(
            1,
            8_000,
            48_000,
            SampleFormat::F32
        )));
        assert!(!supports_recognizer_format(&range(
            1,
            44_100,
            48_000,
            SampleFormat::I16
        )));
    }

    #[test]
    fn range_description_lists_format() {
        let text = describe_range(&range(2, 44_100, 48_000, SampleFormat::F32));
        assert_eq!(text, "2 channels f32 at 44100-48000 Hz");
    }
}
