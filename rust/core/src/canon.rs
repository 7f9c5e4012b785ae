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

use std::cmp::Ordering;

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
}

impl Labelled {
    /// How this network's canonical form compares with `other`'s (see [`form`]). Equal
    /// exactly when the networks are relabelled copies of each other.
    pub fn cmp_form(&self, other: &Labelled) -> Ordering {
        let (mine, theirs) = (parts(&self.network), parts(&other.network));
        form(&mine).cmp(form(&theirs))
    }
}

/// The canonical labelling of `net`, starting from neuron colours `start` that depend on
/// structure alone (the layer of each neuron, or some rounds of refinement from it).
pub(crate) fn label(
    refiner: &Refiner,
    net: &Network,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
) -> Result<Labelled> {
    let twins = twin_classes(net, &start);
    let mut search = Search {
        net,
        refiner,
        twins,
        nodes: 0,
        best: None,
        cancel,
    };
    search.explore(start)?;
    let (order, neurons) = search.best.expect("the search reaches a leaf");
    let network = relabelled(net, neurons)?;
    Ok(Labelled { order, network })
}

/// `twins[k][i]`: the lowest-numbered neuron of layer `k` with exactly neuron `i`'s inputs and
/// exactly its outgoing connections (kernel positions included). Twins always share a colour,
/// so only neurons of equal colour in `colours` are compared (and a layer's outgoing
/// connections are listed only if some do).
fn twin_classes(net: &Network, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
    let layers = net.layers();
    layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let mut by_colour: Vec<(u64, usize)> = colours[k]
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i))
                .collect();
            by_colour.sort_unstable();
            let mut twin: Vec<usize> = (0..layer.n_out()).collect();
            let mut shared = by_colour
                .chunk_by(|x, y| x.0 == y.0)
                .filter(|c| c.len() > 1)
                .peekable();
            if shared.peek().is_none() {
                return twin;
            }
            let after = layers.get(k + 1);
            let outgoing = after.map(|l| (l.neurons_by_input(), l.group()));
            // Neuron i's outgoing connections, as (kernel position, neuron fed), in order.
            let outputs = |i: usize| {
                let spans = outgoing.as_ref().map(|((rowptr, cols), g)| {
                    let g = *g;
                    (0..g).flat_map(move |q| {
                        let r = i * g + q;
                        cols[rowptr[r]..rowptr[r + 1]].iter().map(move |&c| (q, c))
                    })
                });
                spans.into_iter().flatten()
            };
            let same = |p: usize, i: usize| {
                layer.inputs(p) == layer.inputs(i) && outputs(p).eq(outputs(i))
            };
            for class in shared {
                let mut reps: Vec<usize> = Vec::new();
                for &(_, i) in class {
                    match reps.iter().copied().find(|&p| same(p, i)) {
                        Some(p) => twin[i] = p,
                        None => reps.push(i),
                    }
                }
            }
            twin
        })
        .collect()
}

/// A layer in compressed sparse column form: `indices[indptr[c]..indptr[c + 1]]` are neuron
/// `c`'s inputs, increasing.
type Csc = (Vec<usize>, Vec<Idx>);

/// A leaf of the search: its order, and every layer relabelled.
type Leaf = (Vec<Vec<usize>>, Vec<Csc>);

struct Search<'a> {
    net: &'a Network,
    refiner: &'a Refiner<'a>,
    twins: Vec<Vec<usize>>,
    nodes: usize,
    /// The leaf of smallest form found so far.
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
                // (colour, neuron) pairs are distinct: an unstable sort gives the one order.
                let mut keyed: Vec<(u64, usize)> =
                    layer.iter().enumerate().map(|(i, &c)| (c, i)).collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        let layers = relabelled_layers(self.net, &order);
        let smaller = self.best.as_ref().is_none_or(|(_, best)| {
            let (mine, theirs) = (leaf_parts(self.net, &layers), leaf_parts(self.net, best));
            form(&mine).lt(form(&theirs))
        });
        if smaller {
            self.best = Some((order, layers));
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

/// Every layer with its neurons in `order` and its inputs renamed by the previous layer's
/// order (the first layer's inputs keep their labels).
fn relabelled_layers(net: &Network, order: &[Vec<usize>]) -> Vec<Csc> {
    let rank = ranks(order);
    net.layers()
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let mut indptr = Vec::with_capacity(layer.n_out() + 1);
            indptr.push(0);
            for &c in &order[k] {
                indptr.push(indptr[indptr.len() - 1] + layer.inputs(c).len());
            }
            let mut indices = vec![0 as Idx; layer.n_connections()];
            // Neurons in their own order (reading the layer in order), each to its new place.
            let columns = rank[k].iter().enumerate().map(|(c, &new)| {
                let new = new as usize;
                (c, indptr[new]..indptr[new + 1])
            });
            if k == 0 {
                // The inputs keep their labels: each neuron's list moves as it is.
                for (c, span) in columns {
                    indices[span].copy_from_slice(layer.inputs(c));
                }
            } else {
                let mut sorter = Sorter::new(layer.n_in());
                let (g, before) = (layer.group(), &rank[k - 1]);
                for (c, span) in columns {
                    let out = &mut indices[span];
                    let inputs = layer.inputs(c).iter();
                    if g == 1 {
                        sorter.sort_into(inputs.map(|&r| before[r as usize]), out);
                    } else {
                        sorter.sort_into(
                            inputs.map(|&r| {
                                let r = r as usize;
                                (before[r / g] as usize * g + r % g) as Idx
                            }),
                            out,
                        );
                    }
                }
            }
            (indptr, indices)
        })
        .collect()
}

/// Sorts lists of distinct labels below a bound: by a bitmap of the labels when the list is
/// long enough for reading the bitmap to cost less than sorting, otherwise by sorting.
struct Sorter {
    bits: Vec<u64>,
}

impl Sorter {
    fn new(bound: usize) -> Self {
        Sorter {
            bits: vec![0; bound.div_ceil(64)],
        }
    }

    /// Writes the distinct `labels`, as many as `out` is long, to `out` in increasing order.
    fn sort_into(&mut self, labels: impl Iterator<Item = Idx>, out: &mut [Idx]) {
        // Labels first, then (for long lists) bits: two simple loops run faster than one.
        for (slot, r) in out.iter_mut().zip(labels) {
            *slot = r;
        }
        if out.len() < self.bits.len() {
            out.sort_unstable();
            return;
        }
        for &r in out.iter() {
            self.bits[r as usize / 64] |= 1 << (r % 64);
        }
        let mut n = 0;
        for (w, word) in self.bits.iter_mut().enumerate() {
            let (mut rest, base) = (std::mem::take(word), (w * 64) as Idx);
            while rest != 0 {
                out[n] = base + rest.trailing_zeros() as Idx;
                n += 1;
                rest &= rest - 1;
            }
        }
    }
}

/// A layer as the canonical form reads it: `(n_in, group, indptr, indices)`.
type Parts<'l> = (usize, usize, &'l [usize], &'l [Idx]);

fn parts(net: &Network) -> Vec<Parts<'_>> {
    net.layers()
        .iter()
        .map(|l| (l.n_in(), l.group(), l.indptr(), l.indices()))
        .collect()
}

/// The parts of `net`'s layers relabelled as `layers`.
fn leaf_parts<'l>(net: &'l Network, layers: &'l [Csc]) -> Vec<Parts<'l>> {
    net.layers()
        .iter()
        .zip(layers)
        .map(|(l, (indptr, indices))| (l.n_in(), l.group(), &indptr[..], &indices[..]))
        .collect()
}

/// The canonical form of relabelled layers (see [`Parts`]): per
/// layer its shape, then each neuron's input count and inputs, item by item (compared
/// lazily, never stored: two networks that differ usually differ in the first neurons).
fn form<'l>(layers: &'l [Parts<'l>]) -> impl Iterator<Item = u32> + 'l {
    layers.iter().flat_map(|&(n_in, group, indptr, indices)| {
        let n_out = indptr.len() - 1;
        [n_out as u32, n_in as u32, group as u32]
            .into_iter()
            .chain((0..n_out).flat_map(move |c| {
                let inputs = &indices[indptr[c]..indptr[c + 1]];
                std::iter::once(inputs.len() as u32).chain(inputs.iter().copied())
            }))
    })
}

/// The network built from relabelled layers.
fn relabelled(net: &Network, layers: Vec<Csc>) -> Result<Network> {
    let layers = net
        .layers()
        .iter()
        .zip(layers)
        .map(|(layer, (indptr, indices))| {
            Layer::from_valid_csc(layer.n_in(), layer.group(), indptr, indices)
        })
        .collect();
    Network::new(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(layers: &[(usize, Vec<Vec<Idx>>)]) -> Network {
        Network::from_neuron_inputs(layers)
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
        assert_eq!(la.cmp_form(&lb), Ordering::Equal);
        assert_eq!(la.network, lb.network);
        // A different network has a different form.
        let c = net(&[
            (3, vec![vec![0], vec![1, 2], vec![2], vec![1]]),
            (4, vec![vec![0, 1], vec![2], vec![3, 1]]),
        ]);
        let lc = labelled(&c);
        assert_ne!(lc.cmp_form(&la), Ordering::Equal);
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

    #[test]
    fn relabelled_layers_rename_and_sort_inputs() {
        // Dense neurons (inputs sorted through a bitmap) and sparse ones, with groups.
        for (seed, groups, fill) in [(1, &[1, 1][..], 0.3), (2, &[1, 3, 2], 0.05)] {
            let net = crate::refine::tests::random_network(seed, groups, fill);
            let l = labelled(&net);
            let rank = ranks(&l.order);
            for (k, (layer, new)) in net.layers().iter().zip(l.network.layers()).enumerate() {
                assert_eq!((new.n_in(), new.group()), (layer.n_in(), layer.group()));
                let g = layer.group();
                for (c, &old) in l.order[k].iter().enumerate() {
                    let mut expected: Vec<Idx> = layer
                        .inputs(old)
                        .iter()
                        .map(|&r| match k {
                            0 => r,
                            _ => (rank[k - 1][r as usize / g] * g as Idx) + r % g as Idx,
                        })
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(new.inputs(c), &expected[..], "seed {seed} layer {k}");
                }
            }
        }
    }
}
