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
