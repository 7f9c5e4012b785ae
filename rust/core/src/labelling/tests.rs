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

/// A network of the given widths with `connections` distinct connections per layer at
/// random places (most neurons have none: the issue's pruned networks).
pub(crate) fn sparse_network(seed: u64, widths: &[usize], connections: usize) -> Network {
    let mut next = crate::testing::numbers(seed);
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let (n_in, n_out) = (w[0], w[1]);
            let mut neurons = vec![Vec::new(); n_out];
            let mut placed = 0;
            while placed < connections.min(n_in * n_out) {
                let (r, c) = (next() % n_in, next() % n_out);
                if !neurons[c].contains(&(r as Idx)) {
                    neurons[c].push(r as Idx);
                    placed += 1;
                }
            }
            for inputs in &mut neurons {
                inputs.sort_unstable();
            }
            Layer::from_neuron_inputs(k, n_in, &neurons).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

/// `net` with every layer's neurons (outputs included) renamed at random, from a seed.
pub(crate) fn shuffled(net: &Network, seed: u64) -> Network {
    let mut next = crate::testing::numbers(seed);
    let layers = net.layers();
    let perms: Vec<Vec<usize>> = layers
        .iter()
        .map(|l| {
            let mut p: Vec<usize> = (0..l.n_out()).collect();
            for i in (1..p.len()).rev() {
                p.swap(i, next() % (i + 1));
            }
            p
        })
        .collect();
    let renamed = layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let g = l.group();
            let mut neurons = vec![Vec::new(); l.n_out()];
            for c in 0..l.n_out() {
                let mut inputs: Vec<Idx> = l
                    .inputs(c)
                    .iter()
                    .map(|&r| match k {
                        0 => r,
                        _ => (perms[k - 1][r as usize / g] * g + r as usize % g) as Idx,
                    })
                    .collect();
                inputs.sort_unstable();
                neurons[perms[k][c]] = inputs;
            }
            Layer::from_neuron_inputs(k, l.n_in(), &neurons)
                .unwrap()
                .with_group(k, g)
                .unwrap()
        })
        .collect();
    Network::new(renamed).unwrap()
}

#[test]
fn interchangeable_pairs_of_neurons_are_labelled() {
    // Twelve hidden neurons without inputs, each feeding its own output neuron: 12!
    // equivalent leaves, beyond any search without automorphism pruning.
    let mut hidden = vec![Vec::new(); 12];
    hidden[0] = vec![0];
    let outputs: Vec<Vec<Idx>> = (0..12).map(|i| vec![i as Idx]).collect();
    let a = net(&[(3, hidden), (12, outputs)]);
    let b = shuffled(&a, 7);
    assert_eq!(labelled(&a).network, labelled(&b).network);
}

#[test]
fn a_search_past_its_limit_names_the_layer() {
    // Without automorphism pruning (and its limit), twelve interchangeable pairs are refused.
    let hidden = vec![Vec::new(); 12];
    let outputs: Vec<Vec<Idx>> = (0..12).map(|i| vec![i as Idx]).collect();
    let a = net(&[(3, hidden), (12, outputs)]);
    let refiner = Refiner::new(&a);
    let refused = label_with(
        &refiner,
        &a,
        refiner.initial(),
        &Cancel::new(),
        Pruning::Twins,
    );
    let message = refused.map(|_| ()).unwrap_err().to_string();
    assert!(message.starts_with("layer 0: the canonical labelling needs more than 16384"));
}

#[test]
fn a_cancelled_search_stops() {
    let a = sparse_network(2, &[784, 300, 100, 10], 70);
    let refiner = Refiner::new(&a);
    let cancel = Cancel::new();
    cancel.cancel();
    let result = label(&refiner, &a, refiner.initial(), &cancel);
    assert_eq!(result.map(|_| ()), Err(Error::Interrupted));
}

#[test]
fn very_sparse_networks_of_the_issue_are_labelled() {
    for (seed, widths, connections) in [
        (1, &[64, 64, 64, 64][..], 13),
        (2, &[784, 300, 100, 10], 70),
        (3, &[1000, 1000, 1000], 250),
    ] {
        let a = sparse_network(seed, widths, connections);
        let b = shuffled(&a, seed + 100);
        assert_eq!(labelled(&a).network, labelled(&b).network, "seed {seed}");
    }
}

/// A small network from one of the symmetric families, from a seed: layers without
/// connections, complete bipartite layers, disjoint copies of one block (reading the same
/// inputs), neurons without inputs feeding one neuron each, or tiny random layers.
/// `large`: many copies or pairs (8 and more: beyond any search without pruning).
pub(crate) fn symmetric_network(seed: u64, large: bool) -> Network {
    let mut next = crate::testing::numbers(seed);
    let family = next() % 6;
    let depth = 1 + next() % 3;
    let widths: Vec<usize> = (0..=depth).map(|_| 1 + next() % 6).collect();
    let random_layer = |next: &mut dyn FnMut() -> usize, n_in: usize, n_out: usize, p: usize| {
        (0..n_out)
            .map(|_| (0..n_in as Idx).filter(|_| next() % 100 < p).collect())
            .collect::<Vec<Vec<Idx>>>()
    };
    let layers: Vec<(usize, Vec<Vec<Idx>>)> = match family {
        // Some layers empty, some complete, the others random.
        0 | 1 => widths
            .windows(2)
            .map(|w| {
                let p = [0, 100, 10 + next() % 80][next() % 3];
                let p = if family == 1 && p == 0 { 100 } else { p };
                (w[0], random_layer(&mut next, w[0], w[1], p))
            })
            .collect(),
        // `copies` copies of a random block side by side, all reading the block's inputs.
        2 => {
            let copies = if large {
                8 + next() % 40
            } else {
                2 + next() % 4
            };
            let mut layers = Vec::new();
            for (k, w) in widths.windows(2).enumerate() {
                let p = 20 + next() % 60;
                let block = random_layer(&mut next, w[0], w[1], p);
                let mut neurons = Vec::new();
                for copy in 0..copies {
                    for inputs in &block {
                        let shift = if k == 0 { 0 } else { copy * w[0] };
                        neurons.push(inputs.iter().map(|&r| r + shift as Idx).collect());
                    }
                }
                let n_in = if k == 0 { w[0] } else { w[0] * copies };
                layers.push((n_in, neurons));
            }
            layers
        }
        // Pairs: a hidden neuron without inputs feeding one output; plus random neurons.
        3 => {
            let pairs = if large {
                8 + next() % 200
            } else {
                1 + next() % 6
            };
            let extra = next() % 4;
            let n_in = 1 + next() % 4;
            let mut hidden: Vec<Vec<Idx>> = vec![Vec::new(); pairs];
            hidden.extend(random_layer(&mut next, n_in, extra, 50));
            let mut outputs: Vec<Vec<Idx>> = (0..pairs).map(|i| vec![i as Idx]).collect();
            let n_more = 1 + next() % 3;
            outputs.extend(random_layer(&mut next, pairs + extra, n_more, 40));
            vec![(n_in, hidden), (pairs + extra, outputs)]
        }
        // Convolution-like: pairs of a neuron without inputs feeding its own neuron at one of
        // three kernel positions, beside random sparse neurons.
        5 => {
            let (pairs, extra, g) = (
                if large {
                    8 + next() % 60
                } else {
                    1 + next() % 6
                },
                next() % 4,
                3,
            );
            let n_in = 1 + next() % 4;
            let mut hidden: Vec<Vec<Idx>> = vec![Vec::new(); pairs];
            hidden.extend(random_layer(&mut next, n_in, extra, 50));
            let mut outputs: Vec<Vec<Idx>> =
                (0..pairs).map(|i| vec![(i * g + i % g) as Idx]).collect();
            let n_more = 1 + next() % 3;
            outputs.extend(random_layer(&mut next, (pairs + extra) * g, n_more, 10));
            let first = Layer::from_neuron_inputs(0, n_in, &hidden).unwrap();
            let second = Layer::from_neuron_inputs(1, (pairs + extra) * g, &outputs)
                .unwrap()
                .with_group(1, g)
                .unwrap();
            return Network::new(vec![first, second]).unwrap();
        }
        // Tiny random layers, densities 10-90%: many twins and automorphisms.
        _ => {
            let p = 10 + next() % 80;
            widths
                .windows(2)
                .map(|w| (w[0], random_layer(&mut next, w[0], w[1], p)))
                .collect()
        }
    };
    net(&layers)
}

#[test]
fn pruning_leaves_every_labelling_the_search_finished_without_it_unchanged() {
    // Small symmetric networks and sparse ones that the search without automorphism pruning
    // (twins only, at most UNPRUNED_NODES nodes) labels: the same order, neuron for neuron.
    let mut compared = 0;
    for seed in 0..1600u64 {
        let a = match seed {
            0..1000 => symmetric_network(seed, false),
            _ => sparse_network(seed, &[20, 20, 20, 20], 7),
        };
        let refiner = Refiner::new(&a);
        let start = refiner.initial();
        let search = |pruning| label_with(&refiner, &a, start.clone(), &Cancel::new(), pruning);
        let (pruned, nodes) = search(Pruning::Automorphisms).unwrap();
        if let Ok((unpruned, unpruned_nodes)) = search(Pruning::Twins) {
            assert_eq!(pruned, unpruned, "seed {seed}");
            assert!(nodes <= unpruned_nodes, "seed {seed}");
            compared += 1;
        }
    }
    // Nearly all: a few need more than UNPRUNED_NODES nodes without pruning.
    assert!(compared > 1580, "{compared}");
}

/// The networks of the issue's shapes and densities (pruned networks), and symmetric ones.
fn generated(seed: u64) -> Network {
    match seed % 10 {
        0..=2 => sparse_network(seed, &[784, 300, 100, 10], 70),
        3 => sparse_network(seed, &[1000, 1000, 1000], 250),
        4..=6 => sparse_network(seed, &[64, 64, 64, 64], 13),
        7 => symmetric_network(seed, true),
        _ => symmetric_network(seed, false),
    }
}

#[test]
fn relabelled_copies_of_a_thousand_pruned_and_symmetric_networks_agree() {
    for seed in 0..1000 {
        let a = generated(seed);
        let (la, lb) = (labelled(&a), labelled(&shuffled(&a, seed + 1)));
        assert_eq!(la.network, lb.network, "seed {seed}");
        // The order is a labelling of `a`: it gives back the canonical network.
        assert_eq!(
            relabelled_layers(&a, &la.order),
            relabelled_layers(&la.network, &identity(&la.order))
        );
    }
}

fn identity(order: &[Vec<usize>]) -> Vec<Vec<usize>> {
    order.iter().map(|o| (0..o.len()).collect()).collect()
}

#[test]
fn symmetric_families_at_scale() {
    let run = |name: &str, a: Network| {
        let b = shuffled(&a, 5);
        assert_eq!(labelled(&a).network, labelled(&b).network, "{name}");
    };
    // Forks: a neuron without inputs feeding two neurons, each feeding its own output.
    for m in [10, 100] {
        let l0 = vec![Vec::new(); m];
        let l1: Vec<Vec<Idx>> = (0..2 * m).map(|i| vec![(i / 2) as Idx]).collect();
        let l2: Vec<Vec<Idx>> = (0..2 * m).map(|i| vec![i as Idx]).collect();
        run(&format!("forks {m}"), net(&[(1, l0), (m, l1), (2 * m, l2)]));
    }
    // Copies of a 4-cycle block: 4 hidden neurons on one input, outputs fed by consecutive pairs.
    for m in [5, 30] {
        let l0 = vec![vec![0]; 4 * m];
        let l1: Vec<Vec<Idx>> = (0..4 * m)
            .map(|i| {
                let (b, j) = (i / 4, i % 4);
                let mut v = vec![(4 * b + j) as Idx, (4 * b + (j + 1) % 4) as Idx];
                v.sort_unstable();
                v
            })
            .collect();
        run(&format!("4-cycles {m}"), net(&[(1, l0), (4 * m, l1)]));
    }
    // Dead pairs at width 10,000.
    for m in [10, 1000] {
        let mut l0 = vec![Vec::new(); 2 * m];
        l0[0] = vec![0];
        let l1: Vec<Vec<Idx>> = (0..2 * m).map(|i| vec![i as Idx]).collect();
        run(&format!("pairs {m}"), net(&[(3, l0), (2 * m, l1)]));
    }
}

/// A chain as a graph: its input features, then each layer's outputs, one writer each
/// reading the previous group.
pub(crate) fn chain_graph(net: &Network) -> crate::graph::Graph {
    use crate::graph::{Graph, Group, GroupKind, Read, Writer};
    let layers = net.layers();
    let group = |size, kind| Group {
        size,
        kind,
        heads: 1,
        head_set: None,
    };
    let mut groups = vec![group(
        layers[0].n_in() / layers[0].group(),
        GroupKind::Input,
    )];
    let mut writers = Vec::new();
    for (k, layer) in layers.iter().enumerate() {
        let last = k + 1 == layers.len();
        groups.push(group(
            layer.n_out(),
            if last {
                GroupKind::Output
            } else {
                GroupKind::Hidden
            },
        ));
        writers.push(Writer {
            group: k + 1,
            reads: vec![Read {
                group: k,
                width: layer.group(),
            }],
            layer: layer.clone(),
        });
    }
    Graph::new(groups, writers, false).unwrap()
}

#[test]
fn a_chain_as_a_graph_is_labelled_as_the_chain() {
    // The graph's colours are the chain's, round for round, and so is its labelling.
    for seed in 0..400u64 {
        let a = match seed % 4 {
            0 => symmetric_network(seed, seed % 8 == 0),
            1 => sparse_network(seed, &[64, 64, 64, 64], 13),
            2 => crate::refine::tests::random_network(seed, &[1, 3, 1], 0.05),
            _ => generated(seed),
        };
        let rounds = crate::canonical::colour_rounds(a.depth());
        let refiner = Refiner::new(&a);
        let history = refiner.history(rounds);
        let chain = label(&refiner, &a, history[rounds].clone(), &Cancel::new()).unwrap();
        let g = chain_graph(&a);
        let structure = graph::GraphStructure::new(&g);
        let colours = structure.history(rounds);
        assert_eq!(history, colours, "seed {seed}");
        let labelled = graph::label_graph(&structure, colours[rounds].clone(), &Cancel::new());
        assert_eq!(chain.order, labelled.unwrap().order, "seed {seed}");
    }
}
