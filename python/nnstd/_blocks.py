"""All pairs of many networks, in memory bounded by their compact form.

`nnstd.pairwise` without a store or cluster comes here. A network given as a path is read once
(one file at a time) and kept only as the core's topology (about 4 bytes a connection): the
`Network` the loader builds, with its Python-side copy of every layer, and the file's dense
arrays are dropped as soon as the topology exists. While all the networks' topologies fit in
`RESIDENT_BYTES`, the whole matrix is one call into the core, as for networks in memory (each
network prepared once); past it, the matrix is computed in blocks of networks, a block's files
read again for each block of pairs it is in, so that memory stays bounded whatever the number
of files. Every pair's value is the core's for that pair alone, so blocks change no number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._network import Network, PathLike, load_network
from nnstd._options import Options

FloatArray = npt.NDArray[np.float64]

# Networks' topologies held at once (a block of rows and a block of columns together) when the
# set is read from files. 1 GiB holds about 1,500 networks of four 4,096-wide layers of fan-in
# 8; a set that fits is computed exactly as in memory, in one call.
RESIDENT_BYTES = 1 << 30


@dataclass(frozen=True)
class Resident:
    """A network as the pairs are computed from: its core topology, and its name for messages.
    Nothing else of a network read from a file stays in memory."""

    topology: _core.Topology
    name: str | None

    @property
    def bytes(self) -> int:
        """What the core holds of it: a 4-byte index per connection, 8 bytes per neuron."""
        t = self.topology
        return 4 * sum(t.connections) + 8 * sum(n_out + 1 for _, n_out in t.shapes)


def resident(item: Network | PathLike, position: int) -> Resident:
    """``item``'s topology, loaded from its file if it is a path (a TypeError if it is neither:
    the message names its position)."""
    if isinstance(item, Network):
        return Resident(item._topology, item.name)
    if isinstance(item, (str, os.PathLike)):
        net = load_network(item)
        return Resident(net._topology, net.name)
    raise TypeError(
        f"networks[{position}]: expected a nnstd.Network or a path, got {type(item).__name__}"
    )


def check_comparable(first: Resident, other: Resident, position: int) -> None:
    """The core's comparability rule, its refusal naming both networks."""
    try:
        _core.check_comparable(first.topology, other.topology)
    except TopologyError as exc:
        raise TopologyError(
            f"network {position} against network 0 "
            f"({first.name or 'A'} against {other.name or 'B'}): {exc}"
        ) from None


def block_size(first: Resident, count: int) -> int:
    """Networks per block: all of them while their topologies fit `RESIDENT_BYTES` (the size of
    the first standing for every one), else as many as half of it holds (a block of rows and
    a block of columns are resident together), at least one."""
    each = max(first.bytes, 1)
    if count * each <= RESIDENT_BYTES:
        return count
    return max(1, RESIDENT_BYTES // (2 * each))


def all_pairs(items: Sequence[Network | PathLike], options: Options, ordered: bool) -> FloatArray:
    """``pairwise``'s matrix, ``(n, n, len(layers))``, of networks in memory or read from their
    paths (module docstring)."""
    if not items:
        raise ValueError("pairwise needs at least one network")
    for k, item in enumerate(items):  # refused before any file is read
        if not isinstance(item, (Network, str, os.PathLike)):
            resident(item, k)
    first = resident(items[0], 0)
    chosen = options.select(first.topology.depth)
    depth = max(chosen) + 1
    n = len(items)
    on_disk = any(not isinstance(item, Network) for item in items)
    size = block_size(first, n) if on_disk else n
    total = _core.pair_count(n, ordered)
    progress = options.progress
    counted = _Progress(total, progress)
    if size >= n:
        nets = [first]
        for k in range(1, n):
            nets.append(resident(items[k], k))
            check_comparable(first, nets[k], k)
        result = _core.pairwise(
            [net.topology for net in nets],
            depth=depth,
            solver=options.solver,
            ordered=ordered,
            threads=options.threads,
            progress=counted.within(0),
            memory_budget=options.memory_budget,
        )
    else:
        result = _blocks(items, first, size, depth, options, ordered, counted)
    counted.finish()
    return np.ascontiguousarray(result[:, :, list(chosen)])


class _Progress:
    """Finished pairs over all the calls into the core, as ``progress(done, total)``."""

    def __init__(self, total: int, progress: Callable[[int, int], object] | None) -> None:
        self.total, self.progress = total, progress

    def within(self, before: int) -> Callable[[int], object] | None:
        """What one call into the core reports to, ``before`` pairs having finished earlier."""
        report, total = self.progress, self.total
        if report is None:
            return None
        return lambda done: report(before + done, total)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)


def _blocks(
    items: Sequence[Network | PathLike],
    first: Resident,
    size: int,
    depth: int,
    options: Options,
    ordered: bool,
    counted: _Progress,
) -> FloatArray:
    """The matrix block of rows by block of columns: a block of rows read once and kept while
    every block of columns it pairs with is read in turn (with the paper's convention, only
    the blocks at or below the diagonal: the higher index is A)."""
    n = len(items)
    out = np.zeros((n, n, depth))
    done = 0

    def load(start: int) -> list[Resident]:
        block = []
        for k in range(start, min(start + size, n)):
            net = first if k == 0 else resident(items[k], k)
            check_comparable(first, net, k)
            block.append(net)
        return block

    for r0 in range(0, n, size):
        rows = load(r0)
        for c0 in range(0, n if ordered else r0 + 1, size):
            cols = rows if c0 == r0 else load(c0)
            r, c = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
            keep = np.ones(r.shape, dtype=bool) if ordered else r0 + r > c0 + c
            pairs = np.stack([r[keep], c[keep]], axis=1).astype(np.int64)
            if not len(pairs):
                continue
            nets = rows if cols is rows else rows + cols
            if cols is not rows:
                pairs[:, 1] += len(rows)
            values = _core.pairs(
                [net.topology for net in nets],
                pairs,
                depth=depth,
                solver=options.solver,
                threads=options.threads,
                progress=counted.within(done),
                memory_budget=options.memory_budget,
            )
            i, j = r0 + r[keep], c0 + c[keep]
            out[i, j] = values
            if not ordered:
                out[j, i] = values
            done += len(pairs)
    return out
