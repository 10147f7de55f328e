//! The report as Markdown and as a self-contained HTML page.
//!
//! Both are rendered from one list of blocks, so they always show the same content. Text from
//! the input is escaped for each format when it is rendered, never when the blocks are built.

use std::fmt::Write;

use edgenas_core::cost::{CostReport, LatencySource};

use super::{
    ChosenModel, ExportResult, ReportInput, TrainingResult, TranscriptResult, PARETO_SVG,
    SEARCH_SVG,
};

/// Renders `report.md`. The plots are linked as `pareto.svg` and `search.svg` beside it.
pub fn markdown(input: &ReportInput) -> String {
    let mut out = String::new();
    for block in document(input) {
        write_markdown_block(&mut out, &block);
    }
    out
}

/// Renders `report.html`, one page with an inline style sheet and both SVG plots inline, so it
/// needs no other file or network access.
pub fn html(input: &ReportInput, pareto_svg: &str, search_svg: &str) -> String {
    let blocks = document(input);
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Heading(1, spans) => Some(plain_text(spans)),
            _ => None,
        })
        .unwrap_or_default();

    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", escape_html(&title));
    let _ = writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>\n<main>");
    for block in &blocks {
        write_html_block(&mut out, block, pareto_svg, search_svg);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "\
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 1rem 1.5rem 3rem; line-height: 1.45; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f4f4; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, monospace; background: #f4f4f4; padding: 0 0.2rem; }
strong { color: #b00020; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
";

// ---------------------------------------------------------------------------------------------
// Document model

/// Inline content of a heading, paragraph, list item or table cell.
enum Span {
    Text(String),
    Code(String),
    /// A warning, such as a budget that is not met.
    Strong(String),
}

#[derive(Clone, Copy)]
enum Figure {
    Pareto,
    Search,
}

struct Table {
    header: Vec<&'static str>,
    /// Whether each column contains numbers, which are right-aligned.
    numeric: Vec<bool>,
    rows: Vec<Vec<Vec<Span>>>,
}

enum Block {
    Heading(u8, Vec<Span>),
    Paragraph(Vec<Span>),
    List(Vec<Vec<Span>>),
    Table(Table),
    Figure(Figure),
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

fn strong(s: impl Into<String>) -> Span {
    Span::Strong(s.into())
}

fn cell(s: impl Into<String>) -> Vec<Span> {
    vec![text(s)]
}

fn paragraph(s: impl Into<String>) -> Block {
    Block::Paragraph(vec![text(s)])
}

fn heading(s: &str) -> Block {
    Block::Heading(2, vec![text(s)])
}

/// Builds a table from `(header, numeric)` columns and rows of cells.
fn table(columns: &[(&'static str, bool)], rows: Vec<Vec<Vec<Span>>>) -> Block {
    Block::Table(Table {
        header: columns.iter().map(|c| c.0).collect(),
        numeric: columns.iter().map(|c| c.1).collect(),
        rows,
    })
}

fn plain_text(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) | Span::Code(t) | Span::Strong(t) => t.as_str(),
        })
        .collect()
}

fn document(input: &ReportInput) -> Vec<Block> {
    let mut doc = Vec::new();
    push_title(&mut doc, input);
    push_choice(&mut doc, input);
    push_training(&mut doc, input.training.as_ref());
    push_export(&mut doc, input.export.as_ref(), input.chosen.as_ref());
    push_transcript(&mut doc, input.transcript.as_ref());
    push_search(&mut doc, input);
    push_front(&mut doc, input);
    push_stages(&mut doc, input);
    doc
}

// ---------------------------------------------------------------------------------------------
// Sections

fn push_title(doc: &mut Vec<Block>, input: &ReportInput) {
    let title = match &input.chosen {
        Some(model) => vec![
            text("edgenas report: "),
            code(&model.summary),
            text(format!(" for {}", input.profile_name)),
        ],
        None => vec![text(format!(
            "edgenas report: no architecture fits {}",
            input.profile_name
        ))],
    };
    doc.push(Block::Heading(1, title));
    doc.push(Block::Paragraph(vec![
        text(format!("Profile {} from ", input.profile_name)),
        code(input.profile_path.display().to_string()),
        text(", corpus "),
        code(input.corpus.display().to_string()),
        text(format!(", preset {}, seed {}.", input.preset, input.seed)),
    ]));
}

fn push_choice(doc: &mut Vec<Block>, input: &ReportInput) {
    doc.push(heading("Chosen architecture"));
    let Some(model) = &input.chosen else {
        let reason = match &input.no_fit {
            Some(reason) => reason.trim_end_matches('.').to_string(),
            None if input.candidates.is_empty() => "no candidates were evaluated".to_string(),
            None => "no reason was recorded".to_string(),
        };
        doc.push(paragraph(format!(
            "No candidate met every budget: {reason}."
        )));
        return;
    };

    doc.push(Block::Paragraph(vec![
        code(&model.summary),
        text(format!(
            ": {} parameters, validation perplexity {} under the shared weights of the search.",
            count(model.parameters),
            perplexity(model.shared_valid_perplexity)
        )),
    ]));
    doc.push(paragraph(costs_note(&model.costs)));
    doc.push(budget_table(model));
    if !model.costs.all_met() {
        doc.push(Block::Paragraph(vec![strong(
            "The chosen model does not meet every budget.",
        )]));
    }
}

fn costs_note(costs: &CostReport) -> String {
    let latency = match costs.latency_source {
        LatencySource::Measured => "measured on the board",
        LatencySource::Estimate => "an estimate from the profile's throughput figures",
    };
    format!(
        "Costs on {} at {}. The latency is {latency}, and the energy is an estimate from \
         per-operation figures.",
        costs.profile, costs.dtype
    )
}

/// Lists every budget check of the chosen model, then the costs that have no budget.
fn budget_table(model: &ChosenModel) -> Block {
    let costs = &model.costs;
    let mut rows: Vec<Vec<Vec<Span>>> = costs
        .checks
        .iter()
        .map(|check| {
            let verdict = if check.met {
                text("met")
            } else {
                strong("NOT met")
            };
            vec![
                cell(check.name),
                cell(check_value(check.value, check.unit)),
                cell(check_value(check.budget, check.unit)),
                vec![verdict],
            ]
        })
        .collect();

    let all_costs = [
        ("parameters", count(costs.parameters)),
        ("model size", bytes(costs.model_bytes)),
        ("RAM", bytes(costs.ram_bytes)),
        ("MACs per word", count(costs.macs_per_word)),
        (
            "energy",
            format!("{} µJ/word", sig3(costs.energy_uj_per_word)),
        ),
        (
            "latency",
            format!("{} ms/word", sig3(costs.latency_ms_per_word)),
        ),
    ];
    for (name, value) in all_costs {
        if !costs.checks.iter().any(|c| c.name == name) {
            rows.push(vec![cell(name), cell(value), cell("no budget"), cell("-")]);
        }
    }

    table(
        &[
            ("cost", false),
            ("chosen model", true),
            ("budget", true),
            ("result", false),
        ],
        rows,
    )
}

fn push_training(doc: &mut Vec<Block>, training: Option<&TrainingResult>) {
    doc.push(heading("Trained model"));
    let Some(t) = training else {
        doc.push(paragraph("The training stage did not run."));
        return;
    };

    let diverged = if t.diverged_lrs.is_empty() {
        "No attempt diverged.".to_string()
    } else {
        let rates: Vec<String> = t.diverged_lrs.iter().map(|lr| format!("{lr}")).collect();
        format!(
            "Earlier attempts at learning rate {} diverged and were restarted at a lower rate.",
            rates.join(", ")
        )
    };
    doc.push(Block::List(vec![
        cell(format!(
            "Test perplexity {}, validation {}, training {}.",
            perplexity(t.test_perplexity),
            perplexity(t.valid_perplexity),
            perplexity(t.train_perplexity)
        )),
        cell(format!(
            "{}, best validation perplexity at epoch {}. Stop reason: {}.",
            plural(t.epochs, "epoch", "epochs"),
            t.best_epoch,
            t.stop_reason.trim_end_matches('.')
        )),
        cell(format!("Initial learning rate {}. {diverged}", t.lr)),
        cell(format!("Training took {}.", duration(t.train_seconds))),
    ]));
}

fn push_export(doc: &mut Vec<Block>, export: Option<&ExportResult>, chosen: Option<&ChosenModel>) {
    doc.push(heading("Export"));
    let Some(e) = export else {
        doc.push(paragraph("The export stage did not run."));
        return;
    };

    doc.push(table(
        &[("dtype", false), ("file", false), ("size", true)],
        vec![
            vec![
                cell("float32"),
                vec![code(&e.float32_file)],
                cell(bytes(e.float32_bytes)),
            ],
            vec![
                cell("int8"),
                vec![code(&e.int8_file)],
                cell(bytes(e.int8_bytes)),
            ],
        ],
    ));

    let logits_ok = e.max_abs_logit_diff <= e.logit_tolerance;
    let int8_ok = e.int8_relative_change.abs() <= e.int8_tolerance;
    doc.push(table(
        &[
            ("check", false),
            ("value", true),
            ("tolerance", true),
            ("result", false),
        ],
        vec![
            vec![
                cell("largest logit difference, float32 ONNX against the trained model"),
                cell(format!("{:.2e}", e.max_abs_logit_diff)),
                cell(format!("{:.2e}", e.logit_tolerance)),
                vec![pass_or_fail(logits_ok)],
            ],
            vec![
                cell(format!(
                    "int8 perplexity change ({} at float32, {} at int8)",
                    perplexity(e.float32_perplexity),
                    perplexity(e.int8_perplexity)
                )),
                cell(format!("{:+.2}%", e.int8_relative_change * 100.0)),
                cell(format!("±{:.2}%", e.int8_tolerance * 100.0)),
                vec![pass_or_fail(int8_ok)],
            ],
        ],
    ));

    // The cost model counts weights and scales, but the file also contains the vocabulary and
    // the architecture. So the file itself is checked against the model-size budget too.
    let budget = chosen.and_then(|c| c.costs.checks.iter().find(|k| k.name == "model size"));
    if let Some(k) = budget {
        let within = e.int8_bytes as f64 <= k.budget;
        doc.push(Block::Paragraph(vec![
            text(format!(
                "The int8 file, with the vocabulary and architecture stored in it, is {}: ",
                bytes(e.int8_bytes)
            )),
            if within {
                text(format!("within the model-size budget of {}.", bytes(k.budget as u64)))
            } else {
                strong(format!("over the model-size budget of {}.", bytes(k.budget as u64)))
            },
        ]));
    }
    doc.push(paragraph(format!(
        "tract runs one step at batch size 1 in {} at float32 and {} at int8, timed on the \
         machine that ran the export.",
        milliseconds(e.float32_ms),
        milliseconds(e.int8_ms)
    )));
    if e.passed {
        doc.push(paragraph("Every export check passed."));
    } else {
        doc.push(Block::Paragraph(vec![strong("The export checks failed.")]));
    }
}

fn pass_or_fail(ok: bool) -> Span {
    if ok {
        text("pass")
    } else {
        strong("FAIL")
    }
}

fn push_transcript(doc: &mut Vec<Block>, transcript: Option<&TranscriptResult>) {
    doc.push(heading("Transcript replay"));
    let Some(t) = transcript else {
        doc.push(paragraph("The transcript stage did not run."));
        return;
    };

    doc.push(Block::Paragraph(vec![
        text(format!("Transcript: {} (", t.description.trim_end_matches('.'))),
        code(t.path.display().to_string()),
        text(format!(
            "): {}, {}, {} of them outside the vocabulary, replayed through the int8 model. \
             The times are measured on the machine that ran the pipeline, not on the device, \
             and are compared with the device's budget.",
            plural(t.utterances, "utterance", "utterances"),
            plural(t.tokens, "word", "words"),
            count(t.unknown as u64)
        )),
    ]));

    let over = if t.over_budget == 0 {
        text("none")
    } else {
        strong(format!(
            "{} of {}",
            count(t.over_budget as u64),
            count(t.tokens as u64)
        ))
    };
    doc.push(table(
        &[("measure", false), ("value", true)],
        vec![
            vec![cell("top-1 accuracy"), cell(percent(t.top1))],
            vec![cell("top-3 accuracy"), cell(percent(t.top3))],
            vec![cell("top-5 accuracy"), cell(percent(t.top5))],
            vec![
                cell(format!(
                    "keystroke savings with {} predictions shown",
                    t.top_k
                )),
                cell(percent(t.keystroke_savings)),
            ],
            vec![
                cell("latency per word, median"),
                cell(milliseconds(t.median_ms)),
            ],
            vec![cell("latency per word, p99"), cell(milliseconds(t.p99_ms))],
            vec![cell("latency per word, max"), cell(milliseconds(t.max_ms))],
            vec![cell("latency budget"), cell(milliseconds(t.budget_ms))],
            vec![cell("words over the latency budget"), vec![over]],
        ],
    ));
}

fn push_search(doc: &mut Vec<Block>, input: &ReportInput) {
    doc.push(heading("Search"));
    let epochs = &input.search_epochs;
    if epochs.is_empty() && input.candidates.is_empty() {
        doc.push(paragraph("The search stage did not run."));
        return;
    }

    doc.push(Block::Paragraph(vec![
        text("Strategy "),
        code(&input.search_strategy),
        text(", reward "),
        code(&input.search_reward),
        text(format!(", {} epochs.", epochs.len())),
    ]));
    if epochs.is_empty() {
        doc.push(paragraph("No search epochs were recorded."));
        return;
    }

    doc.push(Block::Figure(Figure::Search));
    let rows = epochs
        .iter()
        .map(|e| {
            vec![
                cell(e.epoch.to_string()),
                cell(perplexity(e.shared_train_perplexity)),
                cell(
                    e.sampled_valid_perplexity
                        .map_or("-".to_string(), perplexity),
                ),
                cell(e.mean_reward.map_or("-".to_string(), |r| format!("{r:.4}"))),
                cell(percent(e.within_budget)),
            ]
        })
        .collect();
    doc.push(table(
        &[
            ("epoch", true),
            ("shared model training ppl", true),
            ("sampled cells validation ppl", true),
            ("mean reward", true),
            ("sampled cells within budget", true),
        ],
        rows,
    ));
}

fn push_front(doc: &mut Vec<Block>, input: &ReportInput) {
    doc.push(heading("Pareto front"));
    let candidates = &input.candidates;
    if candidates.is_empty() {
        doc.push(paragraph(
            "No candidates were evaluated, so there is no Pareto front.",
        ));
        return;
    }

    let within = candidates.iter().filter(|c| c.within_budget).count();
    let mut front: Vec<_> = candidates.iter().filter(|c| c.on_front).collect();
    let evaluated = match candidates.len() {
        1 => "1 candidate was".to_string(),
        n => format!("{n} candidates were"),
    };
    doc.push(paragraph(format!(
        "{evaluated} evaluated with the shared weights after the search. {within} of them \
         meet every budget, and {} on the Pareto front of validation perplexity against \
         every cost.",
        match front.len() {
            1 => "1 is".to_string(),
            n => format!("{n} are"),
        }
    )));
    doc.push(Block::Figure(Figure::Pareto));
    if front.is_empty() {
        return;
    }

    front.sort_by(|a, b| a.valid_perplexity.total_cmp(&b.valid_perplexity));
    let rows = front
        .iter()
        .map(|c| {
            let mut architecture = vec![code(&c.summary)];
            if c.chosen {
                architecture.push(text(" (chosen)"));
            }
            vec![
                architecture,
                cell(perplexity(c.valid_perplexity)),
                cell(count(c.costs.parameters)),
                cell(count(c.costs.model_bytes)),
                cell(sig3(c.costs.latency_ms_per_word)),
                cell(sig3(c.costs.energy_uj_per_word)),
                cell(if c.within_budget { "yes" } else { "no" }),
            ]
        })
        .collect();
    doc.push(table(
        &[
            ("architecture", false),
            ("validation ppl", true),
            ("parameters", true),
            ("model bytes", true),
            ("ms/word", true),
            ("µJ/word", true),
            ("within budget", false),
        ],
        rows,
    ));
}

fn push_stages(doc: &mut Vec<Block>, input: &ReportInput) {
    doc.push(heading("Stage times"));
    if input.stages.is_empty() {
        doc.push(paragraph("No stage times were recorded."));
        return;
    }

    let mut rows: Vec<Vec<Vec<Span>>> = input
        .stages
        .iter()
        .map(|s| {
            let note = if s.skipped {
                "skipped (already done)"
            } else {
                "ran"
            };
            vec![cell(&s.name), cell(duration(s.seconds)), cell(note)]
        })
        .collect();
    // A stage whose time was not recorded (its bookkeeping file was deleted) makes the total
    // unknown as well.
    let total: f64 = input.stages.iter().map(|s| s.seconds).sum();
    rows.push(vec![cell("total"), cell(duration(total)), cell("")]);
    doc.push(paragraph(
        "Wall time of each stage, in this run or in the earlier run that it resumed.",
    ));
    doc.push(table(
        &[("stage", false), ("wall time", true), ("this run", false)],
        rows,
    ));
}

// ---------------------------------------------------------------------------------------------
// Number formats

/// Formats a count with thousands separators, such as `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let lead = (digits.len() - 1) % 3 + 1;
    let mut out = digits[..lead].to_string();
    let mut start = lead;
    while start < digits.len() {
        out.push(',');
        out.push_str(&digits[start..start + 3]);
        start += 3;
    }
    out
}

/// Formats a byte count with separators and in KiB or MiB, such as `1,572,864 bytes (1.50 MiB)`.
fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = n as f64;
    if value >= KIB * KIB {
        format!("{} bytes ({:.2} MiB)", count(n), value / (KIB * KIB))
    } else if value >= KIB {
        format!("{} bytes ({:.1} KiB)", count(n), value / KIB)
    } else {
        format!("{} bytes", count(n))
    }
}

fn perplexity(p: f64) -> String {
    format!("{p:.2}")
}

/// Formats `x` to three significant figures, or all its integer digits when it is 1000 or more.
fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

/// `n` with its noun, singular for one.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", count(n as u64), if n == 1 { one } else { many })
}

fn milliseconds(ms: f64) -> String {
    format!("{} ms", sig3(ms))
}

/// Formats a share from 0 to 1 as a percentage with one decimal.
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        "unknown".to_string()
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

/// Formats a budget check's value or budget in its unit: counts and bytes with separators,
/// the rest to three significant figures.
fn check_value(value: f64, unit: &str) -> String {
    let as_count = || {
        if value.is_finite() && value >= 0.0 && value < u64::MAX as f64 {
            Some(value.round() as u64)
        } else {
            None
        }
    };
    match (unit, as_count()) {
        ("", Some(n)) => count(n),
        ("bytes", Some(n)) => bytes(n),
        ("uJ/word", _) => format!("{} µJ/word", sig3(value)),
        ("", None) => sig3(value),
        _ => format!("{} {unit}", sig3(value)),
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn write_markdown_block(out: &mut String, block: &Block) {
    match block {
        Block::Heading(level, spans) => {
            let hashes = "#".repeat(usize::from(*level));
            let _ = writeln!(out, "{hashes} {}\n", markdown_spans(spans, false));
        }
        Block::Paragraph(spans) => {
            let _ = writeln!(out, "{}\n", markdown_spans(spans, false));
        }
        Block::List(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", markdown_spans(item, false));
            }
            out.push('\n');
        }
        Block::Table(t) => {
            let header: Vec<String> = t.header.iter().map(|h| escape_markdown(h)).collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let rule: Vec<&str> = t
                .numeric
                .iter()
                .map(|&numeric| if numeric { "---:" } else { "---" })
                .collect();
            let _ = writeln!(out, "|{}|", rule.join("|"));
            for row in &t.rows {
                let cells: Vec<String> = row.iter().map(|c| markdown_spans(c, true)).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
        Block::Figure(Figure::Pareto) => {
            let _ = writeln!(out, "![Pareto front]({PARETO_SVG})\n");
        }
        Block::Figure(Figure::Search) => {
            let _ = writeln!(out, "![Search]({SEARCH_SVG})\n");
        }
    }
}

/// Renders spans on one line. In a table cell, a `|` inside a code span is escaped too, as
/// GitHub-flavoured Markdown requires.
fn markdown_spans(spans: &[Span], in_table: bool) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text(t) => out.push_str(&escape_markdown(t)),
            Span::Strong(t) => {
                let _ = write!(out, "**{}**", escape_markdown(t));
            }
            Span::Code(t) => {
                let mut content = one_line(t);
                if in_table {
                    content = content.replace('|', "\\|");
                }
                out.push_str(&code_span(&content));
            }
        }
    }
    out
}

/// Wraps `content` in enough backticks that none inside closes the span.
fn code_span(content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space keeps a backtick at either end from joining the fence.
    let pad = if content.starts_with('`') || content.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{content}{pad}{fence}")
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Escapes the characters that Markdown would read as emphasis, links, HTML or table cells.
fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTML

fn write_html_block(out: &mut String, block: &Block, pareto_svg: &str, search_svg: &str) {
    match block {
        Block::Heading(level, spans) => {
            let _ = writeln!(out, "<h{level}>{}</h{level}>", html_spans(spans));
        }
        Block::Paragraph(spans) => {
            let _ = writeln!(out, "<p>{}</p>", html_spans(spans));
        }
        Block::List(items) => {
            out.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", html_spans(item));
            }
            out.push_str("</ul>\n");
        }
        Block::Table(t) => write_html_table(out, t),
        Block::Figure(figure) => {
            let (svg, caption) = match figure {
                Figure::Pareto => (pareto_svg, "Pareto front"),
                Figure::Search => (search_svg, "Search"),
            };
            let _ = writeln!(
                out,
                "<figure>\n{}\n<figcaption>{caption}</figcaption>\n</figure>",
                strip_prolog(svg).trim_end()
            );
        }
    }
}

fn write_html_table(out: &mut String, t: &Table) {
    let class = |column: usize| {
        if t.numeric.get(column).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        }
    };
    out.push_str("<table>\n<thead><tr>");
    for (i, h) in t.header.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", class(i), escape_html(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = write!(out, "<td{}>{}</td>", class(i), html_spans(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn html_spans(spans: &[Span]) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text(t) => out.push_str(&escape_html(t)),
            Span::Code(t) => {
                let _ = write!(out, "<code>{}</code>", escape_html(t));
            }
            Span::Strong(t) => {
                let _ = write!(out, "<strong>{}</strong>", escape_html(t));
            }
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Drops an XML declaration or doctype before the `<svg>` element, which is invalid inside an
/// HTML page.
fn strip_prolog(svg: &str) -> &str {
    let mut rest = svg.trim_start();
    while rest.starts_with("<?") || rest.starts_with("<!") {
        match rest.find('>') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    rest
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::{Path, PathBuf};

    use edgenas_core::{estimate, Activation, Arch, Dropout, Profile};

    use super::*;
    use crate::report::{pareto_svg, search_svg, CandidatePoint, SearchEpochPoint, StageTime};

    fn load_profile(file: &str) -> Profile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../profiles")
            .join(file);
        Profile::load(&path).expect("a profile in profiles/ loads")
    }

    /// Builds a cell of `nodes` nodes whose node 1 is `0>tanh`, so every summary of two or more
    /// nodes contains a `>`.
    fn arch(hidden: usize, nodes: usize) -> Arch {
        let activations = [
            Activation::Tanh,
            Activation::Relu,
            Activation::Identity,
            Activation::Sigmoid,
        ];
        let rest: Vec<(usize, Activation)> = (1..nodes)
            .map(|i| ((i - 1) / 2, activations[(i - 1) % activations.len()]))
            .collect();
        Arch::new(10_000, hidden, Activation::Tanh, &rest, Dropout::NONE).expect("a valid cell")
    }

    /// Objectives of the front, all minimised, as the search's derive step uses them.
    fn objectives(c: &CandidatePoint) -> [f64; 7] {
        [
            c.valid_perplexity,
            c.costs.parameters as f64,
            c.costs.model_bytes as f64,
            c.costs.ram_bytes as f64,
            c.costs.macs_per_word as f64,
            c.costs.energy_uj_per_word,
            c.costs.latency_ms_per_word,
        ]
    }

    fn mark_front(candidates: &mut [CandidatePoint]) {
        let points: Vec<[f64; 7]> = candidates.iter().map(objectives).collect();
        for (i, c) in candidates.iter_mut().enumerate() {
            let dominated = points.iter().any(|other| {
                other.iter().zip(&points[i]).all(|(o, p)| o <= p)
                    && other.iter().zip(&points[i]).any(|(o, p)| o < p)
            });
            c.on_front = !dominated;
        }
    }

    /// Builds a full pipeline run on `profile_file`: 24 candidates of growing width and depth
    /// with real costs and made-up perplexities that fall with width, the best one within every
    /// budget chosen, ten search epochs and every later stage.
    pub(crate) fn sample_input_on(profile_file: &str) -> ReportInput {
        let profile = load_profile(profile_file);
        let mut candidates = Vec::new();
        for (i, hidden) in [64, 96, 128, 192, 256, 320].into_iter().enumerate() {
            for nodes in [1, 3, 5, 8] {
                let arch = arch(hidden, nodes);
                let costs = estimate(&arch, &profile);
                let noise = ((i * 7 + nodes * 3) % 11) as f64;
                let perplexity =
                    60.0 + 12_000.0 / hidden as f64 + 6.0 * (nodes as f64 - 4.0).abs() + noise;
                candidates.push(CandidatePoint {
                    summary: arch.summary(),
                    valid_perplexity: perplexity,
                    within_budget: costs.all_met(),
                    on_front: false,
                    chosen: false,
                    costs,
                });
            }
        }
        mark_front(&mut candidates);
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.within_budget)
            .min_by(|a, b| a.1.valid_perplexity.total_cmp(&b.1.valid_perplexity))
            .map(|(i, _)| i)
            .expect("some candidate meets every budget");
        candidates[best].chosen = true;
        let best = &candidates[best];
        let chosen = ChosenModel {
            summary: best.summary.clone(),
            parameters: best.costs.parameters,
            shared_valid_perplexity: best.valid_perplexity,
            costs: best.costs.clone(),
        };

        let search_epochs = (1..=10)
            .map(|epoch| {
                let t = epoch as f64;
                let valid = 1400.0 / t.sqrt() + 120.0;
                SearchEpochPoint {
                    epoch,
                    shared_train_perplexity: 900.0 / t.sqrt() + 100.0,
                    sampled_valid_perplexity: Some(valid),
                    mean_reward: Some(80.0 / valid),
                    within_budget: 0.3 + 0.05 * t,
                }
            })
            .collect();

        ReportInput {
            profile_name: profile.name.clone(),
            profile_path: PathBuf::from("profiles").join(profile_file),
            corpus: PathBuf::from("data/ptb"),
            preset: "quick".to_string(),
            seed: 7,
            chosen: Some(chosen),
            no_fit: None,
            candidates,
            search_epochs,
            search_strategy: "enas".to_string(),
            search_reward: "c / valid ppl".to_string(),
            training: Some(TrainingResult {
                train_perplexity: 95.3,
                valid_perplexity: 120.456,
                test_perplexity: 115.789,
                epochs: 40,
                best_epoch: 37,
                lr: 20.0,
                diverged_lrs: vec![40.0],
                train_seconds: 5400.0,
                stop_reason: "reached the epoch limit".to_string(),
            }),
            export: Some(ExportResult {
                float32_file: "model.onnx".to_string(),
                float32_bytes: 6_400_000,
                int8_file: "model.int8.onnx".to_string(),
                int8_bytes: 1_700_000,
                max_abs_logit_diff: 3.2e-6,
                logit_tolerance: 1e-4,
                float32_perplexity: 115.9,
                int8_perplexity: 117.2,
                int8_relative_change: 117.2 / 115.9 - 1.0,
                int8_tolerance: 0.05,
                passed: true,
                float32_ms: 0.8123,
                int8_ms: 0.4567,
            }),
            transcript: Some(TranscriptResult {
                path: PathBuf::from("transcripts/harvard.txt"),
                description: "50 Harvard sentences".to_string(),
                utterances: 50,
                tokens: 1412,
                unknown: 9,
                top1: 0.31,
                top3: 0.47,
                top5: 0.55,
                keystroke_savings: 0.22,
                top_k: 3,
                median_ms: 0.523,
                p99_ms: 1.94,
                max_ms: 3.4,
                budget_ms: 40.0,
                over_budget: 0,
            }),
            stages: vec![
                stage("search", 3720.0, false),
                stage("train", 5400.0, true),
                stage("export", 42.5, false),
                stage("transcript", 3.1, false),
            ],
        }
    }

    pub(crate) fn sample_input() -> ReportInput {
        sample_input_on("raspberry-pi-4.toml")
    }

    /// Builds an input in which no stage produced anything.
    pub(crate) fn empty_input() -> ReportInput {
        ReportInput {
            chosen: None,
            no_fit: None,
            candidates: Vec::new(),
            search_epochs: Vec::new(),
            training: None,
            export: None,
            transcript: None,
            stages: Vec::new(),
            ..sample_input()
        }
    }

    fn stage(name: &str, seconds: f64, skipped: bool) -> StageTime {
        StageTime {
            name: name.to_string(),
            seconds,
            skipped,
        }
    }

    fn chosen(input: &ReportInput) -> &ChosenModel {
        input
            .chosen
            .as_ref()
            .expect("the sample has a chosen model")
    }

    #[test]
    fn markdown_names_choice_and_budgets() {
        let input = sample_input();
        let md = markdown(&input);
        let model = chosen(&input);

        assert!(model.summary.contains('>'), "{}", model.summary);
        let title = md.lines().next().unwrap_or_default();
        assert!(title.starts_with("# "), "{title}");
        assert!(title.contains(&model.summary), "{title}");
        assert!(title.contains("raspberry-pi-4"), "{title}");
        for check in &model.costs.checks {
            assert!(
                md.contains(&format!("| {} |", check.name)),
                "{}",
                check.name
            );
        }
        // The Pi 4 profile has no energy budget, so energy and MACs are listed without one.
        assert!(md.contains("| energy |"));
        assert!(md.contains("| MACs per word |"));
        assert!(md.contains("no budget"));
        assert!(!md.contains("NOT met"));
        assert!(md.contains("![Pareto front](pareto.svg)"));
        assert!(md.contains("![Search](search.svg)"));
    }

    #[test]
    fn markdown_lists_every_budget_check() {
        // The Zero 2 W profile budgets energy too.
        let input = sample_input_on("raspberry-pi-zero-2w.toml");
        let md = markdown(&input);
        let names: Vec<&str> = chosen(&input).costs.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["parameters", "model size", "RAM", "latency", "energy"]
        );
        for name in names {
            assert!(md.contains(&format!("| {name} |")), "{name}");
        }
        assert!(md.contains("µJ/word"));
    }

    #[test]
    fn markdown_marks_unmet_budget() {
        let mut input = sample_input();
        let model = input.chosen.as_mut().expect("chosen");
        let latency = model
            .costs
            .checks
            .iter_mut()
            .find(|c| c.name == "latency")
            .expect("latency is always checked");
        latency.value = latency.budget * 2.0;
        latency.met = false;

        let md = markdown(&input);
        let row = md
            .lines()
            .find(|l| l.starts_with("| latency |"))
            .expect("a latency row");
        assert!(row.contains("**NOT met**"), "{row}");
        assert!(md.contains("does not meet every budget"));
        let parameters = md
            .lines()
            .find(|l| l.starts_with("| parameters |"))
            .expect("a parameters row");
        assert!(parameters.ends_with("| met |"), "{parameters}");
    }

    #[test]
    fn markdown_formats_numbers() {
        let input = sample_input();
        let md = markdown(&input);
        let model = chosen(&input);

        assert!(md.contains(&count(model.parameters)));
        assert!(count(model.parameters).contains(','));
        assert!(md.contains("Test perplexity 115.79, validation 120.46, training 95.30."));
        assert!(md.contains("Earlier attempts at learning rate 40 diverged"));
        assert!(md.contains("6,400,000 bytes (6.10 MiB)"));
        assert!(md.contains("| top-1 accuracy | 31.0% |"));
        assert!(md.contains("| keystroke savings with 3 predictions shown | 22.0% |"));
        assert!(md.contains("| latency per word, p99 | 1.94 ms |"));
        assert!(md.contains("| latency budget | 40.0 ms |"));
        assert!(md.contains("0.812 ms at float32 and 0.457 ms at int8"));
        assert!(md.contains("| +1.12% |"), "int8 change");
        assert!(md.contains("| train | 1.50 h | skipped (already done) |"));
        assert!(md.contains("| search | 1.03 h | ran |"));
        assert!(md.contains("| export | 42.5 s | ran |"));
    }

    #[test]
    fn markdown_tables_front_candidates() {
        let input = sample_input();
        let md = markdown(&input);
        let front: Vec<&CandidatePoint> = input.candidates.iter().filter(|c| c.on_front).collect();
        assert!(!front.is_empty());
        for c in &front {
            assert!(md.contains(&format!("| `{}`", c.summary)), "{}", c.summary);
        }
        let chosen_rows = md.lines().filter(|l| l.contains("(chosen)")).count();
        assert_eq!(chosen_rows, 1);
        let off_front = input
            .candidates
            .iter()
            .find(|c| !c.on_front)
            .expect("some candidate is off the front");
        assert!(!md.contains(&format!("| `{}` |", off_front.summary)));
    }

    #[test]
    fn markdown_reports_missing_stages() {
        let mut input = empty_input();
        input.no_fit = Some("the closest, h=64 tanh, has latency 3.0% over.".to_string());
        let md = markdown(&input);

        assert!(md.contains("no architecture fits raspberry-pi-4"));
        assert!(md.contains(
            "No candidate met every budget: the closest, h=64 tanh, has latency 3.0% over."
        ));
        assert!(md.contains("The training stage did not run."));
        assert!(md.contains("The export stage did not run."));
        assert!(md.contains("The transcript stage did not run."));
        assert!(md.contains("The search stage did not run."));
        assert!(md.contains("No candidates were evaluated"));
        assert!(md.contains("No stage times were recorded."));
        assert!(!md.contains("pareto.svg"));
    }

    #[test]
    fn markdown_escapes_text_from_data() {
        let mut input = sample_input();
        if let Some(t) = input.transcript.as_mut() {
            t.description = "read *aloud* | <fast>".to_string();
        }
        let md = markdown(&input);
        assert!(md.contains(r"read \*aloud\* \| \<fast\>"));
    }

    #[test]
    fn html_escapes_summaries() {
        let mut input = sample_input();
        if let Some(t) = input.transcript.as_mut() {
            t.description = "noise & <music> \"live\"".to_string();
        }
        let page = html(&input, &pareto_svg(&input), &search_svg(&input));

        assert!(page.contains("0&gt;tanh"));
        assert!(!page.contains("0>tanh"));
        assert!(page.contains("noise &amp; &lt;music&gt; &quot;live&quot;"));
        let model = chosen(&input);
        let escaped = escape_html(&model.summary);
        assert!(page.contains(&format!("<h1>edgenas report: <code>{escaped}</code>")));
    }

    #[test]
    fn html_is_self_contained() {
        let input = sample_input();
        let page = html(&input, &pareto_svg(&input), &search_svg(&input));

        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("</svg>").count(), 2);
        assert!(page.contains("<style>"));
        for external in [
            "<link",
            "<script",
            "src=\"http",
            "href=\"http",
            "url(",
            "@import",
        ] {
            assert!(!page.contains(external), "{external}");
        }
        assert!(!page.contains("<?xml"));
        assert_eq!(
            page.matches("<table>").count(),
            page.matches("</table>").count()
        );
    }

    #[test]
    fn html_strips_xml_prolog() {
        let input = sample_input();
        let svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg id=\"a\"></svg>\n";
        let page = html(&input, svg, svg);
        assert!(!page.contains("<?xml"));
        assert_eq!(page.matches("<figure>\n<svg id=\"a\"></svg>\n").count(), 2);
    }

    #[test]
    fn renderers_accept_edge_cases() {
        let mut one_candidate = sample_input();
        one_candidate.candidates.truncate(1);
        let mut bad_numbers = sample_input();
        bad_numbers.candidates[0].valid_perplexity = f64::NAN;
        bad_numbers.candidates[1].valid_perplexity = f64::INFINITY;
        bad_numbers.search_epochs[0].shared_train_perplexity = f64::NAN;
        let mut no_chosen = sample_input();
        no_chosen.chosen = None;
        for c in &mut no_chosen.candidates {
            c.chosen = false;
        }

        for input in [one_candidate, bad_numbers, no_chosen] {
            let md = markdown(&input);
            assert!(md.starts_with("# edgenas report"));
            let page = html(&input, &pareto_svg(&input), &search_svg(&input));
            assert_eq!(page.matches("<svg").count(), 2);
        }

        // Without candidates or epochs there is nothing to plot, so the page has no figure.
        let empty = empty_input();
        assert!(markdown(&empty).starts_with("# edgenas report"));
        let page = html(&empty, &pareto_svg(&empty), &search_svg(&empty));
        assert_eq!(page.matches("<svg").count(), 0);
    }

    #[test]
    fn number_formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(4_194_304), "4,194,304 bytes (4.00 MiB)");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(0.0012345), "0.00123");
        assert_eq!(sig3(2500.4), "2500");
        assert_eq!(sig3(f64::NAN), "NaN");
        assert_eq!(check_value(3e6, ""), "3,000,000");
        assert_eq!(check_value(40.0, "ms/word"), "40.0 ms/word");
        assert_eq!(duration(42.0), "42.0 s");
        assert_eq!(code_span("a`b"), "``a`b``");
    }

    /// Writes the sample report with `report::write`, and also into `$EDGENAS_WRITE_REPORT_DIR`
    /// when it is set, to look at the plots.
    #[test]
    fn write_creates_report_files() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let input = sample_input();
        let page = crate::report::write(&input, dir.path()).expect("the report is written");
        assert_eq!(page, dir.path().join(crate::report::REPORT_HTML));
        for file in [
            crate::report::REPORT_MD,
            crate::report::REPORT_HTML,
            PARETO_SVG,
            SEARCH_SVG,
        ] {
            let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
            assert!(!text.is_empty(), "{file}");
        }

        if let Some(out) = std::env::var_os("EDGENAS_WRITE_REPORT_DIR") {
            let out = PathBuf::from(out);
            std::fs::create_dir_all(&out).expect("the review folder");
            crate::report::write(&input, &out).expect("the review report");
            let zero = sample_input_on("raspberry-pi-zero-2w.toml");
            let zero_dir = out.join("zero-2w");
            std::fs::create_dir_all(&zero_dir).expect("the review folder");
            crate::report::write(&zero, &zero_dir).expect("the review report");
            let empty_dir = out.join("empty");
            std::fs::create_dir_all(&empty_dir).expect("the review folder");
            crate::report::write(&empty_input(), &empty_dir).expect("the review report");

            // One candidate and one epoch of random search.
            let mut single = sample_input();
            single.candidates.retain(|c| c.chosen);
            single.search_epochs.truncate(1);
            single.search_epochs[0].mean_reward = None;
            single.search_epochs[0].sampled_valid_perplexity = None;
            let single_dir = out.join("single");
            std::fs::create_dir_all(&single_dir).expect("the review folder");
            crate::report::write(&single, &single_dir).expect("the review report");

            // Perplexities over two decades, for log y axes.
            let mut wide = sample_input();
            for (i, c) in wide.candidates.iter_mut().enumerate() {
                c.valid_perplexity *= 1.0 + (i % 5) as f64 * 4.0;
            }
            for e in &mut wide.search_epochs {
                e.shared_train_perplexity *= 20.0 / e.epoch as f64;
            }
            let wide_dir = out.join("wide");
            std::fs::create_dir_all(&wide_dir).expect("the review folder");
            crate::report::write(&wide, &wide_dir).expect("the review report");
        }
    }
}
