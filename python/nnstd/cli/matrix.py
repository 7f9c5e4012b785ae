"""``nnstd matrix``: one snapshot's pairwise matrix, in memory or through a store, Dask
or SLURM shards."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nnstd._loaders import one_line
from nnstd._network import Network, load_network
from nnstd.analysis import select_layer
from nnstd.cli._common import (
    MATRIX_CONVENTION,
    CommandError,
    OneLineParser,
    Progress,
    Subparsers,
    UsageError,
    _check_outputs,
    _figure_path,
    _layer_range,
    _matrices,
    _matrix_path,
    _network_arguments,
    _open_set,
    _replacing,
    _save_figure,
    _set_options,
    _snapshots,
    _warning_line,
    computing,
    files_matrix,
    files_or_set,
    layer_title,
    matrix_pairs,
    root_as_network,
)
from nnstd.topology_set import (
    epoch_label,
    save_matrix,
)

if TYPE_CHECKING:
    from distributed import Client


def _print_matrix(names: Sequence[str], matrix: npt.NDArray[np.float64], title: str) -> None:
    width = max(len(n) for n in names) + 1
    column = max(6, width - 1)  # a file's name may be longer than a value
    print(f"# {title}; {MATRIX_CONVENTION}")
    print(" " * width + " ".join(f"{n:>{column}}" for n in names))
    for name, row in zip(names, matrix, strict=True):
        print(f"{name:<{width}}" + " ".join(f"{x:{column}.4f}" for x in row))


def cmd_matrix(args: argparse.Namespace) -> None:
    if args.shard is not None and (args.save is not None or args.out is not None):
        option = "--save" if args.save is not None else "--out"
        raise UsageError(
            f"nnstd matrix: error: --shard computes part of the matrix into --store, so it has "
            f"no matrix for {option}; once all shards have run, the same command without "
            "--shard reads the whole matrix from the store and writes it"
        )
    _check_outputs(args)
    root_as_network(args)
    files = files_or_set(args)
    tiled = args.store is not None or args.scheduler is not None or args.shard is not None
    if files is not None:
        names = short_names = files.names
        title = layer_title(args.layer, args.cumulative)
        if tiled:
            found = _tiled_matrix(files.networks, "networks", args)
            if found is None:
                return
            matrix = found
        else:
            matrix = files_matrix(files, args)
    else:
        ts = _open_set(args)
        if len(args.epochs) != 1:
            raise UsageError(
                "nnstd matrix: error: give one snapshot with --epoch E (a number, epoch_NNN or "
                "init), or the networks as files"
            )
        (snapshot,) = _snapshots(ts, args.epochs)
        names, short_names = list(ts.networks), ts.short_names()
        title = f"{epoch_label(snapshot)}, {layer_title(args.layer, args.cumulative)}"
        if not tiled:
            (matrix,) = _matrices(ts, [snapshot], args)
        else:
            paths = [ts.root / name / snapshot for name in ts.networks]
            found = _tiled_matrix(paths, epoch_label(snapshot), args)
            if found is None:
                return
            matrix = found
    if args.save is not None:
        replaced = _replacing(args.save)
        save_matrix(args.save, matrix, names)
        if not args.quiet:
            print(f"wrote {args.save}{replaced}: {title}; {MATRIX_CONVENTION}")
    if args.out is not None:
        from matplotlib.figure import Figure

        from nnstd.plot import heatmap

        fig = Figure(figsize=(6, 5.4), layout="constrained")
        heatmap(fig.add_subplot(), matrix, short_names, title)
        fig.supxlabel(
            "[i, j] = [j, i]: the higher-indexed network is the reference (A)", fontsize=8
        )
        replaced = _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}: {title}")
    if args.out is None and args.save is None:
        _print_matrix(short_names, matrix, title)


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
    items: Sequence[Network | Path], label: str, args: argparse.Namespace
) -> npt.NDArray[np.float64] | None:
    """The matrix through tiles (stored, on a cluster, or one shard of them: None)."""
    from nnstd._many import paired_matrix
    from nnstd._options import Options
    from nnstd._store import StoreWarning

    if args.shard is not None and (args.store is None or args.scheduler is not None):
        raise UsageError(
            "nnstd matrix: error: --shard needs --store PATH (where the shards meet) and no "
            "--scheduler (see nnstd matrix --help)"
        )
    first = items[0]
    if not isinstance(first, Network):
        first = load_network(first, memory_budget=args.load_budget)
    _layer_range(first.depth, args.layer)
    progress = Progress(matrix_pairs(len(items)), args.quiet)
    with contextlib.ExitStack() as stack:
        # A store's warnings (a tile skipped and computed again) as one line each.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always", StoreWarning)
        warnings.showwarning = _warning_line
        client = None
        if args.scheduler is not None:
            client = _dask_client(args.scheduler, args.threads, stack)
        try:
            options = Options.of(
                layers=list(range(args.layer + 1)),
                progress=progress.callback(label),
                **computing(args),
            )
            full = paired_matrix(
                items,
                options,
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


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd matrix`` to the subcommands."""
    matrix = sub.add_parser(
        "matrix",
        parents=[common, _set_options(several_epochs=False)],
        help="one snapshot's pairwise matrix as a table, heat map or file",
        description="Compute the pairwise NNSTD matrix of one snapshot of a topology set, or of "
        "networks named as files (checkpoints, folders, globs); print it, plot it or save "
        f"it. As in the paper (and nnstd.pairwise), {MATRIX_CONVENTION}.",
        epilog="Example: nnstd matrix --epoch 190 --layer 2 --out m.png --save m.csv; "
        "with files: nnstd matrix 'runs/*/final.pt' --tensors 'fc[0-9]+.weight'",
    )
    _network_arguments(matrix, "the networks (instead of --topo-root and --epoch)")
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
