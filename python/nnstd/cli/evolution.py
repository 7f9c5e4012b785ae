"""``nnstd evolution``: how far apart the networks drift during training."""

from __future__ import annotations

import argparse

import numpy as np

from nnstd.analysis import always_dense_layers, evolution_curves
from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    Subparsers,
    UsageError,
    _check_outputs,
    _figure_path,
    _legacy_root,
    _matrices,
    _open_set,
    _save_figure,
    _set_options,
    _snapshots,
    layer_title,
    matrix_pairs,
)
from nnstd.topology_set import snapshot_epoch


def cmd_evolution(args: argparse.Namespace) -> None:
    _check_outputs(args)
    ts = _open_set(args)
    snapshots = _snapshots(ts, args.epochs)
    n = len(ts.networks)
    if n < 2:
        raise CommandError(f"{ts.root}: evolution needs at least two networks")
    first = ts.load(snapshots[0])
    depth = first[0].depth
    if args.layer is None and args.cumulative:
        raise UsageError("nnstd evolution: error: --cumulative needs --layer L")
    pairs = matrix_pairs(n)
    per_snapshot = _matrices(ts, snapshots, args, every_layer=args.layer is None)
    if args.layer is not None:  # one line: the shown value
        per_snapshot = [m[..., np.newaxis] for m in per_snapshot]
    mean, spread = evolution_curves(per_snapshot)  # (lines, snapshots)
    if args.layer is None:
        names = [f"layer {k}" for k in range(depth)]
    else:
        names = [layer_title(args.layer, args.cumulative).lower()]
    dropped: list[int] = []
    if args.layer is None:  # a layer dense in every network is 0 whatever the matching
        dense = always_dense_layers(first)
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


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd evolution`` to the subcommands."""
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
