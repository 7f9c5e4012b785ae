"""NNSTD pipelines on the assignment libraries a user reaches for when SciPy is not fast enough.

Each computes the full network distance as ``scipy_pipelines`` does (the same neuron costs, the
matching carried into the next layer, unmatched neurons at cost 1) and differs only in the
solver, with the cost representation that solver wants:

- ``lapjv``: lapx's ``lapjv`` (Jonker-Volgenant, dense) on the float64 cost matrix of
  ``scipy_pipelines.dense_costs``;
- ``lapjvs``: lapx's ``lapjvs`` (its other dense Jonker-Volgenant kernel) on the same matrix,
  ``prefer_float32=False`` so it solves the float64 costs (float32 would round them);
- ``srcd``: src-d's ``lapjv`` (dense, AVX2) on the same matrix, ``force_doubles=True``;
- ``lapmod``: lapx's ``lapmod`` (sparse Jonker-Volgenant) on the doubled square similarity
  graph of ``scipy_pipelines.doubled`` (costs unshifted: lapmod takes zeros);
- ``ortools``: OR-tools' ``SimpleLinearSumAssignment`` (Goldberg-Kennedy cost scaling) on the
  same doubled graph's arcs. It takes integer costs only: every cost is multiplied by
  ``ortools_scale(n)`` = 2**(60 - 2 ceil(log2 n)) for n nodes a side (2**38 on the paper's
  layers, 2**30 at 16,384 wide), the largest power of two at which it does not report possible
  overflow (measured: it does from about 2**62 / n**2), and rounded to the nearest integer. Its
  float cost is then recomputed from the assignment it returns; where rounding made it miss
  the float optimum the runner's layer-0 check shows it.

The dense ones pad a rectangular layer with zero rows or columns (as ``linear_sum_assignment``
leaves the surplus unmatched); the suite's instances are all square. Inputs are prepared before
the clock in the format of ``scipy_pipelines.prepare`` (``dense`` or ``graph``); everything from
there on is timed. Each library is imported only for its own pipelines (``load``, before the
clock), so one that does not install does not stop the others.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import numpy as np
import scipy_pipelines as base

FORMAT = {
    "lapjv": "dense",
    "lapjvs": "dense",
    "srcd": "dense",
    "lapmod": "graph",
    "ortools": "graph",
}
MODULES = {
    "lapjv": "lap",
    "lapjvs": "lap",
    "srcd": "lapjv",
    "lapmod": "lap",
    "ortools": "ortools.graph.python.linear_sum_assignment",
}


def load(kind: str) -> None:
    """Imports the peer's library (before the clock: an import is not part of a solve)."""
    importlib.import_module(MODULES[kind])


def square(cost: np.ndarray) -> np.ndarray:
    """The cost matrix padded with zeros to a square (the padding's pairs cost nothing)."""
    n1, n2 = cost.shape
    if n1 == n2:
        return cost
    return np.pad(cost, ((0, max(0, n2 - n1)), (0, max(0, n1 - n2))))


def dense_matching(x: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Row i's column, -1 where it is unmatched or matched to padding."""
    matching = np.asarray(x[:n1], dtype=np.int64)
    matching[(matching < 0) | (matching >= n2)] = base.UNMATCHED
    return matching


def dense_cost(cost: np.ndarray, matching: np.ndarray) -> float:
    rows = np.flatnonzero(matching >= 0)
    return float(cost[rows, matching[rows]].sum())


def solve_lapjv(a: base.Layer, b: base.Layer) -> base.Solved:
    """lapx ``lapjv``, float64 dense costs."""
    import lap

    cost = base.dense_costs(a, b)
    total, x, _ = lap.lapjv(cost, extend_cost=cost.shape[0] != cost.shape[1])
    return base.Solved(float(total), dense_matching(x, *cost.shape))


def solve_lapjvs(a: base.Layer, b: base.Layer) -> base.Solved:
    """lapx ``lapjvs``, float64 kernel."""
    import lap

    cost = base.dense_costs(a, b)
    total, x, _ = lap.lapjvs(cost, return_cost=True, jvx_like=False, prefer_float32=False)
    return base.Solved(float(total), dense_matching(x, *cost.shape))


def solve_srcd(a: base.Layer, b: base.Layer) -> base.Solved:
    """src-d ``lapjv``, ``force_doubles=True`` (it takes square matrices only)."""
    from lapjv import lapjv

    cost = base.dense_costs(a, b)
    x, _, _ = lapjv(square(cost), force_doubles=True)
    matching = dense_matching(x, *cost.shape)
    return base.Solved(dense_cost(cost, matching), matching)


def solve_lapmod(a: base.Layer, b: base.Layer) -> base.Solved:
    """lapx ``lapmod`` on the doubled square similarity graph."""
    import lap

    g = base.similarity(a, b)
    d = base.doubled(g)
    _, x, _ = lap.lapmod(d.n, base.doubled_costs(d, g), d.indptr, d.indices)
    cost, matching = base.assignment_cost(g, x)
    return base.Solved(cost, matching)


def ortools_scale(n: int) -> int:
    """The integer scale for OR-tools' costs on ``n`` nodes a side (see the module docstring)."""
    return 2 ** (60 - 2 * max(1, math.ceil(math.log2(n))))


def solve_ortools(a: base.Layer, b: base.Layer) -> base.Solved:
    """OR-tools ``SimpleLinearSumAssignment`` on the doubled graph's arcs, integer costs."""
    from ortools.graph.python.linear_sum_assignment import SimpleLinearSumAssignment

    g = base.similarity(a, b)
    d = base.doubled(g)
    weights = np.rint(base.doubled_costs(d, g) * ortools_scale(d.n)).astype(np.int64)
    left = np.repeat(np.arange(d.n, dtype=np.int32), np.diff(d.indptr))
    solver = SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(left, d.indices, weights)
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-tools: {status}")
    x = np.fromiter((solver.right_mate(i) for i in range(g.n1)), dtype=np.int64, count=g.n1)
    cost, matching = base.assignment_cost(g, x)
    return base.Solved(cost, matching)


SOLVERS: dict[str, Callable[[base.Layer, base.Layer], base.Solved]] = {
    "lapjv": solve_lapjv,
    "lapjvs": solve_lapjvs,
    "srcd": solve_srcd,
    "lapmod": solve_lapmod,
    "ortools": solve_ortools,
}
