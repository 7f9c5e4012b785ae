"""The strongest NNSTD pipelines a user could write with numpy and SciPy alone.

Both compute NNSTD as ``../shared/NNSTD.md`` defines it: per layer, the neuron costs
``(u - s) / u`` (one float64 division of the integers union ``u`` and overlap ``s``; 0 for two
empty neurons) and an optimal assignment; B's next layer is then relabelled through the matching
(B's neuron matched to A's neuron i takes label i; B's unmatched neurons take fresh labels after
A's, in index order), a whole group of inputs at a time for convolution-like layers.

- ``dense``: the full cost matrix and ``scipy.optimize.linear_sum_assignment`` (Crouse's LAPJV
  variant; the paper's solver). Overlaps ``|a ∩ b|`` come from a float32 BLAS product of the dense
  0/1 matrices (exact: counts stay far below 2**24), or from a sparse product when both layers
  are under ``SPARSE_OVERLAP_DENSITY`` dense (the paper's 0.6% layers), whichever is faster there.
- ``graph``: only the neuron pairs that share an input (the sparse product ``A^T B``) and
  ``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` (LAPJVsp). Every A neuron gets a
  private dummy column at cost 1, so any neuron may stay unmatched at the price NNSTD charges for
  a partner it shares nothing with; the graph is made square so that LAPJVsp runs faster (see
  ``solve_graph``). All costs are shifted by +1 (the function ignores explicit zero weights);
  that adds the same amount to every perfect matching. Empty A neurons are paired
  with empty B neurons first (cost 0, and no neuron can do better); rows left on their dummy
  column are then paired with B's unused neurons in index order (cost 1 either way), which makes
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
DUMMY_WEIGHT = 2.0  # cost 1, shifted by +1


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


def similarity_graph(a: Layer, b: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, cost) of every pair of neurons sharing an input."""
    pa, pb = a.pattern, b.pattern
    assert isinstance(pa, sp.csc_array) and isinstance(pb, sp.csc_array)
    shared = sp.csr_array(pa.T @ pb)
    rows = np.repeat(np.arange(shared.shape[0]), np.diff(shared.indptr))
    cols = shared.indices
    s = shared.data.astype(np.float64)
    union = sizes(a)[rows] + sizes(b)[cols] - s
    return rows, cols, (union - s) / union


def solve_graph(a: Layer, b: Layer) -> Solved:
    """Similarity graph, padded to a square graph, + ``min_weight_full_bipartite_matching``.

    Rows are A's neurons then one dummy row per B neuron; columns are B's neurons then one dummy
    column per A neuron. A neuron's private dummy column costs 1 (it stays unmatched), a B
    neuron's private dummy row costs 0, and dummy row j meets dummy column i wherever A's i and
    B's j share an input (the graph transposed, cost 0): whatever real pairs a matching uses,
    the dummies of exactly those neurons pair up among themselves, so every matching of the
    similarity graph extends to a perfect matching and the optimum is NNSTD's. (Measured: as
    fast or faster than the rectangular padding with A's dummy columns only, e.g. 28 s against
    over 60 s on near-twins 65,536 wide.)
    """
    n1, n2 = a.shape[1], b.shape[1]
    rows, cols, cost = similarity_graph(a, b)
    empty_a = np.flatnonzero(sizes(a) == 0)
    empty_b = np.flatnonzero(sizes(b) == 0)
    paired = min(len(empty_a), len(empty_b))
    rows = np.concatenate([rows, empty_a[:paired]])
    cols = np.concatenate([cols, empty_b[:paired]])
    weights = np.concatenate([1.0 + cost, np.ones(paired)])
    dummy_a, dummy_b = np.arange(n1), np.arange(n2)
    graph = sp.csr_array(
        (
            np.concatenate([weights, np.full(n1, DUMMY_WEIGHT), np.ones(n2), np.ones(len(rows))]),
            (
                np.concatenate([rows, dummy_a, n1 + dummy_b, n1 + cols]),
                np.concatenate([cols, n2 + dummy_a, dummy_b, n2 + rows]),
            ),
        ),
        shape=(n1 + n2, n2 + n1),
    )
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = (row_ind < n1) & (col_ind < n2)
    matched = np.asarray(graph[row_ind[real], col_ind[real]]).ravel()
    matching = np.full(n1, UNMATCHED, dtype=np.int64)
    matching[row_ind[real]] = col_ind[real]
    similarity = float((DUMMY_WEIGHT - matched).sum())
    complete_with_free_columns(matching, n2)
    return Solved(min(n1, n2) - similarity, matching)


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
    a: list[Layer], b: list[Layer], groups: list[int], kind: str
) -> tuple[list[float], list[np.ndarray]]:
    """Per-layer assignment costs and matchings, the matching carried from layer to layer."""
    solve = SOLVERS[kind]
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
