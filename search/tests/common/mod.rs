//! Helpers shared by the command-line tests: run the `edgenas` binary and read its output.

#![allow(dead_code)] // Each test file uses a different subset.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Runs `edgenas` with `args` and waits for it, with `RUST_LOG` unset so logs stay at `info`.
pub fn edgenas<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgenas"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running edgenas")
}

/// Returns the repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `out` failed with status 1 and printed one error containing every needle.
pub fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in stderr: {err}");
    }
    assert_eq!(
        err.matches("error:").count(),
        1,
        "the error is printed once: {err}"
    );
}

/// Kills `child` as soon as `file` exists, or after two minutes; returns whether it existed.
pub fn kill_once_written(mut child: Child, file: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    file.exists()
}
