//! Pareto fronts and hypervolume for minimisation problems.
//!
//! A point dominates another when it is no worse in every objective and better in at least
//! one. Equal points do not dominate each other, so duplicates of a front point are all on the
//! front.

/// Returns whether `a` dominates `b`.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        better |= x < y;
    }
    better
}

/// Marks the points that no other point dominates.
pub fn front_mask(points: &[Vec<f64>]) -> Vec<bool> {
    points
        .iter()
        .map(|p| !points.iter().any(|q| dominates(q, p)))
        .collect()
}

/// Hypervolume dominated by `points` and bounded by `reference`: the measure of the set of
/// vectors that some point is no worse than and that are below `reference` in every
/// objective. Points outside the box (any objective at or above the reference) add nothing.
///
/// Exact, by slicing along the last objective and recursing (HSO; While et al. 2006). The cost
/// grows as `n^(d-1)` for `n` front points in `d` objectives, which is small for the fronts a
/// search produces, because the costs of a cell are strongly correlated.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.len() == reference.len() && p.iter().zip(reference).all(|(x, r)| x < r))
        .cloned()
        .collect();
    slice_volume(inside, reference)
}

fn slice_volume(points: Vec<Vec<f64>>, reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() || d == 0 {
        return if d == 0 && !points.is_empty() { 1.0 } else { 0.0 };
    }
    if d == 1 {
        let best = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return reference[0] - best;
    }
    let mask = front_mask(&points);
    let mut points: Vec<Vec<f64>> = points
        .into_iter()
        .zip(mask)
        .filter(|(_, on)| *on)
        .map(|(p, _)| p)
        .collect();
    points.sort_by(|a, b| a[d - 1].total_cmp(&b[d - 1]));
    points.dedup();
    let mut volume = 0.0;
    for i in 0..points.len() {
        let top = points.get(i + 1).map_or(reference[d - 1], |p| p[d - 1]);
        let depth = top - points[i][d - 1];
        if depth > 0.0 {
            let below: Vec<Vec<f64>> = points[..=i].iter().map(|p| p[..d - 1].to_vec()).collect();
            volume += depth * slice_volume(below, &reference[..d - 1]);
        }
    }
    volume
}

/// Hypervolume that `candidate` adds to `points`.
pub fn hypervolume_gain(points: &[Vec<f64>], candidate: &[f64], reference: &[f64]) -> f64 {
    let before = hypervolume(points, reference);
    let mut with = points.to_vec();
    with.push(candidate.to_vec());
    (hypervolume(&with, reference) - before).max(0.0)
}
