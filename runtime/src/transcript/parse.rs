//! Reads speech transcripts: plain text, one utterance a line, or WebVTT with a start time
//! per cue and, optionally, per word.

use std::path::{Path, PathBuf};

/// One spoken word and, in a timed transcript, when it starts (seconds from the start).
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: Option<f64>,
}

/// Words between two resets of the predictor: a line of plain text, or a WebVTT cue.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    pub words: Vec<Word>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One utterance a line.
    Plain,
    /// WebVTT: each cue is an utterance; `<hh:mm:ss.mmm>` tags inside a cue time its words.
    Vtt,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    #[error("transcript {path} not found; check the path")]
    NotFound { path: PathBuf },
    #[error("failed to read transcript {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "transcript {path} is not UTF-8 text (invalid byte at line {line}, byte offset {offset}); \
         convert it, e.g. `iconv -f latin1 -t utf-8 {path} > out.txt`"
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error("transcript {path} has no words; give a text file with one utterance a line, or a WebVTT file")]
    Empty { path: PathBuf },
    #[error("{path} line {line}: invalid WebVTT: {problem}")]
    InvalidVtt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// Reads `path` as `format`, or guesses it: a `.vtt` file or one that starts with `WEBVTT`
/// is WebVTT.
pub fn read(path: &Path, format: Option<Format>) -> Result<(Format, Vec<Utterance>), TranscriptError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => TranscriptError::NotFound {
            path: path.to_path_buf(),
        },
        _ => TranscriptError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
        TranscriptError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            offset,
        }
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let is_vtt_name = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("vtt"));
    let format = format.unwrap_or_else(|| {
        if is_vtt_name || text.trim_start().starts_with("WEBVTT") {
            Format::Vtt
        } else {
            Format::Plain
        }
    });
    let utterances = match format {
        Format::Plain => plain(text),
        Format::Vtt => vtt(text, path)?,
    };
    if utterances.is_empty() {
        return Err(TranscriptError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((format, utterances))
}

/// Splits plain text into utterances, one per non-blank line.
pub fn plain(text: &str) -> Vec<Utterance> {
    text.lines()
        .map(|line| Utterance {
            words: line
                .split_whitespace()
                .map(|w| Word {
                    text: w.to_string(),
                    start: None,
                })
                .collect(),
        })
        .filter(|u| !u.words.is_empty())
        .collect()
}

/// Parses WebVTT cues. Notes, styles and regions are skipped; tags other than timestamps
/// (`<c>`, `<v Speaker>`, `<i>`) are dropped from the text.
pub fn vtt(text: &str, path: &Path) -> Result<Vec<Utterance>, TranscriptError> {
    let invalid = |line: usize, problem: String| TranscriptError::InvalidVtt {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, first)) if first.trim_start().starts_with("WEBVTT") => {}
        _ => return Err(invalid(1, "the first line must start with WEBVTT".to_string())),
    }
    let mut utterances = Vec::new();
    let mut cue: Option<(f64, Vec<Word>)> = None;
    let mut skipping_block = false;
    for (number, line) in lines {
        if line.trim().is_empty() {
            if let Some((_, words)) = cue.take() {
                if !words.is_empty() {
                    utterances.push(Utterance { words });
                }
            }
            skipping_block = false;
            continue;
        }
        if skipping_block {
            continue;
        }
        if let Some((start, words)) = cue.as_mut() {
            words_of_cue_line(line, *start, words).map_err(|p| invalid(number, p))?;
        } else if line.contains("-->") {
            let start_text = line.split("-->").next().unwrap_or_default().trim();
            let start = timestamp(start_text).ok_or_else(|| {
                invalid(number, format!("`{start_text}` is not a timestamp like 00:01.500"))
            })?;
            cue = Some((start, Vec::new()));
        } else if ["NOTE", "STYLE", "REGION"].iter().any(|k| line.starts_with(k)) {
            skipping_block = true;
        }
        // Any other line before a timing line is a cue identifier.
    }
    if let Some((_, words)) = cue.take().filter(|(_, w)| !w.is_empty()) {
        utterances.push(Utterance { words });
    }
    Ok(utterances)
}

/// Appends the words of one cue text line. The first word of the cue starts at the cue time,
/// and a `<timestamp>` tag times the word after it. Other words have no time of their own.
fn words_of_cue_line(line: &str, cue_start: f64, words: &mut Vec<Word>) -> Result<(), String> {
    let mut start = words.is_empty().then_some(cue_start);
    let mut rest = line;
    while !rest.is_empty() {
        let (text, tag, after) = match rest.find('<') {
            Some(open) => {
                let close = rest[open..]
                    .find('>')
                    .ok_or_else(|| format!("tag `{}` is not closed with `>`", &rest[open..]))?;
                (&rest[..open], Some(&rest[open + 1..open + close]), &rest[open + close + 1..])
            }
            None => (rest, None, ""),
        };
        for w in text.split_whitespace() {
            words.push(Word {
                text: w.to_string(),
                start: start.take(),
            });
        }
        if let Some(seconds) = tag.and_then(timestamp) {
            start = Some(seconds);
        }
        rest = after;
    }
    Ok(())
}

/// Parses `hh:mm:ss.ttt` or `mm:ss.ttt` into seconds.
pub fn timestamp(text: &str) -> Option<f64> {
    let parts: Vec<&str> = text.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [h, m, s] => (h.parse::<u64>().ok()?, *m, *s),
        [m, s] => (0, *m, *s),
        _ => return None,
    };
    let minutes: u64 = minutes.parse().ok().filter(|m| *m < 60)?;
    let (whole, millis) = seconds.split_once('.')?;
    if whole.len() != 2 || millis.len() != 3 {
        return None;
    }
    let whole: u64 = whole.parse().ok().filter(|s| *s < 60)?;
    let millis: u64 = millis.parse().ok()?;
    Some((hours * 3600 + minutes * 60 + whole) as f64 + millis as f64 / 1000.0)
}
