"""The ``nnstd`` command: reproduce the paper's figures and compare networks from the shell.

Exit codes: 0 success, 1 a one-line error (bad input), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from nnstd import __version__
from nnstd._api import SOLVERS, distance
from nnstd._errors import TopologyError
from nnstd._network import load_network
from nnstd.topology_set import (
    INIT,
    TopologySet,
    default_topo_root,
    epoch_label,
    parse_epoch,
    save_matrix,
    select_layer,
)

FIGURE4_EPOCHS = (
    INIT,
    "epoch_000",
    "epoch_010",
    "epoch_030",
    "epoch_050",
    "epoch_100",
    "epoch_190",
)
FIGURE_FORMATS = (".png", ".pdf", ".svg")


class CommandError(Exception):
    """A bad input reported as one line and exit code 1."""


class Progress:
    """``pairs done / total, elapsed, time left`` on one stderr line, only on a terminal."""

    def __init__(self, total: int, quiet: bool, stream: TextIO = sys.stderr) -> None:
        self.total, self.offset, self.stream = total, 0, stream
        self.enabled = not quiet and stream.isatty()
        self.start = time.perf_counter()

    def callback(self, label: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            if not self.enabled:
                return
            finished = self.offset + done
            elapsed = time.perf_counter() - self.start
            left = elapsed / finished * (self.total - finished) if finished else float("nan")
            self.stream.write(
                f"\r{label}: {finished}/{self.total} pairs, {elapsed:.1f} s elapsed, "
                f"~{left:.1f} s left   "
            )
            self.stream.flush()

        return report

    def advance(self, pairs: int) -> None:
        self.offset += pairs

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


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


def _open_set(root: Path | None) -> TopologySet:
    path = root if root is not None else default_topo_root()
    if not path.is_dir():
        hint = "" if root is not None else " (the default is ./topo; pass --topo-root DIR)"
        raise CommandError(f"{path}: no such topology folder{hint}")
    return TopologySet.open(path)


def _layer_arguments(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--layer",
        type=int,
        default=default,
        metavar="L",
        help="show the paper's 'layer L' value: the mean of layers 0..L (default: %(default)s)",
    )
    parser.add_argument(
        "--only-layer", action="store_true", help="show layer L alone instead of layers 0..L"
    )


def _check_layer(ts: TopologySet, epoch: str, layer: int) -> None:
    depth = ts.load(epoch)[0].depth
    if not 0 <= layer < depth:
        raise CommandError(f"layer {layer} does not exist: the networks have layers 0..{depth - 1}")


def _epoch_matrices(
    ts: TopologySet, epochs: Sequence[str], layer: int, args: argparse.Namespace
) -> list[npt.NDArray[np.float64]]:
    """Pairwise matrices for layers 0..layer of every epoch, with progress."""
    _check_layer(ts, epochs[0], layer)
    n = len(ts.networks)
    pairs = n * (n - 1) // 2
    progress = Progress(pairs * len(epochs), args.quiet)
    out = []
    try:
        for epoch in epochs:
            full = ts.matrix(
                epoch,
                layers=list(range(layer + 1)),
                solver=args.solver,
                threads=args.threads,
                memory_budget=budget_bytes(args),
                progress=progress.callback(epoch_label(epoch)),
            )
            out.append(select_layer(full, layer, cumulative=not args.only_layer))
            progress.advance(pairs)
    finally:
        progress.close()
    return out


def _layer_title(layer: int, only: bool) -> str:
    return f"layer {layer}" if only or layer == 0 else f"mean of layers 0..{layer}"


def _save_figure(fig: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)  # type: ignore[attr-defined]


def cmd_figure4(args: argparse.Namespace) -> None:
    ts = _open_set(args.topo_root)
    if args.epochs:
        epochs = [ts.check_epoch(parse_epoch(e)) for e in args.epochs]
    else:
        epochs = [e for e in FIGURE4_EPOCHS if e in ts.epochs]
        if not epochs:
            raise CommandError(
                f"{ts.root}: none of the Figure 4 snapshots ({', '.join(FIGURE4_EPOCHS)}) "
                f"exist; choose with --epochs"
            )
    start = time.perf_counter()
    matrices = _epoch_matrices(ts, epochs, args.layer, args)
    elapsed = time.perf_counter() - start
    names = ts.short_names()
    if args.save_matrices is not None:
        args.save_matrices.mkdir(parents=True, exist_ok=True)
        for epoch, matrix in zip(epochs, matrices, strict=True):
            for suffix in (".npy", ".csv"):
                save_matrix(args.save_matrices / f"{epoch}{suffix}", matrix, list(ts.networks))
    from nnstd.plot import figure4

    fig = figure4(
        matrices,
        [epoch_label(e) for e in epochs],
        names,
        suptitle=f"NNSTD between networks, {_layer_title(args.layer, args.only_layer)} "
        f"({ts.root.name})",
    )
    _save_figure(fig, args.out)
    if not args.quiet:
        print(
            f"wrote {args.out} ({len(epochs)} panels, {len(names)} networks, "
            f"{elapsed:.2f} s computing)"
        )


def cmd_matrix(args: argparse.Namespace) -> None:
    ts = _open_set(args.topo_root)
    epoch = ts.check_epoch(parse_epoch(args.epoch))
    (matrix,) = _epoch_matrices(ts, [epoch], args.layer, args)
    if args.save is not None:
        save_matrix(args.save, matrix, list(ts.networks))
    if args.out is not None:
        from matplotlib.figure import Figure

        from nnstd.plot import heatmap

        fig = Figure(figsize=(6, 5), layout="constrained")
        title = f"{epoch_label(epoch)}, {_layer_title(args.layer, args.only_layer)}"
        heatmap(fig.add_subplot(), matrix, ts.short_names(), title)
        _save_figure(fig, args.out)
    if args.out is None and args.save is None:
        names = ts.short_names()
        width = max(len(n) for n in names) + 1
        print(" " * width + " ".join(f"{n:>6}" for n in names))
        for name, row in zip(names, matrix, strict=True):
            print(f"{name:<{width}}" + " ".join(f"{x:6.4f}" for x in row))


def cmd_distance(args: argparse.Namespace) -> None:
    layers = args.layers if args.layers else None
    net_a = load_network(args.a, orientation=args.orientation)
    net_b = load_network(args.b, orientation=args.orientation)
    result = distance(
        net_a, net_b, layers=layers, solver=args.solver, memory_budget=budget_bytes(args)
    )
    if args.json:
        print(
            json.dumps(
                {
                    "a": str(args.a),
                    "b": str(args.b),
                    "solver": args.solver,
                    "layers": list(result.layer_indices),
                    "distances": result.layers.tolist(),
                    "costs": result.costs.tolist(),
                    "solvers": list(result.solvers),
                    "mean": result.value,
                }
            )
        )
        return
    print(f"A = {args.a}\nB = {args.b}")
    print(f"{'layer':>5}  {'distance':>10}  {'cost':>10}  solver")
    rows = zip(result.layer_indices, result.layers, result.costs, result.solvers, strict=True)
    for k, d, c, used in rows:
        print(f"{k:>5}  {d:10.6f}  {c:10.3f}  {used}")
    print(f"{'mean':>5}  {result.value:10.6f}")


def cmd_evolution(args: argparse.Namespace) -> None:
    ts = _open_set(args.topo_root)
    epochs = [e for e in ts.epochs]
    n = len(ts.networks)
    if n < 2:
        raise CommandError(f"{ts.root}: evolution needs at least two networks")
    if args.layer is not None:
        _check_layer(ts, epochs[0], args.layer)
    layer_count = args.layer + 1 if args.layer is not None else None
    progress = Progress(n * (n - 1) // 2 * len(epochs), args.quiet)
    mask = ~np.eye(n, dtype=bool)
    means, spreads = [], []
    try:
        for epoch in epochs:
            layers = None if layer_count is None else list(range(layer_count))
            full = ts.matrix(
                epoch,
                layers=layers,
                solver=args.solver,
                threads=args.threads,
                memory_budget=budget_bytes(args),
                progress=progress.callback(epoch_label(epoch)),
            )
            off = full[mask]  # (pairs, layers)
            means.append(off.mean(axis=0))
            spreads.append(off.std(axis=0))
            progress.advance(n * (n - 1) // 2)
    finally:
        progress.close()
    mean, spread = np.array(means).T, np.array(spreads).T
    layer_names = [f"layer {k}" for k in range(mean.shape[0])]
    print(f"{'snapshot':<10} " + " ".join(f"{name:>17}" for name in layer_names))
    for e, epoch in enumerate(epochs):
        cells = " ".join(f"{mean[k, e]:8.4f} ± {spread[k, e]:6.4f}" for k in range(mean.shape[0]))
        print(f"{epoch:<10} {cells}")
    if args.out is not None:
        from nnstd.plot import evolution

        positions = list(range(len(epochs)))
        fig = evolution(
            positions,
            mean,
            spread,
            layer_names,
            xlabels=[e.replace("epoch_", "").lstrip("0") or "0" for e in epochs],
        )
        _save_figure(fig, args.out)
        if not args.quiet:
            print(f"wrote {args.out}")


def cmd_generate(args: argparse.Namespace) -> None:
    from nnstd.generate import SetConfig, generate

    try:
        config = SetConfig(
            widths=tuple(args.widths),
            density=args.density,
            networks=args.networks,
            rewire=args.rewire,
            epochs=args.epochs,
            zeta=args.zeta,
            seed=args.seed,
            snapshots=tuple(e for e in args.snapshots if e < args.epochs),
        )
    except ValueError as exc:
        raise CommandError(f"generate: {exc}") from None
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnstd",
        description="Neural Network Sparse Topology Distance (Liu et al., ECML-PKDD 2020).",
        epilog="Example: nnstd figure4 --out figure4.png",
    )
    parser.add_argument("--version", action="version", version=f"nnstd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--solver",
        choices=SOLVERS,
        default="auto",
        help="auto (exact while a layer's dense cost matrix fits the memory budget, else "
        "sparse), exact (SciPy's choices: the paper's numbers), sparse (very wide layers) or "
        "canonical (ties broken by structure, not labels) (default: %(default)s)",
    )
    common.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    common.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GIB",
        help="GiB one layer's dense cost matrix may take for the exact and "
        "canonical solvers (default: 1)",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")

    fig4 = sub.add_parser(
        "figure4",
        parents=[common],
        help="draw the paper's Figure 4 (heat maps per epoch)",
        description="Draw the paper's Figure 4: one NNSTD heat map per epoch, networks on both "
        "axes, colour map 'gnuplot' from 0 to 1.",
        epilog="Example: nnstd figure4 --topo-root ../shared/paper-topo --out fig4.pdf",
    )
    fig4.add_argument(
        "--topo-root",
        type=Path,
        default=None,
        help="folder of <network>/<epoch>/weight_l*.npz (default: ./topo)",
    )
    fig4.add_argument(
        "--epochs",
        nargs="+",
        metavar="E",
        help=f"snapshots: numbers, epoch_NNN or {INIT!r} (default: {INIT} and "
        "0 10 30 50 100 190, those present)",
    )
    _layer_arguments(fig4, 0)
    fig4.add_argument(
        "--out",
        type=_figure_path,
        default=Path("figure4.png"),
        help="output file; format from the extension (default: %(default)s)",
    )
    fig4.add_argument(
        "--save-matrices",
        type=Path,
        metavar="DIR",
        help="also write each epoch's matrix as DIR/<epoch>.npy and .csv",
    )
    fig4.set_defaults(run=cmd_figure4)

    matrix = sub.add_parser(
        "matrix",
        parents=[common],
        help="one epoch's pairwise matrix as a heat map or file",
        description="Compute one epoch's pairwise NNSTD matrix; print it, plot it or save it.",
        epilog="Example: nnstd matrix topo --epoch 190 --layer 2 --out m.png --save m.csv",
    )
    matrix.add_argument("topo_root", type=Path, metavar="TOPO_ROOT")
    matrix.add_argument("--epoch", required=True, help=f"a number, epoch_NNN or {INIT!r}")
    _layer_arguments(matrix, 0)
    matrix.add_argument("--out", type=_figure_path, help="heat map (.png, .pdf, .svg)")
    matrix.add_argument("--save", type=_matrix_path, help="the matrix (.npy or .csv)")
    matrix.set_defaults(run=cmd_matrix)

    dist = sub.add_parser(
        "distance",
        parents=[common],
        help="per-layer distances of two networks",
        description="Per-layer NNSTD of network B from network A (A is the reference).",
        epilog="Example: nnstd distance topo/w0/epoch_190 topo/w9/epoch_190 --json",
    )
    dist.add_argument(
        "a",
        type=Path,
        metavar="A",
        help="a network: a folder of weight_l*.npz, or a .npz, .safetensors or PyTorch file",
    )
    dist.add_argument("b", type=Path, metavar="B")
    dist.add_argument(
        "--orientation",
        choices=("in_out", "out_in"),
        help="how 2-D weights are stored (default: in_out for folders and .npz, "
        "out_in for safetensors and PyTorch files)",
    )
    dist.add_argument("--layers", type=int, nargs="+", metavar="K", help="layers to report")
    dist.add_argument("--json", action="store_true", help="one JSON object for scripts")
    dist.set_defaults(run=cmd_distance)

    evo = sub.add_parser(
        "evolution",
        parents=[common],
        help="how far apart the networks drift during training",
        description="Mean and spread of the off-diagonal distances per snapshot, one line per "
        "layer.",
        epilog="Example: nnstd evolution topo --out evolution.png",
    )
    evo.add_argument("topo_root", type=Path, metavar="TOPO_ROOT")
    evo.add_argument(
        "--layer", type=int, default=None, metavar="L", help="layers 0..L (default: all)"
    )
    evo.add_argument("--out", type=_figure_path, help="plot file (.png, .pdf, .svg)")
    evo.set_defaults(run=cmd_evolution)

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
    gen.add_argument("--out", type=Path, required=True, help="output folder")
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
        default=list(PAPER_SNAPSHOTS),
        help="epochs to save (default: the paper's, %(default)s)",
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
    return parser


def budget_bytes(args: argparse.Namespace) -> int | None:
    """``--memory-budget`` in bytes (None: the library's default)."""
    gib = getattr(args, "memory_budget", None)
    return None if gib is None else int(gib * 2**30)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nnstd`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "memory_budget", None) is not None and args.memory_budget < 0:
        build_parser().error("--memory-budget must be >= 0")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        build_parser().error("--threads must be at least 1")
    try:
        args.run(args)
    except (CommandError, TopologyError, OSError) as exc:
        print(f"nnstd: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nnstd: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
