"""Pruned networks in the canonical mode: the worst labelling among many generated networks.

    python benchmarks/pruned.py [--seed 2026]

For each shape of issue 21 (784-300-100-10 with 70 connections per layer, 1000-1000-1000 with
250, 64-64-64-64 with 13: most neurons have none), it generates networks with connections at
random places (300, 100 and 600 of them: 1,000 in all), times the canonical distance of each
against a relabelled copy of itself (checked to be 0 in every layer) and prints the worst, next
to ``solver="auto"`` on the same pair. Then two symmetric networks: 5,000 neurons without inputs
each feeding its own output neuron, and 40 copies of one block reading the same inputs.

Times are CPU time (``time.process_time``: both threads that label the two networks count),
the best of 5 runs of each pair: on a shared machine wall time at the millisecond moves with the
load far more than CPU time does.
"""

from __future__ import annotations

import argparse
import time
from typing import Literal

import nnstd
import numpy as np
import scipy.sparse as sp

SHAPES = {
    "784-300-100-10, 70 per layer": ((784, 300, 100, 10), 70, 300),
    "1000-1000-1000, 250 per layer": ((1000, 1000, 1000), 250, 100),
    "64-64-64-64, 13 per layer": ((64, 64, 64, 64), 13, 600),
}


def pruned(rng: np.random.Generator, widths: tuple[int, ...], m: int) -> list[sp.csc_array]:
    """`m` distinct connections per layer at random places."""
    out = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        places = rng.choice(n_in * n_out, size=m, replace=False)
        rows, cols = places // n_out, places % n_out
        out.append(sp.csc_array((np.ones(m), (rows, cols)), shape=(n_in, n_out)))
    return out


def relabelled(layers: list[sp.csc_array], rng: np.random.Generator) -> list[sp.csc_array]:
    """Every non-input neuron renamed, output neurons included."""
    out = [sp.csc_array(w) for w in layers]
    for k in range(len(out)):
        perm = rng.permutation(out[k].shape[1])
        out[k] = sp.csc_array(out[k][:, perm])
        if k + 1 < len(out):
            out[k + 1] = sp.csc_array(out[k + 1][perm, :])
    return out


def cpu_time(a: nnstd.Network, b: nnstd.Network, solver: Literal["canonical", "auto"]) -> float:
    """The best CPU time of 5 runs; the canonical distance is checked to be 0."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        d = nnstd.distance(a, b, solver=solver)
        best = min(best, time.process_time() - start)
        if solver == "canonical":
            assert np.all(d.layers == 0.0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    rng = np.random.default_rng(parser.parse_args().seed)
    for name, (widths, m, count) in SHAPES.items():
        worst, pair = -1.0, None
        for _ in range(count):
            layers = pruned(rng, widths, m)
            a, b = nnstd.Network(layers), nnstd.Network(relabelled(layers, rng))
            t = cpu_time(a, b, "canonical")
            if t > worst:
                worst, pair = t, (a, b)
        assert pair is not None
        auto = cpu_time(*pair, "auto")
        print(f"{name}: worst of {count}: canonical {worst * 1e3:.1f} ms, auto {auto * 1e3:.1f} ms")
    block = [(rng.random((5, 4)) < 0.5).astype(float), (rng.random((4, 3)) < 0.5).astype(float)]
    symmetric = {
        "5,000 pairs": [sp.csc_array((10, 5000)), sp.eye_array(5000, format="csc")],
        "40 copies of a block": [
            sp.csc_array(np.tile(block[0], (1, 40))),
            sp.csc_array(np.kron(np.eye(40), block[1])),
        ],
    }
    for name, layers in symmetric.items():
        a, b = nnstd.Network(layers), nnstd.Network(relabelled(layers, rng))
        canonical, auto = cpu_time(a, b, "canonical"), cpu_time(a, b, "auto")
        print(f"{name}: canonical {canonical * 1e3:.1f} ms, auto {auto * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
