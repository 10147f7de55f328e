//! Contents of `export-report.json` and the report `edgenas export` prints.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::{LogitComparison, Perplexity};
use crate::export::ActivationQuantization;

/// A check with its measured value, its limit and whether it passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloatCheck {
    #[serde(flatten)]
    pub comparison: LogitComparison,
    pub tolerance: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerplexityCheck {
    pub split: String,
    pub batch_size: usize,
    pub float32: Perplexity,
    pub int8: Perplexity,
    /// `int8 / float32 - 1`.
    pub relative_change: f64,
    pub tolerance: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileSize {
    pub name: String,
    pub bytes: u64,
}

/// Mean tract time of one step at batch size 1 on the exporting machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub steps: usize,
    pub float32_ms: f64,
    pub int8_ms: f64,
}

/// Contents of `export-report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    pub checkpoint: PathBuf,
    pub arch: String,
    pub parameters: usize,
    pub opset: i64,
    pub ir_version: i64,
    pub int8_activations: ActivationQuantization,
    pub files: Vec<FileSize>,
    /// Size of the int8 file over the float32 file.
    pub int8_size_ratio: f64,
    pub float_check: FloatCheck,
    pub perplexity_check: PerplexityCheck,
    pub latency: Latency,
    /// Whether `--allow-accuracy-drop` let failed checks through.
    pub allow_accuracy_drop: bool,
}

impl ExportReport {
    pub fn passed(&self) -> bool {
        self.float_check.passed && self.perplexity_check.passed
    }

    /// Describes every failed check in one line, for errors and warnings.
    pub(crate) fn failures(&self) -> String {
        let mut failures = Vec::new();
        let f = &self.float_check;
        if !f.passed {
            failures.push(format!(
                "float32 logits differ from the reference by {:.3e}, more than {:.0e}",
                f.comparison.max_abs_logit_diff, f.tolerance
            ));
        }
        let p = &self.perplexity_check;
        if !p.passed {
            failures.push(format!(
                "int8 {} perplexity {:.2} is {:+.2}% from float32 {:.2}, beyond {:.0}%",
                p.split,
                p.int8.perplexity,
                p.relative_change * 100.0,
                p.float32.perplexity,
                p.tolerance * 100.0
            ));
        }
        failures.join("; ")
    }
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = |passed: bool| if passed { "passed" } else { "FAILED" };
        writeln!(
            f,
            "architecture          {} ({} parameters)",
            self.arch, self.parameters
        )?;
        writeln!(
            f,
            "ONNX                  opset {}, IR version {}",
            self.opset, self.ir_version
        )?;
        for file in &self.files {
            writeln!(
                f,
                "{:<21} {} bytes ({:.2} MB)",
                file.name,
                file.bytes,
                file.bytes as f64 / 1e6
            )?;
        }
        writeln!(
            f,
            "int8 / float32 size   {:.1}%",
            self.int8_size_ratio * 100.0
        )?;
        let c = &self.float_check;
        writeln!(
            f,
            "float32 vs reference  max |logit diff| {:.2e}, max |state diff| {:.2e} over {} steps x {} columns (limit {:.0e}): {}",
            c.comparison.max_abs_logit_diff,
            c.comparison.max_abs_state_diff,
            c.comparison.steps,
            c.comparison.batch_size,
            c.tolerance,
            verdict(c.passed)
        )?;
        let p = &self.perplexity_check;
        writeln!(
            f,
            "{} perplexity      float32 {:.2}, {} {:.2}, {:+.2}% over {} tokens (limit {:.0}%): {}",
            p.split,
            p.float32.perplexity,
            self.int8_activations.describe(),
            p.int8.perplexity,
            p.relative_change * 100.0,
            p.float32.tokens,
            p.tolerance * 100.0,
            verdict(p.passed)
        )?;
        let l = &self.latency;
        writeln!(
            f,
            "tract step, batch 1   float32 {:.3} ms, int8 {:.3} ms (mean of {} steps)",
            l.float32_ms, l.int8_ms, l.steps
        )
    }
}
