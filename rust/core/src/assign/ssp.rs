//! Row-by-row successive shortest paths on the similarity graph (the dummy-column form of
//! docs/definition.md#sparse-view): one Dijkstra search per row that the cheapest-edge start
//! leaves free, each ending at the latest at that row's own dummy column.
//!
//! For `n_rows <= n_cols` and absent entries equal to 1, giving every row a private dummy column
//! at cost 1 turns the assignment into a row-perfect min-cost matching on `stored + n_rows`
//! edges. A search only explores neurons that can still improve on cost 1, so when almost every
//! row's cheapest partner is its own (near-twins, related snapshots) the few searches are short
//! and this beats the phased method of [`super::sparse`], which picks it in that case.
//!
//! The result is an optimal assignment (to float rounding), not SciPy's particular one. Rows left
//! on their dummy are then given the free columns in increasing order, so the matching is
//! complete and deterministic.
//!
//! Two procedures ([`Procedure`]): the fastest, and a fixed reference that the canonical mode's
//! tie-breaking is defined by (docs/definition.md#canonical-choice).

use super::search::{self, RowCosts, Tie, Workspace};
use super::{
    augmenting_row_reduction, empty_pairs, invert_matching, with_empty_pairs, Assignment, Bidding,
    Duals, Edges, UNMATCHED,
};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::similarity::SparseCost;
use crate::topology::Idx;

/// Bytes the row-by-row searches hold per neuron of A or B, for the memory budget
/// (`crate::policy`). Arrays over rows are charged per neuron too (rows are the narrower
/// side); all charged as if held at once, a list that grows by pushes at twice its longest:
/// - [`Search`]'s arrays over columns and dummies: `v`, its workspace's `dist`; `row4col`,
///   `pred`; `mark`;
/// - its arrays over rows: `u`, `col4row`; the workspace's settled list (a matched column at
///   most once per search, at most one per row);
/// - the heap's entries for the one dummy edge per row, see [`SSP_BYTES_PER_ENTRY`];
/// - the free-row list and the one augmenting row reduction builds (at most one entry per row);
/// - for a tall matrix, the transposed graph's row pointers;
/// - the empty neurons paired up front, and their flipped copy for a tall matrix (at most one
///   pair per two neurons each).
pub(crate) const SSP_BYTES_PER_NEURON: u64 = (2 * size_of::<f64>()
    + 2 * size_of::<usize>()
    + size_of::<u32>()
    + size_of::<f64>()
    + size_of::<usize>()
    + 2 * search::SETTLED_BYTES
    + 2 * search::ENTRY_BYTES
    + 2 * 2 * size_of::<usize>()
    + size_of::<usize>()
    + size_of::<(usize, usize)>()) as u64;

/// Bytes the row-by-row searches hold per stored entry of the similarity graph, beyond the
/// graph: the transposed copy of a tall matrix, and the Dijkstra heap. A search relaxes each
/// row at most once (its start, then a matched row once, behind its column when finished),
/// pushing at most one entry per stored entry of the row (plus its dummy, in
/// [`SSP_BYTES_PER_NEURON`]); the heap is cleared, not shrunk, between searches, so its
/// capacity is at most twice that.
pub(crate) const SSP_BYTES_PER_ENTRY: u64 =
    (size_of::<Idx>() + size_of::<f64>() + 2 * search::ENTRY_BYTES) as u64;

/// How a column is queued: by its distance, then (for [`Procedure::Fastest`]) free ones first,
/// then by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    taken: bool,
    col: usize,
}

/// `taken` in the top bit, above the column: the order of `(taken, col)`.
impl Tie for Queued {
    fn encode(self) -> u64 {
        (u64::from(self.taken) << 63) | self.col as u64
    }
    fn decode(bits: u64) -> Self {
        Queued {
            taken: bits >> 63 == 1,
            col: (bits & !(1 << 63)) as usize,
        }
    }
}

/// The similarity graph's rows, each with its dummy column `n_cols + row` at cost 1.
#[derive(Clone, Copy)]
struct WithDummies<'a>(&'a SparseCost);

impl RowCosts for WithDummies<'_> {
    fn degree(&self, row: usize) -> usize {
        self.0.rowptr[row + 1] - self.0.rowptr[row] + 1
    }
    fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let dummy = self.0.n_cols + row;
        self.0.row(row).chain(std::iter::once((dummy, 1.0)))
    }
}

/// Solves `cost` (absent entries are 1, stored entries in [0, 1]) optimally. `empty_rows` and
/// `empty_cols` (increasing) are neurons with no input: they cost 0 with each other and 1 with
/// everything else, so they are paired in index order first, and their mutual zeros need not be
/// stored.
pub fn solve(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    cancel: &Cancel,
) -> Result<Assignment> {
    Ok(solve_with_duals(cost, empty_rows, empty_cols, cancel)?.0)
}

/// How the searches start and which of several equally short paths they take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    /// Rows take their cheapest edge when its column is free (in row order), then every row
    /// left free, in order, its shortest augmenting path: the nearest column first, the lowest
    /// of equally near ones. Fixed once and for all: the canonical mode's results depend on it.
    Reference,
    /// The same start, then augmenting row reduction ([`ROW_REDUCTION_PASSES`]), and searches
    /// that end at the first free column among equally near ones.
    Fastest,
}

/// [`solve`], with an optimal dual of the maximum-similarity matching ([`Duals`]).
pub fn solve_with_duals(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    cancel: &Cancel,
) -> Result<(Assignment, Duals)> {
    solve_by(cost, empty_rows, empty_cols, Procedure::Fastest, cancel)
}

/// [`solve_with_duals`] by `procedure`.
pub(crate) fn solve_by(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    procedure: Procedure,
    cancel: &Cancel,
) -> Result<(Assignment, Duals)> {
    let pairs = empty_pairs(empty_rows, empty_cols);
    if cost.n_rows > cost.n_cols {
        let wide = cost.transpose()?;
        let flipped: Vec<(usize, usize)> = pairs.iter().map(|&(i, j)| (j, i)).collect();
        let (solved, duals) = solve_wide(&wide, &flipped, procedure, cancel)?;
        let col_of_row = invert_matching(&solved, cost.n_rows);
        let duals = Duals {
            rows: duals.cols,
            cols: duals.rows,
        };
        return Ok((
            with_empty_pairs(col_of_row, cost, &pairs),
            duals.without_fixed(&pairs),
        ));
    }
    let (col_of_row, duals) = solve_wide(cost, &pairs, procedure, cancel)?;
    Ok((
        with_empty_pairs(col_of_row, cost, &pairs),
        duals.without_fixed(&pairs),
    ))
}

/// Row-perfect assignment for `n_rows <= n_cols` with some (row, column) pairs fixed up front:
/// the column of every row, and the duals.
fn solve_wide(
    cost: &SparseCost,
    fixed: &[(usize, usize)],
    procedure: Procedure,
    cancel: &Cancel,
) -> Result<(Vec<usize>, Duals)> {
    if cost.vals.iter().any(|&c| !(0.0..=1.0).contains(&c)) {
        return Err(Error::InvalidArgument(
            "the sparse solver needs costs in [0, 1]".into(),
        ));
    }
    let mut search = Search::new(cost, procedure);
    for &(i, j) in fixed {
        search.col4row[i] = j;
        search.row4col[j] = i;
    }
    search.match_cheapest_free_edges();
    let free = search.rows_left_free();
    for (k, &row) in free.iter().enumerate() {
        if k % 1024 == 0 {
            cancel.check()?;
        }
        search.augment(row)?;
    }
    let duals = search.duals();
    Ok((search.complete_with_free_columns(), duals))
}

/// Passes of augmenting row reduction after the cheapest-edge start (Jonker and Volgenant use
/// two). Measured on the paper's trained 784-wide layers (epoch 190, three pairs), with the
/// bound on queued columns: 2.1-2.6 ms a layer without, 0.6-1.1 ms with 2 passes, 0.4-0.7 ms
/// with 8 (about 140 rows free after the start, 50 after 2 passes); 16 no better.
const ROW_REDUCTION_PASSES: usize = 8;

/// Successive shortest paths over columns `0..n_cols` (real) and `n_cols + i` (row i's dummy).
struct Search<'a> {
    graph: WithDummies<'a>,
    procedure: Procedure,
    n_cols: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    /// The current search's distances, forest and queue, over columns and dummies.
    ws: Workspace,
    /// The least distance of a free column reached so far: the search ends there or sooner, so
    /// no column beyond it is worth queueing (nor, for [`Procedure::Fastest`], at it).
    bound: f64,
}

impl<'a> Search<'a> {
    fn new(cost: &'a SparseCost, procedure: Procedure) -> Self {
        let (n_rows, n_cols) = (cost.n_rows, cost.n_cols);
        let all = n_cols + n_rows;
        Search {
            graph: WithDummies(cost),
            procedure,
            n_cols,
            u: vec![0.0; n_rows],
            v: vec![0.0; all],
            col4row: vec![UNMATCHED; n_rows],
            row4col: vec![UNMATCHED; all],
            ws: Workspace::new(all),
            bound: f64::INFINITY,
        }
    }

    fn relax(&mut self, row: usize, base: f64) -> Result<()> {
        let ui = self.u[row];
        let fastest = self.procedure == Procedure::Fastest;
        let (v, row4col) = (&self.v, &self.row4col);
        let bound = std::cell::Cell::from_mut(&mut self.bound);
        self.ws.relax(
            &self.graph,
            row,
            // Reduced costs are >= 0 up to rounding; clamp so Dijkstra's order stays valid.
            |j, c| base + (c - ui - v[j]).max(0.0),
            // Queued or not, a column beyond the bound is never settled before the search ends
            // (at the bound itself it could be, in the reference order, and change the path).
            |d| d < bound.get() || (!fastest && d == bound.get()),
            |j, d| {
                let taken = row4col[j] != UNMATCHED;
                if !taken {
                    bound.set(d);
                }
                Queued {
                    taken: fastest && taken,
                    col: j,
                }
            },
        )
    }

    /// A start in the manner of Jonker and Volgenant: each row's dual is its cheapest edge cost
    /// (so every reduced cost stays >= 0 with column duals at 0), and a row whose cheapest edge
    /// leads to a free column takes it (a tight edge). Only the remaining rows need a search.
    fn match_cheapest_free_edges(&mut self) {
        for row in 0..self.col4row.len() {
            if self.col4row[row] != UNMATCHED {
                continue;
            }
            let (j, c) = self
                .graph
                .edges(row)
                .fold((UNMATCHED, f64::INFINITY), |best, (j, c)| {
                    if c < best.1 {
                        (j, c)
                    } else {
                        best
                    }
                });
            self.u[row] = c;
            if self.row4col[j] == UNMATCHED {
                self.row4col[j] = row;
                self.col4row[row] = j;
            }
        }
    }

    /// The rows the cheapest-edge start left free, increasing; for [`Procedure::Fastest`]
    /// after Jonker and Volgenant's augmenting row reduction ([`ROW_REDUCTION_PASSES`]
    /// passes), which keeps matched edges tight and every reduced cost >= 0.
    fn rows_left_free(&mut self) -> Vec<usize> {
        let mut free: Vec<usize> = (0..self.u.len())
            .filter(|&row| self.col4row[row] == UNMATCHED)
            .collect();
        if self.procedure == Procedure::Reference {
            return free;
        }
        let graph = self.graph;
        let mut edges = Edges(|row: usize| graph.edges(row));
        let mut bidding = Bidding {
            u: &mut self.u,
            v: &mut self.v,
            col4row: &mut self.col4row,
            row4col: &mut self.row4col,
        };
        free = augmenting_row_reduction(free, ROW_REDUCTION_PASSES, &mut edges, &mut bidding);
        free.sort_unstable();
        free
    }

    /// One shortest augmenting path from free row `start`; updates potentials and the matching.
    fn augment(&mut self, start: usize) -> Result<()> {
        self.ws.begin();
        self.bound = f64::INFINITY;
        self.relax(start, 0.0)?;
        let (sink, total) = loop {
            let (d, queued) = self
                .ws
                .pop::<Queued>()
                .expect("the dummy column is reachable");
            let j = queued.col;
            if !self.ws.is_current(j, d) {
                continue; // stale entry
            }
            if self.row4col[j] == UNMATCHED {
                break (j, d);
            }
            self.ws.settle(j, d);
            let row = self.row4col[j];
            self.relax(row, d)?;
        };
        // Potentials: settled columns and the rows behind them move by (total - dist).
        self.u[start] += total;
        for &(j, dist) in self.ws.settled() {
            let delta = total - dist;
            self.v[j] -= delta;
            self.u[self.row4col[j]] += delta;
        }
        let mut j = sink;
        loop {
            let i = self.ws.pred(j);
            self.row4col[j] = i;
            let previous = std::mem::replace(&mut self.col4row[i], j);
            if i == start {
                break;
            }
            j = previous;
        }
        Ok(())
    }

    /// The duals of the maximum-similarity matching ([`Duals`]). Columns are never unmatched
    /// once matched and only matched ones move, so every free column (real, or the dummy of a
    /// row on a real column) keeps its initial dual 0, the highest; then `x[i] = 1 - u[i] -
    /// v[dummy(i)]` and `y[j] = -v[j]` meet the conditions (a fixed pair of empty neurons, at
    /// `u = v = 0`, gets `x = 1`, its similarity, until [`Duals::without_fixed`]).
    fn duals(&self) -> Duals {
        Duals {
            rows: (0..self.u.len())
                .map(|i| (1.0 - self.u[i] - self.v[self.n_cols + i]).max(0.0))
                .collect(),
            cols: self.v[..self.n_cols]
                .iter()
                .map(|&v| (-v).max(0.0))
                .collect(),
        }
    }

    /// Rows on their dummy take the free real columns in increasing order.
    fn complete_with_free_columns(self) -> Vec<usize> {
        let mut free = (0..self.n_cols).filter(|&j| self.row4col[j] == UNMATCHED);
        self.col4row
            .iter()
            .map(|&j| {
                if j < self.n_cols {
                    j
                } else {
                    free.next().expect("enough free columns")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::{empty_neurons, layer_costs, layer_costs_with, EmptyPairs};
    use crate::testing::{brute_force_optimum, tie_heavy};
    use crate::topology::Layer;
    use proptest::prelude::*;

    /// Checks that `solved` is a matching of `min(r, c)` distinct pairs whose reported cost is
    /// its own, and that `duals` certify it.
    fn check_matching(cost: &SparseCost, solved: &Assignment, duals: &Duals) {
        let mut used: Vec<usize> = solved
            .col_of_row
            .iter()
            .copied()
            .filter(|&j| j != UNMATCHED)
            .collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), cost.n_rows.min(cost.n_cols));
        let own: f64 = solved
            .col_of_row
            .iter()
            .enumerate()
            .filter(|&(_, &j)| j != UNMATCHED)
            .map(|(i, &j)| cost.get(i, j))
            .sum();
        assert!((own - solved.cost).abs() < 1e-9);
        assert!(duals.certify(cost, &solved.col_of_row), "{duals:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn both_procedures_reach_the_brute_force_optimum((r, c, m) in tie_heavy(7)) {
            let cost = SparseCost::from_dense(r, c, &m);
            let optimum = brute_force_optimum(r, c, &m);
            for procedure in [Procedure::Reference, Procedure::Fastest] {
                let (solved, duals) = solve_by(&cost, &[], &[], procedure, &Cancel::new()).unwrap();
                prop_assert!((solved.cost - optimum).abs() < 1e-9, "{procedure:?} {} vs {optimum}", solved.cost);
                check_matching(&cost, &solved, &duals);
            }
        }

        #[test]
        fn empty_neurons_paired_up_front_keep_the_optimum(
            (n_in, a, b) in (1u32..6, 1usize..7, 1usize..7).prop_flat_map(|(n_in, n1, n2)| {
                let neuron = prop::collection::vec(0..n_in, 0..3);
                (
                    Just(n_in),
                    prop::collection::vec(neuron.clone(), n1),
                    prop::collection::vec(neuron, n2),
                )
            })
        ) {
            let la = Layer::from_neuron_inputs(0, n_in as usize, &a).unwrap();
            let lb = Layer::from_neuron_inputs(0, n_in as usize, &b).unwrap();
            // The oracle sees every pair, the empty ones' zeros included.
            let full = layer_costs(&la, &lb).unwrap();
            let dense = full.to_dense().unwrap();
            let optimum = brute_force_optimum(la.n_out(), lb.n_out(), &dense);
            let skipped = layer_costs_with(&la, &lb, EmptyPairs::Skip).unwrap();
            let (empty_a, empty_b) = (empty_neurons(&la), empty_neurons(&lb));
            for procedure in [Procedure::Reference, Procedure::Fastest] {
                let (solved, _) =
                    solve_by(&skipped, &empty_a, &empty_b, procedure, &Cancel::new()).unwrap();
                prop_assert!((solved.cost - optimum).abs() < 1e-9, "{procedure:?} {} vs {optimum}", solved.cost);
                let own: f64 = solved
                    .col_of_row
                    .iter()
                    .enumerate()
                    .filter(|&(_, &j)| j != UNMATCHED)
                    .map(|(i, &j)| full.get(i, j))
                    .sum();
                prop_assert!((own - optimum).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn the_reference_procedure_takes_the_lowest_of_equally_near_columns() {
        // Every assignment of a constant matrix is optimal: rows take their cheapest edge in
        // row order, the lowest column among equals.
        let cost = SparseCost::from_dense(3, 4, &[0.5; 12]);
        let (solved, _) = solve_by(&cost, &[], &[], Procedure::Reference, &Cancel::new()).unwrap();
        assert_eq!(solved.col_of_row, vec![0, 1, 2]);
        assert_eq!(solved.cost, 1.5);
    }

    #[test]
    fn a_raised_cancel_stops_the_searches() {
        let cancel = Cancel::new();
        cancel.cancel();
        let cost = SparseCost::from_dense(4, 4, &[0.5; 16]);
        for procedure in [Procedure::Reference, Procedure::Fastest] {
            assert!(
                solve_by(&cost, &[], &[], procedure, &cancel).is_err(),
                "{procedure:?}"
            );
        }
    }
}
