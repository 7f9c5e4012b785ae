//! Lexicographic assignment: optimal for the primary cost, and among the primary-optimal
//! assignments, optimal for a secondary cost.
//!
//! The primary-optimal assignments are exactly the perfect matchings on the edges whose reduced
//! cost is zero under an optimal dual solution (complementary slackness). The secondary solve is
//! restricted to those edges without any small-epsilon weighting: a tight edge costs
//! `secondary / (n + 1)` (so any matching of tight edges costs less than 1) and every other
//! pair costs 1, so no matching that leaves the tight edges can win. The result is checked
//! against the primary optimum and the primary assignment is kept if the check fails (a
//! rectangular layer whose duals leave a column that must be matched, or rounding).

use super::{exact, Assignment, UNMATCHED};
use crate::similarity::SparseCost;
use crate::topology::Idx;

/// Reduced costs within this of zero count as zero.
const TIGHT: f64 = 1e-9;

/// The assignment of `cost` that is optimal, and among optimal ones minimises the sum of
/// `secondary(i, j)` (values in [0, 1]). Remaining ties follow SciPy's rule applied with rows and
/// columns sorted by `row_keys` and `col_keys` (then by index), so that they depend on labels
/// only among rows (columns) with equal keys.
pub fn solve(
    cost: &SparseCost,
    secondary: impl Fn(usize, usize) -> f64,
    row_keys: &[u64],
    col_keys: &[u64],
) -> Assignment {
    let Some((primary, u, v)) = exact::solve_with_duals(cost) else {
        return exact::solve(cost);
    };
    let n = cost.n_rows.min(cost.n_cols);
    let scale = 1.0 / (n as f64 + 1.0);
    let row_order = canonical_order(row_keys);
    let col_order = canonical_order(col_keys);
    let mut col_rank = vec![0usize; cost.n_cols];
    for (rank, &j) in col_order.iter().enumerate() {
        col_rank[j] = rank;
    }
    // The tight edges, rows and columns in canonical order.
    let mut rowptr = vec![0usize];
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    let mut entries: Vec<(usize, f64)> = Vec::new();
    for &i in &row_order {
        entries.clear();
        let mut stored = cost.row(i).peekable();
        for (j, &vj) in v.iter().enumerate() {
            let c = match stored.peek() {
                Some(&(col, c)) if col == j => {
                    stored.next();
                    c
                }
                _ => 1.0,
            };
            if (c - u[i] - vj).abs() <= TIGHT {
                entries.push((col_rank[j], secondary(i, j).clamp(0.0, 1.0) * scale));
            }
        }
        entries.sort_unstable_by_key(|&(rank, _)| rank);
        cols.extend(entries.iter().map(|&(rank, _)| rank as Idx));
        vals.extend(entries.iter().map(|&(_, value)| value));
        rowptr.push(cols.len());
    }
    let tight = SparseCost {
        n_rows: cost.n_rows,
        n_cols: cost.n_cols,
        rowptr,
        cols,
        vals,
    };
    let second = exact::solve(&tight);
    let mut col_of_row = vec![UNMATCHED; cost.n_rows];
    for (rank, &col_rank) in second.col_of_row.iter().enumerate() {
        if col_rank != UNMATCHED {
            col_of_row[row_order[rank]] = col_order[col_rank];
        }
    }
    let candidate = Assignment::from_matching(col_of_row, |i, j| cost.get(i, j));
    let complete = candidate
        .col_of_row
        .iter()
        .filter(|&&j| j != UNMATCHED)
        .count()
        == n;
    if complete && candidate.cost <= primary.cost + TIGHT * primary.cost.max(1.0) {
        candidate
    } else {
        primary
    }
}

/// Indices sorted by key, then by index.
fn canonical_order(keys: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| (keys[i], i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_chooses_among_optimal_assignments_only() {
        // Two optimal assignments (cost 1.0): identity and swap. The secondary prefers the swap;
        // the cheaper-secondary but suboptimal pairing (0,2) must not be chosen.
        let dense = [0.5, 0.5, 0.9, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0];
        let cost = SparseCost::from_dense(3, 3, &dense);
        let prefer = |i: usize, j: usize| {
            if (i, j) == (0, 1) || (i, j) == (1, 0) {
                0.0
            } else {
                1.0
            }
        };
        let solved = solve(&cost, prefer, &[0, 0, 0], &[0, 0, 0]);
        assert_eq!(solved.col_of_row, vec![1, 0, 2]);
        assert_eq!(solved.cost, exact::solve(&cost).cost);
    }
}
