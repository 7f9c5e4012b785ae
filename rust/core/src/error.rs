//! The one error type of the core. The binding layer maps each variant to a Python exception.

use std::fmt;

/// A byte count in binary units, for messages.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

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
    /// The system refused a buffer of `bytes` bytes (`what` it was for, such as "the dense cost
    /// matrix") that the memory budget allowed: the machine, or an address-space limit
    /// (`ulimit -v`), gives less than the budget. `layer` is set by whoever knows which layer
    /// was being matched ([`Error::in_layer`]).
    OutOfMemory {
        layer: Option<usize>,
        what: &'static str,
        bytes: u64,
    },
}

impl Error {
    /// The error, attributed to layer `k` where it does not name a layer yet.
    pub fn in_layer(self, k: usize) -> Error {
        match self {
            Error::OutOfMemory {
                layer: None,
                what,
                bytes,
            } => Error::OutOfMemory {
                layer: Some(k),
                what,
                bytes,
            },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidLayer { layer, reason } => write!(f, "layer {layer}: {reason}"),
            Error::Mismatch(msg) | Error::InvalidArgument(msg) => f.write_str(msg),
            Error::Interrupted => f.write_str("interrupted"),
            // A layer's buffers are what the memory budget bounds; others (the list of pairs,
            // the pairwise output) grow with the number of networks.
            Error::OutOfMemory {
                layer: Some(k),
                what,
                bytes,
            } => write!(
                f,
                "layer {k}: not enough memory for {what} ({}), which the memory budget allows; \
                 free memory, or lower the memory budget to what this machine can give",
                human_bytes(*bytes)
            ),
            Error::OutOfMemory {
                layer: None,
                what,
                bytes,
            } => write!(
                f,
                "not enough memory for {what} ({}); free memory, or compare fewer networks at once",
                human_bytes(*bytes)
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(4_917_248), "4.7 MiB");
        assert_eq!(human_bytes(34_359_738_368), "32.0 GiB");
    }
}
