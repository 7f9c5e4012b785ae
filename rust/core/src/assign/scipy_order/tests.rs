//! The fast paths against SciPy's plain loop, the strategies against each other, and all of them
//! against brute force.

use super::*;
use crate::testing::{brute_force_optimum, tie_heavy, tie_values};
use proptest::prelude::*;

/// SciPy's full scan on the structured state ([`structured::scan`]), on a matrix of any shape
/// whose stored entries are <= 1: the column of every row.
fn solve_by_scan(cost: &SparseCost, cancel: &Cancel) -> Result<Vec<usize>> {
    let transpose = cost.n_rows > cost.n_cols;
    let (col4row, _, _) = if transpose {
        structured::scan::run(&cost.transpose()?, cancel)?
    } else {
        structured::scan::run(cost, cancel)?
    };
    Ok(untranspose(col4row, cost.n_rows, transpose))
}

/// Matrices of up to `max` x `max` entries from a handful of values, many equal to 1.
fn few_values(max: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (0usize..max, 0usize..max)
        .prop_flat_map(|(r, c)| (Just(r), Just(c), prop::collection::vec(tie_values(), r * c)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn fast_dense_scan_makes_scipys_choices((r, c, m) in few_values(40)) {
        prop_assert_eq!(solve_dense(r, c, &m).col_of_row, reference::dense(r, c, &m));
    }
}

#[test]
fn a_raised_cancel_stops_the_dense_scan() {
    let cancel = Cancel::new();
    cancel.cancel();
    assert!(try_solve_dense(3, 3, &[1.0; 9], &cancel).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn structured_equals_dense((r, c, m) in tie_heavy(9)) {
        let dense = solve_dense(r, c, &m);
        let sparse = SparseCost::from_dense(r, c, &m);
        prop_assert_eq!(&solve_by_scan(&sparse, &Cancel::new()).unwrap(), &dense.col_of_row);
        for method in [Method::Grouped, Method::Blocked, Method::Adaptive] {
            let solved = solve_with(&sparse, method, &Cancel::new()).unwrap();
            prop_assert_eq!(&solved.col_of_row, &dense.col_of_row, "{:?}", method);
            prop_assert_eq!(solved.cost.to_bits(), dense.cost.to_bits());
        }
    }

    #[test]
    fn dense_is_optimal((r, c, m) in tie_heavy(9)) {
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
            assert_eq!(
                solve_by_scan(&sparse, &Cancel::new()).unwrap(),
                dense.col_of_row,
                "{r}x{c} scan"
            );
            for method in [Method::Grouped, Method::Blocked, Method::Adaptive] {
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
    assert!(solve_by_scan(&cost, &cancel).is_err());
    for method in [Method::Grouped, Method::Blocked, Method::Adaptive] {
        assert!(solve_with(&cost, method, &cancel).is_err(), "{method:?}");
    }
    assert!(try_solve(&cost, &cancel).is_err());
}
