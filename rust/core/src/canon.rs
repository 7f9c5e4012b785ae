//! Canonical labelling of a network's neurons (docs/definition.md#canonical-labels): an order
//! of every layer's neurons that depends on the network's structure alone, so that a network
//! and any relabelled copy of it get the same labelled network (their *canonical form*).
//!
//! The method is individualisation-refinement, as in nauty, Traces and bliss:
//!
//! 1. Colour refinement (`crate::refine`) splits each layer's neurons by structure until the
//!    partition is stable. Input features keep their labels; every other neuron, output neurons
//!    included, may be renamed.
//! 2. Where a class still holds neurons that are not *twins* (twins have the same inputs and
//!    feed the same neurons, so swapping two of them changes nothing), each candidate is in
//!    turn singled out with a colour of its own and the partition is refined again, recursively.
//!    The class searched is chosen by structure alone (fewest candidates, then layer, then
//!    colour), and only one neuron per set of twins is tried (the others give the same result).
//! 3. At each leaf (every class a set of twins) neurons are ordered by colour; the leaf whose
//!    relabelled network is smallest (compared as a flat list of numbers) is the canonical one.
//!
//! The search tree, and so the smallest leaf, depends only on the network up to relabelling.
//! It is a single leaf on the networks we measured (wide random networks, the paper's): colour
//! refinement separates every neuron that is not a twin. Highly symmetric networks can need
//! many leaves; the search stops with an error past [`SEARCH_NODES`] nodes.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::refine::{individualised, Refiner};
use crate::topology::{Idx, Layer, Network};

/// Search nodes (refinements) allowed for one network's canonical labelling.
pub const SEARCH_NODES: usize = 1 << 14;

/// A network in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// `order[k][r]`: the neuron of layer `k` whose canonical label is `r`.
    pub order: Vec<Vec<usize>>,
    /// The network with every layer's neurons renamed to their canonical labels.
    pub network: Network,
    /// The canonical form: shapes and canonical input lists, flattened. Two networks are
    /// relabelled copies of each other exactly when their forms are equal.
    pub form: Vec<u32>,
}

/// The canonical labelling of `net`, starting from neuron colours `start` that depend on
/// structure alone (the layer of each neuron, or some rounds of refinement from it).
pub(crate) fn label(
    refiner: &Refiner,
    net: &Network,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
) -> Result<Labelled> {
    let twins = twin_classes(refiner, net);
    let mut search = Search {
        net,
        refiner,
        twins,
        nodes: 0,
        best: None,
        cancel,
    };
    search.explore(start)?;
    let (form, order, neurons) = search.best.expect("the search reaches a leaf");
    let network = relabelled(net, neurons)?;
    Ok(Labelled {
        order,
        network,
        form,
    })
}

/// `twins[k][i]`: the lowest-numbered neuron of layer `k` with exactly neuron `i`'s inputs and
/// exactly its outgoing connections (kernel positions included).
fn twin_classes(refiner: &Refiner, net: &Network) -> Vec<Vec<usize>> {
    let layers = net.layers();
    layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let outgoing = layers
                .get(k + 1)
                .map(|after| (refiner.by_input(k + 1), after.group()));
            // Neuron i's outgoing connections, as (kernel position, neuron fed), in order.
            let outputs = |i: usize| {
                let spans = outgoing.map(|((rowptr, cols), g)| {
                    (0..g).flat_map(move |q| {
                        let r = i * g + q;
                        cols[rowptr[r]..rowptr[r + 1]].iter().map(move |&c| (q, c))
                    })
                });
                spans.into_iter().flatten()
            };
            // Candidates by a hash of both lists; equal hashes are checked list by list.
            let hash = |i: usize| -> u64 {
                let h = layer
                    .inputs(i)
                    .iter()
                    .fold(0x51u64, |h, &r| mixed(h, r as u64));
                outputs(i).fold(mixed(h, 0x7f), |h, (q, c)| {
                    mixed(mixed(h, q as u64), c as u64)
                })
            };
            let mut by_hash: Vec<(u64, usize)> = (0..layer.n_out()).map(|i| (hash(i), i)).collect();
            by_hash.sort_unstable();
            let mut twin: Vec<usize> = (0..layer.n_out()).collect();
            let mut start = 0;
            while start < by_hash.len() {
                let end = start
                    + by_hash[start..]
                        .iter()
                        .take_while(|e| e.0 == by_hash[start].0)
                        .count();
                for x in start + 1..end {
                    let i = by_hash[x].1;
                    let first = by_hash[start..x].iter().map(|e| e.1).find(|&p| {
                        twin[p] == p
                            && layer.inputs(p) == layer.inputs(i)
                            && outputs(p).eq(outputs(i))
                    });
                    if let Some(p) = first {
                        twin[i] = p;
                    }
                }
                start = end;
            }
            twin
        })
        .collect()
}

/// An order-dependent hash step (for lists in a fixed order).
fn mixed(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A leaf of the search: its form, its order, and every layer's neurons' renamed inputs.
type Leaf = (Vec<u32>, Vec<Vec<usize>>, Vec<Vec<Vec<Idx>>>);

struct Search<'a> {
    net: &'a Network,
    refiner: &'a Refiner<'a>,
    twins: Vec<Vec<usize>>,
    nodes: usize,
    /// The smallest form found so far, with its order and its neurons' renamed inputs.
    best: Option<Leaf>,
    cancel: &'a Cancel,
}

impl Search<'_> {
    fn explore(&mut self, mut colours: Vec<Vec<u64>>) -> Result<()> {
        self.nodes += 1;
        if self.nodes > SEARCH_NODES {
            return Err(Error::InvalidArgument(format!(
                "the canonical labelling needs more than {SEARCH_NODES} search steps on this \
                 network (its neurons are highly symmetric); use the \"paper\" or \"auto\" solver"
            )));
        }
        self.cancel.check()?;
        // Refinement to a stable partition only where the colours do not already single out
        // every neuron up to twins (the usual case at the root after the first rounds).
        let mut target = self.target_cell(&colours);
        if target.is_some() {
            self.refiner.refine_to_stable(&mut colours);
            target = self.target_cell(&colours);
        }
        match target {
            None => {
                self.leaf(&colours);
                Ok(())
            }
            Some((k, candidates)) => {
                for v in candidates {
                    let mut branch = colours.clone();
                    branch[k][v] = individualised(branch[k][v]);
                    self.explore(branch)?;
                }
                Ok(())
            }
        }
    }

    /// The class to search: among classes holding neurons of more than one set of twins, the
    /// one with the fewest such sets, then the lowest layer, then the lowest colour. Returns its
    /// layer and one neuron per set of twins.
    fn target_cell(&self, colours: &[Vec<u64>]) -> Option<(usize, Vec<usize>)> {
        let mut best: Option<(usize, usize, u64, Vec<usize>)> = None;
        for (k, layer) in colours.iter().enumerate() {
            let mut by_colour: Vec<(u64, usize, usize)> = layer
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, self.twins[k][i], i))
                .collect();
            by_colour.sort_unstable();
            let mut start = 0;
            while start < by_colour.len() {
                let colour = by_colour[start].0;
                let end = start
                    + by_colour[start..]
                        .iter()
                        .take_while(|e| e.0 == colour)
                        .count();
                let mut reps: Vec<usize> = by_colour[start..end].iter().map(|e| e.1).collect();
                reps.dedup();
                if reps.len() > 1 {
                    let better = match &best {
                        None => true,
                        Some((n, bk, bc, _)) => (reps.len(), k, colour) < (*n, *bk, *bc),
                    };
                    if better {
                        best = Some((reps.len(), k, colour, reps));
                    }
                }
                start = end;
            }
        }
        best.map(|(_, k, _, reps)| (k, reps))
    }

    /// A leaf: neurons ordered by colour (twins, the only neurons still sharing one, by index).
    fn leaf(&mut self, colours: &[Vec<u64>]) {
        let order: Vec<Vec<usize>> = colours
            .iter()
            .map(|layer| {
                let mut o: Vec<usize> = (0..layer.len()).collect();
                o.sort_by_key(|&i| (layer[i], i));
                o
            })
            .collect();
        let neurons = renamed_network(self.net, &order);
        let form = canonical_form(self.net, &neurons);
        if self.best.as_ref().is_none_or(|(f, _, _)| form < *f) {
            self.best = Some((form, order, neurons));
        }
    }
}

/// Each layer's new label of each neuron: the inverse of `order[k]`.
fn ranks(order: &[Vec<usize>]) -> Vec<Vec<Idx>> {
    order
        .iter()
        .map(|o| {
            let mut rank = vec![0 as Idx; o.len()];
            for (r, &i) in o.iter().enumerate() {
                rank[i] = r as Idx;
            }
            rank
        })
        .collect()
}

/// Neuron `order[k][r]`'s inputs, renamed as layer `k - 1` is by `rank`, sorted.
fn renamed_inputs(layer: &Layer, prev_rank: Option<&[Idx]>, neuron: usize) -> Vec<Idx> {
    let g = layer.group() as Idx;
    match prev_rank {
        // Input features keep their labels: already sorted.
        None => layer.inputs(neuron).to_vec(),
        Some(rank) => {
            let mut inputs: Vec<Idx> = layer
                .inputs(neuron)
                .iter()
                .map(|&r| rank[(r / g) as usize] * g + r % g)
                .collect();
            inputs.sort_unstable();
            inputs
        }
    }
}

/// Every layer's neurons in `order`, each with its inputs renamed by the previous layer's order.
fn renamed_network(net: &Network, order: &[Vec<usize>]) -> Vec<Vec<Vec<Idx>>> {
    let rank = ranks(order);
    net.layers()
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let prev = (k > 0).then(|| rank[k - 1].as_slice());
            order[k]
                .iter()
                .map(|&i| renamed_inputs(layer, prev, i))
                .collect()
        })
        .collect()
}

/// The renamed network flattened: per layer its shape, then each neuron's input count and inputs.
fn canonical_form(net: &Network, neurons: &[Vec<Vec<Idx>>]) -> Vec<u32> {
    let mut form = Vec::new();
    for (layer, renamed) in net.layers().iter().zip(neurons) {
        form.extend([
            layer.n_out() as u32,
            layer.n_in() as u32,
            layer.group() as u32,
        ]);
        for inputs in renamed {
            form.push(inputs.len() as u32);
            form.extend_from_slice(inputs);
        }
    }
    form
}

/// The network built from renamed neurons (each list sorted and without repeats).
fn relabelled(net: &Network, neurons: Vec<Vec<Vec<Idx>>>) -> Result<Network> {
    let layers = net
        .layers()
        .iter()
        .zip(neurons)
        .enumerate()
        .map(|(k, (layer, renamed))| {
            let mut indptr = Vec::with_capacity(renamed.len() + 1);
            indptr.push(0);
            let mut indices = Vec::with_capacity(layer.n_connections());
            for inputs in &renamed {
                indices.extend_from_slice(inputs);
                indptr.push(indices.len());
            }
            Layer::from_csc(k, layer.n_in(), renamed.len(), indptr, indices)?
                .with_group(k, layer.group())
        })
        .collect::<Result<Vec<Layer>>>()?;
    Network::new(layers)
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

    fn labelled(net: &Network) -> Labelled {
        let refiner = Refiner::new(net);
        label(&refiner, net, refiner.initial(), &Cancel::new()).unwrap()
    }

    #[test]
    fn relabelled_copies_share_a_canonical_form() {
        let a = net(&[
            (3, vec![vec![0], vec![1, 2], vec![2], vec![1, 2]]),
            (4, vec![vec![0, 1], vec![2], vec![3, 1]]),
        ]);
        // Hidden neurons renamed 0->2, 1->0, 2->1, 3->3; outputs reversed.
        let b = net(&[
            (3, vec![vec![1, 2], vec![2], vec![0], vec![1, 2]]),
            (4, vec![vec![3, 0], vec![1], vec![2, 0]]),
        ]);
        let (la, lb) = (labelled(&a), labelled(&b));
        assert_eq!(la.form, lb.form);
        assert_eq!(la.network, lb.network);
        // A different network has a different form.
        let c = net(&[
            (3, vec![vec![0], vec![1, 2], vec![2], vec![1]]),
            (4, vec![vec![0, 1], vec![2], vec![3, 1]]),
        ]);
        let lc = labelled(&c);
        assert_ne!(lc.form, la.form);
    }

    #[test]
    fn symmetric_networks_are_labelled_by_search() {
        // A 4-cycle-like structure that colour refinement cannot split: each hidden neuron has
        // one input and feeds two outputs, all alike, yet no two hidden neurons are twins.
        let a = net(&[
            (1, vec![vec![0], vec![0], vec![0], vec![0]]),
            (4, vec![vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 0]]),
        ]);
        let b = net(&[
            (1, vec![vec![0], vec![0], vec![0], vec![0]]),
            (4, vec![vec![0, 2], vec![2, 1], vec![1, 3], vec![3, 0]]),
        ]);
        let (la, lb) = (labelled(&a), labelled(&b));
        assert_eq!(la.network, lb.network);
    }
}
