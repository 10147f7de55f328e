//! Declarations of the few pocketsphinx and sphinxbase C functions the recognizer calls.
//!
//! They follow the headers of pocketsphinx 0.8+5prealpha (`pocketsphinx/pocketsphinx.h`,
//! `sphinxbase/cmd_ln.h`, `sphinxbase/err.h`), the version in Debian 12 and Raspberry Pi OS.
//! pocketsphinx 5.0 changed this API (`ps_config_t` in place of `cmd_ln_t`), so these
//! declarations do not link against it. `build.rs` links the libraries.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

/// Opaque decoder (`ps_decoder_t`).
#[repr(C)]
pub struct ps_decoder_t {
    _opaque: [u8; 0],
}

/// Opaque configuration (`cmd_ln_t`), a set of parsed command-line arguments.
#[repr(C)]
pub struct cmd_ln_t {
    _opaque: [u8; 0],
}

/// Opaque argument definition table (`arg_t`).
#[repr(C)]
pub struct arg_t {
    _opaque: [u8; 0],
}

/// Opaque iterator over the word segments of a hypothesis (`ps_seg_t`).
#[repr(C)]
pub struct ps_seg_t {
    _opaque: [u8; 0],
}

extern "C" {
    /// Returns the static table of every argument the decoder accepts.
    pub fn ps_args() -> *const arg_t;

    /// Parses `argv` (names with their leading dash, then values) into a new configuration
    /// when `inout_cmdln` is null. Returns null on an unknown argument or a bad value.
    pub fn cmd_ln_parse_r(
        inout_cmdln: *mut cmd_ln_t,
        defn: *const arg_t,
        argc: i32,
        argv: *mut *mut c_char,
        strict: i32,
    ) -> *mut cmd_ln_t;

    /// Releases one reference to a configuration. Returns the references left.
    pub fn cmd_ln_free_r(cmdln: *mut cmd_ln_t) -> c_int;

    /// Loads the models named in `config` and returns a decoder, or null on failure. The
    /// decoder takes its own reference to `config`.
    pub fn ps_init(config: *mut cmd_ln_t) -> *mut ps_decoder_t;

    /// Releases the decoder. Returns the references left.
    pub fn ps_free(ps: *mut ps_decoder_t) -> c_int;

    pub fn ps_start_utt(ps: *mut ps_decoder_t) -> c_int;

    /// Decodes `n_samples` 16-bit samples. Returns the frames searched, or a negative value.
    pub fn ps_process_raw(
        ps: *mut ps_decoder_t,
        data: *const i16,
        n_samples: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;

    /// Returns 1 while the voice activity detector of the front end is inside speech.
    pub fn ps_get_in_speech(ps: *mut ps_decoder_t) -> u8;

    pub fn ps_end_utt(ps: *mut ps_decoder_t) -> c_int;

    /// Returns the best hypothesis so far (partial during an utterance, final after
    /// `ps_end_utt`), or null. The string belongs to the decoder and stays valid until the
    /// next decoder call.
    pub fn ps_get_hyp(ps: *mut ps_decoder_t, out_best_score: *mut i32) -> *const c_char;

    /// Returns an iterator over the word segments of the best hypothesis, or null when it has
    /// none.
    pub fn ps_seg_iter(ps: *mut ps_decoder_t) -> *mut ps_seg_t;

    /// Advances the iterator. Returns null, and frees the iterator, after the last segment.
    pub fn ps_seg_next(seg: *mut ps_seg_t) -> *mut ps_seg_t;

    /// Returns the word of the segment, with fillers such as `<sil>` and alternate
    /// pronunciation marks such as `(2)`. The string belongs to the decoder.
    pub fn ps_seg_word(seg: *mut ps_seg_t) -> *const c_char;

    /// Writes the first and last frame of the segment.
    pub fn ps_seg_frames(seg: *mut ps_seg_t, out_sf: *mut c_int, out_ef: *mut c_int);

    /// Sends the library's log to `stream`; null turns the log off. The setting is global.
    pub fn err_set_logfp(stream: *mut c_void);
}
