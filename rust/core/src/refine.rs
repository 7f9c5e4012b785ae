//! Structural colours of neurons (Weisfeiler-Lehman colour refinement), for the canonical mode.
//!
//! Input features keep their labels (they are the same in every network). Every hidden and output
//! neuron starts with the colour of its layer and is then refined, round by round, by the
//! multisets of the colours of its inputs and of the neurons it feeds (with the kernel position
//! of each connection for convolutions). Colours are deterministic 64-bit hashes of structure
//! alone, so they compare across networks and do not depend on how neurons are numbered: a
//! neuron and its image in a relabelled copy get the same colour in every round.

use crate::topology::{Layer, Network};

/// Colours by round: `colours[t][k][i]` for neuron `i` of layer `k` after `t` rounds.
pub type History = Vec<Vec<Vec<u64>>>;

/// A strong 64-bit mixer (SplitMix64's finaliser).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub(crate) fn combine(seed: u64, value: u64) -> u64 {
    combine_keyed(seed, key(value))
}

/// `value`'s part of [`combine`], for values combined with many seeds (computed once).
pub(crate) fn key(value: u64) -> u64 {
    mix(value).wrapping_add(0x9e37_79b9_7f4a_7c15)
}

/// [`combine`] of `seed` with the value whose [`key`] is `key`.
pub(crate) fn combine_keyed(seed: u64, key: u64) -> u64 {
    mix(seed ^ key)
}

/// The hash of a multiset from the wrapping sum of its mixed items (independent of their
/// order, so no sorting) and its size.
pub(crate) fn multiset(tag: u64, sum: u64, len: usize) -> u64 {
    combine(mix(tag ^ len as u64), sum)
}

pub(crate) const INPUT: u64 = 0x1;
pub(crate) const LAYER: u64 = 0x2;
pub(crate) const FROM: u64 = 0x3;
pub(crate) const TO: u64 = 0x4;
const INDIVIDUAL: u64 = 0x5;
const MARKED: u64 = 0x6;
/// The starting colours of a graph's head vertices (`crate::labelling::graph`; a group's units
/// start as a layer's neurons do) and the colour of a fixed unit (which keeps it).
pub(crate) const HEAD: u64 = 0x8;
pub(crate) const FIXED: u64 = 0x9;

/// One network's structure as colour refinement reads it.
pub(crate) struct Refiner<'a> {
    net: &'a Network,
    /// For each layer but the last, how many connections each neuron feeds (the size of its
    /// multiset of neurons fed, the same in every round).
    fed_counts: Vec<Vec<usize>>,
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
        let fed_counts = layers
            .windows(2)
            .map(|pair| {
                let (layer, after) = (&pair[0], &pair[1]);
                let g = after.group();
                let mut counts = vec![0usize; layer.n_out()];
                if g == 1 {
                    for &r in after.indices() {
                        counts[r as usize] += 1;
                    }
                } else {
                    for &r in after.indices() {
                        counts[r as usize / g] += 1;
                    }
                }
                counts
            })
            .collect();
        Refiner {
            net,
            fed_counts,
            first_from,
        }
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
        // One pass over each layer k >= 1's connections gives both multisets it holds: its
        // neurons' inputs (gathered) and, for layer k - 1's neurons, the neurons they feed
        // (scattered: a wrapping sum does not depend on the order of its terms).
        let mut from: Vec<Vec<u64>> = Vec::with_capacity(layers.len());
        let mut to: Vec<Vec<u64>> = Vec::with_capacity(layers.len());
        from.push(Vec::new()); // the first layer's multisets are `first_from`
        for (k, layer) in layers.iter().enumerate().skip(1) {
            let (before, colours) = (&current[k - 1], &current[k]);
            let (f, t) = if layer.group() == 1 && uniform(before) && uniform(colours) {
                uniform_sums(layer, before, colours, &self.fed_counts[k - 1])
            } else {
                connection_sums(layer, before, colours)
            };
            from.push(f);
            to.push(t);
        }
        to.push(Vec::new()); // the last layer feeds nothing
        let last = layers.len() - 1;
        current
            .iter()
            .enumerate()
            .map(|(k, colours)| {
                let layer = &layers[k];
                colours
                    .iter()
                    .enumerate()
                    .map(|(i, &colour)| {
                        let from = if k == 0 {
                            self.first_from[i]
                        } else {
                            multiset(FROM, from[k][i], layer.inputs(i).len())
                        };
                        let to = if k == last {
                            multiset(TO, 0, 0)
                        } else {
                            multiset(TO, to[k][i], self.fed_counts[k][i])
                        };
                        combine(combine(colour, from), to)
                    })
                    .collect()
            })
            .collect()
    }

    /// Rounds until the partition into colour classes stops splitting (the coarsest equitable
    /// partition finer than `colours`), in place.
    pub(crate) fn refine_to_stable(&self, colours: &mut Vec<Vec<u64>>) {
        until_stable(colours, |current| self.round(current));
    }
}

/// Whether all `colours` are equal (as in every layer before the first round).
fn uniform(colours: &[u64]) -> bool {
    colours.windows(2).all(|w| w[0] == w[1])
}

/// [`connection_sums`] for a layer of group 1 whose neurons, and those of the layer before, all
/// have one colour, without reading the connections: every item of a sum is the same, and a
/// wrapping sum of `n` equal items is `n` times the item. `fed_counts` are the numbers of
/// connections each neuron of the layer before feeds.
fn uniform_sums(
    layer: &Layer,
    before: &[u64],
    colours: &[u64],
    fed_counts: &[usize],
) -> (Vec<u64>, Vec<u64>) {
    let item = before.first().map_or(0, |&c| mix(combine(c, 0)));
    let fed = colours.first().map_or(0, |&c| mix(combine(c, 0)));
    let from = (0..layer.n_out())
        .map(|c| (layer.inputs(c).len() as u64).wrapping_mul(item))
        .collect();
    let to = fed_counts
        .iter()
        .map(|&n| (n as u64).wrapping_mul(fed))
        .collect();
    (from, to)
}

/// For layer `layer` (not the first), with `before` the colours of the previous layer's neurons
/// and `colours` its own: the wrapping sum of each neuron's mixed input items, and for each
/// neuron of the previous layer the wrapping sum of the mixed items of the neurons it feeds
/// (each a neuron's colour at the kernel position of the connection).
fn connection_sums(layer: &Layer, before: &[u64], colours: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let g = layer.group();
    let mut from = vec![0u64; layer.n_out()];
    let mut to = vec![0u64; before.len()];
    if g == 1 {
        let items: Vec<u64> = before.iter().map(|&c| mix(combine(c, 0))).collect();
        for (c, (sum, &colour)) in from.iter_mut().zip(colours).enumerate() {
            let fed = mix(combine(colour, 0));
            let mut s = 0u64;
            for &r in layer.inputs(c) {
                s = s.wrapping_add(items[r as usize]);
                let t = &mut to[r as usize];
                *t = t.wrapping_add(fed);
            }
            *sum = s;
        }
    } else {
        let items: Vec<u64> = (0..layer.n_in())
            .map(|r| mix(combine(before[r / g], (r % g) as u64)))
            .collect();
        let mut fed = vec![0u64; g];
        for (c, (sum, &colour)) in from.iter_mut().zip(colours).enumerate() {
            for (q, f) in fed.iter_mut().enumerate() {
                *f = mix(combine(colour, q as u64));
            }
            let mut s = 0u64;
            for &r in layer.inputs(c) {
                let r = r as usize;
                s = s.wrapping_add(items[r]);
                let t = &mut to[r / g];
                *t = t.wrapping_add(fed[r % g]);
            }
            *sum = s;
        }
    }
    (from, to)
}

/// The hash of the multiset of `items` over a neuron's `inputs`.
fn from_multiset(items: &[u64], inputs: &[u32]) -> u64 {
    let sum = inputs
        .iter()
        .fold(0u64, |s, &r| s.wrapping_add(items[r as usize]));
    multiset(FROM, sum, inputs.len())
}

/// Applies `round` to `colours` until the number of colour classes stops growing: a round
/// only splits classes, so an unchanged count means a stable partition. Shared by the chain's
/// refiner and the graph structure, whose rounds differ but whose stopping rule is this one.
pub(crate) fn until_stable(
    colours: &mut Vec<Vec<u64>>,
    round: impl Fn(&[Vec<u64>]) -> Vec<Vec<u64>>,
) {
    let mut classes = class_count(colours);
    loop {
        let next = round(colours);
        let after = class_count(&next);
        *colours = next;
        if after == classes {
            return;
        }
        classes = after;
    }
}

/// The number of colour classes over all layers.
pub(crate) fn class_count(colours: &[Vec<u64>]) -> usize {
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

/// The `mark`-th of several neurons singled out at once (one per interchangeable piece of the
/// network, `crate::labelling`): its colour, marked with its number.
pub(crate) fn marked(colour: u64, mark: usize) -> u64 {
    combine(combine(colour, MARKED), mark as u64)
}

/// The colour history of one network over `rounds` rounds of refinement.
pub fn colour_history(net: &Network, rounds: usize) -> History {
    Refiner::new(net).history(rounds)
}

impl Refiner<'_> {
    /// [`colour_history`] with this refiner.
    pub(crate) fn history(&self, rounds: usize) -> History {
        let mut history = Vec::with_capacity(rounds + 1);
        history.push(self.initial());
        for t in 0..rounds {
            let next = self.round(&history[t]);
            history.push(next);
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
pub(crate) mod tests {
    use super::*;
    use crate::topology::Idx;

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

    /// A network of `depth` layers with the given groups, neurons whose inputs are drawn with
    /// probability `fill` (some dense enough to be read as bitmaps elsewhere), from a seed.
    pub(crate) fn random_network(seed: u64, groups: &[usize], fill: f64) -> Network {
        let mut next = crate::testing::numbers(seed);
        let mut n_prev = 5;
        let layers = groups
            .iter()
            .enumerate()
            .map(|(k, &g)| {
                let n_in = n_prev * g;
                let n_out = 3 + next() % 150;
                let neurons: Vec<Vec<Idx>> = (0..n_out)
                    .map(|_| {
                        (0..n_in as Idx)
                            .filter(|_| (next() % 1000) as f64 / 1000.0 < fill)
                            .collect()
                    })
                    .collect();
                n_prev = n_out;
                Layer::from_neuron_inputs(k, n_in, &neurons)
                    .unwrap()
                    .with_group(k, g)
                    .unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    /// One round as the module documentation defines it, neuron by neuron: each neuron's
    /// multisets listed from every connection of its layer and of the next.
    fn reference_round(net: &Network, current: &[Vec<u64>]) -> Vec<Vec<u64>> {
        let layers = net.layers();
        let input = |k: usize, r: usize| {
            if k == 0 {
                mix(combine(INPUT, r as u64))
            } else {
                let g = layers[k].group();
                mix(combine(current[k - 1][r / g], (r % g) as u64))
            }
        };
        (0..layers.len())
            .map(|k| {
                (0..layers[k].n_out())
                    .map(|i| {
                        let inputs = layers[k].inputs(i);
                        let sum = inputs
                            .iter()
                            .fold(0u64, |s, &r| s.wrapping_add(input(k, r as usize)));
                        let from = multiset(FROM, sum, inputs.len());
                        let (mut sum, mut len) = (0u64, 0usize);
                        if let Some(after) = layers.get(k + 1) {
                            let g = after.group();
                            for (c, &colour) in current[k + 1].iter().enumerate() {
                                for &r in after.inputs(c) {
                                    let r = r as usize;
                                    if r / g == i {
                                        let item = mix(combine(colour, (r % g) as u64));
                                        sum = sum.wrapping_add(item);
                                        len += 1;
                                    }
                                }
                            }
                        }
                        let to = multiset(TO, sum, len);
                        combine(combine(current[k][i], from), to)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rounds_match_their_definition() {
        for (seed, groups, fill) in [
            (1, &[1, 1][..], 0.3),
            (2, &[1, 3, 1], 0.05),
            (3, &[1, 1, 4], 0.5),
            (4, &[1], 0.2),
            (5, &[1, 2, 1, 1], 0.01),
        ] {
            let net = random_network(seed, groups, fill);
            let refiner = Refiner::new(&net);
            // From the layers' colours (the first round reads no connection), then onwards.
            let mut colours = refiner.initial();
            for _ in 0..3 {
                let next = refiner.round(&colours);
                assert_eq!(next, reference_round(&net, &colours), "seed {seed}");
                colours = next;
            }
        }
    }
}
