//! Linear assignment algorithms, one module each; [`Algorithm`] names them (which one solves a
//! layer, and on which cost form, is `crate::policy`'s choice). They know nothing of modes or
//! networks: each takes costs and returns an optimal assignment.
//!
//! - [`scipy_order`]: the shortest augmenting path method as SciPy runs it
//!   (docs/definition.md#scipy-tie-rules), so it picks the same optimal assignment as
//!   `scipy.optimize.linear_sum_assignment`: the paper mode.
//! - [`sparse`]: an optimal assignment from the similarity graph alone, in memory proportional
//!   to it: primal-dual phases with Hopcroft-Karp rounds.
//! - [`lapjv`]: an optimal assignment of a dense cost matrix (Jonker-Volgenant).
//! - `search`: the shortest augmenting path search's state, which those of them that search
//!   share, over a cost form they each give (`search::RowCosts`).
//! - [`choice`]: the canonical choice among the optimal assignments that any of them found
//!   (the canonical mode), read from the certificate every algorithm gives ([`duals`]).

pub mod auction;
pub mod choice;
pub mod duals;
pub mod lapjv;
mod row_reduction;
pub mod scipy_order;
mod search;
pub mod sparse;
pub mod ssp;

pub use duals::Duals;
pub(crate) use row_reduction::{augmenting_row_reduction, two_lowest, Bidder, Bidding, Edges};

use crate::similarity::SparseCost;

/// An algorithm that solves a layer's assignment: what a layer reports it was solved with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SciPy's choices ([`scipy_order`]), on the similarity graph or on a dense matrix.
    Paper,
    /// Primal-dual phases on the similarity graph ([`sparse`]).
    Sparse,
    /// Jonker-Volgenant on a dense matrix ([`lapjv`]).
    Dense,
    /// Optimal, ties broken canonically ([`choice`]).
    Canonical,
    /// No choice: a fixed group of a graph keeps the identity (`crate::graph_match`).
    Fixed,
}

impl Algorithm {
    /// The name users see (`Distance.solvers` in Python).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Paper => "paper",
            Algorithm::Sparse => "sparse",
            Algorithm::Dense => "dense",
            Algorithm::Canonical => "canonical",
            Algorithm::Fixed => "fixed",
        }
    }
}

/// Empty neurons paired in index order, as the sparse solvers fix them up front: they cost 0
/// with each other (a pair not stored) and 1 with everything else.
pub(crate) fn empty_pairs(empty_rows: &[usize], empty_cols: &[usize]) -> Vec<(usize, usize)> {
    empty_rows
        .iter()
        .copied()
        .zip(empty_cols.iter().copied())
        .collect()
}

/// The assignment `col_of_row` of `cost` with the fixed empty `pairs` (increasing) at 0.
pub(crate) fn with_empty_pairs(
    col_of_row: Vec<usize>,
    cost: &SparseCost,
    pairs: &[(usize, usize)],
) -> Assignment {
    Assignment::from_matching(col_of_row, |i, j| {
        if pairs.binary_search(&(i, j)).is_ok() {
            0.0
        } else {
            cost.get(i, j)
        }
    })
}

/// Marks a row or column that has no partner.
pub const UNMATCHED: usize = usize::MAX;

/// A solved assignment in the orientation of the input matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `col_of_row[i]` is the column matched to row `i`, or [`UNMATCHED`] (more rows than columns).
    pub col_of_row: Vec<usize>,
    /// The sum of the matched costs, added in row order.
    pub cost: f64,
}

/// The inverse of a matching: `inverse[matching[j]] = j`, over `n` slots; slots no one maps to
/// stay [`UNMATCHED`]. Solving a transposed matrix and mapping back, or reading a `b -> a`
/// matching as `a -> b`, are both this.
pub fn invert_matching(matching: &[usize], n: usize) -> Vec<usize> {
    let mut inverse = vec![UNMATCHED; n];
    for (j, &i) in matching.iter().enumerate() {
        if i != UNMATCHED {
            inverse[i] = j;
        }
    }
    inverse
}

impl Assignment {
    /// Sums the matched costs in row order.
    pub fn from_matching(col_of_row: Vec<usize>, cost_of: impl Fn(usize, usize) -> f64) -> Self {
        let cost = col_of_row
            .iter()
            .enumerate()
            .filter(|&(_, &j)| j != UNMATCHED)
            .map(|(i, &j)| cost_of(i, j))
            .sum();
        Assignment { col_of_row, cost }
    }
}

/// A float with the total order of `f64::total_cmp`, for ordered sets and heaps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key(pub(crate) f64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
