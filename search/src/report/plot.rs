//! The report's SVG plots, drawn with plotters into strings.
//!
//! Every axis is drawn on a linear plotters range in "plot space": the value itself on a linear
//! axis and its base-10 logarithm on a log axis. Choosing the scale per panel at run time then
//! keeps one chart type, and the tick positions and labels are computed here, so labels stay
//! short (`1.5M`, `200`, `0.05`) instead of printing raw floats.

use std::error::Error;
use std::iter;
use std::ops::Range;

use edgenas_core::cost::CostReport;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::{ComposedElement, DashedPathElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{CandidatePoint, ReportInput};

const PARETO_SIZE: (u32, u32) = (1200, 780);
const SEARCH_SIZE: (u32, u32) = (1200, 400);
/// Height of the title and legend strip above the Pareto panels.
const PARETO_HEADER_PX: u32 = 90;
const FONT: &str = "sans-serif";

const WITHIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const OVER_COLOR: RGBColor = RGBColor(255, 127, 14);
const FRONT_COLOR: RGBColor = RGBColor(44, 160, 44);
const CHOSEN_COLOR: RGBColor = RGBColor(214, 39, 40);
const BUDGET_COLOR: RGBColor = RGBColor(148, 103, 189);
const VALID_COLOR: RGBColor = RGBColor(255, 127, 14);
const GRID_COLOR: RGBColor = RGBColor(225, 225, 225);
const TEXT_COLOR: RGBColor = RGBColor(40, 40, 40);

/// A value range whose max / min exceeds this ratio is drawn on a log axis.
const LOG_RATIO: f64 = 10.0;
/// Share of the data range added on each side, so no point sits on the frame.
const PAD_SHARE: f64 = 0.07;
const MIB: f64 = 1024.0 * 1024.0;

type DrawResult = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws validation perplexity against each cost of every candidate, one panel per cost, with
/// the Pareto front, the chosen model and the budgets marked.
pub fn pareto_svg(input: &ReportInput) -> String {
    render_svg(PARETO_SIZE, |root| draw_pareto(root, input))
}

/// Draws the search's progress per epoch: controller reward, perplexities and the share of
/// sampled cells within every budget.
pub fn search_svg(input: &ReportInput) -> String {
    render_svg(SEARCH_SIZE, |root| draw_search(root, input))
}

/// Runs `draw` on an SVG string of `size`. A plotters error gives an SVG that shows the error
/// instead, so the report is still written.
fn render_svg(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(Into::into))
    };
    match result {
        Ok(()) => svg,
        Err(e) => failure_svg(size, &e.to_string()),
    }
}

fn failure_svg((width, height): (u32, u32), message: &str) -> String {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"20\" y=\"40\" \
         font-family=\"{FONT}\" font-size=\"16\">The plot failed: {escaped}</text>\n</svg>\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Axes

/// One axis in plot space, with its tick positions and labels.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Fits an axis around the finite `values`, on a log scale when they are all positive and
    /// span more than `LOG_RATIO`.
    fn fit(values: impl IntoIterator<Item = f64>) -> Axis {
        let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if finite.is_empty() || !(max - min).is_finite() {
            return Axis::linear(0.0, 1.0);
        }

        if min > 0.0 && max / min > LOG_RATIO {
            let (lo, hi) = padded(min.log10(), max.log10(), 0.25);
            return Axis {
                log: true,
                lo,
                hi,
                ticks: log_ticks(lo, hi),
            };
        }

        let half_if_equal = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        let (mut lo, hi) = padded(min, max, half_if_equal);
        // Costs and perplexities are positive, and an axis that starts below zero for them
        // only wastes room.
        if min > 0.0 && lo < 0.0 {
            lo = 0.0;
        }
        Axis::linear(lo, hi)
    }

    /// Fits an integer axis from `first - 0.5` to `last + 0.5`, for epochs.
    fn integers(first: f64, last: f64) -> Axis {
        let (lo, hi) = (first - 0.5, last + 0.5);
        let step = nice_step((hi - lo) / 6.0).max(1.0).round();
        Axis {
            log: false,
            lo,
            hi,
            ticks: ticks_with_step(lo, hi, step),
        }
    }

    fn linear(lo: f64, hi: f64) -> Axis {
        Axis {
            log: false,
            lo,
            hi,
            ticks: linear_ticks(lo, hi),
        }
    }

    /// Returns where `value` lies in plot space, or `None` when the axis cannot show it.
    fn pos(&self, value: f64) -> Option<f64> {
        let p = if self.log {
            if value <= 0.0 {
                return None;
            }
            value.log10()
        } else {
            value
        };
        p.is_finite().then_some(p)
    }

    fn range(&self) -> AxisRange {
        AxisRange {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.iter().map(|t| t.0).collect(),
        }
    }

    /// Returns the label of the tick nearest to plot position `p`. Plotters requests labels
    /// only at the tick positions that `range` gave it.
    fn label(&self, p: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - p).abs().total_cmp(&(b.0 - p).abs()))
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }

    /// Returns whether plot position `p` lies in the right quarter of the axis.
    fn near_right_end(&self, p: f64) -> bool {
        p > self.lo + 0.75 * (self.hi - self.lo)
    }
}

/// A linear plotters range over plot space that puts its ticks where `Axis` chose them.
struct AxisRange {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for AxisRange {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.lo) / (self.hi - self.lo);
        let pixel = f64::from(limit.0) + share * f64::from(limit.1 - limit.0);
        // `as` saturates, and turns NaN into 0, so no value can panic here.
        pixel.round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // The grid has only the labelled lines, no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// Widens `[min, max]` by `PAD_SHARE` on each side, or by `half_if_equal` when it is a single
/// value.
fn padded(min: f64, max: f64, half_if_equal: f64) -> (f64, f64) {
    let span = max - min;
    if span <= f64::EPSILON * max.abs().max(1.0) {
        (min - half_if_equal, max + half_if_equal)
    } else {
        (min - PAD_SHARE * span, max + PAD_SHARE * span)
    }
}

/// Returns 1, 2 or 5 times a power of ten, the nearest such step to `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let factor = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

/// Returns about five ticks on a linear axis, at a 1-2-5 step.
fn linear_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    ticks_with_step(lo, hi, nice_step((hi - lo) / 5.0))
}

fn ticks_with_step(lo: f64, hi: f64, step: f64) -> Vec<(f64, String)> {
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > 50.0 {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    let mut k = first;
    while k <= last {
        let value = k * step;
        ticks.push((value, format_tick(value, step)));
        k += 1.0;
    }
    ticks
}

/// Returns ticks on a log axis (plot space `lo..hi` in log10): 1, 2 and 5 times each power of
/// ten on a short range, fewer on a long one.
fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let decades = hi - lo;
    let multiples: &[f64] = if decades <= 1.5 {
        &[1.0, 2.0, 3.0, 5.0, 7.0]
    } else if decades <= 3.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let every = (decades / 6.0).ceil().max(1.0) as i64;

    let mut ticks = Vec::new();
    let (first, last) = (lo.floor() as i64, hi.ceil() as i64);
    for exponent in (first..=last).filter(|e| e.rem_euclid(every) == 0) {
        let power = 10f64.powi(exponent as i32);
        for m in multiples {
            let value = m * power;
            let p = value.log10();
            if p >= lo && p <= hi {
                ticks.push((p, format_tick(value, power)));
            }
        }
    }

    if ticks.len() < 2 {
        // A range too short for the 1-2-5 ticks: use linear ticks in value space instead.
        let (min, max) = (10f64.powf(lo), 10f64.powf(hi));
        return linear_ticks(min, max)
            .into_iter()
            .filter(|(v, _)| *v > 0.0)
            .map(|(v, label)| (v.log10(), label))
            .collect();
    }
    ticks
}

/// Formats a tick value with a k, M or G suffix and as many decimals as `step` needs.
fn format_tick(value: f64, step: f64) -> String {
    if value.abs() < step.abs() * 1e-6 {
        return "0".to_string();
    }
    let (divisor, suffix) = match value.abs() {
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let decimals = (-(step / divisor).log10() - 1e-9).ceil().clamp(0.0, 9.0) as usize;
    let mut text = format!("{:.decimals$}", value / divisor);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    text + suffix
}

// ---------------------------------------------------------------------------------------------
// Shared drawing helpers

fn text_style(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color).pos(Pos::new(h, v))
}

/// Draws `title` over a framed, empty panel with `note` in the middle.
fn draw_note(area: &Area, title: &str, note: &str) -> DrawResult {
    let area = area.margin(8, 8, 8, 8).titled(title, (FONT, 18))?;
    let (width, height) = area.dim_in_pixel();
    let (w, h) = (width as i32, height as i32);
    area.draw(&Rectangle::new([(0, 0), (w - 1, h - 1)], GRID_COLOR))?;
    area.draw(&Text::new(
        note.to_string(),
        (w / 2, h / 2),
        text_style(16, TEXT_COLOR, HPos::Center, VPos::Center),
    ))?;
    Ok(())
}

type Diamond<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// Builds the chosen model's marker, a filled diamond with a dark outline.
fn diamond<C, DB: DrawingBackend>(at: C, radius: i32) -> Diamond<C, DB> {
    let corners = vec![(0, -radius), (radius, 0), (0, radius), (-radius, 0)];
    let mut outline = corners.clone();
    outline.push((0, -radius));
    EmptyElement::at(at)
        + Polygon::new(corners, CHOSEN_COLOR.filled())
        + PathElement::new(outline, BLACK.stroke_width(1))
}

// ---------------------------------------------------------------------------------------------
// Pareto panels

/// One cost drawn on the x axis of a Pareto panel.
struct CostAxis {
    title: &'static str,
    label: String,
    /// Name of the budget check on this cost, for the costs a profile can budget.
    check: Option<&'static str>,
    /// The plotted value, in the unit of `label`.
    value: fn(&CostReport) -> f64,
    /// Budget units per axis unit: bytes per MiB for the byte costs, else 1.
    budget_per_unit: f64,
}

fn cost_axes(reference: Option<&CostReport>) -> [CostAxis; 6] {
    let dtype = reference.map_or("the deploy dtype", |c| c.dtype.name());
    let latency_note = match reference.map(|c| c.latency_source) {
        Some(edgenas_core::LatencySource::Measured) => ", measured",
        Some(edgenas_core::LatencySource::Estimate) => ", estimate",
        None => "",
    };
    [
        CostAxis {
            title: "Parameters",
            label: "parameters".to_string(),
            check: Some("parameters"),
            value: |c| c.parameters as f64,
            budget_per_unit: 1.0,
        },
        CostAxis {
            title: "Model size",
            label: format!("model size at {dtype} (MiB)"),
            check: Some("model size"),
            value: |c| c.model_bytes as f64 / MIB,
            budget_per_unit: MIB,
        },
        CostAxis {
            title: "RAM",
            label: "RAM (MiB)".to_string(),
            check: Some("RAM"),
            value: |c| c.ram_bytes as f64 / MIB,
            budget_per_unit: MIB,
        },
        CostAxis {
            title: "MACs per word",
            label: "multiply-accumulates per word".to_string(),
            check: None,
            value: |c| c.macs_per_word as f64,
            budget_per_unit: 1.0,
        },
        CostAxis {
            title: "Energy per word",
            label: "energy (µJ/word, estimate)".to_string(),
            check: Some("energy"),
            value: |c| c.energy_uj_per_word,
            budget_per_unit: 1.0,
        },
        CostAxis {
            title: "Latency per word",
            label: format!("latency (ms/word{latency_note})"),
            check: Some("latency"),
            value: |c| c.latency_ms_per_word,
            budget_per_unit: 1.0,
        },
    ]
}

/// One candidate in a panel, in data units.
struct Mark {
    x: f64,
    y: f64,
    within: bool,
    front: bool,
}

fn draw_pareto(root: &Area, input: &ReportInput) -> DrawResult {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(PARETO_HEADER_PX);
    draw_pareto_header(&header, input)?;

    let chosen = chosen_point(input);
    let reference = chosen
        .map(|(costs, _)| costs)
        .or_else(|| input.candidates.first().map(|c| &c.costs));
    let axes = cost_axes(reference);
    for (area, cost) in body.split_evenly((2, 3)).iter().zip(&axes) {
        draw_cost_panel(area, input, cost, chosen)?;
    }
    Ok(())
}

fn draw_pareto_header(area: &Area, input: &ReportInput) -> DrawResult {
    let within = input.candidates.iter().filter(|c| c.within_budget).count();
    let total = input.candidates.len();
    let title = format!(
        "Validation perplexity against each cost on {}: {total} candidate{}, {within} within \
         every budget",
        input.profile_name,
        if total == 1 { "" } else { "s" },
    );
    area.draw(&Text::new(
        title,
        (16, 8),
        text_style(18, TEXT_COLOR, HPos::Left, VPos::Top),
    ))?;

    // A cell of 12 nodes has a summary of about 110 characters, so it gets its own line.
    let choice = match &input.chosen {
        Some(model) => format!("Chosen: {}", model.summary),
        None => "No candidate met every budget, so none was chosen.".to_string(),
    };
    area.draw(&Text::new(
        choice,
        (16, 34),
        text_style(15, TEXT_COLOR, HPos::Left, VPos::Top),
    ))?;

    let y = 70;
    let mut x = 28;
    let entry = |area: &Area, x: &mut i32, label: &str| -> DrawResult {
        area.draw(&Text::new(
            label.to_string(),
            (*x + 16, y),
            text_style(15, TEXT_COLOR, HPos::Left, VPos::Center),
        ))?;
        // The SVG backend has no font metrics, so the width is an estimate for this font.
        *x += 16 + 6 * label.chars().count() as i32 + 32;
        Ok(())
    };

    area.draw(&Circle::new((x, y), 3, WITHIN_COLOR.filled()))?;
    entry(area, &mut x, "within every budget")?;
    area.draw(&Cross::new((x, y), 4, OVER_COLOR.stroke_width(2)))?;
    entry(area, &mut x, "over a budget")?;
    area.draw(&PathElement::new(
        vec![(x - 10, y), (x + 10, y)],
        FRONT_COLOR.stroke_width(2),
    ))?;
    area.draw(&Circle::new((x, y), 6, FRONT_COLOR.stroke_width(2)))?;
    entry(
        area,
        &mut x,
        "Pareto front (ring: over all costs; line: over this cost and perplexity)",
    )?;
    area.draw(&diamond((x, y), 7))?;
    entry(area, &mut x, "chosen")?;
    area.draw(&DashedPathElement::new(
        vec![(x, y - 9), (x, y + 9)],
        4,
        3,
        BUDGET_COLOR.stroke_width(2),
    ))?;
    entry(area, &mut x, "budget")?;
    Ok(())
}

/// Returns the chosen model's costs and shared-weight perplexity: from the candidate marked
/// chosen, else from `input.chosen`.
fn chosen_point(input: &ReportInput) -> Option<(&CostReport, f64)> {
    input
        .candidates
        .iter()
        .find(|c| c.chosen)
        .map(|c| (&c.costs, c.valid_perplexity))
        .or_else(|| {
            let model = input.chosen.as_ref()?;
            Some((&model.costs, model.shared_valid_perplexity))
        })
}

/// Returns the budget of the check `name`. Every candidate is checked against the same
/// profile, so the first report that has the check gives it.
fn budget_for(input: &ReportInput, name: &str) -> Option<f64> {
    let chosen = input.chosen.iter().map(|m| &m.costs);
    let candidates = input.candidates.iter().map(|c| &c.costs);
    chosen
        .chain(candidates)
        .flat_map(|costs| costs.checks.iter())
        .find(|check| check.name == name)
        .map(|check| check.budget)
}

fn marks(candidates: &[CandidatePoint], cost: &CostAxis) -> Vec<Mark> {
    candidates
        .iter()
        .map(|c| Mark {
            x: (cost.value)(&c.costs),
            y: c.valid_perplexity,
            within: c.within_budget,
            front: c.on_front,
        })
        .filter(|m| m.x.is_finite() && m.y.is_finite())
        .collect()
}

/// Keeps the points of `sorted` (ascending x) that no other point beats on both axes: the
/// front of this one cost against perplexity.
fn front_2d(sorted: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut best = f64::INFINITY;
    let mut front = Vec::new();
    for &(x, y) in sorted {
        if y < best {
            best = y;
            front.push((x, y));
        }
    }
    front
}

fn draw_cost_panel(
    area: &Area,
    input: &ReportInput,
    cost: &CostAxis,
    chosen: Option<(&CostReport, f64)>,
) -> DrawResult {
    let budget = cost
        .check
        .and_then(|name| budget_for(input, name))
        .map(|b| b / cost.budget_per_unit)
        .filter(|b| b.is_finite());
    let marks = marks(&input.candidates, cost);
    let chosen = chosen
        .map(|(costs, perplexity)| ((cost.value)(costs), perplexity))
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    if marks.is_empty() && chosen.is_none() {
        let note = if input.candidates.is_empty() {
            "no candidates"
        } else {
            "no candidate has a finite perplexity"
        };
        return draw_note(area, cost.title, note);
    }

    let x_values = marks.iter().map(|m| m.x).chain(chosen.map(|c| c.0));
    let x_axis = Axis::fit(x_values.chain(budget));
    let y_axis = Axis::fit(marks.iter().map(|m| m.y).chain(chosen.map(|c| c.1)));
    let to_plot = |x: f64, y: f64| Some((x_axis.pos(x)?, y_axis.pos(y)?));

    let mut chart = ChartBuilder::on(area)
        .caption(cost.title, (FONT, 18))
        .margin(8)
        .margin_right(20)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_axis.range(), y_axis.range())?;
    let x_label = |p: &f64| x_axis.label(*p);
    let y_label = |p: &f64| y_axis.label(*p);
    chart
        .configure_mesh()
        .bold_line_style(GRID_COLOR)
        .x_desc(cost.label.as_str())
        .y_desc("valid perplexity (shared weights)")
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;

    if let Some(b) = budget.and_then(|b| x_axis.pos(b)) {
        chart.draw_series(DashedLineSeries::new(
            vec![(b, y_axis.lo), (b, y_axis.hi)],
            6,
            4,
            BUDGET_COLOR.stroke_width(2),
        ))?;
        let (h_pos, dx) = if x_axis.near_right_end(b) {
            (HPos::Right, -5)
        } else {
            (HPos::Left, 5)
        };
        let style = text_style(14, BUDGET_COLOR, h_pos, VPos::Top);
        chart.draw_series(iter::once(
            EmptyElement::at((b, y_axis.hi)) + Text::new("budget", (dx, 4), style),
        ))?;
    }

    let mut front: Vec<(f64, f64)> = marks
        .iter()
        .filter(|m| m.front)
        .filter_map(|m| to_plot(m.x, m.y))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    chart.draw_series(LineSeries::new(
        front_2d(&front),
        FRONT_COLOR.stroke_width(2),
    ))?;

    let over = marks.iter().filter(|m| !m.within);
    chart.draw_series(
        over.filter_map(|m| to_plot(m.x, m.y))
            .map(|p| Cross::new(p, 4, OVER_COLOR.stroke_width(2))),
    )?;
    let within = marks.iter().filter(|m| m.within);
    chart.draw_series(
        within
            .filter_map(|m| to_plot(m.x, m.y))
            .map(|p| Circle::new(p, 3, WITHIN_COLOR.filled())),
    )?;
    if let Some(p) = chosen.and_then(|(x, y)| to_plot(x, y)) {
        chart.draw_series(iter::once(diamond(p, 8)))?;
    }
    // The rings go last so a chosen cell on the front shows both marks.
    chart.draw_series(
        front
            .iter()
            .map(|&p| Circle::new(p, 6, FRONT_COLOR.stroke_width(2))),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Search panels

const SEARCH_TITLES: [&str; 3] = [
    "Mean controller reward",
    "Perplexity during the search",
    "Sampled cells within every budget",
];

/// One line of a search panel, in data units.
struct Line {
    label: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn draw_search(root: &Area, input: &ReportInput) -> DrawResult {
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let epochs = &input.search_epochs;
    if epochs.is_empty() {
        for (area, title) in panels.iter().zip(SEARCH_TITLES) {
            draw_note(area, title, "no search epochs")?;
        }
        return Ok(());
    }

    let first = epochs.iter().map(|e| e.epoch).min().unwrap_or(0) as f64;
    let last = epochs.iter().map(|e| e.epoch).max().unwrap_or(0) as f64;
    let x_axis = Axis::integers(first, last);

    let rewards = Line {
        label: "mean reward",
        color: WITHIN_COLOR,
        points: epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f64, e.mean_reward?)))
            .collect(),
    };
    let rewards = [rewards];
    draw_line_panel(
        &panels[0],
        SEARCH_TITLES[0],
        &x_axis,
        "mean reward",
        &rewards,
        &[],
    )?;

    let train = Line {
        label: "shared model, training",
        color: WITHIN_COLOR,
        points: epochs
            .iter()
            .map(|e| (e.epoch as f64, e.shared_train_perplexity))
            .collect(),
    };
    let valid = Line {
        label: "sampled cells, validation",
        color: VALID_COLOR,
        points: epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f64, e.sampled_valid_perplexity?)))
            .collect(),
    };
    let perplexities = [train, valid];
    draw_line_panel(
        &panels[1],
        SEARCH_TITLES[1],
        &x_axis,
        "perplexity",
        &perplexities,
        &[],
    )?;

    let share = Line {
        label: "within every budget",
        color: FRONT_COLOR,
        points: epochs
            .iter()
            .map(|e| (e.epoch as f64, e.within_budget * 100.0))
            .collect(),
    };
    draw_line_panel(
        &panels[2],
        SEARCH_TITLES[2],
        &x_axis,
        "share of sampled cells (%)",
        &[share],
        &[0.0, 100.0],
    )
}

/// Draws `lines` over the epoch axis, with a legend when there is more than one line. The y
/// axis covers `y_extent` as well as the data.
fn draw_line_panel(
    area: &Area,
    title: &str,
    x_axis: &Axis,
    y_desc: &str,
    lines: &[Line],
    y_extent: &[f64],
) -> DrawResult {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().filter(|p| finite(p)).map(|p| p.1))
        .collect();
    if values.is_empty() {
        let note = if lines.iter().all(|l| l.points.is_empty()) {
            "not recorded (random search has no controller)"
        } else {
            "no finite values"
        };
        return draw_note(area, title, note);
    }
    // Room above the data for the legend, which would otherwise hide the points under it.
    let headroom = (lines.len() > 1).then(|| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if min > 0.0 && max / min > LOG_RATIO {
            max * (max / min).powf(0.35)
        } else {
            max + 0.35 * (max - min)
        }
    });
    let y_axis = Axis::fit(
        values
            .into_iter()
            .chain(y_extent.iter().copied())
            .chain(headroom),
    );

    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(8)
        .margin_right(20)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_axis.range(), y_axis.range())?;
    let x_label = |p: &f64| x_axis.label(*p);
    let y_label = |p: &f64| y_axis.label(*p);
    chart
        .configure_mesh()
        .bold_line_style(GRID_COLOR)
        .x_desc("search epoch")
        .y_desc(y_desc)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;

    let mut drawn = 0;
    for line in lines {
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|p| finite(p))
            .filter_map(|&(x, y)| Some((x_axis.pos(x)?, y_axis.pos(y)?)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = line.color;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(3))?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        drawn += 1;
    }
    if lines.len() > 1 && drawn > 0 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID_COLOR)
            .label_font((FONT, 14))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::render::tests::{empty_input, sample_input, sample_input_on};

    /// Counts the `<text>` elements whose content is exactly `content`.
    fn count_text(svg: &str, content: &str) -> usize {
        svg.matches(&format!(">\n{content}\n</text>")).count()
    }

    fn assert_drawn(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("The plot failed"), "{svg}");
        assert!(!svg.contains("NaN"));
        assert!(!svg.contains("inf"));
    }

    #[test]
    fn pareto_marks_chosen_once_per_panel() {
        let input = sample_input();
        let svg = pareto_svg(&input);
        assert_drawn(&svg);
        // The diamond is the only polygon: one per panel and one in the legend.
        assert_eq!(svg.matches("<polygon").count(), 6 + 1);
        assert_eq!(svg.matches("fill=\"#D62728\"").count(), 6 + 1);

        let mut unchosen = input;
        unchosen.chosen = None;
        for c in &mut unchosen.candidates {
            c.chosen = false;
        }
        let svg = pareto_svg(&unchosen);
        assert_drawn(&svg);
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(svg.contains("none was chosen"));
    }

    #[test]
    fn pareto_draws_one_budget_line_per_check() {
        // raspberry-pi-4 budgets parameters, model size, RAM and latency, and the legend adds
        // one more label.
        let svg = pareto_svg(&sample_input());
        assert_eq!(count_text(&svg, "budget"), 4 + 1);
        // raspberry-pi-zero-2w budgets energy as well.
        let svg = pareto_svg(&sample_input_on("raspberry-pi-zero-2w.toml"));
        assert_eq!(count_text(&svg, "budget"), 5 + 1);
    }

    #[test]
    fn pareto_labels_axes_with_units() {
        let svg = pareto_svg(&sample_input());
        for label in [
            "parameters",
            "model size at int8 (MiB)",
            "RAM (MiB)",
            "multiply-accumulates per word",
            "energy (µJ/word, estimate)",
            "latency (ms/word, estimate)",
        ] {
            assert_eq!(count_text(&svg, label), 1, "{label}");
        }
        assert_eq!(count_text(&svg, "valid perplexity (shared weights)"), 6);
    }

    #[test]
    fn pareto_notes_missing_candidates() {
        let svg = pareto_svg(&empty_input());
        assert_drawn(&svg);
        assert_eq!(count_text(&svg, "no candidates"), 6);
        assert_eq!(svg.matches("<polygon").count(), 1);
    }

    #[test]
    fn pareto_survives_edge_cases() {
        let mut single = sample_input();
        single.candidates.retain(|c| c.chosen);
        assert_eq!(single.candidates.len(), 1);

        let mut equal = sample_input();
        let first = equal.candidates[0].clone();
        for c in &mut equal.candidates {
            c.costs = first.costs.clone();
            c.valid_perplexity = first.valid_perplexity;
        }

        let mut bad_numbers = sample_input();
        bad_numbers.candidates[0].valid_perplexity = f64::NAN;
        bad_numbers.candidates[1].valid_perplexity = f64::INFINITY;
        bad_numbers.candidates[2].valid_perplexity = f64::NEG_INFINITY;

        let mut all_nan = sample_input();
        all_nan.chosen = None;
        for c in &mut all_nan.candidates {
            c.valid_perplexity = f64::NAN;
        }

        for input in [single, equal, bad_numbers] {
            let svg = pareto_svg(&input);
            assert_drawn(&svg);
            assert_eq!(svg.matches("<polygon").count(), 6 + 1);
        }
        let svg = pareto_svg(&all_nan);
        assert_drawn(&svg);
        assert_eq!(count_text(&svg, "no candidate has a finite perplexity"), 6);
    }

    #[test]
    fn search_draws_both_perplexities() {
        let svg = search_svg(&sample_input());
        assert_drawn(&svg);
        assert_eq!(count_text(&svg, "shared model, training"), 1);
        assert_eq!(count_text(&svg, "sampled cells, validation"), 1);
        for title in SEARCH_TITLES {
            assert_eq!(count_text(&svg, title), 1, "{title}");
        }
    }

    #[test]
    fn search_survives_few_epochs() {
        let svg = search_svg(&empty_input());
        assert_drawn(&svg);
        assert_eq!(count_text(&svg, "no search epochs"), 3);

        let mut one_epoch = sample_input();
        one_epoch.search_epochs.truncate(1);
        let svg = search_svg(&one_epoch);
        assert_drawn(&svg);
        assert_eq!(count_text(&svg, "no search epochs"), 0);

        let mut random = sample_input();
        for e in &mut random.search_epochs {
            e.mean_reward = None;
            e.sampled_valid_perplexity = None;
        }
        let svg = search_svg(&random);
        assert_drawn(&svg);
        assert_eq!(
            count_text(&svg, "not recorded (random search has no controller)"),
            1
        );
    }

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(format_tick(1_500_000.0, 500_000.0), "1.5M");
        assert_eq!(format_tick(500_000.0, 500_000.0), "500k");
        assert_eq!(format_tick(0.1 + 0.2, 0.1), "0.3");
        assert_eq!(format_tick(1002.0, 2.0), "1002");
        assert_eq!(format_tick(20_004.0, 2.0), "20.004k");
        assert_eq!(format_tick(-1e-17, 0.5), "0");

        let labels: Vec<String> = log_ticks(2.0, 3.6).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["100", "200", "500", "1000", "2000"]);
        let labels: Vec<String> = log_ticks(5.2, 6.6).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["200k", "300k", "500k", "700k", "1M", "2M", "3M"]);

        for (lo, hi) in [
            (0.0, 1.0),
            (0.1, 0.3),
            (117.0, 118.0),
            (1e5, 3.2e6),
            (-5.0, 5.0),
        ] {
            let ticks = linear_ticks(lo, hi);
            assert!(ticks.len() >= 3, "{lo}..{hi}: {ticks:?}");
            for (_, label) in ticks {
                assert!(label.len() <= 6, "{lo}..{hi}: {label}");
            }
        }
    }

    #[test]
    fn axis_switches_to_log_scale() {
        assert!(Axis::fit([1e5, 2e5, 3e6]).log);
        assert!(!Axis::fit([100.0, 150.0, 300.0]).log);
        assert!(!Axis::fit([0.0, 100.0, 1e6]).log, "zero has no logarithm");
        let single = Axis::fit([42.0]);
        assert!(single.lo < 42.0);
        assert!(single.hi > 42.0);
        let empty = Axis::fit([f64::NAN]);
        assert_eq!((empty.lo, empty.hi), (0.0, 1.0));
    }
}
