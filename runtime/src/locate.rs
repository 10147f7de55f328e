//! Finds the files the runtime uses by default, so it works right after cloning the
//! repository and in the folder the deploy script copies to the device.

use std::path::{Path, PathBuf};

/// Default model, relative to the repository root or the deploy folder.
pub const DEFAULT_MODEL: &str = "models/ptb-small/model.int8.onnx";
/// Default device profile, relative to the repository root or the deploy folder.
pub const DEFAULT_PROFILE: &str = "profiles/raspberry-pi-4.toml";

/// Returns the first existing file `relative` under the working folder, the executable's
/// folder and its two parents (`target/release/` in a checkout), and this source checkout.
/// When none exists it returns the path under the working folder, for the error message.
pub fn default_file(relative: &str) -> PathBuf {
    let mut roots: Vec<PathBuf> = vec![PathBuf::from(".")];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(3).map(Path::to_path_buf));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    roots
        .iter()
        .map(|root| root.join(relative))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(relative))
}
