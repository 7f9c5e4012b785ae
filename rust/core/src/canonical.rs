//! The canonical mode (docs/definition.md#canonical-mode): a network distance that depends on
//! the two networks' structures alone, not on how their neurons are numbered and not on which
//! optimal algorithm runs.
//!
//! 1. Both networks are put in canonical order (`crate::canon`); the one with the smaller
//!    canonical form is the reference, so `distance(a, b)` and `distance(b, a)` make the same
//!    matchings.
//! 2. Layer by layer, with the matching carried forward as in every mode, the fastest optimal
//!    algorithm for the layer (sparse or dense, `crate::policy`) finds an optimum and a dual
//!    certificate, and the canonical choice among all optimal assignments is read from them
//!    (`crate::assign::canonical`). Identical layers are matched neuron to neuron.
//! 3. Matchings are reported in the callers' own labels.

use crate::assign::canonical::{choose, Criteria};
use crate::assign::{
    exact, invert_matching, lapjv, sparse, Algorithm, Assignment, Duals, UNMATCHED,
};
use crate::cancel::Cancel;
use crate::canon::{label, Labelled};
use crate::error::{Error, Result};
use crate::network::{check_comparable, layer_distance, with_carried_labels, LayerMatch};
use crate::policy::{plan, Options, Solver};
use crate::refine::{agreement, colour_history, History};
use crate::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, DenseCost, EmptyPairs,
    SparseCost,
};
use crate::topology::{Idx, Layer, Network};

/// A network ready for canonical distances: its canonical labelling and structural colours,
/// computed once per network (`crate::pairwise` reuses them across pairs).
pub struct Prepared {
    labelled: Labelled,
    /// Colours over `2 * depth + 1` rounds of refinement (enough for a neuron's colour to
    /// reflect the whole depth in both directions), neurons in canonical order.
    history: History,
}

/// The canonical labelling and colours of `net`.
pub fn prepare(net: &Network, cancel: &Cancel) -> Result<Prepared> {
    let rounds = 2 * net.depth() + 1;
    let history = colour_history(net, rounds);
    // The search for canonical labels goes on refining from the last round.
    let labelled = label(net, history[rounds].clone(), cancel)?;
    let history = history
        .into_iter()
        .map(|round| {
            round
                .iter()
                .zip(&labelled.order)
                .map(|(layer, order)| order.iter().map(|&i| layer[i]).collect())
                .collect()
        })
        .collect();
    Ok(Prepared { labelled, history })
}

/// The canonical distance of `b` from `a` over their first `depth` layers.
pub fn distance(
    a: &Network,
    b: &Network,
    depth: Option<usize>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    check_comparable(a, b)?;
    distance_prepared(
        &prepare(a, cancel)?,
        &prepare(b, cancel)?,
        depth,
        options,
        cancel,
    )
}

/// [`distance`] between prepared networks (of one depth and input width).
pub fn distance_prepared(
    a: &Prepared,
    b: &Prepared,
    depth: Option<usize>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    let full = a.labelled.network.depth();
    let depth = depth.unwrap_or(full);
    if depth > full {
        return Err(Error::InvalidArgument(format!(
            "asked for {depth} layers of a {full}-layer network"
        )));
    }
    let swapped = b.labelled.form < a.labelled.form;
    let (first, second) = if swapped { (b, a) } else { (a, b) };
    let structure = Structure {
        a: &first.history,
        b: &second.history,
        rounds: first.history.len() - 1,
    };
    let matches = layer_matches(
        &first.labelled.network,
        &second.labelled.network,
        depth,
        &structure,
        options,
        cancel,
    )?;
    Ok(matches
        .into_iter()
        .enumerate()
        .map(|(k, m)| {
            // `m.matching` maps `first`'s canonical labels to `second`'s.
            let (from, to) = (&first.labelled.order[k], &second.labelled.order[k]);
            let mut matching = vec![UNMATCHED; from.len()];
            for (i, &j) in m.matching.iter().enumerate() {
                if j != UNMATCHED {
                    matching[from[i]] = to[j];
                }
            }
            let n_a = a.labelled.order[k].len();
            if swapped {
                matching = invert_matching(&matching, n_a);
            }
            LayerMatch {
                distance: layer_distance(m.cost, n_a),
                cost: m.cost,
                matching,
                algorithm: Algorithm::Canonical,
            }
        })
        .collect())
}

/// Structural colours of both canonical networks.
struct Structure<'a> {
    a: &'a History,
    b: &'a History,
    rounds: usize,
}

impl Structure<'_> {
    /// 0 for neurons whose colours agree in every round, up to 1 when they never do.
    fn dissimilarity(&self, k: usize, i: usize, j: usize) -> f64 {
        1.0 - agreement(self.a, self.b, k, i, j) as f64 / self.rounds as f64
    }

    fn last(history: &History, k: usize) -> &[u64] {
        &history[history.len() - 1][k]
    }
}

/// Layer matches between two canonical networks, in their canonical labels.
fn layer_matches(
    a: &Network,
    b: &Network,
    depth: usize,
    structure: &Structure,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    let mut result: Vec<LayerMatch> = Vec::with_capacity(depth);
    for k in 0..depth {
        cancel.check()?;
        let (la, lb) = (&a.layers()[k], &b.layers()[k]);
        let lb = with_carried_labels(lb, result.last());
        let lb = lb.as_ref();
        let assignment = if la == lb {
            Assignment {
                col_of_row: (0..la.n_out()).collect(),
                cost: 0.0,
            }
        } else {
            canonical_layer(k, la, lb, structure, options, cancel)?
        };
        result.push(LayerMatch {
            distance: layer_distance(assignment.cost, la.n_out()),
            cost: assignment.cost,
            matching: assignment.col_of_row,
            algorithm: Algorithm::Canonical,
        });
    }
    Ok(result)
}

/// One layer's canonical assignment (module documentation, step 2).
fn canonical_layer(
    k: usize,
    a: &Layer,
    b: &Layer,
    structure: &Structure,
    options: &Options,
    cancel: &Cancel,
) -> Result<Assignment> {
    let (empty_rows, empty_cols) = (empty_neurons(a), empty_neurons(b));
    let fastest = Options {
        solver: Solver::Auto,
        ..*options
    };
    let (stored, optimum, duals) = if plan(k, a, b, &fastest)?.dense_costs {
        let dense = dense_layer_costs(a, b);
        let (optimum, duals) = lapjv::solve_with_duals(&dense, cancel)?;
        let stored = stored_pairs(&dense, &empty_rows, &empty_cols);
        (
            stored,
            optimum,
            without_empty(duals, &empty_rows, &empty_cols),
        )
    } else {
        let stored = layer_costs_with(a, b, EmptyPairs::Skip);
        let (optimum, duals) = sparse::solve_with_duals(&stored, &empty_rows, &empty_cols, cancel)?;
        (stored, optimum, duals)
    };
    let (optimum, duals) = if duals.certify(&stored, &optimum.col_of_row) {
        (optimum, duals)
    } else {
        certified_by_paper_mode(k, a, b, &stored, &empty_rows, &empty_cols)?
    };
    let dissimilarity = |i: usize, j: usize| structure.dissimilarity(k, i, j);
    let criteria = Criteria {
        secondary: &dissimilarity,
        row_colours: Structure::last(structure.a, k),
        col_colours: Structure::last(structure.b, k),
        empty_rows: &empty_rows,
        empty_cols: &empty_cols,
    };
    let col_of_row = choose(&stored, &optimum.col_of_row, &duals, &criteria);
    let is_empty_pair = |i: usize, j: usize| {
        empty_rows.binary_search(&i).is_ok() && empty_cols.binary_search(&j).is_ok()
    };
    let chosen = Assignment::from_matching(col_of_row, |i, j| {
        if is_empty_pair(i, j) {
            0.0
        } else {
            stored.get(i, j)
        }
    });
    if (chosen.cost - optimum.cost).abs() > 1e-9 * optimum.cost.max(1.0) {
        return Err(Error::InvalidArgument(format!(
            "layer {k}: the canonical choice costs {} against the optimum {}; please report \
             this as a bug",
            chosen.cost, optimum.cost
        )));
    }
    Ok(chosen)
}

/// The stored pairs of a dense cost matrix: entries below 1, except between two empty neurons.
fn stored_pairs(dense: &DenseCost, empty_rows: &[usize], empty_cols: &[usize]) -> SparseCost {
    let empty_col = {
        let mut is = vec![false; dense.n_cols];
        for &j in empty_cols {
            is[j] = true;
        }
        is
    };
    let mut rowptr = vec![0usize];
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    for i in 0..dense.n_rows {
        let row_empty = empty_rows.binary_search(&i).is_ok();
        for (j, &c) in dense.row(i).iter().enumerate() {
            if c < 1.0 && !(row_empty && empty_col[j]) {
                cols.push(j as Idx);
                vals.push(c);
            }
        }
        rowptr.push(cols.len());
    }
    SparseCost {
        n_rows: dense.n_rows,
        n_cols: dense.n_cols,
        rowptr,
        cols,
        vals,
    }
}

/// Duals of the problem without the pairs of empty neurons: theirs become 0 (their only
/// stored pairs are with each other, so every other constraint stands).
fn without_empty(mut duals: Duals, empty_rows: &[usize], empty_cols: &[usize]) -> Duals {
    for &i in empty_rows {
        duals.rows[i] = 0.0;
    }
    for &j in empty_cols {
        duals.cols[j] = 0.0;
    }
    duals
}

/// An optimum and certificate from the paper mode's solver, for a layer whose first
/// certificate failed (float rounding far beyond the usual).
fn certified_by_paper_mode(
    k: usize,
    a: &Layer,
    b: &Layer,
    stored: &SparseCost,
    empty_rows: &[usize],
    empty_cols: &[usize],
) -> Result<(Assignment, Duals)> {
    let full = layer_costs(a, b);
    if let Some((optimum, u, v)) = exact::solve_with_duals(&full) {
        let duals = without_empty(Duals::from_assignment_duals(&u, &v), empty_rows, empty_cols);
        if duals.certify(stored, &optimum.col_of_row) {
            return Ok((optimum, duals));
        }
    }
    Err(Error::InvalidArgument(format!(
        "layer {k}: no optimality certificate for the canonical mode; please report this as a bug"
    )))
}
