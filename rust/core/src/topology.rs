//! Binary sparse topologies: for each neuron of a layer, the sorted set of its inputs.

use crate::error::{Error, Result};

/// Index type of neurons and inputs. `u32` halves the memory of the index buffers; layers are
/// limited to `u32::MAX` neurons, inputs and connections.
pub type Idx = u32;

/// Average inputs per neuron from which [`Layer::relabel_inputs`] renames by a bucket pass
/// rather than renaming and sorting each neuron's list: measured on 784-input layers, sorting
/// wins below about 16 (1.5x at 8, even at 16), buckets above (1.2x at 32, 1.6x at 64, 2.3x
/// on a dense layer).
const BUCKETS_FROM_INPUTS_PER_NEURON: usize = 16;

/// One layer in compressed sparse column form: column `c` (a neuron) holds the rows (inputs)
/// `indices[indptr[c]..indptr[c + 1]]`, strictly increasing.
///
/// `group` inputs belong to each neuron of the previous layer: input `r` comes from neuron
/// `r / group` (1 for a dense layer; `kh * kw` for a convolution, whose inputs are (channel,
/// kernel position) pairs; `h * w` for a linear layer after flattening channel-major feature
/// maps). Renaming the previous layer's neurons moves their groups of inputs together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    n_in: usize,
    group: usize,
    indptr: Vec<usize>,
    indices: Vec<Idx>,
}

impl Layer {
    /// Builds a layer from CSC buffers, checking every invariant. `layer` only labels errors.
    pub fn from_csc(
        layer: usize,
        n_in: usize,
        n_out: usize,
        indptr: Vec<usize>,
        indices: Vec<Idx>,
    ) -> Result<Self> {
        let bad = |reason: String| Error::InvalidLayer { layer, reason };
        if n_in > Idx::MAX as usize
            || n_out > Idx::MAX as usize
            || indices.len() > Idx::MAX as usize
        {
            return Err(bad(format!(
                "shape ({n_in}, {n_out}) with {} connections exceeds the limit of {} per dimension",
                indices.len(),
                Idx::MAX
            )));
        }
        if indptr.len() != n_out + 1 {
            return Err(bad(format!(
                "indptr has {} entries, expected n_out + 1 = {}",
                indptr.len(),
                n_out + 1
            )));
        }
        if indptr[0] != 0 || indptr[n_out] != indices.len() {
            return Err(bad(format!(
                "indptr must run from 0 to the number of connections ({}), got {}..{}",
                indices.len(),
                indptr[0],
                indptr[n_out]
            )));
        }
        for c in 0..n_out {
            let (lo, hi) = (indptr[c], indptr[c + 1]);
            if lo > hi {
                return Err(bad(format!("indptr decreases at neuron {c}")));
            }
            let col = &indices[lo..hi];
            if let Some(&r) = col.iter().find(|&&r| r as usize >= n_in) {
                return Err(bad(format!(
                    "neuron {c} has input {r}, but the layer has {n_in} inputs"
                )));
            }
            if col.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(format!(
                    "inputs of neuron {c} are not strictly increasing"
                )));
            }
        }
        Ok(Layer {
            n_in,
            group: 1,
            indptr,
            indices,
        })
    }

    /// A layer from parts known to be valid (a valid layer's neurons renamed): `indptr` runs
    /// from 0 to `indices.len()` without decreasing, each neuron's inputs are strictly
    /// increasing and below `n_in`, and `group` divides `n_in`. Checked in debug builds only.
    pub(crate) fn from_valid_csc(
        n_in: usize,
        group: usize,
        indptr: Vec<usize>,
        indices: Vec<Idx>,
    ) -> Self {
        debug_assert!(
            Layer::from_csc(0, n_in, indptr.len() - 1, indptr.clone(), indices.clone())
                .and_then(|l| l.with_group(0, group))
                .is_ok()
        );
        Layer {
            n_in,
            group,
            indptr,
            indices,
        }
    }

    /// The CSC parts: neuron `c`'s inputs are `indices()[indptr()[c]..indptr()[c + 1]]`.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// See [`Layer::indptr`].
    pub fn indices(&self) -> &[Idx] {
        &self.indices
    }

    /// The same layer with `group` inputs per neuron of the previous layer.
    pub fn with_group(mut self, layer: usize, group: usize) -> Result<Self> {
        if group == 0 {
            return Err(Layer::group_refused(layer, &group));
        }
        if self.n_in % group != 0 {
            return Err(Error::InvalidLayer {
                layer,
                reason: format!("{} inputs do not split into groups of {group}", self.n_in),
            });
        }
        self.group = group;
        Ok(self)
    }

    /// The refusal of a group that is no positive number, `got` as the caller gave it (a
    /// binding passes negative values here too, so that every refusal reads the same).
    pub fn group_refused(layer: usize, got: &dyn std::fmt::Display) -> Error {
        Error::InvalidLayer {
            layer,
            reason: format!(
                "its inputs per neuron of the previous layer (its group) must be a positive \
                 number, got {got}"
            ),
        }
    }

    /// Inputs per neuron of the previous layer.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Builds a layer from per-neuron input lists (sorted and deduplicated here).
    pub fn from_neuron_inputs(layer: usize, n_in: usize, neurons: &[Vec<Idx>]) -> Result<Self> {
        let mut indptr = Vec::with_capacity(neurons.len() + 1);
        let mut indices = Vec::new();
        indptr.push(0);
        for inputs in neurons {
            let mut sorted = inputs.clone();
            sorted.sort_unstable();
            sorted.dedup();
            indices.extend_from_slice(&sorted);
            indptr.push(indices.len());
        }
        Layer::from_csc(layer, n_in, neurons.len(), indptr, indices)
    }

    pub fn n_in(&self) -> usize {
        self.n_in
    }

    pub fn n_out(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn n_connections(&self) -> usize {
        self.indices.len()
    }

    /// The sorted inputs of neuron `c`.
    pub fn inputs(&self, c: usize) -> &[Idx] {
        &self.indices[self.indptr[c]..self.indptr[c + 1]]
    }

    /// The same layer with the previous layer's neuron `p` renamed to `labels[p]`: input
    /// `p * group + q` becomes `labels[p] * group + q`. `labels` must be injective with values
    /// below `n_labels` (callers build it from a matching); the result has `n_labels * group`
    /// inputs.
    pub fn relabel_inputs(&self, labels: &[Idx], n_labels: usize) -> Layer {
        debug_assert_eq!(labels.len() * self.group, self.n_in);
        // Each old input's new name, computed once per input rather than per connection.
        let g = self.group;
        let renamed: Vec<Idx> = (0..self.n_in)
            .map(|r| (labels[r / g] as usize * g + r % g) as Idx)
            .collect();
        let indices = if self.indices.len() >= BUCKETS_FROM_INPUTS_PER_NEURON * self.n_out() {
            self.renamed_by_buckets(&renamed, n_labels * g)
        } else {
            self.renamed_then_sorted(&renamed)
        };
        Layer {
            n_in: n_labels * g,
            group: g,
            indptr: self.indptr.clone(),
            indices,
        }
    }

    /// The inputs renamed by `renamed` (old input -> new input), each neuron's list sorted
    /// again: cheapest when lists are short (a few comparisons each).
    fn renamed_then_sorted(&self, renamed: &[Idx]) -> Vec<Idx> {
        let mut indices: Vec<Idx> = self.indices.iter().map(|&r| renamed[r as usize]).collect();
        for c in 0..self.n_out() {
            indices[self.indptr[c]..self.indptr[c + 1]].sort_unstable();
        }
        indices
    }

    /// The inputs renamed by `renamed` (old input -> new input, below `n_in`) without sorting:
    /// transpose under the new names (new input -> its neurons), then walk the new inputs in
    /// increasing order appending each to its neurons, so every list comes out sorted. Linear
    /// in connections plus inputs: cheapest when lists are long.
    fn renamed_by_buckets(&self, renamed: &[Idx], n_in: usize) -> Vec<Idx> {
        let mut rowptr = vec![0usize; n_in + 1];
        for &r in &self.indices {
            rowptr[renamed[r as usize] as usize + 1] += 1;
        }
        for r in 0..n_in {
            rowptr[r + 1] += rowptr[r];
        }
        let mut cols = vec![0 as Idx; self.indices.len()];
        let mut fill = rowptr[..n_in].to_vec();
        for c in 0..self.n_out() {
            for &r in self.inputs(c) {
                let slot = &mut fill[renamed[r as usize] as usize];
                cols[*slot] = c as Idx;
                *slot += 1;
            }
        }
        // `fill` is reused as each neuron's next free slot in the output.
        fill.clear();
        fill.extend_from_slice(&self.indptr[..self.n_out()]);
        let mut indices = vec![0 as Idx; self.indices.len()];
        for r in 0..n_in {
            for &c in &cols[rowptr[r]..rowptr[r + 1]] {
                let slot = &mut fill[c as usize];
                indices[*slot] = r as Idx;
                *slot += 1;
            }
        }
        indices
    }

    /// Row-major view: for each input, the neurons it feeds (sorted).
    pub fn neurons_by_input(&self) -> (Vec<usize>, Vec<Idx>) {
        let mut rowptr = vec![0usize; self.n_in + 1];
        for &r in &self.indices {
            rowptr[r as usize + 1] += 1;
        }
        for r in 0..self.n_in {
            rowptr[r + 1] += rowptr[r];
        }
        let mut fill = rowptr.clone();
        let mut cols = vec![0 as Idx; self.indices.len()];
        for c in 0..self.n_out() {
            for &r in self.inputs(c) {
                cols[fill[r as usize]] = c as Idx;
                fill[r as usize] += 1;
            }
        }
        (rowptr, cols)
    }
}

/// A network: layers whose neuron counts chain into the next layer's input counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    layers: Vec<Layer>,
}

impl Network {
    /// A network from each layer's input count and per-neuron input lists (tests).
    #[cfg(test)]
    pub(crate) fn from_neuron_inputs(layers: &[(usize, Vec<Vec<Idx>>)]) -> Network {
        Network::new(
            layers
                .iter()
                .enumerate()
                .map(|(k, (n_in, cols))| Layer::from_neuron_inputs(k, *n_in, cols).unwrap())
                .collect(),
        )
        .unwrap()
    }

    pub fn new(layers: Vec<Layer>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::InvalidArgument(
                "a network needs at least one layer".into(),
            ));
        }
        for (k, pair) in layers.windows(2).enumerate() {
            let (n_out, n_in, group) = (pair[0].n_out(), pair[1].n_in(), pair[1].group());
            if n_out * group != n_in {
                let grouped = match group {
                    1 => String::new(),
                    g => format!(" in groups of {g}"),
                };
                return Err(Error::Mismatch(format!(
                    "layer {}: has {n_in} inputs{grouped} but layer {k} has {n_out} neurons \
                     (layers are (inputs, neurons); is one of them transposed?)",
                    k + 1
                )));
            }
        }
        Ok(Network { layers })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn depth(&self) -> usize {
        self.layers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unsorted_and_out_of_range_inputs() {
        assert!(Layer::from_csc(0, 3, 1, vec![0, 2], vec![2, 1]).is_err());
        assert!(Layer::from_csc(0, 3, 1, vec![0, 1], vec![3]).is_err());
        assert!(Layer::from_csc(0, 3, 2, vec![0, 1], vec![0]).is_err());
        assert!(Layer::from_csc(0, 3, 1, vec![0, 1], vec![2]).is_ok());
    }

    #[test]
    fn network_checks_the_chain_of_shapes() {
        let l0 = Layer::from_neuron_inputs(0, 4, &[vec![0], vec![1, 3]]).unwrap();
        let l1 = Layer::from_neuron_inputs(1, 3, &[vec![0]]).unwrap();
        let err = Network::new(vec![l0.clone(), l1]).unwrap_err();
        assert!(err.to_string().contains("layer 0 has 2 neurons"));
        let l1 = Layer::from_neuron_inputs(1, 2, &[vec![0, 1]]).unwrap();
        assert_eq!(Network::new(vec![l0, l1]).unwrap().depth(), 2);
    }

    #[test]
    fn grouped_inputs_move_together() {
        // Two previous neurons, groups of 3 inputs (say 3 kernel positions).
        let l = Layer::from_neuron_inputs(1, 6, &[vec![0, 4], vec![5]]).unwrap();
        let l = l.with_group(1, 3).unwrap();
        let r = l.relabel_inputs(&[1, 0], 2);
        assert_eq!(r.inputs(0), &[1, 3]);
        assert_eq!(r.inputs(1), &[2]);
        assert!(Layer::from_neuron_inputs(1, 6, &[vec![0]])
            .unwrap()
            .with_group(1, 4)
            .is_err());
    }

    /// The straightforward renaming: rename every input, then sort each neuron's list.
    fn relabel_then_sort(l: &Layer, labels: &[Idx], n_labels: usize) -> Layer {
        let g = l.group();
        let neurons: Vec<Vec<Idx>> = (0..l.n_out())
            .map(|c| {
                let mut v: Vec<Idx> = l
                    .inputs(c)
                    .iter()
                    .map(|&r| (labels[r as usize / g] as usize * g + r as usize % g) as Idx)
                    .collect();
                v.sort_unstable();
                v
            })
            .collect();
        Layer::from_neuron_inputs(0, n_labels * g, &neurons)
            .unwrap()
            .with_group(0, g)
            .unwrap()
    }

    #[test]
    fn relabel_equals_rename_then_sort_on_random_layers() {
        let mut next = crate::testing::numbers(23);
        for _ in 0..500 {
            let n_prev = next() % 12;
            let group = 1 + next() % 9; // 1: dense; more: kernel positions of a convolution
            let n_labels = n_prev + next() % 4;
            let n_out = next() % 10;
            let density = 1 + next() % 100;
            let n_in = n_prev * group;
            let neurons: Vec<Vec<Idx>> = (0..n_out)
                .map(|_| {
                    (0..n_in as Idx)
                        .filter(|_| next() % 100 < density)
                        .collect()
                })
                .collect();
            let l = Layer::from_neuron_inputs(0, n_in, &neurons)
                .unwrap()
                .with_group(0, group)
                .unwrap();
            // An injective renaming into 0..n_labels: a shuffle of all names, cut to n_prev.
            let mut names: Vec<Idx> = (0..n_labels as Idx).collect();
            for i in (1..names.len()).rev() {
                names.swap(i, next() % (i + 1));
            }
            names.truncate(n_prev);
            let expected = relabel_then_sort(&l, &names, n_labels);
            assert_eq!(l.relabel_inputs(&names, n_labels), expected);
            // Both constructions, whichever the layer's density picks.
            let renamed: Vec<Idx> = (0..n_in)
                .map(|r| (names[r / group] as usize * group + r % group) as Idx)
                .collect();
            assert_eq!(
                l.renamed_by_buckets(&renamed, n_labels * group),
                expected.indices
            );
            assert_eq!(l.renamed_then_sorted(&renamed), expected.indices);
        }
    }

    #[test]
    fn relabel_and_transpose() {
        let l = Layer::from_neuron_inputs(0, 3, &[vec![0, 2], vec![1]]).unwrap();
        let r = l.relabel_inputs(&[2, 0, 1], 3);
        assert_eq!(r.inputs(0), &[1, 2]);
        assert_eq!(r.inputs(1), &[0]);
        let (ptr, cols) = l.neurons_by_input();
        assert_eq!(ptr, vec![0, 1, 2, 3]);
        assert_eq!(cols, vec![0, 1, 0]);
    }
}
