//! A leaf's relabelled network and its *form*, the flat list of numbers leaves are compared by.

use super::*;

/// Each layer's new label of each neuron: the inverse of `order[k]`.
pub(super) fn ranks(order: &[Vec<usize>]) -> Vec<Vec<Idx>> {
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
pub(super) fn relabelled_layers(net: &Network, order: &[Vec<usize>]) -> Vec<Csc> {
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
pub(super) struct Sorter {
    pub(super) bits: Vec<u64>,
}

impl Sorter {
    pub(super) fn new(bound: usize) -> Self {
        Sorter {
            bits: vec![0; bound.div_ceil(64)],
        }
    }

    /// Writes the distinct `labels`, as many as `out` is long, to `out` in increasing order.
    pub(super) fn sort_into(&mut self, labels: impl Iterator<Item = Idx>, out: &mut [Idx]) {
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
pub(super) type Parts<'l> = (usize, usize, &'l [usize], &'l [Idx]);

pub(super) fn parts(net: &Network) -> Vec<Parts<'_>> {
    net.layers()
        .iter()
        .map(|l| (l.n_in(), l.group(), l.indptr(), l.indices()))
        .collect()
}

/// The parts of `net`'s layers relabelled as `layers`.
pub(super) fn leaf_parts<'l>(net: &'l Network, layers: &'l [Csc]) -> Vec<Parts<'l>> {
    net.layers()
        .iter()
        .zip(layers)
        .map(|(l, (indptr, indices))| (l.n_in(), l.group(), &indptr[..], &indices[..]))
        .collect()
}

/// The canonical form of relabelled layers (see [`Parts`]): per
/// layer its shape, then each neuron's input count and inputs, item by item (compared
/// lazily, never stored: two networks that differ usually differ in the first neurons).
pub(super) fn form<'l>(layers: &'l [Parts<'l>]) -> impl Iterator<Item = u32> + 'l {
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
pub(super) fn relabelled(net: &Network, layers: Vec<Csc>) -> Result<Network> {
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
