//! # nnstd-core
//!
//! The Neural Network Sparse Topology Distance (Liu et al., ECML-PKDD 2020) in pure Rust:
//! binary layer topologies ([`topology`]), neuron costs from sparse overlaps ([`similarity`]),
//! SciPy-exact assignment ([`assign::scipy_order`]), network distances with the matching carried
//! forward ([`network`]), graphs of permutation groups ([`graph`], [`graph_match`]) and parallel all-pairs matrices ([`pairwise`]). No Python here: the
//! `nnstd-python` crate binds it.

pub(crate) mod alloc;
pub mod arguments;
pub mod assign;
pub mod cancel;
pub mod canonical;
pub mod error;
pub mod graph;
pub mod graph_canonical;
pub mod graph_match;
pub mod labelling;
pub mod mode;
pub mod network;
pub mod pairwise;
pub mod policy;
pub mod refine;
pub mod similarity;
pub mod topology;

#[cfg(test)]
mod testing;

pub use cancel::Cancel;
pub use error::{Error, Result};
pub use graph::{Graph, Group, GroupKind, Read, Writer};
pub use mode::{Options, Solver};
pub use network::LayerMatch;
pub use pairwise::{distance, pair_count, pairs, pairwise, Pairs, Shape};
pub use policy::DEFAULT_MEMORY_BUDGET;
pub use topology::{Idx, Layer, Network};
