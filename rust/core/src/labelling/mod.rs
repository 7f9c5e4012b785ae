//! Canonical labelling of a network's neurons (docs/definition.md#canonical-labels): an order
//! of every layer's neurons that depends on the network's structure alone, so that a network
//! and any relabelled copy of it get the same labelled network (their *canonical form*).
//!
//! The search reads what it labels through [`Structure`]: vertices in cells, renamed only
//! within their cell. A chain ([`Chain`], `chain.rs`) has a cell per layer; a graph of
//! permutation groups (`graph.rs`, docs/definition.md#graph-canonical-labels) a cell per group
//! that may be renamed and one per head set, whose head vertices keep heads renamed as blocks.
//! Everything below holds for both; the chain's labelling is the one it had before graphs.
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
pub(crate) enum Pruning {
    /// Only twins (the search before automorphism pruning, for the tests that compare).
    #[cfg_attr(not(test), allow(dead_code))]
    Twins,
    /// Twins and the images of explored branches under known automorphisms.
    Automorphisms,
}

/// What the search labels: vertices in *cells* (a chain's layers; a graph's groups and heads),
/// renamed only within their cell, with colours refined from structure alone. The search
/// (individualisation-refinement with twins and automorphism pruning) reads a structure only
/// through this trait; vertex `i` of cell `k` is numbered `offsets[k] + i` across cells.
pub(crate) trait Structure {
    /// What the automorphism search reads of the connections, built at the first node that
    /// branches.
    type Links;
    /// A leaf's relabelled structure (compared by its form).
    type Form: Clone;

    /// The number of vertices of each cell.
    fn cell_sizes(&self) -> Vec<usize>;
    /// The cell as error messages name it ("layer 3", "group 5").
    fn cell_name(&self, k: usize) -> String;
    /// Rounds of refinement until the partition into colour classes stops splitting.
    fn refine_to_stable(&self, colours: &mut Vec<Vec<u64>>);
    /// `twins[k][i]`: the lowest-numbered vertex of cell `k` with exactly vertex `i`'s
    /// connections (only vertices of equal colour are compared).
    fn twin_classes(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>>;
    fn links(&self) -> Self::Links;
    /// Every connection of vertex `i` of cell `k` as (other vertex, tag): tags tell apart the
    /// kinds of connection (their direction, position, writer), equal for an edge and its image
    /// under any renaming.
    fn neighbours<'n>(
        &'n self,
        links: &'n Self::Links,
        offsets: &'n [usize],
        k: usize,
        i: usize,
    ) -> impl Iterator<Item = (u32, u32)> + 'n;
    /// Whether `gamma` (vertices to vertices of their cells) maps the structure onto itself.
    /// `image` is the identity on entry and must be left so.
    fn is_automorphism(
        &self,
        links: &Self::Links,
        offsets: &[usize],
        image: &mut [u32],
        gamma: &Permutation,
    ) -> bool;
    /// A leaf's order of each cell from its colours (each class a set of twins).
    fn leaf_order(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>>;
    /// The structure with every cell in `order`.
    fn relabel(&self, order: &[Vec<usize>]) -> Self::Form;
    /// How two relabelled structures compare (equal exactly when they are the same).
    fn cmp_forms(&self, a: &Self::Form, b: &Self::Form) -> Ordering;
}

/// A chain as the search reads it: a cell per layer, the input features fixed.
pub(crate) struct Chain<'a> {
    pub(crate) net: &'a Network,
    pub(crate) refiner: &'a Refiner<'a>,
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
    let chain = Chain { net, refiner };
    let ((order, neurons), nodes) = search_leaf(&chain, start, cancel, pruning)?;
    let network = relabelled(net, neurons)?;
    Ok((Labelled { order, network }, nodes))
}

/// The smallest leaf of the search over `structure` from colours `start`, and the number of
/// search nodes it took.
pub(crate) fn search_leaf<S: Structure>(
    structure: &S,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
    pruning: Pruning,
) -> Result<(Leaf<S::Form>, usize)> {
    let twins = structure.twin_classes(&start);
    let limit = match pruning {
        Pruning::Twins => UNPRUNED_NODES,
        Pruning::Automorphisms => SEARCH_NODES,
    };
    let mut search = Search {
        structure,
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
    let best = search.best.expect("the search reaches a leaf");
    Ok((best, search.nodes))
}

/// A neuron's connections: its inputs, and the (kernel position, neuron) pairs it feeds.
type Connections<'l> = (&'l [Idx], Vec<(usize, Idx)>);

/// A layer in compressed sparse column form: `indices[indptr[c]..indptr[c + 1]]` are neuron
/// `c`'s inputs, increasing.
type Csc = (Vec<usize>, Vec<Idx>);

/// A leaf of the search: its order, and the structure relabelled.
pub(crate) type Leaf<F> = (Vec<Vec<usize>>, F);

/// A permutation of neurons (numbered across layers, [`Graph`]) as the pairs it moves,
/// `(neuron, image)`; each layer's neurons go to neurons of the same layer.
pub(crate) type Permutation = Vec<(u32, u32)>;

mod automorphisms;
mod chain;
mod form;
pub(crate) mod graph;
mod search;
#[cfg(test)]
mod tests;
mod twins;

use automorphisms::*;
use form::*;
use search::*;
use twins::*;
