"""The benchmark's instances: what each class is, and how its networks are built or loaded.

Every instance is described by a small JSON-able dict (its "spec") so that a worker process can
rebuild exactly the same networks from it. Layers are binary CSC arrays in nnstd's (inputs,
neurons) orientation; ``groups[k]`` is how many of layer k's inputs belong to one neuron of layer
k - 1 (9 for a 3x3 convolution, 1 otherwise), as in ``nnstd.Network(..., input_groups=...)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
PAPER_EPOCHS = (0, 10, 20, 30, 40, 50, 100, 150, 190)  # the published snapshots
PAPER_NETWORKS = 10
FAN_IN = 8
MOVED = 0.3  # near-twins: this fraction of each layer's connections moved
KERNEL = 9  # 3 x 3 convolution: inputs per (input channel)
CONV_WIDTHS = (3, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 2048)
CONV_DENSITY = 0.1

Spec = dict[str, Any]


@dataclass
class Pair:
    """Two networks to compare, as binary layers, and their input groups."""

    a: list[sp.csc_array]
    b: list[sp.csc_array]
    groups: list[int]


def default_topo_root() -> Path:
    """`$NNSTD_PAPER_TOPO`, else ``../shared/paper-topo`` beside the checkout (as the tests)."""
    return Path(os.environ.get("NNSTD_PAPER_TOPO", ROOT.parent / "shared" / "paper-topo"))


def binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csc_array:
    """A canonical binary CSC array with a connection at each (row, col) (no duplicates given)."""
    layer = sp.csc_array((np.ones(len(rows), dtype=bool), (rows, cols)), shape=shape)
    layer.sort_indices()
    return layer


def erdos_renyi_layer(
    rng: np.random.Generator, n_in: int, n_out: int, fan_in: float
) -> sp.csc_array:
    """Every (input, neuron) pair connected independently with probability ``fan_in / n_in``
    (the sparse Erdos-Renyi layers of SET): fan-ins are Binomial, mean ``fan_in``."""
    counts = rng.binomial(n_in, fan_in / n_in, size=n_out)
    cols = np.repeat(np.arange(n_out, dtype=np.int64), counts)
    rows = rng.integers(0, n_in, size=len(cols))
    redraw = np.ones(len(cols), dtype=bool)
    return binary(distinct_inputs(rng, rows, cols, n_in, redraw), cols, (n_in, n_out))


def distinct_inputs(
    rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray, n_in: int, redraw: np.ndarray
) -> np.ndarray:
    """``rows`` with the entries marked ``redraw`` redrawn until no neuron (col) has the same
    input twice; entries not marked are kept."""
    pending = np.flatnonzero(redraw)
    while len(pending):
        rows[pending] = rng.integers(0, n_in, size=len(pending))
        key = cols * n_in + rows
        order = np.lexsort((redraw, key))  # per key: a kept entry first
        clash = np.zeros(len(rows), dtype=bool)
        clash[order[1:]] = key[order[1:]] == key[order[:-1]]
        pending = np.flatnonzero(clash)  # only redrawn entries can clash
    return rows


def bernoulli_layer(rng: np.random.Generator, n_in: int, n_out: int, p: float) -> sp.csc_array:
    """Every (input, neuron) pair connected independently with probability ``p``."""
    return sp.csc_array(rng.random((n_in, n_out), dtype=np.float32) < p)


def moved_connections(
    rng: np.random.Generator, layer: sp.csc_array, fraction: float
) -> sp.csc_array:
    """The layer with ``fraction`` of its connections moved to other random inputs of the same
    neuron (never onto an input the neuron already has)."""
    coo = sp.coo_array(layer)
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    moved = np.zeros(coo.nnz, dtype=bool)
    moved[rng.choice(coo.nnz, size=int(fraction * coo.nnz), replace=False)] = True
    return binary(distinct_inputs(rng, rows, cols, layer.shape[0], moved), cols, layer.shape)


def renamed_hidden(layers: list[sp.csc_array], rng: np.random.Generator) -> list[sp.csc_array]:
    """The same graph with every hidden layer's neurons in a random order (so that no solver
    profits from twins having matching labels)."""
    out = list(layers)
    for k in range(len(out) - 1):
        order = rng.permutation(out[k].shape[1])
        out[k] = out[k][:, order]
        out[k + 1] = sp.csc_array(sp.csr_array(out[k + 1])[order])
        out[k].sort_indices()
        out[k + 1].sort_indices()
    return out


def erdos_renyi_network(rng: np.random.Generator, n: int) -> list[sp.csc_array]:
    """n -> n -> n, Erdos-Renyi layers with mean fan-in 8."""
    return [erdos_renyi_layer(rng, n, n, FAN_IN) for _ in range(2)]


def build_pair(spec: Spec) -> Pair:
    """The two networks of a generated instance (every class but the paper set)."""
    kind, seed = spec["class"], spec.get("seed", 0)
    rng_a = np.random.default_rng([seed, 0, spec.get("n", 0)])
    rng_b = np.random.default_rng([seed, 1, spec.get("n", 0)])
    n = spec.get("n", 0)
    if kind == "er":
        return Pair(erdos_renyi_network(rng_a, n), erdos_renyi_network(rng_b, n), [1, 1])
    if kind == "twins":
        a = erdos_renyi_network(rng_a, n)
        b = renamed_hidden([moved_connections(rng_b, layer, MOVED) for layer in a], rng_b)
        return Pair(a, b, [1, 1])
    if kind == "density":
        p = spec["density"]
        a = [bernoulli_layer(rng_a, n, n, p) for _ in range(2)]
        b = [bernoulli_layer(rng_b, n, n, p) for _ in range(2)]
        return Pair(a, b, [1, 1])
    if kind == "conv":
        widths, p = spec["widths"], spec["density"]
        shapes = [
            (c_in * KERNEL, c_out) for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        ]
        a = [bernoulli_layer(rng_a, *shape, p) for shape in shapes]
        b = [bernoulli_layer(rng_b, *shape, p) for shape in shapes]
        return Pair(a, b, [KERNEL] * len(shapes))
    raise ValueError(f"unknown instance class {kind!r}")


def paper_folders(spec: Spec) -> list[list[Path]]:
    """Per epoch of the spec, the folders of the ten networks, in index order."""
    root = Path(spec["root"])
    return [
        [root / f"e5_s0_w{k}" / f"epoch_{epoch:03d}" for k in range(PAPER_NETWORKS)]
        for epoch in spec["epochs"]
    ]


def paper_pairs() -> list[tuple[int, int]]:
    """The pairs ``pairwise`` computes, in the paper's convention: (A, B) = (i, j), i > j."""
    return [(i, j) for i in range(PAPER_NETWORKS) for j in range(i)]


def label(spec: Spec) -> str:
    """A short human name for the table."""
    kind = spec["class"]
    if kind == "paper":
        epochs = len(spec["epochs"])
        return f"paper set, {epochs} epoch{'s' if epochs > 1 else ''} x 45 pairs x 4 layers"
    if kind == "er":
        return f"unrelated ER, mean fan-in {FAN_IN}, {spec['n']:,} wide"
    if kind == "twins":
        return f"near-twins ({MOVED:.0%} moved), {spec['n']:,} wide"
    if kind == "density":
        return f"unrelated, {spec['n']:,} wide, density {spec['density']}"
    if kind == "conv":
        widths = spec["widths"]
        return (
            f"conv chain {widths[1]}..{widths[-1]} channels, {len(widths) - 1} layers 3x3, "
            f"density {spec['density']}"
        )
    raise ValueError(kind)


def largest_width(spec: Spec) -> int:
    if spec["class"] == "paper":
        return 784
    if spec["class"] == "conv":
        return int(max(spec["widths"]))
    return int(spec["n"])


def dense_bytes(spec: Spec) -> int:
    """Roughly what the dense SciPy pipeline holds at once on its largest layer: the float32
    overlaps and two float64 matrices (unions, costs), plus float32 copies of both inputs
    where they are dense enough to be kept dense (``scipy_pipelines.SPARSE_OVERLAP_DENSITY``)."""
    if spec["class"] == "paper":
        shapes, density = [(784, 784)], 0.006
    elif spec["class"] == "conv":
        widths = spec["widths"]
        shapes = [(i * KERNEL, o) for i, o in zip(widths[:-1], widths[1:], strict=True)]
        density = spec["density"]
    else:
        shapes = [(spec["n"], spec["n"])]
        density = spec.get("density", FAN_IN / spec["n"])
    inputs = 2 * 4 if density >= 0.02 else 0
    return max(o * o * 20 + inputs * i * o for i, o in shapes)
