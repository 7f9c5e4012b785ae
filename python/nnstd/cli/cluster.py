"""``nnstd cluster``: a snapshot's matrix as a clustered heat map and an MDS map."""

from __future__ import annotations

import argparse

from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    Subparsers,
    UsageError,
    _check_outputs,
    _figure_path,
    _matrices,
    _network_arguments,
    _open_set,
    _save_figure,
    _set_options,
    _snapshots,
    files_matrix,
    files_or_set,
    layer_title,
)
from nnstd.topology_set import (
    epoch_label,
)


def cmd_cluster(args: argparse.Namespace) -> None:
    """One snapshot's matrix as a clustered heat map with its dendrogram, and an MDS map."""
    from nnstd.plot import clustered_heatmap, mds_embedding

    _check_outputs(args)
    files = files_or_set(args)
    if files is not None:
        if args.out is None and args.mds is None:
            raise UsageError("nnstd cluster: error: give --out FILE, --mds FILE or both")
        matrix = files_matrix(files, args)
        title = layer_title(args.layer, args.cumulative)
        names = files.names
    else:
        ts = _open_set(args)
        if len(args.epochs) != 1:
            raise UsageError(
                "nnstd cluster: error: give one snapshot with --epoch E, or the networks as files"
            )
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


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd cluster`` to the subcommands."""
    clu = sub.add_parser(
        "cluster",
        parents=[common, _set_options(several_epochs=False)],
        help="a snapshot's matrix clustered (heat map + dendrogram) and as an MDS map",
        description="Compute one snapshot's pairwise matrix, or that of networks named as "
        "files (as nnstd matrix), and draw it as a "
        "heat map ordered by hierarchical clustering (scipy.cluster.hierarchy) with its "
        "dendrogram (--out), and/or the networks as points of a metric MDS embedding of the "
        "matrix (--mds; needs scikit-learn).",
        epilog="Example: nnstd cluster --epoch 190 --out clustered.png --mds mds.png",
    )
    _network_arguments(clu, "the networks (instead of --topo-root and --epoch)")
    clu.add_argument("--out", type=_figure_path, help="clustered heat map (.png, .pdf, .svg)")
    clu.add_argument("--mds", type=_figure_path, help="MDS embedding (.png, .pdf, .svg)")
    clu.add_argument(
        "--method",
        choices=("average", "complete", "single", "weighted"),
        default="average",
        help="linkage (default: %(default)s)",
    )
    clu.set_defaults(run=cmd_cluster)
