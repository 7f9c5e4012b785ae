//! Which algorithm solves a layer: what the mode allows ([`Pick`]: the fastest optimal
//! algorithm, or one the user named), resolved per layer by expected time and by memory into an
//! [`Algorithm`] and a cost representation ([`Plan`]). Modes (`crate::mode`) call it; it knows
//! nothing of them.
//!
//! Two numbers about a layer pair decide, both computed in time linear in the layers:
//!
//! - the *pair work* `W = sum over inputs r of (A's neurons fed by r) x (B's neurons fed by r)`:
//!   the steps of counting overlaps by walking input lists, and an upper bound on the neuron
//!   pairs that share an input (the similarity graph's edges);
//! - the *fill* `min(1, W / (n1 n2))`: the share of all neuron pairs that the similarity graph
//!   may hold.
//!
//! Sparse layers (the paper's networks, wide random ones) have a fill of a few percent and go to
//! the similarity graph; layers whose neurons mostly share inputs (medium density, conv layers)
//! go to a dense cost matrix built from bit-packed input sets, when it fits the memory budget.
//! The fill from which the dense matrix is faster grows with the width ([`dense_fill`], with
//! measurements).

use crate::assign::{auction, lapjv, scipy_order, sparse, ssp, Algorithm, Assignment};
use crate::cancel::Cancel;
use crate::error::{human_bytes, Error, Result};
use crate::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, EmptyPairs,
};
use crate::topology::{Idx, Layer};

/// Which algorithms a layer's [`Plan`] picks from: the fastest optimal one for the layer, or
/// one named (the mode decides which, `crate::mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The fastest optimal algorithm for the layer: [`Algorithm::Sparse`] or [`Algorithm::Dense`].
    Fastest,
    /// SciPy's optimal assignment, reproduced choice for choice (the paper's numbers).
    Paper,
    /// Primal-dual phases on the similarity graph.
    Sparse,
    /// Jonker-Volgenant on the dense cost matrix.
    Dense,
}

/// The default memory budget for one layer's cost representation: 4 GiB (as the loaders'). The
/// sparse path is charged an upper bound of its solver's arrays (growing buffers at twice their
/// bound), so near-twins 262,144 wide, for instance, are charged about 1.7 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

/// Fill from which a layer up to [`DENSE_FILL_WIDTH`] neurons wide goes to a dense cost matrix
/// (see the module documentation); wider layers need proportionally more ([`dense_fill`]).
pub const DENSE_FILL: f64 = 0.10;

/// Width up to which [`DENSE_FILL`] applies as it is.
pub const DENSE_FILL_WIDTH: usize = 8192;

/// The fill from which an `n1 x n2` layer goes to a dense cost matrix: [`DENSE_FILL`], scaled
/// with the width beyond [`DENSE_FILL_WIDTH`] (the dense work grows with all `n1 n2` pairs times
/// the input width, the sparse one with the stored pairs). Measured on random layers of fixed
/// fan-in, one core, sparse vs dense (`examples/layers`): 2,048 wide, fill 9%: 0.25 s vs
/// 0.15 s, fill 26%: 0.74 s vs 0.16 s; 4,096 wide, fill 9%: 0.75 s vs 0.77 s, fill 15%: 0.79 s
/// vs 0.78 s, fill 32%: 2.5 s vs 0.9 s; 8,192 wide, fill 8%: 2.8 s vs 5.9 s, fill 15%: 7.2 s vs
/// 4.1 s, fill 39%: 12.8 s vs 4.6 s.
pub fn dense_fill(n1: usize, n2: usize) -> f64 {
    DENSE_FILL * (n1.max(n2) as f64 / DENSE_FILL_WIDTH as f64).max(1.0)
}

/// How one layer is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub algorithm: Algorithm,
    /// Whether the costs are a dense matrix (bit-packed overlaps) rather than the similarity
    /// graph. `Sparse` never is, `Dense` always is; `Paper` may be either (same choices).
    pub dense_costs: bool,
}

/// The pair work `W` of two layers (module documentation). Inputs beyond either layer's input
/// range feed nothing in it.
pub fn pair_work(a: &Layer, b: &Layer) -> u64 {
    let n_in = a.n_in().min(b.n_in());
    let (mut deg_a, mut deg_b) = (vec![0u64; n_in], vec![0u64; n_in]);
    for (layer, deg) in [(a, &mut deg_a), (b, &mut deg_b)] {
        for c in 0..layer.n_out() {
            for &r in layer.inputs(c) {
                if let Some(d) = deg.get_mut(r as usize) {
                    *d += 1;
                }
            }
        }
    }
    deg_a.iter().zip(&deg_b).map(|(x, y)| x * y).sum()
}

/// Bytes of a dense float64 cost matrix as the dense solvers hold it (a square for LAPJV).
fn dense_bytes(n1: usize, n2: usize, algorithm: Algorithm) -> u64 {
    let (n1, n2) = (n1 as u64, n2 as u64);
    let cells = match algorithm {
        Algorithm::Dense => n1.max(n2).saturating_mul(n1.max(n2)),
        _ => n1.saturating_mul(n2),
    };
    // The matrix, and a transposed copy for tall matrices.
    cells.saturating_mul(if n1 > n2 { 16 } else { 8 })
}

/// Bytes of the sparse path: the similarity graph itself ([`GRAPH_BYTES_PER_ENTRY`] for each
/// of at most `W` entries, a row pointer per neuron of A), and whichever solver's arrays are
/// larger, both counted in their modules: the phased method's (the transposed graph, the
/// Dijkstra heap at its bound, the per-neuron arrays) with the epsilon-scaling auction's,
/// held alongside while it hands its matching over ([`auction::BYTES_PER_NEURON`]); or the
/// row-by-row searches'. Which of the two runs is only known once the graph is built.
fn sparse_bytes(work: u64, n1: usize, n2: usize) -> u64 {
    let entries = work.min((n1 as u64).saturating_mul(n2 as u64));
    let neurons = (n1 + n2) as u64;
    let arrays = |per_entry: u64, per_neuron: u64| {
        entries
            .saturating_mul(per_entry)
            .saturating_add(neurons.saturating_mul(per_neuron))
    };
    let phases = arrays(
        sparse::PHASES_BYTES_PER_ENTRY,
        sparse::PHASES_BYTES_PER_NEURON + auction::BYTES_PER_NEURON,
    );
    let row_by_row = arrays(ssp::SSP_BYTES_PER_ENTRY, ssp::SSP_BYTES_PER_NEURON);
    arrays(GRAPH_BYTES_PER_ENTRY, size_of::<usize>() as u64).saturating_add(phases.max(row_by_row))
}

/// Bytes of one stored entry of the similarity graph: a column index and a cost.
const GRAPH_BYTES_PER_ENTRY: u64 = (size_of::<Idx>() + size_of::<f64>()) as u64;

/// What [`sparse_bytes`] counts, in refusals.
const SPARSE_NEEDS: (&str, &str) = ("the similarity graph and the solver's arrays", "need");

/// The plan for layer `k` (A's layer `a` against B's layer `b`, inputs already aligned): an
/// algorithm among those `pick` allows, and a cost form whose bytes fit `budget`.
pub fn plan(k: usize, a: &Layer, b: &Layer, pick: Pick, budget: u64) -> Result<Plan> {
    let (n1, n2) = (a.n_out(), b.n_out());
    let work = pair_work(a, b);
    let cells = (n1 as f64 * n2 as f64).max(1.0);
    let fill = (work as f64 / cells).min(1.0);
    let fits_dense = |algorithm| dense_bytes(n1, n2, algorithm) <= budget;
    let sparse = sparse_bytes(work, n1, n2);
    let over = |(what, verb): (&str, &str), bytes: u64, hint: &str| {
        Error::InvalidArgument(format!(
            "layer {k}: {what} of the {n1} x {n2} layer {verb} about {}, over the memory \
             budget of {}; {hint}",
            human_bytes(bytes),
            human_bytes(budget)
        ))
    };
    let dense_plan = |algorithm| Plan {
        algorithm,
        dense_costs: true,
    };
    let sparse_plan = |algorithm| Plan {
        algorithm,
        dense_costs: false,
    };
    let raise = "raise the memory budget";
    match pick {
        Pick::Fastest => {
            if fill >= dense_fill(n1, n2) && fits_dense(Algorithm::Dense) {
                Ok(dense_plan(Algorithm::Dense))
            } else if sparse <= budget {
                Ok(sparse_plan(Algorithm::Sparse))
            } else if fits_dense(Algorithm::Dense) {
                Ok(dense_plan(Algorithm::Dense))
            } else {
                Err(over(SPARSE_NEEDS, sparse, raise))
            }
        }
        Pick::Sparse if sparse <= budget => Ok(sparse_plan(Algorithm::Sparse)),
        Pick::Sparse => Err(over(SPARSE_NEEDS, sparse, raise)),
        Pick::Dense if fits_dense(Algorithm::Dense) => Ok(dense_plan(Algorithm::Dense)),
        Pick::Dense => Err(over(
            ("the dense cost matrix", "needs"),
            dense_bytes(n1, n2, Algorithm::Dense),
            "use the \"sparse\" solver or raise the memory budget",
        )),
        Pick::Paper => {
            if fill >= DENSE_FILL && fits_dense(Algorithm::Paper) {
                Ok(dense_plan(Algorithm::Paper))
            } else if sparse <= budget {
                Ok(sparse_plan(Algorithm::Paper))
            } else {
                Err(over(
                    ("the paper mode's cost matrix", "needs"),
                    sparse,
                    raise,
                ))
            }
        }
    }
}

/// Solves A's layer `a` against B's layer `b` (inputs aligned) as `plan` says: the costs in
/// the plan's form, then its algorithm. (The canonical mode reads the certificate of the same
/// algorithms itself, `crate::canonical`; it plans with [`Pick::Fastest`].)
///
/// Identical layers are matched neuron to neuron by every algorithm but the paper mode (which
/// makes SciPy's choice): among the optimal assignments (cost 0) the identity is the one that
/// keeps a network at distance 0 from itself in every later layer.
pub fn solve_layer(plan: Plan, a: &Layer, b: &Layer, cancel: &Cancel) -> Result<Assignment> {
    if plan.algorithm != Algorithm::Paper && a == b {
        return Ok(Assignment {
            col_of_row: (0..a.n_out()).collect(),
            cost: 0.0,
        });
    }
    match (plan.algorithm, plan.dense_costs) {
        (Algorithm::Sparse, _) => {
            let costs = layer_costs_with(a, b, EmptyPairs::Skip)?;
            sparse::solve(&costs, &empty_neurons(a), &empty_neurons(b), cancel)
        }
        (Algorithm::Dense, _) => lapjv::solve(&dense_layer_costs(a, b, cancel)?, cancel),
        (_, true) => {
            let costs = dense_layer_costs(a, b, cancel)?;
            scipy_order::try_solve_dense(costs.n_rows, costs.n_cols, &costs.data, cancel)
        }
        (_, false) => scipy_order::try_solve(&layer_costs(a, b)?, cancel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_work_counts_shared_input_steps() {
        let a = Layer::from_neuron_inputs(0, 3, &[vec![0, 1], vec![1]]).unwrap();
        let b = Layer::from_neuron_inputs(0, 3, &[vec![1], vec![1, 2], vec![0]]).unwrap();
        // Input 0: 1 x 1; input 1: 2 x 2; input 2: 0 x 1.
        assert_eq!(pair_work(&a, &b), 5);
    }

    #[test]
    fn a_hub_input_is_refused_before_anything_is_built() {
        // One input feeds every neuron: the similarity graph is complete.
        let n = 4096;
        let cols: Vec<Vec<u32>> = (0..n).map(|_| vec![0]).collect();
        let a = Layer::from_neuron_inputs(0, 1, &cols).unwrap();
        let err = plan(3, &a, &a, Pick::Sparse, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("layer 3: the similarity graph and the solver's arrays"),
            "{err}"
        );
        assert!(err.contains("over the memory budget of 1.0 MiB"), "{err}");
    }

    #[test]
    fn the_solvers_arrays_count_against_the_budget() {
        // 64-bit targets. The auction: price and its copy, col4row, row4col and their copies,
        // fixed, and the free-row queue at up to twice one entry per row.
        assert_eq!(auction::BYTES_PER_NEURON, 8 + 16 + 1 + 16 + 8 + 16);
        // The phases: u, v, dist; col4row, row4col, pred; four stamps; settled columns (with
        // their distances), sinks, queue and stack at twice their bound; two heap entries (16
        // bytes each) for the one edge per neuron; by_col's row pointer; two free-row lists and
        // the roots at twice their bound; matched costs, queued flags, the work queue at twice
        // its bound; half a fixed pair.
        assert_eq!(
            sparse::PHASES_BYTES_PER_NEURON,
            24 + 24 + 16 + 2 * (16 + 8 + 16 + 16) + 2 * 16 + 8 + 3 * 16 + 8 + 1 + 16 + 8
        );
        assert_eq!(sparse::PHASES_BYTES_PER_NEURON, 297);
        // by_col's entry, and twice two heap entries (two doubled-graph edges per entry).
        assert_eq!(sparse::PHASES_BYTES_PER_ENTRY, 12 + 2 * 2 * 16);
        // The row-by-row searches: v, dist, row4col, pred, one stamp; u, col4row, settled
        // columns (with their distances) at twice their bound; two heap entries (16 bytes each)
        // for the dummy edge; two free-row lists at twice their bound; the transposed row
        // pointer; a fixed pair and its flip.
        assert_eq!(
            ssp::SSP_BYTES_PER_NEURON,
            32 + 4 + 16 + 32 + 2 * 16 + 2 * 16 + 8 + 16
        );
        assert_eq!(ssp::SSP_BYTES_PER_ENTRY, 12 + 2 * 16);
        // The phases hold more than the row-by-row searches, per neuron and per entry: they
        // decide the estimate.
        const {
            assert!(sparse::PHASES_BYTES_PER_NEURON > ssp::SSP_BYTES_PER_NEURON);
            assert!(sparse::PHASES_BYTES_PER_ENTRY > ssp::SSP_BYTES_PER_ENTRY);
        }
        assert_eq!(
            sparse_bytes(1000, 10, 300),
            1000 * (12 + 76) + 310 * (8 + 297 + 65)
        );
        // Every neuron reads its own input: a graph of 4,096 entries, 8,192 neurons:
        // 4,096 x 88 + 8,192 x 370 bytes = 3.2 MiB.
        let n = 4096;
        let cols: Vec<Vec<u32>> = (0..n).map(|c| vec![c as u32]).collect();
        let a = Layer::from_neuron_inputs(0, n, &cols).unwrap();
        let needed = sparse_bytes(pair_work(&a, &a), n, n);
        assert_eq!(needed, 4096 * 88 + 8192 * 370);
        let err = plan(0, &a, &a, Pick::Sparse, needed - 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "layer 0: the similarity graph and the solver's arrays of the 4096 x 4096 \
                 layer need about 3.2 MiB"
            ),
            "{err}"
        );
        assert_eq!(
            plan(0, &a, &a, Pick::Sparse, needed).unwrap().algorithm,
            Algorithm::Sparse
        );
    }

    #[test]
    fn wide_layers_need_more_fill_for_the_dense_matrix() {
        assert_eq!(dense_fill(100, 8192), DENSE_FILL);
        assert_eq!(dense_fill(16384, 10), 2.0 * DENSE_FILL);
        // Every neuron reads 32 consecutive inputs: fill 12.5% at 8,192 wide, 6.25% at 16,384.
        let band = |n: usize| {
            let sets: Vec<Vec<u32>> = (0..n)
                .map(|c| (0..32).map(|r| ((c + r) % n) as u32).collect())
                .collect();
            Layer::from_neuron_inputs(0, n, &sets).unwrap()
        };
        let (narrow, wide) = (band(8192), band(16384));
        let algorithm = |layer: &Layer| {
            plan(0, layer, layer, Pick::Fastest, DEFAULT_MEMORY_BUDGET)
                .unwrap()
                .algorithm
        };
        assert_eq!(algorithm(&narrow), Algorithm::Dense);
        assert_eq!(algorithm(&wide), Algorithm::Sparse);
    }

    #[test]
    fn auto_picks_dense_for_dense_layers_and_sparse_for_sparse_ones() {
        let dense: Vec<Vec<u32>> = (0..64)
            .map(|c| (0..32).map(|r| (r + c) % 64).collect())
            .collect();
        let sparse: Vec<Vec<u32>> = (0..64).map(|c| vec![c as u32]).collect();
        let d = Layer::from_neuron_inputs(0, 64, &dense).unwrap();
        let s = Layer::from_neuron_inputs(0, 64, &sparse).unwrap();
        let fastest = |layer: &Layer| plan(0, layer, layer, Pick::Fastest, DEFAULT_MEMORY_BUDGET);
        assert_eq!(fastest(&d).unwrap().algorithm, Algorithm::Dense);
        assert_eq!(fastest(&s).unwrap().algorithm, Algorithm::Sparse);
    }
}
