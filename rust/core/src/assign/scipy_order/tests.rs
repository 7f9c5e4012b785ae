//! The fast paths against SciPy's plain loop, the strategies against each other, and all of them
//! against brute force.

use super::*;
use proptest::prelude::*;

/// The plain port on a matrix of any shape.
fn reference_dense(n_rows: usize, n_cols: usize, cost: &[f64]) -> Vec<usize> {
    if n_rows == 0 || n_cols == 0 {
        return vec![UNMATCHED; n_rows];
    }
    if n_rows > n_cols {
        let t = transposed(n_rows, n_cols, cost).unwrap();
        untranspose(reference_dense_wide(n_cols, n_rows, &t), n_rows, true)
    } else {
        reference_dense_wide(n_rows, n_cols, cost)
    }
}

/// Matrices of up to `max` x `max` entries from a handful of values, many equal to 1.
fn few_values(max: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (0usize..max, 0usize..max).prop_flat_map(|(r, c)| {
        let values = prop_oneof![
            6 => Just(1.0),
            1 => Just(0.0),
            1 => Just(0.5),
            1 => Just(2.0 / 3.0),
            1 => Just(0.75),
            1 => Just(0.25),
        ];
        (Just(r), Just(c), prop::collection::vec(values, r * c))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn fast_dense_scan_makes_scipys_choices((r, c, m) in few_values(40)) {
        prop_assert_eq!(solve_dense(r, c, &m).col_of_row, reference_dense(r, c, &m));
    }
}

#[test]
fn a_raised_cancel_stops_the_dense_scan() {
    let cancel = Cancel::new();
    cancel.cancel();
    assert!(try_solve_dense(3, 3, &[1.0; 9], &cancel).is_err());
}

/// Tie-heavy matrices: mostly 1, entries from a handful of values, repeated rows and columns.
fn tie_heavy() -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (1usize..9, 1usize..9).prop_flat_map(|(r, c)| {
        let values = prop_oneof![
            6 => Just(1.0),
            1 => Just(0.0),
            1 => Just(0.5),
            1 => Just(2.0 / 3.0),
            1 => Just(0.75),
            1 => Just(0.25),
        ];
        (
            Just(r),
            Just(c),
            prop::collection::vec(values, r * c),
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

fn brute_force_optimum(r: usize, c: usize, m: &[f64]) -> f64 {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn structured_equals_dense((r, c, m) in tie_heavy()) {
        let dense = solve_dense(r, c, &m);
        let sparse = SparseCost::from_dense(r, c, &m);
        for method in [Method::Scan, Method::Grouped, Method::Blocked, Method::Adaptive] {
            let solved = solve_with(&sparse, method, &Cancel::new()).unwrap();
            prop_assert_eq!(&solved.col_of_row, &dense.col_of_row, "{:?}", method);
            prop_assert_eq!(solved.cost.to_bits(), dense.cost.to_bits());
        }
    }

    #[test]
    fn dense_is_optimal((r, c, m) in tie_heavy()) {
        let dense = solve_dense(r, c, &m);
        let matched = dense.col_of_row.iter().filter(|&&j| j != UNMATCHED).count();
        prop_assert_eq!(matched, r.min(c));
        prop_assert!((dense.cost - brute_force_optimum(r, c, &m)).abs() < 1e-9);
    }
}

#[test]
fn constant_matrix_gives_identity_like_scipy() {
    let a = solve_dense(4, 4, &[1.0; 16]);
    assert_eq!(a.col_of_row, vec![0, 1, 2, 3]);
    assert_eq!(
        solve(&SparseCost::from_dense(4, 4, &[1.0; 16])).col_of_row,
        vec![0, 1, 2, 3]
    );
}

#[test]
fn larger_random_sparse_matrices_agree() {
    // A deterministic LCG keeps this independent of proptest's shrinking for big shapes.
    let mut next = crate::testing::numbers(0x2545F4914F6CDD1Du64);
    for &(r, c) in &[(60, 60), (40, 70), (70, 40), (150, 150)] {
        for _ in 0..20 {
            let mut m = vec![1.0; r * c];
            for _ in 0..(r * 4) {
                let (i, j) = (next() % r, next() % c);
                m[i * c + j] = [0.0, 0.5, 0.75, 0.8, 0.875][next() % 5];
            }
            let dense = solve_dense(r, c, &m);
            let sparse = SparseCost::from_dense(r, c, &m);
            for method in [
                Method::Scan,
                Method::Grouped,
                Method::Blocked,
                Method::Adaptive,
            ] {
                assert_eq!(
                    solve_with(&sparse, method, &Cancel::new())
                        .unwrap()
                        .col_of_row,
                    dense.col_of_row,
                    "{r}x{c} {method:?}"
                );
            }
        }
    }
}

#[test]
fn a_raised_cancel_stops_every_strategy() {
    let cancel = Cancel::new();
    cancel.cancel();
    let cost = SparseCost::from_dense(3, 3, &[0.5; 9]);
    for method in [
        Method::Scan,
        Method::Grouped,
        Method::Blocked,
        Method::Adaptive,
    ] {
        assert!(solve_with(&cost, method, &cancel).is_err(), "{method:?}");
    }
    assert!(try_solve(&cost, &cancel).is_err());
}
