//! The sparse solver's cost against the exact solver's on random layers, and its matchings.

use nnstd_core::assign::{lapjv, scipy_order, sparse, Duals, UNMATCHED};
use nnstd_core::cancel::Cancel;
use nnstd_core::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, EmptyPairs,
};
use nnstd_core::topology::Layer;
use proptest::prelude::*;

/// A random layer: each neuron draws a few inputs; some neurons are empty or copies.
fn layer() -> impl Strategy<Value = (usize, Vec<Vec<u32>>)> {
    (1usize..12, 1usize..12).prop_flat_map(|(n_in, n_out)| {
        let neuron = prop::collection::vec(0..n_in as u32, 0..4);
        (Just(n_in), prop::collection::vec(neuron, n_out))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn sparse_cost_equals_exact_cost((n_in, cols_a) in layer(), seed in 0u64..1000, extra in 0usize..4) {
        let a = Layer::from_neuron_inputs(0, n_in, &cols_a).unwrap();
        // B: A's neurons shuffled and partly rewired, plus a few more or fewer neurons.
        let mut cols_b: Vec<Vec<u32>> = cols_a.iter().rev().cloned().collect();
        for (k, col) in cols_b.iter_mut().enumerate() {
            if (seed as usize + k) % 3 == 0 {
                col.push(((seed as usize * 7 + k) % n_in) as u32);
            }
        }
        cols_b.truncate(cols_b.len().saturating_sub(extra % 2));
        for k in 0..extra {
            cols_b.push(if k % 2 == 0 { vec![] } else { vec![(k % n_in) as u32] });
        }
        let b = Layer::from_neuron_inputs(0, n_in, &cols_b).unwrap();
        let dense = scipy_order::solve(&layer_costs(&a, &b).unwrap());
        let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
        let (solved, duals) = sparse::solve_with_duals(&costs, &empty_neurons(&a), &empty_neurons(&b), &Cancel::new()).unwrap();
        prop_assert!((solved.cost - dense.cost).abs() < 1e-9, "sparse {} exact {}", solved.cost, dense.cost);
        // Every algorithm's duals certify its assignment (docs/definition.md#optimal-set).
        prop_assert!(duals.certify(&costs, &solved.col_of_row), "sparse duals {:?}", duals);
        let stored = layer_costs(&a, &b).unwrap();
        let (jv, jv_duals) = lapjv::solve_with_duals(&dense_layer_costs(&a, &b, &Cancel::new()).unwrap(), &Cancel::new()).unwrap();
        prop_assert!(jv_duals.certify(&stored, &jv.col_of_row), "dense duals {:?}", jv_duals);
        let (paper, u, v) = scipy_order::solve_with_duals(&stored).unwrap();
        prop_assert!(Duals::from_assignment_duals(&u, &v).certify(&stored, &paper.col_of_row));
        // The dense solver reaches the same optimum, and the paper mode on dense costs makes
        // SciPy's choices exactly as on the similarity graph.
        let matrix = dense_layer_costs(&a, &b, &Cancel::new()).unwrap();
        let jv = lapjv::solve(&matrix, &Cancel::new()).unwrap();
        prop_assert!((jv.cost - dense.cost).abs() < 1e-9, "dense {} exact {}", jv.cost, dense.cost);
        let paper_dense = scipy_order::solve_dense(matrix.n_rows, matrix.n_cols, &matrix.data);
        prop_assert_eq!(&paper_dense.col_of_row, &dense.col_of_row);
        // A complete matching: min(n1, n2) distinct partners.
        let mut used: Vec<usize> = solved.col_of_row.iter().copied().filter(|&j| j != UNMATCHED).collect();
        prop_assert_eq!(used.len(), a.n_out().min(b.n_out()));
        used.sort_unstable();
        used.dedup();
        prop_assert_eq!(used.len(), a.n_out().min(b.n_out()));
    }
}

/// A random layer of `n` neurons with `fan_in` inputs each drawn from `n_in` (a small LCG).
fn random_layer(n: usize, n_in: usize, fan_in: usize, seed: u64) -> Layer {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let cols: Vec<Vec<u32>> = (0..n)
        .map(|_| (0..fan_in).map(|_| (next() % n_in) as u32).collect())
        .collect();
    Layer::from_neuron_inputs(0, n_in, &cols).unwrap()
}

#[test]
fn phased_solver_duals_certify_its_assignment() {
    // Wide unrelated layers take the phased method (not the row-by-row one).
    for (n1, n2, seed) in [(1500, 1500, 1), (1400, 1700, 2), (1800, 1300, 3)] {
        let a = random_layer(n1, 1500, 3, seed);
        let b = random_layer(n2, 1500, 3, seed + 100);
        let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
        let (solved, duals) = sparse::solve_with_duals(&costs, &[], &[], &Cancel::new()).unwrap();
        assert!(duals.certify(&costs, &solved.col_of_row), "{n1} x {n2}");
        let (jv, jv_duals) = lapjv::solve_with_duals(
            &dense_layer_costs(&a, &b, &Cancel::new()).unwrap(),
            &Cancel::new(),
        )
        .unwrap();
        assert!((jv.cost - solved.cost).abs() < 1e-7);
        assert!(
            jv_duals.certify(&costs, &jv.col_of_row),
            "{n1} x {n2} dense"
        );
    }
}

#[test]
fn layers_with_no_overlap_cost_one_per_neuron() {
    let a = Layer::from_neuron_inputs(0, 6, &[vec![0], vec![1], vec![2]]).unwrap();
    let b = Layer::from_neuron_inputs(0, 6, &[vec![3], vec![4], vec![5]]).unwrap();
    let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
    assert_eq!(costs.nnz(), 0);
    let solved = sparse::solve(&costs, &[], &[], &Cancel::new()).unwrap();
    assert_eq!(solved.cost, 3.0);
    assert_eq!(solved.col_of_row, vec![0, 1, 2]);
}

#[test]
fn empty_neurons_pair_with_empty_neurons() {
    let a = Layer::from_neuron_inputs(0, 3, &[vec![], vec![0], vec![]]).unwrap();
    let b = Layer::from_neuron_inputs(0, 3, &[vec![0], vec![], vec![1], vec![]]).unwrap();
    let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
    let solved = sparse::solve(
        &costs,
        &empty_neurons(&a),
        &empty_neurons(&b),
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(solved.col_of_row, vec![1, 0, 3]);
    assert_eq!(solved.cost, 0.0);
}
