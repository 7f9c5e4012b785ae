//! What a caller asks of the core besides the networks, checked here once for every binding:
//! the worker threads and the layers to report. The other rules live with what they govern:
//! solver names in `crate::mode`, the memory budget's default in `crate::policy`,
//! comparability in `crate::network` and `crate::graph`, the index limit as
//! `crate::topology::Idx`.
//!
//! Requests arrive as `i128`, wide enough for any count a caller types (Python's integers are
//! unbounded), so that an out-of-range value is refused naming the value as given rather than
//! wrapped or clamped on the way in.

use std::fmt::Display;

use crate::error::{Error, Result};

/// The most worker threads a computation starts: more only slow it down (each is an OS thread
/// that competes for the cores), and a huge count would hang starting them.
pub const MAX_THREADS: usize = 256;

/// The worker threads a request means: `None` or 0 is one per core (rayon's pool, `None` in
/// the result); 1 to [`MAX_THREADS`] that many; anything else is refused.
pub fn worker_threads(requested: Option<i128>) -> Result<Option<usize>> {
    match requested {
        None | Some(0) => Ok(None),
        Some(t) if (1..=MAX_THREADS as i128).contains(&t) => Ok(Some(t as usize)),
        Some(t) => Err(threads_refused(&t)),
    }
}

/// The refusal of a thread count, `got` as the caller wrote it (a binding passes values that
/// are no whole number here too, so that every refusal reads the same).
pub fn threads_refused(got: &dyn Display) -> Error {
    Error::InvalidArgument(format!(
        "threads must be a whole number from 1 to {MAX_THREADS} (or 0 or None: one per core), \
         got {got}"
    ))
}

/// The layers to report, in the order asked, of networks that report `depth` values: `None`
/// asks for all of them. Each index must name one of them (0 to `depth - 1`), and a list must
/// name at least one. Earlier layers are still matched (each carries its matching into the
/// next), so the work is that of the first `max + 1` layers.
pub fn layer_selection(asked: Option<&[i128]>, depth: usize) -> Result<Vec<usize>> {
    let Some(asked) = asked else {
        return Ok((0..depth).collect());
    };
    if asked.is_empty() {
        return Err(Error::InvalidArgument(
            "layers must name at least one layer".into(),
        ));
    }
    asked
        .iter()
        .map(|&k| match usize::try_from(k) {
            Ok(k) if k < depth => Ok(k),
            _ => Err(Error::InvalidArgument(format!(
                "layer {k} does not exist: the networks have layers 0..{}",
                depth.saturating_sub(1)
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_none_mean_one_thread_per_core() {
        assert_eq!(worker_threads(None), Ok(None));
        assert_eq!(worker_threads(Some(0)), Ok(None));
        assert_eq!(worker_threads(Some(1)), Ok(Some(1)));
        assert_eq!(worker_threads(Some(256)), Ok(Some(256)));
    }

    #[test]
    fn thread_counts_out_of_range_are_refused_as_given() {
        for bad in [-1, 257, 1 << 64] {
            let message = worker_threads(Some(bad)).unwrap_err().to_string();
            assert!(message.ends_with(&format!("got {bad}")), "{message}");
            assert!(message.starts_with("threads must be a whole number from 1 to 256"));
        }
    }

    #[test]
    fn layers_are_selected_in_the_order_asked() {
        assert_eq!(layer_selection(None, 3), Ok(vec![0, 1, 2]));
        assert_eq!(layer_selection(Some(&[2, 0, 2]), 3), Ok(vec![2, 0, 2]));
    }

    #[test]
    fn missing_layers_and_empty_lists_are_refused() {
        for bad in [3, -1, i128::MAX] {
            let message = layer_selection(Some(&[0, bad]), 3).unwrap_err().to_string();
            assert_eq!(
                message,
                format!("layer {bad} does not exist: the networks have layers 0..2")
            );
        }
        let empty = layer_selection(Some(&[]), 3).unwrap_err().to_string();
        assert!(empty.contains("at least one layer"), "{empty}");
    }
}
