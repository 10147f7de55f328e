//! The pipeline's report: `report.md` and a self-contained `report.html` with SVG plots.
//!
//! The pipeline gathers what each stage wrote into a [`ReportInput`]; this module only renders
//! it, so it can be tested on made-up figures.

mod plot;
mod render;

use std::path::{Path, PathBuf};

use edgenas_core::cost::CostReport;

pub use plot::{pareto_svg, search_svg};
pub use render::{html, markdown};

/// File names the report writes in the pipeline's output folder.
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";
pub const PARETO_SVG: &str = "pareto.svg";
pub const SEARCH_SVG: &str = "search.svg";

/// Everything the report shows. Optional parts are stages that did not run (or failed).
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// Device profile name, such as "Raspberry Pi 4 Model B".
    pub profile_name: String,
    pub profile_path: PathBuf,
    pub corpus: PathBuf,
    /// Pipeline preset name, such as "quick".
    pub preset: String,
    pub seed: u64,
    /// The chosen architecture; `None` when no candidate met every budget. It is the same cell
    /// as the candidate with `chosen` set.
    pub chosen: Option<ChosenModel>,
    /// Reason nothing was chosen, when `chosen` is `None`.
    pub no_fit: Option<String>,
    /// Every candidate evaluated after the search, the chosen one included.
    pub candidates: Vec<CandidatePoint>,
    /// One entry per search epoch.
    pub search_epochs: Vec<SearchEpochPoint>,
    pub search_strategy: String,
    pub search_reward: String,
    pub training: Option<TrainingResult>,
    pub export: Option<ExportResult>,
    pub transcript: Option<TranscriptResult>,
    /// Wall time of each stage in this and earlier (resumed) runs of the pipeline.
    pub stages: Vec<StageTime>,
}

#[derive(Clone, Debug)]
pub struct ChosenModel {
    /// One-line summary of the cell, such as `h=128 tanh 0>tanh 0>relu`.
    pub summary: String,
    pub parameters: u64,
    /// Validation perplexity under the shared weights of the search.
    pub shared_valid_perplexity: f64,
    /// Costs on the profile at its deploy dtype, with one check per budget.
    pub costs: CostReport,
}

/// One architecture evaluated after the search.
#[derive(Clone, Debug)]
pub struct CandidatePoint {
    pub summary: String,
    /// Validation perplexity under the shared weights of the search.
    pub valid_perplexity: f64,
    pub within_budget: bool,
    pub on_front: bool,
    pub chosen: bool,
    pub costs: CostReport,
}

/// One finished search epoch.
#[derive(Clone, Debug)]
pub struct SearchEpochPoint {
    pub epoch: usize,
    pub shared_train_perplexity: f64,
    /// Geometric mean validation perplexity of the cells the controller sampled; `None` for
    /// random search.
    pub sampled_valid_perplexity: Option<f64>,
    /// Mean reward of the controller's samples; `None` for random search.
    pub mean_reward: Option<f64>,
    /// Share (0 to 1) of sampled cells within every budget.
    pub within_budget: f64,
}

/// The chosen cell trained from scratch.
#[derive(Clone, Debug)]
pub struct TrainingResult {
    pub train_perplexity: f64,
    pub valid_perplexity: f64,
    pub test_perplexity: f64,
    pub epochs: usize,
    pub best_epoch: usize,
    /// Initial learning rate of the run that produced the model.
    pub lr: f64,
    /// Learning rates of earlier attempts that diverged, in order.
    pub diverged_lrs: Vec<f64>,
    pub train_seconds: f64,
    /// Reason training stopped, as a phrase such as "reached the epoch limit of 40".
    pub stop_reason: String,
}

/// The export checks and file sizes.
#[derive(Clone, Debug)]
pub struct ExportResult {
    pub float32_file: String,
    pub float32_bytes: u64,
    pub int8_file: String,
    pub int8_bytes: u64,
    /// Largest logit difference between the float32 ONNX graph and the trained model.
    pub max_abs_logit_diff: f64,
    pub logit_tolerance: f64,
    pub float32_perplexity: f64,
    pub int8_perplexity: f64,
    /// `int8 / float32 - 1`.
    pub int8_relative_change: f64,
    pub int8_tolerance: f64,
    pub passed: bool,
    /// Mean tract time of one step at batch size 1 on this machine.
    pub float32_ms: f64,
    pub int8_ms: f64,
}

/// A transcript replayed through the int8 model.
#[derive(Clone, Debug)]
pub struct TranscriptResult {
    pub path: PathBuf,
    /// Source of the transcript, in a few words.
    pub description: String,
    pub utterances: usize,
    pub tokens: usize,
    pub unknown: usize,
    /// Shares from 0 to 1, like `keystroke_savings`.
    pub top1: f64,
    pub top3: f64,
    pub top5: f64,
    pub keystroke_savings: f64,
    pub top_k: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub budget_ms: f64,
    pub over_budget: usize,
}

#[derive(Clone, Debug)]
pub struct StageTime {
    pub name: String,
    pub seconds: f64,
    /// The stage's output already existed, so this run skipped it.
    pub skipped: bool,
}

/// Writes `report.md`, `report.html`, `pareto.svg` and `search.svg` into `dir`, each
/// atomically. Returns the path of `report.html`.
pub fn write(input: &ReportInput, dir: &Path) -> std::io::Result<PathBuf> {
    let pareto = pareto_svg(input);
    let search = search_svg(input);
    edgenas_core::write_atomic(&dir.join(PARETO_SVG), pareto.as_bytes())?;
    edgenas_core::write_atomic(&dir.join(SEARCH_SVG), search.as_bytes())?;
    edgenas_core::write_atomic(&dir.join(REPORT_MD), markdown(input).as_bytes())?;
    let page = html(input, &pareto, &search);
    let path = dir.join(REPORT_HTML);
    edgenas_core::write_atomic(&path, page.as_bytes())?;
    Ok(path)
}
