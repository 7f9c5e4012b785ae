"""Benchmark on the paper's topologies: nnstd against the plain SciPy pipeline, in one run.

Times (1) the whole set, all epochs, all 45 pairs, all 4 layers: `nnstd.pairwise` against a
vectorised SciPy cost matrix + `linear_sum_assignment` with the permutation carried forward; and
(2) the exact solver alone against `scipy.optimize.linear_sum_assignment` alone on the same cost
matrices, one thread each, checking that both choose the same assignment.

    python benchmarks/paper.py [--topo-root DIR] [--epochs epoch_000 ...] [--solver exact]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import nnstd  # noqa: E402
from nnstd import _core  # noqa: E402
from nnstd.generate import PAPER_SNAPSHOTS  # noqa: E402
from oracle import carry, paper_layers, scipy_cost_matrix  # noqa: E402

EPOCHS = [f"epoch_{e:03d}" for e in PAPER_SNAPSHOTS]


def as_sparse_cost(cost: np.ndarray) -> tuple:
    r, c = np.nonzero(cost != 1.0)
    s = sp.csr_array((cost[r, c], (r, c)), shape=cost.shape)
    s.sort_indices()
    return (
        cost.shape[0],
        cost.shape[1],
        s.indptr.astype(np.int64),
        s.indices.astype(np.int64),
        s.data.astype(np.float64),
    )


class SolverClock:
    """Accumulates solver-alone times of SciPy and nnstd on the same matrices."""

    def __init__(self) -> None:
        self.scipy = self.nnstd = 0.0
        self.matrices = self.identical = 0

    def solve(self, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        row_ind, col_ind = linear_sum_assignment(cost)
        self.scipy += time.perf_counter() - t
        args = as_sparse_cost(cost)
        t = time.perf_counter()
        mine = _core.assign_exact(*args)
        self.nnstd += time.perf_counter() - t
        self.matrices += 1
        self.identical += int(np.array_equal(mine[row_ind], col_ind))
        return row_ind, col_ind


def scipy_pipeline(layers_a: list, layers_b: list, clock: SolverClock) -> list[float]:
    """The paper's algorithm with a vectorised cost matrix and SciPy's solver."""
    dists, b_layer = [], layers_b[0]
    for k, a_layer in enumerate(layers_a):
        cost = scipy_cost_matrix(a_layer, b_layer)
        row_ind, col_ind = clock.solve(cost)
        dists.append(float(cost[row_ind, col_ind].sum()) / cost.shape[0])
        if k + 1 < len(layers_a):
            matching = np.full(cost.shape[0], -1)
            matching[row_ind] = col_ind
            b_layer = carry(layers_b[k + 1], matching, cost.shape[1])
    return dists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo-root", type=Path, default=ROOT.parent / "shared" / "paper-topo")
    parser.add_argument("--epochs", nargs="+", default=EPOCHS)
    parser.add_argument("--solver", default="exact")
    args = parser.parse_args()
    clock = SolverClock()
    t_nnstd = t_scipy = 0.0
    worst = np.zeros(4)
    print(f"{'epoch':<10} {'nnstd s':>9} {'scipy s':>9} {'ratio':>7}")
    for epoch in args.epochs:
        folders = [args.topo_root / f"e5_s0_w{k}" / epoch for k in range(10)]
        nets = [nnstd.load_network(f) for f in folders]
        t = time.perf_counter()
        ours = nnstd.pairwise(nets, solver=args.solver)
        e_nnstd = time.perf_counter() - t
        raw = [paper_layers(str(f)) for f in folders]
        t = time.perf_counter()
        for i in range(10):
            for j in range(i):
                theirs = scipy_pipeline(raw[i], raw[j], clock)
                worst = np.maximum(worst, np.abs(ours[i, j] - theirs))
        e_scipy = time.perf_counter() - t
        t_nnstd += e_nnstd
        t_scipy += e_scipy
        print(f"{epoch:<10} {e_nnstd:9.3f} {e_scipy:9.3f} {e_scipy / e_nnstd:6.1f}x")
    print(
        f"{'total':<10} {t_nnstd:9.3f} {t_scipy:9.3f} {t_scipy / t_nnstd:6.1f}x"
        f"   (nnstd.pairwise, solver={args.solver!r}, all cores, vs SciPy pipeline)"
    )
    print(
        "largest |nnstd - scipy| over all pairs, per layer: "
        + ", ".join(f"{w:.2g}" for w in worst)
        + (
            ""
            if args.solver == "exact"
            else f"  (solver {args.solver!r} breaks ties unlike SciPy: layers after 0 differ)"
        )
    )
    print(
        f"solver alone, one thread, {clock.matrices} cost matrices: "
        f"nnstd {clock.nnstd:.3f} s, scipy {clock.scipy:.3f} s, "
        f"ratio {clock.scipy / clock.nnstd:.2f}x; identical assignments: "
        f"{clock.identical}/{clock.matrices}"
    )


if __name__ == "__main__":
    main()
