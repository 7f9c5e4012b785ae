//! The plain port of SciPy's `linear_sum_assignment` loop (tests only): the oracle that the
//! fast paths of this module are tested against.

use super::{flip_path, transposed, untranspose, UNMATCHED};

/// The plain port of SciPy's loop for `nr <= nc`, column list and all: the reference that the
/// fast paths are tested against.
pub(super) fn dense_wide(nr: usize, nc: usize, cost: &[f64]) -> Vec<usize> {
    let mut u = vec![0.0f64; nr];
    let mut v = vec![0.0f64; nc];
    let mut spc = vec![f64::INFINITY; nc];
    let mut path = vec![UNMATCHED; nc];
    let mut col4row = vec![UNMATCHED; nr];
    let mut row4col = vec![UNMATCHED; nc];
    let mut sr = vec![false; nr];
    let mut sc = vec![false; nc];
    let mut remaining = vec![0usize; nc];
    for cur_row in 0..nr {
        for (it, slot) in remaining.iter_mut().enumerate() {
            *slot = nc - it - 1;
        }
        sr.fill(false);
        sc.fill(false);
        spc.fill(f64::INFINITY);
        let mut num_remaining = nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            let mut index = UNMATCHED;
            let mut lowest = f64::INFINITY;
            sr[i] = true;
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let r = min_val + cost[i * nc + j] - u[i] - v[j];
                if r < spc[j] {
                    path[j] = i;
                    spc[j] = r;
                }
                if spc[j] < lowest || (spc[j] == lowest && row4col[j] == UNMATCHED) {
                    lowest = spc[j];
                    index = it;
                }
            }
            min_val = lowest;
            let j = remaining[index];
            sc[j] = true;
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
            if row4col[j] == UNMATCHED {
                break j;
            }
            i = row4col[j];
        };
        u[cur_row] += min_val;
        for i in (0..nr).filter(|&i| sr[i] && i != cur_row) {
            u[i] += min_val - spc[col4row[i]];
        }
        for j in (0..nc).filter(|&j| sc[j]) {
            v[j] -= min_val - spc[j];
        }
        flip_path(sink, cur_row, &path, &mut row4col, &mut col4row);
    }
    col4row
}

/// [`dense_wide`] on a matrix of any shape (transposed when tall, as SciPy does).
pub(super) fn dense(n_rows: usize, n_cols: usize, cost: &[f64]) -> Vec<usize> {
    if n_rows == 0 || n_cols == 0 {
        return vec![UNMATCHED; n_rows];
    }
    if n_rows > n_cols {
        let t = transposed(n_rows, n_cols, cost).unwrap();
        untranspose(dense_wide(n_cols, n_rows, &t), n_rows, true)
    } else {
        dense_wide(n_rows, n_cols, cost)
    }
}
