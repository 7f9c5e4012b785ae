//! The start of the sparse solver on unrelated networks: Bertsekas' auction with
//! epsilon-scaling down to a small epsilon; [`super::sparse`] then turns its prices into exact
//! duals and repairs what is left with its exact phases, so the auction's float rounding never
//! decides the result.
//!
//! The assignment is solved on the doubled square graph of [`super::sparse`] (rows A + B',
//! columns B + A'), where every neuron may stay unpaired. Each scaling phase keeps the prices
//! and the pairs that still satisfy the smaller epsilon, then free rows bid for their cheapest
//! column, raising its price to their second cheapest (by at least epsilon), and push out its
//! holder. Where the Hungarian searches explore much of the graph per augmenting path
//! (unrelated networks: almost every cost ties at 14/15), a bid reads one row.
//!
//! Deterministic: free rows bid first-in first-out, starting in index order.

use std::collections::VecDeque;

use super::UNMATCHED;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

/// Epsilon shrinks by this factor per scaling phase.
const SCALING: f64 = 4.0;

/// The first phase's epsilon (costs are in [0, 1]).
const FIRST_EPSILON: f64 = 0.25;

/// Free rows bid this many times between two checks for cancellation.
const BIDS_PER_CANCEL_CHECK: usize = 1 << 14;

/// Bytes the auction holds per neuron of A or B (one row and one column of the doubled graph
/// each), for the memory budget (`crate::policy`): [`Auction`]'s `price`, `col4row`, `row4col`
/// and `fixed`; its queue of free rows (at most one entry per row, in a buffer that may grow to
/// twice that); and the copies of `price`, `col4row` and `row4col` that [`Auction::start`] hands
/// to the exact phases while the auction is still held.
pub(crate) const BYTES_PER_NEURON: u64 = (size_of::<f64>()
    + 2 * size_of::<usize>()
    + size_of::<bool>()
    + 2 * size_of::<usize>()
    + size_of::<f64>()
    + 2 * size_of::<usize>()) as u64;

/// A near-optimal state of the doubled graph of [`super::sparse`] to start its exact phases
/// from: the matching and every column's price (the column dual is minus it).
pub(crate) struct Start {
    pub col4row: Vec<usize>,
    pub row4col: Vec<usize>,
    pub price: Vec<f64>,
}

/// Bertsekas' forward auction on the doubled graph of [`super::sparse`]: rows `i < n1` are A's neurons
/// (edges: stored columns `j` at their cost, their own dummy `n2 + i` at `unit`), rows `n1 + j`
/// are copies of B's (edges: column `j` and the dummies `n2 + i` of every stored `(i, j)`, all
/// at 0). Columns are B's neurons `j < n2`, then A's dummies.
pub(crate) struct Auction<'a> {
    cost: &'a SparseCost,
    by_col: &'a SparseCost,
    n1: usize,
    n2: usize,
    price: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    /// Rows of empty neurons paired up front; they never bid and are never outbid.
    fixed: Vec<bool>,
    free: VecDeque<usize>,
    /// The epsilon of the last scaling phase run (infinite before the first).
    epsilon: f64,
}

impl<'a> Auction<'a> {
    /// The auction on `cost`'s doubled graph (`by_col` its transpose), with the empty neurons
    /// `pairs` paired up front, before any bid.
    pub(crate) fn new(
        cost: &'a SparseCost,
        by_col: &'a SparseCost,
        pairs: &[(usize, usize)],
    ) -> Self {
        let (n1, n2) = (cost.n_rows, cost.n_cols);
        let all = n1 + n2;
        let mut auction = Auction {
            cost,
            by_col,
            n1,
            n2,
            price: vec![0.0; all],
            col4row: vec![UNMATCHED; all],
            row4col: vec![UNMATCHED; all],
            fixed: vec![false; all],
            free: VecDeque::new(),
            epsilon: f64::INFINITY,
        };
        for &(i, j) in pairs {
            auction.fix(i, j);
        }
        auction
    }

    /// Runs scaling phases, epsilon divided by [`SCALING`] each time, until one has run with
    /// epsilon `last`.
    pub(crate) fn scale_down_to(&mut self, last: f64, cancel: &Cancel) -> Result<()> {
        while self.epsilon > last {
            self.epsilon = (self.epsilon / SCALING).min(FIRST_EPSILON).max(last);
            self.release_unbalanced(self.epsilon);
            self.bid_until_assigned(self.epsilon, cancel)?;
        }
        Ok(())
    }

    /// The current matching and prices.
    pub(crate) fn start(&self) -> Start {
        Start {
            col4row: self.col4row.clone(),
            row4col: self.row4col.clone(),
            price: self.price.clone(),
        }
    }

    /// Pairs empty neurons `i` of A and `j` of B for good: `i` takes `j` at cost 0 and `j`'s copy
    /// takes `i`'s dummy. Neither column has another edge, so no one bids for them.
    fn fix(&mut self, i: usize, j: usize) {
        let (copy, dummy) = (self.n1 + j, self.n2 + i);
        self.assign(i, j);
        self.assign(copy, dummy);
        self.fixed[i] = true;
        self.fixed[copy] = true;
    }

    fn assign(&mut self, row: usize, col: usize) {
        self.col4row[row] = col;
        self.row4col[col] = row;
    }

    /// The cheapest and second cheapest price-adjusted cost `c + price` over `row`'s edges, and
    /// the cheapest one's column (infinite when there is no second edge).
    fn two_cheapest(&self, row: usize) -> (f64, usize, f64) {
        let price = &self.price;
        let (mut w1, mut j1, mut w2) = (f64::INFINITY, UNMATCHED, f64::INFINITY);
        let mut consider = |j: usize, w: f64| {
            if w < w2 {
                if w < w1 {
                    (w2, w1, j1) = (w1, w, j);
                } else {
                    w2 = w;
                }
            }
        };
        if row < self.n1 {
            let span = self.cost.rowptr[row]..self.cost.rowptr[row + 1];
            for (&j, &c) in self.cost.cols[span.clone()]
                .iter()
                .zip(&self.cost.vals[span])
            {
                let j = j as usize;
                consider(j, c + price[j]);
            }
            let dummy = self.n2 + row;
            consider(dummy, 1.0 + price[dummy]);
        } else {
            let j = row - self.n1;
            consider(j, price[j]);
            let span = self.by_col.rowptr[j]..self.by_col.rowptr[j + 1];
            for &i in &self.by_col.cols[span] {
                let dummy = self.n2 + i as usize;
                consider(dummy, price[dummy]);
            }
        }
        (w1, j1, w2)
    }

    /// The cost of `row`'s edge to `col`, an edge of the doubled graph.
    fn edge_cost(&self, row: usize, col: usize) -> f64 {
        if row >= self.n1 {
            return 0.0;
        }
        if col >= self.n2 {
            return 1.0;
        }
        let span = self.cost.rowptr[row]..self.cost.rowptr[row + 1];
        let k = self.cost.cols[span.clone()]
            .binary_search(&(col as crate::topology::Idx))
            .expect("an assigned column is an edge");
        self.cost.vals[span.start + k]
    }

    /// Frees every row whose column is more than `epsilon` above its cheapest (the pairs that
    /// break epsilon-complementary slackness for the new epsilon) and queues all free rows in
    /// index order.
    fn release_unbalanced(&mut self, epsilon: f64) {
        self.free.clear();
        for row in 0..self.col4row.len() {
            if self.fixed[row] {
                continue;
            }
            let col = self.col4row[row];
            if col != UNMATCHED {
                let (w1, _, _) = self.two_cheapest(row);
                if self.edge_cost(row, col) + self.price[col] <= w1 + epsilon {
                    continue;
                }
                self.row4col[col] = UNMATCHED;
                self.col4row[row] = UNMATCHED;
            }
            self.free.push_back(row);
        }
    }

    /// Free rows bid until every row holds a column: each takes its cheapest column, whose
    /// price rises to the row's second cheapest (by at least `epsilon`, which bounds the number
    /// of bids), and the previous holder becomes free. Every holder then pays at most `epsilon`
    /// more than its cheapest, and exactly its cheapest when its two cheapest were `epsilon` or
    /// more apart (a tight edge for the exact phases).
    fn bid_until_assigned(&mut self, epsilon: f64, cancel: &Cancel) -> Result<()> {
        let mut bids = 0usize;
        while let Some(row) = self.free.pop_front() {
            bids += 1;
            if bids % BIDS_PER_CANCEL_CHECK == 0 {
                cancel.check()?;
            }
            let (w1, j1, w2) = self.two_cheapest(row);
            // A lone edge leads to a column no other row has (an empty neuron's dummy or copy).
            let raise = if w2 == f64::INFINITY {
                epsilon
            } else {
                (w2 - w1).max(epsilon)
            };
            self.price[j1] += raise;
            let previous = self.row4col[j1];
            self.assign(row, j1);
            if previous != UNMATCHED {
                self.col4row[previous] = UNMATCHED;
                self.free.push_back(previous);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tie_heavy;
    use proptest::prelude::*;

    /// The optimum of the doubled graph by brute force: every row of A takes a stored entry of
    /// a distinct column or stays unpaired at 1 (B's copies cost nothing).
    fn brute_force_doubled(cost: &SparseCost) -> f64 {
        fn go(i: usize, cost: &SparseCost, used: &mut [bool]) -> f64 {
            if i == cost.n_rows {
                return 0.0;
            }
            let mut best = 1.0 + go(i + 1, cost, used);
            for (j, c) in cost.row(i) {
                if !used[j] {
                    used[j] = true;
                    best = best.min(c + go(i + 1, cost, used));
                    used[j] = false;
                }
            }
            best
        }
        go(0, cost, &mut vec![false; cost.n_cols])
    }

    /// The auction's matching: checked to be a perfect matching of the doubled graph over its
    /// edges, and its cost (A's rows: a stored entry, or 1 for their own dummy).
    fn matched_cost(cost: &SparseCost, start: &Start) -> f64 {
        let (n1, n2) = (cost.n_rows, cost.n_cols);
        assert_eq!(start.col4row.len(), n1 + n2);
        let mut total = 0.0;
        for (row, &col) in start.col4row.iter().enumerate() {
            assert_ne!(col, UNMATCHED, "row {row} holds no column");
            assert_eq!(start.row4col[col], row);
            if row < n1 {
                total += if col >= n2 {
                    assert_eq!(col, n2 + row, "a row of A holds another row's dummy");
                    1.0
                } else {
                    let c = cost.row(row).find(|&(j, _)| j == col);
                    c.expect("a row of A holds a stored entry").1
                };
            } else if col >= n2 {
                // B's copy of j holds A's dummy i only through a stored (i, j).
                let (i, j) = (col - n2, row - n1);
                assert!(cost.row(i).any(|(k, _)| k == j));
            } else {
                assert_eq!(col, row - n1);
            }
        }
        total
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_small_epsilon_reaches_the_optimum((r, c, m) in tie_heavy(7)) {
            let cost = SparseCost::from_dense(r, c, &m);
            let by_col = cost.transpose().unwrap();
            let optimum = brute_force_doubled(&cost);
            let mut auction = Auction::new(&cost, &by_col, &[]);
            // Costs are multiples of 1/12, so distinct matchings' costs are 1/12 apart or more,
            // and a matching within (rows * epsilon) of the optimum is optimal.
            let rows = (r + c) as f64;
            auction.scale_down_to(1.0 / (24.0 * rows), &Cancel::new()).unwrap();
            let got = matched_cost(&cost, &auction.start());
            prop_assert!((got - optimum).abs() < 1e-9, "{got} vs {optimum}");
        }

        #[test]
        fn a_coarse_epsilon_stays_within_its_bound((r, c, m) in tie_heavy(7)) {
            let cost = SparseCost::from_dense(r, c, &m);
            let by_col = cost.transpose().unwrap();
            let optimum = brute_force_doubled(&cost);
            let mut auction = Auction::new(&cost, &by_col, &[]);
            auction.scale_down_to(FIRST_EPSILON, &Cancel::new()).unwrap();
            let got = matched_cost(&cost, &auction.start());
            let bound = (r + c) as f64 * FIRST_EPSILON;
            prop_assert!(got >= optimum - 1e-9 && got <= optimum + bound + 1e-9, "{got} vs {optimum}");
        }
    }

    #[test]
    fn pairs_fixed_up_front_stay() {
        // Row 1 and column 2 are empty neurons, paired before any bid.
        let cost = SparseCost::from_dense(3, 3, &[0.5, 0.25, 1.0, 1.0, 1.0, 1.0, 0.0, 0.75, 1.0]);
        let by_col = cost.transpose().unwrap();
        let mut auction = Auction::new(&cost, &by_col, &[(1, 2)]);
        auction.scale_down_to(1e-3, &Cancel::new()).unwrap();
        let start = auction.start();
        assert_eq!(start.col4row[1], 2);
        assert_eq!(start.col4row[3 + 2], 3 + 1);
        // The rest: rows 0 and 2 take 0.25 and 0.0.
        assert_eq!(start.col4row[0], 1);
        assert_eq!(start.col4row[2], 0);
    }
}
