//! SciPy's full scan over the column list on the structured state, one sequential pass per
//! step: the reference strategy the others are tested against (tests only).

use super::{Core, List, Search};
use crate::assign::UNMATCHED;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

/// [`super::run`] with every augmentation by SciPy's full scan: the column of every row and the
/// final duals of a wide matrix whose stored entries are <= 1.
pub(in crate::assign::scipy_order) fn run(
    cost: &SparseCost,
    cancel: &Cancel,
) -> Result<(Vec<usize>, Vec<f64>, Vec<f64>)> {
    let mut core = Core::new(cost);
    let mut search = Search::new(cost.n_cols);
    let mut list = List::new(cost.n_cols);
    for cur_row in 0..cost.n_rows {
        cancel.check()?;
        list.scan_augmentation(&mut core, &mut search, cur_row, cancel)?;
    }
    Ok((core.col4row, core.u, core.v))
}

impl List {
    /// One augmentation with SciPy's full scan over the list, one sequential pass per step:
    /// the reference the other strategies are tested against. Leaves the duals updated and the
    /// path flipped.
    ///
    /// A row's stored entries are applied before its default pass: a stored c <= 1 gives a value
    /// no higher than the default 1, so the default pass changes neither their path cost nor the
    /// step recorded with it.
    fn scan_augmentation(
        &mut self,
        core: &mut Core,
        search: &mut Search,
        cur_row: usize,
        cancel: &Cancel,
    ) -> Result<()> {
        search.begin();
        self.reset(core);
        self.fresh = false; // the scan writes every position
        let mut num_remaining = self.nc;
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let sink = loop {
            cancel.check()?;
            let step = search.visit_row(i, min_val, &core.u);
            let ui = core.u[i];
            for (j, c) in core.cost.row(i) {
                let p = self.pos_of[j];
                if p != UNMATCHED {
                    let r = min_val + c - ui - self.v_p[p];
                    if r < self.spc_p[p] {
                        self.spc_p[p] = r;
                        self.path_p[p] = step;
                    }
                }
            }
            let base = min_val + 1.0 - ui;
            let (lowest, index) = self.scan_step(base, step, num_remaining);
            min_val = lowest;
            let j = self.col_p[index];
            search.take(j, self.spc_p[index], self.path_p[index]);
            self.remove(index, num_remaining);
            num_remaining -= 1;
            if core.is_free(j) {
                break j;
            }
            i = core.row4col[j];
        };
        search.finish(core, cur_row, sink, min_val);
        Ok(())
    }

    /// One default pass of SciPy's scan over the first `n` list positions: lowers each path cost
    /// to `base - v`, recording `step`, and picks the lowest with SciPy's tie rule (the latest
    /// free position among equals, else the earliest). Returns (lowest cost, its position).
    fn scan_step(&mut self, base: f64, step: usize, n: usize) -> (f64, usize) {
        let (v, free) = (&self.v_p[..n], &self.free_p[..n]);
        let (spc, path) = (&mut self.spc_p[..n], &mut self.path_p[..n]);
        let mut lowest = f64::INFINITY;
        let mut index = 0;
        for p in 0..n {
            let r = base - v[p];
            if r < spc[p] {
                spc[p] = r;
                path[p] = step;
            }
            let s = spc[p];
            if s < lowest || (s == lowest && free[p]) {
                lowest = s;
                index = p;
            }
        }
        (lowest, index)
    }
}
