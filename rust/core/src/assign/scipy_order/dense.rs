//! SciPy's shortest augmenting path on a dense matrix, with every scan one contiguous,
//! branch-free pass.
//!
//! SciPy scans the remaining columns in the order of its column list (which its swap-removal
//! shuffles), through an index array. Here every per-column array is kept in column order, so
//! that a step reads the cost row, the duals and the path costs sequentially and the compiler can
//! vectorise it; the list order enters only through each column's *preference* (below), which
//! turns SciPy's sequential tie rule into a comparison that any lane can make on its own.

use super::super::UNMATCHED;
use crate::cancel::Cancel;
use crate::error::Result;

/// SciPy's choice as an order, so that it can be computed out of list order. Among the columns at
/// the lowest path cost SciPy keeps the last free one in list order, else the first one. A
/// column's preference encodes that: `nc + pos` when free, `nc - 1 - pos` when not (`pos` its list
/// position). Free columns outrank taken ones, later free ones outrank earlier ones, earlier taken
/// ones outrank later ones, and no two remaining columns share a preference; so SciPy's pick is
/// the column with the lowest path cost and, among equals, the highest preference. Stored as
/// `f64` (exact below 2^53) so that the scan compares only lanes of one width.
fn preference(nc: usize, pos: usize, free: bool) -> f64 {
    (if free { nc + pos } else { nc - 1 - pos }) as f64
}

/// The best candidate of a scan so far: its path cost and [`preference`].
#[derive(Debug, Clone, Copy)]
struct Best {
    cost: f64,
    pref: f64,
}

impl Best {
    const NONE: Best = Best {
        cost: f64::INFINITY,
        pref: -1.0,
    };

    /// Keeps the candidate SciPy would keep between this one and (`cost`, `pref`).
    fn offer(&mut self, cost: f64, pref: f64) {
        if cost < self.cost || (cost == self.cost && pref > self.pref) {
            *self = Best { cost, pref };
        }
    }
}

/// Columns per [`Quad`].
const QUAD: usize = 4;

/// The scan's state for four consecutive columns, side by side, so that a step reads and writes
/// one stream (separate arrays of equal size alias in the store buffer and stall the loads).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Quad {
    spc: [f64; QUAD],
    reached: [f64; QUAD],
    dual: [f64; QUAD],
    pref: [f64; QUAD],
}

/// Per augmentation, by column (`quads[j / 4]`, lane `j % 4`). Invariants between steps:
/// - a remaining column `j` has `dual == v[j]`, `spc` its path cost so far (infinite before any
///   visited row reached it) and `reached` the step (counted from 1; the row is
///   `visited_rows[step - 1]`) that last lowered it, an integer held as `f64`;
/// - a removed column has `dual == -inf` and `spc == +inf`, so that no row lowers it (its
///   candidate `... - (-inf)` is `+inf`) and it never wins a step; its path cost at removal is in
///   `taken[j]`, and `pred[j]` is the row that gave it (read when the path is flipped);
/// - `list` is SciPy's column list (remaining columns first), `pos[j]` a remaining column's slot
///   in it, and `pref` its [`preference`].
struct Scan {
    nc: usize,
    avx: bool,
    quads: Vec<Quad>,
    pred: Vec<usize>,
    taken: Vec<f64>,
    pos: Vec<usize>,
    list: Vec<usize>,
    visited_rows: Vec<usize>,
    visited_cols: Vec<usize>,
}

impl Scan {
    fn new(nc: usize) -> Self {
        let empty = Quad {
            spc: [f64::INFINITY; QUAD],
            reached: [0.0; QUAD],
            dual: [0.0; QUAD],
            pref: [-1.0; QUAD],
        };
        Scan {
            nc,
            #[cfg(target_arch = "x86_64")]
            avx: std::arch::is_x86_feature_detected!("avx"),
            #[cfg(not(target_arch = "x86_64"))]
            avx: false,
            quads: vec![empty; nc.div_ceil(QUAD)],
            pred: vec![UNMATCHED; nc],
            taken: vec![f64::INFINITY; nc],
            pos: vec![0; nc],
            list: vec![0; nc],
            visited_rows: Vec::new(),
            visited_cols: Vec::new(),
        }
    }

    fn quad(&mut self, j: usize) -> (&mut Quad, usize) {
        (&mut self.quads[j / QUAD], j % QUAD)
    }

    /// Starts an augmentation: every column remaining, the list in descending column order.
    fn begin(&mut self, v: &[f64], row4col: &[usize]) {
        let nc = self.nc;
        for k in 0..self.visited_cols.len() {
            let j = self.visited_cols[k];
            let (q, l) = self.quad(j);
            q.dual[l] = v[j];
        }
        self.visited_rows.clear();
        self.visited_cols.clear();
        for (j, &holder) in row4col.iter().enumerate() {
            let p = nc - 1 - j;
            self.pos[j] = p;
            self.list[p] = j;
            let (q, l) = self.quad(j);
            q.spc[l] = f64::INFINITY;
            q.reached[l] = 0.0;
            q.pref[l] = preference(nc, p, holder == UNMATCHED);
        }
    }

    /// One step from row `i` (reached at `min_val`): lowers the path costs through row `i` and
    /// returns SciPy's pick, the remaining column to take next.
    fn step(&mut self, i: usize, min_val: f64, ui: f64, row: &[f64]) -> usize {
        self.visited_rows.push(i);
        let step = self.visited_rows.len() as f64;
        let n = self.nc;
        let row = &row[..n];
        let mut best = Best::NONE;
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx {
            // SAFETY: the CPU supports AVX (checked in `new`).
            (best, done) = unsafe { avx::relax(step, min_val, ui, row, &mut self.quads) };
        }
        for (j, &c) in row.iter().enumerate().skip(done) {
            let (q, l) = (&mut self.quads[j / QUAD], j % QUAD);
            let r = min_val + c - ui - q.dual[l];
            if r < q.spc[l] {
                q.spc[l] = r;
                q.reached[l] = step;
            }
            best.offer(q.spc[l], q.pref[l]);
        }
        self.column_of(best.pref)
    }

    /// The remaining column with preference `pref`.
    fn column_of(&self, pref: f64) -> usize {
        let (nc, pref) = (self.nc, pref as usize);
        self.list[if pref >= nc { pref - nc } else { nc - 1 - pref }]
    }

    /// Takes column `j` out of the list the way SciPy does (the last entry moves into its slot).
    fn remove(&mut self, j: usize, num_remaining: usize, row4col: &[usize]) {
        let (q, l) = (&mut self.quads[j / QUAD], j % QUAD);
        self.taken[j] = q.spc[l];
        self.pred[j] = self.visited_rows[q.reached[l] as usize - 1];
        q.spc[l] = f64::INFINITY;
        q.dual[l] = f64::NEG_INFINITY;
        self.visited_cols.push(j);
        let slot = self.pos[j];
        let last = num_remaining - 1;
        if slot != last {
            let k = self.list[last];
            self.list[slot] = k;
            self.pos[k] = slot;
            let pref = preference(self.nc, slot, row4col[k] == UNMATCHED);
            self.quad(k).0.pref[k % QUAD] = pref;
        }
    }
}

/// The dense augmenting-path loop for `nr <= nc`: the column of every row.
pub(super) fn solve_wide(
    nr: usize,
    nc: usize,
    cost: &[f64],
    cancel: &Cancel,
) -> Result<Vec<usize>> {
    let mut u = vec![0.0f64; nr];
    let mut v = vec![0.0f64; nc];
    let mut col4row = vec![UNMATCHED; nr];
    let mut row4col = vec![UNMATCHED; nc];
    let mut scan = Scan::new(nc);
    for cur_row in 0..nr {
        scan.begin(&v, &row4col);
        let mut num_remaining = nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            cancel.check()?;
            let j = scan.step(i, min_val, u[i], &cost[i * nc..(i + 1) * nc]);
            min_val = scan.quads[j / QUAD].spc[j % QUAD];
            scan.remove(j, num_remaining, &row4col);
            num_remaining -= 1;
            if row4col[j] == UNMATCHED {
                break j;
            }
            i = row4col[j];
        };
        u[cur_row] += min_val;
        for &i in &scan.visited_rows[1..] {
            u[i] += min_val - scan.taken[col4row[i]];
        }
        for &j in &scan.visited_cols {
            v[j] -= min_val - scan.taken[j];
        }
        super::flip_path(sink, cur_row, &scan.pred, &mut row4col, &mut col4row);
    }
    Ok(col4row)
}

/// The scan compiled for CPUs with AVX: four columns per instruction, two running candidates
/// per lane group (merged at the end), every choice a blend instead of a branch.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{Best, Quad, QUAD};

    /// Columns per iteration: two vectors of four.
    const STRIDE: usize = 8;

    /// How far ahead of the scan (in columns) the cost row is prefetched.
    const PREFETCH: usize = 256;

    /// The scan's relaxation and pick over the first `STRIDE * floor(n / STRIDE)` columns, `n`
    /// the length of `row` (`quads` holds at least `n` columns): (the best candidate among them,
    /// how many columns were done).
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn relax(
        step: f64,
        min_val: f64,
        ui: f64,
        row: &[f64],
        quads: &mut [Quad],
    ) -> (Best, usize) {
        let n = row.len();
        assert!(quads.len() * QUAD >= n);
        let whole = n - n % STRIDE;
        let min_val = _mm256_set1_pd(min_val);
        let ui = _mm256_set1_pd(ui);
        let step = _mm256_set1_pd(step);
        let mut best = [_mm256_set1_pd(f64::INFINITY); 2];
        let mut best_pref = [_mm256_set1_pd(-1.0); 2];
        let rp = row.as_ptr();
        let qp = quads.as_mut_ptr();
        let mut j = 0;
        while j < whole {
            // The cost row streams from memory: ask for it well ahead of the arithmetic.
            _mm_prefetch::<_MM_HINT_T0>(rp.wrapping_add(j + PREFETCH) as *const i8);
            for k in 0..2 {
                let at = j + QUAD * k;
                let q = qp.add(at / QUAD);
                let (sp, pp) = ((*q).spc.as_mut_ptr(), (*q).reached.as_mut_ptr());
                // SciPy's expression, left to right: ((min_val + c) - u[i]) - v[j].
                let r = _mm256_sub_pd(
                    _mm256_sub_pd(_mm256_add_pd(min_val, _mm256_loadu_pd(rp.add(at))), ui),
                    _mm256_load_pd((*q).dual.as_ptr()),
                );
                let old = _mm256_load_pd(sp);
                // Arithmetic rather than blends, which the compiler would turn into masked
                // stores (slow on some CPUs): `min` keeps `old` unless `r` is strictly lower,
                // and a lowered column's stamp becomes `step`, higher than any earlier stamp.
                let s = _mm256_min_pd(r, old);
                _mm256_store_pd(sp, s);
                let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(r, old);
                let stamp = _mm256_max_pd(_mm256_load_pd(pp), _mm256_and_pd(lower, step));
                _mm256_store_pd(pp, stamp);
                let f = _mm256_load_pd((*q).pref.as_ptr());
                let wins = _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_LT_OQ>(s, best[k]),
                    _mm256_and_pd(
                        _mm256_cmp_pd::<_CMP_EQ_OQ>(s, best[k]),
                        _mm256_cmp_pd::<_CMP_GT_OQ>(f, best_pref[k]),
                    ),
                );
                best[k] = _mm256_blendv_pd(best[k], s, wins);
                best_pref[k] = _mm256_blendv_pd(best_pref[k], f, wins);
            }
            j += STRIDE;
        }
        let mut merged = Best::NONE;
        for k in 0..2 {
            let (mut costs, mut prefs) = ([0.0f64; 4], [0.0f64; 4]);
            _mm256_storeu_pd(costs.as_mut_ptr(), best[k]);
            _mm256_storeu_pd(prefs.as_mut_ptr(), best_pref[k]);
            for (&cost, &pref) in costs.iter().zip(&prefs) {
                merged.offer(cost, pref);
            }
        }
        (merged, whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::scipy_order::reference;
    use crate::testing::{brute_force_optimum, numbers, tie_heavy};
    use proptest::prelude::*;

    /// A wide matrix from a tie-heavy one of any shape (transposed when tall).
    fn wide(r: usize, c: usize, m: Vec<f64>) -> (usize, usize, Vec<f64>) {
        if r <= c {
            return (r, c, m);
        }
        let t = (0..c * r).map(|k| m[(k % r) * c + k / r]).collect();
        (c, r, t)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn the_vectorised_scan_makes_the_plain_loops_choices((r, c, m) in tie_heavy(8)) {
            let (nr, nc, m) = wide(r, c, m);
            let got = solve_wide(nr, nc, &m, &Cancel::new()).unwrap();
            prop_assert_eq!(&got, &reference::dense_wide(nr, nc, &m));
            let cost: f64 = got.iter().enumerate().map(|(i, &j)| m[i * nc + j]).sum();
            prop_assert!((cost - brute_force_optimum(nr, nc, &m)).abs() < 1e-9);
        }
    }

    #[test]
    fn wide_matrices_past_one_quad_agree_with_the_plain_loop() {
        // Widths that are not multiples of the vector width, with distinct and equal values.
        let mut next = numbers(0xD1CE);
        for &(nr, nc) in &[(1, 1), (3, 5), (7, 9), (13, 30), (20, 21)] {
            for _ in 0..10 {
                let m: Vec<f64> = (0..nr * nc)
                    .map(|_| [1.0, 1.0, 0.5, 0.25, 0.0, 0.875][next() % 6])
                    .collect();
                assert_eq!(
                    solve_wide(nr, nc, &m, &Cancel::new()).unwrap(),
                    reference::dense_wide(nr, nc, &m),
                    "{nr}x{nc}"
                );
            }
        }
    }
}
