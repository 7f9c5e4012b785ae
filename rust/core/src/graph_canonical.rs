//! The canonical mode on graphs of permutation groups (docs/definition.md#graph-canonical-mode):
//! a graph's preparation (its canonical labelling, units renamed within their groups and heads
//! as blocks, and the structural colours of its units and heads, computed once per graph) and a
//! pair's orientation and choices ([`OrientedGraph`]), which the graph loop
//! (`crate::graph_match`) drives group by group as it drives every mode. Each group is chosen as
//! a chain's layer is (`crate::canonical::choose_layer`); a head set's heads are paired by the
//! canonical choice on their block costs. A chain's preparation is `crate::canonical::prepare`.

use std::cmp::Ordering;

use crate::assign::choice::{choose, Criteria};
use crate::assign::duals::DenseStored;
use crate::assign::{lapjv, scipy_order, Assignment, UNMATCHED};
use crate::cancel::Cancel;
use crate::canonical::{self, choose_layer, colour_rounds, Structure};
use crate::error::Result;
use crate::graph::Graph;
use crate::labelling::graph::{label_graph, GraphStructure, LabelledGraph};
use crate::refine::History;
use crate::similarity::DenseCost;
use crate::topology::Layer;

/// A graph ready for canonical distances.
pub struct PreparedGraph {
    labelled: LabelledGraph,
    /// `order[g][r]`: the unit of group `g` whose canonical label is `r` (the identity for fixed
    /// groups).
    order: Vec<Vec<usize>>,
    /// `history[t][g]`: the colours of group `g`'s units after `t` rounds, in canonical order
    /// (empty for fixed groups).
    history: History,
    /// `heads[t][g]`: the colours of the heads of group `g`'s head set after `t` rounds, in
    /// canonical order (empty for groups without heads).
    heads: History,
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
    // Each group's cell of colours (units or heads), in canonical order.
    let by_group = |cell_of: &dyn Fn(usize) -> Option<usize>| -> History {
        cells
            .iter()
            .map(|round| {
                (0..groups)
                    .map(|g| match cell_of(g) {
                        Some(c) => labelled.order[c].iter().map(|&u| round[c][u]).collect(),
                        None => Vec::new(),
                    })
                    .collect()
            })
            .collect()
    };
    let history = by_group(&|g| structure.cell_of_group(g));
    let heads = by_group(&|g| structure.head_cell_of_group(g));
    Ok(PreparedGraph {
        labelled,
        order,
        history,
        heads,
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
    pub fn history(&self) -> &History {
        &self.history
    }

    /// How this graph's canonical form compares with `other`'s.
    pub fn cmp_form(&self, other: &PreparedGraph) -> Ordering {
        self.labelled.cmp_form(&other.labelled)
    }
}

/// Two prepared graphs as the canonical mode matches them: the one with the smaller canonical
/// form first, both in canonical order; matchings between them are in canonical labels until
/// [`OrientedGraph::in_callers_labels`].
pub struct OrientedGraph<'p> {
    first: &'p PreparedGraph,
    second: &'p PreparedGraph,
    /// Whether `first` is the callers' B.
    swapped: bool,
    /// The units' colours, and the heads'.
    units: Structure<'p>,
    heads: Structure<'p>,
    /// Bytes one group's costs may take (`crate::policy::plan`).
    budget: u64,
}

impl<'p> OrientedGraph<'p> {
    /// `a` (the callers' A) and `b`, the one with the smaller canonical form first.
    pub fn new(a: &'p PreparedGraph, b: &'p PreparedGraph, budget: u64) -> Self {
        let swapped = b.cmp_form(a).is_lt();
        let (first, second) = if swapped { (b, a) } else { (a, b) };
        let rounds = first.history.len() - 1;
        OrientedGraph {
            first,
            second,
            swapped,
            units: Structure {
                a: &first.history,
                b: &second.history,
                rounds,
            },
            heads: Structure {
                a: &first.heads,
                b: &second.heads,
                rounds,
            },
            budget,
        }
    }

    /// The two canonical graphs, the first matched as A.
    pub fn networks(&self) -> (&'p Graph, &'p Graph) {
        (self.first.graph(), self.second.graph())
    }

    /// Group `g`'s canonical assignment of its input sets `a` (first graph) against `b`
    /// (second graph, carried), in canonical labels: a chain layer's choice.
    pub fn match_layer(
        &self,
        g: usize,
        a: &Layer,
        b: &Layer,
        cancel: &Cancel,
    ) -> Result<Assignment> {
        choose_layer(g, a, b, (&self.units, 0, 0), self.budget, cancel)
    }

    /// The canonical assignment of head `p` of the first graph against head `q` of the
    /// second, in group `g` (`a`, `b`: those heads' units' input sets).
    pub fn match_head_pair(
        &self,
        g: usize,
        (p, q): (usize, usize),
        a: &Layer,
        b: &Layer,
        cancel: &Cancel,
    ) -> Result<Assignment> {
        let structure = (&self.units, p * a.n_out(), q * b.n_out());
        choose_layer(g, a, b, structure, self.budget, cancel)
    }

    /// The pairing of the heads of group `g`'s head set from their block costs (`block[p *
    /// heads + q]`, the sum over the set's groups of the costs between head `p`'s and head
    /// `q`'s units): head to head when every group of the set has the same input sets in both
    /// graphs (`same`); otherwise the canonical choice among the optimal pairings, the block
    /// costs divided by the set's units per head being its costs and the heads' colours its
    /// structure.
    pub fn pair_heads(
        &self,
        g: usize,
        block: &[f64],
        same: bool,
        cancel: &Cancel,
    ) -> Result<Vec<usize>> {
        let graph = self.first.graph();
        let heads = graph.groups()[g].heads;
        if same {
            return Ok((0..heads).collect());
        }
        let set = graph.groups()[g].head_set;
        let units: usize = graph
            .groups()
            .iter()
            .enumerate()
            .filter(|&(h, group)| h == g || (set.is_some() && group.head_set == set))
            .map(|(_, group)| group.size / heads)
            .sum();
        let dense = DenseCost {
            n_rows: heads,
            n_cols: heads,
            data: block
                .iter()
                .map(|&c| (c / units.max(1) as f64).min(1.0))
                .collect(),
        };
        let (optimum, duals) = lapjv::solve_with_duals(&dense, cancel)?;
        let stored = DenseStored {
            dense: &dense,
            empty_row: vec![false; heads],
            empty_col: vec![false; heads],
        };
        let Some(tight) = duals.certified_tight(&stored, &optimum.col_of_row)? else {
            // Float rounding beyond the usual: SciPy's rules on the canonical order decide.
            return Ok(scipy_order::try_solve_dense(heads, heads, &dense.data, cancel)?.col_of_row);
        };
        let dissimilarity = |p: usize, q: usize| self.heads.dissimilarity(g, p, q);
        let criteria = Criteria {
            secondary: &dissimilarity,
            row_colours: Structure::last(self.heads.a, g),
            col_colours: Structure::last(self.heads.b, g),
            empty_rows: &[],
            empty_cols: &[],
        };
        let pairing = choose(&stored, &optimum.col_of_row, &duals, &tight, &criteria)?;
        debug_assert!(pairing.iter().all(|&q| q != UNMATCHED));
        Ok(pairing)
    }

    /// Group `g`'s `matching` (the first graph's canonical labels to the second's) in the
    /// callers' labels, from their A's units to their B's.
    pub fn in_callers_labels(&self, g: usize, matching: Vec<usize>) -> Vec<usize> {
        canonical::in_callers_labels(
            self.first.order(g),
            self.second.order(g),
            matching,
            self.swapped,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::assign::invert_matching;
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
        sized_graph(seed, fill, fixed_outputs, 7)
    }

    /// [`random_graph`] with `hidden` units in group 2 (free groups may differ in size).
    fn sized_graph(seed: u64, fill: usize, fixed_outputs: bool, hidden: usize) -> Graph {
        let mut next = numbers(seed);
        let groups = vec![
            group(5, GroupKind::Input, 1, None),
            group(6, GroupKind::Hidden, 1, None),
            group(hidden, GroupKind::Hidden, 1, None),
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

    fn canonical(a: &Graph, b: &Graph) -> Vec<crate::network::LayerMatch> {
        let options = crate::mode::Options::new(crate::mode::Solver::Canonical);
        crate::pairwise::distance(a, b, None, &options, &Cancel::new()).unwrap()
    }

    #[test]
    fn a_renamed_copy_is_at_zero_and_renaming_changes_no_value() {
        for seed in 0..120u64 {
            let fill = [30, 100, 300, 600][seed as usize % 4];
            let fixed = seed % 3 == 0;
            let a = random_graph(seed, fill, fixed);
            for m in canonical(&a, &renamed(&a, seed + 7)) {
                assert_eq!(m.cost, 0.0, "seed {seed}");
            }
            let b = random_graph(seed + 500, fill, fixed);
            let ab = canonical(&a, &b);
            let bits = |d: &[crate::network::LayerMatch]| -> Vec<u64> {
                d.iter().map(|m| m.cost.to_bits()).collect()
            };
            assert_eq!(
                bits(&ab),
                bits(&canonical(&a, &renamed(&b, seed))),
                "seed {seed}"
            );
            assert_eq!(
                bits(&ab),
                bits(&canonical(&renamed(&a, seed), &b)),
                "seed {seed}"
            );
            // Both directions make the same pairs.
            let ba = canonical(&b, &a);
            assert_eq!(bits(&ab), bits(&ba), "seed {seed}");
            for (x, y) in ab.iter().zip(&ba) {
                let n_a = x.matching.len();
                assert_eq!(x.matching, invert_matching(&y.matching, n_a), "seed {seed}");
            }
        }
    }

    #[test]
    fn groups_of_unequal_sizes_are_matched_alike_whatever_the_names() {
        for seed in 0..60u64 {
            let fill = [100, 300][seed as usize % 2];
            let a = sized_graph(seed, fill, false, 7);
            let b = sized_graph(seed + 900, fill, false, 9 + seed as usize % 3);
            let bits = |d: &[crate::network::LayerMatch]| -> Vec<u64> {
                d.iter().map(|m| m.cost.to_bits()).collect()
            };
            for (x, y) in [(&a, &b), (&b, &a)] {
                let d = canonical(x, y);
                assert_eq!(
                    bits(&d),
                    bits(&canonical(x, &renamed(y, seed))),
                    "seed {seed}"
                );
                assert_eq!(
                    bits(&d),
                    bits(&canonical(&renamed(x, seed), y)),
                    "seed {seed}"
                );
                let n_b: Vec<usize> = y.groups().iter().map(|g| g.size).collect();
                for (m, k) in d.iter().zip(y.reported()) {
                    // B's units matched at most once, within B's group.
                    let mut seen = vec![false; n_b[k]];
                    for &j in m.matching.iter().filter(|&&j| j != UNMATCHED) {
                        assert!(!std::mem::replace(&mut seen[j], true), "seed {seed}");
                    }
                }
            }
        }
    }
}
