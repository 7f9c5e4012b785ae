//! Linear assignment solvers.
//!
//! - [`exact`]: the shortest augmenting path method as SciPy runs it (NNSTD.md section 6), so it
//!   picks the same optimal assignment as `scipy.optimize.linear_sum_assignment`.
//! - [`sparse`]: an optimal assignment from the stored entries alone, in memory proportional to
//!   them, for layers too wide for a dense matrix.

pub mod exact;
pub mod lexicographic;
pub mod sparse;

/// Marks a row or column that has no partner.
pub const UNMATCHED: usize = usize::MAX;

/// A solved assignment in the orientation of the input matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `col_of_row[i]` is the column matched to row `i`, or [`UNMATCHED`] (more rows than columns).
    pub col_of_row: Vec<usize>,
    /// The sum of the matched costs, added in row order.
    pub cost: f64,
}

/// The inverse of a matching: `inverse[matching[j]] = j`, over `n` slots; slots no one maps to
/// stay [`UNMATCHED`]. Solving a transposed matrix and mapping back, or reading a `b -> a`
/// matching as `a -> b`, are both this.
pub fn invert_matching(matching: &[usize], n: usize) -> Vec<usize> {
    let mut inverse = vec![UNMATCHED; n];
    for (j, &i) in matching.iter().enumerate() {
        if i != UNMATCHED {
            inverse[i] = j;
        }
    }
    inverse
}

impl Assignment {
    /// Sums the matched costs in row order.
    pub fn from_matching(col_of_row: Vec<usize>, cost_of: impl Fn(usize, usize) -> f64) -> Self {
        let cost = col_of_row
            .iter()
            .enumerate()
            .filter(|&(_, &j)| j != UNMATCHED)
            .map(|(i, &j)| cost_of(i, j))
            .sum();
        Assignment { col_of_row, cost }
    }
}

/// A float with the total order of `f64::total_cmp`, for ordered sets and heaps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key(pub(crate) f64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
