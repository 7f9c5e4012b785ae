"""``nnstd compare``: NNSTD, IoU and Hamming of two networks, raw and aligned."""

from __future__ import annotations

import argparse
import json

from nnstd._api import distance
from nnstd.cli._common import (
    OneLineParser,
    Subparsers,
    json_argument,
    load_pair,
    pair_arguments,
    pair_json,
    tensors_argument,
)


def cmd_compare(args: argparse.Namespace) -> None:
    """NNSTD, IoU and Hamming of two networks, raw and after aligning B to A, per layer."""
    from nnstd._align import alignment, apply_alignment, overlap

    net_a, net_b = load_pair(args)
    result = distance(net_a, net_b, solver=args.solver, memory_budget=args.memory_budget)
    aligned = apply_alignment(net_b, alignment(net_a, net_b, solver=args.solver))
    same_shapes = net_a.shapes == net_b.shapes
    columns: dict[str, list[float | None]] = {"nnstd": result.layers.tolist()}
    for measure in ("iou", "hamming"):
        for label, other in (("raw", net_b), ("aligned", aligned)):
            values = overlap(net_a, other, measure=measure).tolist() if same_shapes else None
            columns[f"{measure}_{label}"] = values or [None] * net_a.depth
    if args.json:
        print(
            json.dumps(
                {
                    **pair_json(args, range(net_a.depth)),
                    **columns,
                    "solvers": list(result.solvers),
                }
            )
        )
        return
    print(f"A = {args.a}  (the reference)\nB = {args.b}  (aligned: hidden neurons renamed after A)")
    print(
        f"{'layer':>5}  {'NNSTD':>8}  {'IoU raw':>8}  {'IoU aln':>8}  {'Ham raw':>8}  "
        f"{'Ham aln':>8}"
    )
    for k in range(net_a.depth):
        cells = [columns[c][k] for c in ("nnstd", "iou_raw", "iou_aligned")]
        cells += [columns[c][k] for c in ("hamming_raw", "hamming_aligned")]
        print(f"{k:>5}  " + "  ".join("       -" if v is None else f"{v:8.4f}" for v in cells))
    if not args.quiet and not same_shapes:
        print("# IoU and Hamming compare masks of equal shapes; these networks differ in width")


def add_parser(sub: Subparsers, common: OneLineParser) -> None:
    """Adds ``nnstd compare`` to the subcommands."""
    cmp = sub.add_parser(
        "compare",
        parents=[common],
        help="NNSTD, IoU and Hamming of two networks, raw and aligned",
        description="Per layer: the NNSTD of B from A, and the IoU and normalised Hamming "
        "distance of the two connection sets, raw (neuron labels as stored) and aligned (B's "
        "hidden neurons renamed after their partners in A by the solver's matching, as "
        "nnstd.align does). Output neurons keep their labels.",
        epilog="Example: nnstd compare run0/model.safetensors run1/model.safetensors --json",
    )
    pair_arguments(
        cmp, a_help="the reference network (as in distance)", orientation_help="as in distance"
    )
    tensors_argument(cmp)
    json_argument(cmp)
    cmp.set_defaults(run=cmd_compare)
