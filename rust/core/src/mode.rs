//! Modes: what decides *which* optimal assignment carries the alignment into the next layer
//! (docs/definition.md#solver-guarantees). Every mode gives each layer an optimal cost; they
//! differ in the choice among optimal assignments.
//!
//! The core is layered: costs (`crate::similarity`) -> assignment algorithms (`crate::assign`,
//! knowing nothing of modes) -> which algorithm for a layer (`crate::policy`) -> modes (here)
//! -> the loops that carry matchings (`crate::network` for chains, `crate::graph_match` for
//! graphs) -> the pair scheduler (`crate::pairwise`). Each layer imports only layers below it.
//!
//! A mode is three things, and the loops and the scheduler drive any mode through them alone:
//!
//! 1. [`Mode::prepare`]: what it computes once per network, whatever the network is paired with
//!    (the scheduler prepares each network once and reuses it across pairs);
//! 2. [`Mode::pair`]: what it decides once per pair of prepared networks, giving a [`Matcher`]
//!    (for instance the canonical mode's choice of which network is matched as A);
//! 3. [`Matcher::match_layer`]: one layer's optimal assignment, given A's layer and B's layer
//!    with B's inputs already renamed by the previous layer's matching (the loop carries the
//!    labels, the mode never does), and [`Matcher::in_callers_labels`]: a matching made on the
//!    networks the matcher walks ([`Matcher::networks`]) in the callers' own labels.
//!
//! The peers:
//!
//! - [`AsGiven`]: the networks as numbered, each layer solved by the algorithm the policy picks
//!   (`"paper"`: SciPy's choices; `"auto"`, `"sparse"`, `"dense"`: the fastest optimal one, or
//!   the one named). Nothing to prepare, nothing to decide per pair.
//! - [`Canonical`]: the networks in canonical order, the choice made by structure alone
//!   (`crate::canonical`). Preparing is the canonical labelling and structural colours; a pair
//!   decides its orientation; each layer makes the canonical choice.
//!
//! # Graphs (the hook)
//!
//! A mode is defined on a network shape `N` by implementing [`Mode<N>`]; the scheduler runs a
//! solver on a shape only through [`Modes::in_mode`], which needs every mode on that shape.
//! On graphs of permutation groups (`crate::graph`) the graph loop (`crate::graph_match`)
//! drives the same [`Matcher`], group by group in matching order, so that a mode on graphs
//! provides:
//!
//! - `Mode<Graph>::prepare`: whatever it needs per graph (for the canonical mode: canonical
//!   labels and colours per group), and a graph to walk (for the canonical mode: the graph in
//!   canonical order), returned by `Matcher<Graph>::networks` (the mode's own parts belong in
//!   its module, `crate::canonical`; the trait impls here only hand them over);
//! - `Mode<Graph>::pair`: the matcher of a pair (the canonical mode: its orientation);
//! - `Matcher::match_layer(g, a, b, cancel)`: group `g`'s assignment (`g` indexes
//!   `Graph::groups`), where `a` and `b` are the group's input sets in A and in B, built by the
//!   graph loop as a layer (inputs from groups matched earlier, B's renamed by their matchings;
//!   docs/definition.md#graph-input-sets), unit `u` of the group being neuron `u` of the layer;
//! - `Matcher::match_head_pair(g, (p, q), a, b, cancel)`: for a group of heads, the assignment
//!   of A's head `p` against B's head `q` (`a`, `b`: those heads' units, in order, of the
//!   group's input sets; unit `u` of head `p` is unit `p * dim + u` of the group); by default
//!   `match_layer`;
//! - `Matcher::pair_heads(g, heads, block, same, cancel)`: the pairing of the heads from their
//!   block costs; by default SciPy's rules (docs/definition.md#graph-heads), the canonical mode
//!   its own choice (docs/definition.md#graph-canonical-mode);
//! - `Matcher::in_callers_labels(g, matching)`: group `g`'s matching in the callers' labels
//!   (fixed groups too: the loop matches them by the identity on the graphs it walks).
//!
//! Both modes are defined on both shapes; the canonical mode's graph parts are in
//! `crate::graph_canonical` (a mode that refuses a shape can name `Infallible` as its matcher
//! and fail in its preparation).

use std::convert::Infallible;

use crate::assign::{scipy_order, Algorithm, Assignment};
use crate::cancel::Cancel;
use crate::canonical::{self, Oriented};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::graph_canonical::{self, OrientedGraph, PreparedGraph};
use crate::policy::{plan, solve_layer, Pick, DEFAULT_MEMORY_BUDGET};
use crate::topology::{Layer, Network};

/// The user's choice: a mode and, for the networks as numbered, the algorithms its layers pick
/// from ([`Solver::mode`] says which; nowhere else turns a solver into a mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// The default: optimal layer costs, the choice among optimal assignments made by
    /// structure alone (`crate::canonical`), found with the fastest optimal algorithm.
    #[default]
    Canonical,
    /// The fastest optimal algorithm for each layer: `Sparse` or `Dense`.
    Auto,
    /// SciPy's optimal assignment, reproduced choice for choice (the paper's numbers).
    Paper,
    /// Primal-dual phases on the similarity graph.
    Sparse,
    /// Jonker-Volgenant on the dense cost matrix.
    Dense,
}

impl Solver {
    /// Every solver by the name users give, `"exact"` being the paper mode's former name.
    pub const NAMES: [(&'static str, Solver); 6] = [
        ("canonical", Solver::Canonical),
        ("auto", Solver::Auto),
        ("paper", Solver::Paper),
        ("exact", Solver::Paper),
        ("sparse", Solver::Sparse),
        ("dense", Solver::Dense),
    ];

    /// The name users give for this solver (the first listed in [`Solver::NAMES`]).
    pub fn name(self) -> &'static str {
        Solver::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map(|&(n, _)| n)
            .expect("every solver has a name")
    }

    /// The solver named `name`, or an error listing the names.
    pub fn from_name(name: &str) -> Result<Solver> {
        Solver::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
            .ok_or_else(|| {
                let names: Vec<String> = Solver::NAMES
                    .iter()
                    .map(|(n, _)| format!("{n:?}"))
                    .collect();
                Error::InvalidArgument(format!(
                    "unknown solver {name:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The mode this solver names, with the memory budget of each layer's costs.
    fn mode(self, budget: u64) -> SolverMode {
        let as_given = |pick| SolverMode::AsGiven(AsGiven { pick, budget });
        match self {
            Solver::Canonical => SolverMode::Canonical(Canonical { budget }),
            Solver::Auto => as_given(Pick::Fastest),
            Solver::Paper => as_given(Pick::Paper),
            Solver::Sparse => as_given(Pick::Sparse),
            Solver::Dense => as_given(Pick::Dense),
        }
    }
}

/// How pairs are matched: the solver and each layer's memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub solver: Solver,
    /// Bytes that one layer's cost representation may take (on the sparse path, with the
    /// solver's arrays; `crate::policy`).
    pub memory_budget: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            solver: Solver::default(),
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl Options {
    pub fn new(solver: Solver) -> Self {
        Options {
            solver,
            ..Options::default()
        }
    }
}

/// A mode as [`Solver::mode`] names it.
enum SolverMode {
    AsGiven(AsGiven),
    Canonical(Canonical),
}

/// One layer's assignment as a mode made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Solved {
    /// In the labels of the networks the matcher walks ([`Matcher::networks`]).
    pub assignment: Assignment,
    /// The algorithm that made it (what the layer reports).
    pub algorithm: Algorithm,
}

/// A way to match two networks of shape `N` (module documentation).
pub trait Mode<N>: Sync {
    /// What the mode computes once per network, whatever it is paired with.
    type Prepared<'n>: Send + Sync
    where
        Self: 'n,
        N: 'n;

    /// The matcher of one pair of prepared networks.
    type Pair<'p>: Matcher<N>
    where
        Self: 'p,
        N: 'p;

    /// Prepares `net` (the same result whichever pair it is used in).
    fn prepare<'n>(&self, net: &'n N, cancel: &Cancel) -> Result<Self::Prepared<'n>>;

    /// The matcher of `b` (the callers' B) against `a` (their A).
    fn pair<'p, 'n: 'p>(
        &'p self,
        a: &'p Self::Prepared<'n>,
        b: &'p Self::Prepared<'n>,
    ) -> Self::Pair<'p>;
}

/// One pair of prepared networks, matched one layer (or group) at a time by a loop that
/// carries the matchings (`crate::network`, `crate::graph_match`).
pub trait Matcher<N> {
    /// The networks the loop walks, the first matched as A: the callers' A and B, or their
    /// preparations (renumbered, possibly in the other order).
    fn networks(&self) -> (&N, &N);

    /// The assignment of layer (or group) `k`: A's `a` against B's `b`, B's inputs renamed by
    /// the matchings carried so far.
    fn match_layer(&self, k: usize, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Solved>;

    /// The assignment of A's head `p` against B's head `q` of group `k` (graphs only; module
    /// documentation).
    fn match_head_pair(
        &self,
        k: usize,
        _heads: (usize, usize),
        a: &Layer,
        b: &Layer,
        cancel: &Cancel,
    ) -> Result<Solved> {
        self.match_layer(k, a, b, cancel)
    }

    /// The pairing of the heads of group `k`'s head set (graphs only): `col_of_row` of the
    /// `heads x heads` block costs `block` (`block[p * heads + q]`: the set's groups' costs
    /// between A's head `p` and B's head `q`, from [`Matcher::match_head_pair`]); `same` when
    /// every group of the set has the same input sets in A and B. By default SciPy's rules on
    /// the block costs (docs/definition.md#graph-heads).
    fn pair_heads(
        &self,
        _k: usize,
        heads: usize,
        block: &[f64],
        _same: bool,
        cancel: &Cancel,
    ) -> Result<Vec<usize>> {
        Ok(scipy_order::try_solve_dense(heads, heads, block, cancel)?.col_of_row)
    }

    /// Layer (or group) `k`'s matching, made on [`Matcher::networks`], in the callers' labels:
    /// one entry per neuron of their A, each a neuron of their B or `UNMATCHED`.
    fn in_callers_labels(&self, k: usize, matching: Vec<usize>) -> Vec<usize>;
}

/// Work to run in whichever mode a solver names ([`Modes::in_mode`]).
pub trait InMode<N> {
    type Output;

    fn run<M: Mode<N>>(self, mode: &M) -> Self::Output;
}

/// A network shape on which every mode is defined (possibly refusing in its preparation).
pub trait Modes: Sized {
    /// Runs `work` in the mode `options.solver` names.
    fn in_mode<W: InMode<Self>>(options: &Options, work: W) -> W::Output;
}

impl<N> Modes for N
where
    AsGiven: Mode<N>,
    Canonical: Mode<N>,
{
    fn in_mode<W: InMode<N>>(options: &Options, work: W) -> W::Output {
        match options.solver.mode(options.memory_budget) {
            SolverMode::AsGiven(mode) => work.run(&mode),
            SolverMode::Canonical(mode) => work.run(&mode),
        }
    }
}

/// The networks as numbered; each layer solved as the policy plans it from `pick`.
pub struct AsGiven {
    pub pick: Pick,
    /// Bytes one layer's costs may take.
    pub budget: u64,
}

/// A pair in the [`AsGiven`] mode: the callers' networks themselves.
pub struct AsGivenPair<'p, N> {
    a: &'p N,
    b: &'p N,
    mode: &'p AsGiven,
}

/// [`AsGiven`] on chains and on graphs alike: nothing to prepare.
impl<N: Sync> Mode<N> for AsGiven {
    type Prepared<'n>
        = &'n N
    where
        N: 'n;

    type Pair<'p>
        = AsGivenPair<'p, N>
    where
        N: 'p;

    fn prepare<'n>(&self, net: &'n N, _cancel: &Cancel) -> Result<&'n N> {
        Ok(net)
    }

    fn pair<'p, 'n: 'p>(&'p self, a: &'p &'n N, b: &'p &'n N) -> AsGivenPair<'p, N> {
        AsGivenPair { a, b, mode: self }
    }
}

impl<N> Matcher<N> for AsGivenPair<'_, N> {
    fn networks(&self) -> (&N, &N) {
        (self.a, self.b)
    }

    fn match_layer(&self, k: usize, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Solved> {
        let plan = plan(k, a, b, self.mode.pick, self.mode.budget)?;
        Ok(Solved {
            assignment: solve_layer(plan, a, b, cancel)?,
            algorithm: plan.algorithm,
        })
    }

    fn in_callers_labels(&self, _k: usize, matching: Vec<usize>) -> Vec<usize> {
        matching
    }
}

/// The canonical mode: structure alone decides (`crate::canonical`).
pub struct Canonical {
    /// Bytes one layer's costs may take.
    pub budget: u64,
}

impl Mode<Network> for Canonical {
    type Prepared<'n> = canonical::Prepared;

    type Pair<'p> = Oriented<'p>;

    fn prepare(&self, net: &Network, cancel: &Cancel) -> Result<canonical::Prepared> {
        canonical::prepare(net, cancel)
    }

    fn pair<'p, 'n: 'p>(
        &'p self,
        a: &'p canonical::Prepared,
        b: &'p canonical::Prepared,
    ) -> Oriented<'p> {
        Oriented::new(a, b, self.budget)
    }
}

impl Matcher<Network> for Oriented<'_> {
    fn networks(&self) -> (&Network, &Network) {
        Oriented::networks(self)
    }

    fn match_layer(&self, k: usize, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Solved> {
        Ok(Solved {
            assignment: Oriented::match_layer(self, k, a, b, cancel)?,
            algorithm: Algorithm::Canonical,
        })
    }

    fn in_callers_labels(&self, k: usize, matching: Vec<usize>) -> Vec<usize> {
        Oriented::in_callers_labels(self, k, matching)
    }
}

/// The canonical mode on graphs (`crate::graph_canonical`): the graphs in canonical order,
/// each group chosen as a chain's layer, heads paired canonically.
impl Mode<Graph> for Canonical {
    type Prepared<'n> = PreparedGraph;

    type Pair<'p> = OrientedGraph<'p>;

    fn prepare(&self, graph: &Graph, cancel: &Cancel) -> Result<PreparedGraph> {
        graph_canonical::prepare_graph(graph, cancel)
    }

    fn pair<'p, 'n: 'p>(&'p self, a: &'p PreparedGraph, b: &'p PreparedGraph) -> OrientedGraph<'p> {
        OrientedGraph::new(a, b, self.budget)
    }
}

impl Matcher<Graph> for OrientedGraph<'_> {
    fn networks(&self) -> (&Graph, &Graph) {
        OrientedGraph::networks(self)
    }

    fn match_layer(&self, g: usize, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Solved> {
        Ok(Solved {
            assignment: OrientedGraph::match_layer(self, g, a, b, cancel)?,
            algorithm: Algorithm::Canonical,
        })
    }

    fn match_head_pair(
        &self,
        g: usize,
        heads: (usize, usize),
        a: &Layer,
        b: &Layer,
        cancel: &Cancel,
    ) -> Result<Solved> {
        Ok(Solved {
            assignment: OrientedGraph::match_head_pair(self, g, heads, a, b, cancel)?,
            algorithm: Algorithm::Canonical,
        })
    }

    fn pair_heads(
        &self,
        g: usize,
        _heads: usize,
        block: &[f64],
        same: bool,
        cancel: &Cancel,
    ) -> Result<Vec<usize>> {
        OrientedGraph::pair_heads(self, g, block, same, cancel)
    }

    fn in_callers_labels(&self, g: usize, matching: Vec<usize>) -> Vec<usize> {
        OrientedGraph::in_callers_labels(self, g, matching)
    }
}

/// The matcher of a mode that refuses a shape: never made (its preparation fails).
impl<N> Matcher<N> for Infallible {
    fn networks(&self) -> (&N, &N) {
        match *self {}
    }

    fn match_layer(&self, _: usize, _: &Layer, _: &Layer, _: &Cancel) -> Result<Solved> {
        match *self {}
    }

    fn in_callers_labels(&self, _: usize, _: Vec<usize>) -> Vec<usize> {
        match *self {}
    }
}
