"""``nnstd convergence``: each network's distance to its previous snapshot, and when it settles."""

from __future__ import annotations

import argparse
import json
import sys

from nnstd.analysis import consecutive_distances, convergence_index
from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    Subparsers,
    UsageError,
    _check_outputs,
    _figure_path,
    _layer_range,
    _open_set,
    _save_figure,
    _set_options,
    _snapshots,
    layer_title,
)
from nnstd.topology_set import snapshot_epoch


def cmd_convergence(args: argparse.Namespace) -> None:
    """Each network's distance between consecutive snapshots and its convergence epoch."""
    from nnstd.plot import consecutive

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
    values = consecutive_distances(
        [[loaded[i][n] for i in range(len(snapshots))] for n in range(len(ts.networks))],
        layers=chosen,
        solver=args.solver,
        memory_budget=args.memory_budget,
    ).mean(axis=-1)
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


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd convergence`` to the subcommands."""
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
