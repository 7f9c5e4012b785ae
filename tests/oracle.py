"""Independent oracles for NNSTD, written from the definition (../shared/NNSTD.md), not from nnstd.

- `set_cost_matrix`: the cost matrix from Python sets, one pair at a time (plain definition).
- `scipy_cost_matrix`: the same matrix, vectorised with sparse products (the "SciPy pipeline").
- `scipy_distance`: `scipy.optimize.linear_sum_assignment` per layer, permutation carried forward.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

Matrix = sp.csc_array


def binary(layer: object) -> sp.csc_array:
    m = sp.csc_array(layer, dtype=np.float64)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def input_sets(layer: sp.csc_array) -> list[frozenset[int]]:
    m = binary(layer)
    return [frozenset(m.indices[m.indptr[c] : m.indptr[c + 1]].tolist()) for c in range(m.shape[1])]


def set_cost_matrix(a: sp.csc_array, b: sp.csc_array) -> np.ndarray:
    """C[i, j] = (|a_i U b_j| - |a_i n b_j|) / |a_i U b_j|, 0 for two empty sets."""
    sa, sb = input_sets(a), input_sets(b)
    c = np.empty((len(sa), len(sb)))
    for i, x in enumerate(sa):
        for j, y in enumerate(sb):
            union, shared = len(x | y), len(x & y)
            c[i, j] = 0.0 if union == 0 else (union - shared) / union
    return c


def scipy_cost_matrix(a: sp.csc_array, b: sp.csc_array) -> np.ndarray:
    """The same matrix from a sparse product of the binary patterns."""
    xa, xb = binary(a), binary(b)
    rows = max(xa.shape[0], xb.shape[0])
    xa.resize((rows, xa.shape[1]))
    xb.resize((rows, xb.shape[1]))
    shared = (xa.T @ xb).toarray()
    size_a = np.asarray(xa.sum(axis=0)).ravel()
    size_b = np.asarray(xb.sum(axis=0)).ravel()
    union = size_a[:, None] + size_b[None, :] - shared
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = (union - shared) / union
    cost[union == 0] = 0.0
    return cost


def carry(next_b: object, matching: np.ndarray, n_b: int) -> sp.csc_array:
    """B's next layer with its rows renamed: new row i = old row matching[i] (A's neuron i's
    partner); rows of B neurons without a partner follow, in index order; A neurons without a
    partner get empty rows. Built as a 0/1 selection matrix times the layer."""
    unmatched = np.setdiff1d(np.arange(n_b), matching[matching >= 0])
    order = np.concatenate([matching, unmatched])
    new_rows = np.flatnonzero(order >= 0)
    select = sp.csr_array(
        (np.ones(len(new_rows)), (new_rows, order[new_rows])), shape=(len(order), n_b)
    )
    return sp.csc_array(select @ sp.csr_array(next_b))


def scipy_distance(
    layers_a: Sequence[object],
    layers_b: Sequence[object],
    cost_fn: Callable[[sp.csc_array, sp.csc_array], np.ndarray] = scipy_cost_matrix,
) -> tuple[list[float], list[np.ndarray]]:
    """Per-layer distances and matchings (matching[i] = B neuron of A's neuron i, -1 if none)."""
    dists, matchings = [], []
    b_layer = sp.csc_array(layers_b[0])
    for k, a_layer in enumerate(layers_a):
        cost = cost_fn(sp.csc_array(a_layer), b_layer)
        row_ind, col_ind = linear_sum_assignment(cost)
        dists.append(float(cost[row_ind, col_ind].sum()) / cost.shape[0])
        matching = np.full(cost.shape[0], -1)
        matching[row_ind] = col_ind
        matchings.append(matching)
        if k + 1 < len(layers_a):
            b_layer = carry(layers_b[k + 1], matching, cost.shape[1])
    return dists, matchings


def check_layers_are_optimal(
    layers_a: list, layers_b: list, d: object, cost_fn=scipy_cost_matrix
) -> None:
    """Each layer's cost is SciPy's optimum on the matrix built with the carried alignment,
    and equals the cost of the matching returned."""
    b_layer = sp.csc_array(layers_b[0])
    for k, a_layer in enumerate(layers_a):
        cost = cost_fn(sp.csc_array(a_layer), b_layer)
        rows, cols = linear_sum_assignment(cost)
        assert abs(d.costs[k] - cost[rows, cols].sum()) < 1e-9
        matched = d.matchings[k] >= 0
        assert matched.sum() == min(cost.shape)
        assert abs(cost[np.flatnonzero(matched), d.matchings[k][matched]].sum() - d.costs[k]) < 1e-9
        if k + 1 < len(layers_a):
            b_layer = carry(layers_b[k + 1], d.matchings[k], cost.shape[1])


def shuffled_hidden(layers: Sequence[object], rng: np.random.Generator) -> list[np.ndarray]:
    """The same graph with every hidden layer's neurons renamed (next layer's inputs to match)."""
    out = [sp.csc_array(w).toarray() for w in layers]
    for k in range(len(out) - 1):
        perm = rng.permutation(out[k].shape[1])
        out[k] = out[k][:, perm]
        out[k + 1] = out[k + 1][perm, :]
    return out


def paper_layers(folder: str) -> list[sp.csc_array]:
    """The paper's folder layout read directly with SciPy (bias row dropped)."""
    layers, k = [], 0
    while os.path.exists(f"{folder}/weight_l{k}.npz"):
        layers.append(sp.csc_array(sp.load_npz(f"{folder}/weight_l{k}.npz"))[:-1])
        k += 1
    return layers
