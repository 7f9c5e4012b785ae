//! The network loop: match layer by layer, carrying each matching into the next layer
//! (docs/definition.md#layer-assignment and #carrying-the-matching). It drives any mode
//! through the mode's per-layer [`Matcher`] (`crate::mode`): the loop owns the carrying of
//! labels, the mode owns the choice in each layer. The pair scheduler (`crate::pairwise`)
//! prepares the networks and drives the loop.

use std::borrow::Cow;

use crate::assign::{Algorithm, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::mode::{Matcher, Solved};
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

/// B's layer with its inputs renamed by `carried` (the previous layer's [`carried_labels`];
/// `None`: layer 0, inputs as given).
fn with_carried_labels<'a>(b: &'a Layer, carried: Option<&(Vec<Idx>, usize)>) -> Cow<'a, Layer> {
    match carried {
        Some((labels, n_labels)) => Cow::Owned(b.relabel_inputs(labels, *n_labels)),
        None => Cow::Borrowed(b),
    }
}

/// The first `depth` layers of a pair's distance: each of B's layers (of the networks `pair`
/// walks) with its inputs renamed by the previous layer's matching, matched by the pair's mode,
/// and reported in the callers' labels. Checks `cancel` before each layer and counts finished
/// ones.
pub fn match_chain(
    pair: &impl Matcher<Network>,
    depth: usize,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    let (a, b) = pair.networks();
    let mut result = Vec::with_capacity(depth);
    let mut carried = None;
    for k in 0..depth {
        cancel.check()?;
        let (la, lb) = (&a.layers()[k], &b.layers()[k]);
        let lb = with_carried_labels(lb, carried.as_ref());
        let solved = pair
            .match_layer(k, la, lb.as_ref(), cancel)
            .map_err(|e| e.in_layer(k))?;
        cancel.layer_finished();
        if k + 1 < depth {
            let next = &b.layers()[k + 1];
            let n_b = next.n_in() / next.group();
            carried = Some(carried_labels(&solved.assignment.col_of_row, n_b));
        }
        result.push(reported(pair, k, solved));
    }
    Ok(result)
}

/// Layer `k` as a pair's distance reports it: `solved` in the callers' labels, its distance
/// relative to their A's neuron count.
pub(crate) fn reported<N>(pair: &impl Matcher<N>, k: usize, solved: Solved) -> LayerMatch {
    let cost = solved.assignment.cost;
    let matching = pair.in_callers_labels(k, solved.assignment.col_of_row);
    LayerMatch {
        distance: layer_distance(cost, matching.len()),
        cost,
        matching,
        algorithm: solved.algorithm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Options;
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
