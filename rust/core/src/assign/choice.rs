//! The canonical choice among a layer's optimal assignments (docs/definition.md#canonical-choice).
//!
//! Which assignment is chosen depends on the set of optimal assignments and on the neurons'
//! canonical labels and structural colours, never on the algorithm that found an optimum: the
//! input is any optimal assignment with a certified optimal dual ([`Duals`]), and everything
//! below is computed from the set they describe.
//!
//! 1. *The optimal set.* With absent pairs at cost 1 the optimal assignments are the matchings
//!    of stored pairs of maximum total similarity, completed by pairing the neurons left over
//!    ([`super::duals`]). Those matchings are the perfect matchings, on the *doubled graph*, of
//!    the tight stored pairs that cover every neuron with a positive dual. The doubled graph has
//!    rows A + B' and columns B + A': a tight pair (i, j) gives edges i-j and j'-i'; a neuron
//!    with dual 0 may be left over (edge i-i', j'-j). The edges that lie in some perfect
//!    matching are those inside a strongly connected component of the graph that follows
//!    unmatched edges from rows to columns and matched edges back; the components do not depend
//!    on the dual or on the matching we started from.
//! 2. *Secondary criterion.* Within each component, the matching of least total structural
//!    dissimilarity is taken: pair (i, j) weighs `secondary(i, j)` in [0, 1] (how soon the
//!    neurons' colours diverge), leaving a neuron over weighs 1/2. Remaining ties are decided
//!    by the row-by-row solver (`super::ssp`: rows in canonical order, each taking its
//!    shortest augmenting path, nearest and then lowest column first) on the component's
//!    pairs in canonical order: the same input whatever found the optimum, so the same output.
//! 3. *Left-over neurons* (no stored partner) pair up at cost 1 each, in any way at the same
//!    cost: empty neurons with empty neurons first (cost 0), then neurons of equal final colour,
//!    then the rest, each time in canonical order.

use super::duals::{StoredPairs, Tight};
use super::{sparse, Duals, UNMATCHED};
use crate::alloc;
use crate::error::Result;
use crate::similarity::SparseCost;
use crate::topology::Idx;

/// What the canonical choice reads besides the optimal set.
pub struct Criteria<'a> {
    /// Structural dissimilarity of row `i` and column `j`, in [0, 1].
    pub secondary: &'a dyn Fn(usize, usize) -> f64,
    /// Final structural colours of the rows and of the columns.
    pub row_colours: &'a [u64],
    pub col_colours: &'a [u64],
    /// Rows and columns with no input (increasing).
    pub empty_rows: &'a [usize],
    pub empty_cols: &'a [usize],
}

/// The canonical optimal assignment of `stored` (absent pairs cost 1; the zero cost between
/// empty neurons not stored), from an optimal `col_of_row` and `duals` that certify it
/// ([`Duals::certify`]). Rows and columns are in canonical order.
pub fn choose(
    stored: &impl StoredPairs,
    col_of_row: &[usize],
    duals: &Duals,
    tight: &Tight,
    criteria: &Criteria,
) -> Result<Vec<usize>> {
    let doubled = Doubled::new(stored, col_of_row, duals, tight)?;
    let mut mate = doubled.mate.clone();
    let (component_of, shared) = doubled.components();
    for component in &shared {
        doubled.rematch(component, &component_of, criteria, &mut mate)?;
    }
    let (n1, n2) = (stored.n_rows(), stored.n_cols());
    let mut result = vec![UNMATCHED; n1];
    let mut col_taken = vec![false; n2];
    for i in 0..n1 {
        if mate[i] < n2 {
            result[i] = mate[i];
            col_taken[mate[i]] = true;
        }
    }
    let empty_row = membership(n1, criteria.empty_rows);
    let empty_col = membership(n2, criteria.empty_cols);
    let left_rows: Vec<usize> = (0..n1).filter(|&i| result[i] == UNMATCHED).collect();
    let left_cols: Vec<usize> = (0..n2).filter(|&j| !col_taken[j]).collect();
    let (rows_e, rows_rest): (Vec<usize>, Vec<usize>) =
        left_rows.iter().partition(|&&i| empty_row[i]);
    let (cols_e, cols_rest): (Vec<usize>, Vec<usize>) =
        left_cols.iter().partition(|&&j| empty_col[j]);
    let (mut rows_after, mut cols_after) = pair_by_colour(&rows_e, &cols_e, criteria, &mut result);
    rows_after.extend(rows_rest);
    cols_after.extend(cols_rest);
    rows_after.sort_unstable();
    cols_after.sort_unstable();
    pair_by_colour(&rows_after, &cols_after, criteria, &mut result);
    Ok(result)
}

/// `is[m]` for each of `members`, over `n` neurons.
pub(crate) fn membership(n: usize, members: &[usize]) -> Vec<bool> {
    let mut is = vec![false; n];
    for &m in members {
        is[m] = true;
    }
    is
}

/// Pairs `rows` with `cols` (both increasing): equal final colours first (colour by colour,
/// each in order), then what is left, in order. Returns the rows and columns left unpaired.
fn pair_by_colour(
    rows: &[usize],
    cols: &[usize],
    criteria: &Criteria,
    result: &mut [usize],
) -> (Vec<usize>, Vec<usize>) {
    // Each side by (colour, neuron): a colour's neurons are then a run, in increasing order.
    let by_colour = |members: &[usize], colours: &[u64]| {
        let mut keyed: Vec<(u64, usize)> = members.iter().map(|&m| (colours[m], m)).collect();
        keyed.sort_unstable();
        keyed
    };
    let row_keys = by_colour(rows, criteria.row_colours);
    let col_keys = by_colour(cols, criteria.col_colours);
    let (mut rest_rows, mut rest_cols) = (Vec::new(), Vec::new());
    let (mut r, mut c) = (0, 0);
    while r < row_keys.len() || c < col_keys.len() {
        // The smaller colour still to pair; its run on each side (possibly empty).
        let colour = match (row_keys.get(r), col_keys.get(c)) {
            (Some(&(x, _)), Some(&(y, _))) => x.min(y),
            (Some(&(x, _)), None) => x,
            (None, Some(&(y, _))) => y,
            (None, None) => unreachable!("the loop runs while a side has neurons"),
        };
        let run = |keys: &[(u64, usize)], from: usize| {
            from + keys[from..]
                .iter()
                .take_while(|&&(k, _)| k == colour)
                .count()
        };
        let (r_end, c_end) = (run(&row_keys, r), run(&col_keys, c));
        let n = (r_end - r).min(c_end - c);
        for k in 0..n {
            result[row_keys[r + k].1] = col_keys[c + k].1;
        }
        rest_rows.extend(row_keys[r + n..r_end].iter().map(|&(_, i)| i));
        rest_cols.extend(col_keys[c + n..c_end].iter().map(|&(_, j)| j));
        (r, c) = (r_end, c_end);
    }
    rest_rows.sort_unstable();
    rest_cols.sort_unstable();
    let n = rest_rows.len().min(rest_cols.len());
    for k in 0..n {
        result[rest_rows[k]] = rest_cols[k];
    }
    (rest_rows[n..].to_vec(), rest_cols[n..].to_vec())
}

/// The doubled graph of the tight stored pairs (module documentation) with a perfect matching.
/// Rows: `i < n1` is A's neuron `i`, `n1 + j` is B's neuron `j`'s copy B'; columns: `j < n2`
/// is B's neuron `j`, `n2 + i` is A's neuron `i`'s copy A'.
struct Doubled {
    n1: usize,
    n2: usize,
    /// Row adjacency in CSR form: `cols[ptr[r]..ptr[r + 1]]`, increasing.
    ptr: Vec<usize>,
    cols: Vec<Idx>,
    /// `mate[r]`: the column matched to row `r` (every row has one).
    mate: Vec<usize>,
    /// `row_of[c]`: the row matched to column `c`.
    row_of: Vec<usize>,
}

impl Doubled {
    fn new(
        stored: &impl StoredPairs,
        col_of_row: &[usize],
        duals: &Duals,
        tight: &Tight,
    ) -> Result<Self> {
        let (n1, n2) = (stored.n_rows(), stored.n_cols());
        let may_leave_row = |i: usize| duals.rows[i] <= super::duals::SLACK;
        let may_leave_col = |j: usize| duals.cols[j] <= super::duals::SLACK;
        let mut ptr = Vec::with_capacity(n1 + n2 + 1);
        ptr.push(0);
        // Every tight pair twice (A's row, B's mirrored one) and one leftover edge per neuron:
        // all that is pushed below, so no push reallocates.
        let bound = tight.cols.len().saturating_mul(2).saturating_add(n1 + n2);
        let mut cols: Vec<Idx> = alloc::with_capacity(bound, "the tight pairs' doubled graph")?;
        for i in 0..n1 {
            cols.extend_from_slice(&tight.cols[tight.ptr[i]..tight.ptr[i + 1]]);
            if may_leave_row(i) {
                cols.push((n2 + i) as Idx);
            }
            ptr.push(cols.len());
        }
        // The B' rows: each column's tight pairs mirrored (rows increasing), after its own
        // column if it may be left over; placed by counting.
        // `start[j]`: where B' row j begins, past the A rows.
        let mut start = vec![0usize; n2 + 1];
        for &j in &cols {
            if (j as usize) < n2 {
                start[j as usize + 1] += 1;
            }
        }
        for j in 0..n2 {
            start[j + 1] += start[j] + usize::from(may_leave_col(j));
        }
        let base = cols.len();
        let mut fill: Vec<usize> = (0..n2).map(|j| base + start[j]).collect();
        cols.resize(base + start[n2], 0);
        for j in 0..n2 {
            if may_leave_col(j) {
                cols[fill[j]] = j as Idx;
                fill[j] += 1;
            }
        }
        for i in 0..n1 {
            for k in ptr[i]..ptr[i + 1] {
                let j = cols[k] as usize;
                if j < n2 {
                    cols[fill[j]] = (n2 + i) as Idx;
                    fill[j] += 1;
                }
            }
        }
        ptr.extend(fill);
        // The starting matching: stored pairs of the given assignment, the rest left over.
        let mut mate = vec![UNMATCHED; n1 + n2];
        let mut row_of = vec![UNMATCHED; n1 + n2];
        // A pair below cost 1 is stored, hence tight (the certificate), or between two
        // empty neurons: the row's few tight pairs are looked at, not the stored ones.
        let below_one = |i: usize, j: usize| {
            tight.cols[tight.ptr[i]..tight.ptr[i + 1]].contains(&(j as Idx))
                || stored.is_unstored_below_one(i, j)
        };
        for (i, &j) in col_of_row.iter().enumerate() {
            if j != UNMATCHED && below_one(i, j) {
                mate[i] = j;
                row_of[j] = i;
                mate[n1 + j] = n2 + i;
                row_of[n2 + i] = n1 + j;
            }
        }
        for i in 0..n1 {
            if mate[i] == UNMATCHED {
                mate[i] = n2 + i;
                row_of[n2 + i] = i;
            }
        }
        for j in 0..n2 {
            if row_of[j] == UNMATCHED {
                mate[n1 + j] = j;
                row_of[j] = n1 + j;
            }
        }
        Ok(Doubled {
            n1,
            n2,
            ptr,
            cols,
            mate,
            row_of,
        })
    }

    fn adjacent(&self, r: usize) -> &[Idx] {
        &self.cols[self.ptr[r]..self.ptr[r + 1]]
    }

    /// Strongly connected components of rows (row `r` leads to `row_of[c]` for each unmatched
    /// edge r-c), by Tarjan's algorithm without recursion: the component of every row (an id),
    /// and the rows of each component of more than one row, increasing (the others have no
    /// choice to make).
    fn components(&self) -> (Vec<usize>, Vec<Vec<usize>>) {
        let n = self.mate.len();
        const NONE: usize = usize::MAX;
        let mut index = vec![NONE; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut component_of = vec![NONE; n];
        let mut shared = Vec::new();
        let mut next = 0;
        // (row, position in its adjacency)
        let mut call: Vec<(usize, usize)> = Vec::new();
        // A row that no unmatched edge leaves, or whose matched column no unmatched edge
        // enters, lies on no cycle: a component of its own, closed before the search starts
        // (most rows, where the optimum is nearly unique). Searches that reach it find it
        // finished, as if they had explored it.
        let mut entered = vec![false; n];
        let mut leaves = vec![false; n];
        for (r, leaves) in leaves.iter_mut().enumerate() {
            for &c in self.adjacent(r) {
                if c as usize != self.mate[r] {
                    entered[c as usize] = true;
                    *leaves = true;
                }
            }
        }
        for r in 0..n {
            if !leaves[r] || !entered[self.mate[r]] {
                index[r] = next;
                next += 1;
                component_of[r] = r;
            }
        }
        for root in 0..n {
            if index[root] != NONE {
                continue;
            }
            call.push((root, 0));
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (r, ref mut pos)) = call.last_mut() {
                let adj = self.adjacent(r);
                if *pos < adj.len() {
                    let c = adj[*pos] as usize;
                    *pos += 1;
                    if c == self.mate[r] {
                        continue;
                    }
                    let w = self.row_of[c];
                    if index[w] == NONE {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        call.push((w, 0));
                    } else if on_stack[w] {
                        low[r] = low[r].min(index[w]);
                    }
                } else {
                    call.pop();
                    if let Some(&(parent, _)) = call.last() {
                        low[parent] = low[parent].min(low[r]);
                    }
                    if low[r] == index[r] {
                        // The component's rows are the stack from `r` up.
                        let from = stack
                            .iter()
                            .rposition(|&w| w == r)
                            .expect("r is on the stack");
                        for &w in &stack[from..] {
                            on_stack[w] = false;
                            component_of[w] = r;
                        }
                        if stack.len() - from > 1 {
                            let mut component = stack[from..].to_vec();
                            component.sort_unstable();
                            shared.push(component);
                        }
                        stack.truncate(from);
                    }
                }
            }
        }
        (component_of, shared)
    }

    /// Re-matches one component: among the matchings of its stored pairs that cover every
    /// neuron with a positive dual (exactly its share of the optimal assignments), the one of
    /// least `sum of secondary(i, j) + neurons left over / 2`, by the row-by-row solver
    /// (`super::ssp`) with rows and columns in canonical order. As a problem where a row left
    /// over costs 1, pair (i, j) costs `1 - (f_i + f_j) / 3 - (1 - secondary(i, j)) / (3 (m + 1))`
    /// with `f` = 1 for a neuron that must be matched and `m` the component's rows: covering
    /// such neurons outweighs any secondary gain, and the rest is the objective above up to a
    /// constant (a row left over leaves a column over too, or reduces the columns' surplus).
    fn rematch(
        &self,
        component: &[usize],
        component_of: &[usize],
        criteria: &Criteria,
        mate: &mut [usize],
    ) -> Result<()> {
        let (n1, n2) = (self.n1, self.n2);
        let rows: Vec<usize> = component.iter().copied().filter(|&r| r < n1).collect();
        let mut cols: Vec<usize> = component
            .iter()
            .map(|&r| self.mate[r])
            .filter(|&c| c < n2)
            .collect();
        cols.sort_unstable();
        let local_col = |c: usize| cols.binary_search(&c).ok();
        let third = 1.0 / 3.0;
        let epsilon = third / (rows.len() as f64 + 1.0);
        // Whether edge r-c lies in some optimal assignment: matched, or inside a component.
        // (Whether it is tight depends on the dual; this does not.)
        let optimal_edge = |r: usize, c: usize| {
            self.adjacent(r).contains(&(c as Idx))
                && (self.mate[r] == c || component_of[r] == component_of[self.row_of[c]])
        };
        // Neurons that every optimal assignment matches by a stored pair.
        let must_row = |i: usize| !optimal_edge(i, n2 + i);
        let must_col = |j: usize| !optimal_edge(n1 + j, j);
        let mut rowptr = vec![0usize];
        let (mut local_cols, mut vals) = (Vec::new(), Vec::new());
        for &i in &rows {
            let fi = if must_row(i) { 1.0 } else { 0.0 };
            let edges = self.adjacent(i).len();
            alloc::grow(&mut local_cols, edges, "a component's tight pairs")?;
            alloc::grow(&mut vals, edges, "a component's tight pairs")?;
            for &c in self.adjacent(i) {
                let j = c as usize;
                if j >= n2 {
                    continue;
                }
                if let Some(lc) = local_col(j) {
                    let fj = if must_col(j) { 1.0 } else { 0.0 };
                    let gain = 1.0 - (criteria.secondary)(i, j).clamp(0.0, 1.0);
                    local_cols.push(lc as Idx);
                    vals.push((1.0 - (fi + fj) * third - gain * epsilon).clamp(0.0, 1.0));
                }
            }
            rowptr.push(local_cols.len());
        }
        let local = SparseCost {
            n_rows: rows.len(),
            n_cols: cols.len(),
            rowptr,
            cols: local_cols,
            vals,
        };
        let solved = sparse::solve_reference(&local)?;
        // Pairs at cost 1 (nothing gained) are neurons left over.
        let chosen: Vec<Option<usize>> = solved
            .col_of_row
            .iter()
            .enumerate()
            .map(|(k, &lc)| (lc != UNMATCHED && local.get(k, lc) < 1.0).then_some(lc))
            .collect();
        let mut col_used = vec![false; cols.len()];
        for lc in chosen.iter().flatten() {
            col_used[*lc] = true;
        }
        let covers = rows
            .iter()
            .zip(&chosen)
            .all(|(&i, lc)| lc.is_some() || !must_row(i))
            && cols
                .iter()
                .zip(&col_used)
                .all(|(&j, &used)| used || !must_col(j));
        debug_assert!(
            covers,
            "a component's optimum covers its neurons that must be matched"
        );
        if !covers {
            return Ok(());
        }
        for (&i, lc) in rows.iter().zip(&chosen) {
            match lc {
                Some(lc) => {
                    let j = cols[*lc];
                    mate[i] = j;
                    mate[n1 + j] = n2 + i;
                }
                None => mate[i] = n2 + i,
            }
        }
        for (&j, &used) in cols.iter().zip(&col_used) {
            if !used {
                mate[n1 + j] = j;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::scipy_order;

    /// [`choose`] from a certified optimum.
    fn pick(cost: &SparseCost, start: &[usize], duals: &Duals, criteria: &Criteria) -> Vec<usize> {
        let tight = duals.certified_tight(cost, start).unwrap();
        choose(cost, start, duals, &tight.expect("a certificate"), criteria).unwrap()
    }

    fn no_structure(_: usize, _: usize) -> f64 {
        0.0
    }

    #[test]
    fn the_choice_depends_on_the_optimal_set_not_on_the_start() {
        // Two optimal assignments of cost 1.0: identity and swap; the secondary prefers the swap.
        let dense = [0.5, 0.5, 0.9, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0];
        let cost = SparseCost::from_dense(3, 3, &dense);
        let (a, u, v) = scipy_order::solve_with_duals(&cost).unwrap();
        let duals = Duals::from_assignment_duals(&u, &v);
        assert!(duals.certify(&cost, &a.col_of_row));
        let prefer = |i: usize, j: usize| {
            if (i, j) == (0, 1) || (i, j) == (1, 0) {
                0.0
            } else {
                1.0
            }
        };
        let colours = [0u64; 3];
        let criteria = Criteria {
            secondary: &prefer,
            row_colours: &colours,
            col_colours: &colours,
            empty_rows: &[],
            empty_cols: &[],
        };
        for start in [vec![0, 1, 2], vec![1, 0, 2]] {
            assert_eq!(pick(&cost, &start, &duals, &criteria), vec![1, 0, 2]);
        }
        let flat = Criteria {
            secondary: &no_structure,
            ..criteria
        };
        let picked = pick(&cost, &[1, 0, 2], &duals, &flat);
        assert_eq!(picked, pick(&cost, &[0, 1, 2], &duals, &flat));
    }
}
