//! The pocketsphinx recognizer: the library's n-gram decoder with its voice activity detector.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::time::Duration;

use super::pocketsphinx_sys as sys;
use super::{RecognizedWord, Recognizer, RecognizerError};

/// Feature frames per second, pocketsphinx's default `-frate`, which this module never changes.
const FRAMES_PER_SECOND: u64 = 100;

/// The three model files pocketsphinx decodes with.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    /// Acoustic model folder (`-hmm`), the one that contains `mdef`.
    pub hmm: PathBuf,
    /// Language model (`-lm`), ARPA or binary.
    pub lm: PathBuf,
    /// Pronunciation dictionary (`-dict`).
    pub dict: PathBuf,
}

impl ModelPaths {
    /// Returns the paths where the Debian and Raspberry Pi OS package `pocketsphinx-en-us`
    /// installs the US English model.
    pub fn debian_en_us() -> ModelPaths {
        let root = Path::new("/usr/share/pocketsphinx/model/en-us");
        ModelPaths {
            hmm: root.join("en-us"),
            lm: root.join("en-us.lm.bin"),
            dict: root.join("cmudict-en-us.dict"),
        }
    }

    /// Checks that each file exists, so a missing one is named before pocketsphinx fails.
    pub fn check(&self) -> Result<(), RecognizerError> {
        let files = [
            ("acoustic model folder", &self.hmm, self.hmm.is_dir()),
            (
                "acoustic model definition",
                &self.hmm.join("mdef"),
                self.hmm.join("mdef").is_file(),
            ),
            ("language model", &self.lm, self.lm.is_file()),
            ("dictionary", &self.dict, self.dict.is_file()),
        ];
        for (what, path, present) in files {
            if !present {
                return Err(RecognizerError::ModelMissing {
                    what,
                    path: path.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A pocketsphinx decoder with the configuration it was made from.
pub struct PocketSphinx {
    decoder: NonNull<sys::ps_decoder_t>,
    config: NonNull<sys::cmd_ln_t>,
}

impl PocketSphinx {
    /// Loads the models. With `verbose` false the library's log is turned off for the whole
    /// process; otherwise it goes to stderr.
    pub fn new(models: &ModelPaths, verbose: bool) -> Result<PocketSphinx, RecognizerError> {
        models.check()?;
        if !verbose {
            // SAFETY: a null stream is the documented way to turn the log off, and nothing
            // else in this process writes to the library's log settings concurrently.
            unsafe { sys::err_set_logfp(ptr::null_mut()) };
        }

        let config = parse_config(models)?;
        // SAFETY: `config` is a valid configuration from `cmd_ln_parse_r`. `ps_init` takes its
        // own reference, so the one held here is released in `Drop` or below.
        let decoder = unsafe { sys::ps_init(config.as_ptr()) };
        let Some(decoder) = NonNull::new(decoder) else {
            // SAFETY: `config` is valid and no decoder references it.
            unsafe { sys::cmd_ln_free_r(config.as_ptr()) };
            return Err(RecognizerError::Load {
                hmm: models.hmm.clone(),
                lm: models.lm.clone(),
                dict: models.dict.clone(),
            });
        };
        Ok(PocketSphinx { decoder, config })
    }

    /// Returns the hypothesis text, partial or final, with the decoder's own word separators.
    fn hypothesis(&mut self) -> String {
        let mut score: i32 = 0;
        // SAFETY: the decoder is valid; the returned string is copied before the next call.
        let text = unsafe { sys::ps_get_hyp(self.decoder.as_ptr(), &mut score) };
        if text.is_null() {
            return String::new();
        }
        // SAFETY: a non-null result is a NUL-terminated string owned by the decoder.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// Returns the words of the final hypothesis with their frames.
    fn segments(&mut self) -> Vec<RecognizedWord> {
        let mut words = Vec::new();
        // SAFETY: the decoder is valid; the iterator is run to its end, where
        // `ps_seg_next` frees it.
        let mut segment = unsafe { sys::ps_seg_iter(self.decoder.as_ptr()) };
        while !segment.is_null() {
            let (mut first, mut last): (c_int, c_int) = (0, 0);
            // SAFETY: `segment` is a live iterator; the word string is copied at once.
            let word = unsafe {
                sys::ps_seg_frames(segment, &mut first, &mut last);
                CStr::from_ptr(sys::ps_seg_word(segment))
                    .to_string_lossy()
                    .into_owned()
            };
            if let Some(text) = clean_word(&word) {
                words.push(RecognizedWord {
                    text,
                    start: frames_to_duration(first),
                    end: frames_to_duration(last + 1),
                });
            }
            // SAFETY: `segment` is live; the call returns the next one or frees it.
            segment = unsafe { sys::ps_seg_next(segment) };
        }
        words
    }
}

impl Recognizer for PocketSphinx {
    fn start_utterance(&mut self) -> Result<(), RecognizerError> {
        // SAFETY: the decoder is valid.
        let status = unsafe { sys::ps_start_utt(self.decoder.as_ptr()) };
        check_status("ps_start_utt", status)
    }

    fn process(&mut self, samples: &[i16]) -> Result<(), RecognizerError> {
        // SAFETY: the decoder is valid and the pointer and length describe `samples`, which
        // the call only reads.
        let status = unsafe {
            sys::ps_process_raw(self.decoder.as_ptr(), samples.as_ptr(), samples.len(), 0, 0)
        };
        check_status("ps_process_raw", status)
    }

    fn in_speech(&mut self) -> bool {
        // SAFETY: the decoder is valid.
        unsafe { sys::ps_get_in_speech(self.decoder.as_ptr()) != 0 }
    }

    fn partial_words(&mut self) -> Vec<String> {
        self.hypothesis()
            .split_whitespace()
            .filter_map(clean_word)
            .collect()
    }

    fn end_utterance(&mut self) -> Result<Vec<RecognizedWord>, RecognizerError> {
        // SAFETY: the decoder is valid.
        let status = unsafe { sys::ps_end_utt(self.decoder.as_ptr()) };
        check_status("ps_end_utt", status)?;
        let text = self.hypothesis();
        tracing::debug!(hypothesis = %text, "pocketsphinx final hypothesis");
        Ok(self.segments())
    }
}

impl Drop for PocketSphinx {
    fn drop(&mut self) {
        // SAFETY: both pointers are valid and owned by `self`, which is dropped once. The
        // decoder goes first because it holds a reference to the configuration.
        unsafe {
            sys::ps_free(self.decoder.as_ptr());
            sys::cmd_ln_free_r(self.config.as_ptr());
        }
    }
}

/// Builds the decoder configuration from the model paths.
fn parse_config(models: &ModelPaths) -> Result<NonNull<sys::cmd_ln_t>, RecognizerError> {
    let arguments = [
        ("-hmm", path_to_cstring(&models.hmm)?),
        ("-lm", path_to_cstring(&models.lm)?),
        ("-dict", path_to_cstring(&models.dict)?),
        ("-samprate", CString::from(c"16000")),
    ];
    let mut owned: Vec<CString> = Vec::with_capacity(arguments.len() * 2);
    for (name, value) in arguments {
        owned.push(CString::new(name).expect("argument names contain no NUL"));
        owned.push(value);
    }
    let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
    let argc = i32::try_from(argv.len()).expect("a handful of arguments");
    // SAFETY: `argv` points to `argc` NUL-terminated strings that outlive the call, which
    // copies the values it keeps. `ps_args` returns a static table.
    let config =
        unsafe { sys::cmd_ln_parse_r(ptr::null_mut(), sys::ps_args(), argc, argv.as_mut_ptr(), 1) };
    NonNull::new(config).ok_or(RecognizerError::Config)
}

fn path_to_cstring(path: &Path) -> Result<CString, RecognizerError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RecognizerError::InvalidPath {
        path: path.to_path_buf(),
    })
}

fn check_status(call: &'static str, status: c_int) -> Result<(), RecognizerError> {
    if status < 0 {
        return Err(RecognizerError::Call { call, status });
    }
    Ok(())
}

/// Drops fillers (`<s>`, `</s>`, `<sil>`, `[NOISE]`, `++BREATH++`) and strips the alternate
/// pronunciation mark of words such as `read(2)`.
fn clean_word(word: &str) -> Option<String> {
    let is_filler = word.starts_with('<') || word.starts_with('[') || word.starts_with("++");
    if is_filler || word.is_empty() {
        return None;
    }
    let base = match word.find('(') {
        Some(open) if word.ends_with(')') && open > 0 => &word[..open],
        _ => word,
    };
    Some(base.to_string())
}

fn frames_to_duration(frames: c_int) -> Duration {
    let frames = u64::try_from(frames).unwrap_or(0);
    Duration::from_millis(frames * 1000 / FRAMES_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_word_drops_fillers_and_marks() {
        assert_eq!(clean_word("<sil>"), None);
        assert_eq!(clean_word("</s>"), None);
        assert_eq!(clean_word("[NOISE]"), None);
        assert_eq!(clean_word("++BREATH++"), None);
        assert_eq!(clean_word("read(2)").as_deref(), Some("read"));
        assert_eq!(clean_word("company").as_deref(), Some("company"));
    }

    #[test]
    fn missing_model_names_path() {
        let mut models = ModelPaths::debian_en_us();
        models.lm = PathBuf::from("/nonexistent/en-us.lm.bin");
        let error = PocketSphinx::new(&models, false)
            .err()
            .expect("load must fail");
        let message = error.to_string();
        assert!(message.contains("/nonexistent/en-us.lm.bin"), "{message}");
        assert!(
            message.contains("apt-get install pocketsphinx-en-us"),
            "{message}"
        );
    }
}
