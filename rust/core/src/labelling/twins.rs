//! Twins: neurons with the same inputs and the same outgoing connections (swapping two changes
//! nothing), found by hashing connections.

use super::*;

/// `twins[k][i]`: the lowest-numbered neuron of layer `k` with exactly neuron `i`'s inputs and
/// exactly its outgoing connections (kernel positions included). Twins always share a colour,
/// so only neurons of equal colour in `colours` are compared (and a layer's outgoing
/// connections are listed only if some do).
pub(super) fn twin_classes(net: &Network, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
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
            // Neurons of a class by their connections (a class can hold thousands of neurons
            // that are not twins: compared by hashing, not pair by pair), in increasing order,
            // so the first of each set of twins is its lowest-numbered.
            for class in shared {
                let mut first: HashMap<Connections, usize> = HashMap::new();
                for &(_, i) in class {
                    twin[i] = *first
                        .entry((layer.inputs(i), outputs(i).collect()))
                        .or_insert(i);
                }
            }
            twin
        })
        .collect()
}
