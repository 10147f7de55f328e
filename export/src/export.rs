//! The export stage: build both graphs, check them with tract, and write the export folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::calibrate::{calibrate, first_sentences};
use crate::checkpoint::Checkpoint;
use crate::checks::{
    compare_with_reference, perplexity, step_latency_ms, FLOAT_LOGIT_TOLERANCE,
    INT8_PERPLEXITY_TOLERANCE,
};
use crate::onnx::{self, Int8Scheme, IR_VERSION, OPSET};
use crate::reference::Reference;
pub use crate::report::{ExportReport, FileSize, FloatCheck, Latency, PerplexityCheck};
use crate::tract::TractModel;
use crate::{ExportError, Progress};

pub const FLOAT_FILE: &str = "model.f32.onnx";
pub const INT8_FILE: &str = "model.int8.onnx";
pub const REPORT_FILE: &str = "export-report.json";
/// Every file an export writes; a folder that contains only these is an earlier export.
pub const EXPORT_FILES: [&str; 3] = [FLOAT_FILE, INT8_FILE, REPORT_FILE];

/// Sentences of training text used to calibrate the static int8 scheme.
pub const CALIBRATION_SENTENCES: usize = 300;

/// Activation quantization of the int8 graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationQuantization {
    /// Weight-only int8: activations stay float32.
    Weights,
    Dynamic,
    Static,
}

impl ActivationQuantization {
    /// Phrase for the int8 graph in reports, such as "int8 weights, float32 activations".
    pub fn describe(self) -> &'static str {
        match self {
            ActivationQuantization::Weights => "int8 weights, float32 activations",
            ActivationQuantization::Dynamic => "int8, dynamic activation scales",
            ActivationQuantization::Static => "int8, calibrated activation scales",
        }
    }
}

/// Settings of an export. `Default` gives the settings of `edgenas export`.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub activations: ActivationQuantization,
    /// Write the files even when a check fails.
    pub allow_accuracy_drop: bool,
    /// Columns and steps of the float32 logit check.
    pub check_batch_size: usize,
    pub check_steps: usize,
    /// Columns of the perplexity check, as `edgenas evaluate --batch-size`.
    pub eval_batch_size: usize,
    /// Steps timed at batch size 1 for the latency figures.
    pub latency_steps: usize,
    /// Limits of the two checks; `Default` sets `FLOAT_LOGIT_TOLERANCE` and
    /// `INT8_PERPLEXITY_TOLERANCE`.
    pub float_logit_tolerance: f64,
    pub int8_perplexity_tolerance: f64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            activations: ActivationQuantization::Weights,
            allow_accuracy_drop: false,
            check_batch_size: 2,
            check_steps: 200,
            eval_batch_size: 10,
            latency_steps: 300,
            float_logit_tolerance: FLOAT_LOGIT_TOLERANCE,
            int8_perplexity_tolerance: INT8_PERPLEXITY_TOLERANCE,
        }
    }
}

/// Token ids the checks read, mapped through the checkpoint's vocabulary.
pub struct ExportText<'a> {
    /// The validation split: the logit check reads its start, the perplexity check all of it.
    pub valid: &'a [i64],
    /// Training text for the static scheme; its first `CALIBRATION_SENTENCES` sentences are
    /// used. Unused by the dynamic scheme.
    pub calibration: Option<&'a [i64]>,
}

/// Exports `checkpoint` into `out`: builds the float32 and int8 graphs, runs the checks, and
/// writes `model.f32.onnx`, `model.int8.onnx` and `export-report.json`.
///
/// Nothing is written unless every step succeeds: the files go to a temporary folder beside
/// `out` and are renamed into place at the end. `out` must be absent, empty or an earlier
/// export. A failed check is an error unless `allow_accuracy_drop` is set.
pub fn export(
    checkpoint: &Checkpoint,
    out: &Path,
    text: &ExportText,
    options: &ExportOptions,
    progress: &mut dyn Progress,
) -> Result<ExportReport, ExportError> {
    check_out(out)?;
    let arch = &checkpoint.arch;
    let (h, v) = (arch.hidden_size, arch.vocab_size);
    let reference = Reference::new(arch, &checkpoint.weights);

    let scheme = match options.activations {
        ActivationQuantization::Weights => Int8Scheme::WeightsOnly,
        ActivationQuantization::Dynamic => Int8Scheme::Dynamic,
        ActivationQuantization::Static => {
            let ids = text.calibration.ok_or(ExportError::MissingCalibration)?;
            let eos = checkpoint.vocab.eos_id() as i64;
            let ids = first_sentences(ids, eos, CALIBRATION_SENTENCES);
            tracing::info!("calibrating int8 activations on {} tokens", ids.len());
            Int8Scheme::Static(calibrate(&reference, arch, ids)?)
        }
    };
    let float_bytes = onnx::float_model(checkpoint);
    let int8_bytes = onnx::int8_model(checkpoint, &scheme);
    let float_model = TractModel::load(&float_bytes, h, "float32")?;
    let int8_model = TractModel::load(&int8_bytes, h, "int8")?;

    tracing::info!(
        "comparing float32 logits with the reference over {} steps",
        options.check_steps
    );
    let comparison = compare_with_reference(
        &float_model,
        &reference,
        h,
        text.valid,
        options.check_batch_size,
        options.check_steps,
    )?;
    let float_check = FloatCheck {
        passed: comparison.max_abs_logit_diff <= options.float_logit_tolerance,
        comparison,
        tolerance: options.float_logit_tolerance,
    };

    let batch = options.eval_batch_size;
    let float_ppl = perplexity(
        &float_model,
        text.valid,
        batch,
        v,
        h,
        "float32 valid",
        progress,
    )?;
    let int8_ppl = perplexity(&int8_model, text.valid, batch, v, h, "int8 valid", progress)?;
    let relative_change = int8_ppl.perplexity / float_ppl.perplexity - 1.0;
    let perplexity_check = PerplexityCheck {
        split: "valid".to_string(),
        batch_size: batch,
        float32: float_ppl,
        int8: int8_ppl,
        relative_change,
        passed: relative_change.abs() <= options.int8_perplexity_tolerance,
        tolerance: options.int8_perplexity_tolerance,
    };

    let latency = Latency {
        steps: options.latency_steps,
        float32_ms: step_latency_ms(&float_model, text.valid, h, options.latency_steps)?,
        int8_ms: step_latency_ms(&int8_model, text.valid, h, options.latency_steps)?,
    };

    let report = ExportReport {
        checkpoint: checkpoint.path.clone(),
        arch: arch.summary(),
        parameters: arch.num_parameters(),
        opset: OPSET,
        ir_version: IR_VERSION,
        int8_activations: options.activations,
        files: vec![
            FileSize {
                name: FLOAT_FILE.to_string(),
                bytes: float_bytes.len() as u64,
            },
            FileSize {
                name: INT8_FILE.to_string(),
                bytes: int8_bytes.len() as u64,
            },
        ],
        int8_size_ratio: int8_bytes.len() as f64 / float_bytes.len() as f64,
        float_check,
        perplexity_check,
        latency,
        allow_accuracy_drop: options.allow_accuracy_drop,
    };
    if !report.passed() {
        if !options.allow_accuracy_drop {
            return Err(ExportError::ChecksFailed {
                failures: report.failures(),
            });
        }
        tracing::warn!(
            "writing despite failed checks (--allow-accuracy-drop): {}",
            report.failures()
        );
    }

    let json = serde_json::to_string_pretty(&report).expect("the report always serializes");
    write_out(
        out,
        &[
            (FLOAT_FILE, &float_bytes),
            (INT8_FILE, &int8_bytes),
            (REPORT_FILE, format!("{json}\n").as_bytes()),
        ],
    )?;
    Ok(report)
}

/// Checks that `out` is absent, an empty folder or an earlier export, so an export never
/// overwrites files it did not write.
pub fn check_out(out: &Path) -> Result<(), ExportError> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(ExportError::OutNotAFolder {
            path: out.to_path_buf(),
        });
    }
    let read_error = |source| ExportError::Read {
        path: out.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(out).map_err(read_error)? {
        names.push(
            entry
                .map_err(read_error)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    if let Some(other) = names.iter().find(|n| !EXPORT_FILES.contains(&n.as_str())) {
        return Err(ExportError::OutNotEmpty {
            path: out.to_path_buf(),
            entry: other.clone(),
        });
    }
    if !names.is_empty() && !names.iter().any(|n| n == REPORT_FILE) {
        return Err(ExportError::OutNotEmpty {
            path: out.to_path_buf(),
            entry: names[0].clone(),
        });
    }
    Ok(())
}

/// Writes `files` into a temporary folder beside `out`, then renames them into `out`.
fn write_out(out: &Path, files: &[(&str, &[u8])]) -> Result<(), ExportError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.export-tmp-{}", std::process::id()));
    let result = stage_and_move(out, &staging, files);
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn stage_and_move(out: &Path, staging: &Path, files: &[(&str, &[u8])]) -> Result<(), ExportError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Write { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(write_error(staging))?;
    }
    std::fs::create_dir_all(staging).map_err(write_error(staging))?;
    for (name, bytes) in files {
        let path = staging.join(name);
        let mut file = std::fs::File::create(&path).map_err(write_error(&path))?;
        file.write_all(bytes).map_err(write_error(&path))?;
        file.sync_all().map_err(write_error(&path))?;
    }
    if !out.exists() {
        return std::fs::rename(staging, out).map_err(write_error(out));
    }
    // An empty folder or an earlier export: replace the files one by one. The report goes
    // last, so a folder with a report always has both models of that report.
    for (name, _) in files {
        let target = out.join(name);
        std::fs::rename(staging.join(name), &target).map_err(write_error(&target))?;
    }
    Ok(())
}
