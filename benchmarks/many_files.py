"""Many checkpoints from files: ``nnstd.pairwise(paths)`` against the same networks in memory.

    python benchmarks/many_files.py [--networks 16] [--width 4096] [--layers 4]
        [--format pt|safetensors|npz] [--solver canonical] [--threads 0] [--dir DIR]

Writes ``--networks`` unrelated networks (each layer Erdos-Renyi with mean fan-in 8, ``--width``
wide) as checkpoints: ``pt`` and ``safetensors`` hold dense float32 weights with zeros for absent
connections (as a pruned model is saved), ``npz`` the paper's folders of sparse layers. Then
runs each route in a subprocess of its own, so that each one's peak memory is its own:

- ``memory``: every network loaded first (``nnstd.load_network``, its time reported apart,
  outside the clock), then ``nnstd.pairwise(networks)``;
- ``paths``: ``nnstd.pairwise(paths)``, loading included in the clock.

For each it prints wall time, CPU time (all threads), the peak resident memory (``ru_maxrss``)
and the resident memory before the call, and the ratios paths / memory; the two matrices are
checked equal. Every file is read once before the routes run, so that both find the files in
the page cache alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def er_layer(rng: np.random.Generator, n_in: int, n_out: int) -> sp.csr_matrix:
    """An (inputs, neurons) layer: each connection present with probability 8 / n_in."""
    cells = n_in * n_out
    flat = np.unique(rng.integers(0, cells, rng.binomial(cells, 8 / n_in)))
    weights = rng.standard_normal(len(flat)).astype(np.float32)
    return sp.csr_matrix((weights, (flat // n_out, flat % n_out)), shape=(n_in, n_out))


def write_networks(root: Path, count: int, width: int, depth: int, fmt: str) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        layers = [er_layer(rng, width, width) for _ in range(depth)]
        if fmt == "npz":
            folder = root / f"net{k:03d}"
            folder.mkdir()
            bias = sp.csr_matrix(np.ones((1, width), dtype=np.float32))
            for i, layer in enumerate(layers):
                sp.save_npz(folder / f"weight_l{i}.npz", sp.vstack([layer, bias]).tocsr())
            paths.append(folder)
            continue
        # PyTorch's layout: Linear.weight is (out, in), dense, zeros where pruned.
        state = {f"fc{i}.weight": np.ascontiguousarray(m.T.toarray()) for i, m in enumerate(layers)}
        path = root / f"net{k:03d}.{fmt}"
        if fmt == "pt":
            import torch

            torch.save({name: torch.from_numpy(a) for name, a in state.items()}, path)
        else:
            from safetensors.numpy import save_file

            save_file(state, str(path))
        paths.append(path)
    return paths


def current_rss() -> int:
    """Resident bytes now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_route(route: str, paths: list[str], solver: str, threads: int, out: Path) -> None:
    """One route, in this process: prints its measures as one JSON line."""
    import nnstd

    load = load_cpu = 0.0
    items: list[object] = list(paths)
    if route == "memory":
        start, cpu = time.perf_counter(), time.process_time()
        items = [nnstd.load_network(p) for p in paths]
        load, load_cpu = time.perf_counter() - start, time.process_time() - cpu
    before = current_rss()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    matrix = nnstd.pairwise(items, solver=solver, threads=threads)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    np.save(out, matrix)
    print(
        json.dumps(
            {
                "load": load,
                "load_cpu": load_cpu,
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                "peak": usage.ru_maxrss * 1024,
                "before": before,
            }
        ),
        flush=True,
    )


def measure(route: str, args: argparse.Namespace, paths: list[Path], out: Path) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--route",
        route,
        "--solver",
        args.solver,
        "--threads",
        str(args.threads),
        "--out",
        str(out),
        *map(str, paths),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--format", choices=("pt", "safetensors", "npz"), default="pt")
    parser.add_argument("--solver", default="canonical")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="keep the files here (reused)")
    parser.add_argument("--route", choices=("memory", "paths"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.route is not None:
        run_route(args.route, args.paths, args.solver, args.threads, args.out)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        name = f"{args.format}-{args.networks}x{args.layers}x{args.width}"
        folder = root / name
        if folder.exists():
            paths = sorted(folder.iterdir())
        else:
            folder.mkdir(parents=True)
            paths = write_networks(folder, args.networks, args.width, args.layers, args.format)
        size = sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.iterdir()))
        n = len(paths)
        print(
            f"{n} networks ({args.format}, {size / 2**20:.0f} MiB on disk), {args.layers} layers "
            f"of {args.width}, {n * (n - 1) // 2} pairs, solver {args.solver}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        # Every file read once first, so that both routes find them in the page cache as far
        # as memory allows (else the first route would warm it for the second).
        for f in (f for p in paths for f in ([p] if p.is_file() else p.iterdir())):
            with open(f, "rb") as handle:
                while handle.read(1 << 24):
                    pass
        results = {}
        for route in ("memory", "paths"):
            results[route] = measure(route, args, paths, Path(tmp) / f"{route}.npy")
        same = np.array_equal(np.load(Path(tmp) / "memory.npy"), np.load(Path(tmp) / "paths.npy"))
    mem, via = results["memory"], results["paths"]
    mib = 2**20
    print(
        f"loading the {n} networks (memory route, outside its clock): {mem['load']:.1f} s, "
        f"CPU {mem['load_cpu']:.1f} s"
    )
    print("| route | wall s | CPU s | peak RSS MiB | RSS before the call MiB |")
    print("|---|---:|---:|---:|---:|")
    for route, r in results.items():
        print(
            f"| {route} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['peak'] / mib:.0f} | "
            f"{r['before'] / mib:.0f} |"
        )
    print(
        f"| paths / memory | {via['wall'] / mem['wall']:.2f}x | {via['cpu'] / mem['cpu']:.2f}x | "
        f"{via['peak'] / mem['peak']:.2f}x | |"
    )
    print(f"same matrix: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
