//! Helpers shared by the unit tests.

use proptest::prelude::*;

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

/// Neuron costs as NNSTD makes them on small layers: mostly 1, the rest a handful of values.
pub(crate) fn tie_values() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => Just(1.0),
        1 => Just(0.0),
        1 => Just(0.5),
        1 => Just(2.0 / 3.0),
        1 => Just(0.75),
        1 => Just(0.25),
    ]
}

/// Tie-heavy matrices: mostly 1, entries from a handful of values, repeated rows and columns.
pub(crate) fn tie_heavy(max_side: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (1usize..max_side, 1usize..max_side).prop_flat_map(|(r, c)| {
        (
            Just(r),
            Just(c),
            prop::collection::vec(tie_values(), r * c),
            prop::collection::vec(0usize..3, r),
        )
            .prop_map(|(r, c, mut m, dup)| {
                // Copy some rows onto their predecessor to create identical neurons.
                for i in 1..r {
                    if dup[i] == 0 {
                        let prev: Vec<f64> = m[(i - 1) * c..i * c].to_vec();
                        m[i * c..(i + 1) * c].copy_from_slice(&prev);
                    }
                }
                (r, c, m)
            })
    })
}

/// The optimal cost of a row-major `r x c` matrix, over every way of assigning the smaller side
/// to distinct members of the larger (tiny matrices only).
pub(crate) fn brute_force_optimum(r: usize, c: usize, m: &[f64]) -> f64 {
    // Assign the smaller side to distinct members of the larger, recursively.
    fn go(i: usize, r: usize, c: usize, m: &[f64], used: &mut Vec<bool>, tall: bool) -> f64 {
        let (rows, cols) = if tall { (c, r) } else { (r, c) };
        if i == rows {
            return 0.0;
        }
        let mut best = f64::INFINITY;
        for j in 0..cols {
            if !used[j] {
                used[j] = true;
                let v = if tall { m[j * c + i] } else { m[i * c + j] };
                best = best.min(v + go(i + 1, r, c, m, used, tall));
                used[j] = false;
            }
        }
        best
    }
    let tall = r > c;
    go(0, r, c, m, &mut vec![false; r.max(c)], tall)
}
