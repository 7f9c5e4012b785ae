//! The start of the sparse solver on unrelated networks: Bertsekas' auction with
//! epsilon-scaling, on exact integer costs, down to a small epsilon; [`super::sparse`] then turns
//! its prices into exact duals and repairs what is left with its exact phases.
//!
//! NNSTD's costs are fractions `(union - shared) / union` with small unions, so a layer has few
//! distinct cost values, all with small denominators. Multiplied by the least common multiple
//! `L` of those denominators (and by `N + 1`, `N` rows, so that epsilon 1 would prove
//! optimality, Bertsekas 1988) they are integers, and the auction's prices are exact 128-bit
//! integers: no rounding decides a bid. A layer whose costs are not such fractions (or whose `L`
//! is too large) is left to the Hungarian start of [`super::sparse`].
//!
//! The assignment is solved on the doubled square graph of [`super::sparse`] (rows A + B',
//! columns B + A'), where every neuron may stay unpaired. Each scaling phase keeps the prices
//! and the pairs that still satisfy the smaller epsilon, then free rows bid for their cheapest
//! column, raising its price to their second cheapest (by at least epsilon), and push out its
//! holder. Where the Hungarian searches explore much of the graph per augmenting path
//! (unrelated networks: almost every cost ties at 14/15), a bid reads one row.
//!
//! Deterministic: free rows bid first-in first-out, starting in index order.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::UNMATCHED;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::similarity::SparseCost;

/// Denominators are looked for up to this (NNSTD's are unions of input sets; a larger one makes
/// `L` too large anyway).
const MAX_DENOMINATOR: u64 = 1 << 10;

/// Prices stay below `2^126`: the unit is at most this over the number of rows (a price rises by
/// at most about one cost range per row, Bertsekas 1988).
const MAX_UNIT_TIMES_ROWS: i128 = 1 << 110;

/// Epsilon shrinks by this factor per scaling phase.
const SCALING: i128 = 4;

/// The first phase's epsilon is the cost of an unpaired neuron over this.
const FIRST_EPSILON_DIVISOR: i128 = 4;

/// Free rows bid this many times between two checks for cancellation.
const BIDS_PER_CANCEL_CHECK: usize = 1 << 14;

/// A near-optimal state of the doubled graph of [`super::sparse`] to start its exact phases
/// from: the matching and every column's price in cost units (the column dual is minus it).
pub(crate) struct Start {
    pub col4row: Vec<usize>,
    pub row4col: Vec<usize>,
    pub price: Vec<f64>,
}

/// Runs the scaling phases on `cost`'s doubled graph (`by_col` its transpose, `pairs` the empty
/// neurons paired up front) down to an epsilon of `stop` cost units, or returns `None` when its
/// costs are not fractions with a common denominator small enough for exact integer prices.
pub(crate) fn start(
    cost: &SparseCost,
    by_col: &SparseCost,
    pairs: &[(usize, usize)],
    stop: f64,
    cancel: &Cancel,
) -> Result<Option<Start>> {
    let Some(integer) = IntegerCosts::new(cost) else {
        return Ok(None);
    };
    let mut auction = Auction::new(cost, by_col, &integer);
    for &(i, j) in pairs {
        auction.fix(i, j);
    }
    let last = ((integer.unit as f64 * stop) as i128).max(1);
    let mut epsilon = (integer.unit / FIRST_EPSILON_DIVISOR).max(1);
    loop {
        auction.release_unbalanced(epsilon);
        auction.bid_until_assigned(epsilon, cancel)?;
        if epsilon <= last {
            break;
        }
        epsilon = (epsilon / SCALING).max(last);
    }
    let unit = integer.unit as f64;
    Ok(Some(Start {
        price: auction.price.iter().map(|&p| p as f64 / unit).collect(),
        col4row: auction.col4row,
        row4col: auction.row4col,
    }))
}

/// Every stored cost as an integer number of `1 / unit`, through a small table of the distinct
/// values: `unit = L * (rows + 1)` with `L` the common denominator.
struct IntegerCosts {
    /// The cost of an unpaired neuron (1).
    unit: i128,
    /// Integer value of each distinct cost.
    table: Vec<i128>,
    /// Index into `table` of each stored entry, in `cost.vals` order.
    class: Vec<u32>,
}

impl IntegerCosts {
    fn new(cost: &SparseCost) -> Option<Self> {
        let mut index: HashMap<u64, u32, BuildHasherDefault<BitsHasher>> = HashMap::default();
        let mut values: Vec<f64> = Vec::new();
        let mut class = Vec::with_capacity(cost.vals.len());
        for &c in &cost.vals {
            let next = values.len() as u32;
            let k = *index.entry(c.to_bits()).or_insert(next);
            if k == next {
                values.push(c);
            }
            class.push(k);
        }
        let rows = (cost.n_rows + cost.n_cols) as i128;
        let bound = MAX_UNIT_TIMES_ROWS / (rows + 1) / (rows + 1);
        let mut common: i128 = 1;
        let mut fractions = Vec::with_capacity(values.len());
        for &c in &values {
            let (p, q) = fraction_of(c)?;
            common = lcm(common, q as i128);
            if common > bound {
                return None;
            }
            fractions.push((p as i128, q as i128));
        }
        let unit = common * (rows + 1);
        let table = fractions
            .iter()
            .map(|&(p, q)| p * (common / q) * (rows + 1))
            .collect();
        Some(IntegerCosts { unit, table, class })
    }
}

/// The fraction `p / q` (lowest terms, `q <= MAX_DENOMINATOR`) whose float64 quotient is exactly
/// `c`, if any. Two such fractions differ by at least `1 / MAX_DENOMINATOR^2`, far more than a
/// float64 rounding, so the one found is the one `c` was computed from.
fn fraction_of(c: f64) -> Option<(u64, u64)> {
    (1..=MAX_DENOMINATOR).find_map(|q| {
        let p = (c * q as f64).round();
        (p >= 0.0 && p / q as f64 == c).then_some((p as u64, q))
    })
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: i128, b: i128) -> i128 {
    a / gcd(a, b) * b
}

/// Hashes a float's bits (already well spread for the few distinct costs of a layer) with one
/// multiplication, instead of SipHash on every stored entry.
#[derive(Default)]
struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The forward auction on the doubled graph of [`super::sparse`]: rows `i < n1` are A's neurons
/// (edges: stored columns `j` at their cost, their own dummy `n2 + i` at `unit`), rows `n1 + j`
/// are copies of B's (edges: column `j` and the dummies `n2 + i` of every stored `(i, j)`, all
/// at 0). Columns are B's neurons `j < n2`, then A's dummies.
struct Auction<'a> {
    cost: &'a SparseCost,
    by_col: &'a SparseCost,
    integer: &'a IntegerCosts,
    n1: usize,
    n2: usize,
    price: Vec<i128>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    /// Rows of empty neurons paired up front; they never bid and are never outbid.
    fixed: Vec<bool>,
    free: VecDeque<usize>,
}

impl<'a> Auction<'a> {
    fn new(cost: &'a SparseCost, by_col: &'a SparseCost, integer: &'a IntegerCosts) -> Self {
        let (n1, n2) = (cost.n_rows, cost.n_cols);
        let all = n1 + n2;
        Auction {
            cost,
            by_col,
            integer,
            n1,
            n2,
            price: vec![0; all],
            col4row: vec![UNMATCHED; all],
            row4col: vec![UNMATCHED; all],
            fixed: vec![false; all],
            free: VecDeque::new(),
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
    /// the cheapest one's column (`i128::MAX` when there is no second edge).
    fn two_cheapest(&self, row: usize) -> (i128, usize, i128) {
        let price = &self.price;
        let (mut w1, mut j1, mut w2) = (i128::MAX, UNMATCHED, i128::MAX);
        let mut consider = |j: usize, w: i128| {
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
            let table = &self.integer.table;
            for (&j, &k) in self.cost.cols[span.clone()]
                .iter()
                .zip(&self.integer.class[span])
            {
                let j = j as usize;
                consider(j, table[k as usize] + price[j]);
            }
            let dummy = self.n2 + row;
            consider(dummy, self.integer.unit + price[dummy]);
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
    fn edge_cost(&self, row: usize, col: usize) -> i128 {
        if row >= self.n1 {
            return 0;
        }
        if col >= self.n2 {
            return self.integer.unit;
        }
        let span = self.cost.rowptr[row]..self.cost.rowptr[row + 1];
        let k = self.cost.cols[span.clone()]
            .binary_search(&(col as crate::topology::Idx))
            .expect("an assigned column is an edge");
        self.integer.table[self.integer.class[span.start + k] as usize]
    }

    /// Frees every row whose column is more than `epsilon` above its cheapest (the pairs that
    /// break epsilon-complementary slackness for the new epsilon) and queues all free rows in
    /// index order.
    fn release_unbalanced(&mut self, epsilon: i128) {
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
    fn bid_until_assigned(&mut self, epsilon: i128, cancel: &Cancel) -> Result<()> {
        let mut bids = 0usize;
        while let Some(row) = self.free.pop_front() {
            bids += 1;
            if bids % BIDS_PER_CANCEL_CHECK == 0 {
                cancel.check()?;
            }
            let (w1, j1, w2) = self.two_cheapest(row);
            // A lone edge leads to a column no other row has (an empty neuron's dummy or copy).
            let raise = if w2 == i128::MAX {
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

    #[test]
    fn fractions_are_recovered_from_their_quotients() {
        assert_eq!(fraction_of(14.0 / 15.0), Some((14, 15)));
        assert_eq!(fraction_of((40 - 6) as f64 / 40.0), Some((17, 20)));
        assert_eq!(fraction_of(0.0), Some((0, 1)));
        assert_eq!(fraction_of(1.0), Some((1, 1)));
        assert_eq!(fraction_of(0.123456789), None);
    }
}
