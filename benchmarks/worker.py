"""One measurement, in its own process: one instance, one side (nnstd or a peer's pipeline).

Started by ``run.py`` with the thread limits already in the environment (so BLAS and rayon read
them before they start). Builds or loads the networks, prints ``@@READY``, runs the timed part,
prints ``@@DONE {json}`` (wall and CPU time, layer costs, peak memory) the moment the clock
stops, then does the untimed extras (which nnstd solver ran; the matchings, if asked to save
them) and prints ``@@EXTRA {json}``. The parent enforces the timeout between READY and DONE.

    python benchmarks/worker.py '{"spec": {...}, "side": "nnstd", "solver": "auto", ...}'
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import instances
import numpy as np
import scipy_pipelines

Task = dict[str, Any]
Solve = Callable[[scipy_pipelines.Layer, scipy_pipelines.Layer], scipy_pipelines.Solved]
_PAPER: list[list[list[scipy_pipelines.Layer]]] = []  # per epoch, per network (forked workers)
_SOLVE: list[Solve] = []  # the pipeline's layer solver (forked workers)


def pipeline(kind: str) -> tuple[str, Solve]:
    """The input format and layer solver of a peer's pipeline, its library imported."""
    if kind in scipy_pipelines.SOLVERS:
        return kind, scipy_pipelines.SOLVERS[kind]
    import peer_pipelines

    peer_pipelines.load(kind)
    return peer_pipelines.FORMAT[kind], peer_pipelines.SOLVERS[kind]


def limit_blas(threads: int) -> None:
    """Belt and braces: the environment already limits BLAS; threadpoolctl makes sure."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def own_peak_kib() -> int:
    """VmHWM: this process's own peak. ru_maxrss survives exec: it starts at the runner's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_mib() -> float:
    """The largest resident set of this process or any finished child of it, in MiB."""
    own = own_peak_kib()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


class Clock:
    """Wall time and this process's CPU time (all its threads; not a pool's processes): on a
    shared machine a one-thread run's CPU time moves far less with the load than its wall time."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> dict[str, float]:
        return {
            "seconds": time.perf_counter() - self.wall,
            "cpu_seconds": time.process_time() - self.cpu,
        }


def say(tag: str, payload: dict[str, Any] | None = None) -> None:
    print(f"@@{tag} {json.dumps(payload or {})}", flush=True)


def save_matchings(path: str | None, matchings: dict[str, np.ndarray]) -> None:
    if path:
        np.savez(path, **matchings)


def nnstd_pair(task: Task, pair: instances.Pair) -> None:
    import nnstd

    a = nnstd.Network(pair.a, input_groups=pair.groups)
    b = nnstd.Network(pair.b, input_groups=pair.groups)
    before = peak_mib()
    say("READY")
    clock = Clock()
    d = nnstd.distance(a, b, solver=task["solver"])
    timed = clock.stop()
    costs = [float(c) for c in d.costs]
    say("DONE", {**timed, "costs": costs, "peak_mib": peak_mib(), "before": before})
    save_matchings(task.get("save"), {f"m{k}": m for k, m in enumerate(d.matchings)})
    say("EXTRA", {"ran": list(d.solvers)})


def peer_pair(task: Task, pair: instances.Pair) -> None:
    form, solve = pipeline(task["side"])
    a = scipy_pipelines.prepare(pair.a, form)
    b = scipy_pipelines.prepare(pair.b, form)
    before = peak_mib()
    say("READY")
    clock = Clock()
    costs, matchings = scipy_pipelines.network_distance(a, b, pair.groups, solve)
    timed = clock.stop()
    say("DONE", {**timed, "costs": costs, "peak_mib": peak_mib(), "before": before})
    save_matchings(task.get("save"), {f"m{k}": m for k, m in enumerate(matchings)})
    say("EXTRA")


def nnstd_paper(task: Task) -> None:
    import nnstd

    epochs = [
        [nnstd.load_network(f) for f in nets] for nets in instances.paper_folders(task["spec"])
    ]
    widths = np.array([n for _, n in epochs[0][0].shapes], dtype=np.float64)
    pairs = instances.paper_pairs()
    before = peak_mib()
    say("READY")
    clock = Clock()
    results = [
        nnstd.pairwise(nets, solver=task["solver"], threads=task["threads"]) for nets in epochs
    ]
    timed = clock.stop()
    costs = [[(m[i, j] * widths).tolist() for i, j in pairs] for m in results]
    say("DONE", {**timed, "costs": costs, "peak_mib": peak_mib(), "before": before})
    ran = nnstd.distance(epochs[0][1], epochs[0][0], solver=task["solver"]).solvers
    if task.get("save"):
        saved = {}
        for e, nets in enumerate(epochs):
            for i, j in pairs:
                d = nnstd.distance(nets[i], nets[j], solver=task["solver"])
                saved.update({f"e{e}_{i}_{j}_m{k}": m for k, m in enumerate(d.matchings)})
        save_matchings(task["save"], saved)
    say("EXTRA", {"ran": list(ran)})


def _paper_pair(job: tuple[int, int, int]) -> tuple[list[float], list[np.ndarray]]:
    e, i, j = job
    return scipy_pipelines.network_distance(_PAPER[e][i], _PAPER[e][j], [1] * 4, _SOLVE[0])


def _paper_pair_costs(job: tuple[int, int, int]) -> list[float]:
    return _paper_pair(job)[0]


def peer_paper(task: Task) -> None:
    import nnstd

    threads = task["threads"]
    form, solve = pipeline(task["side"])
    _SOLVE.append(solve)
    for nets in instances.paper_folders(task["spec"]):
        layers = [[n.layer(k) for k in range(n.depth)] for n in map(nnstd.load_network, nets)]
        _PAPER.append([scipy_pipelines.prepare(network, form) for network in layers])
    jobs = [(e, i, j) for e in range(len(_PAPER)) for i, j in instances.paper_pairs()]
    pool = None
    if threads > 1:  # pairs over worker processes, one BLAS thread each (set by the parent)
        pool = multiprocessing.get_context("fork").Pool(threads)
        pool.map(abs, range(threads))  # started and warm before the clock
    before = peak_mib()
    say("READY")
    clock = Clock()
    if pool is None:
        solved = [_paper_pair(job) for job in jobs]
        flat = [costs for costs, _ in solved]
    else:
        flat = pool.map(_paper_pair_costs, jobs, chunksize=4)
    timed = clock.stop()
    if pool is not None:
        timed["cpu_seconds"] = float("nan")  # the pool's processes are not counted
        pool.close()
        pool.join()
    per_epoch = len(instances.paper_pairs())
    costs = [flat[e * per_epoch : (e + 1) * per_epoch] for e in range(len(_PAPER))]
    say("DONE", {**timed, "costs": costs, "peak_mib": peak_mib(), "before": before})
    if pool is None and task.get("save"):
        saved = {
            f"e{e}_{i}_{j}_m{k}": m
            for (e, i, j), (_, matchings) in zip(jobs, solved, strict=True)
            for k, m in enumerate(matchings)
        }
        save_matchings(task["save"], saved)
    say("EXTRA")


def main() -> None:
    task: Task = json.loads(sys.argv[1])
    limit_blas(task["blas_threads"])
    spec = task["spec"]
    if spec["class"] == "paper":
        (nnstd_paper if task["side"] == "nnstd" else peer_paper)(task)
        return
    pair = instances.build_pair(spec)
    (nnstd_pair if task["side"] == "nnstd" else peer_pair)(task, pair)


if __name__ == "__main__":
    main()
