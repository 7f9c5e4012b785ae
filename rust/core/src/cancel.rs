//! Cooperative cancellation and progress counting, shared between the caller and running work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Shared with the caller while work runs: a flag the caller raises to stop between units of
/// work, and counts of finished units the caller may read to show progress: pairs (for
/// all-pairs matrices) and layers (for one distance; a matrix's pairs count theirs too).
#[derive(Debug, Default)]
pub struct Cancel {
    stop: AtomicBool,
    done: AtomicUsize,
    layers: AtomicUsize,
}

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Counts one finished unit of work.
    pub fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of finished units so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Counts one finished layer.
    pub fn layer_finished(&self) {
        self.layers.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of finished layers so far.
    pub fn layers_finished(&self) -> usize {
        self.layers.load(Ordering::Relaxed)
    }

    pub fn check(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}
