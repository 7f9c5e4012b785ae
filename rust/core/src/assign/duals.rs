//! A certificate of optimality that every algorithm can give, whatever its own formulation:
//! an optimal dual solution of the *maximum-similarity matching* (docs/definition.md#optimal-set).
//!
//! With absent pairs at cost 1, an assignment's cost is `n - sum of the similarities 1 - c` of
//! the stored pairs it uses (`n` the narrower side), so the optimal assignments are exactly the
//! matchings of stored pairs of maximum total similarity, completed by pairing the neurons left
//! over in any way. That matching problem has the dual: `x[i] >= 0` per row, `y[j] >= 0` per
//! column, `x[i] + y[j] >= 1 - c(i, j)` for every stored pair. A matching and a dual are both
//! optimal exactly when every matched pair is tight (`x[i] + y[j] = 1 - c(i, j)`) and every
//! neuron with a positive dual is matched by a stored pair (complementary slackness).
//!
//! The dense solvers, the sparse ones and SciPy's each end with duals of their own problem;
//! the conversions below turn them into this common form, so that the canonical mode can read
//! the set of optimal assignments (the same for every optimal dual) from any of them.

use super::UNMATCHED;
use crate::alloc;
use crate::error::Result;
use crate::similarity::{DenseCost, SparseCost};
use crate::topology::Idx;

/// A layer's stored pairs (cost below 1, other than between two empty neurons), however the
/// costs are held.
pub trait StoredPairs {
    fn n_rows(&self) -> usize;
    fn n_cols(&self) -> usize;
    /// Row `i`'s stored `(column, cost)` pairs, columns increasing.
    fn stored(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_;
    /// At least the number of row `i`'s stored pairs, read in constant time.
    fn stored_bound(&self, i: usize) -> usize;
    /// The cost of any pair (1 for a pair not stored).
    fn cost(&self, i: usize, j: usize) -> f64;
    /// Whether pair `(i, j)` is stored.
    fn is_stored(&self, i: usize, j: usize) -> bool {
        self.cost(i, j) < 1.0
    }
    /// Whether pair `(i, j)` costs less than 1 without being stored (two empty neurons, where
    /// their zero cost is held but not counted as stored).
    fn is_unstored_below_one(&self, _i: usize, _j: usize) -> bool {
        false
    }
    /// Checks row `i`'s stored pairs against its dual `x` and the column duals `y`: false if
    /// one is violated (`x + y[j] < 1 - c - SLACK`); otherwise the tight ones (`x + y[j] <=
    /// 1 - c + SLACK`) are appended to `tight`, columns increasing.
    fn scan_row(&self, i: usize, x: f64, y: &[f64], tight: &mut Vec<Idx>) -> bool {
        for (j, c) in self.stored(i) {
            let slack = x + y[j] - (1.0 - c);
            if slack < -SLACK {
                return false;
            }
            if slack <= SLACK {
                tight.push(j as Idx);
            }
        }
        true
    }
}

impl StoredPairs for SparseCost {
    fn n_rows(&self) -> usize {
        self.n_rows
    }
    fn n_cols(&self) -> usize {
        self.n_cols
    }
    fn stored(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.row(i).filter(|&(_, c)| c < 1.0)
    }
    fn stored_bound(&self, i: usize) -> usize {
        self.rowptr[i + 1] - self.rowptr[i]
    }
    fn cost(&self, i: usize, j: usize) -> f64 {
        self.get(i, j)
    }
    /// The default's test on the row's slices directly, without a branch per pair (the
    /// certificate's pass over every stored pair is a tenth of a small layer's canonical
    /// time): each pair is written past the tight ones and kept by advancing the count, and
    /// the least slack is checked once, at the end of the row.
    fn scan_row(&self, i: usize, x: f64, y: &[f64], tight: &mut Vec<Idx>) -> bool {
        let span = self.rowptr[i]..self.rowptr[i + 1];
        let start = tight.len();
        tight.resize(start + span.len(), 0);
        let (mut kept, mut least) = (start, f64::INFINITY);
        for (&j, &c) in self.cols[span.clone()].iter().zip(&self.vals[span]) {
            let slack = x + y[j as usize] - (1.0 - c);
            // Only stored pairs count (`c < 1`, false for a NaN too, as for the default).
            let stored = c < 1.0;
            least = if stored { least.min(slack) } else { least };
            tight[kept] = j;
            kept += usize::from(stored && slack <= SLACK);
        }
        tight.truncate(kept);
        least >= -SLACK
    }
}

/// The stored pairs of a dense cost matrix, read in place: entries below 1, except between two
/// empty neurons (whose zero cost the sparse view does not store either).
pub struct DenseStored<'a> {
    pub dense: &'a DenseCost,
    pub empty_row: Vec<bool>,
    pub empty_col: Vec<bool>,
}

impl StoredPairs for DenseStored<'_> {
    fn n_rows(&self) -> usize {
        self.dense.n_rows
    }
    fn n_cols(&self) -> usize {
        self.dense.n_cols
    }
    fn stored(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let row_empty = self.empty_row[i];
        self.dense
            .row(i)
            .iter()
            .enumerate()
            .filter(move |&(j, &c)| c < 1.0 && !(row_empty && self.empty_col[j]))
            .map(|(j, &c)| (j, c))
    }
    fn stored_bound(&self, _: usize) -> usize {
        self.dense.n_cols
    }
    fn cost(&self, i: usize, j: usize) -> f64 {
        self.dense.data[i * self.dense.n_cols + j]
    }
    fn is_stored(&self, i: usize, j: usize) -> bool {
        self.cost(i, j) < 1.0 && !(self.empty_row[i] && self.empty_col[j])
    }
    fn is_unstored_below_one(&self, i: usize, j: usize) -> bool {
        self.empty_row[i] && self.empty_col[j] && self.cost(i, j) < 1.0
    }
    /// The same test as the default, over the whole row in blocks: a block with neither a
    /// violated nor a tight pair (nearly all of them) is passed by one branch-free test.
    fn scan_row(&self, i: usize, x: f64, y: &[f64], tight: &mut Vec<Idx>) -> bool {
        if self.empty_row[i] {
            return true; // cost 1 with every neuron but the empty ones, which are not stored
        }
        const BLOCK: usize = 8;
        let row = self.dense.row(i);
        // `x + y[j] - (1 - c) <= SLACK` (tight or violated) for a stored pair.
        let close = |c: f64, yj: f64| c < 1.0 && x + yj - (1.0 - c) <= SLACK;
        for (b, (cs, ys)) in row.chunks(BLOCK).zip(y.chunks(BLOCK)).enumerate() {
            let any = cs
                .iter()
                .zip(ys)
                .fold(false, |any, (&c, &yj)| any | close(c, yj));
            if !any {
                continue;
            }
            for (k, (&c, &yj)) in cs.iter().zip(ys).enumerate() {
                if close(c, yj) {
                    if x + yj - (1.0 - c) < -SLACK {
                        return false;
                    }
                    tight.push((b * BLOCK + k) as Idx);
                }
            }
        }
        true
    }
}

/// The tight stored pairs of every row under some duals, in CSR form: row `i`'s columns are
/// `cols[ptr[i]..ptr[i + 1]]`, increasing.
pub struct Tight {
    pub ptr: Vec<usize>,
    pub cols: Vec<Idx>,
}

/// Slack within which a dual constraint counts as met or tight. Costs are ratios of small
/// integers in [0, 1]; the solvers' rounding stays many orders of magnitude below this, and two
/// distinct costs differ by far more.
pub const SLACK: f64 = 1e-9;

/// An optimal dual of the maximum-similarity matching (module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Duals {
    /// `x[i]` for row `i` (a neuron of A); >= 0, and 0 unless row `i` must be matched by a
    /// stored pair in every optimal assignment.
    pub rows: Vec<f64>,
    /// `y[j]` for column `j` (a neuron of B); same conditions.
    pub cols: Vec<f64>,
}

impl Duals {
    /// From the duals `u` (rows) and `v` (columns) of the rectangular assignment of a cost
    /// matrix whose absent pairs cost 1, optimal for it: `u[i] + v[j] <= c(i, j)` for every pair,
    /// equality on the assigned ones, the narrower side fully assigned.
    ///
    /// Why this is optimal for the matching problem: say rows are the narrower side, and let
    /// `V = max v`. Some column (one left over, or any column if there are as many rows) keeps
    /// `v = V`, so `u[i] + V <= 1` and `x[i] = 1 - u[i] - V >= 0`; `y[j] = V - v[j] >= 0`; and
    /// `x[i] + y[j] = 1 - u[i] - v[j] >= 1 - c(i, j)`, with equality on assigned pairs. A neuron
    /// paired at cost 1 (or left over) can swap partners with a left-over one at no cost, so it
    /// is tight against a column at `V`, which makes its dual 0.
    pub fn from_assignment_duals(u: &[f64], v: &[f64]) -> Duals {
        if u.len() <= v.len() {
            let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Duals {
                rows: u.iter().map(|&ui| (1.0 - ui - top).max(0.0)).collect(),
                cols: v.iter().map(|&vj| (top - vj).max(0.0)).collect(),
            }
        } else {
            let flipped = Duals::from_assignment_duals(v, u);
            Duals {
                rows: flipped.cols,
                cols: flipped.rows,
            }
        }
    }

    /// The duals of the problem on the stored entries alone when `fixed` pairs (empty neurons,
    /// matched up front at no stored entry) are set aside: their neurons' duals become 0.
    pub fn without_fixed(mut self, fixed: &[(usize, usize)]) -> Duals {
        for &(i, j) in fixed {
            self.rows[i] = 0.0;
            self.cols[j] = 0.0;
        }
        self
    }

    /// Whether these duals and `col_of_row` (any complete assignment) are both optimal for
    /// `cost` (absent pairs cost 1): the conditions of the module documentation, to [`SLACK`].
    pub fn certify(&self, cost: &impl StoredPairs, col_of_row: &[usize]) -> bool {
        matches!(self.certified_tight(cost, col_of_row), Ok(Some(_)))
    }

    /// The tight stored pairs when these duals certify `col_of_row` ([`Duals::certify`]), read
    /// in the same pass; `None` when they do not. An error only when the system refuses memory
    /// for the tight pairs (as many as the stored ones).
    pub fn certified_tight(
        &self,
        cost: &impl StoredPairs,
        col_of_row: &[usize],
    ) -> Result<Option<Tight>> {
        let (n_rows, n_cols) = (cost.n_rows(), cost.n_cols());
        if self.rows.len() != n_rows || self.cols.len() != n_cols || col_of_row.len() != n_rows {
            return Ok(None);
        }
        if self
            .rows
            .iter()
            .chain(&self.cols)
            .any(|&d| d.is_nan() || d < -SLACK)
        {
            return Ok(None);
        }
        let mut col_used = vec![false; n_cols];
        let mut tight = Tight {
            ptr: Vec::with_capacity(n_rows + 1),
            cols: Vec::new(),
        };
        tight.ptr.push(0);
        for (i, &partner) in col_of_row.iter().enumerate() {
            let start = tight.cols.len();
            alloc::grow(&mut tight.cols, cost.stored_bound(i), "the tight pairs")?;
            if !cost.scan_row(i, self.rows[i], &self.cols, &mut tight.cols) {
                return Ok(None);
            }
            // The partner is a stored pair (which must be tight), or the row's dual is 0. The
            // row's few tight pairs are looked at first: every tight pair is stored.
            let paired = partner != UNMATCHED;
            if paired && tight.cols[start..].contains(&(partner as Idx)) {
                col_used[partner] = true;
            } else if (paired && cost.is_stored(i, partner)) || self.rows[i] > SLACK {
                return Ok(None);
            }
            tight.ptr.push(tight.cols.len());
        }
        let leftover_col_with_dual = (0..n_cols).any(|j| !col_used[j] && self.cols[j] > SLACK);
        let assigned = col_of_row.iter().filter(|&&j| j != UNMATCHED).count();
        Ok((!leftover_col_with_dual && assigned == n_rows.min(n_cols)).then_some(tight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_duals_convert_to_a_certificate() {
        // Rows 0, 1 share column 0 (costs 0.5, 0.25); row 1 also has column 1 at 0.5.
        let dense = [0.5, 1.0, 1.0, 0.25, 0.5, 1.0];
        let cost = SparseCost::from_dense(2, 3, &dense);
        // Optimal: row 0 -> 0 (0.5), row 1 -> 1 (0.5): 1.0 (row 1 -> 0 and row 0 left: 1.25).
        let (u, v) = (vec![0.5, 0.25], vec![0.0, 0.25, 0.5]);
        let duals = Duals::from_assignment_duals(&u, &v);
        assert!(duals.certify(&cost, &[0, 1]));
        assert!(!duals.certify(&cost, &[1, 0]));
        // Wrong duals are caught: no dual at all leaves stored pairs uncovered.
        let zero = Duals {
            rows: vec![0.0; 2],
            cols: vec![0.0; 3],
        };
        assert!(!zero.certify(&cost, &[0, 1]));
    }

    /// A sparse cost read through the trait's default scan.
    struct ByDefault<'a>(&'a SparseCost);

    impl StoredPairs for ByDefault<'_> {
        fn n_rows(&self) -> usize {
            self.0.n_rows
        }
        fn n_cols(&self) -> usize {
            self.0.n_cols
        }
        fn stored(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
            self.0.stored(i)
        }
        fn stored_bound(&self, i: usize) -> usize {
            self.0.stored_bound(i)
        }
        fn cost(&self, i: usize, j: usize) -> f64 {
            self.0.get(i, j)
        }
    }

    #[test]
    fn the_sparse_scan_agrees_with_the_default() {
        // A row with tight, slack and violated pairs, an entry at cost 1 (not stored, though
        // its slack is negative) and a NaN column dual (neither tight nor violated).
        let cost = SparseCost {
            n_rows: 1,
            n_cols: 5,
            rowptr: vec![0, 5],
            cols: vec![0, 1, 2, 3, 4],
            vals: vec![0.5, 0.5, 1.0, 0.75, 0.5],
        };
        let y = [0.25, 0.5, -0.5, 0.0, f64::NAN];
        for x in [0.25, 0.3, 0.2, 0.25 - 2e-10, 0.0] {
            let (mut fast, mut slow) = (vec![9], vec![9]);
            let kept = cost.scan_row(0, x, &y, &mut fast);
            assert_eq!(
                kept,
                ByDefault(&cost).scan_row(0, x, &y, &mut slow),
                "x = {x}"
            );
            if kept {
                assert_eq!(fast, slow, "x = {x}");
            }
        }
        // x = 0.25: pairs 0 and 3 (slack 0), not 1 (slack 0.25): kept, tight 0 and 3.
        let mut tight = Vec::new();
        assert!(cost.scan_row(0, 0.25, &y, &mut tight));
        assert_eq!(tight, vec![0, 3]);
        // x = 0.2: pair 0 falls short by 0.05.
        assert!(!cost.scan_row(0, 0.2, &y, &mut Vec::new()));
    }
}
