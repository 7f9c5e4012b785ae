"""Scale benchmark: very wide sparse layers, nnstd's sparse solver against SciPy's best pipeline.

For each n: two 2-layer networks of Erdos-Renyi n x n layers with fan-in 8, the second a twin of
the first with 30% of each layer's connections moved to random inputs. Each measurement runs in
a fresh subprocess, so its peak memory (resident set) is its own. SciPy's pipeline is the best it
offers at that size: the dense cost matrix and `linear_sum_assignment` where the matrix fits
(n <= --dense-max), else the similarity graph and
`scipy.sparse.csgraph.min_weight_full_bipartite_matching` on a graph padded so that a full
matching exists. Both carry layer 0's matching into layer 1, and the layer-0 optima are compared.

    python benchmarks/scale.py [--sizes 4096 16384 65536 262144 1048576] [--scipy-timeout 900]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

FAN_IN, MOVED, SEED = 8, 0.3, 0


def er_layer(rng: np.random.Generator, n: int) -> sp.csc_array:
    """n x n, every neuron (column) with FAN_IN distinct random inputs."""
    rows = rng.integers(0, n, size=(n, FAN_IN))
    while True:
        rows.sort(axis=1)
        dup = np.zeros_like(rows, dtype=bool)
        dup[:, 1:] = rows[:, 1:] == rows[:, :-1]
        if not dup.any():
            break
        rows[dup] = rng.integers(0, n, size=int(dup.sum()))
    cols = np.repeat(np.arange(n), FAN_IN)
    return sp.csc_array((np.ones(n * FAN_IN), (rows.ravel(), cols)), shape=(n, n))


def twin(rng: np.random.Generator, layer: sp.csc_array) -> sp.csc_array:
    """The layer with MOVED of its connections moved to random inputs of the same neuron."""
    coo = sp.coo_array(layer)
    rows = coo.row.copy()
    moved = rng.choice(coo.nnz, size=int(MOVED * coo.nnz), replace=False)
    rows[moved] = rng.integers(0, layer.shape[0], size=len(moved))
    out = sp.csc_array((np.ones(coo.nnz), (rows, coo.col)), shape=layer.shape)
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


def networks(n: int) -> tuple[list[sp.csc_array], list[sp.csc_array]]:
    rng = np.random.default_rng([SEED, n])
    a = [er_layer(rng, n), er_layer(rng, n)]
    return a, [twin(rng, layer) for layer in a]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def similarity_graph(a: sp.csc_array, b: sp.csc_array) -> sp.csr_array:
    """Costs of the neuron pairs that share an input, as (row, col) -> 1 + cost (> 0)."""
    shared = sp.csr_array(a.T @ b)
    shared.sum_duplicates()
    size_a = np.diff(a.indptr)
    size_b = np.diff(b.indptr)
    rows = np.repeat(np.arange(shared.shape[0]), np.diff(shared.indptr))
    union = size_a[rows] + size_b[shared.indices] - shared.data
    cost = (union - shared.data) / union
    return sp.csr_array((1.0 + cost, shared.indices, shared.indptr), shape=shared.shape)


def scipy_layer(a: sp.csc_array, b: sp.csc_array, dense_max: int) -> tuple[float, np.ndarray]:
    """Layer cost and matching (col of each row) with SciPy's best solver for the size."""
    n = a.shape[1]
    if n <= dense_max:
        from scipy.optimize import linear_sum_assignment

        graph = similarity_graph(a, b).toarray()
        cost = np.where(graph == 0.0, 1.0, graph - 1.0)  # no shared input: cost 1
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].sum()), cols[np.argsort(rows)]
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    graph = sp.lil_array(similarity_graph(a, b))
    # Padding: the diagonal at cost 1 (weight 2) wherever absent, so a full matching exists.
    diagonal = graph.diagonal()
    missing = np.flatnonzero(diagonal == 0)
    graph[missing, missing] = 2.0
    graph = sp.csr_array(graph)
    rows, cols = min_weight_full_bipartite_matching(graph)
    weights = np.asarray(graph[rows, cols]).ravel()
    return float((weights - 1.0).sum()), cols[np.argsort(rows)]


def run_scipy(n: int, dense_max: int) -> dict[str, float]:
    a, b = networks(n)
    base = peak_mib()
    start = time.perf_counter()
    cost0, matching = scipy_layer(a[0], b[0], dense_max)
    # Carry: new row i of B's next layer is old row matching[i].
    b1 = sp.csc_array(sp.csr_array(b[1])[matching])
    cost1, _ = scipy_layer(a[1], b1, dense_max)
    return {
        "seconds": time.perf_counter() - start,
        "cost0": cost0,
        "cost1": cost1,
        "peak_mib": peak_mib(),
        "input_mib": base,
    }


def run_nnstd(n: int) -> dict[str, float]:
    import nnstd

    a, b = networks(n)
    net_a, net_b = nnstd.Network(a), nnstd.Network(b)
    base = peak_mib()
    start = time.perf_counter()
    d = nnstd.distance(net_a, net_b, solver="sparse")
    return {
        "seconds": time.perf_counter() - start,
        "cost0": float(d.costs[0]),
        "cost1": float(d.costs[1]),
        "peak_mib": peak_mib(),
        "input_mib": base,
    }


def measure(kind: str, n: int, dense_max: int, timeout: float) -> dict[str, float] | str:
    command = [sys.executable, __file__, "--worker", kind, str(n), "--dense-max", str(dense_max)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (stopped)"
    except subprocess.CalledProcessError as exc:
        return f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[4096, 16384, 65536, 262144, 1048576]
    )
    parser.add_argument(
        "--dense-max",
        type=int,
        default=4096,
        help="largest n for SciPy's dense linear_sum_assignment",
    )
    parser.add_argument("--scipy-timeout", type=float, default=900.0)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, n = args.worker[0], int(args.worker[1])
        result = run_nnstd(n) if kind == "nnstd" else run_scipy(n, args.dense_max)
        print(json.dumps(result))
        return
    print(
        f"{'n':>9}  {'nnstd s':>8} {'peak MiB':>9}  {'scipy s':>12} {'peak MiB':>9} "
        f"{'ratio':>7}  scipy pipeline   same layer-0 optimum"
    )
    for n in args.sizes:
        ours = measure("nnstd", n, args.dense_max, timeout=3600)
        theirs = measure("scipy", n, args.dense_max, timeout=args.scipy_timeout)
        pipeline = "dense LSA" if n <= args.dense_max else "min_weight_full"
        if isinstance(ours, str):
            print(f"{n:>9}  nnstd {ours}")
            continue
        if isinstance(theirs, str):
            print(
                f"{n:>9}  {ours['seconds']:8.2f} {ours['peak_mib']:9.0f}  {theirs:>22}"
                f" {'':>7}  {pipeline}"
            )
            continue
        same = abs(ours["cost0"] - theirs["cost0"]) < 1e-9 * max(1.0, theirs["cost0"])
        print(
            f"{n:>9}  {ours['seconds']:8.2f} {ours['peak_mib']:9.0f}  "
            f"{theirs['seconds']:12.2f} {theirs['peak_mib']:9.0f} "
            f"{theirs['seconds'] / ours['seconds']:6.1f}x  {pipeline:<16} "
            f"{'yes' if same else 'NO'} ({ours['cost0']:.6f} vs {theirs['cost0']:.6f})"
        )


if __name__ == "__main__":
    main()
