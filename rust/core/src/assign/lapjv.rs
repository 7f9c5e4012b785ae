//! The dense solver: Jonker and Volgenant's shortest augmenting path method (LAPJV) on a dense
//! cost matrix, for layers whose neurons mostly share inputs (medium density, conv layers).
//!
//! Jonker and Volgenant ("A shortest augmenting path algorithm for dense and sparse linear
//! assignment problems", Computing 38, 1987) start with three cheap phases that leave few rows
//! for the augmenting searches: column reduction (each column's minimum becomes its dual and its
//! row takes it), reduction transfer (a row that took one column moves its slack onto that
//! column), and two passes of augmenting row reduction (free rows bid for their cheapest column,
//! lowering its dual by the gap to their second cheapest, and push out its holder). The
//! remaining rows augment by Dijkstra searches for a shortest augmenting path.
//!
//! After column reduction, transfer, row reduction and the searches work on each row's list of
//! its cheapest columns, with a bound on the rest that stays valid because column duals only
//! fall ([`shortlist`]): a row step reads a few dozen entries instead of the whole row, and a row
//! is read whole only when its bound is reached, so the optimum is the dense method's. A search
//! that has to read many rows whole is left to the dense search (array scans over all columns).
//!
//! The result is an optimal assignment (to float rounding), not SciPy's particular one.
//! Rectangular matrices are made square: a tall one is transposed, a wide one gets rows of
//! zeros, which take the columns that no real row takes.

mod shortlist;

use self::shortlist::{ListedSearch, Shortlists, MAX_EXPANSIONS};
use super::search::{RowCosts, Workspace};
use super::{
    augmenting_row_reduction, invert_matching, Assignment, Bidder, Bidding, Duals, UNMATCHED,
};
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
        let (wide, duals) = solve_wide(&cost.transpose()?, cancel)?;
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
        padded = cost.padded_square()?;
        &padded
    } else {
        cost
    };
    let mut jv = Jv::new(square);
    jv.run(cancel, MAX_EXPANSIONS)?;
    // Row duals of the real rows: each row's reduced cost at its column (its minimum).
    let u: Vec<f64> = (0..n_rows)
        .map(|i| square.data[i * square.n_cols + jv.x[i]] - jv.v[jv.x[i]])
        .collect();
    let duals = Duals::from_assignment_duals(&u, &jv.v);
    let mut col_of_row = jv.x;
    col_of_row.truncate(n_rows);
    Ok((col_of_row, duals))
}

/// Passes of augmenting row reduction. Jonker and Volgenant use two; a bid on the candidate
/// lists reads a few dozen entries, while a row left for the searches settles hundreds of
/// columns on unrelated layers (measured at 4,096 wide, density 0.1: 4 passes leave 163 rows,
/// 16 leave 67 and save about a third of the searches' time).
const ROW_REDUCTION_PASSES: usize = 16;

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

    /// Solves; `max_expansions` as [`ListedSearch`] says, 0 for the dense search alone.
    fn run(&mut self, cancel: &Cancel, max_expansions: usize) -> Result<()> {
        let matches = self.column_reduction();
        // Column duals only fall from here on, which the lists rely on.
        let mut lists = Shortlists::of(self.c, self.n, &self.v);
        let free = self.reduction_transfer(matches, &mut lists);
        let mut u = vec![0.0; self.n];
        let free = augmenting_row_reduction(
            free,
            ROW_REDUCTION_PASSES,
            &mut ListBidder {
                c: self.c,
                n: self.n,
                lists: &mut lists,
            },
            &mut Bidding {
                u: &mut u,
                v: &mut self.v,
                col4row: &mut self.x,
                row4col: &mut self.y,
            },
        );
        let mut free_cols: Vec<usize> = (0..self.n).filter(|&j| self.y[j] == UNMATCHED).collect();
        for (i, &j) in self.x.iter().enumerate() {
            if j != UNMATCHED {
                u[i] = self.row(i)[j] - self.v[j];
            }
        }
        let mut listed = ListedSearch::new(self.n, max_expansions);
        // One workspace for both searches: each starts afresh.
        let mut ws = Workspace::new(self.n);
        for (k, &row) in free.iter().enumerate() {
            if k % 64 == 0 {
                cancel.check()?;
            }
            let done = max_expansions > 0
                && listed.worthwhile()
                && self.augment_listed(
                    row,
                    &mut free_cols,
                    &mut u,
                    &mut lists,
                    &mut listed,
                    &mut ws,
                )?;
            if !done {
                self.augment(row, &mut free_cols, &mut u, &mut ws);
            }
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
            column_minima(self.row(i), i, &mut self.v, &mut argmin);
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
    fn reduction_transfer(&mut self, matches: Vec<u32>, lists: &mut Shortlists) -> Vec<usize> {
        let mut free = Vec::new();
        for (i, &m) in matches.iter().enumerate() {
            match m {
                0 => free.push(i),
                1 => {
                    // The least reduced cost over the row's other columns.
                    let j1 = self.x[i];
                    let (u1, k1, u2, _) = lists.two_lowest(i, self.row(i), &self.v);
                    let min = if k1 == j1 { u2 } else { u1 };
                    if min.is_finite() {
                        self.v[j1] -= min;
                    }
                }
                _ => {}
            }
        }
        free
    }

    /// A shortest augmenting path from free row `start` (Dijkstra over dense arrays); updates
    /// the duals and the matching.
    ///
    /// Every step settles one column of least distance and relaxes its row over all columns in
    /// one branch-free pass ([`relax`]), which also finds the next least distance: contiguous
    /// arrays, so the pass runs at memory speed. Settled columns hold NaN as their distance, so
    /// they neither change nor win again. Among columns at the least distance a free one ends the
    /// search at once (the free columns are few and checked on their own).
    ///
    /// `u[i]` is `c[i][x[i]] - v[x[i]]` for every assigned row, kept up to date: reading it
    /// from the matrix when a row's turn comes would wait for memory before the row's pass
    /// could start, once per settled column.
    fn augment(
        &mut self,
        start: usize,
        free_cols: &mut Vec<usize>,
        u: &mut [f64],
        ws: &mut Workspace,
    ) {
        ws.begin_dense();
        let (d, pred) = ws.dense_arrays();
        let (mut min, mut next) = relax(self.row(start), &self.v, 0.0, start, d, pred);
        let sink = loop {
            if let Some(&j) = free_cols.iter().find(|&&j| ws.dist(j) == min) {
                break j;
            }
            let j1 = next;
            let i = self.y[j1];
            ws.settle_by_distance(j1, min);
            let h = u[i] - min;
            let (d, pred) = ws.dense_arrays();
            (min, next) = relax(self.row(i), &self.v, h, i, d, pred);
        };
        self.apply_path(start, sink, min, ws, u, free_cols);
    }

    /// Ends an augmenting search from `start` that reached free column `sink` at distance
    /// `min` (its settled columns and forest in `ws`): lowers the settled columns' duals so that the path is tight, flips
    /// the path, updates `u` where a row's column or its dual changed and takes `sink` off the
    /// free columns.
    fn apply_path(
        &mut self,
        start: usize,
        sink: usize,
        min: f64,
        ws: &Workspace,
        u: &mut [f64],
        free_cols: &mut Vec<usize>,
    ) {
        let k = free_cols
            .iter()
            .position(|&j| j == sink)
            .expect("the sink is a free column");
        free_cols.swap_remove(k);
        for &(j, dj) in ws.settled() {
            self.v[j] += dj - min;
        }
        let mut j = sink;
        loop {
            let i = ws.pred(j);
            self.y[j] = i;
            let previous = std::mem::replace(&mut self.x[i], j);
            if i == start {
                break;
            }
            j = previous;
        }
        // Every column whose dual or row changed is settled or the sink.
        for j in ws.settled().iter().map(|&(j, _)| j).chain([sink]) {
            let i = self.y[j];
            u[i] = self.row(i)[j] - self.v[j];
        }
    }
}

/// Row reduction's bids read from the candidate lists.
struct ListBidder<'a, 'l> {
    c: &'a [f64],
    n: usize,
    lists: &'l mut Shortlists,
}

impl Bidder for ListBidder<'_, '_> {
    fn two_lowest(&mut self, row: usize, v: &[f64]) -> (f64, usize, f64, usize) {
        let ci = &self.c[row * self.n..(row + 1) * self.n];
        self.lists.two_lowest(row, ci, v)
    }
}

/// The rows of a square matrix (`n * n`, row-major) as the list search reads one whole.
struct DenseRows<'a> {
    c: &'a [f64],
    n: usize,
}

impl RowCosts for DenseRows<'_> {
    fn degree(&self, _: usize) -> usize {
        self.n
    }
    fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.c[row * self.n..(row + 1) * self.n]
            .iter()
            .copied()
            .enumerate()
    }
}

/// `min[j] = c[j]`, `argmin[j] = i` where `c[j] < min[j]`: one row of the column reduction.
fn column_minima(c: &[f64], i: usize, min: &mut [f64], argmin: &mut [usize]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2::column_minima(c, i, min, argmin) };
    }
    for ((&cj, m), a) in c.iter().zip(min).zip(argmin) {
        if cj < *m {
            *m = cj;
            *a = i;
        }
    }
}

/// Lanes of the vectorised scans: the scalar and the AVX2 code keep the same per-lane minima, so
/// they return the same column, bit for bit.
const LANES: usize = 4;

/// Relaxes the distances `d` through row `i` (costs `ci`, column duals `v`, `h` the row's offset):
/// `d[j] = min(d[j], ci[j] - v[j] - h)`, `pred[j] = i` where it dropped; NaN distances stay.
/// Returns the least distance left and its column (the lowest such column; [`UNMATCHED`] when
/// every distance is NaN).
fn relax(
    ci: &[f64],
    v: &[f64],
    h: f64,
    i: usize,
    d: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2::relax(ci, v, h, i, d, pred) };
    }
    relax_portable(ci, v, h, i, d, pred)
}

fn relax_portable(
    ci: &[f64],
    v: &[f64],
    h: f64,
    i: usize,
    d: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    let n = d.len();
    let (ci, v, pred) = (&ci[..n], &v[..n], &mut pred[..n]);
    let mut min = [f64::INFINITY; LANES];
    let mut arg = [UNMATCHED; LANES];
    for j in 0..n {
        let r = ci[j] - v[j] - h;
        if r < d[j] {
            d[j] = r;
            pred[j] = i;
        }
        let lane = j % LANES;
        if d[j] < min[lane] {
            min[lane] = d[j];
            arg[lane] = j;
        }
    }
    lowest_of_lanes(min, arg)
}

/// The least of per-lane minima, the lowest column among equals.
fn lowest_of_lanes(min: [f64; LANES], arg: [usize; LANES]) -> (f64, usize) {
    let (mut best, mut col) = (f64::INFINITY, UNMATCHED);
    for (m, j) in min.into_iter().zip(arg) {
        if m < best || (m == best && j < col) {
            (best, col) = (m, j);
        }
    }
    (best, col)
}

/// The scans compiled for AVX2 (four float64 lanes), chosen at run time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{lowest_of_lanes, LANES, UNMATCHED};
    use std::arch::x86_64::*;

    /// [`super::relax_portable`] with AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn relax(
        ci: &[f64],
        v: &[f64],
        h: f64,
        i: usize,
        d: &mut [f64],
        pred: &mut [usize],
    ) -> (f64, usize) {
        let n = d.len();
        assert!(ci.len() >= n && v.len() >= n && pred.len() >= n);
        let body = n - n % LANES;
        let hv = _mm256_set1_pd(h);
        let iv = _mm256_castsi256_pd(_mm256_set1_epi64x(i as i64));
        let step = _mm256_set1_epi64x(LANES as i64);
        let mut idx = _mm256_setr_epi64x(0, 1, 2, 3);
        let mut min = _mm256_set1_pd(f64::INFINITY);
        let mut arg = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
        let (cp, vp) = (ci.as_ptr(), v.as_ptr());
        let (dp, pp) = (d.as_mut_ptr(), pred.as_mut_ptr() as *mut f64);
        let mut j = 0;
        while j < body {
            // SAFETY: j + LANES <= n <= every slice's length (asserted above).
            let r = _mm256_sub_pd(
                _mm256_sub_pd(_mm256_loadu_pd(cp.add(j)), _mm256_loadu_pd(vp.add(j))),
                hv,
            );
            let mut dj = _mm256_loadu_pd(dp.add(j));
            let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(r, dj);
            // Few distances drop after a search's first rows: skip the stores when none does.
            if _mm256_movemask_pd(lower) != 0 {
                // `min_pd(r, d)` is `r < d ? r : d`, so a NaN distance stays NaN.
                dj = _mm256_min_pd(r, dj);
                _mm256_storeu_pd(dp.add(j), dj);
                let pj = unconditional(_mm256_blendv_pd(_mm256_loadu_pd(pp.add(j)), iv, lower));
                _mm256_storeu_pd(pp.add(j), pj);
            }
            let better = _mm256_cmp_pd::<_CMP_LT_OQ>(dj, min);
            min = _mm256_blendv_pd(min, dj, better);
            arg = _mm256_blendv_pd(arg, _mm256_castsi256_pd(idx), better);
            idx = _mm256_add_epi64(idx, step);
            j += LANES;
        }
        let mut mins = [0.0; LANES];
        let mut args = [UNMATCHED; LANES];
        _mm256_storeu_pd(mins.as_mut_ptr(), min);
        _mm256_storeu_pd(args.as_mut_ptr() as *mut f64, arg);
        for j in body..n {
            let r = ci[j] - v[j] - h;
            if r < d[j] {
                d[j] = r;
                pred[j] = i;
            }
            let lane = j % LANES;
            if d[j] < mins[lane] {
                mins[lane] = d[j];
                args[lane] = j;
            }
        }
        lowest_of_lanes(mins, args)
    }

    /// `x`, hidden from the optimiser: a blend of a loaded vector stored back to the same place
    /// would otherwise become a masked store (`vmaskmovpd`), which is microcoded and many times
    /// slower on AMD processors than a load, a blend and a plain store.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn unconditional(mut x: __m256d) -> __m256d {
        // SAFETY: an empty instruction sequence that leaves the register as it is.
        std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(pure, nomem, nostack));
        x
    }

    /// [`super::column_minima`] with AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn column_minima(c: &[f64], i: usize, min: &mut [f64], argmin: &mut [usize]) {
        let n = min.len();
        assert!(c.len() >= n && argmin.len() >= n);
        let body = n - n % LANES;
        let iv = _mm256_castsi256_pd(_mm256_set1_epi64x(i as i64));
        let (mp, ap) = (min.as_mut_ptr(), argmin.as_mut_ptr() as *mut f64);
        let mut j = 0;
        while j < body {
            // SAFETY: j + LANES <= n <= every slice's length (asserted above).
            let cj = _mm256_loadu_pd(c.as_ptr().add(j));
            let mj = _mm256_loadu_pd(mp.add(j));
            let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(cj, mj);
            _mm256_storeu_pd(mp.add(j), _mm256_min_pd(cj, mj));
            let aj = unconditional(_mm256_blendv_pd(_mm256_loadu_pd(ap.add(j)), iv, lower));
            _mm256_storeu_pd(ap.add(j), aj);
            j += LANES;
        }
        for j in body..n {
            if c[j] < min[j] {
                min[j] = c[j];
                argmin[j] = i;
            }
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

    /// Tie-heavy values with NaN (settled) distances and every length modulo the lane count.
    fn scan_inputs(next: &mut impl FnMut() -> usize, n: usize) -> [Vec<f64>; 3] {
        let values = [0.0, 0.25, 0.5, 2.0 / 3.0, 1.0, -0.125];
        let mut pick = |nan: bool| -> Vec<f64> {
            (0..n)
                .map(|_| match next() % 8 {
                    7 if nan => f64::NAN,
                    6 if nan => f64::INFINITY,
                    k => values[k % values.len()],
                })
                .collect()
        };
        [pick(false), pick(false), pick(true)]
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_scans_make_the_portable_choices() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut next = crate::testing::numbers(99u64);
        for round in 0..2000 {
            let n = round % 37;
            let [c, v, d] = scan_inputs(&mut next, n);
            let h = [0.0, 0.25, -0.5][round % 3];
            let (mut d1, mut d2) = (d.clone(), d);
            let (mut p1, mut p2) = (vec![7; n], vec![7; n]);
            let portable = relax_portable(&c, &v, h, 3, &mut d1, &mut p1);
            // SAFETY: AVX2 was detected above.
            let vector = unsafe { avx2::relax(&c, &v, h, 3, &mut d2, &mut p2) };
            assert_eq!(portable.1, vector.1, "{c:?} {v:?}");
            assert_eq!(portable.0.to_bits(), vector.0.to_bits());
            assert_eq!(p1, p2);
            let bits = |x: &[f64]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&d1), bits(&d2));
        }
    }

    /// Matrices wider than a candidate list (so that the lists, their bounds and the fallback
    /// to whole rows are all used): the paper mode's optimum, and a valid certificate.
    #[test]
    fn optimal_beyond_the_candidate_lists() {
        let mut next = crate::testing::numbers(4242u64);
        for round in 0..90 {
            let (r, c) = (20 + next() % 130, 20 + next() % 130);
            // Few distinct values (ties everywhere; mostly 1: no shared input) or many (Jaccard
            // distances of small sets).
            let data: Vec<f64> = (0..r * c)
                .map(|_| {
                    if round % 3 == 0 {
                        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0][next() % 6]
                    } else if round % 3 == 1 {
                        [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0][next() % 8]
                    } else {
                        let union = 1 + next() % 40;
                        let shared = next() % (union + 1);
                        crate::similarity::set_distance(union, shared, shared)
                    }
                })
                .collect();
            let cost = DenseCost {
                n_rows: r,
                n_cols: c,
                data: data.clone(),
            };
            let (solved, duals) = solve_with_duals(&cost, &Cancel::new()).unwrap();
            let reference = crate::assign::scipy_order::solve_dense(r, c, &data);
            assert!((solved.cost - reference.cost).abs() < 1e-9, "{r}x{c}");
            let sparse = crate::similarity::SparseCost::from_dense(r, c, &data);
            assert!(duals.certify(&sparse, &solved.col_of_row), "{r}x{c}");
        }
    }

    /// The dense search alone, the list search with a small allowance of whole rows (often left
    /// to the dense search midway) and with none reach the same optimum.
    #[test]
    fn either_search_reaches_the_optimum() {
        let mut next = crate::testing::numbers(99u64);
        for round in 0..90 {
            let n = 1 + next() % 120;
            let values = [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0];
            let data: Vec<f64> = (0..n * n)
                .map(|_| match round % 3 {
                    0 => values[next() % values.len()],
                    1 => [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0][next() % 8],
                    _ => (next() % 1000) as f64 / 1000.0,
                })
                .collect();
            let cost = DenseCost {
                n_rows: n,
                n_cols: n,
                data: data.clone(),
            };
            let reference = crate::assign::scipy_order::solve_dense(n, n, &data).cost;
            for limit in [0, 1, usize::MAX] {
                let mut jv = Jv::new(&cost);
                jv.run(&Cancel::new(), limit).unwrap();
                let total: f64 = (0..n).map(|i| data[i * n + jv.x[i]]).sum();
                assert!((total - reference).abs() < 1e-9, "{n} {limit}");
            }
        }
    }

    #[test]
    fn optimal_on_small_tie_heavy_matrices() {
        let mut next = crate::testing::numbers(12345u64);
        for _ in 0..3000 {
            let (r, c) = (1 + next() % 6, 1 + next() % 6);
            let values = [0.0, 0.25, 0.5, 2.0 / 3.0, 1.0, 1.0, 1.0];
            let data: Vec<f64> = (0..r * c).map(|_| values[next() % values.len()]).collect();
            let cost = DenseCost {
                n_rows: r,
                n_cols: c,
                data: data.clone(),
            };
            let (solved, duals) = solve_with_duals(&cost, &Cancel::new()).unwrap();
            let sparse = crate::similarity::SparseCost::from_dense(r, c, &data);
            assert!(
                duals.certify(&sparse, &solved.col_of_row),
                "{r}x{c} {data:?}"
            );
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
