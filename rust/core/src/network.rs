//! Network distance: match layer by layer, carrying each matching into the next layer
//! (docs/definition.md#layer-assignment and #carrying-the-matching).

use crate::assign::{invert_matching, lexicographic, solve_layer, Algorithm, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::policy::{plan, Options, Solver};
use crate::refine::{agreement, colour_history, History};
use crate::similarity::layer_costs;
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

/// Structural colours of both networks, for the canonical mode, over `2 * depth + 1` rounds:
/// enough for a neuron's colour to reflect the whole depth in both directions.
struct Structure {
    a: History,
    b: History,
    rounds: usize,
}

impl Structure {
    /// 0 for neurons whose colours agree in every round, up to 1 when they never do.
    fn dissimilarity(&self, k: usize, i: usize, j: usize) -> f64 {
        1.0 - agreement(&self.a, &self.b, k, i, j) as f64 / self.rounds as f64
    }

    /// Final colours of layer `k`'s neurons, as canonical sort keys.
    fn keys(history: &History, k: usize) -> &[u64] {
        &history[history.len() - 1][k]
    }
}

/// A label-free signature of a network: its sorted final colours, layer by layer.
fn signature(history: &History) -> Vec<Vec<u64>> {
    let mut last = history[history.len() - 1].clone();
    for layer in &mut last {
        layer.sort_unstable();
    }
    last
}

/// A layer's distance: its assignment cost divided by A's neuron count (0 for an empty layer).
fn layer_distance(cost: f64, n_a: usize) -> f64 {
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

/// The distance of `b` from `a` over their first `depth` layers (all when `None`).
///
/// In the canonical mode the pair is solved in a label-free orientation (the network with the
/// smaller structural signature as the reference), so `distance(a, b)` and `distance(b, a)` use
/// the same matchings; distances are still divided by `a`'s widths.
pub fn distance(
    a: &Network,
    b: &Network,
    depth: Option<usize>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    if options.solver == Solver::Canonical {
        check_comparable(a, b)?;
        let rounds = 2 * a.depth() + 1;
        let (ha, hb) = (colour_history(a, rounds), colour_history(b, rounds));
        if signature(&hb) < signature(&ha) {
            let swapped = Structure {
                a: hb,
                b: ha,
                rounds,
            };
            let matches = layer_distances(b, a, depth, options, Some(&swapped), cancel)?;
            return Ok(matches
                .into_iter()
                .zip(a.layers())
                .map(|(m, la)| {
                    let n = la.n_out();
                    LayerMatch {
                        distance: layer_distance(m.cost, n),
                        cost: m.cost,
                        matching: invert_matching(&m.matching, n),
                        algorithm: m.algorithm,
                    }
                })
                .collect());
        }
        let structure = Structure {
            a: ha,
            b: hb,
            rounds,
        };
        return layer_distances(a, b, depth, options, Some(&structure), cancel);
    }
    layer_distances(a, b, depth, options, None, cancel)
}

/// [`distance`] in the given orientation, with structural colours in the canonical mode.
fn layer_distances(
    a: &Network,
    b: &Network,
    depth: Option<usize>,
    options: &Options,
    structure: Option<&Structure>,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    check_comparable(a, b)?;
    let depth = depth.unwrap_or(a.depth());
    if depth > a.depth() {
        return Err(Error::InvalidArgument(format!(
            "asked for {depth} layers of a {}-layer network",
            a.depth()
        )));
    }
    let mut result: Vec<LayerMatch> = Vec::with_capacity(depth);
    let mut carried: Option<Layer> = None;
    for k in 0..depth {
        cancel.check()?;
        let (la, lb) = (&a.layers()[k], &b.layers()[k]);
        let lb = match (&carried, result.last()) {
            (_, Some(prev)) => {
                let (labels, n_labels) = carried_labels(&prev.matching, lb.n_in() / lb.group());
                carried = Some(lb.relabel_inputs(&labels, n_labels));
                carried.as_ref().expect("just set")
            }
            _ => lb,
        };
        let plan = plan(k, la, lb, options)?;
        let assignment = match structure {
            Some(s) => lexicographic::solve(
                &layer_costs(la, lb),
                |i, j| s.dissimilarity(k, i, j),
                Structure::keys(&s.a, k),
                Structure::keys(&s.b, k),
            ),
            None => solve_layer(plan, la, lb, cancel)?,
        };
        let n = la.n_out();
        let distance = layer_distance(assignment.cost, n);
        result.push(LayerMatch {
            distance,
            cost: assignment.cost,
            matching: assignment.col_of_row,
            algorithm: plan.algorithm,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(layers: &[(usize, Vec<Vec<Idx>>)]) -> Network {
        Network::new(
            layers
                .iter()
                .enumerate()
                .map(|(k, (n_in, cols))| Layer::from_neuron_inputs(k, *n_in, cols).unwrap())
                .collect(),
        )
        .unwrap()
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
