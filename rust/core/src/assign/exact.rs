//! The exact solver: SciPy's choices, reproduced.
//!
//! SciPy's `linear_sum_assignment` runs Crouse's shortest augmenting path method; among the many
//! optimal assignments of a tie-heavy NNSTD cost matrix it picks one through the order in which it
//! scans columns and breaks ties. Later layers are aligned through that pick, so an "exact" NNSTD
//! must make the same pick. docs/definition.md#scipy-tie-rules states the rules; two implementations follow them:
//!
//! - [`solve_dense`]: over a dense matrix, every step one contiguous vectorised pass over all
//!   columns in column order, SciPy's list order kept only as a per-column preference
//!   (`exact/dense.rs`).
//! - [`solve`]: the same arithmetic on a [`SparseCost`] whose absent entries are 1. Columns that
//!   no visited row stores and whose dual is shared with others are not scanned one by one: they
//!   are kept in groups by dual value, and the minimum and SciPy's tie-break among them are read
//!   off ordered sets. Every float is computed by the same expression, in the same order, as in the
//!   dense scan, so the result is identical, element for element.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use super::{invert_matching, Assignment, Key, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

mod dense;

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
        (n_cols, n_rows, Cow::Owned(transposed(n_rows, n_cols, cost)))
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
fn transposed(n_rows: usize, n_cols: usize, cost: &[f64]) -> Vec<f64> {
    let mut t = vec![0.0; cost.len()];
    for i in 0..n_rows {
        for j in 0..n_cols {
            t[j * n_rows + i] = cost[i * n_cols + j];
        }
    }
    t
}

/// Maps a solution of the (possibly transposed) wide problem back to the input's rows.
fn untranspose(col4row: Vec<usize>, n_rows: usize, transposed: bool) -> Vec<usize> {
    if transposed {
        invert_matching(&col4row, n_rows)
    } else {
        col4row
    }
}

/// The plain port of SciPy's loop for `nr <= nc`, column list and all: the reference that the
/// fast paths are tested against.
#[cfg(test)]
fn reference_dense_wide(nr: usize, nc: usize, cost: &[f64]) -> Vec<usize> {
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
    solve_with(cost, Method::Adaptive)
}

/// One default pass of SciPy's scan over the first `n` list positions: lowers each path cost to
/// `base - v`, recording `row`, and picks the lowest with SciPy's tie rule (the latest free
/// position among equals, else the earliest). Returns (lowest cost, its position).
fn scan_step(
    base: f64,
    row: usize,
    n: usize,
    v: &[f64],
    free: &[bool],
    spc: &mut [f64],
    path: &mut [usize],
) -> (f64, usize) {
    let (v, free, spc, path) = (&v[..n], &free[..n], &mut spc[..n], &mut path[..n]);
    let mut lowest = f64::INFINITY;
    let mut index = 0;
    for p in 0..n {
        let r = base - v[p];
        if r < spc[p] {
            spc[p] = r;
            path[p] = row;
        }
        let s = spc[p];
        if s < lowest || (s == lowest && free[p]) {
            lowest = s;
            index = p;
        }
    }
    (lowest, index)
}

/// How [`solve_with`] runs each augmentation (all give the same assignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Per-column state in scan-list order; one sequential pass over the list per step.
    Scan,
    /// Columns grouped by dual value; work per step proportional to the stored entries.
    Grouped,
    /// Scan-list order with lazy path costs summarised per block of positions.
    Blocked,
    /// Per augmentation, whichever the previous augmentation's path length predicts is cheaper.
    Adaptive,
}

/// [`solve`] with a chosen implementation.
pub fn solve_with(cost: &SparseCost, method: Method) -> Assignment {
    if cost.n_rows == 0 || cost.n_cols == 0 {
        return Assignment {
            col_of_row: vec![UNMATCHED; cost.n_rows],
            cost: 0.0,
        };
    }
    match solve_structured(cost, method) {
        Some((assignment, _, _)) => assignment,
        None => solve_dense(cost.n_rows, cost.n_cols, &cost.to_dense()),
    }
}

/// SciPy's assignment with the optimal duals it ends with: `row_duals[i] + col_duals[j] <=
/// cost(i, j)` for every pair (up to rounding), with equality on the matched pairs. `None` for
/// empty matrices and matrices with entries above 1 (never NNSTD costs).
pub fn solve_with_duals(cost: &SparseCost) -> Option<(Assignment, Vec<f64>, Vec<f64>)> {
    if cost.n_rows == 0 || cost.n_cols == 0 {
        return None;
    }
    solve_structured(cost, Method::Adaptive)
}

/// The structured solver on a non-empty matrix, transposed when tall, with its final duals in
/// the input's orientation; `None` when an entry is above 1 (the structure does not hold).
fn solve_structured(cost: &SparseCost, method: Method) -> Option<(Assignment, Vec<f64>, Vec<f64>)> {
    if cost.vals.iter().any(|&c| c.is_nan() || c > 1.0) {
        return None;
    }
    let transpose = cost.n_rows > cost.n_cols;
    let (col4row, u, v) = if transpose {
        SparseSolver::new(&cost.transpose()).run(method)
    } else {
        SparseSolver::new(cost).run(method)
    };
    let (row_duals, col_duals) = if transpose { (v, u) } else { (u, v) };
    let col_of_row = untranspose(col4row, cost.n_rows, transpose);
    let assignment = Assignment::from_matching(col_of_row, |i, j| cost.get(i, j));
    Some((assignment, row_duals, col_duals))
}

/// The first step (visited row, in visiting order) at which a column with dual `v` reached its
/// path cost `value`: through a default entry at a row whose base was a new running minimum (an
/// earlier row with a base no higher would reach it first), or through its stored entry at
/// `stored_step`, whichever came first.
fn first_step_reaching(
    bases: &[(f64, usize)],
    prefix_min_steps: &[usize],
    v: f64,
    stored_step: Option<usize>,
    value: f64,
) -> usize {
    let default_step = prefix_min_steps
        .iter()
        .copied()
        .find(|&t| bases[t].0 - v == value);
    match (default_step, stored_step) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).expect("the picked value was reached by some row"),
    }
}

/// List positions per block in blocked augmentations.
const BLOCK: usize = 32;

/// Per block of list positions: the lowest stored value and the highest dual, over all remaining
/// entries and over the free ones.
#[derive(Debug, Clone, Copy)]
struct BlockSummary {
    stored_all: f64,
    stored_free: f64,
    dual_all: f64,
    dual_free: f64,
}

impl BlockSummary {
    const EMPTY: BlockSummary = BlockSummary {
        stored_all: f64::INFINITY,
        stored_free: f64::INFINITY,
        dual_all: f64::NEG_INFINITY,
        dual_free: f64::NEG_INFINITY,
    };

    fn add(&mut self, stored: f64, dual: f64, free: bool) {
        self.stored_all = self.stored_all.min(stored);
        self.dual_all = self.dual_all.max(dual);
        if free {
            self.stored_free = self.stored_free.min(stored);
            self.dual_free = self.dual_free.max(dual);
        }
    }

    fn lower_stored(&mut self, stored: f64, free: bool) {
        self.stored_all = self.stored_all.min(stored);
        if free {
            self.stored_free = self.stored_free.min(stored);
        }
    }

    /// The lowest path cost in the block: subtraction rounds monotonically, so the highest dual
    /// gives the lowest default.
    fn lowest(&self, base_min: f64) -> f64 {
        self.stored_all.min(base_min - self.dual_all)
    }

    fn lowest_free(&self, base_min: f64) -> f64 {
        self.stored_free.min(base_min - self.dual_free)
    }
}

impl Key {
    /// `+0.0` and `-0.0` subtract and compare identically, so they must share a key.
    fn of(v: f64) -> Key {
        Key(v + 0.0)
    }
}

/// Remaining columns that share a dual value, by scan-list position: all, and the free ones.
#[derive(Debug, Default)]
struct Group {
    all: BTreeSet<u32>,
    free: BTreeSet<u32>,
}

/// SciPy's choice among candidates: the lowest path cost; among equals the free column latest in
/// scan order, else the earliest column in scan order.
#[derive(Debug, Clone, Copy)]
struct Pick {
    first: Option<u32>,     // earliest position at `value`
    last_free: Option<u32>, // latest free position at `value`
}

impl Pick {
    fn earliest(&mut self, pos: u32) {
        if self.first.is_none_or(|p| pos < p) {
            self.first = Some(pos);
        }
    }

    fn latest_free(&mut self, pos: u32) {
        if self.last_free.is_none_or(|p| pos > p) {
            self.last_free = Some(pos);
        }
    }

    fn winner(&self) -> u32 {
        self.last_free
            .or(self.first)
            .expect("a wide matrix always has a remaining column")
    }
}

/// The structured solver on a wide matrix (`n_rows <= n_cols`) whose stored entries are <= 1.
///
/// Why it can skip columns: in SciPy's scan a column's path cost is the minimum over the visited
/// rows of `min_val + c - u[i] - v[j]`. For an absent entry (c = 1) that is `base_i - v[j]` with
/// `base_i = min_val + 1 - u[i]`, evaluated in that order, so it equals `base_min - v[j]` after
/// rounding too (subtraction rounds monotonically). A stored entry c <= 1 can only lower a row's
/// value below its default, so a column's path cost is `min(base_min - v[j], s[j])`, where `s[j]`
/// is the lowest value its stored entries gave. The first part is shared by every column with the
/// same dual: columns are grouped by dual, and only columns with stored entries in visited rows
/// carry an `s` of their own. Both are kept in ordered sets keyed by scan-list position, which is
/// what SciPy's tie-break reads.
struct SparseSolver<'a> {
    cost: &'a SparseCost,
    nr: usize,
    nc: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    groups: BTreeMap<Key, Group>,
    // Per augmentation; an entry counts only when its stamp equals `stamp`, so nothing is reset.
    stamp: u32,
    s_at: Vec<u32>,
    s_val: Vec<f64>,
    s_step: Vec<usize>,
    // Stored values as (value, position, column), lowest first; an entry whose column has since
    // been removed, moved or lowered is stale and dropped when it surfaces.
    s_heap: BinaryHeap<Reverse<(Key, u32, u32)>>,
    ties: Vec<Reverse<(Key, u32, u32)>>,
    removed_at: Vec<u32>,
    pos_at: Vec<u32>,
    pos_now: Vec<u32>,
    slot_at: Vec<u32>,
    slot_col: Vec<usize>,
    moved: Vec<usize>,
    spc: Vec<f64>,
    path: Vec<usize>,
    visited_rows: Vec<usize>,
    visited_cols: Vec<usize>,
    bases: Vec<(f64, usize)>,
    prefix_min_steps: Vec<usize>,
    // Scan mode, by list position:
    col_p: Vec<usize>,
    v_p: Vec<f64>,
    spc_p: Vec<f64>,
    path_p: Vec<usize>,
    free_p: Vec<bool>,
    pos_of: Vec<usize>,
    blocks: Vec<BlockSummary>,
}

impl<'a> SparseSolver<'a> {
    fn new(cost: &'a SparseCost) -> Self {
        let (nr, nc) = (cost.n_rows, cost.n_cols);
        debug_assert!(nr <= nc);
        let positions: BTreeSet<u32> = (0..nc as u32).collect();
        let mut groups = BTreeMap::new();
        groups.insert(
            Key::of(0.0),
            Group {
                all: positions.clone(),
                free: positions,
            },
        );
        SparseSolver {
            cost,
            nr,
            nc,
            u: vec![0.0; nr],
            v: vec![0.0; nc],
            col4row: vec![UNMATCHED; nr],
            row4col: vec![UNMATCHED; nc],
            groups,
            stamp: 0,
            s_at: vec![0; nc],
            s_val: vec![f64::INFINITY; nc],
            s_step: vec![0; nc],
            s_heap: BinaryHeap::new(),
            ties: Vec::new(),
            removed_at: vec![0; nc],
            pos_at: vec![0; nc],
            pos_now: vec![0; nc],
            slot_at: vec![0; nc],
            slot_col: vec![0; nc],
            moved: Vec::new(),
            spc: vec![f64::INFINITY; nc],
            path: vec![UNMATCHED; nc],
            visited_rows: Vec::new(),
            visited_cols: Vec::new(),
            bases: Vec::new(),
            prefix_min_steps: Vec::new(),
            col_p: vec![0; nc],
            v_p: vec![0.0; nc],
            spc_p: vec![f64::INFINITY; nc],
            path_p: vec![0; nc],
            free_p: vec![false; nc],
            pos_of: vec![UNMATCHED; nc],
            blocks: vec![BlockSummary::EMPTY; nc.div_ceil(BLOCK)],
        }
    }

    /// Solves; returns the column of every row and the final duals (u of rows, v of columns).
    fn run(mut self, method: Method) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
        let mut mean_steps = 0.0f64;
        // Adaptive: augmenting paths lengthen as the matching fills up, so once blocked
        // augmentations pay off (judged on a moving average of path lengths, so that one long
        // path early on does not decide), the rest are blocked too and the dual groups need no
        // upkeep.
        let mut list_only = matches!(method, Method::Scan | Method::Blocked);
        for cur_row in 0..self.nr {
            if method == Method::Adaptive && !list_only {
                // Measured on NNSTD layers (n = 784): a grouped step costs about 1 us, a
                // blocked step about 0.25 us after setting up the list in about 2 ns per column.
                list_only = 2.0 * self.nc as f64 <= 750.0 * mean_steps;
            }
            if list_only {
                if method == Method::Scan {
                    self.scan_augmentation(cur_row);
                } else {
                    self.block_augmentation(cur_row);
                }
            } else {
                let (sink, min_val) = self.augmenting_path(cur_row);
                let old_duals: Vec<f64> = self.visited_cols.iter().map(|&j| self.v[j]).collect();
                self.update_duals(cur_row, min_val);
                self.flip(sink, cur_row);
                self.restore_columns(&old_duals);
            }
            mean_steps = 0.9 * mean_steps + 0.1 * self.visited_cols.len() as f64;
        }
        (self.col4row, self.u, self.v)
    }

    /// One augmentation with SciPy's full scan, every per-column array kept by list position so
    /// that the scan is a sequential pass and SciPy's swap-removal a swap of slots. Leaves the
    /// duals updated and the path flipped; the dual groups are not kept up to date.
    ///
    /// A row's stored entries are applied before its default pass: a stored c <= 1 gives a value
    /// no higher than the default 1, so the default pass changes neither their path cost nor the
    /// row recorded with it.
    fn scan_augmentation(&mut self, cur_row: usize) {
        self.stamp += 1;
        let nc = self.nc;
        self.reset_list();
        self.visited_rows.clear();
        self.visited_cols.clear();
        self.moved.clear();
        let mut num_remaining = nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            self.visited_rows.push(i);
            let ui = self.u[i];
            for (j, c) in self.cost.row(i) {
                let p = self.pos_of[j];
                if p != UNMATCHED {
                    let r = min_val + c - ui - self.v_p[p];
                    if r < self.spc_p[p] {
                        self.spc_p[p] = r;
                        self.path_p[p] = i;
                    }
                }
            }
            let base = min_val + 1.0 - ui;
            let (lowest, index) = scan_step(
                base,
                i,
                num_remaining,
                &self.v_p,
                &self.free_p,
                &mut self.spc_p,
                &mut self.path_p,
            );
            min_val = lowest;
            let j = self.col_p[index];
            self.spc[j] = self.spc_p[index];
            self.path[j] = self.path_p[index];
            self.visited_cols.push(j);
            self.pos_of[j] = UNMATCHED;
            num_remaining -= 1;
            let last = num_remaining;
            if index != last {
                self.move_slot(last, index);
            }
            if self.row4col[j] == UNMATCHED {
                break j;
            }
            i = self.row4col[j];
        };
        self.finish_list_augmentation(cur_row, sink, min_val)
    }

    /// After a scan or blocked augmentation: updates the duals and flips the path.
    fn finish_list_augmentation(&mut self, cur_row: usize, sink: usize, min_val: f64) {
        self.update_duals(cur_row, min_val);
        self.flip(sink, cur_row);
    }

    /// Sets up the scan list in its initial order (column j at position nc-1-j).
    fn reset_list(&mut self) {
        let nc = self.nc;
        for p in 0..nc {
            let j = nc - 1 - p;
            self.col_p[p] = j;
            self.v_p[p] = self.v[j];
            self.spc_p[p] = f64::INFINITY;
            self.free_p[p] = self.row4col[j] == UNMATCHED;
            self.pos_of[j] = p;
        }
    }

    /// Moves the list entry at `from` into slot `to` (SciPy's swap-removal).
    fn move_slot(&mut self, from: usize, to: usize) {
        self.col_p[to] = self.col_p[from];
        self.v_p[to] = self.v_p[from];
        self.spc_p[to] = self.spc_p[from];
        self.path_p[to] = self.path_p[from];
        self.free_p[to] = self.free_p[from];
        self.pos_of[self.col_p[to]] = to;
    }

    /// Recomputes the summary of block `b` over the remaining positions.
    fn summarise_block(&mut self, b: usize, num_remaining: usize) {
        let lo = b * BLOCK;
        let hi = ((b + 1) * BLOCK).min(num_remaining);
        let mut sum = BlockSummary::EMPTY;
        for p in lo..hi.max(lo) {
            sum.add(self.spc_p[p], self.v_p[p], self.free_p[p]);
        }
        self.blocks[b] = sum;
    }

    /// Column at position `p`'s path cost: its stored minimum or its default, whichever is lower.
    fn lazy_cost(&self, p: usize, base_min: f64) -> f64 {
        self.spc_p[p].min(base_min - self.v_p[p])
    }

    /// One augmentation over the scan list with lazy path costs: a position's cost is
    /// `min(stored[p], base_min - v[p])` (see the type's notes), and blocks of [`BLOCK`]
    /// positions keep the lowest stored value and highest dual of their entries, all and free.
    /// A block's lowest cost is then `min(lowest stored, base_min - highest dual)`, exactly, so
    /// a step reads the blocks and rescans only the block it picks from.
    fn block_augmentation(&mut self, cur_row: usize) {
        self.begin_augmentation();
        self.reset_list();
        let n_blocks = self.nc.div_ceil(BLOCK);
        for b in 0..n_blocks {
            self.summarise_block(b, self.nc);
        }
        let mut num_remaining = self.nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            self.visited_rows.push(i);
            let step = self.bases.len();
            let ui = self.u[i];
            let base = min_val + 1.0 - ui;
            self.bases.push((base, i));
            if base < self.base_min() || step == 0 {
                self.prefix_min_steps.push(step);
            }
            let base_min = self.base_min();
            for (j, c) in self.cost.row(i) {
                let p = self.pos_of[j];
                if p == UNMATCHED {
                    continue;
                }
                let r = min_val + c - ui - self.v_p[p];
                // A stored value above the default can never be the minimum (see `scan_row`).
                if r < self.spc_p[p] && r <= base_min - self.v_p[p] {
                    self.spc_p[p] = r;
                    self.path_p[p] = step;
                    self.blocks[p / BLOCK].lower_stored(r, self.free_p[p]);
                }
            }
            let (index, value) = self.pick_blocked(base_min, num_remaining.div_ceil(BLOCK));
            min_val = value;
            let j = self.col_p[index];
            let step = first_step_reaching(
                &self.bases,
                &self.prefix_min_steps,
                self.v_p[index],
                (self.spc_p[index] == value).then_some(self.path_p[index]),
                value,
            );
            self.spc[j] = value;
            self.path[j] = self.bases[step].1;
            self.visited_cols.push(j);
            self.pos_of[j] = UNMATCHED;
            num_remaining -= 1;
            if index != num_remaining {
                self.move_slot(num_remaining, index);
            }
            self.summarise_block(index / BLOCK, num_remaining);
            self.summarise_block(num_remaining / BLOCK, num_remaining);
            if self.row4col[j] == UNMATCHED {
                break j;
            }
            i = self.row4col[j];
        };
        self.finish_list_augmentation(cur_row, sink, min_val)
    }

    /// SciPy's pick over the first `n_blocks` blocks: (position, path cost).
    fn pick_blocked(&self, base_min: f64, n_blocks: usize) -> (usize, f64) {
        let blocks = &self.blocks[..n_blocks];
        let value = blocks
            .iter()
            .map(|b| b.lowest(base_min))
            .fold(f64::INFINITY, f64::min);
        if let Some(b) = blocks
            .iter()
            .rposition(|b| b.lowest_free(base_min) == value)
        {
            let lo = b * BLOCK;
            let hi = (lo + BLOCK).min(self.nc);
            let p = (lo..hi)
                .rev()
                .find(|&p| {
                    self.pos_in_list(p) && self.free_p[p] && self.lazy_cost(p, base_min) == value
                })
                .expect("the block's free minimum is attained");
            return (p, value);
        }
        let b = blocks
            .iter()
            .position(|b| b.lowest(base_min) == value)
            .expect("minimum attained");
        let lo = b * BLOCK;
        let p = (lo..(lo + BLOCK).min(self.nc))
            .find(|&p| self.pos_in_list(p) && self.lazy_cost(p, base_min) == value)
            .expect("the block's minimum is attained");
        (p, value)
    }

    /// Whether list position `p` still holds a remaining column.
    fn pos_in_list(&self, p: usize) -> bool {
        self.pos_of[self.col_p[p]] == p
    }

    fn flip(&mut self, sink: usize, cur_row: usize) {
        flip_path(
            sink,
            cur_row,
            &self.path,
            &mut self.row4col,
            &mut self.col4row,
        );
    }

    /// The column's position in SciPy's scan list (initially descending: column j at nc-1-j).
    fn position(&self, j: usize) -> u32 {
        if self.pos_at[j] == self.stamp {
            self.pos_now[j]
        } else {
            (self.nc - 1 - j) as u32
        }
    }

    fn column_at(&self, pos: u32) -> usize {
        if self.slot_at[pos as usize] == self.stamp {
            self.slot_col[pos as usize]
        } else {
            self.nc - 1 - pos as usize
        }
    }

    fn is_free(&self, j: usize) -> bool {
        self.row4col[j] == UNMATCHED
    }

    fn has_s(&self, j: usize) -> bool {
        self.s_at[j] == self.stamp
    }

    fn base_min(&self) -> f64 {
        self.prefix_min_steps
            .last()
            .map_or(f64::INFINITY, |&t| self.bases[t].0)
    }

    /// Inserts or removes column `j` (at `pos`) in its dual group.
    fn index_column(&mut self, j: usize, pos: u32, insert: bool) {
        let free = self.is_free(j);
        let group = self
            .groups
            .get_mut(&Key::of(self.v[j]))
            .expect("every column has a group");
        if insert {
            group.all.insert(pos);
            if free {
                group.free.insert(pos);
            }
        } else {
            group.all.remove(&pos);
            group.free.remove(&pos);
        }
        if insert && self.has_s(j) {
            self.s_heap
                .push(Reverse((Key::of(self.s_val[j]), pos, j as u32)));
        }
    }

    fn is_current(&self, entry: &(Key, u32, u32)) -> bool {
        let j = entry.2 as usize;
        self.removed_at[j] != self.stamp
            && self.has_s(j)
            && self.s_val[j] == entry.0 .0
            && self.position(j) == entry.1
    }

    /// The lowest current stored value, after dropping stale entries from the top.
    fn stored_min(&mut self) -> f64 {
        while let Some(Reverse(top)) = self.s_heap.peek() {
            if self.is_current(top) {
                return top.0 .0;
            }
            self.s_heap.pop();
        }
        f64::INFINITY
    }

    /// Applies row `i`'s stored entries (reached at `min_val`) and records its default base.
    fn scan_row(&mut self, i: usize, min_val: f64) {
        let step = self.bases.len();
        let base = min_val + 1.0 - self.u[i];
        // A stored value above the column's default path cost can never be its minimum: the
        // default only falls as more rows are visited.
        let base_min = self.base_min().min(base);
        let cost = self.cost;
        for (j, c) in cost.row(i) {
            if self.removed_at[j] == self.stamp {
                continue;
            }
            let r = min_val + c - self.u[i] - self.v[j];
            let old = if self.has_s(j) {
                self.s_val[j]
            } else {
                f64::INFINITY
            };
            if r < old && r <= base_min - self.v[j] {
                self.s_at[j] = self.stamp;
                self.s_val[j] = r;
                self.s_step[j] = step;
                self.s_heap
                    .push(Reverse((Key::of(r), self.position(j), j as u32)));
            }
        }
        self.bases.push((base, i));
        if base < self.base_min() {
            self.prefix_min_steps.push(step);
        }
    }

    /// SciPy's pick among the remaining columns: (column, its path cost).
    fn pick_column(&mut self) -> (usize, f64) {
        let base_min = self.base_min();
        let stored_min = self.stored_min();
        let default_min = self
            .groups
            .iter()
            .rev()
            .find(|(_, g)| !g.all.is_empty())
            .map_or(f64::INFINITY, |(v, _)| base_min - v.0);
        let value = default_min.min(stored_min);
        let mut pick = Pick {
            first: None,
            last_free: None,
        };
        if stored_min == value {
            while let Some(Reverse(top)) = self.s_heap.peek() {
                if top.0 .0 != value {
                    break;
                }
                let entry = self.s_heap.pop().expect("peeked");
                if self.is_current(&entry.0) {
                    pick.earliest(entry.0 .1);
                    if self.is_free(entry.0 .2 as usize) {
                        pick.latest_free(entry.0 .1);
                    }
                    self.ties.push(entry);
                }
            }
            self.s_heap.extend(self.ties.drain(..));
        }
        for (dual, group) in self.groups.iter().rev().filter(|(_, g)| !g.all.is_empty()) {
            if base_min - dual.0 != value {
                break;
            }
            pick.earliest(*group.all.first().expect("non-empty group"));
            if let Some(&pos) = group.free.last() {
                pick.latest_free(pos);
            }
        }
        (self.column_at(pick.winner()), value)
    }

    /// The first visited row at which column `j` reached its path cost `value`.
    fn first_row_reaching(&self, j: usize, value: f64) -> usize {
        let stored = (self.has_s(j) && self.s_val[j] == value).then(|| self.s_step[j]);
        let step = first_step_reaching(
            &self.bases,
            &self.prefix_min_steps,
            self.v[j],
            stored,
            value,
        );
        self.bases[step].1
    }

    /// Removes column `j` from the scan list the way SciPy does: the last entry takes its slot.
    fn remove_column(&mut self, j: usize, value: f64, num_remaining: usize) {
        self.spc[j] = value;
        self.path[j] = self.first_row_reaching(j, value);
        let index = self.position(j);
        self.index_column(j, index, false);
        self.removed_at[j] = self.stamp;
        self.visited_cols.push(j);
        let last = (num_remaining - 1) as u32;
        if index != last {
            let k = self.column_at(last);
            self.index_column(k, last, false);
            // index_column re-adds k's stored value under its new position below
            if self.pos_at[k] != self.stamp {
                self.moved.push(k);
            }
            self.pos_at[k] = self.stamp;
            self.pos_now[k] = index;
            self.slot_at[index as usize] = self.stamp;
            self.slot_col[index as usize] = k;
            self.index_column(k, index, true);
        }
    }

    /// Starts a new augmentation: per-augmentation state reads as empty.
    fn begin_augmentation(&mut self) {
        self.stamp += 1;
        self.visited_rows.clear();
        self.visited_cols.clear();
        self.moved.clear();
        self.bases.clear();
        self.prefix_min_steps.clear();
    }

    fn augmenting_path(&mut self, cur_row: usize) -> (usize, f64) {
        self.begin_augmentation();
        let mut num_remaining = self.nc;
        let mut i = cur_row;
        let mut min_val = 0.0f64;
        loop {
            self.visited_rows.push(i);
            self.scan_row(i, min_val);
            let (j, lowest) = self.pick_column();
            min_val = lowest;
            self.remove_column(j, min_val, num_remaining);
            num_remaining -= 1;
            if self.is_free(j) {
                return (j, min_val);
            }
            i = self.row4col[j];
        }
    }

    fn update_duals(&mut self, cur_row: usize, min_val: f64) {
        self.u[cur_row] += min_val;
        for &i in &self.visited_rows {
            if i != cur_row {
                self.u[i] += min_val - self.spc[self.col4row[i]];
            }
        }
        for &j in &self.visited_cols {
            self.v[j] -= min_val - self.spc[j];
        }
    }

    /// Puts every column back at its initial position for the next augmentation: moved ones
    /// leave their slots, visited ones rejoin the group of their new dual, free or not.
    fn restore_columns(&mut self, old_duals: &[f64]) {
        let old_stamp = self.stamp;
        self.stamp += 1; // from here on, positions and stored values read as initial
        self.s_heap.clear();
        for k in 0..self.moved.len() {
            let j = self.moved[k];
            if self.removed_at[j] != old_stamp {
                let group = self.groups.get_mut(&Key::of(self.v[j])).expect("group");
                group.all.remove(&self.pos_now[j]);
                group.free.remove(&self.pos_now[j]);
                let pos = self.position(j);
                self.index_column(j, pos, true);
            }
        }
        for (k, &old) in old_duals.iter().enumerate() {
            let j = self.visited_cols[k];
            let old = Key::of(old);
            if self.groups.get(&old).is_some_and(|g| g.all.is_empty()) {
                self.groups.remove(&old);
            }
            self.groups.entry(Key::of(self.v[j])).or_default();
            let pos = self.position(j);
            self.index_column(j, pos, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain port on a matrix of any shape.
    fn reference_dense(n_rows: usize, n_cols: usize, cost: &[f64]) -> Vec<usize> {
        if n_rows == 0 || n_cols == 0 {
            return vec![UNMATCHED; n_rows];
        }
        if n_rows > n_cols {
            let t = transposed(n_rows, n_cols, cost);
            untranspose(reference_dense_wide(n_cols, n_rows, &t), n_rows, true)
        } else {
            reference_dense_wide(n_rows, n_cols, cost)
        }
    }

    /// Tie-heavy matrices: entries from a handful of values, many equal to 1.
    fn tie_heavy(max: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
        (0usize..max, 0usize..max).prop_flat_map(|(r, c)| {
            let values = prop_oneof![
                6 => Just(1.0),
                1 => Just(0.0),
                1 => Just(0.5),
                1 => Just(2.0 / 3.0),
                1 => Just(0.75),
                1 => Just(0.25),
            ];
            (Just(r), Just(c), prop::collection::vec(values, r * c))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn fast_dense_scan_makes_scipys_choices((r, c, m) in tie_heavy(40)) {
            prop_assert_eq!(solve_dense(r, c, &m).col_of_row, reference_dense(r, c, &m));
        }
    }

    #[test]
    fn a_raised_cancel_stops_the_dense_scan() {
        let cancel = Cancel::new();
        cancel.cancel();
        assert!(try_solve_dense(3, 3, &[1.0; 9], &cancel).is_err());
    }
}
