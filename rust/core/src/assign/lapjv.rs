//! The dense solver: Jonker and Volgenant's shortest augmenting path method (LAPJV) on a dense
//! cost matrix, for layers whose neurons mostly share inputs (medium density, conv layers).
//!
//! Jonker and Volgenant ("A shortest augmenting path algorithm for dense and sparse linear
//! assignment problems", Computing 38, 1987) start with three cheap phases that leave few rows
//! for the augmenting searches: column reduction (each column's minimum becomes its dual and its
//! row takes it), reduction transfer (a row that took one column moves its slack onto that
//! column), and two passes of augmenting row reduction (free rows bid for their cheapest column,
//! lowering its dual by the gap to their second cheapest, and push out its holder). The
//! remaining rows augment by a Dijkstra search over dense arrays that settles all columns at the
//! current minimum at once.
//!
//! The result is an optimal assignment (to float rounding), not SciPy's particular one.
//! Rectangular matrices are made square: a tall one is transposed, a wide one gets rows of
//! zeros, which take the columns that no real row takes.

use super::{invert_matching, two_lowest, Assignment, Duals, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::DenseCost;

/// An optimal assignment of `cost`; `cancel` is checked between augmentations.
pub fn solve(cost: &DenseCost, cancel: &Cancel) -> Result<Assignment> {
    Ok(solve_with_duals(cost, cancel)?.0)
}

/// [`solve`], with an optimal dual of the maximum-similarity matching ([`Duals`]; `cost`'s
/// entries are NNSTD costs in [0, 1], an absent pair being an entry of 1).
pub fn solve_with_duals(cost: &DenseCost, cancel: &Cancel) -> Result<(Assignment, Duals)> {
    if cost.n_rows == 0 || cost.n_cols == 0 {
        return Ok((
            Assignment {
                col_of_row: vec![UNMATCHED; cost.n_rows],
                cost: 0.0,
            },
            Duals {
                rows: vec![0.0; cost.n_rows],
                cols: vec![0.0; cost.n_cols],
            },
        ));
    }
    let (col_of_row, duals) = if cost.n_rows > cost.n_cols {
        let (wide, duals) = solve_wide(&cost.transpose(), cancel)?;
        let duals = Duals {
            rows: duals.cols,
            cols: duals.rows,
        };
        (invert_matching(&wide, cost.n_rows), duals)
    } else {
        solve_wide(cost, cancel)?
    };
    let assignment = Assignment::from_matching(col_of_row, |i, j| cost.data[i * cost.n_cols + j]);
    Ok((assignment, duals))
}

/// The column of every row, for `n_rows <= n_cols`, and the duals.
fn solve_wide(cost: &DenseCost, cancel: &Cancel) -> Result<(Vec<usize>, Duals)> {
    let n_rows = cost.n_rows;
    let padded;
    let square = if n_rows < cost.n_cols {
        padded = cost.padded_square();
        &padded
    } else {
        cost
    };
    let mut jv = Jv::new(square);
    jv.run(cancel)?;
    // Row duals of the real rows: each row's reduced cost at its column (its minimum).
    let u: Vec<f64> = (0..n_rows)
        .map(|i| square.data[i * square.n_cols + jv.x[i]] - jv.v[jv.x[i]])
        .collect();
    let duals = Duals::from_assignment_duals(&u, &jv.v);
    let mut col_of_row = jv.x;
    col_of_row.truncate(n_rows);
    Ok((col_of_row, duals))
}

/// LAPJV's state on a square matrix. Invariant after the initial phases: every reduced cost
/// `c[i][j] - v[j] - (c[i][x[i]] - v[x[i]])` of an assigned row is >= 0, so the assigned pairs
/// are optimal for the rows they cover.
struct Jv<'a> {
    n: usize,
    c: &'a [f64],
    v: Vec<f64>,
    /// `x[i]`: the column of row `i`, or [`UNMATCHED`].
    x: Vec<usize>,
    /// `y[j]`: the row of column `j`, or [`UNMATCHED`].
    y: Vec<usize>,
}

impl<'a> Jv<'a> {
    fn new(cost: &'a DenseCost) -> Self {
        let n = cost.n_rows;
        Jv {
            n,
            c: &cost.data,
            v: vec![0.0; n],
            x: vec![UNMATCHED; n],
            y: vec![UNMATCHED; n],
        }
    }

    fn row(&self, i: usize) -> &'a [f64] {
        &self.c[i * self.n..(i + 1) * self.n]
    }

    fn run(&mut self, cancel: &Cancel) -> Result<()> {
        let free = self.column_reduction();
        let mut free = self.reduction_transfer(free);
        for _ in 0..2 {
            free = self.augmenting_row_reduction(free);
        }
        let mut search = Search::new(self.n);
        for (k, &row) in free.iter().enumerate() {
            if k % 64 == 0 {
                cancel.check()?;
            }
            self.augment(row, &mut search);
        }
        Ok(())
    }

    /// Each column's minimum becomes its dual; the row holding it takes the column if it has
    /// none yet (scanning columns from the last). Returns how many columns each row is the
    /// minimum of.
    fn column_reduction(&mut self) -> Vec<u32> {
        let n = self.n;
        // Column minima by row-major passes (first row wins ties, as a column scan would).
        let mut argmin = vec![0usize; n];
        let first = self.row(0);
        self.v.copy_from_slice(first);
        for i in 1..n {
            for (j, &c) in self.row(i).iter().enumerate() {
                if c < self.v[j] {
                    self.v[j] = c;
                    argmin[j] = i;
                }
            }
        }
        let mut matches = vec![0u32; n];
        for j in (0..n).rev() {
            let i = argmin[j];
            matches[i] += 1;
            if matches[i] == 1 {
                self.x[i] = j;
                self.y[j] = i;
            }
        }
        matches
    }

    /// Rows that took exactly one column move their slack onto it: the column's dual drops to
    /// the row's cost there minus its second-best reduced cost. Returns the free rows.
    fn reduction_transfer(&mut self, matches: Vec<u32>) -> Vec<usize> {
        let mut free = Vec::new();
        for (i, &m) in matches.iter().enumerate() {
            match m {
                0 => free.push(i),
                1 => {
                    let j1 = self.x[i];
                    let row = self.row(i);
                    let min = (0..self.n)
                        .filter(|&j| j != j1)
                        .map(|j| row[j] - self.v[j])
                        .fold(f64::INFINITY, f64::min);
                    if min.is_finite() {
                        self.v[j1] -= min;
                    }
                }
                _ => {}
            }
        }
        free
    }

    /// One pass of augmenting row reduction over `free`: each free row takes its cheapest
    /// column, lowering that column's dual by the gap to its second cheapest so that it stays
    /// the row's best; the previous holder is processed next (when the dual moved) or left for
    /// the next pass. Returns the rows still free.
    fn augmenting_row_reduction(&mut self, mut free: Vec<usize>) -> Vec<usize> {
        let mut next_free = Vec::new();
        let mut k = 0;
        // Bounds the bidding on tie-heavy matrices (JV's two passes bound it across passes).
        let mut budget = 4 * self.n + free.len();
        while k < free.len() {
            let i = free[k];
            k += 1;
            let (u1, mut j1, u2, j2) = two_lowest(self.row(i).iter().copied().enumerate(), &self.v);
            let mut i0 = self.y[j1];
            if u1 < u2 {
                self.v[j1] -= u2 - u1;
            } else if i0 != UNMATCHED && j2 != UNMATCHED {
                j1 = j2;
                i0 = self.y[j2];
            }
            if i0 != UNMATCHED {
                self.x[i0] = UNMATCHED;
            }
            self.x[i] = j1;
            self.y[j1] = i;
            if i0 != UNMATCHED {
                if u1 < u2 && budget > 0 {
                    budget -= 1;
                    k -= 1;
                    free[k] = i0;
                } else {
                    next_free.push(i0);
                }
            }
        }
        next_free
    }

    /// A shortest augmenting path from free row `start` (Dijkstra over dense arrays, all
    /// columns at the current minimum settled together); updates the duals and the matching.
    fn augment(&mut self, start: usize, s: &mut Search) {
        let n = self.n;
        let row = self.row(start);
        for (j, (&c, &vj)) in row.iter().zip(&self.v).enumerate() {
            s.d[j] = c - vj;
            s.pred[j] = start;
            s.cols[j] = j;
        }
        // cols[..low]: settled; cols[low..up]: at the current minimum, to scan; cols[up..]: rest.
        let (mut low, mut up) = (0usize, 0usize);
        let mut min = 0.0;
        let mut last = 0;
        let sink = 'search: loop {
            if up == low {
                last = low;
                min = s.d[s.cols[up]];
                up += 1;
                let unscanned = up;
                for k in unscanned..n {
                    let j = s.cols[k];
                    let dj = s.d[j];
                    if dj <= min {
                        if dj < min {
                            up = low;
                            min = dj;
                        }
                        s.cols[k] = s.cols[up];
                        s.cols[up] = j;
                        up += 1;
                    }
                }
                for k in low..up {
                    let j = s.cols[k];
                    if self.y[j] == UNMATCHED {
                        break 'search j;
                    }
                }
            }
            let j1 = s.cols[low];
            low += 1;
            let i = self.y[j1];
            let ci = self.row(i);
            let h = ci[j1] - self.v[j1] - min;
            let mut k = up;
            while k < n {
                let j = s.cols[k];
                let v2 = ci[j] - self.v[j] - h;
                if v2 < s.d[j] {
                    s.pred[j] = i;
                    s.d[j] = v2;
                    if v2 == min {
                        if self.y[j] == UNMATCHED {
                            break 'search j;
                        }
                        s.cols[k] = s.cols[up];
                        s.cols[up] = j;
                        up += 1;
                    }
                }
                k += 1;
            }
        };
        for k in 0..last {
            let j = s.cols[k];
            self.v[j] += s.d[j] - min;
        }
        let mut j = sink;
        loop {
            let i = s.pred[j];
            self.y[j] = i;
            let previous = std::mem::replace(&mut self.x[i], j);
            if i == start {
                break;
            }
            j = previous;
        }
    }
}

/// Scratch arrays of one augmenting search, reused across searches.
struct Search {
    d: Vec<f64>,
    pred: Vec<usize>,
    cols: Vec<usize>,
}

impl Search {
    fn new(n: usize) -> Self {
        Search {
            d: vec![0.0; n],
            pred: vec![0; n],
            cols: vec![0; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(n_rows: usize, n_cols: usize, c: &[f64]) -> f64 {
        fn go(i: usize, r: usize, cols: usize, c: &[f64], used: &mut [bool]) -> f64 {
            if i == r {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..cols {
                if !used[j] {
                    used[j] = true;
                    best = best.min(c[i * cols + j] + go(i + 1, r, cols, c, used));
                    used[j] = false;
                }
            }
            best
        }
        if n_rows <= n_cols {
            go(0, n_rows, n_cols, c, &mut vec![false; n_cols])
        } else {
            let mut t = vec![0.0; c.len()];
            for i in 0..n_rows {
                for j in 0..n_cols {
                    t[j * n_rows + i] = c[i * n_cols + j];
                }
            }
            go(0, n_cols, n_rows, &t, &mut vec![false; n_rows])
        }
    }

    #[test]
    fn optimal_on_small_tie_heavy_matrices() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for _ in 0..3000 {
            let (r, c) = (1 + next() % 6, 1 + next() % 6);
            let values = [0.0, 0.25, 0.5, 2.0 / 3.0, 1.0, 1.0, 1.0];
            let data: Vec<f64> = (0..r * c).map(|_| values[next() % values.len()]).collect();
            let cost = DenseCost {
                n_rows: r,
                n_cols: c,
                data: data.clone(),
            };
            let solved = solve(&cost, &Cancel::new()).unwrap();
            let best = brute_force(r, c, &data);
            assert!((solved.cost - best).abs() < 1e-12, "{r}x{c} {data:?}");
            let mut used: Vec<usize> = solved
                .col_of_row
                .iter()
                .copied()
                .filter(|&j| j != UNMATCHED)
                .collect();
            assert_eq!(used.len(), r.min(c));
            used.sort_unstable();
            used.dedup();
            assert_eq!(used.len(), r.min(c));
        }
    }
}
