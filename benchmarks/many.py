"""Many networks: all pairs of a chain of paper-size networks, in-process against a Dask cluster.

    python benchmarks/many.py [--networks 200] [--workers 2] [--tile 16] [--out results.md]

The networks are made like the paper's initial ones (``nnstd.generate``: 784-784-784-784-10, the
hidden layers at 0.6% density, each network moving 1% of the previous one's connections) and
saved in the paper's folder layout, so that every side reads them from files. Three ways of
computing the same ``pairwise`` matrix (each checked equal to the first):

- ``in-process``: ``nnstd.pairwise(paths)``, every network loaded first, all pairs on the
  core's thread pool (all cores);
- ``in-process tiles``: ``nnstd.pairwise(paths, store=...)``, tiles of pairs on a thread pool,
  written to a fresh store as they finish (the resumable path);
- ``cluster``: ``nnstd.pairwise(paths, client=...)`` on a LocalCluster of ``--workers`` worker
  processes with one thread each (its start-up outside the clock), each worker loading its
  tiles' networks from the files.

Clocks include loading. It prints pairs per second for each and what ``10,000`` networks
(49,995,000 pairs) would take on N machines like this one at the cluster's rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nnstd
import numpy as np
from nnstd import _cluster, _many, _tiles
from nnstd.generate import SetConfig, initial_network, rewired, save_snapshot


def make_chain(root: Path, count: int, seed: int) -> list[Path]:
    """``count`` networks like the paper's: each one 1% rewired from the previous."""
    config = SetConfig(networks=count, seed=seed)
    rng = np.random.default_rng(seed)
    net = initial_network(config, rng)
    paths = []
    for k in range(count):
        folder = root / f"w{k:04d}"
        save_snapshot(net, folder)
        paths.append(folder)
        net = rewired(net, config, rng)
    return paths


def timed(label: str, run: object) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = run()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tile", type=int, default=_tiles.DEFAULT_TILE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown)")
    args = parser.parse_args()

    import distributed

    n = args.networks
    pairs = n * (n - 1) // 2
    print(f"{n} networks, {pairs} pairs, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_chain(Path(tmp) / "nets", n, args.seed)
        # The default tile where it is read: in-process runs (`_many`) and on Dask (`_cluster`).
        _many.DEFAULT_TILE = _cluster.DEFAULT_TILE = args.tile
        reference, t_here = timed("in-process", lambda: nnstd.pairwise(paths))
        tiles, t_tiles = timed(
            "in-process tiles", lambda: nnstd.pairwise(paths, store=Path(tmp) / "store")
        )
        np.testing.assert_array_equal(tiles, reference)
        with (
            distributed.LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                dashboard_address=":0",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            client.wait_for_workers(args.workers)
            on_cluster, t_cluster = timed(
                f"cluster ({args.workers} workers)",
                lambda: nnstd.pairwise(paths, client=client),
            )
        np.testing.assert_array_equal(on_cluster, reference)

    rows = [
        ("in-process (nnstd.pairwise)", t_here),
        ("in-process tiles, store", t_tiles),
        (f"LocalCluster, {args.workers} worker processes", t_cluster),
    ]
    lines = [
        f"{n} paper-size networks (a 1% rewiring chain), {pairs} pairs, {os.cpu_count()} cores",
        "",
        "| run | seconds | pairs/s | vs in-process |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {seconds:.1f} | {pairs / seconds:.0f} | {t_here / seconds:.0%} |"
            for label, seconds in rows
        ),
        "",
        "10,000 networks (49,995,000 pairs) at the cluster's rate per machine like this one:",
        "",
        "| machines | hours |",
        "|---:|---:|",
    ]
    rate = pairs / t_cluster
    for machines in (1, 10, 100):
        lines.append(f"| {machines} | {49_995_000 / (rate * machines) / 3600:.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
