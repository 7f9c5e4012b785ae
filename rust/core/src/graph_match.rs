//! NNSTD on a graph of permutation groups (docs/definition.md#graphs-of-permutation-groups):
//! groups matched once, in matching order, each like a chain's layer, from the connections of
//! its writers that come from groups already matched; heads matched as blocks first; fixed
//! groups by the identity at the end.
//!
//! The graph loop is the chain loop's counterpart (`crate::network`): it builds each group's
//! input sets as a layer, with the matchings carried so far, and hands them to the mode's
//! per-layer [`Matcher`] (`crate::mode`, which states what a mode provides for graphs), so every
//! mode defined on graphs runs here unchanged.

use crate::assign::{Algorithm, Assignment, UNMATCHED};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::graph::Graph;
use crate::mode::{Matcher, Solved};
use crate::network::{carried_labels, reported, LayerMatch};
use crate::similarity::neuron_distance;
use crate::topology::{Idx, Layer};

/// How B's units of a matched group are named: `labels[v]` is the A unit B's unit `v` was
/// paired with, or a fresh label `>= A's size` (B wider); labels lie below `space`.
struct Labels {
    labels: Vec<Idx>,
    space: usize,
}

impl Labels {
    fn identity(n: usize) -> Labels {
        Labels {
            labels: (0..n as Idx).collect(),
            space: n,
        }
    }
}

/// The distance of a pair of graphs: one [`LayerMatch`] per group that reports one
/// ([`Graph::reported`]), in matching order, each group of the graphs `pair` walks matched by
/// the pair's mode and reported in the callers' labels. The pair scheduler (`crate::pairwise`)
/// has checked that the graphs are comparable.
pub fn match_graph(pair: &impl Matcher<Graph>, cancel: &Cancel) -> Result<Vec<LayerMatch>> {
    let (a, b) = pair.networks();
    let n = a.groups().len();
    let mut known: Vec<Option<Labels>> = (0..n)
        .map(|g| a.is_fixed(g).then(|| Labels::identity(b.groups()[g].size)))
        .collect();
    let mut solved: Vec<Option<Solved>> = (0..n).map(|_| None).collect();
    for g in 0..n {
        if a.is_fixed(g) || solved[g].is_some() {
            continue;
        }
        cancel.check()?;
        let members = head_set_members(a, g);
        let matches = if members.len() > 1 || a.groups()[g].heads > 1 {
            match_heads(pair, &members, &known, cancel)?
        } else {
            vec![match_group(pair, g, &known, cancel)?]
        };
        for (&m, result) in members.iter().zip(matches) {
            let col_of_row = &result.assignment.col_of_row;
            let (labels, space) = carried_labels(col_of_row, b.groups()[m].size);
            known[m] = Some(Labels { labels, space });
            solved[m] = Some(result);
            cancel.layer_finished();
        }
    }
    for g in a.reported() {
        if a.is_fixed(g) {
            solved[g] = Some(match_fixed(a, b, g, &known));
        }
    }
    Ok(a.reported()
        .into_iter()
        .map(|g| {
            let result = solved[g].take().expect("every reported group is matched");
            reported(pair, g, result)
        })
        .collect())
}

/// The groups matched together with `g`: its head set, or `g` alone.
fn head_set_members(graph: &Graph, g: usize) -> Vec<usize> {
    match graph.groups()[g].head_set {
        Some(set) => (0..graph.groups().len())
            .filter(|&h| graph.groups()[h].head_set == Some(set))
            .collect(),
        None => vec![g],
    }
}

/// A free group without heads: its units' input sets matched as a layer.
fn match_group(
    pair: &impl Matcher<Graph>,
    g: usize,
    known: &[Option<Labels>],
    cancel: &Cancel,
) -> Result<Solved> {
    let (a, b) = pair.networks();
    let (la, lb) = (
        input_sets(a, b, g, known, Side::A),
        input_sets(a, b, g, known, Side::B),
    );
    pair.match_layer(g, &la, &lb, cancel)
        .map_err(|e| e.in_layer(g))
}

/// A head set (docs/definition.md#graph-heads): the cost of pairing head `p` of A with head
/// `q` of B is the sum over the set's groups of the optimal cost between their units; the heads
/// are paired from those block costs by the mode ([`Matcher::pair_heads`]: SciPy's rules by
/// default), and each group keeps, within each pair of heads, the assignment whose cost
/// entered the block cost.
fn match_heads(
    pair: &impl Matcher<Graph>,
    members: &[usize],
    known: &[Option<Labels>],
    cancel: &Cancel,
) -> Result<Vec<Solved>> {
    let (a, b) = pair.networks();
    let heads = a.groups()[members[0]].heads;
    // within[m][p * heads + q]: group members[m]'s assignment of head p of A with head q of B.
    let mut within: Vec<Vec<Assignment>> = Vec::with_capacity(members.len());
    let mut algorithms = Vec::with_capacity(members.len());
    let mut block = vec![0.0; heads * heads];
    let mut same = true;
    for &g in members {
        let (la, lb) = (
            input_sets(a, b, g, known, Side::A),
            input_sets(a, b, g, known, Side::B),
        );
        same &= la == lb;
        let dim = la.n_out() / heads;
        let mut solved = Vec::with_capacity(heads * heads);
        let mut algorithm = Algorithm::Paper;
        for p in 0..heads {
            let ha = neurons(&la, p * dim, dim);
            for q in 0..heads {
                cancel.check()?;
                let hb = neurons(&lb, q * dim, dim);
                let head_pair = pair
                    .match_head_pair(g, (p, q), &ha, &hb, cancel)
                    .map_err(|e| e.in_layer(g))?;
                block[p * heads + q] += head_pair.assignment.cost;
                algorithm = head_pair.algorithm;
                solved.push(head_pair.assignment);
            }
        }
        within.push(solved);
        algorithms.push(algorithm);
    }
    let pairing = pair.pair_heads(members[0], heads, &block, same, cancel)?;
    let mut out = Vec::with_capacity(members.len());
    for (m, &g) in members.iter().enumerate() {
        let dim = a.groups()[g].size / heads;
        let mut matching = vec![UNMATCHED; heads * dim];
        let mut cost = 0.0;
        for (p, &q) in pairing.iter().enumerate() {
            let assignment = &within[m][p * heads + q];
            cost += assignment.cost;
            for (u, &v) in assignment.col_of_row.iter().enumerate() {
                matching[p * dim + u] = if v == UNMATCHED { v } else { q * dim + v };
            }
        }
        out.push(Solved {
            assignment: Assignment {
                col_of_row: matching,
                cost,
            },
            algorithm: algorithms[m],
        });
    }
    Ok(out)
}

/// A fixed group (an input group layers write into, or a fixed output): each unit compared with
/// the same unit of B, with every connection known.
fn match_fixed(a: &Graph, b: &Graph, g: usize, known: &[Option<Labels>]) -> Solved {
    let (la, lb) = (
        input_sets(a, b, g, known, Side::A),
        input_sets(a, b, g, known, Side::B),
    );
    let cost: f64 = (0..la.n_out())
        .map(|u| neuron_distance(la.inputs(u), lb.inputs(u)))
        .sum();
    Solved {
        assignment: Assignment {
            col_of_row: (0..la.n_out()).collect(),
            cost,
        },
        algorithm: Algorithm::Fixed,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// The input sets of group `g`'s units in one network (docs/definition.md#graph-input-sets),
/// as a layer: element `(writer, read, label, position)` numbered `base + label * width +
/// position`, where each known read of each writer of `g` takes a span of the label space of
/// its group (the wider network's size, so that A and B number alike). Reads of groups not
/// matched yet are left out. For a chain (one writer, one read) this is the chain's layer with
/// its inputs carried exactly as `crate::network` carries them.
fn input_sets(a: &Graph, b: &Graph, g: usize, known: &[Option<Labels>], side: Side) -> Layer {
    let net = if side == Side::A { a } else { b };
    let n_out = net.groups()[g].size;
    let mut columns: Vec<Vec<Idx>> = vec![Vec::new(); n_out];
    let mut base = 0usize;
    let (mut last_end, mut widths) = (0usize, Vec::new());
    for writer in net.writers().iter().filter(|w| w.group == g) {
        let mut offset = 0usize; // the writer's first column of this read
        for read in &writer.reads {
            let size = net.groups()[read.group].size;
            let Some(labels) = &known[read.group] else {
                offset += size * read.width;
                continue;
            };
            let w = read.width;
            for (u, column) in columns.iter_mut().enumerate() {
                for &r in writer.layer.inputs(u) {
                    let r = r as usize;
                    if r < offset || r >= offset + size * w {
                        continue;
                    }
                    let (v, p) = ((r - offset) / w, (r - offset) % w);
                    let label = if side == Side::A {
                        v
                    } else {
                        labels.labels[v] as usize
                    };
                    column.push((base + label * w + p) as Idx);
                }
            }
            let space = a.groups()[read.group].size.max(labels.space);
            let own = if side == Side::A { size } else { labels.space };
            last_end = base + own * w;
            base += space * w;
            widths.push(w);
            offset += size * w;
        }
    }
    let group = if widths.len() == 1 { widths[0] } else { 1 };
    let mut indptr = Vec::with_capacity(n_out + 1);
    let mut indices = Vec::new();
    indptr.push(0);
    for mut column in columns {
        column.sort_unstable();
        indices.extend_from_slice(&column);
        indptr.push(indices.len());
    }
    Layer::from_valid_csc(last_end, group, indptr, indices)
}

/// Neurons `first .. first + count` of `layer`, as a layer of their own.
fn neurons(layer: &Layer, first: usize, count: usize) -> Layer {
    let (lo, hi) = (layer.indptr()[first], layer.indptr()[first + count]);
    let indptr = layer.indptr()[first..=first + count]
        .iter()
        .map(|&x| x - lo)
        .collect();
    Layer::from_valid_csc(
        layer.n_in(),
        layer.group(),
        indptr,
        layer.indices()[lo..hi].to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::invert_matching;
    use crate::graph::{group, GroupKind, Read, Writer};
    use crate::mode::{Options, Solver};
    use crate::network::layer_distance;
    use crate::pairwise::distance;
    use crate::topology::Network;

    /// A chain as a graph: groups input, hidden..., output; writer k reads group k.
    fn chain_graph(net: &Network) -> Graph {
        let layers = net.layers();
        let mut groups = vec![group(
            layers[0].n_in() / layers[0].group(),
            GroupKind::Input,
        )];
        let mut writers = Vec::new();
        for (k, layer) in layers.iter().enumerate() {
            let kind = if k + 1 == layers.len() {
                GroupKind::Output
            } else {
                GroupKind::Hidden
            };
            groups.push(group(layer.n_out(), kind));
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

    fn random_net(seed: u64, widths: &[usize], fill: u64) -> Network {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let cols: Vec<Vec<Idx>> = (0..w[1])
                    .map(|_| (0..w[0] as Idx).filter(|_| next() % 100 < fill).collect())
                    .collect();
                Layer::from_neuron_inputs(k, w[0], &cols).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    #[test]
    fn a_chain_as_a_graph_gives_the_chain_numbers_bit_for_bit() {
        for seed in 0..20 {
            let a = random_net(seed, &[12, 9, 10, 4], 30);
            let b = random_net(seed + 100, &[12, 11 - (seed as usize % 4), 10, 4], 30);
            for solver in [
                Solver::Paper,
                Solver::Auto,
                Solver::Sparse,
                Solver::Dense,
                Solver::Canonical,
            ] {
                let options = Options::new(solver);
                let cancel = Cancel::new();
                let chain = distance(&a, &b, None, &options, &cancel).unwrap();
                let graph =
                    distance(&chain_graph(&a), &chain_graph(&b), None, &options, &cancel).unwrap();
                assert_eq!(chain, graph, "seed {seed}, {solver:?}");
            }
        }
    }

    /// A mode's matcher that walks the pair the other way round, B matched as A, and reports
    /// the inverted matchings: what a mode that renumbers or reorients (the canonical one)
    /// asks of a loop, here on any shape.
    struct Reversed<'p, N> {
        a: &'p N,
        b: &'p N,
        /// The width of the callers' A in layer (or group) `k`.
        width: fn(&N, usize) -> usize,
    }

    impl<N> Matcher<N> for Reversed<'_, N> {
        fn networks(&self) -> (&N, &N) {
            (self.b, self.a)
        }

        fn match_layer(&self, k: usize, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Solved> {
            let plan = crate::policy::plan(k, a, b, crate::policy::Pick::Paper, 1 << 30)?;
            Ok(Solved {
                assignment: crate::policy::solve_layer(plan, a, b, cancel)?,
                algorithm: plan.algorithm,
            })
        }

        fn in_callers_labels(&self, k: usize, matching: Vec<usize>) -> Vec<usize> {
            crate::assign::invert_matching(&matching, (self.width)(self.a, k))
        }
    }

    #[test]
    fn both_loops_walk_the_networks_a_matcher_gives_and_report_in_the_callers_labels() {
        for seed in 0..10 {
            let a = random_net(seed, &[12, 9, 10, 4], 30);
            let b = random_net(seed + 100, &[12, 11 - (seed as usize % 4), 10, 4], 30);
            let (ga, gb) = (chain_graph(&a), chain_graph(&b));
            let cancel = Cancel::new();
            let chain = crate::network::match_chain(
                &Reversed {
                    a: &a,
                    b: &b,
                    width: |n: &Network, k| n.layers()[k].n_out(),
                },
                a.depth(),
                &cancel,
            )
            .unwrap();
            let graph = match_graph(
                &Reversed {
                    a: &ga,
                    b: &gb,
                    width: |g: &Graph, k| g.groups()[k].size,
                },
                &cancel,
            )
            .unwrap();
            assert_eq!(chain, graph, "seed {seed}");
            // The same pairs as B's distance from A in the paper mode, seen from A's side.
            let options = Options::new(Solver::Paper);
            let ba = distance(&b, &a, None, &options, &cancel).unwrap();
            for (k, (mine, theirs)) in chain.iter().zip(&ba).enumerate() {
                let n_a = a.layers()[k].n_out();
                assert_eq!(mine.cost.to_bits(), theirs.cost.to_bits(), "seed {seed}");
                assert_eq!(mine.matching, invert_matching(&theirs.matching, n_a));
                assert_eq!(mine.distance, layer_distance(theirs.cost, n_a));
            }
        }
    }
}
