//! The depth-first search over the tree of individualisations, with automorphism pruning.

use super::*;

/// What the caller of [`Search::explore`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Go on with the next candidate.
    Continue,
    /// Stop exploring the branch of the current candidate of path level `.0` (it is the image of
    /// an earlier branch under a known automorphism), and go on with that level's next one.
    Abandon(usize),
}

/// Marks a neuron not singled out on the current path ([`AutomorphismState::fixed_at`]).
pub(super) const NOT_FIXED: u32 = u32::MAX;

/// The depth-first search over the tree of individualisations (module documentation). Its
/// invariant: a branch is skipped or abandoned only when a checked automorphism fixing
/// everything singled out above it maps its candidate to an earlier candidate, so every leaf
/// left out has the form of an earlier leaf of the tree without pruning.
pub(super) struct Search<'a, S: Structure> {
    pub(super) structure: &'a S,
    pub(super) twins: Vec<Vec<usize>>,
    pub(super) pruning: Pruning,
    pub(super) limit: usize,
    pub(super) nodes: usize,
    /// The first leaf reached, and the leaf of smallest form found so far (the first of them).
    pub(super) first: Option<Leaf<S::Form>>,
    pub(super) best: Option<Leaf<S::Form>>,
    /// Whether `best` is still the first leaf (so that a new leaf is compared with it once).
    pub(super) best_is_first: bool,
    pub(super) cancel: &'a Cancel,
    /// The network's connections both ways, built at the first node that branches.
    pub(super) graph: Option<AutomorphismState<S>>,
    /// The nodes from the root to the current one, each with its candidates' orbits.
    pub(super) path: Vec<Level>,
    /// Automorphisms found, kept for nodes entered later (within [`GENERATORS`] and
    /// [`GENERATOR_ENTRIES`]).
    pub(super) generators: Vec<Permutation>,
    pub(super) generator_entries: usize,
}

/// One node of the current path.
pub(super) struct Level {
    pub(super) layer: usize,
    /// The target class's neurons, increasing, and the candidate each stands for (its twin
    /// in `candidates`, as an index there).
    pub(super) members: Vec<usize>,
    pub(super) slot_of: Vec<usize>,
    /// One neuron per set of twins in the class (the lowest-numbered), increasing.
    pub(super) candidates: Vec<usize>,
    /// Orbits of the candidates under the automorphisms known to fix every neuron singled out
    /// above (and at) this node.
    pub(super) orbits: Orbits,
    /// The candidate being explored (`usize::MAX` before the first).
    pub(super) current: usize,
    /// Neurons (numbered across layers) singled out at this node before its candidates.
    pub(super) marks: Vec<u32>,
}

/// Union-find over candidates, each class knowing its lowest candidate.
pub(super) struct Orbits {
    pub(super) parent: Vec<usize>,
}

impl Orbits {
    pub(super) fn new(n: usize) -> Self {
        Orbits {
            parent: (0..n).collect(),
        }
    }

    /// The lowest candidate of `x`'s orbit (each class's root is its lowest member).
    pub(super) fn least(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    pub(super) fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.least(a), self.least(b));
        let (low, high) = (ra.min(rb), ra.max(rb));
        self.parent[high] = low;
    }
}

/// The target class of a node: its layer, colour, and one neuron per set of twins in it.
pub(super) struct Target {
    pub(super) layer: usize,
    pub(super) colour: u64,
    pub(super) candidates: Vec<usize>,
}

impl<S: Structure> Search<'_, S> {
    pub(super) fn explore(&mut self, mut colours: Vec<Vec<u64>>) -> Result<Flow> {
        self.nodes += 1;
        if self.nodes > self.limit {
            let cell = self
                .structure
                .cell_name(self.path.last().map_or(0, |l| l.layer));
            return Err(Error::InvalidArgument(format!(
                "{cell}: the canonical labelling needs more than {} search steps (its \
                 neurons are highly symmetric); use the \"paper\" or \"auto\" solver",
                self.limit
            )));
        }
        self.cancel.check()?;
        // Refinement to a stable partition only where the colours do not already single out
        // every neuron up to twins (the usual case at the root after the first rounds).
        let mut target = self.target_cell(&colours);
        if target.is_some() {
            self.structure.refine_to_stable(&mut colours);
            target = self.target_cell(&colours);
        }
        let mut marks = Vec::new();
        if target.is_some() && self.pruning == Pruning::Automorphisms {
            let (structure, twins) = (self.structure, &self.twins);
            let state = self
                .graph
                .get_or_insert_with(|| AutomorphismState::new(structure));
            state.find_pieces(structure, &colours, twins);
            if let Some(marked) = interchangeable_pieces(state, structure, twins) {
                for &(v, mark) in &marked {
                    let (k, i) = state.neuron(v);
                    colours[k][i] = self::marked(colours[k][i], mark);
                }
                self.structure.refine_to_stable(&mut colours);
                target = self.target_cell(&colours);
                marks = marked.iter().map(|&(v, _)| v).collect();
                let state = self.graph.as_mut().expect("built above");
                state.find_pieces(structure, &colours, &self.twins);
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
    pub(super) fn branch(&mut self, colours: &[Vec<u64>]) -> Result<Flow> {
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
    pub(super) fn target_cell(&self, colours: &[Vec<u64>]) -> Option<Target> {
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

    /// A leaf: vertices ordered by colour (twins, the only vertices still sharing one, by
    /// index). With pruning, a leaf of the same form as the first or the best gives an
    /// automorphism.
    pub(super) fn leaf(&mut self, colours: &[Vec<u64>]) -> Flow {
        let order = self.structure.leaf_order(colours);
        let layers = self.structure.relabel(&order);
        let compare = |leaf: &Option<Leaf<S::Form>>| {
            leaf.as_ref()
                .map(|(_, other)| self.structure.cmp_forms(&layers, other))
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
                let structure = self.structure;
                debug_assert!(self.state_mut().is_automorphism(structure, &gamma));
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
    pub(super) fn state(&self) -> &AutomorphismState<S> {
        self.graph
            .as_ref()
            .expect("built at the first branching node")
    }

    pub(super) fn state_mut(&mut self) -> &mut AutomorphismState<S> {
        if self.graph.is_none() {
            self.graph = Some(AutomorphismState::new(self.structure));
        }
        self.graph.as_mut().expect("just built")
    }

    /// Joins the orbits of every node of the path whose singled-out neurons `gamma` fixes, keeps
    /// it for later nodes if `store`, and returns the highest level whose current candidate is
    /// now in the orbit of an earlier one (its branch is then an image of an earlier branch).
    pub(super) fn add_generator(&mut self, gamma: Permutation, store: bool) -> Option<usize> {
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
    pub(super) fn apply_stored_generators(&mut self, level: usize) {
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
    pub(super) fn swap_pieces(&mut self, level: usize) {
        let structure = self.structure;
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
                let swap = state.guess_swap(structure, from, to);
                match swap {
                    Some(gamma) if state.is_automorphism(structure, &gamma) => {
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
pub(super) fn interchangeable_pieces<S: Structure>(
    state: &mut AutomorphismState<S>,
    structure: &S,
    twins: &[Vec<usize>],
) -> Option<Vec<(u32, usize)>> {
    let classes = state.piece_classes(structure, twins);
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
pub(super) fn join_orbits(node: &mut Level, gamma: &Permutation, offsets: &[usize]) {
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
