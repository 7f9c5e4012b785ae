//! The canonical mode (docs/definition.md#canonical-mode): a network distance that depends on
//! the two networks' structures alone, not on how their neurons are numbered and not on which
//! optimal algorithm runs.
//!
//! 1. Both networks are put in canonical order (`crate::labelling`); the one with the smaller
//!    canonical form is the reference, so `distance(a, b)` and `distance(b, a)` make the same
//!    matchings.
//! 2. Layer by layer, with the matching carried forward as in every mode, the fastest optimal
//!    algorithm for the layer (sparse or dense, `crate::policy`) finds an optimum and a dual
//!    certificate, and the canonical choice among all optimal assignments is read from them
//!    (`crate::assign::choice`). Identical layers are matched neuron to neuron.
//! 3. Matchings are reported in the callers' own labels.
//!
//! This module holds what is canonical and nothing else: the preparation of a network
//! ([`prepare`]), the orientation of a pair and the choice in one layer ([`Oriented`]). The
//! layer-by-layer loop that carries matchings is the network loop every mode shares
//! (`crate::network`); `crate::mode::Canonical` hands these parts to it.

use crate::assign::choice::{choose, membership, Criteria};
use crate::assign::duals::{DenseStored, StoredPairs, Tight};
use crate::assign::{invert_matching, lapjv, scipy_order, sparse, Assignment, Duals, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::labelling::{label, Labelled};
use crate::policy::{plan, Pick};
use crate::refine::{agreement, History, Refiner};
use crate::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, EmptyPairs,
};
use crate::topology::{Layer, Network};

/// A network ready for canonical distances: its canonical labelling and structural colours,
/// computed once per network (the pair scheduler, `crate::pairwise`, reuses them across pairs).
pub struct Prepared {
    labelled: Labelled,
    /// Colours over [`colour_rounds`] rounds of refinement (enough for a neuron's colour to
    /// reflect the whole depth in both directions), neurons in canonical order.
    history: History,
}

/// The canonical labelling and colours of `net`.
pub fn prepare(net: &Network, cancel: &Cancel) -> Result<Prepared> {
    let rounds = colour_rounds(net.depth());
    let refiner = Refiner::new(net);
    let history = refiner.history(rounds);
    // The search for canonical labels goes on refining from the last round.
    let labelled = label(&refiner, net, history[rounds].clone(), cancel)?;
    let history = history
        .into_iter()
        .map(|round| {
            round
                .iter()
                .zip(&labelled.order)
                .map(|(layer, order)| order.iter().map(|&i| layer[i]).collect())
                .collect()
        })
        .collect();
    Ok(Prepared { labelled, history })
}

/// Rounds of colour refinement behind the structural criterion: `2 * depth + 1` (a neuron's
/// colour then reflects the whole depth in both directions), at most [`MAX_COLOUR_ROUNDS`]:
/// past three layers either way, more rounds cost time and rarely separate better partners.
pub fn colour_rounds(depth: usize) -> usize {
    (2 * depth + 1).min(MAX_COLOUR_ROUNDS)
}

/// The cap of [`colour_rounds`].
pub const MAX_COLOUR_ROUNDS: usize = 7;

/// Two prepared networks as the canonical mode matches them: the one with the smaller canonical
/// form first (module documentation, step 1), both in canonical order. Matchings between them
/// are in canonical labels until [`Oriented::in_callers_labels`].
pub struct Oriented<'p> {
    first: &'p Prepared,
    second: &'p Prepared,
    /// Whether `first` is the callers' B.
    swapped: bool,
    structure: Structure<'p>,
    /// Bytes one layer's costs may take (`crate::policy::plan`).
    budget: u64,
}

impl<'p> Oriented<'p> {
    /// `a` (the callers' A) and `b` in the orientation of step 1; `budget` bounds each layer's
    /// costs.
    pub fn new(a: &'p Prepared, b: &'p Prepared, budget: u64) -> Self {
        let swapped = b.labelled.cmp_form(&a.labelled).is_lt();
        let (first, second) = if swapped { (b, a) } else { (a, b) };
        let structure = Structure {
            a: &first.history,
            b: &second.history,
            rounds: first.history.len() - 1,
        };
        Oriented {
            first,
            second,
            swapped,
            structure,
            budget,
        }
    }

    /// The two canonical networks, the first matched as A.
    pub fn networks(&self) -> (&'p Network, &'p Network) {
        (&self.first.labelled.network, &self.second.labelled.network)
    }

    /// Layer `k`'s canonical assignment of the first network's layer `a` against the second's
    /// `b` (inputs carried), in canonical labels (step 2). Identical layers are matched neuron
    /// to neuron; the memory budget is checked for every layer, identical ones included.
    pub fn match_layer(
        &self,
        k: usize,
        a: &Layer,
        b: &Layer,
        cancel: &Cancel,
    ) -> Result<Assignment> {
        choose_layer(k, a, b, (&self.structure, 0, 0), self.budget, cancel)
    }

    /// Layer `k`'s `matching` (the first network's canonical labels to the second's) in the
    /// callers' labels, from their A's neurons to their B's (step 3).
    pub fn in_callers_labels(&self, k: usize, matching: Vec<usize>) -> Vec<usize> {
        in_callers_labels(
            &self.first.labelled.order[k],
            &self.second.labelled.order[k],
            matching,
            self.swapped,
        )
    }
}

/// Layer `k`'s canonical assignment of the first network's layer `a` against the second's `b`
/// (inputs carried), in canonical labels, its neurons those of `structure` from the given
/// offsets (a head's units within a graph's group; 0 and 0 for a layer). Identical layers are
/// matched neuron to neuron; the memory budget is checked for every layer, identical ones
/// included.
pub(crate) fn choose_layer(
    k: usize,
    a: &Layer,
    b: &Layer,
    (structure, row_offset, col_offset): (&Structure, usize, usize),
    budget: u64,
    cancel: &Cancel,
) -> Result<Assignment> {
    let dense_costs = plan(k, a, b, Pick::Fastest, budget)?.dense_costs;
    if a == b {
        return Ok(Assignment {
            col_of_row: (0..a.n_out()).collect(),
            cost: 0.0,
        });
    }
    let mut choice = LayerChoice::new(k, a, b, structure);
    (choice.row_offset, choice.col_offset) = (row_offset, col_offset);
    choice.solve(dense_costs, cancel)
}

/// Structural colours of both canonical networks (`[t][k][i]`: round, layer or group, neuron
/// or unit in canonical order).
pub(crate) struct Structure<'a> {
    pub(crate) a: &'a History,
    pub(crate) b: &'a History,
    pub(crate) rounds: usize,
}

impl Structure<'_> {
    /// 0 for neurons whose colours agree in every round, up to 1 when they never do.
    pub(crate) fn dissimilarity(&self, k: usize, i: usize, j: usize) -> f64 {
        1.0 - agreement(self.a, self.b, k, i, j) as f64 / self.rounds as f64
    }

    pub(crate) fn last(history: &History, k: usize) -> &[u64] {
        &history[history.len() - 1][k]
    }
}

/// One layer's canonical choice: the first network's layer `a` against the second's `b`
/// (inputs carried), in canonical labels, with both networks' colours.
struct LayerChoice<'a> {
    k: usize,
    a: &'a Layer,
    b: &'a Layer,
    structure: &'a Structure<'a>,
    /// Where `a`'s and `b`'s neurons start among the colours of `structure`'s layer `k`.
    row_offset: usize,
    col_offset: usize,
    /// Neurons with no input (increasing), of `a` and of `b`: they cost 0 with each other.
    empty_rows: Vec<usize>,
    empty_cols: Vec<usize>,
}

impl<'a> LayerChoice<'a> {
    fn new(k: usize, a: &'a Layer, b: &'a Layer, structure: &'a Structure<'a>) -> Self {
        LayerChoice {
            k,
            a,
            b,
            structure,
            row_offset: 0,
            col_offset: 0,
            empty_rows: empty_neurons(a),
            empty_cols: empty_neurons(b),
        }
    }

    /// The canonical assignment (module documentation, step 2): an optimum and its
    /// certificate from the dense or the sparse solver, as planned, then the choice.
    fn solve(&self, dense_costs: bool, cancel: &Cancel) -> Result<Assignment> {
        let (a, b) = (self.a, self.b);
        if dense_costs {
            let dense = dense_layer_costs(a, b, cancel)?;
            let (optimum, duals) = lapjv::solve_with_duals(&dense, cancel)?;
            let stored = DenseStored {
                dense: &dense,
                empty_row: membership(a.n_out(), &self.empty_rows),
                empty_col: membership(b.n_out(), &self.empty_cols),
            };
            self.choose_certified(&stored, optimum, self.without_empty(duals))
        } else {
            let costs = layer_costs_with(a, b, EmptyPairs::Skip)?;
            let (optimum, duals) =
                sparse::solve_with_duals(&costs, &self.empty_rows, &self.empty_cols, cancel)?;
            self.choose_certified(&costs, optimum, duals)
        }
    }

    /// The canonical choice from an optimum and its certificate (checked first; the paper
    /// mode's solver gives another if it fails), with its cost checked against the optimum.
    fn choose_certified(
        &self,
        stored: &impl StoredPairs,
        optimum: Assignment,
        duals: Duals,
    ) -> Result<Assignment> {
        let (optimum, duals, tight) = match duals.certified_tight(stored, &optimum.col_of_row)? {
            Some(tight) => (optimum, duals, tight),
            None => self.certified_by_paper_mode(stored)?,
        };
        let (k, structure) = (self.k, self.structure);
        let (ro, co) = (self.row_offset, self.col_offset);
        let dissimilarity = |i: usize, j: usize| structure.dissimilarity(k, ro + i, co + j);
        let criteria = Criteria {
            secondary: &dissimilarity,
            row_colours: &Structure::last(structure.a, k)[ro..ro + self.a.n_out()],
            col_colours: &Structure::last(structure.b, k)[co..co + self.b.n_out()],
            empty_rows: &self.empty_rows,
            empty_cols: &self.empty_cols,
        };
        let col_of_row = choose(stored, &optimum.col_of_row, &duals, &tight, &criteria)?;
        let chosen = Assignment {
            cost: self.cost(stored, &col_of_row),
            col_of_row,
        };
        if (chosen.cost - optimum.cost).abs() > 1e-9 * optimum.cost.max(1.0) {
            return Err(Error::InvalidArgument(format!(
                "layer {k}: the canonical choice costs {} against the optimum {}; please report \
                 this as a bug",
                chosen.cost, optimum.cost
            )));
        }
        Ok(chosen)
    }

    /// The cost of `col_of_row`, summed exactly ([`compensated_sum`]); pairs of empty neurons
    /// cost 0.
    fn cost(&self, stored: &impl StoredPairs, col_of_row: &[usize]) -> f64 {
        let is_empty_pair = |i: usize, j: usize| {
            self.empty_rows.binary_search(&i).is_ok() && self.empty_cols.binary_search(&j).is_ok()
        };
        compensated_sum(
            col_of_row
                .iter()
                .enumerate()
                .filter(|&(_, &j)| j != UNMATCHED)
                .map(|(i, &j)| {
                    if is_empty_pair(i, j) {
                        0.0
                    } else {
                        stored.cost(i, j)
                    }
                }),
        )
    }

    /// Duals of the problem without the pairs of empty neurons: theirs become 0 (their only
    /// stored pairs are with each other, so every other constraint stands).
    fn without_empty(&self, mut duals: Duals) -> Duals {
        for &i in &self.empty_rows {
            duals.rows[i] = 0.0;
        }
        for &j in &self.empty_cols {
            duals.cols[j] = 0.0;
        }
        duals
    }

    /// An optimum and certificate (with its tight pairs) from the paper mode's solver, for a
    /// layer whose first certificate failed (float rounding far beyond the usual).
    fn certified_by_paper_mode(
        &self,
        stored: &impl StoredPairs,
    ) -> Result<(Assignment, Duals, Tight)> {
        let full = layer_costs(self.a, self.b)?;
        if let Some((optimum, u, v)) = scipy_order::solve_with_duals(&full) {
            let duals = self.without_empty(Duals::from_assignment_duals(&u, &v));
            if let Some(tight) = duals.certified_tight(stored, &optimum.col_of_row)? {
                return Ok((optimum, duals, tight));
            }
        }
        Err(Error::InvalidArgument(format!(
            "layer {}: no optimality certificate for the canonical mode; please report this as \
             a bug",
            self.k
        )))
    }
}

/// A sum rounded as if computed exactly (Neumaier's compensated summation): assignments of the
/// same exact cost give the same float whatever the order of their pairs, so a layer's value
/// does not depend on how the neurons are numbered, even in the last bit.
fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for x in values {
        let t = sum + x;
        compensation += if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        sum = t;
    }
    sum + compensation
}

/// A matching between two networks' canonical labels (`from[i]`: the first network's unit
/// with canonical label `i`; `to[j]` likewise for the second) in the callers' labels, from
/// their A's units to their B's: read backwards when the pair was `swapped` (the second
/// network is the caller's A). Shared by chains (per layer) and graphs (per group).
pub(crate) fn in_callers_labels(
    from: &[usize],
    to: &[usize],
    matching: Vec<usize>,
    swapped: bool,
) -> Vec<usize> {
    let mut own = vec![UNMATCHED; from.len()];
    for (i, &j) in matching.iter().enumerate() {
        if j != UNMATCHED {
            own[from[i]] = to[j];
        }
    }
    if swapped {
        invert_matching(&own, to.len())
    } else {
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{Options, Solver};
    use crate::network::{carried_labels, LayerMatch};
    use crate::pairwise::distance;
    use crate::testing::numbers;
    use crate::topology::Idx;

    /// A network of the given widths, each neuron drawing 0 to 3 distinct inputs at random
    /// (tie-heavy costs, some empty neurons).
    fn random_network(seed: u64, widths: &[usize]) -> Network {
        let mut next = numbers(seed);
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let neurons: Vec<Vec<Idx>> = (0..w[1])
                    .map(|_| {
                        let mut inputs: Vec<Idx> =
                            (0..next() % 4).map(|_| (next() % w[0]) as Idx).collect();
                        inputs.sort_unstable();
                        inputs.dedup();
                        inputs
                    })
                    .collect();
                Layer::from_neuron_inputs(k, w[0], &neurons).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    /// `net` with every layer's neurons renamed by a random permutation (inputs kept).
    fn shuffled(net: &Network, seed: u64) -> Network {
        let mut next = numbers(seed);
        let mut previous: Option<Vec<usize>> = None;
        let mut layers = Vec::new();
        for (k, layer) in net.layers().iter().enumerate() {
            let mut perm: Vec<usize> = (0..layer.n_out()).collect();
            for i in (1..perm.len()).rev() {
                perm.swap(i, next() % (i + 1));
            }
            let mut neurons = vec![Vec::new(); layer.n_out()];
            for (c, &to) in perm.iter().enumerate() {
                let mut inputs: Vec<Idx> = layer
                    .inputs(c)
                    .iter()
                    .map(|&r| previous.as_ref().map_or(r, |p| p[r as usize] as Idx))
                    .collect();
                inputs.sort_unstable();
                neurons[to] = inputs;
            }
            layers.push(Layer::from_neuron_inputs(k, layer.n_in(), &neurons).unwrap());
            previous = Some(perm);
        }
        Network::new(layers).unwrap()
    }

    /// The canonical distance through the pair scheduler and the network loop.
    fn canonical(a: &Network, b: &Network) -> Vec<LayerMatch> {
        let options = Options::new(Solver::Canonical);
        distance(a, b, None, &options, &Cancel::new()).unwrap()
    }

    const WIDTHS: [&[usize]; 4] = [&[6, 5, 4], &[8, 9, 7, 3], &[5, 12, 12, 2], &[10, 4, 6]];

    #[test]
    fn a_relabelled_copy_is_at_distance_zero() {
        for seed in 0..40u64 {
            let a = random_network(seed, WIDTHS[seed as usize % WIDTHS.len()]);
            let b = shuffled(&a, seed ^ 0x9E37);
            for (k, m) in canonical(&a, &b).iter().enumerate() {
                assert_eq!(m.cost, 0.0, "seed {seed} layer {k}");
                assert_eq!(m.distance, 0.0, "seed {seed} layer {k}");
                assert!(m.matching.iter().all(|&j| j != UNMATCHED));
            }
        }
    }

    #[test]
    fn both_directions_cost_the_same() {
        for seed in 0..40u64 {
            let widths = WIDTHS[seed as usize % WIDTHS.len()];
            let (a, b) = (
                random_network(seed, widths),
                random_network(seed + 1000, widths),
            );
            let (ab, ba) = (canonical(&a, &b), canonical(&b, &a));
            for (k, (x, y)) in ab.iter().zip(&ba).enumerate() {
                assert_eq!(x.cost.to_bits(), y.cost.to_bits(), "seed {seed} layer {k}");
                // The same pairs, seen from the other side.
                assert_eq!(
                    x.matching,
                    invert_matching(&y.matching, a.layers()[k].n_out())
                );
            }
        }
    }

    #[test]
    fn every_layer_costs_the_scipy_optimum_of_its_cost_matrix() {
        for seed in 0..40u64 {
            let widths = WIDTHS[seed as usize % WIDTHS.len()];
            let (a, b) = (
                random_network(seed, widths),
                random_network(seed + 2000, widths),
            );
            let matches = canonical(&a, &b);
            assert_eq!(matches.len(), a.depth());
            for (k, m) in matches.iter().enumerate() {
                let lb = &b.layers()[k];
                // B's layer in A's labels, through the previous layer's matching.
                let carried = match k {
                    0 => lb.clone(),
                    _ => {
                        let (labels, n) = carried_labels(&matches[k - 1].matching, lb.n_in());
                        lb.relabel_inputs(&labels, n)
                    }
                };
                let costs = layer_costs(&a.layers()[k], &carried).unwrap();
                let optimum = scipy_order::solve(&costs).cost;
                assert!(
                    (m.cost - optimum).abs() < 1e-9,
                    "seed {seed} layer {k}: {} against {optimum}",
                    m.cost
                );
                // The reported cost is that of the reported matching.
                let own: f64 = m
                    .matching
                    .iter()
                    .enumerate()
                    .filter(|&(_, &j)| j != UNMATCHED)
                    .map(|(i, &j)| costs.get(i, j))
                    .sum();
                assert!((own - m.cost).abs() < 1e-9, "seed {seed} layer {k}");
            }
        }
    }
}
