//! The exact solver: SciPy's choices, reproduced.
//!
//! SciPy's `linear_sum_assignment` runs Crouse's shortest augmenting path method; among the many
//! optimal assignments of a tie-heavy NNSTD cost matrix it picks one through the order in which it
//! scans columns and breaks ties. Later layers are aligned through that pick, so an "exact" NNSTD
//! must make the same pick. docs/definition.md#scipy-tie-rules states the rules; two implementations follow them:
//!
//! - [`solve_dense`]: over a dense matrix, every step one contiguous vectorised pass over all
//!   columns in column order, SciPy's list order kept only as a per-column preference
//!   (`scipy_order/dense.rs`).
//! - [`solve`]: the same arithmetic on a [`SparseCost`] whose absent entries are 1, without
//!   scanning every column at every step (`scipy_order/structured.rs`): a shared core (matching,
//!   duals, the augmentation's record) with two augmentation strategies on top, columns grouped
//!   by dual in ordered sets ([`Method::Grouped`]) or SciPy's list with lazy path costs
//!   summarised per block ([`Method::Blocked`]), chosen per augmentation
//!   ([`Method::Adaptive`]). Every float is computed by the same expression, in the same order,
//!   as in the dense scan, so the result is identical, element for element.
//!
//! The `try_` forms check a [`Cancel`] at every step of every augmentation and stop with
//! [`crate::error::Error::Interrupted`] once it is raised.

use std::borrow::Cow;

use super::{invert_matching, Assignment, UNMATCHED};
use crate::alloc;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

mod dense;
#[cfg(test)]
mod reference;
mod structured;

pub(crate) use structured::Method;

/// Solves a dense row-major `n_rows x n_cols` matrix exactly as SciPy does.
pub fn solve_dense(n_rows: usize, n_cols: usize, cost: &[f64]) -> Assignment {
    try_solve_dense(n_rows, n_cols, cost, &Cancel::new()).expect("never cancelled")
}

/// [`solve_dense`], stopping with [`crate::error::Error::Interrupted`] soon after `cancel` is
/// raised (it is checked at every step of every augmentation). Costs must be finite.
pub fn try_solve_dense(
    n_rows: usize,
    n_cols: usize,
    cost: &[f64],
    cancel: &Cancel,
) -> Result<Assignment> {
    assert_eq!(
        cost.len(),
        n_rows * n_cols,
        "dense cost has the wrong length"
    );
    if n_rows == 0 || n_cols == 0 {
        return Ok(Assignment {
            col_of_row: vec![UNMATCHED; n_rows],
            cost: 0.0,
        });
    }
    let transpose = n_rows > n_cols;
    let (nr, nc, c) = if transpose {
        (
            n_cols,
            n_rows,
            Cow::Owned(transposed(n_rows, n_cols, cost)?),
        )
    } else {
        (n_rows, n_cols, Cow::Borrowed(cost))
    };
    let col4row = dense::solve_wide(nr, nc, &c, cancel)?;
    let col_of_row = untranspose(col4row, n_rows, transpose);
    Ok(Assignment::from_matching(col_of_row, |i, j| {
        cost[i * n_cols + j]
    }))
}

/// The `n_cols x n_rows` transpose of a row-major `n_rows x n_cols` matrix.
fn transposed(n_rows: usize, n_cols: usize, cost: &[f64]) -> Result<Vec<f64>> {
    let mut t = alloc::zeros(cost.len(), "the transposed dense cost matrix")?;
    for i in 0..n_rows {
        for j in 0..n_cols {
            t[j * n_rows + i] = cost[i * n_cols + j];
        }
    }
    Ok(t)
}

/// Maps a solution of the (possibly transposed) wide problem back to the input's rows.
fn untranspose(col4row: Vec<usize>, n_rows: usize, transposed: bool) -> Vec<usize> {
    if transposed {
        invert_matching(&col4row, n_rows)
    } else {
        col4row
    }
}

/// Augments along the path that ends at `sink`.
fn flip_path(
    sink: usize,
    cur_row: usize,
    path: &[usize],
    row4col: &mut [usize],
    col4row: &mut [usize],
) {
    let mut j = sink;
    loop {
        let i = path[j];
        row4col[j] = i;
        std::mem::swap(&mut col4row[i], &mut j);
        if i == cur_row {
            break;
        }
    }
}

/// Solves a sparse cost matrix (absent entries are 1) exactly as SciPy would solve its dense form.
///
/// Matrices with a stored entry above 1 (never the case for NNSTD costs) go to [`solve_dense`].
pub fn solve(cost: &SparseCost) -> Assignment {
    try_solve(cost, &Cancel::new()).expect("never cancelled")
}

/// [`solve`], stopping with [`crate::error::Error::Interrupted`] soon after `cancel` is raised
/// (it is checked at every step of every augmentation).
pub fn try_solve(cost: &SparseCost, cancel: &Cancel) -> Result<Assignment> {
    solve_with(cost, Method::Adaptive, cancel)
}

/// [`try_solve`] with a chosen augmentation strategy (all make the same choices; the tests
/// check each against the others).
pub(crate) fn solve_with(cost: &SparseCost, method: Method, cancel: &Cancel) -> Result<Assignment> {
    if cost.n_rows == 0 || cost.n_cols == 0 {
        return Ok(Assignment {
            col_of_row: vec![UNMATCHED; cost.n_rows],
            cost: 0.0,
        });
    }
    match solve_structured(cost, method, cancel)? {
        Some((assignment, _, _)) => Ok(assignment),
        None => try_solve_dense(cost.n_rows, cost.n_cols, &cost.to_dense()?, cancel),
    }
}

/// SciPy's assignment with the optimal duals it ends with: `row_duals[i] + col_duals[j] <=
/// cost(i, j)` for every pair (up to rounding), with equality on the matched pairs. `None` for
/// empty matrices and matrices with entries above 1 (never NNSTD costs).
pub fn solve_with_duals(cost: &SparseCost) -> Option<(Assignment, Vec<f64>, Vec<f64>)> {
    try_solve_with_duals(cost, &Cancel::new()).expect("never cancelled")
}

/// [`solve_with_duals`], stopping soon after `cancel` is raised.
pub fn try_solve_with_duals(cost: &SparseCost, cancel: &Cancel) -> Result<Option<Solved>> {
    if cost.n_rows == 0 || cost.n_cols == 0 {
        return Ok(None);
    }
    solve_structured(cost, Method::Adaptive, cancel)
}

/// An assignment with SciPy's final row and column duals, in the input's orientation.
pub type Solved = (Assignment, Vec<f64>, Vec<f64>);

/// The structured solver on a non-empty matrix, transposed when tall, with its final duals in
/// the input's orientation; `None` when an entry is above 1 (the structure does not hold).
fn solve_structured(cost: &SparseCost, method: Method, cancel: &Cancel) -> Result<Option<Solved>> {
    if cost.vals.iter().any(|&c| c.is_nan() || c > 1.0) {
        return Ok(None);
    }
    let transpose = cost.n_rows > cost.n_cols;
    let (col4row, u, v) = if transpose {
        structured::run(&cost.transpose()?, method, cancel)?
    } else {
        structured::run(cost, method, cancel)?
    };
    let (row_duals, col_duals) = if transpose { (v, u) } else { (u, v) };
    let col_of_row = untranspose(col4row, cost.n_rows, transpose);
    let assignment = Assignment::from_matching(col_of_row, |i, j| cost.get(i, j));
    Ok(Some((assignment, row_duals, col_duals)))
}

#[cfg(test)]
mod tests;
