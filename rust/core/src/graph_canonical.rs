//! The canonical mode's preparation of a graph of permutation groups
//! (docs/definition.md#graph-canonical-labels): its canonical labelling (units renamed within
//! their groups, heads as blocks) and the structural colours of its units, computed once per
//! graph. A chain's preparation is `crate::canonical::prepare`.

use std::cmp::Ordering;

use crate::cancel::Cancel;
use crate::canonical::colour_rounds;
use crate::error::Result;
use crate::graph::Graph;
use crate::labelling::graph::{label_graph, GraphStructure, LabelledGraph};

/// A graph ready for canonical distances.
pub struct PreparedGraph {
    labelled: LabelledGraph,
    /// `order[g][r]`: the unit of group `g` whose canonical label is `r` (the identity for fixed
    /// groups).
    order: Vec<Vec<usize>>,
    /// `history[t][g]`: the colours of group `g`'s units after `t` rounds, in canonical order
    /// (empty for fixed groups).
    history: Vec<Vec<Vec<u64>>>,
}

/// The canonical labelling and colours of `graph`.
pub fn prepare_graph(graph: &Graph, cancel: &Cancel) -> Result<PreparedGraph> {
    let structure = GraphStructure::new(graph);
    let rounds = colour_rounds(graph.depth());
    let cells = structure.history(rounds);
    let labelled = label_graph(&structure, cells[rounds].clone(), cancel)?;
    let groups = graph.groups().len();
    let order: Vec<Vec<usize>> = (0..groups)
        .map(|g| match structure.cell_of_group(g) {
            Some(c) => labelled.order[c].clone(),
            None => (0..graph.groups()[g].size).collect(),
        })
        .collect();
    let history = cells
        .iter()
        .map(|round| {
            (0..groups)
                .map(|g| match structure.cell_of_group(g) {
                    Some(c) => order[g].iter().map(|&u| round[c][u]).collect(),
                    None => Vec::new(),
                })
                .collect()
        })
        .collect();
    Ok(PreparedGraph {
        labelled,
        order,
        history,
    })
}

impl PreparedGraph {
    /// The graph with its units in canonical order.
    pub fn graph(&self) -> &Graph {
        &self.labelled.graph
    }

    /// `order(g)[r]`: the unit of group `g` whose canonical label is `r`.
    pub fn order(&self, g: usize) -> &[usize] {
        &self.order[g]
    }

    /// The colours of every group's units by round, in canonical order.
    pub fn history(&self) -> &[Vec<Vec<u64>>] {
        &self.history
    }

    /// How this graph's canonical form compares with `other`'s.
    pub fn cmp_form(&self, other: &PreparedGraph) -> Ordering {
        self.labelled.cmp_form(&other.labelled)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::{Group, GroupKind, Read, Writer};
    use crate::testing::numbers;
    use crate::topology::{Idx, Layer};

    /// A writer of `group` reading `reads` (group, width), connections drawn with probability
    /// `fill` per thousand.
    fn writer(
        next: &mut impl FnMut() -> usize,
        groups: &[Group],
        group: usize,
        reads: &[(usize, usize)],
        fill: usize,
    ) -> Writer {
        let n_in: usize = reads.iter().map(|&(g, w)| groups[g].size * w).sum();
        let neurons: Vec<Vec<Idx>> = (0..groups[group].size)
            .map(|_| (0..n_in as Idx).filter(|_| next() % 1000 < fill).collect())
            .collect();
        Writer {
            group,
            reads: reads
                .iter()
                .map(|&(group, width)| Read { group, width })
                .collect(),
            layer: Layer::from_neuron_inputs(0, n_in, &neurons).unwrap(),
        }
    }

    fn group(size: usize, kind: GroupKind, heads: usize, head_set: Option<usize>) -> Group {
        Group {
            size,
            kind,
            heads,
            head_set,
        }
    }

    /// A residual block with attention from a seed: input 0 (5 units, written into by the
    /// attention's output projection when `stream_is_input`), a stream 1 (6) written from the
    /// input, a hidden group 2 (7) reading the stream at 3 positions and writing back into it,
    /// a head set of query-key 3 and value 4 (2 heads of 3) reading the stream, and outputs 5
    /// (3) reading the stream and the value units.
    pub(crate) fn random_graph(seed: u64, fill: usize, fixed_outputs: bool) -> Graph {
        let mut next = numbers(seed);
        let groups = vec![
            group(5, GroupKind::Input, 1, None),
            group(6, GroupKind::Hidden, 1, None),
            group(7, GroupKind::Hidden, 1, None),
            group(6, GroupKind::Hidden, 2, Some(0)),
            group(6, GroupKind::Hidden, 2, Some(0)),
            group(3, GroupKind::Output, 1, None),
        ];
        let writers = vec![
            writer(&mut next, &groups, 1, &[(0, 1)], fill),
            writer(&mut next, &groups, 2, &[(1, 3)], fill),
            writer(&mut next, &groups, 1, &[(2, 1)], fill),
            writer(&mut next, &groups, 3, &[(1, 1)], fill),
            writer(&mut next, &groups, 3, &[(1, 1)], fill),
            writer(&mut next, &groups, 4, &[(1, 1)], fill),
            writer(&mut next, &groups, 0, &[(4, 1)], fill),
            writer(&mut next, &groups, 5, &[(1, 1), (4, 2)], fill),
        ];
        Graph::new(groups, writers, fixed_outputs).unwrap()
    }

    /// `graph` with every group that may be renamed renamed at random: heads as blocks (the
    /// same renaming of heads for a head set), units within heads freely.
    pub(crate) fn renamed(graph: &Graph, seed: u64) -> Graph {
        let mut next = numbers(seed);
        let mut shuffle = |n: usize| {
            let mut p: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                p.swap(i, next() % (i + 1));
            }
            p
        };
        let groups = graph.groups();
        let mut head_perms: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        let perms: Vec<Vec<usize>> = (0..groups.len())
            .map(|g| {
                let group = &groups[g];
                if graph.is_fixed(g) {
                    return (0..group.size).collect();
                }
                if group.heads == 1 {
                    return shuffle(group.size);
                }
                let known = head_perms
                    .iter()
                    .find(|(s, _)| s.is_some() && *s == group.head_set);
                let heads = match known {
                    Some((_, p)) => p.clone(),
                    None => {
                        let p = shuffle(group.heads);
                        head_perms.push((group.head_set, p.clone()));
                        p
                    }
                };
                let dim = group.size / group.heads;
                let within: Vec<Vec<usize>> = (0..group.heads).map(|_| shuffle(dim)).collect();
                (0..group.size)
                    .map(|u| heads[u / dim] * dim + within[u / dim][u % dim])
                    .collect()
            })
            .collect();
        let writers = graph
            .writers()
            .iter()
            .map(|w| {
                let mut columns = Vec::new();
                for read in &w.reads {
                    let start = columns.len();
                    for x in 0..groups[read.group].size * read.width {
                        let (v, p) = (x / read.width, x % read.width);
                        columns.push((start + perms[read.group][v] * read.width + p) as Idx);
                    }
                }
                let mut neurons = vec![Vec::new(); w.layer.n_out()];
                for u in 0..w.layer.n_out() {
                    let mut inputs: Vec<Idx> = w
                        .layer
                        .inputs(u)
                        .iter()
                        .map(|&r| columns[r as usize])
                        .collect();
                    inputs.sort_unstable();
                    neurons[perms[w.group][u]] = inputs;
                }
                let mut writer = w.clone();
                writer.layer = Layer::from_neuron_inputs(0, w.layer.n_in(), &neurons).unwrap();
                writer
            })
            .collect();
        Graph::new(groups.to_vec(), writers, graph.fixed_outputs()).unwrap()
    }

    fn prepared(graph: &Graph) -> PreparedGraph {
        prepare_graph(graph, &Cancel::new()).unwrap()
    }

    #[test]
    fn renamed_copies_share_a_canonical_form() {
        for seed in 0..300u64 {
            let fill = [30, 100, 300, 600][seed as usize % 4];
            let a = random_graph(seed, fill, seed % 3 == 0);
            let b = renamed(&a, seed + 1000);
            let (pa, pb) = (prepared(&a), prepared(&b));
            assert_eq!(pa.graph(), pb.graph(), "seed {seed}");
            assert_eq!(pa.cmp_form(&pb), Ordering::Equal);
            // Colours are those of the same canonical units.
            assert_eq!(pa.history(), pb.history(), "seed {seed}");
            // The order is a renaming of `a` that gives the canonical graph, heads as blocks.
            let c = random_graph(seed + 5000, fill, seed % 3 == 0);
            let pc = prepared(&c);
            if pc.graph() != pa.graph() {
                assert_ne!(pc.cmp_form(&pa), Ordering::Equal, "seed {seed}");
            }
        }
    }

    #[test]
    fn heads_stay_blocks_in_canonical_order() {
        for seed in 0..50u64 {
            let a = random_graph(seed, 200, false);
            let p = prepared(&a);
            for g in [3, 4] {
                let order = p.order(g);
                for block in order.chunks(3) {
                    let head = block[0] / 3;
                    assert!(
                        block.iter().all(|&u| u / 3 == head),
                        "seed {seed}: {order:?}"
                    );
                }
            }
            // The query-key and value groups share the order of their heads.
            let heads =
                |g: usize| -> Vec<usize> { p.order(g).chunks(3).map(|b| b[0] / 3).collect() };
            assert_eq!(heads(3), heads(4), "seed {seed}");
        }
    }

    #[test]
    fn empty_and_symmetric_graphs_are_labelled() {
        // No connections at all: every unit a twin of the others of its group, heads alike.
        for (seed, fill) in [(1, 0), (2, 5), (3, 1000)] {
            let a = random_graph(seed, fill, false);
            let b = renamed(&a, seed);
            assert_eq!(prepared(&a).graph(), prepared(&b).graph());
        }
    }
}
