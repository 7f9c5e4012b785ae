"""The NNSTD pipelines a careful user would write with numpy and SciPy alone.

Both compute NNSTD as ``../shared/NNSTD.md`` defines it: per layer, the neuron costs
``(u - s) / u`` (one float64 division of the integers union ``u`` and overlap ``s``; 0 for two
empty neurons) and an optimal assignment; B's next layer is then relabelled through the matching
(B's neuron matched to A's neuron i takes label i; B's unmatched neurons take fresh labels after
A's, in index order), a whole group of inputs at a time for convolution-like layers.

- ``dense``: the full cost matrix and ``scipy.optimize.linear_sum_assignment`` (Crouse's LAPJV
  variant; the paper's solver). Overlaps ``|a ∩ b|`` come from a float32 BLAS product of the dense
  0/1 matrices (exact: counts stay far below 2**24), or from a sparse product when both layers
  are under ``SPARSE_OVERLAP_DENSITY`` dense (the paper's 0.6% layers), whichever is faster there.
- ``graph``: only the neuron pairs that share an input (one sparse product ``A^T B``) and
  ``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` (LAPJVsp). Every A neuron gets a
  private dummy column at cost 1, so any neuron may stay unmatched at the price NNSTD charges for
  a partner it shares nothing with; the graph is made square so that LAPJVsp runs faster (see
  ``doubled``), built once in CSR by vectorised placement (no COO round trip, no sorting, no
  per-pair indexing to read the cost back: ``assignment_cost``). All costs are shifted by +1
  (the function ignores explicit zero weights); that adds the same amount to every perfect
  matching. Empty A neurons are paired with empty B neurons first (cost 0, and no neuron can do
  better); rows left on their dummy column are then paired with B's unused neurons in index
  order (cost 1 either way), which makes
  it a full optimal NNSTD assignment.

Inputs are prepared in each pipeline's own format before the clock (like ``nnstd.Network``),
everything from there on is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

UNMATCHED = -1
SPARSE_OVERLAP_DENSITY = 0.02


@dataclass
class Layer:
    """One prepared layer: the 0/1 pattern as a dense float32 array or a CSC int32 array."""

    pattern: np.ndarray | sp.csc_array

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pattern.shape[0]), int(self.pattern.shape[1]))


@dataclass
class Solved:
    cost: float
    matching: np.ndarray  # matching[i]: B's neuron matched to A's neuron i, or -1


def prepare(layers: list[sp.csc_array], kind: str) -> list[Layer]:
    """The layers in the format the pipeline works on (done before the clock)."""
    if kind == "dense":
        return [Layer(dense_or_sparse(layer)) for layer in layers]
    return [Layer(sp.csc_array(layer, dtype=np.int32)) for layer in layers]


def dense_or_sparse(layer: sp.csc_array) -> np.ndarray | sp.csc_array:
    """The dense pipeline keeps very sparse layers sparse for its overlap product."""
    if layer.nnz < SPARSE_OVERLAP_DENSITY * layer.shape[0] * layer.shape[1]:
        return sp.csc_array(layer, dtype=np.float32)
    return np.ascontiguousarray(layer.toarray(), dtype=np.float32)


def carried_rows(matching: np.ndarray, n_b: int, group: int) -> tuple[np.ndarray, int]:
    """New label of each input row of B's next layer, and the number of labels (times group)."""
    labels = np.full(n_b, UNMATCHED, dtype=np.int64)
    matched = matching >= 0
    labels[matching[matched]] = np.flatnonzero(matched)
    free = labels == UNMATCHED
    labels[free] = len(matching) + np.arange(int(free.sum()))
    n_labels = len(matching) + int(free.sum())
    rows = (labels[:, None] * group + np.arange(group)[None, :]).ravel()
    return rows, n_labels * group


def carry(layer: Layer, matching: np.ndarray, group: int) -> Layer:
    """B's next layer with its inputs relabelled through the matching."""
    n_b = layer.shape[0] // group
    rows, n_rows = carried_rows(matching, n_b, group)
    pattern = layer.pattern
    if isinstance(pattern, np.ndarray):
        moved = np.zeros((n_rows, pattern.shape[1]), dtype=pattern.dtype)
        moved[rows] = pattern
        return Layer(moved)
    return Layer(
        sp.csc_array(
            (pattern.data, rows[pattern.indices], pattern.indptr), shape=(n_rows, pattern.shape[1])
        )
    )


def same_rows(a: Layer, b: Layer) -> tuple[Layer, Layer]:
    """Both layers over the same input labels (B may have fresh labels past A's)."""
    rows = max(a.shape[0], b.shape[0])
    return pad_rows(a, rows), pad_rows(b, rows)


def pad_rows(layer: Layer, rows: int) -> Layer:
    if layer.shape[0] == rows:
        return layer
    p = layer.pattern
    if isinstance(p, np.ndarray):
        return Layer(np.vstack([p, np.zeros((rows - p.shape[0], p.shape[1]), dtype=p.dtype)]))
    return Layer(sp.csc_array((p.data, p.indices, p.indptr), shape=(rows, p.shape[1])))


def sizes(layer: Layer) -> np.ndarray:
    """Each neuron's number of inputs, float64."""
    p = layer.pattern
    if isinstance(p, np.ndarray):
        return p.sum(axis=0, dtype=np.float64)
    return np.diff(p.indptr).astype(np.float64)


def overlaps(a: Layer, b: Layer) -> np.ndarray:
    """|a_i ∩ b_j| for all pairs, as a dense float32 matrix."""
    pa, pb = a.pattern, b.pattern
    if isinstance(pa, np.ndarray) or isinstance(pb, np.ndarray):
        da = pa if isinstance(pa, np.ndarray) else pa.toarray()
        db = pb if isinstance(pb, np.ndarray) else pb.toarray()
        return np.asarray(da.T @ db, dtype=np.float32)
    return np.asarray((pa.T @ pb).toarray(), dtype=np.float32)


def dense_costs(a: Layer, b: Layer) -> np.ndarray:
    """The full NNSTD cost matrix, ``(u - s) / u`` in float64, 0 for two empty neurons."""
    size_a, size_b = sizes(a), sizes(b)
    shared = overlaps(a, b)
    union = np.add.outer(size_a, size_b)
    union -= shared
    cost = union - shared
    del shared
    with np.errstate(invalid="ignore", divide="ignore"):
        cost /= union
    empty_a, empty_b = np.flatnonzero(size_a == 0), np.flatnonzero(size_b == 0)
    if len(empty_a) and len(empty_b):
        cost[np.ix_(empty_a, empty_b)] = 0.0
    return cost


def solve_dense(a: Layer, b: Layer) -> Solved:
    """Dense costs + ``linear_sum_assignment``."""
    cost = dense_costs(a, b)
    rows, cols = linear_sum_assignment(cost)
    matching = np.full(cost.shape[0], UNMATCHED, dtype=np.int64)
    matching[rows] = cols
    return Solved(float(cost[rows, cols].sum()), matching)


@dataclass
class Similarity:
    """The similarity graph of one layer pair: every pair of neurons that share an input, with
    its NNSTD cost, in CSR over A's neurons (``indices`` sorted in each row) and in CSR over B's
    neurons (``t_indptr``, ``t_indices``: its transpose, sorted too). Empty A neurons are
    paired with empty B neurons here at cost 0 (no neuron can do better)."""

    n1: int
    n2: int
    indptr: np.ndarray
    indices: np.ndarray
    cost: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray


def similarity(a: Layer, b: Layer) -> Similarity:
    """One sparse product ``A^T B`` gives every overlap; two linear CSR/CSC passes sort it."""
    pa, pb = a.pattern, b.pattern
    assert isinstance(pa, sp.csc_array) and isinstance(pb, sp.csc_array)
    size_a, size_b = np.diff(pa.indptr), np.diff(pb.indptr)
    by_b = (pa.T @ pb).tocsc()  # sorted: the transpose's CSR
    by_a = by_b.tocsr()  # sorted again
    indptr, indices, shared = by_a.indptr, by_a.indices, by_a.data
    t_indptr, t_indices = by_b.indptr, by_b.indices
    empty_a, empty_b = np.flatnonzero(size_a == 0), np.flatnonzero(size_b == 0)
    paired = min(len(empty_a), len(empty_b))
    if paired:  # an empty row (column) has no entries: give each one entry, overlap 0
        empty_a, empty_b = empty_a[:paired], empty_b[:paired]
        indptr, indices, shared = with_one_entry(indptr, indices, shared, empty_a, empty_b)
        t_indptr, t_indices, _ = with_one_entry(t_indptr, t_indices, None, empty_b, empty_a)
    rows = np.repeat(np.arange(len(size_a)), np.diff(indptr))
    s = shared.astype(np.float64)
    union = (size_a[rows] + size_b[indices]).astype(np.float64) - s
    with np.errstate(invalid="ignore"):
        cost = (union - s) / union
    if paired:
        cost[indptr[empty_a]] = 0.0  # two empty neurons: 0, not 0 / 0
    return Similarity(len(size_a), len(size_b), indptr, indices, cost, t_indptr, t_indices)


def with_one_entry(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray | None,
    rows: np.ndarray,
    cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """CSR arrays with one entry (value 0) added at ``(rows[k], cols[k])``, rows empty before."""
    counts = np.diff(indptr)
    counts[rows] = 1
    new_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(indptr.dtype)
    kept = np.ones(int(new_ptr[-1]), dtype=bool)
    kept[new_ptr[rows]] = False
    new_indices = np.empty(len(kept), dtype=indices.dtype)
    new_indices[kept] = indices
    new_indices[~kept] = cols  # rows ascending, so in the order of ``cols``
    new_data = None
    if data is not None:
        new_data = np.zeros(len(kept), dtype=data.dtype)
        new_data[kept] = data
    return new_ptr, new_indices, new_data


@dataclass
class Doubled:
    """The doubled square graph of a similarity graph, in CSR (``indices`` sorted in each row).

    Rows are A's neurons then one dummy row per B neuron; columns are B's neurons then one dummy
    column per A neuron. Row i holds its similarity pairs, then its private dummy column
    ``n2 + i`` (it stays unmatched); dummy row ``n1 + j`` holds B's column j (its private dummy
    row), then dummy column ``n2 + i`` for every A neuron i that j shares an input with (the
    graph transposed). Whatever real pairs a perfect matching uses, the dummies of exactly those
    neurons pair up among themselves, so every matching of the similarity graph extends to a
    perfect matching and the optimum is NNSTD's. ``real`` marks the similarity entries.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    real: np.ndarray
    top: int  # entries of A's rows (the first ``top`` entries)


def doubled(g: Similarity) -> Doubled:
    """Built once from the two sorted CSR forms, by vectorised placement (no sorting)."""
    n1, n2 = g.n1, g.n2
    top_ptr = g.indptr + np.arange(n1 + 1)
    bottom_ptr = g.t_indptr + np.arange(n2 + 1)
    top, bottom = int(top_ptr[-1]), int(bottom_ptr[-1])
    indices = np.empty(top + bottom, dtype=np.int32)
    real = np.ones(top + bottom, dtype=bool)
    dummy_col = top_ptr[1:] - 1
    real[dummy_col] = False
    real[top:] = False
    indices[:top][real[:top]] = g.indices
    indices[dummy_col] = n2 + np.arange(n1)
    own_row = top + bottom_ptr[:-1]
    transposed = np.ones(bottom, dtype=bool)
    transposed[bottom_ptr[:-1]] = False
    indices[own_row] = np.arange(n2)
    indices[top:][transposed] = n2 + g.t_indices
    indptr = np.concatenate([top_ptr, top + bottom_ptr[1:]])
    return Doubled(n1 + n2, indptr, indices, real, top)


def doubled_costs(d: Doubled, g: Similarity, *, shift: float = 0.0) -> np.ndarray:
    """Entry weights: a pair's NNSTD cost, 1 for an A neuron's dummy column, 0 elsewhere; all
    plus ``shift``."""
    weights = np.full(len(d.indices), shift)
    weights[: d.top] += 1.0
    weights[d.real] = g.cost + shift
    return weights


def assignment_cost(g: Similarity, x: np.ndarray) -> tuple[float, np.ndarray]:
    """NNSTD's layer cost and matching from a perfect matching of the doubled graph (``x[i]``:
    row i's column): the similarity pairs it uses at their cost, every other A neuron paired
    with one of B's unused neurons at cost 1 (``complete_with_free_columns``)."""
    n1, n2 = g.n1, g.n2
    matching = x[:n1].astype(np.int64)
    matching[matching >= n2] = UNMATCHED
    rows = np.repeat(np.arange(n1), np.diff(g.indptr))
    used = g.indices == matching[rows]
    pairs = int(np.count_nonzero(matching >= 0))
    cost = float(g.cost[used].sum()) + (min(n1, n2) - pairs)
    complete_with_free_columns(matching, n2)
    return cost, matching


def solve_graph(a: Layer, b: Layer) -> Solved:
    """Similarity graph, doubled to a square graph, + ``min_weight_full_bipartite_matching``.

    LAPJVsp ignores explicit zero weights, so every weight is shifted by +1 (the same amount on
    every perfect matching). (Measured: the square padding is as fast or faster than a
    rectangular one with A's dummy columns only, e.g. 28 s against over 60 s on near-twins
    65,536 wide.)
    """
    g = similarity(a, b)
    d = doubled(g)
    graph = sp.csr_array((doubled_costs(d, g, shift=1.0), d.indices, d.indptr), shape=(d.n, d.n))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    x = np.empty(d.n, dtype=np.int64)
    x[row_ind] = col_ind
    cost, matching = assignment_cost(g, x)
    return Solved(cost, matching)


def complete_with_free_columns(matching: np.ndarray, n2: int) -> None:
    """Pairs A's unmatched neurons with B's unused ones in index order (cost 1 either way)."""
    used = np.zeros(n2, dtype=bool)
    used[matching[matching >= 0]] = True
    free_rows = np.flatnonzero(matching < 0)
    free_cols = np.flatnonzero(~used)
    k = min(len(free_rows), len(free_cols))
    matching[free_rows[:k]] = free_cols[:k]


SOLVERS: dict[str, Callable[[Layer, Layer], Solved]] = {
    "dense": solve_dense,
    "graph": solve_graph,
}


def network_distance(
    a: list[Layer], b: list[Layer], groups: list[int], solve: Callable[[Layer, Layer], Solved]
) -> tuple[list[float], list[np.ndarray]]:
    """Per-layer assignment costs and matchings, the matching carried from layer to layer."""
    costs: list[float] = []
    matchings: list[np.ndarray] = []
    b_layer = b[0]
    for k, a_layer in enumerate(a):
        if k:
            b_layer = carry(b[k], matchings[-1], groups[k])
        solved = solve(*same_rows(a_layer, b_layer))
        costs.append(solved.cost)
        matchings.append(solved.matching)
    return costs, matchings
