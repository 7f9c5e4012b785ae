//! Jonker and Volgenant's augmenting row reduction, shared by the dense solver (on its candidate
//! lists) and the sparse solvers (on the similarity graph's edges) through [`Bidder`].

use super::UNMATCHED;

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
