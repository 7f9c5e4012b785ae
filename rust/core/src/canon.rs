//! Canonical labelling of a network's neurons (docs/definition.md#canonical-labels): an order
//! of every layer's neurons that depends on the network's structure alone, so that a network
//! and any relabelled copy of it get the same labelled network (their *canonical form*).
//!
//! The method is individualisation-refinement, as in nauty, Traces and bliss:
//!
//! 1. Colour refinement (`crate::refine`) splits each layer's neurons by structure until the
//!    partition is stable. Input features keep their labels; every other neuron, output neurons
//!    included, may be renamed.
//! 2. Where a class still holds neurons that are not *twins* (twins have the same inputs and
//!    feed the same neurons, so swapping two of them changes nothing), each candidate is in
//!    turn singled out with a colour of its own and the partition is refined again, recursively.
//!    The class searched is chosen by structure alone (fewest candidates, then layer, then
//!    colour), and only one neuron per set of twins is tried (the others give the same result).
//! 3. At each leaf (every class a set of twins) neurons are ordered by colour; the leaf whose
//!    relabelled network is smallest (compared as a flat list of numbers) is the canonical one.
//!
//! The search tree, and so the smallest leaf, depends only on the network up to relabelling.
//! It is a single leaf on wide random networks and the paper's: colour refinement separates
//! every neuron that is not a twin. Pruned networks and symmetric ones hold many
//! interchangeable pieces (a neuron without inputs feeding one neuron, copies of one block),
//! which make the tree grow like the factorial of their number; the search skips the parts of
//! the tree that an *automorphism* (a renaming of neurons that leaves the network unchanged)
//! maps onto parts already explored, as nauty does ([`Search`]):
//!
//! - automorphisms come from leaves of equal form (the two orders differ by one) and from
//!   swapping two isomorphic pieces of the network that refinement leaves apart (found by a
//!   guess, kept only when checked connection by connection);
//! - at each node of the current path, the candidates fall into orbits of the automorphisms
//!   known to fix the neurons singled out above the node; a candidate in the orbit of an earlier
//!   one is skipped, and the rest of a branch is abandoned as soon as its candidate joins the
//!   orbit of an earlier one.
//!
//! A skipped branch is the image of an earlier one, so its leaves have the forms of earlier
//! leaves: the first leaf of smallest form (the one the search without pruning keeps) is never
//! skipped, and the labelling is exactly the one of the search without pruning.
//!
//! One step goes further. Where refinement leaves *classes of interchangeable pieces* (pieces of
//! the network joined only through neurons it has already told apart, each piece with neurons of
//! distinct colours up to twins, isomorphic to the others of its class colour for colour) whose
//! reorderings number more than [`UNPRUNED_NODES`] (the product of the classes' factorials),
//! one neuron of every piece is singled out at once, with a mark of its own: any assignment of
//! marks gives the same form (the pieces are interchangeable). The tree without pruning would
//! have more than [`UNPRUNED_NODES`] leaves there, past the limit the search had before it
//! pruned by automorphisms, so no labelling the search gave before changes.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::refine::{individualised, marked, Refiner};
use crate::topology::{Idx, Layer, Network};

/// Search nodes (refinements) allowed for one network's canonical labelling: a last resort,
/// far beyond the few hundred that the pruned networks we generated need.
pub const SEARCH_NODES: usize = 1 << 22;

/// The search nodes the search allowed before it pruned by automorphisms (twins only). A class
/// of interchangeable pieces whose reorderings outnumber it is labelled in one step (module
/// documentation): such a network was refused then.
pub const UNPRUNED_NODES: usize = 1 << 14;

/// Stored automorphisms (for nodes entered later): at most this many, of at most
/// [`GENERATOR_ENTRIES`] moved neurons in all. Fewer only prune less.
const GENERATORS: usize = 256;
const GENERATOR_ENTRIES: usize = 1 << 20;

/// Guessed swaps of isomorphic pieces tried per piece at a node (each against an earlier piece
/// that no swap joined to the others).
const SWAP_LEADERS: usize = 4;

/// A network in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// `order[k][r]`: the neuron of layer `k` whose canonical label is `r`.
    pub order: Vec<Vec<usize>>,
    /// The network with every layer's neurons renamed to their canonical labels.
    pub network: Network,
}

impl Labelled {
    /// How this network's canonical form compares with `other`'s (see [`form`]). Equal
    /// exactly when the networks are relabelled copies of each other.
    pub fn cmp_form(&self, other: &Labelled) -> Ordering {
        let (mine, theirs) = (parts(&self.network), parts(&other.network));
        form(&mine).cmp(form(&theirs))
    }
}

/// Which parts of the search tree the search skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pruning {
    /// Only twins (the search before automorphism pruning, for the tests that compare).
    #[cfg_attr(not(test), allow(dead_code))]
    Twins,
    /// Twins and the images of explored branches under known automorphisms.
    Automorphisms,
}

/// The canonical labelling of `net`, starting from neuron colours `start` that depend on
/// structure alone (the layer of each neuron, or some rounds of refinement from it).
pub(crate) fn label(
    refiner: &Refiner,
    net: &Network,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
) -> Result<Labelled> {
    label_with(refiner, net, start, cancel, Pruning::Automorphisms).map(|(l, _)| l)
}

/// The canonical labelling, and the number of search nodes it took.
fn label_with(
    refiner: &Refiner,
    net: &Network,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
    pruning: Pruning,
) -> Result<(Labelled, usize)> {
    let twins = twin_classes(net, &start);
    let limit = match pruning {
        Pruning::Twins => UNPRUNED_NODES,
        Pruning::Automorphisms => SEARCH_NODES,
    };
    let mut search = Search {
        net,
        refiner,
        twins,
        pruning,
        limit,
        nodes: 0,
        first: None,
        best: None,
        best_is_first: false,
        cancel,
        graph: None,
        path: Vec::new(),
        generators: Vec::new(),
        generator_entries: 0,
    };
    search.explore(start)?;
    let (order, neurons) = search.best.expect("the search reaches a leaf");
    let network = relabelled(net, neurons)?;
    Ok((Labelled { order, network }, search.nodes))
}

/// `twins[k][i]`: the lowest-numbered neuron of layer `k` with exactly neuron `i`'s inputs and
/// exactly its outgoing connections (kernel positions included). Twins always share a colour,
/// so only neurons of equal colour in `colours` are compared (and a layer's outgoing
/// connections are listed only if some do).
fn twin_classes(net: &Network, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
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

/// A neuron's connections: its inputs, and the (kernel position, neuron) pairs it feeds.
type Connections<'l> = (&'l [Idx], Vec<(usize, Idx)>);

/// A layer in compressed sparse column form: `indices[indptr[c]..indptr[c + 1]]` are neuron
/// `c`'s inputs, increasing.
type Csc = (Vec<usize>, Vec<Idx>);

/// A leaf of the search: its order, and every layer relabelled.
type Leaf = (Vec<Vec<usize>>, Vec<Csc>);

/// A permutation of neurons (numbered across layers, [`Graph`]) as the pairs it moves,
/// `(neuron, image)`; each layer's neurons go to neurons of the same layer.
type Permutation = Vec<(u32, u32)>;

/// What the caller of [`Search::explore`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Go on with the next candidate.
    Continue,
    /// Stop exploring the branch of the current candidate of path level `.0` (it is the image of
    /// an earlier branch under a known automorphism), and go on with that level's next one.
    Abandon(usize),
}

/// Marks a neuron not singled out on the current path ([`AutomorphismState::fixed_at`]).
const NOT_FIXED: u32 = u32::MAX;

/// The depth-first search over the tree of individualisations (module documentation). Its
/// invariant: a branch is skipped or abandoned only when a checked automorphism fixing
/// everything singled out above it maps its candidate to an earlier candidate, so every leaf
/// left out has the form of an earlier leaf of the tree without pruning.
struct Search<'a> {
    net: &'a Network,
    refiner: &'a Refiner<'a>,
    twins: Vec<Vec<usize>>,
    pruning: Pruning,
    limit: usize,
    nodes: usize,
    /// The first leaf reached, and the leaf of smallest form found so far (the first of them).
    first: Option<Leaf>,
    best: Option<Leaf>,
    /// Whether `best` is still the first leaf (so that a new leaf is compared with it once).
    best_is_first: bool,
    cancel: &'a Cancel,
    /// The network's connections both ways, built at the first node that branches.
    graph: Option<AutomorphismState>,
    /// The nodes from the root to the current one, each with its candidates' orbits.
    path: Vec<Level>,
    /// Automorphisms found, kept for nodes entered later (within [`GENERATORS`] and
    /// [`GENERATOR_ENTRIES`]).
    generators: Vec<Permutation>,
    generator_entries: usize,
}

/// One node of the current path.
struct Level {
    layer: usize,
    /// The target class's neurons, increasing, and the candidate each stands for (its twin
    /// in `candidates`, as an index there).
    members: Vec<usize>,
    slot_of: Vec<usize>,
    /// One neuron per set of twins in the class (the lowest-numbered), increasing.
    candidates: Vec<usize>,
    /// Orbits of the candidates under the automorphisms known to fix every neuron singled out
    /// above (and at) this node.
    orbits: Orbits,
    /// The candidate being explored (`usize::MAX` before the first).
    current: usize,
    /// Neurons (numbered across layers) singled out at this node before its candidates.
    marks: Vec<u32>,
}

/// Union-find over candidates, each class knowing its lowest candidate.
struct Orbits {
    parent: Vec<usize>,
}

impl Orbits {
    fn new(n: usize) -> Self {
        Orbits {
            parent: (0..n).collect(),
        }
    }

    /// The lowest candidate of `x`'s orbit (each class's root is its lowest member).
    fn least(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.least(a), self.least(b));
        let (low, high) = (ra.min(rb), ra.max(rb));
        self.parent[high] = low;
    }
}

/// The target class of a node: its layer, colour, and one neuron per set of twins in it.
struct Target {
    layer: usize,
    colour: u64,
    candidates: Vec<usize>,
}

impl Search<'_> {
    fn explore(&mut self, mut colours: Vec<Vec<u64>>) -> Result<Flow> {
        self.nodes += 1;
        if self.nodes > self.limit {
            let layer = self.path.last().map_or(0, |l| l.layer);
            return Err(Error::InvalidArgument(format!(
                "layer {layer}: the canonical labelling needs more than {} search steps (its \
                 neurons are highly symmetric); use the \"paper\" or \"auto\" solver",
                self.limit
            )));
        }
        self.cancel.check()?;
        // Refinement to a stable partition only where the colours do not already single out
        // every neuron up to twins (the usual case at the root after the first rounds).
        let mut target = self.target_cell(&colours);
        if target.is_some() {
            self.refiner.refine_to_stable(&mut colours);
            target = self.target_cell(&colours);
        }
        let mut marks = Vec::new();
        if target.is_some() && self.pruning == Pruning::Automorphisms {
            let (net, twins) = (self.net, &self.twins);
            let state = self
                .graph
                .get_or_insert_with(|| AutomorphismState::new(net));
            state.find_pieces(net, &colours, twins);
            if let Some(marked) = interchangeable_pieces(state, net, twins) {
                for &(v, mark) in &marked {
                    let (k, i) = state.neuron(v);
                    colours[k][i] = self::marked(colours[k][i], mark);
                }
                self.refiner.refine_to_stable(&mut colours);
                target = self.target_cell(&colours);
                marks = marked.iter().map(|&(v, _)| v).collect();
                let state = self.graph.as_mut().expect("built above");
                state.find_pieces(net, &colours, &self.twins);
            }
        }
        let Some(target) = target else {
            return Ok(self.leaf(&colours));
        };
        let level = self.path.len();
        let k = target.layer;
        let members: Vec<usize> = (0..colours[k].len())
            .filter(|&i| colours[k][i] == target.colour)
            .collect();
        // Each member's candidate: the lowest member of its set of twins (members increase).
        let mut slot_by_twin = HashMap::new();
        let slot_of = members
            .iter()
            .map(|&i| {
                *slot_by_twin.entry(self.twins[k][i]).or_insert_with(|| {
                    target
                        .candidates
                        .binary_search(&i)
                        .expect("the lowest of a set of twins in a class is a candidate")
                })
            })
            .collect();
        for &v in &marks {
            self.state_mut().fixed_at[v as usize] = level as u32;
        }
        self.path.push(Level {
            layer: k,
            members,
            slot_of,
            orbits: Orbits::new(target.candidates.len()),
            candidates: target.candidates,
            current: usize::MAX,
            marks,
        });
        let flow = self.branch(&colours);
        let done = self.path.pop().expect("pushed above");
        for &v in &done.marks {
            self.state_mut().fixed_at[v as usize] = NOT_FIXED;
        }
        flow
    }

    /// Explores the candidates of the node at the end of the path, skipping those in the orbit
    /// of an earlier one.
    fn branch(&mut self, colours: &[Vec<u64>]) -> Result<Flow> {
        let level = self.path.len() - 1;
        if self.pruning == Pruning::Automorphisms {
            self.apply_stored_generators(level);
            self.swap_pieces(level);
        }
        let k = self.path[level].layer;
        for slot in 0..self.path[level].candidates.len() {
            if self.path[level].orbits.least(slot) < slot {
                continue;
            }
            self.path[level].current = slot;
            let v = self.path[level].candidates[slot];
            let mut child = colours.to_vec();
            child[k][v] = individualised(child[k][v]);
            let fixed = self.graph.as_ref().map(|s| s.offsets[k] + v);
            if let Some(g) = fixed {
                self.state_mut().fixed_at[g] = level as u32 + 1;
            }
            let flow = self.explore(child)?;
            if let Some(g) = fixed {
                self.state_mut().fixed_at[g] = NOT_FIXED;
            }
            if let Flow::Abandon(j) = flow {
                if j < level {
                    return Ok(flow);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// The class to search: among classes holding neurons of more than one set of twins, the
    /// one with the fewest such sets, then the lowest layer, then the lowest colour. Returns its
    /// layer, colour, and the lowest neuron of each set of twins in it.
    fn target_cell(&self, colours: &[Vec<u64>]) -> Option<Target> {
        let mut best: Option<(usize, usize, u64, Vec<usize>)> = None;
        for (k, layer) in colours.iter().enumerate() {
            let mut by_colour: Vec<(u64, usize, usize)> = layer
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, self.twins[k][i], i))
                .collect();
            by_colour.sort_unstable();
            for class in by_colour.chunk_by(|x, y| x.0 == y.0) {
                // The first neuron of each set of twins (sorted by twin, then neuron).
                let mut reps: Vec<usize> = class
                    .chunk_by(|x, y| x.1 == y.1)
                    .map(|twins| twins[0].2)
                    .collect();
                if reps.len() > 1 {
                    let colour = class[0].0;
                    let better = match &best {
                        None => true,
                        Some((n, bk, bc, _)) => (reps.len(), k, colour) < (*n, *bk, *bc),
                    };
                    if better {
                        reps.sort_unstable();
                        best = Some((reps.len(), k, colour, reps));
                    }
                }
            }
        }
        best.map(|(_, layer, colour, candidates)| Target {
            layer,
            colour,
            candidates,
        })
    }

    /// A leaf: neurons ordered by colour (twins, the only neurons still sharing one, by index).
    /// With pruning, a leaf of the same form as the first or the best gives an automorphism.
    fn leaf(&mut self, colours: &[Vec<u64>]) -> Flow {
        let order: Vec<Vec<usize>> = colours
            .iter()
            .map(|layer| {
                // (colour, neuron) pairs are distinct: an unstable sort gives the one order.
                let mut keyed: Vec<(u64, usize)> =
                    layer.iter().enumerate().map(|(i, &c)| (c, i)).collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        let layers = relabelled_layers(self.net, &order);
        let compare = |leaf: &Option<Leaf>| {
            leaf.as_ref().map(|(_, other)| {
                let (mine, theirs) = (leaf_parts(self.net, &layers), leaf_parts(self.net, other));
                form(&mine).cmp(form(&theirs))
            })
        };
        let to_best = compare(&self.best);
        let mut flow = Flow::Continue;
        if self.pruning == Pruning::Automorphisms {
            // An automorphism from each earlier leaf of the same form: the best, and the first
            // where the best is another.
            let mut found = Vec::new();
            if let (Some(Ordering::Equal), Some(best)) = (to_best, &self.best) {
                found.push(self.state().between(&best.0, &order));
            }
            if let Some(first) = self.first.as_ref().filter(|_| !self.best_is_first) {
                if compare(&self.first) == Some(Ordering::Equal) {
                    found.push(self.state().between(&first.0, &order));
                }
            }
            for gamma in found {
                let net = self.net;
                debug_assert!(self.state_mut().is_automorphism(net, &gamma));
                if let Some(j) = self.add_generator(gamma, true) {
                    flow = Flow::Abandon(match flow {
                        Flow::Abandon(i) => i.min(j),
                        Flow::Continue => j,
                    });
                }
            }
            if self.first.is_none() {
                self.first = Some((order.clone(), layers.clone()));
            }
        }
        if to_best.is_none_or(|o| o == Ordering::Less) {
            self.best_is_first = self.best.is_none();
            self.best = Some((order, layers));
        }
        flow
    }
    fn state(&self) -> &AutomorphismState {
        self.graph
            .as_ref()
            .expect("built at the first branching node")
    }

    fn state_mut(&mut self) -> &mut AutomorphismState {
        if self.graph.is_none() {
            self.graph = Some(AutomorphismState::new(self.net));
        }
        self.graph.as_mut().expect("just built")
    }

    /// Joins the orbits of every node of the path whose singled-out neurons `gamma` fixes, keeps
    /// it for later nodes if `store`, and returns the highest level whose current candidate is
    /// now in the orbit of an earlier one (its branch is then an image of an earlier branch).
    fn add_generator(&mut self, gamma: Permutation, store: bool) -> Option<usize> {
        let state = self.state_mut();
        let fixes_below = gamma
            .iter()
            .map(|&(v, _)| state.fixed_at[v as usize])
            .min()
            .unwrap_or(NOT_FIXED) as usize;
        let offsets = state.offsets.clone();
        let mut abandon = None;
        for (j, level) in self.path.iter_mut().enumerate().take(fixes_below) {
            join_orbits(level, &gamma, &offsets);
            if abandon.is_none()
                && level.current != usize::MAX
                && level.orbits.least(level.current) < level.current
            {
                abandon = Some(j);
            }
        }
        if store
            && self.generators.len() < GENERATORS
            && self.generator_entries + gamma.len() <= GENERATOR_ENTRIES
        {
            self.generator_entries += gamma.len();
            self.generators.push(gamma);
        }
        abandon
    }

    /// Joins the orbits of the node at `level` by the stored automorphisms that fix its
    /// singled-out neurons.
    fn apply_stored_generators(&mut self, level: usize) {
        let Some(state) = self.graph.as_ref() else {
            return;
        };
        let node = &mut self.path[level];
        for gamma in &self.generators {
            let fixes = gamma
                .iter()
                .all(|&(v, _)| state.fixed_at[v as usize] as usize > level);
            if fixes {
                join_orbits(node, gamma, &state.offsets);
            }
        }
    }

    /// Guesses swaps of the pieces holding the candidates of the node at `level` (pieces of
    /// the current partition), checks them, and joins the node's orbits by those that hold.
    /// Only this node's: a swap fixes every neuron singled out above, so it moves no candidate
    /// being explored there (and later nodes find the swaps that still hold themselves).
    fn swap_pieces(&mut self, level: usize) {
        let net = self.net;
        let Some(state) = self.graph.as_mut() else {
            return;
        };
        let node = &mut self.path[level];
        let base = state.offsets[node.layer];
        // The first candidate of each piece, in candidate order.
        let mut seen = HashSet::new();
        let heads: Vec<u32> = node
            .candidates
            .iter()
            .map(|&v| (base + v) as u32)
            .filter(|&v| seen.insert(state.piece[v as usize]))
            .collect();
        let mut leaders: Vec<u32> = Vec::new();
        for &to in &heads {
            let joined = leaders.iter().any(|&from| {
                let swap = state.guess_swap(net, from, to);
                match swap {
                    Some(gamma) if state.is_automorphism(net, &gamma) => {
                        join_orbits(node, &gamma, &state.offsets);
                        true
                    }
                    _ => false,
                }
            });
            if !joined && leaders.len() < SWAP_LEADERS {
                leaders.push(to);
            }
        }
    }
}

/// Where refinement leaves classes of interchangeable pieces whose reorderings number more
/// than [`UNPRUNED_NODES`] (module documentation): one neuron per piece (the lowest of its
/// lowest colour) and the number of its piece in its class. `state` holds the pieces of the
/// current partition.
fn interchangeable_pieces(
    state: &mut AutomorphismState,
    net: &Network,
    twins: &[Vec<usize>],
) -> Option<Vec<(u32, usize)>> {
    let classes = state.piece_classes(net, twins);
    let mut reorderings: usize = 1;
    for class in &classes {
        for m in 2..=class.len() {
            reorderings = reorderings.saturating_mul(m);
        }
    }
    if reorderings <= UNPRUNED_NODES {
        return None;
    }
    Some(
        classes
            .iter()
            .flat_map(|class| class.iter().enumerate().map(|(mark, &v)| (v, mark)))
            .collect(),
    )
}

/// Joins the orbits of `node`'s candidates by `gamma` (which fixes the node's singled-out
/// neurons, so maps its target class onto itself).
fn join_orbits(node: &mut Level, gamma: &Permutation, offsets: &[usize]) {
    let (lo, hi) = (offsets[node.layer], offsets[node.layer + 1]);
    for &(v, image) in gamma {
        let (v, image) = (v as usize, image as usize);
        if v < lo || v >= hi {
            continue;
        }
        let (a, b) = (
            node.members.binary_search(&(v - lo)),
            node.members.binary_search(&(image - lo)),
        );
        if let (Ok(a), Ok(b)) = (a, b) {
            node.orbits.join(node.slot_of[a], node.slot_of[b]);
        }
    }
}

/// What the automorphism search reads and keeps: neurons numbered across layers (layer `k`'s
/// neuron `i` is `offsets[k] + i`), each layer's outgoing connections, the pieces of the latest
/// partition, and scratch space.
struct AutomorphismState {
    offsets: Vec<usize>,
    /// For each layer but the last, the next layer's connections by input (see
    /// [`Layer::neurons_by_input`]).
    outgoing: Vec<(Vec<usize>, Vec<Idx>)>,
    /// The level of the current path at which each neuron was singled out ([`NOT_FIXED`] if
    /// not): an automorphism fixes a level's singled-out neurons when it moves none singled out
    /// at or above it.
    fixed_at: Vec<u32>,
    /// The latest partition's colours, and for each neuron in a class of more than one set of
    /// twins (an *open* neuron) its piece ([`NO_PIECE`] for the others): pieces are connected
    /// through open neurons only.
    colour: Vec<u64>,
    piece: Vec<u32>,
    piece_size: Vec<usize>,
    /// Scratch: a permutation's image of each neuron (the identity between uses), and which
    /// neurons a guessed swap already maps onto (none between uses).
    image: Vec<u32>,
    taken: Vec<bool>,
}

const NO_PIECE: u32 = u32::MAX;

impl AutomorphismState {
    fn new(net: &Network) -> Self {
        let layers = net.layers();
        let mut offsets = vec![0];
        for l in layers {
            offsets.push(offsets[offsets.len() - 1] + l.n_out());
        }
        let n = offsets[layers.len()];
        AutomorphismState {
            offsets,
            outgoing: layers[1..].iter().map(Layer::neurons_by_input).collect(),
            fixed_at: vec![NOT_FIXED; n],
            colour: vec![0; n],
            piece: vec![NO_PIECE; n],
            piece_size: Vec::new(),
            image: (0..n as u32).collect(),
            taken: vec![false; n],
        }
    }

    /// The layer and index of neuron `v`.
    fn neuron(&self, v: u32) -> (usize, usize) {
        let v = v as usize;
        let k = self.offsets.partition_point(|&o| o <= v) - 1;
        (k, v - self.offsets[k])
    }

    /// Every connection of neuron `v` as (other neuron, kernel position * 2 + direction): its
    /// inputs from the previous layer (direction 0) and the neurons it feeds (1).
    fn neighbours<'n>(&'n self, net: &'n Network, v: u32) -> impl Iterator<Item = (u32, u32)> + 'n {
        let (k, i) = self.neuron(v);
        let layers = net.layers();
        let inputs = (k > 0).then(|| {
            let g = layers[k].group();
            let before = self.offsets[k - 1];
            layers[k].inputs(i).iter().map(move |&r| {
                (
                    (before + r as usize / g) as u32,
                    (r as usize % g) as u32 * 2,
                )
            })
        });
        let outputs = self.outgoing.get(k).map(|(rowptr, cols)| {
            let g = layers[k + 1].group();
            let after = self.offsets[k + 1];
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

    /// Finds the pieces of the stable partition `colours`. Connections from a class to a class
    /// that is one set of twins are the same for every neuron of the class (the partition is
    /// stable, and twins have the same connections), so swapping two pieces whose neurons
    /// match colour for colour leaves those connections as they were.
    fn find_pieces(&mut self, net: &Network, colours: &[Vec<u64>], twins: &[Vec<usize>]) {
        self.piece.fill(NO_PIECE);
        self.piece_size.clear();
        let mut open = Vec::new();
        for (k, layer) in colours.iter().enumerate() {
            let base = self.offsets[k];
            self.colour[base..base + layer.len()].copy_from_slice(layer);
            let mut by_colour: Vec<(u64, usize, usize)> = layer
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, twins[k][i], i))
                .collect();
            by_colour.sort_unstable();
            for class in by_colour.chunk_by(|x, y| x.0 == y.0) {
                if class[0].1 != class[class.len() - 1].1 {
                    open.extend(class.iter().map(|x| (base + x.2) as u32));
                }
            }
        }
        // Open neurons get a provisional mark, then a piece by a search through open neurons.
        const OPEN: u32 = NO_PIECE - 1;
        for &v in &open {
            self.piece[v as usize] = OPEN;
        }
        let mut stack = Vec::new();
        for &start in &open {
            if self.piece[start as usize] != OPEN {
                continue;
            }
            let id = self.piece_size.len() as u32;
            self.piece[start as usize] = id;
            stack.push(start);
            let mut size = 0;
            while let Some(v) = stack.pop() {
                size += 1;
                let next: Vec<u32> = self.neighbours(net, v).map(|(u, _)| u).collect();
                for u in next {
                    if self.piece[u as usize] == OPEN {
                        self.piece[u as usize] = id;
                        stack.push(u);
                    }
                }
            }
            self.piece_size.push(size);
        }
    }

    /// The open neighbours of `v` as (colour, position and direction, neuron), sorted.
    fn open_neighbours(&self, net: &Network, v: u32) -> Vec<(u64, u32, u32)> {
        let mut list: Vec<(u64, u32, u32)> = self
            .neighbours(net, v)
            .filter(|&(u, _)| self.piece[u as usize] != NO_PIECE)
            .map(|(u, tag)| (self.colour[u as usize], tag, u))
            .collect();
        list.sort_unstable();
        list
    }

    /// A guess at an automorphism that swaps the piece of neuron `from` with the (other) piece
    /// of `to`, mapping `from` to `to`: from there, each open neighbour of a mapped neuron goes to
    /// the first free open neighbour of its image with the same colour and connection. Exact
    /// for pieces that match colour for colour; a wrong guess is caught by the check after.
    fn guess_swap(&mut self, net: &Network, from: u32, to: u32) -> Option<Permutation> {
        let (pa, pb) = (self.piece[from as usize], self.piece[to as usize]);
        if pa == pb || pa == NO_PIECE || pb == NO_PIECE {
            return None;
        }
        if self.piece_size[pa as usize] != self.piece_size[pb as usize] {
            return None;
        }
        let mut pairs: Permutation = vec![(from, to)];
        self.image[from as usize] = to;
        self.taken[to as usize] = true;
        let mut ok = true;
        let mut next = 0;
        while ok && next < pairs.len() {
            let (x, y) = pairs[next];
            next += 1;
            let (nx, ny) = (self.open_neighbours(net, x), self.open_neighbours(net, y));
            if nx.len() != ny.len() {
                ok = false;
                break;
            }
            let mut start = 0;
            for &(colour, tag, u) in &nx {
                if self.image[u as usize] != u {
                    continue; // mapped already
                }
                // Neighbours of equal (colour, tag) are consecutive in both sorted lists.
                while start < ny.len() && (ny[start].0, ny[start].1) < (colour, tag) {
                    start += 1;
                }
                let free = ny[start..]
                    .iter()
                    .take_while(|w| (w.0, w.1) == (colour, tag))
                    .find(|w| !self.taken[w.2 as usize]);
                match free {
                    Some(&(_, _, w)) => {
                        self.image[u as usize] = w;
                        self.taken[w as usize] = true;
                        pairs.push((u, w));
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        for &(u, w) in &pairs {
            self.image[u as usize] = u;
            self.taken[w as usize] = false;
        }
        if !ok || pairs.len() != self.piece_size[pa as usize] {
            return None;
        }
        let back: Vec<(u32, u32)> = pairs.iter().map(|&(u, w)| (w, u)).collect();
        pairs.extend(back);
        Some(pairs)
    }

    /// Whether `gamma` (a permutation within layers) maps the network onto itself: every
    /// neuron it moves, and every neuron fed by one, has as inputs the images of its inputs
    /// (input features stay).
    fn is_automorphism(&mut self, net: &Network, gamma: &Permutation) -> bool {
        for &(v, image) in gamma {
            self.image[v as usize] = image;
        }
        let mut check: Vec<u32> = Vec::new();
        for &(v, _) in gamma {
            check.push(v);
            check.extend(
                self.neighbours(net, v)
                    .filter(|&(_, tag)| tag % 2 == 1)
                    .map(|(u, _)| u),
            );
        }
        check.sort_unstable();
        check.dedup();
        let layers = net.layers();
        let mut mapped: Vec<Idx> = Vec::new();
        let holds = check.iter().all(|&y| {
            let (k, i) = self.neuron(y);
            let (k2, j) = self.neuron(self.image[y as usize]);
            if k2 != k {
                return false;
            }
            let layer = &layers[k];
            if k == 0 {
                return layer.inputs(i) == layer.inputs(j);
            }
            let (g, before) = (layer.group(), self.offsets[k - 1]);
            mapped.clear();
            mapped.extend(layer.inputs(i).iter().map(|&r| {
                let (p, q) = (r as usize / g, r as usize % g);
                ((self.image[before + p] as usize - before) * g + q) as Idx
            }));
            mapped.sort_unstable();
            mapped == layer.inputs(j)
        });
        for &(v, _) in gamma {
            self.image[v as usize] = v;
        }
        holds
    }

    /// The automorphism taking each neuron of one leaf's order to the neuron of the same label
    /// in another leaf's order of the same form.
    fn between(&self, from: &[Vec<usize>], to: &[Vec<usize>]) -> Permutation {
        let mut gamma = Vec::new();
        for (k, (a, b)) in from.iter().zip(to).enumerate() {
            let base = self.offsets[k];
            for (&x, &y) in a.iter().zip(b) {
                if x != y {
                    gamma.push(((base + x) as u32, (base + y) as u32));
                }
            }
        }
        gamma
    }

    /// The classes of interchangeable pieces of the latest partition ([`Self::find_pieces`]):
    /// pieces of two neurons or more, each with neurons of distinct colours up to twins,
    /// grouped by their colours, a group kept only if the piece-for-piece swap of its first
    /// piece with each other one (colour to colour) is an automorphism. For each class, its
    /// pieces' lowest neuron of lowest colour.
    fn piece_classes(&mut self, net: &Network, twins: &[Vec<usize>]) -> Vec<Vec<u32>> {
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); self.piece_size.len()];
        for (v, &p) in self.piece.iter().enumerate() {
            if p != NO_PIECE && self.piece_size[p as usize] > 1 {
                members[p as usize].push(v as u32);
            }
        }
        let twin_of = |v: u32| {
            let (k, i) = self.neuron(v);
            (k, twins[k][i])
        };
        // Pieces with neurons of distinct colours up to twins, by their colours.
        let mut discrete: Vec<(Vec<u64>, Vec<u32>)> = Vec::new();
        for mut piece in members.into_iter().filter(|m| !m.is_empty()) {
            piece.sort_unstable_by_key(|&v| (self.colour[v as usize], v));
            let distinct = piece.windows(2).all(|w| {
                self.colour[w[0] as usize] != self.colour[w[1] as usize]
                    || twin_of(w[0]) == twin_of(w[1])
            });
            if distinct {
                let colours = piece.iter().map(|&v| self.colour[v as usize]).collect();
                discrete.push((colours, piece));
            }
        }
        discrete.sort_unstable();
        let mut classes = Vec::new();
        for group in discrete.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            let first = &group[0].1;
            let all_swap = group[1..].iter().all(|(_, other)| {
                let mut gamma: Permutation =
                    first.iter().copied().zip(other.iter().copied()).collect();
                gamma.extend(other.iter().copied().zip(first.iter().copied()));
                self.is_automorphism(net, &gamma)
            });
            if all_swap {
                classes.push(group.iter().map(|(_, piece)| piece[0]).collect());
            }
        }
        classes
    }
}
/// Each layer's new label of each neuron: the inverse of `order[k]`.
fn ranks(order: &[Vec<usize>]) -> Vec<Vec<Idx>> {
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
fn relabelled_layers(net: &Network, order: &[Vec<usize>]) -> Vec<Csc> {
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
struct Sorter {
    bits: Vec<u64>,
}

impl Sorter {
    fn new(bound: usize) -> Self {
        Sorter {
            bits: vec![0; bound.div_ceil(64)],
        }
    }

    /// Writes the distinct `labels`, as many as `out` is long, to `out` in increasing order.
    fn sort_into(&mut self, labels: impl Iterator<Item = Idx>, out: &mut [Idx]) {
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
type Parts<'l> = (usize, usize, &'l [usize], &'l [Idx]);

fn parts(net: &Network) -> Vec<Parts<'_>> {
    net.layers()
        .iter()
        .map(|l| (l.n_in(), l.group(), l.indptr(), l.indices()))
        .collect()
}

/// The parts of `net`'s layers relabelled as `layers`.
fn leaf_parts<'l>(net: &'l Network, layers: &'l [Csc]) -> Vec<Parts<'l>> {
    net.layers()
        .iter()
        .zip(layers)
        .map(|(l, (indptr, indices))| (l.n_in(), l.group(), &indptr[..], &indices[..]))
        .collect()
}

/// The canonical form of relabelled layers (see [`Parts`]): per
/// layer its shape, then each neuron's input count and inputs, item by item (compared
/// lazily, never stored: two networks that differ usually differ in the first neurons).
fn form<'l>(layers: &'l [Parts<'l>]) -> impl Iterator<Item = u32> + 'l {
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
fn relabelled(net: &Network, layers: Vec<Csc>) -> Result<Network> {
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

#[cfg(test)]
mod tests {
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
        let random_layer =
            |next: &mut dyn FnMut() -> usize, n_in: usize, n_out: usize, p: usize| {
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
}
