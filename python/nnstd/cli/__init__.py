"""The ``nnstd`` command: reproduce the paper's figures and compare networks from the shell.

One command line for every command that reads a topology set (``figure4``, ``matrix``,
``evolution``, ``cluster``, ``convergence``): ``--topo-root DIR`` (default: ``./topo``, else the
bundled set), ``--epoch E ...`` for snapshots, ``--layer L`` for layer L alone and
``--cumulative`` for the paper's "layer L" value (the mean of layers 0..L). ``matrix``,
``cluster`` and ``convergence`` take the networks as files instead (checkpoints, folders,
globs; ``--tensors`` chooses their layers).

Layout: this module assembles the parser and runs a command; ``_common`` holds what commands
share; each command is a module with ``add_parser`` and ``cmd_<name>``, computing through
functions the Python API exposes (``nnstd.analysis``, ``nnstd.pairwise``, ...).

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
import os
import sys
from collections.abc import Sequence

from nnstd import __version__
from nnstd._data import data_dir
from nnstd._errors import TopologyError
from nnstd._options import DEFAULT_SOLVER
from nnstd.cli import (
    cluster,
    compare,
    convergence,
    distance,
    evolution,
    figure4,
    generate,
    matrix,
)
from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    UsageError,
    _common_options,
    shell_words,
)

__all__ = ["build_parser", "main"]


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="nnstd",
        description="Neural Network Sparse Topology Distance (Liu et al., ECML-PKDD 2020).\n"
        f"Definition: {data_dir('docs') / 'definition.md'}",
        epilog="Example: nnstd figure4 --out figure4.png",
        # The description's lines as written: a long path must not be broken at its hyphens.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nnstd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    figure4.add_parser(sub, common)
    matrix.add_parser(sub, common)
    distance.add_parser(sub, common)
    compare.add_parser(sub, common)
    evolution.add_parser(sub, common)
    cluster.add_parser(sub, common)
    convergence.add_parser(sub, common)
    generate.add_parser(sub)
    return parser


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
