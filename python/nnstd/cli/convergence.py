"""``nnstd convergence``: each network's distance to its previous snapshot, and when it settles."""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Sequence

from nnstd._network import Network
from nnstd.analysis import consecutive_distances, convergence_index
from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    Progress,
    Subparsers,
    UsageError,
    _check_outputs,
    _figure_path,
    _layer_range,
    _network_arguments,
    _open_set,
    _save_figure,
    _set_options,
    _snapshots,
    computing,
    files_or_set,
    json_argument,
    layer_title,
)
from nnstd.topology_set import snapshot_epoch


def _file_epochs(names: Sequence[str]) -> tuple[list[float | None], str]:
    """The x axis for checkpoint files: the last number in each name (``epoch_10`` -> 10) when
    every name has one and they increase, else the files' positions."""
    found = [re.findall(r"[0-9]+", name) for name in names]
    numbers = [float(int(f[-1])) for f in found if f]
    if len(numbers) == len(names) and all(x < y for x, y in itertools.pairwise(numbers)):
        return list[float | None](numbers), "the number in the file name"
    return [float(k) for k in range(len(names))], "checkpoint (position in the list)"


def _check_threshold(args: argparse.Namespace) -> None:
    if not 0 <= args.threshold <= 1 or args.window < 1:
        raise UsageError(
            "nnstd convergence: error: --threshold is in [0, 1] and --window at least 1"
        )


def cmd_convergence(args: argparse.Namespace) -> None:
    """Each network's distance between consecutive snapshots and its convergence epoch."""
    from nnstd.plot import consecutive

    _check_outputs(args)
    if args.networks:
        _check_threshold(args)
    files = files_or_set(args)
    if files is not None:
        snapshots = files.names
        if len(snapshots) < 2:
            raise CommandError(f"{files.paths[0]}: convergence needs at least two checkpoints")
        # The files are the snapshots of one run, named by the folder they share.
        parents = {path.absolute().parent for path in files.paths}
        run = parents.pop().name if len(parents) == 1 else "run"
        networks, short_names = [run], [run]
        runs: list[list[Network]] = [files.networks]
        epochs, x_label = _file_epochs(snapshots)
    else:
        ts = _open_set(args)
        snapshots = _snapshots(ts, args.epochs)
        if len(snapshots) < 2:
            raise CommandError(f"{ts.root}: convergence needs at least two snapshots")
        _check_threshold(args)
        loaded = [ts.load(s) for s in snapshots]  # loaded[snapshot][network]
        runs = [[loaded[i][n] for i in range(len(snapshots))] for n in range(len(ts.networks))]
        networks, short_names = list(ts.networks), ts.short_names()
        epochs, x_label = [snapshot_epoch(s) for s in snapshots], ""
    _layer_range(runs[0][0].depth, args.layer)
    chosen = list(range(args.layer + 1)) if args.cumulative else [args.layer]
    pairs = len(runs) * (len(snapshots) - 1)
    progress = Progress(pairs, args.quiet)
    try:
        values = consecutive_distances(
            runs,
            layers=chosen,
            progress=progress.callback("consecutive snapshots"),
            **computing(args),
        ).mean(axis=-1)
    finally:
        progress.close()
    found = [convergence_index(row, args.threshold, args.window) for row in values]
    converged = [None if f is None else snapshots[f + 1] for f in found]
    if args.json:
        print(
            json.dumps(
                {
                    "snapshots": snapshots,
                    "networks": networks,
                    **({"files": [str(p) for p in files.paths]} if files is not None else {}),
                    "layer": layer_title(args.layer, args.cumulative),
                    "threshold": args.threshold,
                    "window": args.window,
                    "consecutive": values.tolist(),
                    "converged_at": dict(zip(networks, converged, strict=True)),
                }
            )
        )
    else:
        shown = layer_title(args.layer, args.cumulative)
        print(
            f"# NNSTD of each snapshot from the one before ({shown}); converged: the first "
            f"snapshot ending {args.window} consecutive values below {args.threshold:g}"
        )
        width = max(10, *(len(s) for s in snapshots))
        print(f"{'snapshot':<{width}} " + " ".join(f"{name:>8}" for name in short_names))
        for i, snapshot in enumerate(snapshots[1:]):
            print(f"{snapshot:<{width}} " + " ".join(f"{v:8.4f}" for v in values[:, i]))
        print(f"{'converged':<{width}} " + " ".join(f"{c or '-':>8}" for c in converged))
    if args.out is not None:
        fig = consecutive(
            epochs, values, short_names, args.threshold, args.window, x_label=x_label or None
        )
        replaced = _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}{replaced}", file=sys.stderr if args.json else sys.stdout)


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd convergence`` to the subcommands."""
    conv = sub.add_parser(
        "convergence",
        parents=[common, _set_options(several_epochs=True)],
        help="each network's distance to its previous snapshot; when its topology settles",
        description="For every network, the NNSTD of each snapshot from the one before it "
        "(the later snapshot as A), and an Early-Bird style convergence epoch: the first "
        "snapshot at which the last --window consecutive distances are all below "
        "--threshold. Snapshots as listed by --epoch (default: all, init first), or one "
        "run's checkpoint files in natural order. The pairs run in parallel (--threads).",
        epilog="Example: nnstd convergence --threshold 0.1 --window 2 --out convergence.png; "
        "with files: nnstd convergence 'run/epoch_*.pt' --json",
    )
    _network_arguments(conv, "one run's checkpoints (instead of --topo-root and --epoch)")
    conv.add_argument("--threshold", type=float, default=0.1, help="(default: %(default)s)")
    conv.add_argument("--window", type=int, default=2, metavar="K", help="(default: %(default)s)")
    conv.add_argument("--out", type=_figure_path, help="plot file (.png, .pdf, .svg)")
    json_argument(conv)
    conv.set_defaults(run=cmd_convergence)
