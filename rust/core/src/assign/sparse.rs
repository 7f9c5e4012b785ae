//! The sparse solver: an optimal assignment from the stored entries alone
//! (docs/definition.md, "the sparse view").
//!
//! With absent entries equal to 1, the optimal cost is `min over matchings M of the stored
//! entries: sum of M's costs + (rows outside M)` (up to a constant when there are more rows than
//! columns), so only the stored entries matter. Memory is proportional to them, never
//! `n_rows x n_cols`.
//!
//! The problem is solved as a square perfect matching on a doubled graph (see [`Phases`]), by
//! the primal-dual method in phases, the weighted form of Hopcroft and Karp's algorithm:
//!
//! 1. Jonker-Volgenant-style start: row duals at each row's cheapest cost, cheapest edges taken
//!    greedily, then two passes of augmenting row reduction (free rows bid for their cheapest
//!    column, so that popular columns get their duals lowered). When a Hopcroft-Karp round on
//!    top of it leaves rows free (unrelated networks), the start is instead an epsilon-scaling
//!    auction ([`super::auction`]) down to a small epsilon, whose prices become exact duals by
//!    a label-correcting pass ([`Phases::absorb_slack`]); while many rows stay short the
//!    auction goes on with a smaller epsilon, and the few rows left short are freed for the
//!    steps below, which repair them exactly.
//! 2. Hopcroft-Karp rounds on the tight edges (zero reduced cost): a breadth-first search from
//!    all free rows, then vertex-disjoint shortest tight paths augmented at once.
//! 3. When no tight augmenting path is left, one Dijkstra search from all free rows at once
//!    moves the duals by `min(distance, reach)`, which makes tight every shortest path to the
//!    free columns it finished (about one per two free rows); back to 2.
//!
//! NNSTD costs are tie-heavy (between unrelated networks almost every stored cost is 14/15), so
//! a round augments thousands of paths where row-by-row searches (SciPy's, LAPJVsp's) would each
//! explore much of the graph. Measured on unrelated ER layers (mean fan-in 8), one core: 4,096
//! wide 2.1 s with the Jonker-Volgenant start (168 phases) against 0.21 s with the auction
//! (no phase left); 16,384 wide 25 s against 2.3 s; 65,536 wide 26 s with the auction.
//!
//! The result is an optimal assignment (to float rounding; a reduced cost within [`TIGHT`] of 0
//! counts as 0), not SciPy's particular one. Rows left without a partner are then given the
//! unpaired columns in increasing order, so the matching is complete and deterministic.

use std::collections::VecDeque;

use super::search::{self, RowCosts, Workspace};
use super::{
    auction, augmenting_row_reduction, empty_pairs, ssp, ssp::Procedure, two_lowest,
    with_empty_pairs, Assignment, Bidding, Duals, Edges, UNMATCHED,
};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::similarity::SparseCost;
use crate::topology::Idx;

/// Reduced costs within this of zero count as tight. Costs are in [0, 1] and duals stay within
/// a few units, so float rounding of a truly tight edge is far below it, and distinct NNSTD
/// costs differ by far more.
const TIGHT: f64 = 1e-12;

/// A phase's Dijkstra search goes on until it has finished one free column per this many free
/// rows.
const SINKS_PER_FREE_ROW: usize = 2;

/// The auction's first hand-over to the phases is at this epsilon (cost units) over the number
/// of rows of the doubled graph: small enough that its matching is usually optimal (an
/// epsilon-optimal matching is within rows x epsilon of the optimum), so that
/// [`Phases::absorb_slack`] turns its prices into exact duals and few rows are left to the
/// phases; large enough to skip the many more scaling phases an auction alone would need to
/// prove optimality. Measured on unrelated ER layers: at 4,096 wide (8,192 rows) epsilon 1e-4
/// left 4,600 rows short and 1e-5 none; at 16,384 wide 1e-5 left 12,500 and 2.5e-6 none; at
/// 65,536 wide 1e-5 left 21,000, 2.5e-6 6,200 and 6.25e-7 none.
const HANDOVER_EPSILON_TIMES_ROWS: f64 = 0.08;

/// Average raises per row of [`Phases::absorb_slack`] before the rows still short are freed.
const ABSORB_RAISES_PER_ROW: usize = 8;

/// The auction goes on with a smaller epsilon (by this factor) while more than one row in this
/// many is short after [`Phases::absorb_slack`] ...
const SHORT_ROWS_DIVISOR: usize = 256;
const AUCTION_SCALING_AFTER_LAST: f64 = 4.0;

/// ... down to this epsilon.
const AUCTION_SMALLEST_EPSILON: f64 = 1e-9;

/// Passes of augmenting row reduction before the phases (Jonker and Volgenant use two).
const ROW_REDUCTION_PASSES: usize = 2;

/// Bytes the phased method ([`solve_in_phases`]) holds per neuron of A or B, for the memory
/// budget (`crate::policy`); each neuron is one row and one column of the doubled graph. All
/// charged as if held at once (an upper bound; some are not), a list that grows by pushes at
/// twice its longest (a vector grown by pushes never holds room for more than twice its
/// largest length, or 4 entries):
/// - [`Phases`]' arrays over rows or columns: `u`, `v`, its workspace's `dist`; `col4row`,
///   `row4col`, the workspace's `pred`; the workspace's `mark`, `used`, `visited`,
///   `layer`;
/// - its lists: the workspace's settled columns and `sinks` (a column at most once per
///   search), `queue` (a row at most once per round: a root, or the holder of a column layered
///   once) and `stack` (distinct rows along one path);
/// - the heap's entries for the one edge per neuron of the doubled graph (A's dummy, a B'
///   row's own column), see [`PHASES_BYTES_PER_ENTRY`];
/// - the row pointers of the transposed graph `by_col`;
/// - the free-row list of [`solve_in_phases`] and the one replacing it, the free roots of
///   [`Phases::augment_tight_paths`] (each at most one entry per row);
/// - [`Phases::warm_start`]'s matched costs, [`Phases::absorb_slack`]'s flags and work queue
///   (a row at most once at a time);
/// - the empty neurons paired up front (at most one pair per two neurons).
///
/// The auction's arrays, held while it hands over, are [`auction::BYTES_PER_NEURON`].
pub(crate) const PHASES_BYTES_PER_NEURON: u64 = (3 * size_of::<f64>()
    + 3 * size_of::<usize>()
    + 4 * size_of::<u32>()
    + 2 * (search::SETTLED_BYTES
        + size_of::<usize>()
        + size_of::<(usize, u32)>()
        + size_of::<(usize, usize)>())
    + 2 * search::ENTRY_BYTES
    + size_of::<usize>()
    + 3 * 2 * size_of::<usize>()
    + size_of::<f64>()
    + size_of::<bool>()
    + 2 * size_of::<usize>()
    + size_of::<(usize, usize)>() / 2) as u64;

/// Bytes the phased method holds per stored entry of the similarity graph, beyond the graph:
/// its transposed copy `by_col` (a column index and a cost), and the Dijkstra heap. A search
/// relaxes each row at most once (free rows at its start, a matched row once, behind its
/// column when finished), pushing at most one entry per edge of the doubled graph: two per
/// stored entry (the pair, and its mirror between B' and A'), plus one per neuron (in
/// [`PHASES_BYTES_PER_NEURON`]); the heap is cleared, not shrunk, between searches, so its
/// capacity is at most twice that.
pub(crate) const PHASES_BYTES_PER_ENTRY: u64 =
    (size_of::<Idx>() + size_of::<f64>() + 2 * 2 * search::ENTRY_BYTES) as u64;

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

/// [`solve`], with an optimal dual of the maximum-similarity matching ([`Duals`]).
pub fn solve_with_duals(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    cancel: &Cancel,
) -> Result<(Assignment, Duals)> {
    solve_by(cost, empty_rows, empty_cols, Procedure::Fastest, cancel)
}

/// The assignment of `cost` (no empty neurons paired up front) that the canonical mode's
/// tie-breaking is defined by (docs/definition.md#canonical-choice): this module's choice of
/// method, with the row-by-row searches in their [`Procedure::Reference`] order. Fixed: the
/// canonical mode's results depend on it. That includes the phased method and its auction
/// start, which both procedures share on wide layers: a change to their path (the auction's
/// tie order, say) changes canonical matchings, even when every optimum stays the same
/// (tried: candidate lists for the auction's bids moved 1,785 of ER 4,096's second-layer
/// canonical pairs). Make such a change for [`Procedure::Fastest`] alone.
pub fn solve_reference(cost: &SparseCost) -> Result<Assignment> {
    Ok(solve_by(cost, &[], &[], Procedure::Reference, &Cancel::new())?.0)
}

/// [`solve_with_duals`], the row-by-row searches by `procedure`.
fn solve_by(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    procedure: Procedure,
    cancel: &Cancel,
) -> Result<(Assignment, Duals)> {
    if cost.vals.iter().any(|&c| !(0.0..=1.0).contains(&c)) {
        return Err(Error::InvalidArgument(
            "the sparse solver needs costs in [0, 1]".into(),
        ));
    }
    if cost.n_rows.min(cost.n_cols) <= ROW_BY_ROW_WIDTH || cheapest_edges_mostly_distinct(cost) {
        return ssp::solve_by(cost, empty_rows, empty_cols, procedure, cancel);
    }
    solve_in_phases(cost, empty_rows, empty_cols, Start::CHEAPEST, cancel)
}

/// How [`solve_in_phases`] finds its first matching and duals. The solver always takes
/// [`Start::CHEAPEST`]; the other starts exist for the tests (small layers rarely reach the
/// auction, and rarely leave many rows short after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Start {
    /// Jonker and Volgenant's start and one Hopcroft-Karp round first, the auction only when
    /// they leave rows free; else the auction straight away.
    cheapest_first: bool,
    /// The auction stopped at its first epsilon (many rows short, left to the phases) instead
    /// of scaled down to the hand-over epsilon.
    coarse_auction: bool,
}

impl Start {
    /// The solver's start.
    const CHEAPEST: Start = Start {
        cheapest_first: true,
        coarse_auction: false,
    };
}

/// The phased method of this module, without the hand-over to row-by-row searches.
fn solve_in_phases(
    cost: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
    first: Start,
    cancel: &Cancel,
) -> Result<(Assignment, Duals)> {
    let pairs = empty_pairs(empty_rows, empty_cols);
    let by_col = cost.transpose()?;
    let fresh = || {
        let mut search = Phases::new(cost, &by_col);
        for &(i, j) in &pairs {
            search.pair(i, j);
        }
        search
    };
    let mut search = fresh();
    let mut free = Vec::new();
    if first.cheapest_first {
        free = search.jonker_volgenant_start();
        search.augment_tight_paths(&free);
        free.retain(|&i| search.col4row[i] == UNMATCHED);
    }
    if !first.cheapest_first || !free.is_empty() {
        // Unrelated networks: Hungarian phases would each explore much of the graph to augment
        // a few paths; the auction gets (almost) there with one row read per bid.
        let mut bids = auction::Auction::new(cost, &by_col, &pairs);
        let (mut last, smallest) = if first.coarse_auction {
            (1.0, 1.0)
        } else {
            (
                HANDOVER_EPSILON_TIMES_ROWS / (cost.n_rows + cost.n_cols) as f64,
                AUCTION_SMALLEST_EPSILON,
            )
        };
        loop {
            bids.scale_down_to(last, cancel)?;
            // The previous state goes before the next is built: one is held at a time.
            drop(search);
            search = fresh();
            free = search.warm_start(bids.start());
            // Many rows short: the matching is not yet optimal, so its prices cannot become
            // exact duals; a smaller epsilon costs less than repairing them in phases.
            if free.len() <= search.u.len() / SHORT_ROWS_DIVISOR || last <= smallest {
                break;
            }
            last /= AUCTION_SCALING_AFTER_LAST;
        }
        search.augment_tight_paths(&free);
        free.retain(|&i| search.col4row[i] == UNMATCHED);
    }
    while !free.is_empty() {
        cancel.check()?;
        search.tighten_paths(&free)?;
        search.augment_tree_paths();
        search.augment_tight_paths(&free);
        free.retain(|&i| search.col4row[i] == UNMATCHED);
    }
    let duals = search.duals();
    let col_of_row = search.complete_with_free_columns();
    let assignment = with_empty_pairs(col_of_row, cost, &pairs);
    Ok((assignment, duals.without_fixed(&pairs)))
}

/// The edges of one row of the doubled problem: `cols[k] + offset` at `vals[k]` (0 when `vals`
/// is `None`), then `extra`.
struct Adjacency<'a> {
    cols: &'a [Idx],
    vals: Option<&'a [f64]>,
    offset: usize,
    extra: (usize, f64),
}

impl<'a> Adjacency<'a> {
    fn iter(&self) -> impl Iterator<Item = (usize, f64)> + 'a {
        let (cols, vals, offset) = (self.cols, self.vals, self.offset);
        (0..cols.len())
            .map(move |k| (cols[k] as usize + offset, vals.map_or(0.0, |v| v[k])))
            .chain(std::iter::once(self.extra))
    }
}

/// The doubled problem's rows (see [`Phases`]) as the searches read them.
#[derive(Clone, Copy)]
struct Doubled<'a> {
    cost: &'a SparseCost,
    by_col: &'a SparseCost,
}

impl RowCosts for Doubled<'_> {
    fn degree(&self, row: usize) -> usize {
        self.adjacency(row).cols.len() + 1
    }
    fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.adjacency(row).iter()
    }
}

impl<'a> Doubled<'a> {
    fn adjacency(&self, row: usize) -> Adjacency<'a> {
        adjacency(
            self.cost,
            self.by_col,
            self.cost.n_rows,
            self.cost.n_cols,
            row,
        )
    }
}

/// Row `row`'s edges in the doubled problem of `cost` (`n1 x n2`, columns `by_col`).
fn adjacency<'a>(
    cost: &'a SparseCost,
    by_col: &'a SparseCost,
    n1: usize,
    n2: usize,
    row: usize,
) -> Adjacency<'a> {
    if row < n1 {
        let span = cost.rowptr[row]..cost.rowptr[row + 1];
        Adjacency {
            cols: &cost.cols[span.clone()],
            vals: Some(&cost.vals[span]),
            offset: 0,
            extra: (n2 + row, 1.0),
        }
    } else {
        let j = row - n1;
        let span = by_col.rowptr[j]..by_col.rowptr[j + 1];
        Adjacency {
            cols: &by_col.cols[span],
            vals: None,
            offset: n2,
            extra: (j, 0.0),
        }
    }
}

/// Share of rows whose cheapest stored column no earlier row has claimed, from which the
/// row-by-row searches of [`ssp`] are faster than phases: the greedy start then leaves few rows,
/// with short searches. Measured at 16,384 wide: near-twins (yield 0.9 and more) 0.5 s row by
/// row against 2.7 s in phases; unrelated networks (yield under 0.6) the other way round.
const ROW_BY_ROW_YIELD: f64 = 0.85;

/// Layers up to this wide are solved row by row whatever the yield: measured on the paper's
/// 784-wide layers, row by row took 0.45 s for a snapshot's 45 pairs against 2.1 s in phases.
const ROW_BY_ROW_WIDTH: usize = 1024;

/// Whether the greedy start alone would match at least [`ROW_BY_ROW_YIELD`] of the rows.
fn cheapest_edges_mostly_distinct(cost: &SparseCost) -> bool {
    let mut claimed = vec![false; cost.n_cols];
    let mut matched = 0usize;
    for i in 0..cost.n_rows {
        let best = cost.row(i).fold(
            (UNMATCHED, f64::INFINITY),
            |b, (j, c)| if c < b.1 { (j, c) } else { b },
        );
        if best.0 != UNMATCHED && !claimed[best.0] {
            claimed[best.0] = true;
            matched += 1;
        }
    }
    matched as f64 >= ROW_BY_ROW_YIELD * cost.n_rows.min(cost.n_cols) as f64
}

/// A square perfect matching problem equivalent to the rectangular one, so that duals need no
/// sign condition and many augmenting paths can be made tight at once.
///
/// Rows: A's neurons `i` (`0..n1`), then a copy `B'j` of every neuron of B (`n1 + j`).
/// Columns: B's neurons `j` (`0..n2`), then a dummy `A'i` of every neuron of A (`n2 + i`).
/// Edges: `Ai - Bj` at the stored cost; `Ai - A'i` at 1 (A's neuron left without a partner);
/// `B'j - Bj` at 0 (B's neuron left without a partner); `B'j - A'i` at 0 wherever `(i, j)` is
/// stored (the mirror image of a matched pair). A matching `M` of stored pairs extends to a
/// perfect matching of the same cost plus one per row of A outside `M`, and every perfect
/// matching restricts to such an `M`: the optimum is the rectangular optimum.
///
/// Invariants between phases: every reduced cost `c - u[row] - v[col]` is >= 0 (up to
/// rounding), and matched edges are tight.
struct Phases<'a> {
    cost: &'a SparseCost,
    by_col: &'a SparseCost,
    graph: Doubled<'a>,
    n1: usize,
    n2: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    /// The last Dijkstra search's distances, settled columns and shortest-path forest.
    ws: Workspace,
    /// Free columns finished by the last search, nearest first.
    sinks: Vec<usize>,
    /// Stamps `used` and `visited` below: only grows.
    stamp: u32,
    /// Per phase, free rows whose tree already augmented, where `used[row] == stamp`.
    used: Vec<u32>,
    // Per Hopcroft-Karp round, a column is layered where `visited[col] == stamp`:
    visited: Vec<u32>,
    layer: Vec<u32>,
    queue: Vec<(usize, u32)>,
    stack: Vec<(usize, usize)>,
}

impl<'a> Phases<'a> {
    fn new(cost: &'a SparseCost, by_col: &'a SparseCost) -> Self {
        let (n1, n2) = (cost.n_rows, cost.n_cols);
        let all = n1 + n2;
        let mut col4row = vec![UNMATCHED; all];
        let mut row4col = vec![UNMATCHED; all];
        // Every B' row starts on its own B column: no pair matched yet.
        for j in 0..n2 {
            col4row[n1 + j] = j;
            row4col[j] = n1 + j;
        }
        Phases {
            cost,
            by_col,
            graph: Doubled { cost, by_col },
            n1,
            n2,
            u: vec![0.0; all],
            v: vec![0.0; all],
            col4row,
            row4col,
            ws: Workspace::new(all),
            sinks: Vec::new(),
            stamp: 0,
            used: vec![0; all],
            visited: vec![0; all],
            layer: vec![0; all],
            queue: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Matches A's row `i` with B's column `j` (its B' row moves to `i`'s dummy).
    fn pair(&mut self, i: usize, j: usize) {
        let copy = self.n1 + j;
        let dummy = self.n2 + i;
        self.col4row[i] = j;
        self.row4col[j] = i;
        self.col4row[copy] = dummy;
        self.row4col[dummy] = copy;
    }

    /// All of `row`'s edges (see [`Phases`]), borrowed from the cost matrices rather than from
    /// `self`, so that a loop over them may update the search state.
    fn adjacency(&self, row: usize) -> Adjacency<'a> {
        adjacency(self.cost, self.by_col, self.n1, self.n2, row)
    }

    /// Entry `k` of `row`'s edges (see [`Phases`]), or `None` past the last.
    fn edge(&self, row: usize, k: usize) -> Option<(usize, f64)> {
        if row < self.n1 {
            let start = self.cost.rowptr[row];
            let stored = self.cost.rowptr[row + 1] - start;
            match k.cmp(&stored) {
                std::cmp::Ordering::Less => Some((
                    self.cost.cols[start + k] as usize,
                    self.cost.vals[start + k],
                )),
                std::cmp::Ordering::Equal => Some((self.n2 + row, 1.0)),
                std::cmp::Ordering::Greater => None,
            }
        } else {
            let j = row - self.n1;
            if k == 0 {
                return Some((j, 0.0));
            }
            let start = self.by_col.rowptr[j];
            let mirrored = self.by_col.rowptr[j + 1] - start;
            (k - 1 < mirrored).then(|| (self.n2 + self.by_col.cols[start + k - 1] as usize, 0.0))
        }
    }

    /// A start in the manner of Jonker and Volgenant: each row of A takes as its dual its
    /// cheapest edge cost (so every reduced cost is >= 0 with column duals at 0), and takes the
    /// first of its cheapest edges whose column is still unpaired (a tight edge), or its dummy.
    fn match_cheapest_edges(&mut self) {
        for row in 0..self.n1 {
            if self.col4row[row] != UNMATCHED {
                continue;
            }
            let best = self.cost.row(row).fold(1.0f64, |m, (_, c)| m.min(c));
            self.u[row] = best;
            let unpaired = self
                .cost
                .row(row)
                .find(|&(j, c)| c == best && self.row4col[j] == self.n1 + j);
            if let Some((j, _)) = unpaired {
                if self.row4col[self.n2 + row] == UNMATCHED {
                    self.pair(row, j);
                }
            } else if best == 1.0 && self.row4col[self.n2 + row] == UNMATCHED {
                self.col4row[row] = self.n2 + row;
                self.row4col[self.n2 + row] = row;
            }
        }
    }

    /// The start of Jonker and Volgenant: cheapest edges taken greedily, then augmenting row
    /// reduction, then row duals that make every reduced cost >= 0. Returns the free rows.
    fn jonker_volgenant_start(&mut self) -> Vec<usize> {
        self.match_cheapest_edges();
        let mut free: Vec<usize> = (0..self.n1)
            .filter(|&i| self.col4row[i] == UNMATCHED)
            .collect();
        let (cost, by_col, n1, n2) = (self.cost, self.by_col, self.n1, self.n2);
        let mut edges = Edges(|row: usize| adjacency(cost, by_col, n1, n2, row).iter());
        let mut bidding = Bidding {
            u: &mut self.u,
            v: &mut self.v,
            col4row: &mut self.col4row,
            row4col: &mut self.row4col,
        };
        free = augmenting_row_reduction(free, ROW_REDUCTION_PASSES, &mut edges, &mut bidding);
        self.set_row_duals();
        free.retain(|&i| self.col4row[i] == UNMATCHED);
        free
    }

    /// Takes the auction's matching and prices (column duals are minus the prices): every row
    /// takes its lowest reduced cost as its dual, so all reduced costs are >= 0, then
    /// [`Self::absorb_slack`] makes matched edges tight where it can, and rows whose edge is
    /// still not tight are freed. Returns the free rows.
    fn warm_start(&mut self, start: auction::Start) -> Vec<usize> {
        // In place: no second column-dual array while the auction's state is held.
        for (v, &p) in self.v.iter_mut().zip(&start.price) {
            *v = -p;
        }
        self.col4row = start.col4row;
        self.row4col = start.row4col;
        let rows = self.u.len();
        // The cost of each row's matched edge; NaN for free rows and empty neurons paired up
        // front (their pair is no edge of the doubled graph; it costs 0).
        let mut matched = vec![f64::NAN; rows];
        for (row, cost) in matched.iter_mut().enumerate() {
            self.u[row] = two_lowest(self.adjacency(row).iter(), &self.v).0;
            let j = self.col4row[row];
            match self.adjacency(row).iter().find(|&(col, _)| col == j) {
                Some((_, c)) => *cost = c,
                None if j != UNMATCHED => self.u[row] = -self.v[j],
                None => {}
            }
        }
        self.absorb_slack(&matched);
        let mut free = Vec::new();
        for (row, &c) in matched.iter().enumerate() {
            let j = self.col4row[row];
            if j == UNMATCHED {
                free.push(row);
            } else if !c.is_nan() && !self.is_tight(row, j, c) {
                self.row4col[j] = UNMATCHED;
                self.col4row[row] = UNMATCHED;
                free.push(row);
            }
        }
        free
    }

    /// Makes matched edges tight by raising column duals (the auction leaves a bidder up to
    /// its epsilon above its cheapest column): a row whose edge (cost `matched[row]`) is `slack`
    /// above its dual raises its column's dual by `slack`, which may lower the dual (lowest
    /// reduced cost) of the column's other rows, which then do the same: a label-correcting
    /// shortest-path computation, which converges when the matching is optimal. After
    /// [`ABSORB_RAISES_PER_ROW`] raises per row on average, the rows still short are left to
    /// the phases. Row duals stay the lowest reduced costs throughout.
    fn absorb_slack(&mut self, matched: &[f64]) {
        let rows = self.u.len();
        let (cost, by_col, n1, n2) = (self.cost, self.by_col, self.n1, self.n2);
        let short = |search: &Self, row: usize| {
            let c = matched[row];
            !c.is_nan() && c - search.v[search.col4row[row]] - search.u[row] > TIGHT
        };
        let mut queued: Vec<bool> = (0..rows).map(|row| short(self, row)).collect();
        let mut work: VecDeque<usize> = (0..rows).filter(|&row| queued[row]).collect();
        let mut budget = ABSORB_RAISES_PER_ROW * rows;
        while let Some(row) = work.pop_front() {
            queued[row] = false;
            if !short(self, row) {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            let j = self.col4row[row];
            self.v[j] = matched[row] - self.u[row];
            let vj = self.v[j];
            let mut lower = |k: usize, c: f64| {
                if k != row && c - vj < self.u[k] {
                    self.u[k] = c - vj;
                    if !queued[k] && short(self, k) {
                        queued[k] = true;
                        work.push_back(k);
                    }
                }
            };
            if j < n2 {
                let span = by_col.rowptr[j]..by_col.rowptr[j + 1];
                for (&i, &c) in by_col.cols[span.clone()].iter().zip(&by_col.vals[span]) {
                    lower(i as usize, c);
                }
                lower(n1 + j, 0.0);
            } else {
                let i = j - n2;
                lower(i, 1.0);
                for &jj in &cost.cols[cost.rowptr[i]..cost.rowptr[i + 1]] {
                    lower(n1 + jj as usize, 0.0);
                }
            }
        }
    }

    /// Row duals after row reduction: a matched row's dual makes its edge tight, a free row's is
    /// its lowest reduced cost; either way every reduced cost is >= 0 (up to rounding).
    fn set_row_duals(&mut self) {
        for row in 0..self.u.len() {
            self.u[row] = match self.col4row[row] {
                UNMATCHED => two_lowest(self.adjacency(row).iter(), &self.v).0,
                j => {
                    self.adjacency(row)
                        .iter()
                        .find(|&(col, _)| col == j)
                        .map_or(0.0, |(_, c)| c)
                        - self.v[j]
                }
            };
        }
    }

    fn relax(&mut self, row: usize, base: f64) -> Result<()> {
        let ui = self.u[row];
        let v = &self.v;
        self.ws.relax(
            &self.graph,
            row,
            // Reduced costs are >= 0 up to rounding; clamp so Dijkstra's order stays valid.
            |j, c| base + (c - ui - v[j]).max(0.0),
            |_| true,
            |j, _| j,
        )
    }

    /// One Dijkstra search from all `free` rows at once, on until it has finished enough free
    /// columns (at most one per free row) at distances up to `reach`; then the duals move by
    /// `min(distance, reach)`, which keeps every reduced cost >= 0 and matched edges tight, and
    /// makes tight every shortest path to a free column within `reach`.
    fn tighten_paths(&mut self, free: &[usize]) -> Result<()> {
        self.ws.begin();
        self.sinks.clear();
        for &row in free {
            self.relax(row, 0.0)?;
        }
        let wanted = free.len().div_ceil(SINKS_PER_FREE_ROW);
        let mut sinks = 0;
        let mut reach = 0.0;
        while let Some((d, j)) = self.ws.pop::<usize>() {
            if !self.ws.is_current(j, d) {
                continue; // stale entry
            }
            self.ws.settle(j, d);
            reach = d;
            match self.row4col[j] {
                UNMATCHED => {
                    self.sinks.push(j);
                    sinks += 1;
                    if sinks >= wanted {
                        break;
                    }
                }
                row => self.relax(row, d)?,
            }
        }
        for &row in free {
            self.u[row] += reach;
        }
        for &(j, dist) in self.ws.settled() {
            let lift = reach - dist;
            self.v[j] -= lift;
            if let Some(&row) = self.row4col.get(j).filter(|&&r| r != UNMATCHED) {
                self.u[row] += lift;
            }
        }
        Ok(())
    }

    /// Augments along the shortest-path forest: the nearest sink of every tree, tight after
    /// [`Self::tighten_paths`]. Trees are disjoint, so these paths are too.
    fn augment_tree_paths(&mut self) {
        // Roots first: augmenting changes the matching that the walk up a tree follows.
        let roots: Vec<usize> = self.sinks.iter().map(|&sink| self.root_of(sink)).collect();
        self.stamp += 1;
        for (k, &root) in roots.iter().enumerate() {
            if self.used[root] == self.stamp {
                continue;
            }
            self.used[root] = self.stamp;
            let mut j = self.sinks[k];
            loop {
                let row = self.ws.pred(j);
                self.row4col[j] = row;
                let previous = std::mem::replace(&mut self.col4row[row], j);
                if previous == UNMATCHED {
                    break;
                }
                j = previous;
            }
        }
    }

    /// The free row at the root of the tree that reached column `j`.
    fn root_of(&self, mut j: usize) -> usize {
        loop {
            let row = self.ws.pred(j);
            match self.col4row[row] {
                UNMATCHED => return row,
                col => j = col,
            }
        }
    }

    fn is_tight(&self, row: usize, j: usize, c: f64) -> bool {
        (c - self.u[row] - self.v[j]).abs() <= TIGHT
    }

    /// Hopcroft-Karp rounds on the tight edges: a breadth-first search from all free rows
    /// layers the tight graph up to the nearest free columns, then depth-first searches along
    /// the layers augment a maximal set of vertex-disjoint shortest tight paths. Rounds repeat
    /// while a tight augmenting path exists. Returns the number of augmentations.
    fn augment_tight_paths(&mut self, free: &[usize]) -> usize {
        let mut augmented = 0;
        loop {
            let roots: Vec<usize> = free
                .iter()
                .copied()
                .filter(|&r| self.col4row[r] == UNMATCHED)
                .collect();
            let Some(limit) = self.layer_tight_graph(&roots) else {
                return augmented;
            };
            let before = augmented;
            for &root in &roots {
                if self.layered_search(root, limit) {
                    augmented += 1;
                }
            }
            if augmented == before {
                return augmented;
            }
        }
    }

    /// Breadth-first layers of the tight graph from `roots` (row layer 0): `layer[col]` for
    /// reached columns, valid where `visited[col] == stamp`. Returns the layer of the nearest
    /// free column, or `None` when no tight path reaches one.
    fn layer_tight_graph(&mut self, roots: &[usize]) -> Option<u32> {
        self.stamp += 1;
        let stamp = self.stamp;
        self.queue.clear();
        self.queue.extend(roots.iter().map(|&r| (r, 0u32)));
        let mut limit = None;
        let mut head = 0;
        while head < self.queue.len() {
            let (row, depth) = self.queue[head];
            head += 1;
            if limit.is_some_and(|l| depth >= l) {
                break;
            }
            for (j, c) in self.adjacency(row).iter() {
                if self.visited[j] == stamp || !self.is_tight(row, j, c) {
                    continue;
                }
                self.visited[j] = stamp;
                self.layer[j] = depth + 1;
                match self.row4col[j] {
                    UNMATCHED => limit = Some(depth + 1),
                    next if limit.is_none() => self.queue.push((next, depth + 1)),
                    _ => {}
                }
            }
        }
        limit
    }

    /// A depth-first search from free `root` along the layers to a free column in layer
    /// `limit`; augments when it finds one. Columns it leaves behind are dead ends for this round.
    fn layered_search(&mut self, root: usize, limit: u32) -> bool {
        let stamp = self.stamp;
        self.stack.clear();
        self.stack.push((root, 0));
        let mut depth = 0u32;
        while let Some(&(row, start)) = self.stack.last() {
            let mut found = None;
            let mut k = start;
            while let Some((j, c)) = self.edge(row, k) {
                k += 1;
                if self.visited[j] == stamp
                    && self.layer[j] == depth + 1
                    && self.is_tight(row, j, c)
                {
                    found = Some(j);
                    break;
                }
            }
            if let Some(top) = self.stack.last_mut() {
                top.1 = k;
            }
            match found {
                None => {
                    self.stack.pop();
                    depth = depth.saturating_sub(1);
                }
                Some(j) => {
                    // Entered once per round: on success it is on the path, on failure a dead end.
                    self.layer[j] = u32::MAX;
                    match self.row4col[j] {
                        UNMATCHED => {
                            self.flip_stack(j);
                            return true;
                        }
                        next if depth + 1 < limit => {
                            self.stack.push((next, 0));
                            depth += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
        false
    }

    /// Augments along the depth-first stack: each row on it takes the column through which the
    /// search left it, the last row takes the free column `sink`.
    fn flip_stack(&mut self, sink: usize) {
        let mut j = sink;
        while let Some((row, _)) = self.stack.pop() {
            let previous = std::mem::replace(&mut self.col4row[row], j);
            self.row4col[j] = row;
            if previous == UNMATCHED {
                break;
            }
            j = previous;
        }
    }

    /// The duals of the maximum-similarity matching ([`Duals`]), from those of the doubled
    /// problem: with `u` on rows (A, then B') and `v` on columns (B, then A'), the doubled
    /// constraints on the edges (i, j), (i, i'), (j', j) and (j', i') give `x[i] = 1 - u[i] -
    /// v[i']` and `y[j] = -u[j'] - v[j]`, both >= 0, with `x[i] + y[j] >= 1 - c(i, j)`, equal
    /// on matched pairs; a row on its dummy has `x = 0`, a column under its copy `y = 0`.
    fn duals(&self) -> Duals {
        let (n1, n2) = (self.n1, self.n2);
        Duals {
            rows: (0..n1)
                .map(|i| (1.0 - self.u[i] - self.v[n2 + i]).max(0.0))
                .collect(),
            cols: (0..n2)
                .map(|j| (-self.u[n1 + j] - self.v[j]).max(0.0))
                .collect(),
        }
    }

    /// The column of every row of A: its B column, or for rows on their dummy the unpaired B
    /// columns in increasing order while they last.
    fn complete_with_free_columns(self) -> Vec<usize> {
        let n1 = self.n1;
        let mut unpaired = (0..self.n2).filter(|&j| self.row4col[j] >= n1);
        self.col4row[..n1]
            .iter()
            .map(|&j| {
                if j < self.n2 {
                    j
                } else {
                    unpaired.next().unwrap_or(UNMATCHED)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::scipy_order;
    use crate::similarity::{empty_neurons, layer_costs, layer_costs_with, EmptyPairs};
    use crate::topology::Layer;
    use proptest::prelude::*;

    /// The auction straight away.
    const AUCTION: Start = Start {
        cheapest_first: false,
        coarse_auction: false,
    };

    /// The auction straight away, stopped at its first epsilon.
    const COARSE_AUCTION: Start = Start {
        cheapest_first: false,
        coarse_auction: true,
    };

    /// Neurons drawing a few inputs each (some none), as unrelated layers do.
    fn neurons(n_in: u32, n_out: usize) -> impl Strategy<Value = Vec<Vec<u32>>> {
        prop::collection::vec(prop::collection::vec(0..n_in, 0..5), n_out)
    }

    fn layers() -> impl Strategy<Value = (Layer, Layer)> {
        (2u32..24, 1usize..40, 1usize..40).prop_flat_map(|(n_in, n1, n2)| {
            (neurons(n_in, n1), neurons(n_in, n2)).prop_map(move |(a, b)| {
                (
                    Layer::from_neuron_inputs(0, n_in as usize, &a).unwrap(),
                    Layer::from_neuron_inputs(0, n_in as usize, &b).unwrap(),
                )
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        #[test]
        fn auction_start_reaches_the_optimum((a, b) in layers()) {
            let optimum = scipy_order::solve(&layer_costs(&a, &b).unwrap()).cost;
            let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
            let (empty_a, empty_b) = (empty_neurons(&a), empty_neurons(&b));
            for first in [AUCTION, COARSE_AUCTION, Start::CHEAPEST] {
                let (solved, duals) =
                    solve_in_phases(&costs, &empty_a, &empty_b, first, &Cancel::new()).unwrap();
                prop_assert!((solved.cost - optimum).abs() < 1e-9, "{first:?} {} vs {optimum}", solved.cost);
                prop_assert!(duals.certify(&costs, &solved.col_of_row), "{first:?} {duals:?}");
                let mut used: Vec<usize> =
                    solved.col_of_row.iter().copied().filter(|&j| j != UNMATCHED).collect();
                used.sort_unstable();
                used.dedup();
                prop_assert_eq!(used.len(), a.n_out().min(b.n_out()));
            }
        }
    }

    #[test]
    fn auction_start_reaches_the_optimum_on_arbitrary_costs() {
        // Not NNSTD fractions: the exact phases decide, whatever the auction's rounding.
        let cost = SparseCost {
            n_rows: 3,
            n_cols: 3,
            rowptr: vec![0, 2, 4, 6],
            cols: vec![0, 1, 1, 2, 0, 2],
            vals: vec![0.123456789, 0.3, 0.987654321, 0.2, 0.4, 0.111111112],
        };
        let optimum = scipy_order::solve(&cost).cost;
        let (solved, duals) = solve_in_phases(&cost, &[], &[], AUCTION, &Cancel::new()).unwrap();
        assert!(
            (solved.cost - optimum).abs() < 1e-12,
            "{} vs {optimum}",
            solved.cost
        );
        assert!(duals.certify(&cost, &solved.col_of_row));
    }
}
