//! SciPy's shortest augmenting path on a sparse cost matrix whose absent entries are 1, without
//! scanning every column at every step.
//!
//! Why columns can be skipped: in SciPy's scan a column's path cost is the minimum over the
//! visited rows of `min_val + c - u[i] - v[j]`. For an absent entry (c = 1) that is
//! `base_i - v[j]` with `base_i = min_val + 1 - u[i]`, evaluated in that order, so it equals
//! `base_min - v[j]` after rounding too (subtraction rounds monotonically). A stored entry
//! c <= 1 can only lower a row's value below its default, so a column's path cost is
//! `min(base_min - v[j], s[j])`, where `s[j]` is the lowest value its stored entries gave.
//!
//! Layers of state, each with its own invariants:
//! - [`Core`]: the matrix, the matching and the duals, kept between augmentations;
//! - [`Search`]: what one augmentation records for the dual update and the flip, common to all
//!   strategies;
//! - the strategies, each an augmentation on top of those two: [`Grouped`] (columns grouped by
//!   dual in ordered sets; work per step proportional to the stored entries) and [`List`]
//!   (SciPy's column list with lazy path costs summarised per block; work per step proportional
//!   to the number of blocks); in tests, SciPy's full scan over the same list ([`scan`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use super::super::{Key, UNMATCHED};
use super::flip_path;
use crate::alloc;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

#[cfg(test)]
pub(super) mod scan;

/// How each augmentation runs (all give the same assignment). The solver runs `Adaptive`; the
/// tests force each strategy on every augmentation, to check both paths against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Columns grouped by dual value; work per step proportional to the stored entries.
    #[cfg(test)]
    Grouped,
    /// Scan-list order with lazy path costs summarised per block of positions.
    #[cfg(test)]
    Blocked,
    /// Per augmentation, whichever the previous augmentation's path length predicts is cheaper.
    Adaptive,
}

/// The matrix, the matching and the duals. Invariants between augmentations: `cost` is wide
/// (`n_rows <= n_cols`) with every stored entry <= 1; `col4row` and `row4col` are inverse on the
/// matched pairs (the rest [`UNMATCHED`]), and the rows matched so far are exactly the rows
/// augmented so far; `u[i] + v[j] <= cost(i, j)` for every pair, with equality on matched pairs
/// (up to rounding), as SciPy's updates leave them.
pub(super) struct Core<'a> {
    pub(super) cost: &'a SparseCost,
    pub(super) u: Vec<f64>,
    pub(super) v: Vec<f64>,
    pub(super) col4row: Vec<usize>,
    pub(super) row4col: Vec<usize>,
}

impl<'a> Core<'a> {
    fn new(cost: &'a SparseCost) -> Self {
        debug_assert!(cost.n_rows <= cost.n_cols);
        Core {
            cost,
            u: vec![0.0; cost.n_rows],
            v: vec![0.0; cost.n_cols],
            col4row: vec![UNMATCHED; cost.n_rows],
            row4col: vec![UNMATCHED; cost.n_cols],
        }
    }

    fn is_free(&self, j: usize) -> bool {
        self.row4col[j] == UNMATCHED
    }
}

/// One augmentation's record. Invariants during an augmentation:
/// - `visited_rows[t]` is the row scanned at step `t` (the first is the augmenting row), and
///   `bases[t]` its default path cost before the column's dual, `min_val + 1 - u[row]`;
/// - `prefix_min_steps` are the steps whose base was strictly below every earlier base, in
///   order, so the last one holds the running minimum `base_min`;
/// - for each column in `visited_cols` (in the order they left SciPy's list), `spc[j]` is its
///   path cost when it left and `path[j]` the row that gave it (SciPy's `shortestPathCosts` and
///   `path`); other entries of `spc` and `path` are stale.
pub(super) struct Search {
    visited_rows: Vec<usize>,
    visited_cols: Vec<usize>,
    bases: Vec<f64>,
    prefix_min_steps: Vec<usize>,
    spc: Vec<f64>,
    path: Vec<usize>,
}

impl Search {
    fn new(nc: usize) -> Self {
        Search {
            visited_rows: Vec::new(),
            visited_cols: Vec::new(),
            bases: Vec::new(),
            prefix_min_steps: Vec::new(),
            spc: vec![f64::INFINITY; nc],
            path: vec![UNMATCHED; nc],
        }
    }

    fn begin(&mut self) {
        self.visited_rows.clear();
        self.visited_cols.clear();
        self.bases.clear();
        self.prefix_min_steps.clear();
    }

    /// Records a step from row `i` (reached at `min_val`); returns the step's number.
    fn visit_row(&mut self, i: usize, min_val: f64, u: &[f64]) -> usize {
        let step = self.bases.len();
        let base = min_val + 1.0 - u[i];
        if base < self.base_min() {
            self.prefix_min_steps.push(step);
        }
        self.visited_rows.push(i);
        self.bases.push(base);
        step
    }

    fn base_min(&self) -> f64 {
        self.prefix_min_steps
            .last()
            .map_or(f64::INFINITY, |&t| self.bases[t])
    }

    /// Records that column `j` left the list at path cost `value`, given by the row of `step`.
    fn take(&mut self, j: usize, value: f64, step: usize) {
        self.spc[j] = value;
        self.path[j] = self.visited_rows[step];
        self.visited_cols.push(j);
    }

    /// The first step at which a column with dual `v` reached its path cost `value`: through a
    /// default entry at a row whose base was a new running minimum (an earlier row with a base
    /// no higher would reach it first), or through its stored entry at `stored_step`, whichever
    /// came first.
    fn first_step_reaching(&self, v: f64, stored_step: Option<usize>, value: f64) -> usize {
        let default_step = self
            .prefix_min_steps
            .iter()
            .copied()
            .find(|&t| self.bases[t] - v == value);
        match (default_step, stored_step) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).expect("the picked value was reached by some row"),
        }
    }

    /// SciPy's dual update after an augmentation that ended at `sink` with `min_val`, then the
    /// flip along the path.
    fn finish(&self, core: &mut Core, cur_row: usize, sink: usize, min_val: f64) {
        core.u[cur_row] += min_val;
        for &i in &self.visited_rows[1..] {
            core.u[i] += min_val - self.spc[core.col4row[i]];
        }
        for &j in &self.visited_cols {
            core.v[j] -= min_val - self.spc[j];
        }
        flip_path(
            sink,
            cur_row,
            &self.path,
            &mut core.row4col,
            &mut core.col4row,
        );
    }
}

/// Solves a wide matrix whose stored entries are <= 1: the column of every row and the final
/// duals (u of rows, v of columns).
pub(super) fn run(
    cost: &SparseCost,
    method: Method,
    cancel: &Cancel,
) -> Result<(Vec<usize>, Vec<f64>, Vec<f64>)> {
    let nc = cost.n_cols;
    let mut core = Core::new(cost);
    let mut search = Search::new(nc);
    let mut grouped = None;
    let mut list = None;
    let mut mean_steps = 0.0f64;
    for cur_row in 0..cost.n_rows {
        cancel.check()?;
        // Adaptive: augmenting paths lengthen as the matching fills up, so once list
        // augmentations pay off (judged on a moving average of path lengths, so that one long
        // path early on does not decide), the rest use the list too and the dual groups need
        // no upkeep. Measured on NNSTD layers (n = 784): a grouped step costs about 1 us, a
        // blocked step about 0.25 us after setting up the list in about 2 ns per column.
        let use_list = match method {
            #[cfg(test)]
            Method::Grouped => false,
            Method::Adaptive => list.is_some() || 2.0 * nc as f64 <= 750.0 * mean_steps,
            #[cfg(test)]
            Method::Blocked => true,
        };
        if use_list {
            let list = list.get_or_insert_with(|| List::new(nc));
            list.block_augmentation(&mut core, &mut search, cur_row, cancel)?;
        } else {
            let grouped = grouped.get_or_insert_with(|| Grouped::new(nc));
            grouped.augment(&mut core, &mut search, cur_row, cancel)?;
        }
        mean_steps = 0.9 * mean_steps + 0.1 * search.visited_cols.len() as f64;
    }
    Ok((core.col4row, core.u, core.v))
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

impl Key {
    /// `+0.0` and `-0.0` subtract and compare identically, so they must share a key.
    fn of(v: f64) -> Key {
        Key(v + 0.0)
    }
}

/// Grouped augmentations: the shared default part of the path costs, `base_min - v[j]`, is read
/// per group of columns with equal dual, and only columns with stored entries in visited rows
/// carry a value `s` of their own; both are kept by scan-list position, which is what SciPy's
/// tie-break reads.
///
/// Invariants. Between augmentations every column is in the group of its dual at its initial
/// position (column j at `nc - 1 - j`), in `free` too when free, and `s_heap` is empty. During
/// an augmentation (numbered `stamp`), a per-column field counts only when its stamp field
/// equals `stamp`, so nothing is reset between augmentations:
/// - `s_val[j]`/`s_step[j]` (when `s_at[j] == stamp`): the lowest value column j's stored
///   entries gave so far and the step that gave it;
/// - `removed_at[j] == stamp`: column j has left the list;
/// - `pos_now[j]` (when `pos_at[j] == stamp`): column j's list position, moved by a removal;
///   `slot_col[p]` (when `slot_at[p] == stamp`): the column at list position p;
///   `moved` lists the columns moved in this augmentation;
/// - `s_heap` holds (value, position, column) of stored values, lowest first; an entry whose
///   column has since been removed, moved or lowered is stale and dropped when it surfaces.
struct Grouped {
    nc: usize,
    groups: BTreeMap<Key, Group>,
    stamp: u32,
    s_at: Vec<u32>,
    s_val: Vec<f64>,
    s_step: Vec<usize>,
    s_heap: BinaryHeap<Reverse<(Key, u32, u32)>>,
    ties: Vec<Reverse<(Key, u32, u32)>>,
    removed_at: Vec<u32>,
    pos_at: Vec<u32>,
    pos_now: Vec<u32>,
    slot_at: Vec<u32>,
    slot_col: Vec<usize>,
    moved: Vec<usize>,
}

impl Grouped {
    /// The state before the first augmentation: every dual 0, every column free.
    fn new(nc: usize) -> Self {
        let positions: BTreeSet<u32> = (0..nc as u32).collect();
        let mut groups = BTreeMap::new();
        groups.insert(
            Key::of(0.0),
            Group {
                all: positions.clone(),
                free: positions,
            },
        );
        Grouped {
            nc,
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
        }
    }

    /// One augmentation from `cur_row`; leaves the duals updated, the path flipped and the
    /// groups restored.
    fn augment(
        &mut self,
        core: &mut Core,
        search: &mut Search,
        cur_row: usize,
        cancel: &Cancel,
    ) -> Result<()> {
        let (sink, min_val) = self.augmenting_path(core, search, cur_row, cancel)?;
        let old_duals: Vec<f64> = search.visited_cols.iter().map(|&j| core.v[j]).collect();
        search.finish(core, cur_row, sink, min_val);
        self.restore_columns(core, search, &old_duals);
        Ok(())
    }

    fn augmenting_path(
        &mut self,
        core: &Core,
        search: &mut Search,
        cur_row: usize,
        cancel: &Cancel,
    ) -> Result<(usize, f64)> {
        self.stamp += 1;
        self.moved.clear();
        search.begin();
        let mut num_remaining = self.nc;
        let mut i = cur_row;
        let mut min_val = 0.0f64;
        loop {
            cancel.check()?;
            self.scan_row(core, search, i, min_val)?;
            let (j, lowest) = self.pick_column(core, search);
            min_val = lowest;
            self.remove_column(core, search, j, min_val, num_remaining);
            num_remaining -= 1;
            if core.is_free(j) {
                return Ok((j, min_val));
            }
            i = core.row4col[j];
        }
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

    fn has_s(&self, j: usize) -> bool {
        self.s_at[j] == self.stamp
    }

    /// Inserts or removes column `j` (at `pos`) in its dual group.
    fn index_column(&mut self, core: &Core, j: usize, pos: u32, insert: bool) {
        let free = core.is_free(j);
        let group = self
            .groups
            .get_mut(&Key::of(core.v[j]))
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

    /// Visits row `i` (reached at `min_val`): applies its stored entries and records its base.
    fn scan_row(&mut self, core: &Core, search: &mut Search, i: usize, min_val: f64) -> Result<()> {
        let step = search.visit_row(i, min_val, &core.u);
        let stored = core.cost.rowptr[i + 1] - core.cost.rowptr[i];
        alloc::grow_heap(&mut self.s_heap, stored, "the paper mode's heap")?;
        // A stored value above the column's default path cost can never be its minimum: the
        // default only falls as more rows are visited.
        let base_min = search.base_min();
        for (j, c) in core.cost.row(i) {
            if self.removed_at[j] == self.stamp {
                continue;
            }
            let r = min_val + c - core.u[i] - core.v[j];
            let old = if self.has_s(j) {
                self.s_val[j]
            } else {
                f64::INFINITY
            };
            if r < old && r <= base_min - core.v[j] {
                self.s_at[j] = self.stamp;
                self.s_val[j] = r;
                self.s_step[j] = step;
                self.s_heap
                    .push(Reverse((Key::of(r), self.position(j), j as u32)));
            }
        }
        Ok(())
    }

    /// SciPy's pick among the remaining columns: (column, its path cost).
    fn pick_column(&mut self, core: &Core, search: &Search) -> (usize, f64) {
        let base_min = search.base_min();
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
                    if core.is_free(entry.0 .2 as usize) {
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

    /// Removes column `j` from the scan list the way SciPy does: the last entry takes its slot.
    fn remove_column(
        &mut self,
        core: &Core,
        search: &mut Search,
        j: usize,
        value: f64,
        num_remaining: usize,
    ) {
        let stored = (self.has_s(j) && self.s_val[j] == value).then(|| self.s_step[j]);
        let step = search.first_step_reaching(core.v[j], stored, value);
        search.take(j, value, step);
        let index = self.position(j);
        self.index_column(core, j, index, false);
        self.removed_at[j] = self.stamp;
        let last = (num_remaining - 1) as u32;
        if index != last {
            let k = self.column_at(last);
            self.index_column(core, k, last, false);
            // index_column re-adds k's stored value under its new position below
            if self.pos_at[k] != self.stamp {
                self.moved.push(k);
            }
            self.pos_at[k] = self.stamp;
            self.pos_now[k] = index;
            self.slot_at[index as usize] = self.stamp;
            self.slot_col[index as usize] = k;
            self.index_column(core, k, index, true);
        }
    }

    /// Puts every column back at its initial position for the next augmentation: moved ones
    /// leave their slots, visited ones rejoin the group of their new dual, free or not.
    fn restore_columns(&mut self, core: &Core, search: &Search, old_duals: &[f64]) {
        let old_stamp = self.stamp;
        self.stamp += 1; // from here on, positions and stored values read as initial
        self.s_heap.clear();
        for k in 0..self.moved.len() {
            let j = self.moved[k];
            if self.removed_at[j] != old_stamp {
                let group = self.groups.get_mut(&Key::of(core.v[j])).expect("group");
                group.all.remove(&self.pos_now[j]);
                group.free.remove(&self.pos_now[j]);
                let pos = self.position(j);
                self.index_column(core, j, pos, true);
            }
        }
        for (k, &old) in old_duals.iter().enumerate() {
            let j = search.visited_cols[k];
            let old = Key::of(old);
            if self.groups.get(&old).is_some_and(|g| g.all.is_empty()) {
                self.groups.remove(&old);
            }
            self.groups.entry(Key::of(core.v[j])).or_default();
            let pos = self.position(j);
            self.index_column(core, j, pos, true);
        }
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

    /// Adds one position, without branches (values are never NaN; which of two equal zeros
    /// is kept does not matter: they compare, add and subtract alike up to the sign of zero).
    fn add(&mut self, stored: f64, dual: f64, free: bool) {
        let lower = |a: f64, b: f64| if b < a { b } else { a };
        let higher = |a: f64, b: f64| if b > a { b } else { a };
        self.stored_all = lower(self.stored_all, stored);
        self.dual_all = higher(self.dual_all, dual);
        self.stored_free = lower(self.stored_free, if free { stored } else { f64::INFINITY });
        self.dual_free = higher(self.dual_free, if free { dual } else { f64::NEG_INFINITY });
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

/// SciPy's column list, every per-column field kept by list position so that SciPy's
/// swap-removal is a swap of slots. When `fresh` (between blocked augmentations), the list is in
/// SciPy's initial order for the current duals: column j at position `nc - 1 - j`, every `spc_p`
/// infinite and every block summarised over the whole list; a blocked augmentation records in
/// `touched` every position it changes and restores just those. Invariants during an
/// augmentation, for each remaining list position `p < num_remaining`:
/// - `col_p[p]` is the column there and `pos_of[col_p[p]] == p` (a removed column's `pos_of` is
///   [`UNMATCHED`]); `v_p[p]` its dual and `free_p[p]` whether it is free;
/// - `spc_p[p]` the lowest value its stored entries gave so far (blocked augmentations; the
///   default part `base_min - v_p[p]` is implied) or its full path cost (scan augmentations),
///   and `path_p[p]` the step that gave it;
/// - `blocks[p / BLOCK]` summarises the block's remaining positions (blocked augmentations).
struct List {
    nc: usize,
    col_p: Vec<usize>,
    v_p: Vec<f64>,
    spc_p: Vec<f64>,
    path_p: Vec<usize>,
    free_p: Vec<bool>,
    pos_of: Vec<usize>,
    blocks: Vec<BlockSummary>,
    fresh: bool,
    touched: Vec<usize>,
    block_touched: Vec<bool>,
}

impl List {
    fn new(nc: usize) -> Self {
        List {
            nc,
            col_p: vec![0; nc],
            v_p: vec![0.0; nc],
            spc_p: vec![f64::INFINITY; nc],
            path_p: vec![0; nc],
            free_p: vec![false; nc],
            pos_of: vec![UNMATCHED; nc],
            blocks: vec![BlockSummary::EMPTY; nc.div_ceil(BLOCK)],
            fresh: false,
            touched: Vec::new(),
            block_touched: vec![false; nc.div_ceil(BLOCK)],
        }
    }

    /// Puts position `p` back in its initial state: column `nc - 1 - p`, no path cost yet.
    fn reset_position(&mut self, core: &Core, p: usize) {
        let j = self.nc - 1 - p;
        self.col_p[p] = j;
        self.v_p[p] = core.v[j];
        self.spc_p[p] = f64::INFINITY;
        self.free_p[p] = core.is_free(j);
        self.pos_of[j] = p;
    }

    /// Sets up the whole list in its initial order, blocks summarised.
    fn reset(&mut self, core: &Core) {
        for p in 0..self.nc {
            self.reset_position(core, p);
        }
        for b in 0..self.blocks.len() {
            self.summarise_block(b, self.nc);
        }
        self.touched.clear();
        self.fresh = true;
    }

    /// After an augmentation (duals updated, path flipped): resets the positions it touched
    /// and summarises their blocks again, so the list is fresh for the next one.
    fn restore(&mut self, core: &Core) {
        for k in 0..self.touched.len() {
            let p = self.touched[k];
            self.reset_position(core, p);
            self.block_touched[p / BLOCK] = true;
        }
        self.touched.clear();
        for b in 0..self.blocks.len() {
            if self.block_touched[b] {
                self.block_touched[b] = false;
                self.summarise_block(b, self.nc);
            }
        }
        self.fresh = true;
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

    /// Takes the column at list position `index` out of the list.
    fn remove(&mut self, index: usize, num_remaining: usize) {
        self.pos_of[self.col_p[index]] = UNMATCHED;
        let last = num_remaining - 1;
        if index != last {
            self.move_slot(last, index);
        }
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

    /// One augmentation over the list with lazy path costs: a position's cost is
    /// `min(stored[p], base_min - v[p])` (see the module's notes), and blocks of [`BLOCK`]
    /// positions keep the lowest stored value and highest dual of their entries, all and free.
    /// A block's lowest cost is then `min(lowest stored, base_min - highest dual)`, exactly, so
    /// a step reads the blocks and rescans only the block it picks from. Leaves the duals
    /// updated and the path flipped.
    fn block_augmentation(
        &mut self,
        core: &mut Core,
        search: &mut Search,
        cur_row: usize,
        cancel: &Cancel,
    ) -> Result<()> {
        search.begin();
        if !self.fresh {
            self.reset(core);
        }
        self.fresh = false;
        let mut num_remaining = self.nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            cancel.check()?;
            let step = search.visit_row(i, min_val, &core.u);
            let base_min = search.base_min();
            let ui = core.u[i];
            for (j, c) in core.cost.row(i) {
                let p = self.pos_of[j];
                if p == UNMATCHED {
                    continue;
                }
                let r = min_val + c - ui - self.v_p[p];
                // A stored value above the default can never be the minimum: the default only
                // falls as more rows are visited.
                if r < self.spc_p[p] && r <= base_min - self.v_p[p] {
                    self.spc_p[p] = r;
                    self.path_p[p] = step;
                    self.blocks[p / BLOCK].lower_stored(r, self.free_p[p]);
                    self.touched.push(p);
                }
            }
            let (index, value) = self.pick_blocked(base_min, num_remaining.div_ceil(BLOCK));
            min_val = value;
            let j = self.col_p[index];
            let stored = (self.spc_p[index] == value).then_some(self.path_p[index]);
            let step = search.first_step_reaching(self.v_p[index], stored, value);
            search.take(j, value, step);
            self.remove(index, num_remaining);
            num_remaining -= 1;
            self.touched.push(index);
            self.touched.push(num_remaining);
            self.summarise_block(index / BLOCK, num_remaining);
            self.summarise_block(num_remaining / BLOCK, num_remaining);
            if core.is_free(j) {
                break j;
            }
            i = core.row4col[j];
        };
        search.finish(core, cur_row, sink, min_val);
        self.restore(core);
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::scipy_order::reference;
    use crate::testing::{brute_force_optimum, tie_heavy};
    use proptest::prelude::*;

    const METHODS: [Method; 3] = [Method::Grouped, Method::Blocked, Method::Adaptive];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn every_strategy_makes_the_plain_loops_choices((r, c, m) in tie_heavy(8)) {
            // Wide only: `run`'s precondition.
            let (nr, nc) = (r.min(c), r.max(c));
            let m: Vec<f64> = if r <= c { m } else { (0..nr * nc).map(|k| m[(k % nc) * c + k / nc]).collect() };
            let cost = SparseCost::from_dense(nr, nc, &m);
            let expected = reference::dense_wide(nr, nc, &m);
            let optimum = brute_force_optimum(nr, nc, &m);
            let scan = scan::run(&cost, &Cancel::new()).unwrap();
            prop_assert_eq!(&scan.0, &expected);
            for method in METHODS {
                let (col4row, u, v) = run(&cost, method, &Cancel::new()).unwrap();
                prop_assert_eq!(&col4row, &expected, "{:?}", method);
                let total: f64 = col4row.iter().enumerate().map(|(i, &j)| m[i * nc + j]).sum();
                prop_assert!((total - optimum).abs() < 1e-9, "{:?}", method);
                // SciPy's final duals: feasible everywhere, tight on the matched pairs.
                for i in 0..nr {
                    for j in 0..nc {
                        prop_assert!(u[i] + v[j] <= m[i * nc + j] + 1e-9, "{:?} ({i}, {j})", method);
                    }
                    let j = col4row[i];
                    prop_assert!((u[i] + v[j] - m[i * nc + j]).abs() < 1e-9, "{:?} row {i}", method);
                }
            }
        }
    }
}
