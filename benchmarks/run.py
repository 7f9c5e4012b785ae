"""nnstd against the fastest peer a user could pick, per instance class, in one run.

    python benchmarks/run.py [--quick] [--classes paper,er,twins,density,conv] [--threads 1,2]
                             [--timeout 60] [--repeat 1] [--large] [--widths 16384,65536]
                             [--peers dense,graph,lapjv,lapjvs,srcd,lapmod,ortools]
                             [--out results.md]

Classes (``instances.py``; every generated instance is two 2-layer networks n -> n -> n unless
said):

- ``paper``: the paper's topologies (9 epochs x 45 pairs x 4 layers, ``--topo-root``), loaded
  with ``nnstd.load_network``; ``nnstd.pairwise`` per epoch; the default solver
  (``"canonical"``), ``"auto"`` (the fastest optimal algorithm alone, whose time the canonical
  mode's is measured against) and ``solver="exact"`` (the paper mode).
- ``er``: unrelated Erdos-Renyi layers, mean fan-in 8 (two independent seeds), at 4,096,
  16,384 and 65,536 wide.
- ``twins``: near-twins: an ER network against a copy with 30% of each layer's connections moved
  and its hidden neurons renamed, at 16,384, 65,536 and 262,144 wide (``--large``: 1,048,576).
- ``density``: unrelated layers at 2,048 wide density 0.3 and 4,096 wide density 0.1.
- ``conv``: a conv-like chain: 3x3 convolutions 3 -> 64 -> 64 -> 128 -> ... -> 1024 -> 2048
  channels at density 0.1, as nnstd reads convolutions: neurons are output channels, inputs are
  (input channel, kernel position) pairs, renamed a whole channel at a time
  (``input_groups=9``, docs/inputs.md). Two independent seeds.

``--quick`` shrinks every class (one epoch; 4,096; 16,384; 1,024 at 0.3; channels up to 256).

How it measures. For every instance and thread count, each side runs in its own process
(``worker.py``) with its thread limits in the environment before numpy, SciPy or nnstd start
(threadpoolctl on top, when installed): nnstd with ``threads`` / ``RAYON_NUM_THREADS``, SciPy
with that many BLAS threads. Generating or loading the networks and converting them to each
side's own format (``nnstd.Network``; dense float32 or CSC arrays) happen before its clock;
nothing of one side runs inside the other's clock. Peak memory is the worker's largest resident
set (``getrusage``), inputs included. Each worker also reports its own CPU time over the same
span; on one thread it moves far less with a shared machine's load than wall time, and the
table shows the speed-up in CPU time beside the wall-time one.

The peers are seven pipelines, each computing the whole network distance as NNSTD does (the
matching carried into the next layer) and building its own costs inside its clock: SciPy's two
(``scipy_pipelines.py``): BLAS overlaps + dense costs + ``linear_sum_assignment``
("BLAS+LSA"), and the similarity graph doubled to a square graph (any neuron may stay unmatched
at cost 1) + ``min_weight_full_bipartite_matching`` ("LAPJVsp"); and five on the libraries a
user installs for speed (``peer_pipelines.py``): lapx ``lapjv`` and ``lapjvs`` and src-d
``lapjv`` on the same float64 dense costs, lapx ``lapmod`` and OR-tools'
``SimpleLinearSumAssignment`` (integer costs, see there) on the same doubled graph. A peer whose
library is not installed is shown "not installed" (``pip install -e '.[bench]'``).

At the first thread count every peer runs, the likely faster first; each later one gets 1.1 x
the fastest time so far as a limit (past that it cannot win; shown as "stopped: slower"). At
later thread counts only the peers that could still win rerun: those that finished within
(threads / first thread count) x the fastest one's time. The dense peers are not run where their
matrices would pass ``--dense-max-gib``. On the paper set a peer's all-cores run spreads the
pairs over a process pool (one BLAS thread each, started before the clock), as
``nnstd.pairwise`` spreads them over threads; elsewhere only BLAS (in the dense costs) uses more
than one core.

Checks. Every row checks that nnstd and every peer that finished reach the same layer-0 optimum
(to 1e-9 relative) and prints it; a peer that does not (OR-tools, where rounding its integer
costs changed the optimum) is shown "not optimal" and is not a candidate for the fastest.
``solver="exact"`` rows (paper, density, conv) also check that every layer's assignment is
``linear_sum_assignment``'s; for them BLAS+LSA always runs to the end (up to
``--check-timeout``). A side that does not finish within ``--timeout`` is stopped and shown as
"> T s (timeout)"; it is not rerun at the next thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import instances
import numpy as np
import peer_pipelines

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
CLASSES = ("paper", "er", "twins", "density", "conv")
PIPELINES = {
    "dense": "BLAS+LSA",
    "graph": "LAPJVsp",
    "lapmod": "lapx lapmod",
    "lapjv": "lapx lapjv",
    "lapjvs": "lapx lapjvs",
    "srcd": "src-d lapjv",
    "ortools": "OR-tools",
}
DENSE_PEERS = ("dense", "lapjv", "lapjvs", "srcd")
PEER_PACKAGES = {"lapx": "lap", "lapjv": "lapjv", "ortools": "ortools"}
SETUP_LIMIT = 1800.0  # generating or loading inputs; generous, it is not timed
EXTRA_LIMIT = 1800.0
TOLERANCE = 1e-9


@dataclass
class Outcome:
    """One side's measurement."""

    status: str  # ok, timeout, stopped (slower than a peer), wrong, failed, skipped, n/a
    seconds: float = float("nan")
    cpu_seconds: float = float("nan")  # the worker's own CPU time (NaN where a pool ran)
    limit: float = float("nan")
    costs: Any = None
    peak_mib: float = float("nan")
    ran: list[str] = field(default_factory=list)
    note: str = ""
    saved: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def time_text(self) -> str:
        if self.ok:
            return f"{self.seconds:.2f} s"
        if self.status == "timeout":
            return f"> {self.limit:.0f} s (timeout)"
        if self.status == "stopped":
            return f"> {self.limit:.1f} s (stopped: slower)"
        return self.note or self.status

    def timed_text(self, threads: int) -> str:
        """The time, with the CPU time on one thread (where it is the steadier measure)."""
        if self.ok and threads == 1 and self.cpu_seconds == self.cpu_seconds:
            return f"{self.seconds:.2f} s (CPU {self.cpu_seconds:.2f} s)"
        return self.time_text()

    def memory_text(self) -> str:
        return f"{self.peak_mib:,.0f}" if self.ok else ""


def thread_environment(threads: int, blas_threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: str(blas_threads) for name in THREAD_VARIABLES})
    env["RAYON_NUM_THREADS"] = str(threads)
    return env


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Stops the worker and any pool processes it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def next_message(lines: queue.Queue[str | None], tag: str, limit: float) -> dict[str, Any] | None:
    """The payload of the worker's next ``@@tag`` line, or None on timeout or exit."""
    deadline = time.perf_counter() + limit
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return None
        if line is None:
            return None
        if line.startswith(f"@@{tag} "):
            payload: dict[str, Any] = json.loads(line[len(tag) + 3 :])
            return payload


def measure(
    spec: instances.Spec,
    side: str,
    *,
    solver: str,
    threads: int,
    limit: float,
    save: str | None = None,
    stopped_status: str = "timeout",
    repeat: int = 1,
) -> Outcome:
    """The fastest of ``repeat`` runs (the machine may be shared); stops at the first run
    that does not finish."""
    best: Outcome | None = None
    for _ in range(repeat):
        outcome = measure_once(
            spec,
            side,
            solver=solver,
            threads=threads,
            limit=limit,
            save=save,
            stopped_status=stopped_status,
        )
        if not outcome.ok:
            return outcome
        if best is None or outcome.seconds < best.seconds:
            best = outcome
    assert best is not None
    return best


def measure_once(
    spec: instances.Spec,
    side: str,
    *,
    solver: str,
    threads: int,
    limit: float,
    save: str | None = None,
    stopped_status: str = "timeout",
) -> Outcome:
    """Runs one side in a fresh process and reads its clock."""
    pooled = spec["class"] == "paper" and side != "nnstd" and threads > 1
    blas = 1 if pooled else threads
    task = {
        "spec": spec,
        "side": side,
        "solver": solver,
        "threads": threads,
        "blas_threads": blas,
        "save": save,
    }
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(task)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=thread_environment(threads, blas),
            start_new_session=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=read_lines, args=(proc, lines), daemon=True).start()
        try:
            if next_message(lines, "READY", SETUP_LIMIT) is None:
                return failure(proc, errors, "setup")
            done = next_message(lines, "DONE", limit)
            if done is None:
                if proc.poll() is not None:
                    return failure(proc, errors, "run")
                kill_group(proc)
                return Outcome(stopped_status, limit=limit)
            extra = next_message(lines, "EXTRA", EXTRA_LIMIT)
            if extra is None:
                return failure(proc, errors, "checks")
            proc.wait()
        finally:
            if proc.poll() is None:
                kill_group(proc)
    return Outcome(
        "ok",
        seconds=done["seconds"],
        cpu_seconds=done.get("cpu_seconds", float("nan")),
        costs=done["costs"],
        peak_mib=done["peak_mib"],
        ran=extra.get("ran", []),
        saved=save,
    )


def failure(proc: subprocess.Popen[str], errors: Any, stage: str) -> Outcome:
    kill_group(proc)
    errors.seek(0)
    tail = [line for line in errors.read().strip().splitlines() if line.strip()]
    reason = tail[-1] if tail else f"exit code {proc.returncode}"
    if proc.returncode == -signal.SIGKILL and not tail:
        reason = "killed (out of memory?)"
    print(f"    {stage} failed: {reason}", file=sys.stderr)
    return Outcome("failed", note=f"failed ({stage}): {reason[:80]}")


@dataclass
class Row:
    spec: instances.Spec
    threads: int
    solver: str
    nnstd: Outcome
    peers: dict[str, Outcome]
    check: str


def fastest(peers: dict[str, Outcome]) -> tuple[str, Outcome] | None:
    """The peer that finished first with the optimum, if any did."""
    done = [(k, o) for k, o in peers.items() if o.ok]
    return min(done, key=lambda ko: ko[1].seconds) if done else None


def ratio_text(nnstd: Outcome, other: Outcome | None) -> str:
    """How many times faster nnstd is (the other side's time / nnstd's)."""
    if other is None or not (nnstd.ok or other.ok):
        return "?"
    if nnstd.ok and other.ok:
        return f"{other.seconds / nnstd.seconds:.2f}x"
    if nnstd.ok and other.status in ("timeout", "stopped"):
        return f"> {other.limit / nnstd.seconds:.2f}x"
    if other.ok and nnstd.status == "timeout":
        return f"< {other.seconds / nnstd.limit:.2f}x"
    return "?"


def cpu_ratio_text(row: Row) -> str:
    """One-thread rows: the least CPU time of a peer that finished / nnstd's, and which peer."""
    if row.threads != 1 or not row.nnstd.ok:
        return "-"
    timed = [(o.cpu_seconds, k) for k, o in row.peers.items() if o.ok and o.cpu_seconds > 0]
    if not timed or not row.nnstd.cpu_seconds > 0:
        return "-"
    cpu, kind = min(timed)
    return f"{cpu / row.nnstd.cpu_seconds:.2f}x ({PIPELINES[kind]} {cpu:.2f} s)"


def layer0_costs(outcome: Outcome, spec: instances.Spec) -> np.ndarray:
    """Layer-0 assignment costs: one per pair on the paper set, one otherwise."""
    if spec["class"] == "paper":
        return np.array([pair[0] for epoch in outcome.costs for pair in epoch])
    return np.array([outcome.costs[0]])


def layer0_difference(a: Outcome, b: Outcome, spec: instances.Spec) -> tuple[float, bool]:
    """The largest layer-0 difference of two finished sides, and whether it is within tolerance."""
    ours, theirs = layer0_costs(a, spec), layer0_costs(b, spec)
    worst = float(np.max(np.abs(theirs - ours)))
    return worst, worst <= TOLERANCE * max(1.0, float(np.max(np.abs(ours))))


def verify_peers(
    spec: instances.Spec, reference: Outcome | None, peers: dict[str, Outcome]
) -> dict[str, Outcome]:
    """The peers, each finished one that missed the reference's layer-0 optimum marked "wrong"
    (not a candidate for the fastest; shown with its time)."""
    if reference is None or not reference.ok:
        return peers
    checked = dict(peers)
    for kind, outcome in peers.items():
        if not outcome.ok:
            continue
        worst, same = layer0_difference(reference, outcome, spec)
        if not same:
            checked[kind] = Outcome(
                "wrong",
                seconds=outcome.seconds,
                costs=outcome.costs,
                peak_mib=outcome.peak_mib,
                note=f"{outcome.seconds:.2f} s, not optimal (diff {worst:.1e})",
            )
    return checked


def check_layer0(spec: instances.Spec, nnstd: Outcome, peers: dict[str, Outcome]) -> str:
    """Whether nnstd and every finished peer reached the same layer-0 optimum."""
    finished = [o for o in peers.values() if o.ok]
    wrong = [PIPELINES[k] for k, o in peers.items() if o.status == "wrong"]
    missed = f"; **not optimal: {', '.join(wrong)}**" if wrong else ""
    if not finished or not nnstd.ok:
        return "not checked (a side did not finish)" + missed
    ours = layer0_costs(nnstd, spec)
    results = [layer0_difference(nnstd, o, spec) for o in finished]
    worst = max(w for w, _ in results)
    verdict = "same" if all(same for _, same in results) else "**DIFFERENT**"
    who = f"{len(finished)} peer{'s' if len(finished) > 1 else ''}"
    if spec["class"] == "paper":
        return f"{verdict} as {who} on {len(ours)} pairs (max diff {worst:.1e}){missed}"
    return f"{verdict} as {who}: {ours[0]:.9f} (diff {worst:.1e}){missed}"


def check_assignments(nnstd: Outcome, dense: Outcome | None) -> str:
    """Whether the exact solver chose linear_sum_assignment's assignment in every layer."""
    if dense is None or not (nnstd.ok and dense.ok and nnstd.saved and dense.saved):
        return "; LSA assignments not checked (a side did not finish)"
    with np.load(nnstd.saved) as ours, np.load(dense.saved) as theirs:
        keys = sorted(theirs.files)
        equal = sum(bool(k in ours.files and np.array_equal(ours[k], theirs[k])) for k in keys)
    verdict = "" if equal == len(keys) else " **NOT ALL**"
    return f"; assignment = LSA's in {equal}/{len(keys)} layers{verdict}"


def pipeline_order(spec: instances.Spec, chosen: list[str]) -> list[str]:
    """Likely faster peer first (so that the others get a tight limit): dense where most neuron
    pairs share an input, the similarity graph elsewhere."""
    if spec["class"] in ("density", "conv"):
        order = ["lapjv", "srcd", "lapjvs", "dense", "lapmod", "graph", "ortools"]
    else:
        order = ["lapmod", "graph", "ortools", "lapjv", "srcd", "lapjvs", "dense"]
    return [k for k in order if k in chosen]


def installed(kind: str) -> bool:
    """Whether the peer's library is there (SciPy's peers always are)."""
    module = peer_pipelines.MODULES.get(kind)
    return module is None or importlib.util.find_spec(module.split(".")[0]) is not None


def run_peers(
    spec: instances.Spec,
    threads: int,
    args: argparse.Namespace,
    save_dense: str | None,
    kinds: list[str],
) -> dict[str, Outcome]:
    """The given peers in order; each is stopped once it cannot beat the fastest so far (unless
    its assignments are needed for an exact row)."""
    results: dict[str, Outcome] = {}
    dense_gib = instances.dense_bytes(spec) / 2**30
    for kind in kinds:
        if not installed(kind):
            results[kind] = Outcome("n/a", note="not installed")
            continue
        if kind in DENSE_PEERS and dense_gib > args.dense_max_gib:
            results[kind] = Outcome("n/a", note=f"n/a (needs ~{dense_gib:.0f} GiB)")
            continue
        limit, status = args.timeout, "timeout"
        best = fastest(results)
        must_finish = kind == "dense" and save_dense is not None
        if must_finish:
            limit = max(args.timeout, args.check_timeout)
        elif best is not None:
            limit, status = min(args.timeout, 1.1 * best[1].seconds + 0.5), "stopped"
        progress(f"{PIPELINES[kind]}, {threads} thread(s)")
        results[kind] = measure(
            spec,
            kind,
            solver="",
            threads=threads,
            limit=limit,
            save=save_dense if kind == "dense" else None,
            stopped_status=status,
            repeat=args.repeat,
        )
    return results


def rerun_candidates(
    first: dict[str, Outcome], first_threads: int, threads: int
) -> tuple[list[str], dict[str, Outcome]]:
    """The peers that could still be the fastest at ``threads`` (fastest first), and what to show
    for the others: a peer at most ``threads / first_threads`` times faster with more threads
    cannot overtake one it trailed by more than that."""
    best = fastest(first)
    if best is None:
        return [], {k: Outcome("skipped", note="not rerun") for k in first}
    bound = best[1].seconds * threads / first_threads
    done = sorted((o.seconds, k) for k, o in first.items() if o.ok and o.seconds <= bound)
    shown = {
        k: Outcome(
            "skipped",
            note=f"not rerun ({o.seconds:.2f} s at {first_threads})" if o.ok else "not rerun",
        )
        for k, o in first.items()
        if k not in {kind for _, kind in done}
    }
    return [k for _, k in done], shown


def progress(what: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def run_instance(spec: instances.Spec, args: argparse.Namespace, tmp_root: str) -> list[Row]:
    tmp = tempfile.mkdtemp(dir=tmp_root)  # this instance's saved matchings
    # The default (canonical), the fastest optimal algorithm alone, and SciPy's choices.
    solvers = ["canonical", "auto"] + (["exact"] if spec.get("exact") else [])
    print(f"{instances.label(spec)}", file=sys.stderr, flush=True)
    rows: list[Row] = []
    first_peers: dict[str, Outcome] = {}
    timed_out: set[str] = set()
    for t_index, threads in enumerate(args.threads):
        first = t_index == 0
        outcomes: dict[str, Outcome] = {}
        for solver in solvers:
            if solver in timed_out:
                outcomes[solver] = Outcome("skipped", note="not rerun (timed out)")
                continue
            progress(f"nnstd solver={solver}, {threads} thread(s)")
            save = f"{tmp}/nnstd-{solver}.npz" if first and solver == "exact" else None
            outcomes[solver] = measure(
                spec,
                "nnstd",
                solver=solver,
                threads=threads,
                limit=args.timeout,
                save=save,
                repeat=args.repeat,
            )
            if outcomes[solver].status == "timeout":
                timed_out.add(solver)
        reference = next((o for o in outcomes.values() if o.ok), None)
        if first:
            save_dense = f"{tmp}/dense.npz" if "exact" in solvers else None
            kinds = pipeline_order(spec, args.peers)
            peers = run_peers(spec, threads, args, save_dense, kinds)
            peers = verify_peers(spec, reference, peers)
            first_peers = peers
        else:
            kinds, shown = rerun_candidates(first_peers, args.threads[0], threads)
            peers = run_peers(spec, threads, args, None, kinds)
            peers = {**verify_peers(spec, reference, peers), **shown}
        for solver in solvers:
            check = check_layer0(spec, outcomes[solver], peers)
            if solver == "exact" and first:
                check += check_assignments(outcomes[solver], peers.get("dense"))
            rows.append(Row(spec, threads, solver, outcomes[solver], peers, check))
    return rows


def solver_text(row: Row) -> str:
    ran = list(dict.fromkeys(row.nnstd.ran))
    return f"{row.solver} ({'+'.join(ran)})" if ran and ran != [row.solver] else row.solver


def others_text(row: Row, best: str | None) -> str:
    """Every other peer's time (or why it has none), fastest first."""
    rest = [(k, o) for k, o in row.peers.items() if k != best]
    rest.sort(key=lambda ko: ko[1].seconds if ko[1].ok else float("inf"))
    return "; ".join(f"{PIPELINES[k]} {o.timed_text(row.threads)}" for k, o in rest) or "-"


def table(rows: list[Row], cpus: int) -> list[str]:
    lines = [
        "| instance | threads | nnstd solver (ran) | nnstd | MiB | fastest peer | peer MiB "
        "| speed-up vs fastest peer | in CPU time | vs BLAS+LSA | other peers | layer-0 optimum |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        best = fastest(row.peers)
        dense = row.peers.get("dense")
        threads = f"{row.threads} (all)" if row.threads == cpus and cpus > 1 else str(row.threads)
        if best is not None:
            best_text = f"{PIPELINES[best[0]]} {best[1].timed_text(row.threads)}"
            best_mib, best_ratio = best[1].memory_text(), ratio_text(row.nnstd, best[1])
        else:
            best_text, best_mib, best_ratio = "none finished", "", "?"
        lines.append(
            "| "
            + " | ".join(
                [
                    instances.label(row.spec),
                    threads,
                    solver_text(row),
                    row.nnstd.time_text(),
                    row.nnstd.memory_text(),
                    best_text,
                    best_mib,
                    best_ratio,
                    cpu_ratio_text(row),
                    ratio_text(row.nnstd, dense) if dense and dense.status != "n/a" else "-",
                    others_text(row, best[0] if best else None),
                    row.check,
                ]
            )
            + " |"
        )
    return lines


def instance_list(args: argparse.Namespace) -> list[tuple[str, instances.Spec]]:
    """The instances of the chosen classes, smaller with --quick."""
    epochs = [190] if args.quick else list(instances.PAPER_EPOCHS)
    er = [4096] if args.quick else [4096, 16384, 65536]
    twins = [16384] if args.quick else [16384, 65536, 262144] + ([1048576] if args.large else [])
    density = [(1024, 0.3)] if args.quick else [(2048, 0.3), (4096, 0.1)]
    widths = instances.CONV_WIDTHS[:7] if args.quick else instances.CONV_WIDTHS
    found: list[tuple[str, instances.Spec]] = [
        ("paper", {"class": "paper", "epochs": epochs, "root": str(args.topo_root), "exact": True})
    ]
    found += [("er", {"class": "er", "n": n}) for n in er]
    found += [("twins", {"class": "twins", "n": n}) for n in twins]
    found += [
        ("density", {"class": "density", "n": n, "density": p, "exact": True}) for n, p in density
    ]
    found.append(
        (
            "conv",
            {
                "class": "conv",
                "widths": list(widths),
                "density": instances.CONV_DENSITY,
                "exact": True,
            },
        )
    )
    if args.widths:
        found = [(c, s) for c, s in found if "n" not in s or s["n"] in args.widths]
    return [(c, s) for c, s in found if c in args.classes]


def peer_versions() -> str:
    versions = []
    for package in PEER_PACKAGES:
        try:
            versions.append(f", {package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f", {package} not installed")
    return "".join(versions)


def header(args: argparse.Namespace) -> list[str]:
    import scipy

    try:
        import threadpoolctl  # noqa: F401

        limiter = "threadpoolctl + environment"
    except ImportError:
        limiter = "environment variables"
    commit = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"`python benchmarks/run.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit or '?'}; "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}); load average "
        f"{os.getloadavg()[0]:.1f} at start; Python {platform.python_version()}, numpy "
        f"{np.__version__}, SciPy {scipy.__version__}{peer_versions()}; thread limits via "
        f"{limiter}; "
        f"timeout {args.timeout:.0f} s per run ({args.check_timeout:.0f} s for BLAS+LSA runs "
        "that exact rows are checked against).",
        "",
        f"Times: the fastest of {args.repeat} run(s), wall clock, inputs already in memory. "
        "Speed-up = the fastest peer's time / nnstd's (> 1: nnstd is faster). In CPU time "
        "(one-thread rows): the least CPU time of a peer that finished / nnstd's, which moves "
        "far less than wall time with the load of a shared machine. MiB = peak resident memory "
        "of the side's process, inputs included.",
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller instances (~4 minutes)")
    parser.add_argument(
        "--classes", default=",".join(CLASSES), help=f"comma-separated, from {','.join(CLASSES)}"
    )
    parser.add_argument(
        "--threads", default=None, help="comma-separated thread counts (default: 1 and all)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement; the fastest is shown"
    )
    parser.add_argument(
        "--widths", default=None, help="comma-separated: only generated n x n instances this wide"
    )
    parser.add_argument("--large", action="store_true", help="add near-twins at 1,048,576")
    parser.add_argument(
        "--peers", default=",".join(PIPELINES), help=f"comma-separated, from {','.join(PIPELINES)}"
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=240.0,
        help="seconds for BLAS+LSA where exact rows compare their assignments with it",
    )
    parser.add_argument("--dense-max-gib", type=float, default=4.0, help="skip BLAS+LSA above")
    parser.add_argument("--topo-root", type=Path, default=instances.default_topo_root())
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    args.widths = [int(w) for w in args.widths.split(",")] if args.widths else []
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cpus = os.cpu_count() or 1
    args.classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = sorted(set(args.classes) - set(CLASSES))
    if unknown:
        parser.error(f"unknown classes {unknown}; choose from {', '.join(CLASSES)}")
    args.peers = [k.strip() for k in args.peers.split(",") if k.strip()]
    unknown = sorted(set(args.peers) - set(PIPELINES))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(PIPELINES)}")
    default_threads = [1, cpus] if cpus > 1 else [1]
    args.threads = [int(t) for t in args.threads.split(",")] if args.threads else default_threads
    if args.timeout is None:
        args.timeout = 20.0 if args.quick else 60.0
    if "paper" in args.classes and not (args.topo_root / "e5_s0_w0").is_dir():
        parser.error(f"the paper's topologies are not at {args.topo_root} (see --topo-root)")
    return args


def main() -> None:
    args = parse_args()
    cpus = os.cpu_count() or 1
    out = header(args)
    print("\n".join(out), flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nnstd-bench-") as tmp:
        for cls in dict.fromkeys(c for c, _ in instance_list(args)):
            rows: list[Row] = []
            for c, spec in instance_list(args):
                if c == cls:
                    rows += run_instance(spec, args, tmp)
            section = ["", f"### {cls}", "", *table(rows, cpus)]
            print("\n".join(section), flush=True)
            out += section
    footer = f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s."
    print(footer)
    out.append(footer)
    if args.out:
        args.out.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
