//! The one error type of the core. The binding layer maps each variant to a Python exception.

use std::fmt;

/// Everything that can go wrong in the core. Messages name the layer (0-based) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A layer's buffers do not describe a valid binary topology.
    InvalidLayer { layer: usize, reason: String },
    /// Two networks (or two consecutive layers) cannot be compared or chained.
    Mismatch(String),
    /// A request that makes no sense (unknown layer index, empty list, ...).
    InvalidArgument(String),
    /// The caller asked the computation to stop (Ctrl-C in Python).
    Interrupted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidLayer { layer, reason } => write!(f, "layer {layer}: {reason}"),
            Error::Mismatch(msg) | Error::InvalidArgument(msg) => f.write_str(msg),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
