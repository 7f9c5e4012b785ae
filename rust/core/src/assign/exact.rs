//! The exact solver: SciPy's choices, reproduced.
//!
//! SciPy's `linear_sum_assignment` runs Crouse's shortest augmenting path method; among the many
//! optimal assignments of a tie-heavy NNSTD cost matrix it picks one through the order in which it
//! scans columns and breaks ties. Later layers are aligned through that pick, so an "exact" NNSTD
//! must make the same pick. NNSTD.md section 6 states the rules; two implementations follow them:
//!
//! - [`solve_dense`]: a plain port over a dense matrix; the reference.
//! - [`solve`]: the same arithmetic on a [`SparseCost`] whose absent entries are 1. Columns that
//!   no visited row stores and whose dual is shared with others are not scanned one by one: they
//!   are kept in groups by dual value, and the minimum and SciPy's tie-break among them are read
//!   off ordered sets. Every float is computed by the same expression, in the same order, as in the
//!   dense scan, so the result is identical, element for element.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignment, UNMATCHED};
use crate::similarity::SparseCost;

/// Solves a dense row-major `n_rows x n_cols` matrix exactly as SciPy does.
pub fn solve_dense(n_rows: usize, n_cols: usize, cost: &[f64]) -> Assignment {
    assert_eq!(
        cost.len(),
        n_rows * n_cols,
        "dense cost has the wrong length"
    );
    if n_rows == 0 || n_cols == 0 {
        return Assignment {
            col_of_row: vec![UNMATCHED; n_rows],
            cost: 0.0,
        };
    }
    let transpose = n_rows > n_cols;
    let (nr, nc, c) = if transpose {
        let mut t = vec![0.0; cost.len()];
        for i in 0..n_rows {
            for j in 0..n_cols {
                t[j * n_rows + i] = cost[i * n_cols + j];
            }
        }
        (n_cols, n_rows, t)
    } else {
        (n_rows, n_cols, cost.to_vec())
    };
    let col4row = dense_wide(nr, nc, &c);
    let col_of_row = untranspose(col4row, n_rows, transpose);
    Assignment::from_matching(col_of_row, |i, j| cost[i * n_cols + j])
}

/// Maps a solution of the (possibly transposed) wide problem back to the input's rows.
fn untranspose(col4row: Vec<usize>, n_rows: usize, transposed: bool) -> Vec<usize> {
    if !transposed {
        return col4row;
    }
    let mut col_of_row = vec![UNMATCHED; n_rows];
    for (j, &i) in col4row.iter().enumerate() {
        col_of_row[i] = j;
    }
    col_of_row
}

/// The dense augmenting-path loop for `nr <= nc`.
fn dense_wide(nr: usize, nc: usize, cost: &[f64]) -> Vec<usize> {
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
pub fn solve(cost: &SparseCost) -> Assignment {
    let (n_rows, n_cols) = (cost.n_rows, cost.n_cols);
    if n_rows == 0 || n_cols == 0 {
        return Assignment {
            col_of_row: vec![UNMATCHED; n_rows],
            cost: 0.0,
        };
    }
    let transpose = n_rows > n_cols;
    let col4row = if transpose {
        SparseSolver::new(&cost.transpose()).run()
    } else {
        SparseSolver::new(cost).run()
    };
    let col_of_row = untranspose(col4row, n_rows, transpose);
    Assignment::from_matching(col_of_row, |i, j| cost.get(i, j))
}

/// A float key with a total order, for grouping columns by dual value.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Dual(f64);
impl Eq for Dual {}
impl Ord for Dual {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl Dual {
    /// `+0.0` and `-0.0` subtract identically, so they share a group.
    fn key(v: f64) -> Dual {
        Dual(v + 0.0)
    }
}

/// Columns that share a dual value: all of them, and those no row holds yet.
#[derive(Debug, Default)]
struct Group {
    all: BTreeSet<u32>,
    free: BTreeSet<u32>,
}

/// The best column of a set of candidates under SciPy's tie rule: the lowest path cost; among
/// equals, the free column latest in scan order, else the earliest column in scan order.
#[derive(Debug, Clone, Copy)]
struct Pick {
    value: f64,
    first: Option<(usize, usize)>, // (position, column): earliest position at `value`
    last_free: Option<(usize, usize)>, // (position, column): latest free position at `value`
}

impl Pick {
    fn new() -> Self {
        Pick {
            value: f64::INFINITY,
            first: None,
            last_free: None,
        }
    }

    fn offer(&mut self, value: f64, pos: usize, col: usize, free: bool) {
        if value < self.value {
            *self = Pick {
                value,
                first: None,
                last_free: None,
            };
        }
        if value == self.value {
            if self.first.is_none_or(|(p, _)| pos < p) {
                self.first = Some((pos, col));
            }
            if free && self.last_free.is_none_or(|(p, _)| pos > p) {
                self.last_free = Some((pos, col));
            }
        }
    }

    fn winner(&self) -> Option<usize> {
        self.last_free.or(self.first).map(|(_, col)| col)
    }
}

/// State of the structured solver on a wide matrix (`n_rows <= n_cols`).
struct SparseSolver<'a> {
    cost: &'a SparseCost,
    nr: usize,
    nc: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    groups: BTreeMap<Dual, Group>,
    // Per augmentation, reset by bumping `stamp`: a column whose `explicit_at` equals the stamp
    // is scanned one by one; a position whose `moved_at` equals it holds `col_at[pos]` instead of
    // column `nc - 1 - pos` (the initial descending list).
    stamp: u32,
    explicit_at: Vec<u32>,
    spc: Vec<f64>,
    path: Vec<usize>,
    pos: Vec<usize>,
    removed: Vec<bool>,
    touched_at: Vec<u64>,
    tick: u64,
    all_explicit: bool,
    moved_at: Vec<u32>,
    col_at: Vec<usize>,
    explicit: Vec<usize>,
    visited_rows: Vec<usize>,
    visited_cols: Vec<usize>,
    bases: Vec<(f64, usize)>,
    base_min: f64,
}

impl<'a> SparseSolver<'a> {
    fn new(cost: &'a SparseCost) -> Self {
        let (nr, nc) = (cost.n_rows, cost.n_cols);
        debug_assert!(nr <= nc);
        let everyone: BTreeSet<u32> = (0..nc as u32).collect();
        let mut groups = BTreeMap::new();
        groups.insert(
            Dual::key(0.0),
            Group {
                all: everyone.clone(),
                free: everyone,
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
            explicit_at: vec![0; nc],
            spc: vec![f64::INFINITY; nc],
            path: vec![UNMATCHED; nc],
            pos: vec![0; nc],
            removed: vec![false; nc],
            touched_at: vec![u64::MAX; nc],
            tick: 0,
            all_explicit: false,
            moved_at: vec![0; nc],
            col_at: vec![0; nc],
            explicit: Vec::new(),
            visited_rows: Vec::new(),
            visited_cols: Vec::new(),
            bases: Vec::new(),
            base_min: f64::INFINITY,
        }
    }

    fn run(mut self) -> Vec<usize> {
        for cur_row in 0..self.nr {
            let (sink, min_val) = self.augmenting_path(cur_row);
            self.update_duals(cur_row, min_val);
            let sink_dual = Dual::key(self.v[sink]);
            self.groups
                .get_mut(&sink_dual)
                .expect("sink column has a group")
                .free
                .remove(&(sink as u32));
            flip_path(
                sink,
                cur_row,
                &self.path,
                &mut self.row4col,
                &mut self.col4row,
            );
        }
        self.col4row
    }

    fn is_explicit(&self, j: usize) -> bool {
        self.explicit_at[j] == self.stamp
    }

    /// Scans column `j` one by one from now on. Its path cost so far is what the default cost 1
    /// gave in every visited row: `base_s - v[j]`, lowest first reached at the earliest such row.
    fn make_explicit(&mut self, j: usize, pos: usize) {
        self.explicit_at[j] = self.stamp;
        self.removed[j] = false;
        self.pos[j] = pos;
        self.spc[j] = f64::INFINITY;
        self.path[j] = UNMATCHED;
        if !self.bases.is_empty() {
            let best = self.base_min - self.v[j];
            let &(_, row) = self
                .bases
                .iter()
                .find(|&&(base, _)| base - self.v[j] == best)
                .expect("the lowest base reaches the lowest path cost");
            self.spc[j] = best;
            self.path[j] = row;
        }
        self.explicit.push(j);
    }

    fn column_at(&self, pos: usize) -> usize {
        if self.moved_at[pos] == self.stamp {
            self.col_at[pos]
        } else {
            self.nc - 1 - pos
        }
    }

    /// Lowers the path costs through row `i` reached at cost `min_val`.
    fn scan_row(&mut self, i: usize, min_val: f64) {
        self.tick += 1;
        let step = self.tick;
        let cost = self.cost;
        for (j, c) in cost.row(i) {
            if self.is_explicit(j) && self.removed[j] {
                continue;
            }
            if !self.is_explicit(j) {
                self.make_explicit(j, self.nc - 1 - j);
            }
            let r = min_val + c - self.u[i] - self.v[j];
            if r < self.spc[j] {
                self.spc[j] = r;
                self.path[j] = i;
            }
            self.touched_at[j] = step;
        }
        let base = min_val + 1.0 - self.u[i];
        for &j in &self.explicit {
            if self.touched_at[j] != step {
                let r = base - self.v[j];
                if r < self.spc[j] {
                    self.spc[j] = r;
                    self.path[j] = i;
                }
            }
        }
        self.bases.push((base, i));
        self.base_min = self.base_min.min(base);
    }

    /// SciPy's choice among the remaining columns.
    fn pick_column(&self) -> (usize, f64) {
        let mut pick = Pick::new();
        for &j in &self.explicit {
            pick.offer(self.spc[j], self.pos[j], j, self.row4col[j] == UNMATCHED);
        }
        if self.all_explicit {
            return (pick.winner().expect("a remaining column"), pick.value);
        }
        // Implicit columns sit at their initial positions nc-1-j: the latest position is the
        // smallest column index, the earliest the largest.
        for (dual, group) in self.groups.iter().rev() {
            let value = self.base_min - dual.0;
            if value > pick.value {
                break;
            }
            let implicit = |set: &BTreeSet<u32>, smallest: bool| -> Option<usize> {
                let not_explicit = |&&j: &&u32| !self.is_explicit(j as usize);
                if smallest {
                    set.iter().find(not_explicit).map(|&j| j as usize)
                } else {
                    set.iter().rev().find(not_explicit).map(|&j| j as usize)
                }
            };
            if let Some(j) = implicit(&group.all, false) {
                pick.offer(value, self.nc - 1 - j, j, self.row4col[j] == UNMATCHED);
            }
            if let Some(j) = implicit(&group.free, true) {
                pick.offer(value, self.nc - 1 - j, j, true);
            }
        }
        let j = pick
            .winner()
            .expect("a wide matrix always has a remaining column");
        (j, pick.value)
    }

    /// Removes column `j` from the scan list the way SciPy does: the last entry takes its slot.
    fn remove_column(&mut self, j: usize, num_remaining: usize) {
        self.removed[j] = true;
        self.visited_cols.push(j);
        if let Some(k) = self.explicit.iter().position(|&e| e == j) {
            self.explicit.swap_remove(k);
        }
        let index = self.pos[j];
        let last = num_remaining - 1;
        if index != last {
            let moved = self.column_at(last);
            if !self.is_explicit(moved) {
                self.make_explicit(moved, index);
            }
            self.pos[moved] = index;
            self.moved_at[index] = self.stamp;
            self.col_at[index] = moved;
        }
    }

    /// Once most remaining columns are scanned one by one, grouping no longer pays: scan all.
    fn make_all_explicit(&mut self) {
        let implicit: Vec<usize> = self
            .groups
            .values()
            .flat_map(|g| g.all.iter().map(|&j| j as usize))
            .filter(|&j| !self.is_explicit(j))
            .collect();
        for j in implicit {
            self.make_explicit(j, self.nc - 1 - j);
        }
        self.all_explicit = true;
    }

    fn augmenting_path(&mut self, cur_row: usize) -> (usize, f64) {
        self.stamp += 1;
        self.explicit.clear();
        self.visited_rows.clear();
        self.visited_cols.clear();
        self.bases.clear();
        self.base_min = f64::INFINITY;
        self.all_explicit = false;
        let mut num_remaining = self.nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        loop {
            self.visited_rows.push(i);
            self.scan_row(i, min_val);
            let (j, lowest) = self.pick_column();
            if !self.is_explicit(j) {
                self.make_explicit(j, self.nc - 1 - j);
            }
            min_val = lowest;
            self.remove_column(j, num_remaining);
            num_remaining -= 1;
            if self.row4col[j] == UNMATCHED {
                return (j, min_val);
            }
            i = self.row4col[j];
            if !self.all_explicit && 3 * self.explicit.len() > num_remaining {
                self.make_all_explicit();
            }
        }
    }

    fn update_duals(&mut self, cur_row: usize, min_val: f64) {
        self.u[cur_row] += min_val;
        for &i in &self.visited_rows {
            if i != cur_row {
                self.u[i] += min_val - self.spc[self.col4row[i]];
            }
        }
        for k in 0..self.visited_cols.len() {
            let j = self.visited_cols[k];
            let old = self.v[j];
            let new = old - (min_val - self.spc[j]);
            if Dual::key(new) != Dual::key(old) {
                self.move_to_group(j, old, new);
            }
            self.v[j] = new;
        }
    }

    fn move_to_group(&mut self, j: usize, old: f64, new: f64) {
        let free = self.row4col[j] == UNMATCHED;
        let key = Dual::key(old);
        let group = self.groups.get_mut(&key).expect("column has a group");
        group.all.remove(&(j as u32));
        group.free.remove(&(j as u32));
        if group.all.is_empty() {
            self.groups.remove(&key);
        }
        let group = self.groups.entry(Dual::key(new)).or_default();
        group.all.insert(j as u32);
        if free {
            group.free.insert(j as u32);
        }
    }
}
