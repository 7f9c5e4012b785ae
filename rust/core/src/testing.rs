//! Helpers shared by the unit tests.

/// A deterministic stream of pseudo-random numbers (a 64-bit linear congruential generator's
/// high bits) from `seed`: plain loops over many generated inputs, independent of proptest.
pub(crate) fn numbers(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    }
}
