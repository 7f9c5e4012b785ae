"""``nnstd distance``: per-layer distances of two networks."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from nnstd._api import distance
from nnstd.cli._common import (
    OneLineParser,
    Progress,
    Subparsers,
    json_argument,
    load_pair,
    pair_arguments,
    pair_json,
    spec_argument,
    tensors_argument,
)


def _mean_label(chosen: Sequence[int], depth: int) -> str:
    """What the 'mean' line of ``nnstd distance`` is the mean of."""
    if len(chosen) == 1:
        return f"layer {chosen[0]} alone"
    if list(chosen) == list(range(len(chosen))):
        last = len(chosen) - 1
        every = "; all layers: the paper code's summary" if last == depth - 1 else ""
        return f"mean of layers 0..{last} (the paper's 'layer {last}' value{every})"
    return f"mean of layers {', '.join(map(str, chosen))} only"


def cmd_distance(args: argparse.Namespace) -> None:
    net_a, net_b = load_pair(args)
    progress = Progress(net_a.depth, args.quiet, unit="layers")
    report = progress.callback("matching")

    def layers_done(done: int, total: int) -> None:
        progress.total = total  # the layers asked for and those before them
        report(done, total)

    try:
        result = distance(
            net_a,
            net_b,
            layers=args.layers or None,
            solver=args.solver,
            memory_budget=args.memory_budget,
            progress=layers_done,
        )
    finally:
        progress.close()
    mean_label = _mean_label(result.layer_indices, net_a.depth)
    # A graph's layers are its groups in matching order: each named as the spec names it.
    groups = getattr(net_a, "groups", None) if net_a.is_graph else None
    if args.json:
        print(
            json.dumps(
                {
                    **pair_json(args, result.layer_indices),
                    "distances": result.layers.tolist(),
                    "costs": result.costs.tolist(),
                    "solvers": list(result.solvers),
                    "mean": result.value,
                    "mean_of": mean_label,
                    **({"groups": [groups[k] for k in result.layer_indices]} if groups else {}),
                }
            )
        )
        return
    print(f"A = {args.a}  (the reference: costs divided by A's widths)\nB = {args.b}")
    print(f"{'layer':>5}  {'distance':>10}  {'cost':>10}  solver" + ("  group" if groups else ""))
    rows = zip(result.layer_indices, result.layers, result.costs, result.solvers, strict=True)
    for k, d, c, used in rows:
        group = f"  {groups[k]}" if groups else ""
        print(f"{k:>5}  {d:10.6f}  {c:10.3f}  {used:<9}{group}".rstrip())
    print(f"{'mean':>5}  {result.value:10.6f}  {mean_label}")
    if not args.quiet:
        print(
            "# past layer 0 the value depends on which network is A; nnstd matrix and "
            "nnstd.pairwise take the higher-indexed network as A"
        )


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd distance`` to the subcommands."""
    dist = sub.add_parser(
        "distance",
        parents=[common],
        help="per-layer distances of two networks",
        description="Per-layer NNSTD of network B from network A. A is the reference: costs "
        "are divided by A's widths and B's neurons are renamed after A's. Past layer 0 the "
        "values depend on the order; nnstd matrix takes the higher-indexed network as A.",
        epilog="Example: nnstd distance run9/model.safetensors run0/model.safetensors --json",
    )
    pair_arguments(
        dist,
        a_help="a network: a folder of weight_l*.npz, or a .npz, .safetensors or PyTorch file",
        orientation_help="how 2-D weights are stored in both files (default: in_out for "
        "folders and .npz, out_in for safetensors and PyTorch files)",
    )
    dist.add_argument(
        "--layers",
        type=int,
        nargs="+",
        metavar="K",
        help="layers to report (default: all); the 'mean' line is the mean of these only, "
        "the paper's 'layer L' value when they are 0..L",
    )
    tensors_argument(dist)
    spec_argument(dist)
    json_argument(dist)
    dist.set_defaults(run=cmd_distance)
