//! The network loop: match layer by layer, carrying each matching into the next layer
//! (docs/definition.md#layer-assignment and #carrying-the-matching). Modes (`crate::mode`) drive
//! it; the pair scheduler (`crate::pairwise`) drives the modes.

use std::borrow::Cow;

use crate::assign::{Algorithm, Assignment, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::policy::{plan, solve_layer, Options};
use crate::topology::{Idx, Layer, Network};

/// One layer of a network distance.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMatch {
    /// The assignment cost divided by A's neuron count; in [0, 1].
    pub distance: f64,
    /// The sum of the matched neuron costs.
    pub cost: f64,
    /// `matching[i]` is the neuron of B (B's own label) matched to neuron `i` of A, or
    /// [`UNMATCHED`] when B's layer is narrower.
    pub matching: Vec<usize>,
    /// The algorithm that matched this layer.
    pub algorithm: Algorithm,
}

/// Checks that two networks can be compared: the same depth and the same input width.
pub fn check_comparable(a: &Network, b: &Network) -> Result<()> {
    if a.depth() != b.depth() {
        return Err(Error::Mismatch(format!(
            "networks of different depth: {} layers against {}",
            a.depth(),
            b.depth()
        )));
    }
    let (na, nb) = (a.layers()[0].n_in(), b.layers()[0].n_in());
    if na != nb {
        return Err(Error::Mismatch(format!(
            "networks of different input width: {na} inputs against {nb}"
        )));
    }
    Ok(())
}

/// A layer's distance: its assignment cost divided by A's neuron count (0 for an empty layer).
pub(crate) fn layer_distance(cost: f64, n_a: usize) -> f64 {
    if n_a == 0 {
        0.0
    } else {
        cost / n_a as f64
    }
}

/// B's labels for the next layer's inputs: the B neuron matched to A's neuron `i` becomes `i`;
/// B neurons left unmatched (B wider than A) get fresh labels after A's, in index order, so they
/// never coincide with an A input. Returns the labels and the size of the label space.
pub fn carried_labels(matching: &[usize], n_b: usize) -> (Vec<Idx>, usize) {
    let mut labels = vec![Idx::MAX; n_b];
    for (i, &j) in matching.iter().enumerate() {
        if j != UNMATCHED {
            labels[j] = i as Idx;
        }
    }
    let mut next = matching.len();
    for label in labels.iter_mut().filter(|l| **l == Idx::MAX) {
        *label = next as Idx;
        next += 1;
    }
    (labels, next)
}

/// The number of layers to match: `depth`, or all `full` when `None`; more is an error.
pub(crate) fn layers_asked(depth: Option<usize>, full: usize) -> Result<usize> {
    let depth = depth.unwrap_or(full);
    if depth > full {
        return Err(Error::InvalidArgument(format!(
            "asked for {depth} layers of a {full}-layer network"
        )));
    }
    Ok(depth)
}

/// B's layer with its inputs renamed by the previous layer's matching (as given for layer 0).
fn with_carried_labels<'a>(b: &'a Layer, previous: Option<&LayerMatch>) -> Cow<'a, Layer> {
    match previous {
        Some(prev) => {
            let (labels, n_labels) = carried_labels(&prev.matching, b.n_in() / b.group());
            Cow::Owned(b.relabel_inputs(&labels, n_labels))
        }
        None => Cow::Borrowed(b),
    }
}

/// The distance of `b` from `a` over their first `depth` layers, the networks as numbered: each
/// layer solved by the algorithm the policy plans for it (the [`crate::mode::AsGiven`] mode).
pub(crate) fn match_as_given(
    a: &Network,
    b: &Network,
    depth: usize,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    match_layers(a, b, depth, cancel, |k, la, lb| {
        let plan = plan(k, la, lb, options)?;
        Ok((solve_layer(plan, la, lb, cancel)?, plan.algorithm))
    })
}

/// Matches `a`'s first `depth` layers with `b`'s, each of `b`'s layers with its inputs renamed
/// by the previous layer's matching: `solve(k, a_layer, b_layer)` gives the layer's assignment
/// and the algorithm that made it. Checks `cancel` before each layer and counts finished ones.
pub(crate) fn match_layers(
    a: &Network,
    b: &Network,
    depth: usize,
    cancel: &Cancel,
    mut solve: impl FnMut(usize, &Layer, &Layer) -> Result<(Assignment, Algorithm)>,
) -> Result<Vec<LayerMatch>> {
    let mut result: Vec<LayerMatch> = Vec::with_capacity(depth);
    for k in 0..depth {
        cancel.check()?;
        let (la, lb) = (&a.layers()[k], &b.layers()[k]);
        let lb = with_carried_labels(lb, result.last());
        let (assignment, algorithm) = solve(k, la, lb.as_ref()).map_err(|e| e.in_layer(k))?;
        cancel.layer_finished();
        result.push(LayerMatch {
            distance: layer_distance(assignment.cost, la.n_out()),
            cost: assignment.cost,
            matching: assignment.col_of_row,
            algorithm,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairwise::distance;

    fn net(layers: &[(usize, Vec<Vec<Idx>>)]) -> Network {
        Network::from_neuron_inputs(layers)
    }

    #[test]
    fn shuffled_hidden_neurons_with_distinct_inputs_give_zero() {
        let a = net(&[
            (3, vec![vec![0], vec![1, 2], vec![2]]),
            (3, vec![vec![0, 1], vec![2]]),
        ]);
        // Hidden neurons renamed 0->2, 1->0, 2->1; layer 1's inputs renamed to match.
        let b = net(&[
            (3, vec![vec![1, 2], vec![2], vec![0]]),
            (3, vec![vec![2, 0], vec![1]]),
        ]);
        let d = distance(&a, &b, None, &Options::default(), &Cancel::new()).unwrap();
        assert_eq!(d[0].matching, vec![2, 0, 1]);
        assert_eq!((d[0].distance, d[1].distance), (0.0, 0.0));
    }

    #[test]
    fn unmatched_b_neurons_get_fresh_labels() {
        assert_eq!(carried_labels(&[2, UNMATCHED, 0], 4), (vec![2, 3, 0, 4], 5));
    }

    #[test]
    fn mismatched_networks_are_rejected() {
        let a = net(&[(3, vec![vec![0]])]);
        let b = net(&[(4, vec![vec![0]])]);
        assert!(distance(&a, &b, None, &Options::default(), &Cancel::new()).is_err());
    }
}
