//! Linear assignment algorithms, one module each; [`Algorithm`] names them and
//! [`solve_layer`] runs the one a [`Plan`] chose (the choice is `crate::policy`'s).
//!
//! - [`exact`]: the shortest augmenting path method as SciPy runs it
//!   (docs/definition.md#scipy-tie-rules), so it picks the same optimal assignment as
//!   `scipy.optimize.linear_sum_assignment`: the paper mode.
//! - [`sparse`]: an optimal assignment from the similarity graph alone, in memory proportional
//!   to it: primal-dual phases with Hopcroft-Karp rounds.
//! - [`lapjv`]: an optimal assignment of a dense cost matrix (Jonker-Volgenant).
//! - [`canonical`]: the canonical choice among the optimal assignments that any of them found
//!   (the canonical mode), read from the certificate every algorithm gives ([`duals`]).

pub mod auction;
pub mod canonical;
pub mod duals;
pub mod exact;
pub mod lapjv;
pub mod sparse;
pub mod ssp;

pub use duals::Duals;

use crate::cancel::Cancel;
use crate::error::Result;
use crate::policy::Plan;
use crate::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, EmptyPairs, SparseCost,
};
use crate::topology::Layer;

/// An algorithm that solves a layer's assignment: what a layer reports it was solved with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SciPy's choices ([`exact`]), on the similarity graph or on a dense matrix.
    Paper,
    /// Primal-dual phases on the similarity graph ([`sparse`]).
    Sparse,
    /// Jonker-Volgenant on a dense matrix ([`lapjv`]).
    Dense,
    /// Optimal, ties broken canonically ([`canonical`]).
    Canonical,
}

impl Algorithm {
    /// The name users see (`Distance.solvers` in Python).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Paper => "paper",
            Algorithm::Sparse => "sparse",
            Algorithm::Dense => "dense",
            Algorithm::Canonical => "canonical",
        }
    }
}

/// Solves A's layer `a` against B's layer `b` (inputs aligned) as `plan` says. The canonical
/// mode needs structural colours and is run by `crate::network`.
///
/// Identical layers are matched neuron to neuron by every algorithm but the paper mode (which
/// makes SciPy's choice): among the optimal assignments (cost 0) the identity is the one that
/// keeps a network at distance 0 from itself in every later layer.
pub fn solve_layer(plan: Plan, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Assignment> {
    if plan.algorithm != Algorithm::Paper && a == b {
        return Ok(Assignment {
            col_of_row: (0..a.n_out()).collect(),
            cost: 0.0,
        });
    }
    match (plan.algorithm, plan.dense_costs) {
        (Algorithm::Sparse, _) => {
            let costs = layer_costs_with(a, b, EmptyPairs::Skip)?;
            sparse::solve(&costs, &empty_neurons(a), &empty_neurons(b), cancel)
        }
        (Algorithm::Dense, _) => lapjv::solve(&dense_layer_costs(a, b, cancel)?, cancel),
        (_, true) => {
            let costs = dense_layer_costs(a, b, cancel)?;
            exact::try_solve_dense(costs.n_rows, costs.n_cols, &costs.data, cancel)
        }
        (_, false) => exact::try_solve(&layer_costs(a, b)?, cancel),
    }
}

/// The lowest and second-lowest reduced cost `c - v[j]` over a row's `edges` `(j, c)`, with
/// their columns ([`UNMATCHED`] where there is none): what a row bids with in augmenting row
/// reduction (Jonker and Volgenant), in the dense and the sparse solver alike.
pub(crate) fn two_lowest(
    edges: impl Iterator<Item = (usize, f64)>,
    v: &[f64],
) -> (f64, usize, f64, usize) {
    let (mut u1, mut j1, mut u2, mut j2) = (f64::INFINITY, UNMATCHED, f64::INFINITY, UNMATCHED);
    for (j, c) in edges {
        let h = c - v[j];
        if h < u2 {
            if h >= u1 {
                (u2, j2) = (h, j);
            } else {
                (u2, j2) = (u1, j1);
                (u1, j1) = (h, j);
            }
        }
    }
    (u1, j1, u2, j2)
}

/// A matching and its duals, as augmenting row reduction changes them.
pub(crate) struct Bidding<'m> {
    /// Row duals: a bidder's is set to its reduced cost at the column it takes (after the
    /// dual moved), which stays a lower bound on its reduced costs if it is pushed out later.
    pub(crate) u: &'m mut [f64],
    pub(crate) v: &'m mut [f64],
    pub(crate) col4row: &'m mut [usize],
    pub(crate) row4col: &'m mut [usize],
}

/// What a row bids with in [`augmenting_row_reduction`]: its two lowest reduced costs
/// `c - v[j]` over all its columns, with their columns, as [`two_lowest`] defines them. The
/// sparse solvers read them from the row's edges, the dense solver from its candidate lists.
pub(crate) trait Bidder {
    fn two_lowest(&mut self, row: usize, v: &[f64]) -> (f64, usize, f64, usize);
}

/// A row's edges: `edges(row)` lists every `(column, cost)` of the row.
pub(crate) struct Edges<F>(pub(crate) F);

impl<F, I> Bidder for Edges<F>
where
    F: Fn(usize) -> I,
    I: Iterator<Item = (usize, f64)>,
{
    fn two_lowest(&mut self, row: usize, v: &[f64]) -> (f64, usize, f64, usize) {
        two_lowest((self.0)(row), v)
    }
}

/// `passes` passes of Jonker and Volgenant's augmenting row reduction over the `free` rows:
/// each row takes its cheapest column (least `c - v[j]`, as `bidder` finds it), lowering that
/// column's dual by the gap to its second cheapest (an auction bid with no increment), and
/// pushes out the column's holder, which bids next when the dual moved and in the next pass
/// otherwise. A column once taken stays taken, and every matched row keeps a cheapest column,
/// so row duals set afterwards (`c - v[col]`) make every reduced cost >= 0. Column duals only
/// decrease. Returns the rows still free. In each pass at most `4 * free.len() + 1024` bids
/// follow a moved dual at once, which bounds the bidding on tie-heavy layers.
pub(crate) fn augmenting_row_reduction(
    mut free: Vec<usize>,
    passes: usize,
    bidder: &mut impl Bidder,
    state: &mut Bidding,
) -> Vec<usize> {
    for _ in 0..passes {
        free = row_reduction_pass(free, bidder, state);
    }
    free
}

/// One pass of [`augmenting_row_reduction`].
fn row_reduction_pass(
    mut free: Vec<usize>,
    bidder: &mut impl Bidder,
    state: &mut Bidding,
) -> Vec<usize> {
    let mut next_free = Vec::new();
    let mut k = 0;
    let mut budget = 4 * free.len() + 1024;
    while k < free.len() {
        let row = free[k];
        k += 1;
        let (u1, mut j1, u2, j2) = bidder.two_lowest(row, state.v);
        if j1 == UNMATCHED {
            next_free.push(row); // no edge at all
            continue;
        }
        // The dual moves when the row has a strictly worse second choice.
        let moved = u1 < u2 && u2.is_finite();
        let mut pushed = state.row4col[j1];
        if moved {
            state.v[j1] -= u2 - u1;
        } else if pushed != UNMATCHED && j2 != UNMATCHED {
            j1 = j2;
            pushed = state.row4col[j2];
        }
        state.u[row] = if moved { u2 } else { u1 };
        if pushed != UNMATCHED {
            state.col4row[pushed] = UNMATCHED;
        }
        state.col4row[row] = j1;
        state.row4col[j1] = row;
        if pushed != UNMATCHED {
            if moved && budget > 0 {
                budget -= 1;
                k -= 1;
                free[k] = pushed;
            } else {
                next_free.push(pushed);
            }
        }
    }
    next_free
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
