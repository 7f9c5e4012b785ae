"""``nnstd generate``: topologies like the paper's (rewired chain + SET training)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from nnstd._errors import TopologyError
from nnstd._output import check_output_folder
from nnstd._paper import PAPER_SNAPSHOTS
from nnstd.cli._common import (
    CommandError,
    Subparsers,
    UsageError,
    note,
)
from nnstd.topology_set import (
    TopologySet,
)


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


def add_parser(sub: Subparsers) -> None:
    """Adds ``nnstd generate`` to the subcommands."""
    from nnstd.generate import SetConfig

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
