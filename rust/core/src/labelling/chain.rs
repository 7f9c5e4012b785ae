//! A chain of layers as the search reads it ([`Structure`]): one cell per layer, the input
//! features fixed, connections from each layer's neurons to the next layer's.

use super::*;

impl Structure for Chain<'_> {
    /// For each layer but the last, the next layer's connections by input (see
    /// [`Layer::neurons_by_input`]).
    type Links = Vec<(Vec<usize>, Vec<Idx>)>;
    /// Every layer relabelled.
    type Form = Vec<Csc>;

    fn cell_sizes(&self) -> Vec<usize> {
        self.net.layers().iter().map(Layer::n_out).collect()
    }

    fn cell_name(&self, k: usize) -> String {
        format!("layer {k}")
    }

    fn refine_to_stable(&self, colours: &mut Vec<Vec<u64>>) {
        self.refiner.refine_to_stable(colours);
    }

    fn twin_classes(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
        twin_classes(self.net, colours)
    }

    fn links(&self) -> Self::Links {
        self.net.layers()[1..]
            .iter()
            .map(Layer::neurons_by_input)
            .collect()
    }

    /// Tags: kernel position * 2 + direction; its inputs from the previous layer (direction 0)
    /// and the neurons it feeds (1).
    fn neighbours<'n>(
        &'n self,
        outgoing: &'n Self::Links,
        offsets: &'n [usize],
        k: usize,
        i: usize,
    ) -> impl Iterator<Item = (u32, u32)> + 'n {
        let layers = self.net.layers();
        let inputs = (k > 0).then(|| {
            let g = layers[k].group();
            let before = offsets[k - 1];
            layers[k].inputs(i).iter().map(move |&r| {
                (
                    (before + r as usize / g) as u32,
                    (r as usize % g) as u32 * 2,
                )
            })
        });
        let outputs = outgoing.get(k).map(|(rowptr, cols)| {
            let g = layers[k + 1].group();
            let after = offsets[k + 1];
            (0..g).flat_map(move |q| {
                let r = i * g + q;
                cols[rowptr[r]..rowptr[r + 1]]
                    .iter()
                    .map(move |&c| ((after + c as usize) as u32, q as u32 * 2 + 1))
            })
        });
        inputs
            .into_iter()
            .flatten()
            .chain(outputs.into_iter().flatten())
    }

    /// Every neuron `gamma` moves, and every neuron fed by one, has as inputs the images of its
    /// inputs (input features stay).
    fn is_automorphism(
        &self,
        outgoing: &Self::Links,
        offsets: &[usize],
        image: &mut [u32],
        gamma: &Permutation,
    ) -> bool {
        let neuron = |v: u32| {
            let v = v as usize;
            let k = offsets.partition_point(|&o| o <= v) - 1;
            (k, v - offsets[k])
        };
        for &(v, to) in gamma {
            image[v as usize] = to;
        }
        let mut check: Vec<u32> = Vec::new();
        for &(v, _) in gamma {
            check.push(v);
            let (k, i) = neuron(v);
            check.extend(
                self.neighbours(outgoing, offsets, k, i)
                    .filter(|&(_, tag)| tag % 2 == 1)
                    .map(|(u, _)| u),
            );
        }
        check.sort_unstable();
        check.dedup();
        let layers = self.net.layers();
        let mut mapped: Vec<Idx> = Vec::new();
        let holds = check.iter().all(|&y| {
            let (k, i) = neuron(y);
            let (k2, j) = neuron(image[y as usize]);
            if k2 != k {
                return false;
            }
            let layer = &layers[k];
            if k == 0 {
                return layer.inputs(i) == layer.inputs(j);
            }
            let (g, before) = (layer.group(), offsets[k - 1]);
            mapped.clear();
            mapped.extend(layer.inputs(i).iter().map(|&r| {
                let (p, q) = (r as usize / g, r as usize % g);
                ((image[before + p] as usize - before) * g + q) as Idx
            }));
            mapped.sort_unstable();
            mapped == layer.inputs(j)
        });
        for &(v, _) in gamma {
            image[v as usize] = v;
        }
        holds
    }

    fn leaf_order(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
        colours.iter().map(|cell| by_colour(cell)).collect()
    }

    fn relabel(&self, order: &[Vec<usize>]) -> Self::Form {
        relabelled_layers(self.net, order)
    }

    fn cmp_forms(&self, a: &Self::Form, b: &Self::Form) -> Ordering {
        let (mine, theirs) = (leaf_parts(self.net, a), leaf_parts(self.net, b));
        form(&mine).cmp(form(&theirs))
    }
}

/// A cell's vertices ordered by colour, ties (twins) by index.
pub(super) fn by_colour(colours: &[u64]) -> Vec<usize> {
    // (colour, vertex) pairs are distinct: an unstable sort gives the one order.
    let mut keyed: Vec<(u64, usize)> = colours.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}
