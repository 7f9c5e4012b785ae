//! Candidate lists for the dense solver: each row's cheapest columns by reduced cost, and a lower
//! bound on the reduced cost of every column left out, so that most row steps read a few dozen
//! entries instead of a whole row of the matrix.
//!
//! Once column reduction has set the column duals, Jonker and Volgenant's method only lowers
//! them (reduction transfer, row reduction and every augmentation's dual update all subtract),
//! so a reduced cost `c[i][j] - v[j]` only rises. A list made from a row's reduced costs at some
//! moment therefore keeps a valid lower bound on the columns it left out: the least of them at
//! that moment. A step reads the whole row only when that bound could be reached (and then makes
//! the row's list afresh): the solver reaches exactly the optimum of the dense method.

use rayon::prelude::*;

use super::{DenseRows, Jv};
use crate::assign::search::{RowCosts, Tie, Workspace};
use crate::assign::{two_lowest, UNMATCHED};
use crate::error::Result;

/// Entries per row. On unrelated layers (costs close together, many near-ties) the optimal
/// column of a row is almost always among its 32 cheapest; more only slows every step. Unit
/// tests use short lists, so that every path (bounds reached, lists made afresh, searches left
/// to the dense search) runs often on small matrices.
const WIDTH: usize = if cfg!(test) { 3 } else { 32 };

/// Rows read whole in one augmenting search, beyond half the columns it has settled, before it
/// is left to the dense search. A whole row costs the list search about what a step of the dense
/// search costs, so reading fewer rows whole than the search settles still wins (the last
/// searches on unrelated layers settle most columns and read a few hundred rows whole); where
/// almost every settled row has to be read whole (rows of many equal costs), the dense search's
/// array scans beat a heap fed with whole rows.
pub(super) const MAX_EXPANSIONS: usize = 16;

/// Searches in a row that are left to the dense search before the rest of the layer goes there
/// directly.
const MAX_GIVE_UPS: usize = 4;

/// Queued steps per column of the matrix beyond which a search is left to the dense search:
/// every distance that drops is queued (stale entries stay until popped), so a search that
/// reads many rows whole could otherwise queue many times the matrix's own size. About 1 KiB a
/// column at most (24 bytes a step).
const MAX_QUEUED_PER_COLUMN: usize = 40;

/// Each row's list and bound. Invariant (see the module): `bound[i] <= c[i][j] - v[j]` for
/// every column `j` not in row `i`'s list, for the solver's current duals `v`.
pub(super) struct Shortlists {
    /// Entries per row: [`WIDTH`], or the matrix's width when it is narrower (then a list holds
    /// its whole row and the bound is infinite).
    width: usize,
    /// Row `i`'s columns, `cols[i * width..(i + 1) * width]`, in no particular order.
    cols: Vec<u32>,
    /// Their costs (not reduced), beside the columns so that a row's list is one read.
    costs: Vec<f64>,
    bound: Vec<f64>,
    /// Scratch of [`Shortlists::refresh`].
    scratch: Vec<(f64, u32)>,
}

/// A row's list, as the list search relaxes it.
impl RowCosts for Shortlists {
    fn degree(&self, _: usize) -> usize {
        self.width
    }
    fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.entries(row)
    }
}

impl Shortlists {
    /// The lists of every row of the square matrix `c` (`n * n`, row-major) under duals `v`.
    pub(super) fn of(c: &[f64], n: usize, v: &[f64]) -> Shortlists {
        let width = WIDTH.min(n);
        let mut cols = vec![0u32; n * width];
        let mut costs = vec![0.0; n * width];
        let mut bound = vec![0.0; n];
        cols.par_chunks_mut(width)
            .zip(costs.par_chunks_mut(width))
            .zip(bound.par_iter_mut())
            .enumerate()
            .for_each_init(Vec::new, |scratch, (i, ((cols, costs), bound))| {
                *bound = cheapest(&c[i * n..(i + 1) * n], v, scratch, cols, costs);
            });
        Shortlists {
            width,
            cols,
            costs,
            bound,
            scratch: Vec::new(),
        }
    }

    /// Row `i`'s `(column, cost)` entries.
    fn entries(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let at = i * self.width..(i + 1) * self.width;
        self.cols[at.clone()]
            .iter()
            .zip(&self.costs[at])
            .map(|(&j, &c)| (j as usize, c))
    }

    /// Makes row `i`'s list afresh from its costs `ci` under the current duals `v`.
    fn refresh(&mut self, i: usize, ci: &[f64], v: &[f64]) {
        let at = i * self.width..(i + 1) * self.width;
        self.bound[i] = cheapest(
            ci,
            v,
            &mut self.scratch,
            &mut self.cols[at.clone()],
            &mut self.costs[at],
        );
    }

    /// The two lowest reduced costs of row `i` over all its columns, with their columns, as
    /// [`two_lowest`] defines them: from the list when its second lowest is within the bound,
    /// else from the whole row `ci` (and the list is made afresh).
    pub(super) fn two_lowest(
        &mut self,
        i: usize,
        ci: &[f64],
        v: &[f64],
    ) -> (f64, usize, f64, usize) {
        let listed = two_lowest(self.entries(i), v);
        if listed.2 <= self.bound[i] {
            return listed;
        }
        self.refresh(i, ci, v);
        two_lowest(self.entries(i), v)
    }
}

/// Writes the `cols.len()` columns of least reduced cost `ci[j] - v[j]` and their costs into
/// `cols` and `costs`, and returns the least reduced cost among the other columns (infinite when
/// there are none).
fn cheapest(
    ci: &[f64],
    v: &[f64],
    scratch: &mut Vec<(f64, u32)>,
    cols: &mut [u32],
    costs: &mut [f64],
) -> f64 {
    let width = cols.len();
    if ci.len() <= width {
        for (j, (col, cost)) in cols.iter_mut().zip(costs.iter_mut()).enumerate() {
            (*col, *cost) = (j as u32, ci[j]);
        }
        return f64::INFINITY;
    }
    // Candidates below `threshold`, cut back to the `width + 1` least whenever the buffer fills:
    // everything dropped is at least the threshold, which only falls. Blocks of columns are
    // first tested as a whole (a comparison the compiler vectorises): after the first few
    // hundred columns almost none passes.
    let keep = width + 1;
    let by_value = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0);
    scratch.clear();
    let mut threshold = f64::INFINITY;
    let mut consider = |j: usize, r: f64, threshold: &mut f64| {
        if r < *threshold {
            scratch.push((r, j as u32));
            if scratch.len() == 4 * keep {
                scratch.select_nth_unstable_by(width, by_value);
                scratch.truncate(keep);
                *threshold = scratch[width].0;
            }
        }
    };
    const BLOCK: usize = 8;
    let body = ci.len() - ci.len() % BLOCK;
    for start in (0..body).step_by(BLOCK) {
        let (cs, vs) = (&ci[start..start + BLOCK], &v[start..start + BLOCK]);
        let below = cs
            .iter()
            .zip(vs)
            .fold(false, |any, (&c, &vj)| any | (c - vj < threshold));
        if below {
            for (k, (&c, &vj)) in cs.iter().zip(vs).enumerate() {
                consider(start + k, c - vj, &mut threshold);
            }
        }
    }
    for j in body..ci.len() {
        consider(j, ci[j] - v[j], &mut threshold);
    }
    scratch.select_nth_unstable_by(width, by_value);
    for ((col, cost), &(_, j)) in cols.iter_mut().zip(costs.iter_mut()).zip(&scratch[..width]) {
        (*col, *cost) = (j, ci[j as usize]);
    }
    scratch[width].0
}

/// What an augmenting search on the lists does next, in this order among equal distances: end
/// at a free column, settle a column, read a row whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Free(usize),
    Settle(usize),
    ReadRow(usize),
}

impl Step {
    /// Reaching column `j`: it ends the search if free (`y[j]` is its row).
    fn reach(j: usize, y: &[usize]) -> Step {
        if y[j] == UNMATCHED {
            Step::Free(j)
        } else {
            Step::Settle(j)
        }
    }
}

/// The variant in the top two bits, above the index: the order of [`Step`].
impl Tie for Step {
    fn encode(self) -> u64 {
        let (variant, index) = match self {
            Step::Free(j) => (0, j),
            Step::Settle(j) => (1, j),
            Step::ReadRow(i) => (2, i),
        };
        (variant << 62) | index as u64
    }
    fn decode(bits: u64) -> Self {
        let index = (bits & ((1 << 62) - 1)) as usize;
        match bits >> 62 {
            0 => Step::Free(index),
            1 => Step::Settle(index),
            _ => Step::ReadRow(index),
        }
    }
}

/// What the list searches keep beside their [`Workspace`], reused across searches.
pub(super) struct ListedSearch {
    /// `offset[i]`: the offset `h` with which row `i` was reached in this search.
    offset: Vec<f64>,
    /// Rows a search may read whole beyond half the columns it settled ([`MAX_EXPANSIONS`]).
    max_expansions: usize,
    /// Searches in a row that read too many rows whole (see [`MAX_GIVE_UPS`]).
    give_ups: usize,
}

impl ListedSearch {
    pub(super) fn new(n: usize, max_expansions: usize) -> Self {
        ListedSearch {
            max_expansions,
            offset: vec![0.0; n],
            give_ups: 0,
        }
    }

    /// Whether the lists have stopped paying on this layer.
    pub(super) fn worthwhile(&self) -> bool {
        self.give_ups < MAX_GIVE_UPS
    }
}

impl Jv<'_> {
    /// [`Jv::augment`] from free row `start`, stepping through rows' lists and reading a row
    /// whole only when its bound is reached. Returns false, having changed nothing but scratch,
    /// when the search read too many rows whole or queued too many steps (the dense search is
    /// then faster, and its memory fixed).
    pub(super) fn augment_listed(
        &mut self,
        start: usize,
        free_cols: &mut Vec<usize>,
        u: &mut [f64],
        lists: &mut Shortlists,
        s: &mut ListedSearch,
        ws: &mut Workspace,
    ) -> Result<bool> {
        ws.begin_by_distance();
        self.reach(start, 0.0, lists, s, ws)?;
        let mut expansions = 0;
        let (sink, min) = loop {
            if ws.queued() > MAX_QUEUED_PER_COLUMN * self.n {
                s.give_ups += 1;
                return Ok(false);
            }
            let Some((key, step)) = ws.pop::<Step>() else {
                // Unreachable (every reached row is read whole at the latest when its bound
                // comes up, and a free column exists); the dense search decides.
                return Ok(false);
            };
            match step {
                Step::ReadRow(i) => {
                    if expansions >= s.max_expansions.saturating_add(ws.settled().len() / 2) {
                        s.give_ups += 1;
                        return Ok(false);
                    }
                    expansions += 1;
                    let (v, y, h) = (&self.v, &self.y, s.offset[i]);
                    let rows = DenseRows {
                        c: self.c,
                        n: self.n,
                    };
                    ws.relax_by_distance(&rows, i, |j, c| c - v[j] - h, |j, _| Step::reach(j, y))?;
                    lists.refresh(i, self.row(i), &self.v);
                }
                Step::Free(j) | Step::Settle(j) => {
                    if !ws.is_current_by_distance(j, key) {
                        continue; // superseded or settled
                    }
                    if self.y[j] == UNMATCHED {
                        break (j, key);
                    }
                    ws.settle_by_distance(j, key);
                    let i = self.y[j];
                    self.reach(i, u[i] - key, lists, s, ws)?;
                }
            }
        };
        s.give_ups = 0;
        self.apply_path(start, sink, min, ws, u, free_cols);
        Ok(true)
    }

    /// Relaxes row `i`'s list with offset `h` and queues reading the row whole at its bound.
    fn reach(
        &self,
        i: usize,
        h: f64,
        lists: &Shortlists,
        s: &mut ListedSearch,
        ws: &mut Workspace,
    ) -> Result<()> {
        let (v, y) = (&self.v, &self.y);
        ws.relax_by_distance(lists, i, |j, c| c - v[j] - h, |j, _| Step::reach(j, y))?;
        s.offset[i] = h;
        let bound = lists.bound[i] - h;
        if bound.is_finite() {
            ws.push(bound, Step::ReadRow(i));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_the_cheapest_columns_and_bound_the_rest() {
        let mut next = crate::testing::numbers(7u64);
        for round in 0..200 {
            let n = 1 + round % 90;
            let values = [0.0, 0.25, 0.5, 0.75, 1.0];
            let c: Vec<f64> = (0..n * n).map(|_| values[next() % 5]).collect();
            let v: Vec<f64> = (0..n).map(|_| values[next() % 5] - 0.5).collect();
            let lists = Shortlists::of(&c, n, &v);
            for i in 0..n {
                let listed: Vec<usize> = lists.entries(i).map(|(j, _)| j).collect();
                let mut sorted = listed.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), WIDTH.min(n));
                let worst = lists
                    .entries(i)
                    .map(|(j, cost)| {
                        assert_eq!(cost, c[i * n + j]);
                        cost - v[j]
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                for j in (0..n).filter(|j| !listed.contains(j)) {
                    let r = c[i * n + j] - v[j];
                    assert!(lists.bound[i] <= r && worst <= r);
                }
                let least_other = (0..n)
                    .filter(|j| !listed.contains(j))
                    .map(|j| c[i * n + j] - v[j])
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(lists.bound[i], least_other);
            }
        }
    }
}
