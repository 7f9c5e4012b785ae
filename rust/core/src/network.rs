//! Network distance: match layer by layer, carrying each matching into the next layer
//! (NNSTD.md sections 3 and 4).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::assign::{exact, sparse, Assignment, UNMATCHED};
use crate::error::{Error, Result};
use crate::similarity::{empty_neurons, layer_costs, layer_costs_with, EmptyPairs};
use crate::topology::{Idx, Layer, Network};

/// Which assignment the distance is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// SciPy's optimal assignment, reproduced (the paper's numbers).
    #[default]
    Exact,
    /// An optimal assignment from the similarity graph alone; same layer cost as `Exact`, but
    /// ties may be broken differently, so later layers can differ.
    Sparse,
    /// `Exact` while a layer's dense cost matrix fits the memory budget, `Sparse` beyond.
    Auto,
}

/// The default memory budget for one layer's dense cost matrix: 1 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

/// How layers are solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub solver: Solver,
    /// Bytes a layer's dense float64 cost matrix may take for the exact solver.
    pub memory_budget: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            solver: Solver::Exact,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl Options {
    pub fn new(solver: Solver) -> Self {
        Options {
            solver,
            ..Options::default()
        }
    }
}

/// Bytes of an `n1 x n2` float64 matrix.
fn dense_bytes(n1: usize, n2: usize) -> u64 {
    (n1 as u64).saturating_mul(n2 as u64).saturating_mul(8)
}

/// A byte count in binary units, for messages.
fn human_bytes(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
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

/// One layer of a network distance.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMatch {
    /// The assignment cost divided by A's neuron count; in [0, 1].
    pub distance: f64,
    /// The sum of the matched neuron costs.
    pub cost: f64,
    /// `matching[i]` is the neuron of B (B's own label) matched to neuron `i` of A, or
    /// [`UNMATCHED`] when B's layer is narrower.
    pub matching: Vec<usize>,
    /// The solver that matched this layer (`Exact` or `Sparse`).
    pub solver: Solver,
}

/// Shared with the caller while work runs: a flag the caller raises to stop between units of
/// work, and a count of finished units (pairs) the caller may read to show progress.
#[derive(Debug, Default)]
pub struct Cancel {
    stop: AtomicBool,
    done: AtomicUsize,
}

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Counts one finished unit of work.
    pub fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of finished units so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    pub fn check(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Checks that two networks can be compared: the same depth and the same input width.
pub fn check_comparable(a: &Network, b: &Network) -> Result<()> {
    if a.depth() != b.depth() {
        return Err(Error::Mismatch(format!(
            "networks of different depth: {} layers against {}",
            a.depth(),
            b.depth()
        )));
    }
    let (na, nb) = (a.layers()[0].n_in(), b.layers()[0].n_in());
    if na != nb {
        return Err(Error::Mismatch(format!(
            "networks of different input width: {na} inputs against {nb}"
        )));
    }
    Ok(())
}

/// The solver a layer gets: `Auto` resolved by the budget; `Exact` over budget is an error.
pub fn resolve_solver(k: usize, n1: usize, n2: usize, options: &Options) -> Result<Solver> {
    let bytes = dense_bytes(n1, n2);
    let fits = bytes <= options.memory_budget;
    match options.solver {
        Solver::Auto => Ok(if fits { Solver::Exact } else { Solver::Sparse }),
        Solver::Exact if !fits => Err(Error::InvalidArgument(format!(
            "layer {k}: the exact solver works on the dense {n1} x {n2} cost matrix ({}), \
             over the memory budget of {}; use solver=\"sparse\" (same layer cost, in \
             memory proportional to the overlaps) or raise the budget",
            human_bytes(bytes),
            human_bytes(options.memory_budget)
        ))),
        other => Ok(other),
    }
}

/// Solves one layer's assignment with a resolved solver (`Exact` or `Sparse`).
pub fn assign_layer(a: &Layer, b: &Layer, solver: Solver, cancel: &Cancel) -> Result<Assignment> {
    match solver {
        Solver::Sparse => {
            let costs = layer_costs_with(a, b, EmptyPairs::Skip);
            sparse::solve(&costs, &empty_neurons(a), &empty_neurons(b), cancel)
        }
        _ => Ok(exact::solve(&layer_costs(a, b))),
    }
}

/// B's labels for the next layer's inputs: the B neuron matched to A's neuron `i` becomes `i`;
/// B neurons left unmatched (B wider than A) get fresh labels after A's, in index order, so they
/// never coincide with an A input. Returns the labels and the size of the label space.
pub fn carried_labels(matching: &[usize], n_b: usize) -> (Vec<Idx>, usize) {
    let mut labels = vec![Idx::MAX; n_b];
    for (i, &j) in matching.iter().enumerate() {
        if j != UNMATCHED {
            labels[j] = i as Idx;
        }
    }
    let mut next = matching.len();
    for label in labels.iter_mut().filter(|l| **l == Idx::MAX) {
        *label = next as Idx;
        next += 1;
    }
    (labels, next)
}

/// The distance of `b` from `a` over their first `depth` layers (all when `None`).
pub fn distance(
    a: &Network,
    b: &Network,
    depth: Option<usize>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    check_comparable(a, b)?;
    let depth = depth.unwrap_or(a.depth());
    if depth > a.depth() {
        return Err(Error::InvalidArgument(format!(
            "asked for {depth} layers of a {}-layer network",
            a.depth()
        )));
    }
    let mut result: Vec<LayerMatch> = Vec::with_capacity(depth);
    let mut carried: Option<Layer> = None;
    for k in 0..depth {
        cancel.check()?;
        let (la, lb) = (&a.layers()[k], &b.layers()[k]);
        let lb = match (&carried, result.last()) {
            (_, Some(prev)) => {
                let (labels, n_labels) = carried_labels(&prev.matching, lb.n_in() / lb.group());
                carried = Some(lb.relabel_inputs(&labels, n_labels));
                carried.as_ref().expect("just set")
            }
            _ => lb,
        };
        let solver = resolve_solver(k, la.n_out(), lb.n_out(), options)?;
        let assignment = assign_layer(la, lb, solver, cancel)?;
        let n = la.n_out();
        let distance = if n == 0 {
            0.0
        } else {
            assignment.cost / n as f64
        };
        result.push(LayerMatch {
            distance,
            cost: assignment.cost,
            matching: assignment.col_of_row,
            solver,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(layers: &[(usize, Vec<Vec<Idx>>)]) -> Network {
        Network::new(
            layers
                .iter()
                .enumerate()
                .map(|(k, (n_in, cols))| Layer::from_neuron_inputs(k, *n_in, cols).unwrap())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn shuffled_hidden_neurons_with_distinct_inputs_give_zero() {
        let a = net(&[
            (3, vec![vec![0], vec![1, 2], vec![2]]),
            (3, vec![vec![0, 1], vec![2]]),
        ]);
        // Hidden neurons renamed 0->2, 1->0, 2->1; layer 1's inputs renamed to match.
        let b = net(&[
            (3, vec![vec![1, 2], vec![2], vec![0]]),
            (3, vec![vec![2, 0], vec![1]]),
        ]);
        let d = distance(&a, &b, None, &Options::default(), &Cancel::new()).unwrap();
        assert_eq!(d[0].matching, vec![2, 0, 1]);
        assert_eq!((d[0].distance, d[1].distance), (0.0, 0.0));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(4_917_248), "4.7 MiB");
        assert_eq!(human_bytes(34_359_738_368), "32.0 GiB");
    }

    #[test]
    fn unmatched_b_neurons_get_fresh_labels() {
        assert_eq!(carried_labels(&[2, UNMATCHED, 0], 4), (vec![2, 3, 0, 4], 5));
    }

    #[test]
    fn mismatched_networks_are_rejected() {
        let a = net(&[(3, vec![vec![0]])]);
        let b = net(&[(4, vec![vec![0]])]);
        assert!(distance(&a, &b, None, &Options::default(), &Cancel::new()).is_err());
    }
}
