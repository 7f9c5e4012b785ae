"""What every command shares: option values, errors, progress, topology sets, output checks."""

from __future__ import annotations

import argparse
import glob
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO, TypeAlias, TypedDict

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._api import pairwise
from nnstd._errors import TopologyError
from nnstd._graph import Spec
from nnstd._loaders import BYTE_LIMIT, DEFAULT_LOAD_BUDGET, natural_key
from nnstd._network import Network, load_network, read_tensors
from nnstd._options import (
    DEFAULT_MEMORY_BUDGET,
    SOLVERS,
    Solver,
    check_threads,
    layer_selection,
)
from nnstd._output import check_output_file, check_output_folder, write_file
from nnstd.analysis import select_layer
from nnstd.topology_set import (
    TopologySet,
    default_topo_root,
    epoch_label,
    parse_epoch,
    save_matrix,
)

FIGURE_FORMATS = (".png", ".pdf", ".svg")
# The reference convention of `nnstd.pairwise`, said wherever a matrix is shown.
MATRIX_CONVENTION = (
    "entry [i, j] = [j, i] compares the pair once, with the network later in the list "
    "(the higher index) as A, the reference: `nnstd distance LATER EARLIER` gives the same values"
)


# How 2-D weights are stored in a file (``--orientation``).
ORIENTATIONS = ("in_out", "out_in")


class CommandError(Exception):
    """A bad input reported as one line and exit code 1."""


class UsageError(Exception):
    """A bad command line reported as one line and exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """Reports usage errors in one line (``nnstd CMD: error: ...``), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# The subcommands' parser, which each command module adds its parser to.
Subparsers: TypeAlias = "argparse._SubParsersAction[OneLineParser]"


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
    """``--threads``: the API's rule (`check_threads`: 0 means all cores), in command-line words."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    try:
        return check_threads(value)
    except ValueError:
        pass
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 (all cores) or more")
    raise argparse.ArgumentTypeError(
        f"{text}: at most {_core.MAX_THREADS} (use 0 for all cores; threads beyond the "
        "cores only add start-up time)"
    )


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


class Computing(TypedDict):
    """The common options' keywords of the computing functions (``**computing(args)``)."""

    solver: Solver
    threads: int | None
    memory_budget: int | None


def computing(args: argparse.Namespace) -> Computing:
    """``--solver``, ``--threads`` and ``--memory-budget`` as the API's keywords."""
    return Computing(solver=args.solver, threads=args.threads, memory_budget=args.memory_budget)


def matrix_pairs(n: int) -> int:
    """The pairs a matrix of ``n`` networks computes (each unordered pair once)."""
    return _core.pair_count(n)


def _layer_range(depth: int, layer: int) -> None:
    """``--layer``, checked by the core's rule before any work (a TopologyError)."""
    layer_selection(layer, depth)


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
    ts: TopologySet, snapshots: Sequence[str], args: argparse.Namespace, every_layer: bool = False
) -> list[npt.NDArray[np.float64]]:
    """For every snapshot, with progress: the shown value (layer L alone, or the mean of
    0..L), ``(n, n)``; with ``every_layer``, every layer's matrix, ``(n, n, depth)``."""
    depth = ts.load(snapshots[0])[0].depth
    if not every_layer:
        _layer_range(depth, args.layer)
    layers = list(range(depth if every_layer else args.layer + 1))
    pairs = matrix_pairs(len(ts.networks))
    progress = Progress(pairs * len(snapshots), args.quiet)
    out = []
    try:
        for snapshot in snapshots:
            full = ts.matrix(
                snapshot,
                layers=layers,
                progress=progress.callback(epoch_label(snapshot)),
                **computing(args),
            )
            if not every_layer:
                full = select_layer(full, args.layer, cumulative=args.cumulative)
            out.append(full)
            progress.advance(pairs)
    finally:
        progress.close()
    return out


# ---- networks named on the command line: checkpoint files, folders, globs ------------------


@dataclass(frozen=True)
class NetworkFiles:
    """Networks named on the command line, in the order they are compared."""

    paths: list[Path]
    names: list[str]  # each network's name: its file stem, or more of its path if stems repeat
    networks: list[Network]


def expand_networks(words: Sequence[str], keep_order: bool) -> list[Path]:
    """Files and folders, with globs (``run/epoch_*.pt``, quoted or not) expanded; in natural
    order of their paths (``epoch_2`` before ``epoch_10``, whatever order the shell gave)
    unless ``keep_order``, which keeps the order given (each glob still in natural order)."""
    paths: list[Path] = []
    for word in words:
        if glob.has_magic(word):
            found = sorted(glob.glob(word), key=natural_key)
            if not found:
                raise CommandError(f"{word}: no file or folder matches")
            paths += [Path(f) for f in found]
        else:
            paths.append(Path(word))
    if not keep_order:
        paths.sort(key=lambda path: natural_key(str(path)))
    seen: set[str] = set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            raise CommandError(f"{path}: named twice (each network once)")
        seen.add(real)
    return paths


def network_names(paths: Sequence[Path]) -> list[str]:
    """File stems (``epoch_10.pt`` -> ``epoch_10``); where two stems are equal, each path from
    the folder all share, without the suffix (``run0/model``, ``run1/model``)."""
    stems = [path.stem if path.is_file() else path.name for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    absolute = [path.absolute() for path in paths]
    shared = Path(os.path.commonpath([path.parent for path in absolute]))
    return [str(path.relative_to(shared).with_suffix("")) for path in absolute]


def spec_file(text: str) -> Spec:
    """``--spec FILE``: the spec, read when the command line is (a bad file is named there)."""
    try:
        return Spec.load(Path(text))
    except TopologyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load_graph(
    path: Path, spec: Spec, args: argparse.Namespace, orientation: str | None
) -> Network:
    """A checkpoint read with ``--spec``: its tensors grouped as the spec says (a graph, or the
    chain the spec describes), checked against them."""
    from nnstd.torch import to_network

    command = f"nnstd {args.command}: error:"
    if args.tensors is not None:
        raise UsageError(f"{command} --spec gives the groups of every tensor; drop --tensors")
    if orientation == "in_out":
        raise UsageError(f"{command} --spec reads weights as PyTorch stores them (out_in)")
    if path.is_dir():
        raise UsageError(
            f"{command} --spec reads checkpoint files (.pt, .safetensors, ...); {path} is a "
            "folder of weight_l<k>.npz layers (a chain: drop --spec)"
        )
    tensors = read_tensors(path, args.load_budget)
    try:
        return to_network(tensors, spec=spec, name=str(path))
    except TopologyError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise TopologyError(f"{path}: does not fit --spec: {exc}") from None


def load_file(path: Path, args: argparse.Namespace, orientation: str | None = None) -> Network:
    """One network named on the command line, read with ``--tensors`` as ``layers=``, or as a
    graph with ``--spec``."""
    spec = getattr(args, "spec", None)
    if spec is not None:
        return _load_graph(path, spec, args, orientation)
    if args.tensors is not None and path.is_dir():
        raise UsageError(
            f"nnstd {args.command}: error: --tensors picks tensors of weights files; {path} is "
            "a folder (its layers are its weight_l<k>.npz files)"
        )
    return load_network(
        path,
        orientation=orientation,  # type: ignore[arg-type]
        layers=args.tensors,
        memory_budget=args.load_budget,
    )


def load_pair(args: argparse.Namespace) -> tuple[Network, Network]:
    """A and B of ``distance`` and ``compare`` (`pair_arguments`), each read in its own
    orientation (``--orientation-a``/``-b``) or the shared one."""
    net_a, net_b = (
        load_file(path, args, orientation)
        for path, orientation in [
            (args.a, args.orientation_a or args.orientation),
            (args.b, args.orientation_b or args.orientation),
        ]
    )
    return net_a, net_b


def pair_json(args: argparse.Namespace, layers: Iterable[int]) -> dict[str, object]:
    """What the ``--json`` output of ``distance`` and ``compare`` starts with: the two files,
    which is the reference, the solver and the layers reported."""
    return {
        "a": str(args.a),
        "b": str(args.b),
        "reference": "a",
        "solver": args.solver,
        "layers": list(layers),
    }


def load_files(args: argparse.Namespace) -> NetworkFiles:
    """The networks named by ``args.networks``, in natural order unless ``--keep-order``."""
    paths = expand_networks(args.networks, args.keep_order)
    networks = [load_file(path, args, args.orientation) for path in paths]
    return NetworkFiles(paths, network_names(paths), networks)


def root_as_network(args: argparse.Namespace) -> None:
    """The earlier spelling ``nnstd matrix DIR``: a lone NETWORK that is a topology root (a
    folder of network folders, no ``weight_l0.npz`` of its own) is read as ``--topo-root``."""
    if len(args.networks) != 1 or glob.has_magic(args.networks[0]):
        return
    path = Path(args.networks[0])
    if path.is_dir() and not (path / "weight_l0.npz").exists():
        args.legacy_root, args.networks = path, []


def files_or_set(args: argparse.Namespace) -> NetworkFiles | None:
    """The networks named on the command line, or None when the command reads a topology set
    (``--topo-root``, ``--epoch``); naming both is a usage error."""
    if not args.networks:
        if getattr(args, "spec", None) is not None:
            raise UsageError(
                f"nnstd {args.command}: error: --spec reads the NETWORK files named on the "
                "command line; a topology set's folders are chains of layers"
            )
        if args.tensors is not None:
            raise UsageError(
                f"nnstd {args.command}: error: --tensors picks tensors of the NETWORK files "
                "named on the command line; a topology set's folders have no tensor names"
            )
        return None
    given = [
        flag for flag, value in (("--topo-root", args.topo_root), ("--epoch", args.epochs)) if value
    ]
    if given:
        raise UsageError(
            f"nnstd {args.command}: error: networks named as files and {' and '.join(given)} "
            "are two ways to choose the networks; give one"
        )
    return load_files(args)


def files_matrix(files: NetworkFiles, args: argparse.Namespace) -> npt.NDArray[np.float64]:
    """`nnstd.pairwise` over the files, the shown value (layer L alone, or the mean of 0..L),
    with progress."""
    if len(files.networks) < 2:
        raise CommandError(f"{files.paths[0]}: a matrix needs at least two networks")
    _layer_range(files.networks[0].depth, args.layer)
    progress = Progress(matrix_pairs(len(files.networks)), args.quiet)
    try:
        full = pairwise(
            files.networks,
            layers=list(range(args.layer + 1)),
            progress=progress.callback("networks"),
            **computing(args),
        )
    finally:
        progress.close()
    return select_layer(full, args.layer, cumulative=args.cumulative)


def pair_arguments(parser: argparse.ArgumentParser, a_help: str, orientation_help: str) -> None:
    """Two networks A (the reference) and B, and how their 2-D weights are stored
    (`load_pair` reads them)."""
    parser.add_argument("a", type=Path, metavar="A", help=a_help)
    parser.add_argument("b", type=Path, metavar="B")
    parser.add_argument("--orientation", choices=ORIENTATIONS, help=orientation_help)
    parser.add_argument("--orientation-a", choices=ORIENTATIONS, help="A's, if it differs")
    parser.add_argument("--orientation-b", choices=ORIENTATIONS, help="B's, if it differs")


def json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: the result as one JSON object."""
    parser.add_argument("--json", action="store_true", help="one JSON object for scripts")


def tensors_argument(parser: argparse.ArgumentParser) -> None:
    """``--tensors REGEX ...``: ``load_network``'s ``layers=``."""
    parser.add_argument(
        "--tensors",
        nargs="+",
        default=None,
        metavar="REGEX",
        help="the layers of each weights file: tensor names or regular expressions matched in "
        "full, in layer order, as load_network's layers= (default: every 2-D or 4-D weight, "
        "pruning masks preferred)",
    )


def spec_argument(parser: argparse.ArgumentParser) -> None:
    """``--spec FILE``: read the files as graphs of permutation groups."""
    parser.add_argument(
        "--spec",
        type=spec_file,
        default=None,
        metavar="FILE",
        help="read state-dict checkpoints of a model that is not a plain chain (ResNet, "
        "transformer) as graphs: FILE is its spec in JSON, as nnstd.torch.spec(model, "
        "example_inputs).save(FILE) writes it (docs/inputs.md#graph-specs); layers are then "
        "its groups in matching order",
    )


def _network_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The networks as files on the command line, instead of a topology set."""
    parser.add_argument(
        "networks",
        nargs="*",
        default=[],
        metavar="NETWORK",
        help=f"{what}: checkpoint files (.pt, .pth, .bin, .ckpt, .safetensors, .npz) or "
        "folders of weight_l*.npz, or globs of them ('run/epoch_*.pt'), taken in natural "
        "order (epoch_2 before epoch_10) and named by file stem; instead of --topo-root and "
        "--epoch",
    )
    tensors_argument(parser)
    spec_argument(parser)
    parser.add_argument(
        "--orientation",
        choices=ORIENTATIONS,
        help="how 2-D weights are stored in the files (default: in_out for folders and .npz, "
        "out_in for safetensors and PyTorch files)",
    )
    parser.add_argument(
        "--keep-order",
        action="store_true",
        help="take the NETWORK files in the order given, not in natural order",
    )


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
