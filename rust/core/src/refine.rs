//! Structural colours of neurons (Weisfeiler-Lehman colour refinement), for the canonical mode.
//!
//! Input features keep their labels (they are the same in every network). Every hidden and output
//! neuron starts with the colour of its layer and is then refined, round by round, by the
//! multisets of the colours of its inputs and of the neurons it feeds (with the kernel position
//! of each connection for convolutions). Colours are deterministic 64-bit hashes of structure
//! alone, so they compare across networks and do not depend on how neurons are numbered: a
//! neuron and its image in a relabelled copy get the same colour in every round.

use crate::topology::Network;

/// Colours by round: `colours[t][k][i]` for neuron `i` of layer `k` after `t` rounds.
pub type History = Vec<Vec<Vec<u64>>>;

/// A strong 64-bit mixer (SplitMix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn combine(seed: u64, value: u64) -> u64 {
    mix(seed ^ mix(value).wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// The hash of a multiset from the wrapping sum of its mixed items (independent of their
/// order, so no sorting) and its size.
fn multiset(tag: u64, sum: u64, len: usize) -> u64 {
    combine(mix(tag ^ len as u64), sum)
}

const INPUT: u64 = 0x1;
const LAYER: u64 = 0x2;
const FROM: u64 = 0x3;
const TO: u64 = 0x4;
const INDIVIDUAL: u64 = 0x5;

/// One network's structure as colour refinement reads it.
pub(crate) struct Refiner<'a> {
    net: &'a Network,
    /// For each layer after the first, its inputs' lists of the neurons they feed (the first
    /// layer's are never read: its inputs are features, which feed no colour).
    by_input: Vec<(Vec<usize>, Vec<u32>)>,
    /// The multiset hash of each first-layer neuron's inputs: the same in every round, as the
    /// input features keep their colours.
    first_from: Vec<u64>,
}

impl<'a> Refiner<'a> {
    pub(crate) fn new(net: &'a Network) -> Self {
        let layers = net.layers();
        // The input features' colours are their fixed labels.
        let items: Vec<u64> = (0..layers[0].n_in() as u64)
            .map(|r| mix(combine(INPUT, r)))
            .collect();
        let first_from = (0..layers[0].n_out())
            .map(|i| from_multiset(&items, layers[0].inputs(i)))
            .collect();
        Refiner {
            net,
            by_input: std::iter::once((Vec::new(), Vec::new()))
                .chain(layers[1..].iter().map(|l| l.neurons_by_input()))
                .collect(),
            first_from,
        }
    }

    /// For layer `k >= 1`, the neurons that each of its inputs feeds (CSR over inputs).
    pub(crate) fn by_input(&self, k: usize) -> (&[usize], &[u32]) {
        debug_assert!(k >= 1, "the first layer's lists are not kept");
        let (rowptr, cols) = &self.by_input[k];
        (rowptr, cols)
    }

    /// Every neuron's starting colour: its layer's.
    pub(crate) fn initial(&self) -> Vec<Vec<u64>> {
        self.net
            .layers()
            .iter()
            .enumerate()
            .map(|(k, l)| vec![combine(LAYER, k as u64); l.n_out()])
            .collect()
    }

    /// One round: each neuron's colour combined with the multisets of its inputs' colours and
    /// of the colours of the neurons it feeds (with kernel positions). Neurons with different
    /// colours keep different colours (the old colour is part of the new one).
    pub(crate) fn round(&self, current: &[Vec<u64>]) -> Vec<Vec<u64>> {
        let layers = self.net.layers();
        // Each multiset item, mixed once per round: layer k's input r (a neuron of layer k - 1
        // at a kernel position) and, for the neurons it feeds, input r of layer k + 1.
        let items: Vec<Vec<u64>> = layers
            .iter()
            .enumerate()
            .map(|(k, layer)| {
                if k == 0 {
                    return Vec::new(); // the first layer's multisets are `first_from`
                }
                let g = layer.group();
                (0..layer.n_in())
                    .map(|r| mix(combine(current[k - 1][r / g], (r % g) as u64)))
                    .collect()
            })
            .collect();
        let fed: Vec<Vec<u64>> = layers
            .iter()
            .zip(current)
            .map(|(layer, colours)| {
                let g = layer.group();
                let mut out = Vec::with_capacity(colours.len() * g);
                for &c in colours {
                    out.extend((0..g).map(|q| mix(combine(c, q as u64))));
                }
                out
            })
            .collect();
        let mut next = current.to_vec();
        for (k, layer) in layers.iter().enumerate() {
            let after = layers
                .get(k + 1)
                .map(|l| (l.group(), &self.by_input[k + 1]));
            for (i, colour) in next[k].iter_mut().enumerate() {
                let from = if k == 0 {
                    self.first_from[i]
                } else {
                    from_multiset(&items[k], layer.inputs(i))
                };
                let to = match after {
                    None => multiset(TO, 0, 0),
                    Some((ga, (rowptr, cols))) => {
                        let (mut sum, mut len) = (0u64, 0usize);
                        for q in 0..ga {
                            let r = i * ga + q;
                            let span = &cols[rowptr[r]..rowptr[r + 1]];
                            len += span.len();
                            sum = span
                                .iter()
                                .fold(sum, |s, &c| s.wrapping_add(fed[k + 1][c as usize * ga + q]));
                        }
                        multiset(TO, sum, len)
                    }
                };
                *colour = combine(combine(current[k][i], from), to);
            }
        }
        next
    }

    /// Rounds until the partition into colour classes stops splitting (the coarsest equitable
    /// partition finer than `colours`), in place.
    pub(crate) fn refine_to_stable(&self, colours: &mut Vec<Vec<u64>>) {
        let mut classes = class_count(colours);
        loop {
            let next = self.round(colours);
            let after = class_count(&next);
            *colours = next;
            if after == classes {
                return;
            }
            classes = after;
        }
    }
}

/// The hash of the multiset of `items` over a neuron's `inputs`.
fn from_multiset(items: &[u64], inputs: &[u32]) -> u64 {
    let sum = inputs
        .iter()
        .fold(0u64, |s, &r| s.wrapping_add(items[r as usize]));
    multiset(FROM, sum, inputs.len())
}

/// The number of colour classes over all layers.
fn class_count(colours: &[Vec<u64>]) -> usize {
    colours
        .iter()
        .map(|layer| {
            let mut sorted = layer.clone();
            sorted.sort_unstable();
            sorted.dedup();
            sorted.len()
        })
        .sum()
}

/// A neuron singled out in the search for a canonical labelling: its colour, marked.
pub(crate) fn individualised(colour: u64) -> u64 {
    combine(colour, INDIVIDUAL)
}

/// The colour history of one network over `rounds` rounds of refinement.
pub fn colour_history(net: &Network, rounds: usize) -> History {
    Refiner::new(net).history(rounds)
}

impl Refiner<'_> {
    /// [`colour_history`] with this refiner.
    pub(crate) fn history(&self, rounds: usize) -> History {
        let refiner = self;
        let mut current = refiner.initial();
        let mut history = vec![current.clone()];
        for _ in 0..rounds {
            current = refiner.round(&current);
            history.push(current.clone());
        }
        history
    }
}

/// For how many rounds neuron `i` of `a` and neuron `j` of `b` (layer `k`) had equal colours
/// (0 ..= rounds; round 0 always agrees).
pub fn agreement(a: &History, b: &History, k: usize, i: usize, j: usize) -> usize {
    (0..a.len())
        .take_while(|&t| a[t][k][i] == b[t][k][j])
        .count()
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Layer;

    fn net(l0: &[Vec<u32>], l1: &[Vec<u32>]) -> Network {
        Network::new(vec![
            Layer::from_neuron_inputs(0, 4, l0).unwrap(),
            Layer::from_neuron_inputs(1, l0.len(), l1).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn relabelled_copies_get_the_same_colours() {
        let a = net(&[vec![0, 1], vec![0, 1], vec![3]], &[vec![0], vec![1, 2]]);
        // Hidden neurons renamed 0->2, 1->0, 2->1 (inputs of layer 1 renamed to match).
        let b = net(&[vec![0, 1], vec![3], vec![0, 1]], &[vec![2], vec![0, 1]]);
        let (ha, hb) = (colour_history(&a, 3), colour_history(&b, 3));
        assert_eq!(agreement(&ha, &hb, 0, 0, 2), 3);
        assert_eq!(agreement(&ha, &hb, 0, 1, 0), 3);
        // Hidden 0 and 1 of A have the same inputs but feed different neurons.
        assert_eq!(agreement(&ha, &ha, 0, 0, 1), 1);
        assert_eq!(agreement(&ha, &hb, 0, 2, 1), 3);
    }
}
