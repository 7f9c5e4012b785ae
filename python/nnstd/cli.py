"""The ``nnstd`` command: reproduce the paper's figures and compare networks from the shell.

One command line for every command that reads a topology set (``figure4``, ``matrix``,
``evolution``): ``--topo-root DIR`` (default: ``./topo``, else the bundled set), ``--epoch E ...``
for snapshots, ``--layer L`` for layer L alone and ``--cumulative`` for the paper's "layer L"
value (the mean of layers 0..L).

Output files (``--out``, ``--save``, ``--mds``, ``--save-matrices``) are checked before any
work, written whole or not at all (a temporary file beside them, then renamed: a failed write
keeps the previous file), and their missing parent folders are created.

Exit codes: 0 success, 1 a one-line error (bad input, a file that cannot be written; also a
closed output pipe, quietly, as in ``| head``), 2 a usage error (also one line), 130
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import numpy as np
import numpy.typing as npt

from nnstd import __version__, _core
from nnstd._api import DEFAULT_MEMORY_BUDGET, DEFAULT_SOLVER, SOLVERS, distance
from nnstd._data import data_dir
from nnstd._errors import TopologyError
from nnstd._loaders import BYTE_LIMIT, DEFAULT_LOAD_BUDGET, one_line
from nnstd._network import Network, load_network
from nnstd._output import check_output_file, check_output_folder, write_file
from nnstd.topology_set import (
    INIT,
    TopologySet,
    default_topo_root,
    epoch_label,
    parse_epoch,
    save_matrix,
    select_layer,
)

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class Panel:
    """One panel of the paper's Figure 4: its letter, the snapshot it shows, its caption."""

    letter: str
    snapshot: str
    caption: str


# The paper's Figure 4: (a) the initial networks, (b)-(f) after epochs 10, 30, 50, 100, 190.
PAPER_PANELS = (
    Panel("a", INIT, "Epoch 0"),
    Panel("b", "epoch_010", "Epoch 10"),
    Panel("c", "epoch_030", "Epoch 30"),
    Panel("d", "epoch_050", "Epoch 50"),
    Panel("e", "epoch_100", "Epoch 100"),
    Panel("f", "epoch_190", "Epoch 190"),
)
# The snapshots the paper's Figure 4 shows, in panel order.
FIGURE4_EPOCHS = tuple(panel.snapshot for panel in PAPER_PANELS)
# Shown in panel (a) when a set has no initial networks (the paper's published data).
INIT_STAND_IN = "epoch_000"
FIGURE_FORMATS = (".png", ".pdf", ".svg")
# The reference convention of `nnstd.pairwise`, said wherever a matrix is shown.
MATRIX_CONVENTION = (
    "entry [i, j] = [j, i] compares the pair once, with the network later in the list "
    "(the higher index) as A, the reference: `nnstd distance LATER EARLIER` gives the same values"
)


class CommandError(Exception):
    """A bad input reported as one line and exit code 1."""


class UsageError(Exception):
    """A bad command line reported as one line and exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """Reports usage errors in one line (``nnstd CMD: error: ...``), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


class Progress:
    """``done / total units, elapsed, time left`` on one stderr line, only on a terminal."""

    def __init__(
        self, total: int, quiet: bool, stream: TextIO | None = None, unit: str = "pairs"
    ) -> None:
        self.total, self.offset, self.unit = total, 0, unit
        self.stream = stream if stream is not None else sys.stderr  # the current one
        self.enabled = not quiet and self.stream.isatty()
        self.start = time.perf_counter()

    def callback(self, label: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            if not self.enabled:
                return
            finished = self.offset + done
            elapsed = time.perf_counter() - self.start
            left = elapsed / finished * (self.total - finished) if finished else float("nan")
            self.stream.write(
                f"\r{label}: {finished}/{self.total} {self.unit}, {elapsed:.1f} s elapsed, "
                f"~{left:.1f} s left   "
            )
            self.stream.flush()

        return report

    def advance(self, pairs: int) -> None:
        self.offset += pairs

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def note(message: str) -> None:
    """A remark the user should see even with ``--quiet`` (stderr, one line)."""
    print(f"nnstd: note: {message}", file=sys.stderr)


# ---- option values -------------------------------------------------------------------------


def _figure_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text}: the output format comes from the extension: {', '.join(FIGURE_FORMATS)}"
        )
    return path


def _matrix_path(text: str) -> Path:
    path = Path(text)
    if path.suffix not in (".npy", ".csv"):
        raise argparse.ArgumentTypeError(f"{text}: matrices are saved as .npy or .csv")
    return path


def threads_value(text: str) -> int | None:
    """``--threads``: a whole number from 1 to the core's limit; 0 means all cores (None)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 (all cores) or more")
    if value > _core.MAX_THREADS:
        raise argparse.ArgumentTypeError(
            f"{text}: at most {_core.MAX_THREADS} (use 0 for all cores; threads beyond the "
            "cores only add start-up time)"
        )
    return value or None


def memory_budget_value(text: str) -> int:
    """``--memory-budget`` in GiB (fractions allowed, ``inf`` for no limit) -> bytes."""
    try:
        gib = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB") from None
    if math.isnan(gib) or gib < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a number of GiB >= 0 (or inf)")
    budget = gib * 2**30
    return BYTE_LIMIT if budget >= BYTE_LIMIT else int(budget)  # beyond: no limit


def shell_words(message: str) -> str:
    """Rewrites Python keyword hints in library messages as options: ``solver="sparse"`` ->
    ``--solver sparse``, so that shell users are told what to type."""
    message = message.replace("pass a larger memory_budget", "pass a larger --load-budget GIB")
    return re.sub(
        r"\b([a-z_]+)=([\"'])([\w.-]+)\2",
        lambda m: f"--{m.group(1).replace('_', '-')} {m.group(3)}",
        message,
    )


# ---- topology sets -------------------------------------------------------------------------


def _open_set(args: argparse.Namespace) -> TopologySet:
    root, legacy_root = args.topo_root, getattr(args, "legacy_root", None)
    if root is not None and legacy_root is not None and root != legacy_root:
        raise CommandError(f"two topology roots given: {legacy_root} and --topo-root {root}")
    chosen = root if root is not None else legacy_root
    path = chosen if chosen is not None else default_topo_root()
    if not path.is_dir():
        hint = "" if chosen is not None else " (the default: ./topo, else the bundled set)"
        raise CommandError(f"{path}: no such topology folder{hint}; pass --topo-root DIR")
    return TopologySet.open(path, load_budget=args.load_budget)


def _layer_range(depth: int, layer: int) -> None:
    if not 0 <= layer < depth:
        raise CommandError(f"layer {layer} does not exist: the networks have layers 0..{depth - 1}")


def _snapshots(ts: TopologySet, requested: Sequence[str] | None) -> list[str]:
    if not requested:
        return list(ts.epochs)
    return [ts.check_epoch(parse_epoch(e)) for e in requested]


def layer_title(layer: int, cumulative: bool) -> str:
    """``Layer 0``; ``Layer 2 alone``; ``Layer 2 (mean of layers 0..2)``: the paper's label."""
    if layer == 0:
        return "Layer 0"
    return f"Layer {layer} (mean of layers 0..{layer})" if cumulative else f"Layer {layer} alone"


def _matrices(
    ts: TopologySet, snapshots: Sequence[str], args: argparse.Namespace
) -> list[npt.NDArray[np.float64]]:
    """The shown value (layer L alone, or the mean of 0..L) for every snapshot, with progress."""
    _layer_range(ts.load(snapshots[0])[0].depth, args.layer)
    n = len(ts.networks)
    pairs = n * (n - 1) // 2
    progress = Progress(pairs * len(snapshots), args.quiet)
    out = []
    try:
        for snapshot in snapshots:
            full = ts.matrix(
                snapshot,
                layers=list(range(args.layer + 1)),
                solver=args.solver,
                threads=args.threads,
                memory_budget=args.memory_budget,
                progress=progress.callback(epoch_label(snapshot)),
            )
            out.append(select_layer(full, args.layer, cumulative=args.cumulative))
            progress.advance(pairs)
    finally:
        progress.close()
    return out


# ---- writing files -------------------------------------------------------------------------


# Options naming output files, and options naming output folders (``generate --out`` is
# checked by `cmd_generate`).
OUTPUT_FILES = ("out", "save", "mds")
OUTPUT_FOLDERS = ("save_matrices",)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuses, before any work, outputs that could not be written: a folder where a file
    goes, a path under a file, a folder without write permission, one file named twice."""
    seen: dict[str, str] = {}
    for option in OUTPUT_FILES + OUTPUT_FOLDERS:
        path = getattr(args, option, None)
        if path is None:
            continue
        flag = "--" + option.replace("_", "-")
        if option in OUTPUT_FOLDERS:
            check_output_folder(path)
        else:
            check_output_file(path)
        real = os.path.realpath(path)
        if real in seen:
            raise CommandError(f"{seen[real]} and {flag} name the same file {path}")
        seen[real] = flag


def _replacing(path: Path) -> str:
    """`` (replaced the existing file)`` when ``path`` exists: said, never done silently."""
    return " (replaced the existing file)" if path.exists() else ""


def _save_figure(fig: object, path: Path) -> str:
    """Writes a matplotlib figure whole (format from the extension); says if it replaced one."""
    replaced = _replacing(path)
    file_format = path.suffix.lower().removeprefix(".")
    write_file(path, lambda out: fig.savefig(out, format=file_format, dpi=120))  # type: ignore[attr-defined]
    return replaced


def _save_matrices(
    folder: Path,
    snapshots: Sequence[str],
    matrices: Sequence[npt.NDArray[np.float64]],
    ts: TopologySet,
) -> int:
    """Each snapshot's matrix as ``.npy`` and ``.csv``; returns how many files it replaced."""
    replaced = 0
    for snapshot, matrix in zip(snapshots, matrices, strict=True):
        for suffix in (".npy", ".csv"):
            target = folder / f"{snapshot}{suffix}"
            replaced += target.exists()
            save_matrix(target, matrix, list(ts.networks))
    return replaced


# ---- figure4 -------------------------------------------------------------------------------


def _paper_panels(ts: TopologySet) -> tuple[list[Panel], list[str]]:
    """The paper's six panels as this set can show them, and what is missing (one sentence per
    missing snapshot, for stderr and the figure)."""
    panels, missing = [], []
    for panel in PAPER_PANELS:
        if panel.snapshot in ts.epochs:
            panels.append(panel)
        elif panel.snapshot == INIT and INIT_STAND_IN in ts.epochs:
            panels.append(Panel(panel.letter, INIT_STAND_IN, f"{panel.caption}*"))
            missing.append(
                f"* This topology set has no initial networks ('{INIT}'): panel (a) shows "
                f"snapshot {INIT_STAND_IN} instead, taken after the first epoch's training and "
                "topology update, not the paper's panel (a)."
            )
        else:
            panels.append(Panel(panel.letter, "", panel.caption))
            missing.append(
                f"This topology set has no snapshot {panel.snapshot}: panel ({panel.letter}) is "
                "left empty."
            )
    if not any(p.snapshot for p in panels):
        raise CommandError(
            f"{ts.root}: none of the paper's Figure 4 snapshots "
            f"({', '.join(p.snapshot for p in PAPER_PANELS)}) exist; choose some with --epoch"
        )
    return panels, missing


def _chosen_panels(ts: TopologySet, requested: Sequence[str]) -> list[Panel]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    panels = []
    for k, snapshot in enumerate(_snapshots(ts, requested)):
        caption = "Initial" if snapshot == INIT else epoch_label(snapshot).capitalize()
        panels.append(Panel(letters[k % 26], snapshot, caption))
    return panels


def cmd_figure4(args: argparse.Namespace) -> None:
    _check_outputs(args)
    ts = _open_set(args)
    if args.epochs:
        panels, remarks = _chosen_panels(ts, args.epochs), list[str]()
    else:
        panels, remarks = _paper_panels(ts)
    shown = [p.snapshot for p in panels if p.snapshot]
    start = time.perf_counter()
    computed = dict(zip(shown, _matrices(ts, shown, args), strict=True))
    elapsed = time.perf_counter() - start
    for remark in remarks:  # once the figure can be drawn
        note(f"{ts.root}: {remark.removeprefix('* ').replace('This topology set has', 'has')}")
    saved = ""
    if args.save_matrices is not None:
        replaced = _save_matrices(args.save_matrices, shown, list(computed.values()), ts)
        saved = f"; matrices in {args.save_matrices}/" + (
            f" (replaced {replaced} existing files)" if replaced else ""
        )
    from nnstd.plot import figure4

    fig = figure4(
        [computed.get(p.snapshot) for p in panels],
        [f"({p.letter}) {p.caption}" for p in panels],
        ts.short_names(),
        title=layer_title(args.layer, args.cumulative),
        note=" ".join(remarks),
    )
    replaced_figure = _save_figure(fig, args.out)
    if not args.quiet:
        print(
            f"wrote {args.out}{replaced_figure}: {len(panels)} panels, "
            f"{layer_title(args.layer, args.cumulative)}, {len(ts.networks)} networks from "
            f"{ts.root}, solver {args.solver}, {elapsed:.2f} s computing{saved}"
        )


# ---- matrix --------------------------------------------------------------------------------


def _print_matrix(ts: TopologySet, matrix: npt.NDArray[np.float64], title: str) -> None:
    names = ts.short_names()
    width = max(len(n) for n in names) + 1
    print(f"# {title}; {MATRIX_CONVENTION}")
    print(" " * width + " ".join(f"{n:>6}" for n in names))
    for name, row in zip(names, matrix, strict=True):
        print(f"{name:<{width}}" + " ".join(f"{x:6.4f}" for x in row))


def cmd_matrix(args: argparse.Namespace) -> None:
    if args.shard is not None and (args.save is not None or args.out is not None):
        option = "--save" if args.save is not None else "--out"
        raise UsageError(
            f"nnstd matrix: error: --shard computes part of the matrix into --store, so it has "
            f"no matrix for {option}; once all shards have run, the same command without "
            "--shard reads the whole matrix from the store and writes it"
        )
    _check_outputs(args)
    ts = _open_set(args)
    if len(args.epochs) != 1:
        raise UsageError(
            "nnstd matrix: error: give one snapshot with --epoch E (a number, epoch_NNN or init)"
        )
    (snapshot,) = _snapshots(ts, args.epochs)
    if args.store is None and args.scheduler is None and args.shard is None:
        (matrix,) = _matrices(ts, [snapshot], args)
    else:
        tiled = _tiled_matrix(ts, snapshot, args)
        if tiled is None:
            return
        matrix = tiled
    title = f"{epoch_label(snapshot)}, {layer_title(args.layer, args.cumulative)}"
    if args.save is not None:
        replaced = _replacing(args.save)
        save_matrix(args.save, matrix, list(ts.networks))
        if not args.quiet:
            print(f"wrote {args.save}{replaced}: {title}; {MATRIX_CONVENTION}")
    if args.out is not None:
        from matplotlib.figure import Figure

        from nnstd.plot import heatmap

        fig = Figure(figsize=(6, 5.4), layout="constrained")
        heatmap(fig.add_subplot(), matrix, ts.short_names(), title)
        fig.supxlabel(
            "[i, j] = [j, i]: the higher-indexed network is the reference (A)", fontsize=8
        )
        replaced = _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}: {title}")
    if args.out is None and args.save is None:
        _print_matrix(ts, matrix, title)


# ---- matrix: a store, a Dask cluster, SLURM shards ------------------------------------------


def shard_value(text: str) -> tuple[int, int]:
    """``I/N``: this is shard I (0 to N-1) of N."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise argparse.ArgumentTypeError(
            f"expected I/N with 0 <= I < N (for example 0/10 .. 9/10), got {text!r}"
        )
    return int(match.group(1)), int(match.group(2))


def store_path(text: str) -> Path:
    """``--store PATH``: a folder path, made absolute here (Dask workers write into it, and
    their working folder is not this one); an empty one is refused, not read as ``.``."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder path, got an empty one")
    return Path(text).absolute()


def _dask_client(scheduler: str, threads: int | None, stack: contextlib.ExitStack) -> Client:
    """A client of the scheduler at ``scheduler``, or of a LocalCluster here for ``local``.

    Connecting is bounded by Dask's connect timeout (``distributed.comm.timeouts.connect``):
    Dask applies it to the connection but not to the scheduler's first answer, so a port that
    accepts and never answers (or a stopped scheduler) would hang; here the whole connection
    runs on a helper thread that is abandoned after the timeout. Every failure is one line."""
    try:
        import dask
        import distributed as dask_distributed
    except ImportError:
        raise CommandError("--scheduler needs Dask: pip install 'nnstd[dask]'") from None
    distributed: Any = dask_distributed  # only partly annotated
    if scheduler == "local":
        cluster = stack.enter_context(
            distributed.LocalCluster(
                n_workers=threads or os.cpu_count() or 1,
                threads_per_worker=1,
                dashboard_address=":0",  # any free port: 8787 may be taken
            )
        )
        local: Client = stack.enter_context(distributed.Client(cluster))
        return local
    timeout = dask.utils.parse_timedelta(
        dask.config.get("distributed.comm.timeouts.connect"), default="seconds"
    )
    outcome: list[object] = []

    def connect() -> None:
        try:
            outcome.append(distributed.Client(scheduler, timeout=timeout))
        except Exception as exc:  # every failure, reported in one line below
            outcome.append(exc)

    helper = threading.Thread(target=connect, name="nnstd-dask-connect", daemon=True)
    helper.start()
    helper.join(timeout + 1.0)  # Dask's own timeout, when it applies, reports first
    if not outcome:
        raise CommandError(
            f"the Dask scheduler at {scheduler} did not answer within {timeout:g} s (is it a "
            "running Dask scheduler? set DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT to wait "
            "longer)"
        )
    (result,) = outcome
    if isinstance(result, BaseException):
        hint = ""
        if scheduler.startswith("tls://"):
            hint = " (tls:// needs Dask's TLS settings: distributed.comm.tls.*)"
        elif isinstance(result, MemoryError):  # a frame length read from another protocol
            hint = " (its answer is not Dask's protocol: is it a Dask scheduler's port?)"
        raise CommandError(
            f"cannot use the Dask scheduler at {scheduler}: {type(result).__name__}: "
            f"{one_line(result)}{hint}"
        )
    # On failure, closing a client whose scheduler is gone logs Dask's reconnection attempts
    # with tracebacks: silenced then (the run's error says what happened), restored after.
    stack.callback(logging.disable, logging.NOTSET)
    client: Client = stack.enter_context(result)  # type: ignore[arg-type]
    stack.enter_context(_silent_logs_on_failure())
    return client


@contextlib.contextmanager
def _silent_logs_on_failure() -> Iterator[None]:
    try:
        yield
    except BaseException:
        logging.disable(logging.CRITICAL)
        raise


def _tiled_matrix(
    ts: TopologySet, snapshot: str, args: argparse.Namespace
) -> npt.NDArray[np.float64] | None:
    """The matrix through tiles (stored, on a cluster, or one shard of them: None)."""
    from nnstd._many import StoreWarning, paired_matrix

    if args.shard is not None and (args.store is None or args.scheduler is not None):
        raise UsageError(
            "nnstd matrix: error: --shard needs --store PATH (where the shards meet) and no "
            "--scheduler (see nnstd matrix --help)"
        )
    paths = [ts.root / name / snapshot for name in ts.networks]
    _layer_range(load_network(paths[0], memory_budget=args.load_budget).depth, args.layer)
    n = len(paths)
    progress = Progress(n * (n - 1) // 2, args.quiet)
    with contextlib.ExitStack() as stack:
        # A store's warnings (a tile skipped and computed again) as one line each.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always", StoreWarning)
        warnings.showwarning = _warning_line
        client = None
        if args.scheduler is not None:
            client = _dask_client(args.scheduler, args.threads, stack)
        try:
            full = paired_matrix(
                paths,
                layers=list(range(args.layer + 1)),
                solver=args.solver,
                ordered=False,
                threads=args.threads,
                progress=progress.callback(epoch_label(snapshot)),
                memory_budget=args.memory_budget,
                store=args.store,
                client=client,
                shard=args.shard,
                load_budget=args.load_budget,
            )
        finally:
            progress.close()
    if args.shard is not None:
        if not args.quiet:
            index, count = args.shard
            print(
                f"shard {index}/{count} is in {args.store}; when all {count} have run, the same "
                "command without --shard reads the matrix from the store"
            )
        return None
    return select_layer(full, args.layer, cumulative=args.cumulative)


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as ``nnstd: warning: ...`` on one stderr line (no source line)."""
    print(f"nnstd: warning: {message}", file=sys.stderr if file is None else file)


# ---- distance ------------------------------------------------------------------------------


def _mean_label(chosen: Sequence[int], depth: int) -> str:
    """What the 'mean' line of ``nnstd distance`` is the mean of."""
    if len(chosen) == 1:
        return f"layer {chosen[0]} alone"
    if list(chosen) == list(range(len(chosen))):
        last = len(chosen) - 1
        every = "; all layers: the paper code's summary" if last == depth - 1 else ""
        return f"mean of layers 0..{last} (the paper's 'layer {last}' value{every})"
    return f"mean of layers {', '.join(map(str, chosen))} only"


def cmd_distance(args: argparse.Namespace) -> None:
    net_a, net_b = (
        load_network(path, orientation=orientation, memory_budget=args.load_budget)
        for path, orientation in [
            (args.a, args.orientation_a or args.orientation),
            (args.b, args.orientation_b or args.orientation),
        ]
    )
    progress = Progress(net_a.depth, args.quiet, unit="layers")
    report = progress.callback("matching")

    def layers_done(done: int, total: int) -> None:
        progress.total = total  # the layers asked for and those before them
        report(done, total)

    try:
        result = distance(
            net_a,
            net_b,
            layers=args.layers or None,
            solver=args.solver,
            memory_budget=args.memory_budget,
            progress=layers_done,
        )
    finally:
        progress.close()
    mean_label = _mean_label(result.layer_indices, net_a.depth)
    if args.json:
        print(
            json.dumps(
                {
                    "a": str(args.a),
                    "b": str(args.b),
                    "reference": "a",
                    "solver": args.solver,
                    "layers": list(result.layer_indices),
                    "distances": result.layers.tolist(),
                    "costs": result.costs.tolist(),
                    "solvers": list(result.solvers),
                    "mean": result.value,
                    "mean_of": mean_label,
                }
            )
        )
        return
    print(f"A = {args.a}  (the reference: costs divided by A's widths)\nB = {args.b}")
    print(f"{'layer':>5}  {'distance':>10}  {'cost':>10}  solver")
    rows = zip(result.layer_indices, result.layers, result.costs, result.solvers, strict=True)
    for k, d, c, used in rows:
        print(f"{k:>5}  {d:10.6f}  {c:10.3f}  {used}")
    print(f"{'mean':>5}  {result.value:10.6f}  {mean_label}")
    if not args.quiet:
        print(
            "# past layer 0 the value depends on which network is A; nnstd matrix and "
            "nnstd.pairwise take the higher-indexed network as A"
        )


# ---- compare -------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> None:
    """NNSTD, IoU and Hamming of two networks, raw and after aligning B to A, per layer."""
    from nnstd._align import alignment, apply_alignment, overlap

    net_a, net_b = (
        load_network(path, orientation=orientation, memory_budget=args.load_budget)
        for path, orientation in [
            (args.a, args.orientation_a or args.orientation),
            (args.b, args.orientation_b or args.orientation),
        ]
    )
    result = distance(net_a, net_b, solver=args.solver, memory_budget=args.memory_budget)
    aligned = apply_alignment(net_b, alignment(net_a, net_b, solver=args.solver))
    same_shapes = net_a.shapes == net_b.shapes
    columns: dict[str, list[float | None]] = {"nnstd": result.layers.tolist()}
    for measure in ("iou", "hamming"):
        for label, other in (("raw", net_b), ("aligned", aligned)):
            values = overlap(net_a, other, measure=measure).tolist() if same_shapes else None
            columns[f"{measure}_{label}"] = values or [None] * net_a.depth
    if args.json:
        print(
            json.dumps(
                {
                    "a": str(args.a),
                    "b": str(args.b),
                    "reference": "a",
                    "solver": args.solver,
                    "layers": list(range(net_a.depth)),
                    **columns,
                    "solvers": list(result.solvers),
                }
            )
        )
        return
    print(f"A = {args.a}  (the reference)\nB = {args.b}  (aligned: hidden neurons renamed after A)")
    print(
        f"{'layer':>5}  {'NNSTD':>8}  {'IoU raw':>8}  {'IoU aln':>8}  {'Ham raw':>8}  "
        f"{'Ham aln':>8}"
    )
    for k in range(net_a.depth):
        cells = [columns[c][k] for c in ("nnstd", "iou_raw", "iou_aligned")]
        cells += [columns[c][k] for c in ("hamming_raw", "hamming_aligned")]
        print(f"{k:>5}  " + "  ".join("       -" if v is None else f"{v:8.4f}" for v in cells))
    if not args.quiet and not same_shapes:
        print("# IoU and Hamming compare masks of equal shapes; these networks differ in width")


# ---- views: clustered heat map, MDS, convergence -------------------------------------------


def cmd_cluster(args: argparse.Namespace) -> None:
    """One snapshot's matrix as a clustered heat map with its dendrogram, and an MDS map."""
    from nnstd.plot import clustered_heatmap, mds_embedding

    _check_outputs(args)
    ts = _open_set(args)
    if len(args.epochs) != 1:
        raise UsageError("nnstd cluster: error: give one snapshot with --epoch E")
    if args.out is None and args.mds is None:
        raise UsageError("nnstd cluster: error: give --out FILE, --mds FILE or both")
    (snapshot,) = _snapshots(ts, args.epochs)
    (matrix,) = _matrices(ts, [snapshot], args)
    title = f"{epoch_label(snapshot)}, {layer_title(args.layer, args.cumulative)}"
    names = ts.short_names()
    if args.out is not None:
        replaced = _save_figure(clustered_heatmap(matrix, names, title, args.method), args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}: {title}, {args.method} linkage")
    if args.mds is not None:
        try:
            fig = mds_embedding(matrix, names, f"MDS: {title}")
        except ImportError as exc:
            raise CommandError(f"--mds: {exc}") from None
        replaced = _save_figure(fig, args.mds)
        if not args.quiet:
            print(f"wrote {args.mds}{replaced}: {title}")


def cmd_convergence(args: argparse.Namespace) -> None:
    """Each network's distance between consecutive snapshots and its convergence epoch."""
    from nnstd.plot import consecutive, convergence_index

    _check_outputs(args)
    ts = _open_set(args)
    snapshots = _snapshots(ts, args.epochs)
    if len(snapshots) < 2:
        raise CommandError(f"{ts.root}: convergence needs at least two snapshots")
    if not 0 <= args.threshold <= 1 or args.window < 1:
        raise UsageError(
            "nnstd convergence: error: --threshold is in [0, 1] and --window at least 1"
        )
    loaded = [ts.load(s) for s in snapshots]  # loaded[snapshot][network]
    _layer_range(loaded[0][0].depth, args.layer)
    chosen = list(range(args.layer + 1)) if args.cumulative else [args.layer]
    values = np.array(
        [
            [
                float(
                    np.mean(
                        distance(
                            loaded[i + 1][n],
                            loaded[i][n],
                            layers=chosen,
                            solver=args.solver,
                            memory_budget=args.memory_budget,
                        ).layers
                    )
                )
                for i in range(len(snapshots) - 1)
            ]
            for n in range(len(ts.networks))
        ]
    )
    epochs = [snapshot_epoch(s) for s in snapshots]
    found = [convergence_index(row, args.threshold, args.window) for row in values]
    converged = [None if f is None else snapshots[f + 1] for f in found]
    if args.json:
        print(
            json.dumps(
                {
                    "snapshots": snapshots,
                    "networks": list(ts.networks),
                    "layer": layer_title(args.layer, args.cumulative),
                    "threshold": args.threshold,
                    "window": args.window,
                    "consecutive": values.tolist(),
                    "converged_at": dict(zip(ts.networks, converged, strict=True)),
                }
            )
        )
    else:
        names = ts.short_names()
        shown = layer_title(args.layer, args.cumulative)
        print(
            f"# NNSTD of each snapshot from the one before ({shown}); converged: the first "
            f"snapshot ending {args.window} consecutive values below {args.threshold:g}"
        )
        print(f"{'snapshot':<10} " + " ".join(f"{name:>8}" for name in names))
        for i, snapshot in enumerate(snapshots[1:]):
            print(f"{snapshot:<10} " + " ".join(f"{v:8.4f}" for v in values[:, i]))
        print(f"{'converged':<10} " + " ".join(f"{c or '-':>8}" for c in converged))
    if args.out is not None:
        fig = consecutive(epochs, values, ts.short_names(), args.threshold, args.window)
        replaced = _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}", file=sys.stderr if args.json else sys.stdout)


# ---- evolution -----------------------------------------------------------------------------


def _always_dense(nets: Sequence[Network]) -> set[int]:
    """Layers in which every network connects every neuron to every input."""
    return {
        k
        for k, (n_in, n_out) in enumerate(nets[0].shapes)
        if all(net.connections[k] == n_in * n_out for net in nets)
    }


def cmd_evolution(args: argparse.Namespace) -> None:
    _check_outputs(args)
    ts = _open_set(args)
    snapshots = _snapshots(ts, args.epochs)
    n = len(ts.networks)
    if n < 2:
        raise CommandError(f"{ts.root}: evolution needs at least two networks")
    first = ts.load(snapshots[0])
    depth = first[0].depth
    if args.layer is not None:
        _layer_range(depth, args.layer)
    elif args.cumulative:
        raise UsageError("nnstd evolution: error: --cumulative needs --layer L")
    computed = depth if args.layer is None else args.layer + 1
    pairs = n * (n - 1) // 2
    progress = Progress(pairs * len(snapshots), args.quiet)
    upper = np.triu_indices(n, k=1)  # every unordered pair once
    per_snapshot = []
    try:
        for snapshot in snapshots:
            full = ts.matrix(
                snapshot,
                layers=list(range(computed)),
                solver=args.solver,
                threads=args.threads,
                memory_budget=args.memory_budget,
                progress=progress.callback(epoch_label(snapshot)),
            )
            if args.layer is not None:
                full = select_layer(full, args.layer, args.cumulative)[..., np.newaxis]
            per_snapshot.append(full[upper])  # (pairs, lines)
            progress.advance(pairs)
    finally:
        progress.close()
    values = np.stack(per_snapshot, axis=1)  # (pairs, snapshots, lines)
    mean, spread = values.mean(axis=0).T, values.std(axis=0).T  # (lines, snapshots)
    if args.layer is None:
        names = [f"layer {k}" for k in range(depth)]
    else:
        names = [layer_title(args.layer, args.cumulative).lower()]
    dropped: list[int] = []
    if args.layer is None:  # a layer dense in every network is 0 whatever the matching
        dense = _always_dense(first)
        dropped = [k for k in sorted(dense) if not np.any(mean[k]) and not np.any(spread[k])]
    left_out = (
        f"Layer {', '.join(map(str, dropped))} left out: dense (every neuron sees every input), "
        "so its distance is 0 for every pair."
        if dropped
        else ""
    )
    print(f"# mean ± standard deviation over the {pairs} network pairs")
    print(f"{'snapshot':<10} " + " ".join(f"{name:>17}" for name in names))
    for e, snapshot in enumerate(snapshots):
        cells = " ".join(f"{mean[k, e]:8.4f} ± {spread[k, e]:6.4f}" for k in range(len(names)))
        print(f"{snapshot:<10} {cells}")
    if dropped:
        print(f"# {left_out.replace(' left out', '')}")
    if args.out is not None:
        from nnstd.plot import evolution

        keep = [k for k in range(len(names)) if k not in dropped]
        fig = evolution(
            [snapshot_epoch(s) for s in snapshots],
            mean[keep],
            spread[keep],
            [names[k] for k in keep],
            pairs=pairs,
            note=left_out,
        )
        replaced = _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}" + (f"; {left_out}" if left_out else ""))


def snapshot_epoch(snapshot: str) -> float | None:
    """The epoch a snapshot was taken after (``epoch_010`` -> 10); None for ``init``."""
    return None if snapshot == INIT else float(int(snapshot.removeprefix("epoch_")))


# ---- generate ------------------------------------------------------------------------------


def _prepare_generate_folder(out: Path, force: bool) -> None:
    """Refuses to write into a non-empty folder (old and new networks would mix) unless
    ``--force``, which deletes the topology set there first."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CommandError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise CommandError(
            f"{out}: folder is not empty; old and new networks would mix (choose a new folder, "
            "or pass --force to delete the topology set in it first)"
        )
    try:
        existing = TopologySet.open(out)
    except TopologyError:
        raise CommandError(
            f"{out}: not empty and not a topology set; refusing to delete it even with --force"
        ) from None
    for name in existing.networks:
        shutil.rmtree(out / name)
    (out / "config.json").unlink(missing_ok=True)
    note(f"--force: deleted the {len(existing.networks)} networks in {out}")


def _generate_snapshots(args: argparse.Namespace) -> tuple[tuple[int, ...], str]:
    """The epochs to save, and a note naming the paper's snapshots past ``--epochs`` (when
    none were asked for); snapshots asked for that training never reaches are refused."""
    from nnstd.generate import PAPER_SNAPSHOTS

    if args.epochs < 1:  # SetConfig says what is wrong
        return (), ""
    if args.snapshots is None:
        kept = tuple(e for e in PAPER_SNAPSHOTS if e < args.epochs)
        past = [e for e in PAPER_SNAPSHOTS if e >= args.epochs]
        if not past:
            return kept, ""
        shown = ", ".join(map(str, kept))
        return kept, (
            f"saving snapshots {shown} of the paper's; {', '.join(map(str, past))} are past "
            f"--epochs {args.epochs}"
        )
    for epoch in args.snapshots:
        if not 0 <= epoch < args.epochs:
            raise UsageError(
                f"nnstd generate: error: --snapshots {epoch}: not an epoch the training runs "
                f"(--epochs {args.epochs} trains epochs 0..{args.epochs - 1})"
            )
    return tuple(sorted(set(args.snapshots))), ""


def cmd_generate(args: argparse.Namespace) -> None:
    from nnstd.generate import SetConfig, generate

    snapshots, left_out = _generate_snapshots(args)
    try:
        config = SetConfig(
            widths=tuple(args.widths),
            density=args.density,
            networks=args.networks,
            rewire=args.rewire,
            epochs=args.epochs,
            zeta=args.zeta,
            seed=args.seed,
            snapshots=snapshots,
        )
    except ValueError as exc:
        raise CommandError(f"generate: {exc}") from None
    _prepare_generate_folder(args.out, args.force)
    check_output_folder(args.out)
    if left_out:
        note(left_out)
    start = time.perf_counter()
    log = (
        (lambda message: None)
        if args.quiet
        else (lambda message: print(message, file=sys.stderr, flush=True))
    )
    try:
        accuracies = generate(args.out, config, log=log)
    except (ImportError, ValueError) as exc:
        raise CommandError(f"generate: {exc}") from None
    if not args.quiet:
        summary = ", ".join(f"{name} {acc:.4f}" for name, acc in accuracies.items())
        print(
            f"wrote {args.out} in {time.perf_counter() - start:.0f} s; final test accuracy: "
            f"{summary}"
        )


# ---- the parser ----------------------------------------------------------------------------


def _common_options() -> OneLineParser:
    common = OneLineParser(add_help=False)
    common.add_argument(
        "--solver",
        choices=SOLVERS,
        default=None,
        help="canonical (optimal, and the same numbers however neurons are numbered), auto (the "
        "fastest optimal algorithm per layer: sparse or dense), paper (SciPy's choices: the "
        "paper's numbers; 'exact' is its former name), sparse (similarity graph) or dense "
        "(dense cost matrix); layer 0 is the same for all (default: canonical; paper for "
        "figure4)",
    )
    common.add_argument(
        "--threads",
        type=threads_value,
        default=None,
        metavar="N",
        help=f"worker threads, 1 to {_core.MAX_THREADS}; 0 (the default) uses all cores",
    )
    common.add_argument(
        "--memory-budget",
        type=memory_budget_value,
        default=None,
        metavar="GIB",
        help="GiB (not bytes; the Python API takes bytes) that one layer's costs may take "
        "(dense matrix, or similarity graph and solver's arrays); fractions allowed, inf for "
        f"no limit (default: {DEFAULT_MEMORY_BUDGET / 2**30:g})",
    )
    common.add_argument(
        "--load-budget",
        type=memory_budget_value,
        default=None,
        metavar="GIB",
        help="GiB that reading one weights file may take "
        f"(default: {DEFAULT_LOAD_BUDGET / 2**30:g})",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")
    return common


def _set_options(several_epochs: bool) -> OneLineParser:
    """The options of every command that reads a topology set."""
    options = OneLineParser(add_help=False)
    options.add_argument(
        "--topo-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of <network>/<snapshot>/weight_l*.npz (default: ./topo if present, else "
        "the topologies bundled with nnstd)",
    )
    options.add_argument(
        "--epoch",
        dest="epochs",
        nargs="+" if several_epochs else 1,
        metavar="E",
        default=[],
        help=(
            "snapshots: numbers (10 = epoch_010), epoch_NNN or init"
            if several_epochs
            else "the snapshot: a number (10 = epoch_010), epoch_NNN or init"
        ),
    )
    options.add_argument(  # the earlier spelling, still accepted
        "--epochs", dest="epochs", nargs="+", default=[], help=argparse.SUPPRESS
    )
    options.add_argument(
        "--layer",
        type=int,
        default=0,
        metavar="L",
        help="show layer L alone (default: 0)",
    )
    options.add_argument(
        "--cumulative",
        action="store_true",
        help="show the paper's 'layer L' value instead: the mean of layers 0..L",
    )
    options.add_argument(  # the earlier spelling of the default
        "--only-layer", action="store_true", help=argparse.SUPPRESS
    )
    return options


def _legacy_root(parser: argparse.ArgumentParser) -> None:
    """The earlier positional topology root of ``matrix`` and ``evolution``, still accepted."""
    parser.add_argument(
        "legacy_root", type=Path, nargs="?", default=None, metavar="DIR", help=argparse.SUPPRESS
    )


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="nnstd",
        description="Neural Network Sparse Topology Distance (Liu et al., ECML-PKDD 2020). "
        f"Definition: {data_dir('docs') / 'definition.md'}",
        epilog="Example: nnstd figure4 --out figure4.png",
    )
    parser.add_argument("--version", action="version", version=f"nnstd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    fig4 = sub.add_parser(
        "figure4",
        parents=[common, _set_options(several_epochs=True)],
        help="draw the paper's Figure 4 (heat maps per epoch)",
        description="Draw the paper's Figure 4: 2 x 3 heat maps of NNSTD between the networks, "
        "(a) the initial networks and (b)-(f) after epochs 10, 30, 50, 100 and 190, colour "
        "map 'gnuplot' from 0 to 1. A snapshot the set lacks is named on the figure and on "
        "stderr (the paper's published data has no initial networks: panel (a) then shows "
        "epoch_000, after the first epoch).",
        epilog="Example: nnstd figure4 --topo-root ../shared/paper-topo --out fig4.pdf",
    )
    # Reproducing the paper: SciPy's tie choices unless asked otherwise (layer 0 never depends
    # on them). Not through set_defaults: the --solver action is shared by every command.
    fig4.set_defaults(default_solver="paper")
    fig4.add_argument(
        "--out",
        type=_figure_path,
        default=Path("figure4.png"),
        help="output file; format from the extension; an existing file is replaced and the "
        "summary says so (default: %(default)s)",
    )
    fig4.add_argument(
        "--save-matrices",
        type=Path,
        metavar="DIR",
        help="also write each snapshot's matrix as DIR/<snapshot>.npy and .csv",
    )
    fig4.set_defaults(run=cmd_figure4)

    matrix = sub.add_parser(
        "matrix",
        parents=[common, _set_options(several_epochs=False)],
        help="one snapshot's pairwise matrix as a table, heat map or file",
        description="Compute one snapshot's pairwise NNSTD matrix; print it, plot it or save "
        f"it. As in the paper (and nnstd.pairwise), {MATRIX_CONVENTION}.",
        epilog="Example: nnstd matrix --epoch 190 --layer 2 --out m.png --save m.csv",
    )
    _legacy_root(matrix)
    matrix.add_argument("--out", type=_figure_path, help="heat map (.png, .pdf, .svg)")
    matrix.add_argument("--save", type=_matrix_path, help="the matrix (.npy or .csv)")
    matrix.add_argument(
        "--store",
        type=store_path,
        default=None,
        metavar="PATH",
        help="folder keeping finished pairs: a run resumes, added networks compute only their "
        "new pairs (docs/many.md)",
    )
    matrix.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run tiles on the Dask scheduler at ADDRESS (tcp://host:8786), or 'local' for a "
        "cluster of worker processes here; needs nnstd[dask]",
    )
    matrix.add_argument(
        "--shard",
        type=shard_value,
        default=None,
        metavar="I/N",
        help="compute only shard I (0..N-1) of N into --store, for SLURM array jobs; then the "
        "same command without --shard reads the matrix",
    )
    matrix.set_defaults(run=cmd_matrix)

    dist = sub.add_parser(
        "distance",
        parents=[common],
        help="per-layer distances of two networks",
        description="Per-layer NNSTD of network B from network A. A is the reference: costs "
        "are divided by A's widths and B's neurons are renamed after A's. Past layer 0 the "
        "values depend on the order; nnstd matrix takes the higher-indexed network as A.",
        epilog="Example: nnstd distance run9/model.safetensors run0/model.safetensors --json",
    )
    dist.add_argument(
        "a",
        type=Path,
        metavar="A",
        help="a network: a folder of weight_l*.npz, or a .npz, .safetensors or PyTorch file",
    )
    dist.add_argument("b", type=Path, metavar="B")
    orientations = ("in_out", "out_in")
    dist.add_argument(
        "--orientation",
        choices=orientations,
        help="how 2-D weights are stored in both files (default: in_out for folders and .npz, "
        "out_in for safetensors and PyTorch files)",
    )
    dist.add_argument("--orientation-a", choices=orientations, help="A's, if it differs")
    dist.add_argument("--orientation-b", choices=orientations, help="B's, if it differs")
    dist.add_argument(
        "--layers",
        type=int,
        nargs="+",
        metavar="K",
        help="layers to report (default: all); the 'mean' line is the mean of these only, "
        "the paper's 'layer L' value when they are 0..L",
    )
    dist.add_argument("--json", action="store_true", help="one JSON object for scripts")
    dist.set_defaults(run=cmd_distance)

    cmp = sub.add_parser(
        "compare",
        parents=[common],
        help="NNSTD, IoU and Hamming of two networks, raw and aligned",
        description="Per layer: the NNSTD of B from A, and the IoU and normalised Hamming "
        "distance of the two connection sets, raw (neuron labels as stored) and aligned (B's "
        "hidden neurons renamed after their partners in A by the solver's matching, as "
        "nnstd.align does). Output neurons keep their labels.",
        epilog="Example: nnstd compare run0/model.safetensors run1/model.safetensors --json",
    )
    cmp.add_argument("a", type=Path, metavar="A", help="the reference network (as in distance)")
    cmp.add_argument("b", type=Path, metavar="B")
    cmp.add_argument("--orientation", choices=orientations, help="as in distance")
    cmp.add_argument("--orientation-a", choices=orientations, help="A's, if it differs")
    cmp.add_argument("--orientation-b", choices=orientations, help="B's, if it differs")
    cmp.add_argument("--json", action="store_true", help="one JSON object for scripts")
    cmp.set_defaults(run=cmd_compare)

    evo = sub.add_parser(
        "evolution",
        parents=[common, _set_options(several_epochs=True)],
        help="how far apart the networks drift during training",
        description="Mean and standard deviation, over all network pairs, of the distance at "
        "each snapshot: one line per layer, or the layer chosen with --layer. In the plot the "
        "x axis is the epoch and the band is one standard deviation.",
        epilog="Example: nnstd evolution --out evolution.png",
    )
    _legacy_root(evo)
    evo.set_defaults(layer=None)  # all layers unless --layer
    evo.add_argument("--out", type=_figure_path, help="plot file (.png, .pdf, .svg)")
    evo.set_defaults(run=cmd_evolution)

    clu = sub.add_parser(
        "cluster",
        parents=[common, _set_options(several_epochs=False)],
        help="a snapshot's matrix clustered (heat map + dendrogram) and as an MDS map",
        description="Compute one snapshot's pairwise matrix (as nnstd matrix) and draw it as a "
        "heat map ordered by hierarchical clustering (scipy.cluster.hierarchy) with its "
        "dendrogram (--out), and/or the networks as points of a metric MDS embedding of the "
        "matrix (--mds; needs scikit-learn).",
        epilog="Example: nnstd cluster --epoch 190 --out clustered.png --mds mds.png",
    )
    clu.add_argument("--out", type=_figure_path, help="clustered heat map (.png, .pdf, .svg)")
    clu.add_argument("--mds", type=_figure_path, help="MDS embedding (.png, .pdf, .svg)")
    clu.add_argument(
        "--method",
        choices=("average", "complete", "single", "weighted"),
        default="average",
        help="linkage (default: %(default)s)",
    )
    clu.set_defaults(run=cmd_cluster)

    conv = sub.add_parser(
        "convergence",
        parents=[common, _set_options(several_epochs=True)],
        help="each network's distance to its previous snapshot; when its topology settles",
        description="For every network, the NNSTD of each snapshot from the one before it "
        "(the later snapshot as A), and an Early-Bird style convergence epoch: the first "
        "snapshot at which the last --window consecutive distances are all below "
        "--threshold. Snapshots as listed by --epoch (default: all, init first).",
        epilog="Example: nnstd convergence --threshold 0.1 --window 2 --out convergence.png",
    )
    conv.add_argument("--threshold", type=float, default=0.1, help="(default: %(default)s)")
    conv.add_argument("--window", type=int, default=2, metavar="K", help="(default: %(default)s)")
    conv.add_argument("--out", type=_figure_path, help="plot file (.png, .pdf, .svg)")
    conv.add_argument("--json", action="store_true", help="one JSON object for scripts")
    conv.set_defaults(run=cmd_convergence)

    _generate_parser(sub)
    return parser


def _generate_parser(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    from nnstd.generate import PAPER_SNAPSHOTS, SetConfig

    defaults = SetConfig()
    gen = sub.add_parser(
        "generate",
        help="generate topologies like the paper's (rewired chain + SET training)",
        description="Generate an initial sparse network, a chain of networks each rewiring a "
        "fraction of the previous one's connections, and train every network with SET on "
        "scikit-learn's digits (upsampled to 28x28); write snapshots in the paper's layout, "
        "with the untrained networks as 'init'. Needs nnstd[generate].",
        epilog="Example: nnstd generate --out topo",
    )
    gen.add_argument(
        "--out", type=Path, required=True, help="output folder (new or empty; see --force)"
    )
    gen.add_argument(
        "--force",
        action="store_true",
        help="if --out holds a topology set, delete its networks first",
    )
    gen.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(defaults.widths),
        help="layer widths, inputs first (default: %(default)s)",
    )
    gen.add_argument(
        "--density",
        type=float,
        default=defaults.density,
        help="density of the sparse layers (default: %(default)s)",
    )
    gen.add_argument(
        "--networks",
        type=int,
        default=defaults.networks,
        help="networks in the chain (default: %(default)s)",
    )
    gen.add_argument(
        "--rewire",
        type=float,
        default=defaults.rewire,
        help="fraction of connections moved between networks (default: %(default)s)",
    )
    gen.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="training epochs (default: %(default)s, i.e. epochs 0..190)",
    )
    gen.add_argument(
        "--snapshots",
        type=int,
        nargs="+",
        default=None,
        help="epochs to save, each below --epochs (default: the paper's, "
        f"{' '.join(map(str, PAPER_SNAPSHOTS))}, those below --epochs)",
    )
    gen.add_argument(
        "--zeta",
        type=float,
        default=defaults.zeta,
        help="SET's fraction of weights replaced per epoch (default: %(default)s)",
    )
    gen.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    gen.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")
    gen.set_defaults(run=cmd_generate)


def _dash_path_hint(argv: Sequence[str]) -> str:
    """A hint when a word that looks like a path starts with '-' (argparse takes it for an
    option): ``-x.npz``, ``-runs/a``, or a file that exists; not options or negative numbers."""
    for word in argv:
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or "=" in word:
            continue
        with contextlib.suppress(ValueError):
            float(word)
            continue
        if "." in word or "/" in word or os.path.exists(word):
            return f"; use -- before paths starting with '-', or ./{word}"
    return ""


def _stdout_flushed() -> bool:
    """Flushes stdout; when its reader has gone (``| head``), sends the rest to devnull (as
    Python's documentation of SIGPIPE recommends) and returns False."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nnstd`` command; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
        if getattr(args, "solver", "") is None:
            args.solver = getattr(args, "default_solver", DEFAULT_SOLVER)
        args.run(args)
    except BrokenPipeError:  # stdout's reader has gone: nothing left to say to anyone
        _stdout_flushed()
        return 1
    except UsageError as exc:
        print(shell_words(str(exc)) + _dash_path_hint(words), file=sys.stderr)
        return 2
    # Bad input, and memory the machine could not give (the core's or numpy's MemoryError,
    # already one line), said once.
    except (CommandError, TopologyError, ValueError, OSError, MemoryError) as exc:
        print(f"nnstd: error: {shell_words(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nnstd: interrupted", file=sys.stderr)
        return 130
    return 0 if _stdout_flushed() else 1


if __name__ == "__main__":
    sys.exit(main())
