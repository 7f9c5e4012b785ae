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

/// The hash of a multiset: sorted, then folded.
fn multiset(tag: u64, items: &mut [u64]) -> u64 {
    items.sort_unstable();
    items
        .iter()
        .fold(mix(tag ^ items.len() as u64), |h, &x| combine(h, x))
}

const INPUT: u64 = 0x1;
const LAYER: u64 = 0x2;
const FROM: u64 = 0x3;
const TO: u64 = 0x4;

/// The colour history of one network over `rounds` rounds of refinement.
pub fn colour_history(net: &Network, rounds: usize) -> History {
    let layers = net.layers();
    let inputs: Vec<u64> = (0..layers[0].n_in() as u64)
        .map(|r| combine(INPUT, r))
        .collect();
    let by_input: Vec<(Vec<usize>, Vec<u32>)> =
        layers.iter().map(|l| l.neurons_by_input()).collect();
    let mut current: Vec<Vec<u64>> = layers
        .iter()
        .enumerate()
        .map(|(k, l)| vec![combine(LAYER, k as u64); l.n_out()])
        .collect();
    let mut history = vec![current.clone()];
    let mut items = Vec::new();
    for _ in 0..rounds {
        let mut next = current.clone();
        for (k, layer) in layers.iter().enumerate() {
            let g = layer.group();
            for (i, colour) in next[k].iter_mut().enumerate() {
                items.clear();
                items.extend(layer.inputs(i).iter().map(|&r| {
                    let r = r as usize;
                    if k == 0 {
                        inputs[r]
                    } else {
                        combine(current[k - 1][r / g], (r % g) as u64)
                    }
                }));
                let from = multiset(FROM, &mut items);
                items.clear();
                if let Some(after) = layers.get(k + 1) {
                    let (rowptr, cols) = &by_input[k + 1];
                    let ga = after.group();
                    for q in 0..ga {
                        let r = i * ga + q;
                        for &c in &cols[rowptr[r]..rowptr[r + 1]] {
                            items.push(combine(current[k + 1][c as usize], q as u64));
                        }
                    }
                }
                let to = multiset(TO, &mut items);
                *colour = combine(combine(current[k][i], from), to);
            }
        }
        current = next;
        history.push(current.clone());
    }
    history
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
