//! Least-squares fit of a profile's latency model to measured latencies.
//!
//! `edgenas_core::cost` estimates the time per word as
//! `overhead + MACs / rate(dtype) + element-wise ops / f32 rate`, with MACs and element-wise
//! operations counted by `macs_per_word` and `elementwise_ops_per_word`. In the unknowns
//! `a = 1 / f32 rate`, `b = 1 / int8 rate` and `c = overhead` (all in microseconds) this is
//! linear:
//!
//! ```text
//! float32 point:  t = a * (MACs + ops) + c
//! int8 point:     t = b * MACs + a * ops + c
//! ```
//!
//! The fit minimises the sum of squared relative residuals `((prediction - t) / t)^2`, that
//! is each row divided by its `t`. Times over a grid span two orders of magnitude, and plain
//! least squares would fit only the largest cells. A negative rate or overhead means nothing,
//! so the fit solves the problem on every subset of the unknowns, the others held at zero,
//! and keeps the best solution without a negative value. With three unknowns this is exact
//! non-negative least squares.

use edgenas_core::Dtype;

use super::Measurement;

/// Rates and overhead fitted to the measurements. A rate is `None` when no point of its dtype
/// was measured or the fit put its cost at zero. The profile then keeps its previous value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyFit {
    pub f32_macs_per_second: Option<f64>,
    pub int8_macs_per_second: Option<f64>,
    pub overhead_us_per_word: f64,
    /// Points the fit used.
    pub points: usize,
}

/// Columns of the design matrix: `a` (float32 slot), `b` (int8 MAC), `c` (overhead).
const UNKNOWNS: usize = 3;

/// Fits the latency model to `measurements` (see the module docs).
///
/// NOTE: the model charges every MAC the same time, but the time per MAC rises once the
/// weights outgrow the CPU caches, so the fit can be off by tens of percent between grid
/// points. The measured entries, not the rates, give the latency of a grid shape.
pub fn fit_latency(measurements: &[Measurement]) -> LatencyFit {
    let rows: Vec<([f64; UNKNOWNS], f64)> = measurements.iter().map(design_row).collect();
    let has_data = |j: usize| rows.iter().any(|(x, _)| x[j] != 0.0);

    let mut best: Option<([f64; UNKNOWNS], f64)> = None;
    for mask in 1..(1u32 << UNKNOWNS) {
        let free: Vec<usize> = (0..UNKNOWNS).filter(|&j| mask & (1 << j) != 0).collect();
        if free.iter().any(|&j| !has_data(j)) {
            continue;
        }
        let Some(solution) = solve_subset(&rows, &free) else {
            continue;
        };
        if solution.iter().any(|&value| value < 0.0) {
            continue;
        }
        let error = squared_error(&rows, &solution);
        if best.is_none_or(|(_, best_error)| error < best_error) {
            best = Some((solution, error));
        }
    }
    let coefficients = best.map(|(solution, _)| solution).unwrap_or([0.0; UNKNOWNS]);
    let rate = |us_per_mac: f64| (us_per_mac > 0.0).then(|| 1e6 / us_per_mac);
    LatencyFit {
        f32_macs_per_second: rate(coefficients[0]),
        int8_macs_per_second: rate(coefficients[1]),
        overhead_us_per_word: coefficients[2],
        points: measurements.len(),
    }
}

/// Returns one row of the design matrix and its target, both divided by the measured time.
fn design_row(m: &Measurement) -> ([f64; UNKNOWNS], f64) {
    let macs = m.macs_per_word as f64;
    let ops = m.elementwise_ops_per_word as f64;
    let x = match m.format.dtype() {
        Dtype::Float32 => [macs + ops, 0.0, 1.0],
        Dtype::Int8 => [ops, macs, 1.0],
    };
    let t = m.us_per_word;
    ([x[0] / t, x[1] / t, x[2] / t], 1.0)
}

fn squared_error(rows: &[([f64; UNKNOWNS], f64)], solution: &[f64; UNKNOWNS]) -> f64 {
    rows.iter()
        .map(|(x, y)| {
            let prediction: f64 = x.iter().zip(solution).map(|(a, b)| a * b).sum();
            (prediction - y).powi(2)
        })
        .sum()
}

/// Solves least squares over the columns in `free` through the normal equations, with every
/// column scaled to unit norm first because the MAC columns are about 10^6 times the
/// overhead column. Returns `None` when the columns are linearly dependent.
fn solve_subset(rows: &[([f64; UNKNOWNS], f64)], free: &[usize]) -> Option<[f64; UNKNOWNS]> {
    let k = free.len();
    let norms: Vec<f64> = free
        .iter()
        .map(|&j| rows.iter().map(|(x, _)| x[j] * x[j]).sum::<f64>().sqrt())
        .collect();
    // Augmented normal equations [X^T X | X^T y] of the scaled columns.
    let mut system = vec![vec![0.0; k + 1]; k];
    for (x, y) in rows {
        for p in 0..k {
            let xp = x[free[p]] / norms[p];
            for q in 0..k {
                system[p][q] += xp * x[free[q]] / norms[q];
            }
            system[p][k] += xp * y;
        }
    }
    let scaled = gaussian_elimination(system)?;
    let mut solution = [0.0; UNKNOWNS];
    for p in 0..k {
        solution[free[p]] = scaled[p] / norms[p];
    }
    Some(solution)
}

/// Solves the augmented system `[A | b]` with partial pivoting; `None` when `A` is singular.
fn gaussian_elimination(mut system: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let k = system.len();
    for col in 0..k {
        let pivot = (col..k).max_by(|&r, &s| system[r][col].abs().total_cmp(&system[s][col].abs()))?;
        // The scaled matrix has a unit diagonal, so a tiny pivot means dependent columns.
        if system[pivot][col].abs() < 1e-10 {
            return None;
        }
        system.swap(col, pivot);
        for row in col + 1..k {
            let factor = system[row][col] / system[col][col];
            for c in col..=k {
                system[row][c] -= factor * system[col][c];
            }
        }
    }
    let mut solution = vec![0.0; k];
    for row in (0..k).rev() {
        let known: f64 = (row + 1..k).map(|c| system[row][c] * solution[c]).sum();
        solution[row] = (system[row][k] - known) / system[row][row];
    }
    Some(solution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::WeightFormat;

    fn point(format: WeightFormat, macs: u64, ops: u64, us_per_word: f64) -> Measurement {
        Measurement {
            hidden_size: 1,
            num_nodes: 1,
            vocab_size: 3,
            format,
            us_per_word,
            macs_per_word: macs,
            elementwise_ops_per_word: ops,
        }
    }

    #[test]
    fn fit_recovers_exact_rates() {
        // 1 GMAC/s float32 (1e-3 us per MAC), 4 GMAC/s int8, 50 us overhead.
        let time = |dtype_us_per_mac: f64, macs: u64, ops: u64| {
            50.0 + dtype_us_per_mac * macs as f64 + 1e-3 * ops as f64
        };
        let mut points = Vec::new();
        for (macs, ops) in [(100_000, 5_000), (400_000, 9_000), (1_600_000, 20_000)] {
            points.push(point(WeightFormat::Float32, macs, ops, time(1e-3, macs, ops)));
            points.push(point(WeightFormat::Int8Weights, macs, ops + 100, time(2.5e-4, macs, ops + 100)));
        }
        let fit = fit_latency(&points);
        let f32_rate = fit.f32_macs_per_second.unwrap();
        let int8_rate = fit.int8_macs_per_second.unwrap();
        assert!((f32_rate / 1e9 - 1.0).abs() < 1e-6, "f32 rate {f32_rate}");
        assert!((int8_rate / 4e9 - 1.0).abs() < 1e-6, "int8 rate {int8_rate}");
        assert!((fit.overhead_us_per_word - 50.0).abs() < 1e-6);
    }

    #[test]
    fn fit_without_int8_points_keeps_int8_unset() {
        let points = [
            point(WeightFormat::Float32, 1_000, 10, 12.0),
            point(WeightFormat::Float32, 4_000, 20, 30.0),
        ];
        let fit = fit_latency(&points);
        assert_eq!(fit.int8_macs_per_second, None);
        assert!(fit.f32_macs_per_second.unwrap() > 0.0);
    }

    #[test]
    fn fit_clamps_negative_overhead_to_zero() {
        // Time grows faster than linearly, so an unconstrained line would cross below zero.
        let points = [
            point(WeightFormat::Float32, 1_000, 0, 1.0),
            point(WeightFormat::Float32, 2_000, 0, 4.0),
            point(WeightFormat::Float32, 3_000, 0, 9.0),
        ];
        let fit = fit_latency(&points);
        assert_eq!(fit.overhead_us_per_word, 0.0);
        assert!(fit.f32_macs_per_second.unwrap() > 0.0);
    }
}
