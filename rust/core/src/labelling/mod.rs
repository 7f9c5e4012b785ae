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

mod automorphisms;
mod form;
mod search;
#[cfg(test)]
mod tests;
mod twins;

use automorphisms::*;
use form::*;
use search::*;
use twins::*;
