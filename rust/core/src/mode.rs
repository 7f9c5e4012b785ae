//! Modes: what decides *which* optimal assignment carries the alignment into the next layer
//! (docs/definition.md#solver-guarantees). Every mode gives each layer an optimal cost; they
//! differ in the choice among optimal assignments.
//!
//! A mode prepares each network once ([`Mode::prepare`]) and then matches pairs of prepared
//! networks ([`Mode::distance`]); the pair scheduler (`crate::pairwise`) drives any mode the same
//! way. The modes are peers:
//!
//! - [`AsGiven`]: the networks as numbered, each layer solved by the algorithm the policy picks
//!   (`"paper"`: SciPy's choices; `"auto"`, `"sparse"`, `"dense"`: the fastest optimal one).
//!   Nothing to prepare.
//! - [`Canonical`]: the networks in canonical order, the choice made by structure alone
//!   (`crate::canonical`). Preparing is the canonical labelling and structural colours.

use crate::cancel::Cancel;
use crate::canonical;
use crate::error::Result;
use crate::network::{match_as_given, LayerMatch};
use crate::policy::Options;
use crate::topology::Network;

/// A way to match two networks layer by layer.
pub trait Mode: Sync {
    /// What the mode computes once per network, whatever it is paired with.
    type Prepared<'n>: Send + Sync
    where
        Self: 'n;

    /// Prepares `net` (the same result whichever pair it is used in).
    fn prepare<'n>(&self, net: &'n Network, cancel: &Cancel) -> Result<Self::Prepared<'n>>;

    /// The first `depth` layers of the distance of `b` from `a` (comparable networks, `depth` at
    /// most theirs: the scheduler checks both).
    fn distance(
        &self,
        a: &Self::Prepared<'_>,
        b: &Self::Prepared<'_>,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>>;
}

/// The networks as numbered; each layer solved as the policy plans it.
pub struct AsGiven<'o> {
    pub options: &'o Options,
}

impl Mode for AsGiven<'_> {
    type Prepared<'n>
        = &'n Network
    where
        Self: 'n;

    fn prepare<'n>(&self, net: &'n Network, _cancel: &Cancel) -> Result<&'n Network> {
        Ok(net)
    }

    fn distance(
        &self,
        a: &&Network,
        b: &&Network,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>> {
        match_as_given(a, b, depth, self.options, cancel)
    }
}

/// The canonical mode: structure alone decides.
pub struct Canonical<'o> {
    pub options: &'o Options,
}

impl Mode for Canonical<'_> {
    type Prepared<'n>
        = canonical::Prepared
    where
        Self: 'n;

    fn prepare(&self, net: &Network, cancel: &Cancel) -> Result<canonical::Prepared> {
        canonical::prepare(net, cancel)
    }

    fn distance(
        &self,
        a: &canonical::Prepared,
        b: &canonical::Prepared,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>> {
        canonical::distance_prepared(a, b, Some(depth), self.options, cancel)
    }
}
