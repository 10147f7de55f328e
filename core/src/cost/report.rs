//! The terminal table of a `CostReport`.

use std::fmt;

use super::*;

/// Formats an integer-valued float without decimals, a value of 1 or more with 3 decimals and
/// a smaller one with 4 significant digits, so that small energies stay readable.
fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.3}")
    } else {
        let decimals = (3.0 - value.abs().log10().floor()).min(12.0) as usize;
        format!("{value:.decimals$}")
    }
}

/// Returns one table row: name, value, budget, unit and whether the budget is met, with `-`
/// for the budget and the verdict of a cost without a budget.
fn table_row(name: &str, value: f64, unit: &str, check: Option<&BudgetCheck>) -> [String; 5] {
    let (budget, met) = match check {
        Some(c) => (format_value(c.budget), if c.met { "yes" } else { "no" }),
        None => ("-".to_string(), "-"),
    };
    [
        name.to_string(),
        format_value(value),
        budget,
        unit.to_string(),
        met.to_string(),
    ]
}

/// Prints a header line, then a table with one row per cost, aligned for a terminal.
impl fmt::Display for CostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory = match self.weight_memory {
            WeightMemory::Sram { capacity_bytes, .. } => {
                format!("the {capacity_bytes}-byte SRAM tier")
            }
            WeightMemory::Dram { .. } => "DRAM".to_string(),
        };
        let source = match self.latency_source {
            LatencySource::Measured => "measured",
            LatencySource::Estimate => "estimate",
        };
        writeln!(
            f,
            "profile {} at {}: weights read from {memory}, latency {source}",
            self.profile, self.dtype
        )?;

        let row = |name: &str, value: f64, unit: &str| {
            table_row(
                name,
                value,
                unit,
                self.checks.iter().find(|c| c.name == name),
            )
        };
        let rows = [
            ["cost", "value", "budget", "unit", "met"].map(str::to_string),
            row("parameters", self.parameters as f64, ""),
            row("model size", self.model_bytes as f64, "bytes"),
            row("RAM", self.ram_bytes as f64, "bytes"),
            row("MACs", self.macs_per_word as f64, "/word"),
            row(
                "weights read",
                self.weight_bytes_read_per_word as f64,
                "bytes/word",
            ),
            row("arithmetic energy", self.arithmetic_uj_per_word, "uJ/word"),
            row("memory energy", self.memory_uj_per_word, "uJ/word"),
            row("energy", self.energy_uj_per_word, "uJ/word"),
            row("latency", self.latency_ms_per_word, "ms/word"),
        ];

        let mut widths = [0; 5];
        for cells in &rows {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.len());
            }
        }
        for [name, value, budget, unit, met] in &rows {
            let line = format!(
                "{name:<w0$}  {value:>w1$}  {budget:>w2$}  {unit:<w3$}  {met}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
