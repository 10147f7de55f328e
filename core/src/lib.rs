//! Types shared by every edgenas stage: the architecture description (`arch.json`), the
//! vocabulary file (`vocab.txt`), device profiles and the analytic cost model.
//!
//! This crate never depends on libtorch, so the export and runtime crates can use it on a
//! device that has no training stack.

pub mod arch;
pub mod cost;
pub mod profile;
pub mod vocab;

pub use arch::{Activation, Arch, ArchError, Dropout, Node};
pub use cost::{estimate, BudgetCheck, CostReport, ElementwiseOps, LatencySource, WeightMemory};
pub use profile::{
    Budgets, Deploy, Device, Dtype, EnergyTable, LatencyModel, MeasuredLatency, Profile,
    ProfileError, SramTier,
};
pub use vocab::{Vocab, VocabError};

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder, fsync and rename, so
/// that readers and a stopped process only ever see the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // The temporary file is only litter once the write failed.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
