"""``nnstd figure4``: the paper's Figure 4, heat maps of NNSTD between the networks per epoch."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from nnstd._paper import INIT_STAND_IN, PAPER_PANELS, Panel
from nnstd.cli._common import (
    CommandError,
    OneLineParser,
    Subparsers,
    _check_outputs,
    _figure_path,
    _matrices,
    _open_set,
    _save_figure,
    _save_matrices,
    _set_options,
    _snapshots,
    layer_title,
    note,
)
from nnstd.topology_set import (
    INIT,
    TopologySet,
    epoch_label,
)


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


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd figure4`` to the subcommands."""
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
