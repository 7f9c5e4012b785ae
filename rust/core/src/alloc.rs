//! Fallible allocation of the buffers whose size the input decides: dense cost matrices, the
//! similarity graph and its copies, bit-packed input sets, the solvers' per-entry arrays and the
//! pairwise output. The memory budget (`crate::policy`) bounds them, but the machine (or an
//! address-space limit such as `ulimit -v`) may give less than the budget allows, and Rust's
//! allocation failure handler aborts the process: a Python interpreter would die with SIGABRT.
//! Through these helpers a refusal becomes [`Error::OutOfMemory`] instead.
//!
//! Buffers of one entry per neuron stay ordinary `Vec`s: the layers they come from already hold
//! at least a word per neuron, so they are a small multiple of memory the caller already has.

use std::alloc::{alloc_zeroed, Layout};
use std::collections::BinaryHeap;

use crate::error::{Error, Result};

/// The error for a refused buffer of `len` values of `T`, for `what`.
pub fn out_of_memory<T>(len: usize, what: &'static str) -> Error {
    Error::OutOfMemory {
        layer: None,
        what,
        bytes: (len as u64).saturating_mul(size_of::<T>() as u64),
    }
}

/// An empty vector with room for `capacity` values, or [`Error::OutOfMemory`] naming `what`.
pub fn with_capacity<T>(capacity: usize, what: &'static str) -> Result<Vec<T>> {
    let mut buffer = Vec::new();
    reserve(&mut buffer, capacity, what)?;
    Ok(buffer)
}

/// Room for `additional` more values in `buffer` (exactly, not doubled), or
/// [`Error::OutOfMemory`] naming `what`.
pub fn reserve<T>(buffer: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    buffer
        .try_reserve_exact(additional)
        .map_err(|_| out_of_memory::<T>(buffer.len().saturating_add(additional), what))
}

/// Room for `additional` more values in `buffer`, growing as `push` does (at least doubling),
/// or [`Error::OutOfMemory`] naming `what`: for buffers that grow while they are filled, a call
/// before each batch of pushes (a row's entries) makes every push of the batch infallible.
pub fn grow<T>(buffer: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    buffer
        .try_reserve(additional)
        .map_err(|_| out_of_memory::<T>(grown(buffer.len(), additional), what))
}

/// [`grow`] for a heap.
pub fn grow_heap<T: Ord>(
    heap: &mut BinaryHeap<T>,
    additional: usize,
    what: &'static str,
) -> Result<()> {
    heap.try_reserve(additional)
        .map_err(|_| out_of_memory::<T>(grown(heap.len(), additional), what))
}

/// The length a growing buffer of `len` values asks room for when `additional` more come: at
/// least twice `len`, as `Vec` grows (what the refused allocation was, near enough).
fn grown(len: usize, additional: usize) -> usize {
    len.saturating_add(additional).max(len.saturating_mul(2))
}

/// `len` copies of `value` (`vec![value; len]`), or [`Error::OutOfMemory`] naming `what`.
pub fn filled<T: Clone>(len: usize, value: T, what: &'static str) -> Result<Vec<T>> {
    let mut buffer = with_capacity(len, what)?;
    buffer.resize(len, value);
    Ok(buffer)
}

/// The values of `values` in a vector allocated once at its exact length, or
/// [`Error::OutOfMemory`] naming `what`.
pub fn collect<T>(values: impl ExactSizeIterator<Item = T>, what: &'static str) -> Result<Vec<T>> {
    let mut buffer = with_capacity(values.len(), what)?;
    buffer.extend(values);
    Ok(buffer)
}

/// Numbers whose all-zero bytes are the value zero.
///
/// # Safety
/// Only for types for which every byte being 0 is a valid value.
pub unsafe trait Zero: Copy {}

// SAFETY: all-zero bytes are 0 (0.0 for floats) for each of these.
unsafe impl Zero for u32 {}
unsafe impl Zero for u64 {}
unsafe impl Zero for usize {}
unsafe impl Zero for f64 {}

/// `len` zeros (`vec![0; len]`), or [`Error::OutOfMemory`] naming `what`. Like `vec!`, it asks
/// the allocator for zeroed memory, which for large buffers is fresh pages that cost nothing
/// until written, rather than writing the zeros.
pub fn zeros<T: Zero>(len: usize, what: &'static str) -> Result<Vec<T>> {
    let layout = Layout::array::<T>(len).map_err(|_| out_of_memory::<T>(len, what))?;
    if layout.size() == 0 {
        return Ok(Vec::new()); // `len` is 0: none of the `Zero` types above is zero-sized
    }
    // SAFETY: the layout has a non-zero size; the memory is zeroed, which is a valid `T` for
    // every value ([`Zero`]); it was allocated by the global allocator with the layout of `len`
    // values of `T`, as `Vec::from_raw_parts` requires, with capacity `len`.
    unsafe {
        let data = alloc_zeroed(layout) as *mut T;
        if data.is_null() {
            return Err(out_of_memory::<T>(len, what));
        }
        Ok(Vec::from_raw_parts(data, len, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_hold_what_vec_would() {
        assert_eq!(zeros::<f64>(5, "x").unwrap(), vec![0.0; 5]);
        assert_eq!(zeros::<u32>(0, "x").unwrap(), Vec::<u32>::new());
        assert_eq!(filled(3, 7usize, "x").unwrap(), vec![7, 7, 7]);
        assert_eq!(collect(1..4u32, "x").unwrap(), vec![1, 2, 3]);
        let mut v: Vec<u64> = with_capacity(10, "x").unwrap();
        assert!(v.capacity() >= 10);
        reserve(&mut v, 20, "x").unwrap();
        assert!(v.capacity() >= 20);
        v.extend(0..20);
        grow(&mut v, 1, "x").unwrap();
        assert!(v.capacity() >= 40, "grows as push does");
        let mut heap = BinaryHeap::<u64>::new();
        grow_heap(&mut heap, 5, "x").unwrap();
        assert!(heap.capacity() >= 5);
    }

    #[test]
    fn an_impossible_size_is_an_error_not_an_abort() {
        // More than the address space: refused by the layout or by the allocator, never fatal.
        let huge = usize::MAX / 8 - 1;
        let expected = Error::OutOfMemory {
            layer: None,
            what: "the dense cost matrix",
            bytes: huge as u64 * 8,
        };
        assert_eq!(
            zeros::<f64>(huge, "the dense cost matrix"),
            Err(expected.clone())
        );
        assert_eq!(
            filled(huge, 1.0f64, "the dense cost matrix"),
            Err(expected.clone())
        );
        let half = usize::MAX / 16;
        let err = with_capacity::<u64>(half, "the similarity graph").unwrap_err();
        assert!(matches!(
            err,
            Error::OutOfMemory {
                what: "the similarity graph",
                ..
            }
        ));
        let mut v = vec![0u64; 4];
        assert!(grow(&mut v, half, "x").is_err());
        // The heap escapes, so that the optimiser cannot drop the allocation as unused.
        let mut heap = BinaryHeap::<u64>::new();
        let grown = grow_heap(&mut heap, half, "x");
        std::hint::black_box(&heap);
        assert!(grown.is_err());
        assert_eq!(
            expected.to_string(),
            "not enough memory for the dense cost matrix (16.0 EiB); free memory, or compare \
             fewer networks at once"
        );
        let message = expected.in_layer(3).to_string();
        assert!(
            message.starts_with("layer 3: not enough memory for the dense cost matrix (16.0 EiB)"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }
}
