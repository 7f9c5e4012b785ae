"""All pairs of many networks, in memory bounded by their compact form.

`nnstd.pairwise` without a store or cluster comes here. Networks given in memory are one call
into the core. A network given as a path is read once (one file at a time) and kept only as the
core's topology (about 4 bytes a connection): the `Network` the loader builds, with its
Python-side copy of every layer, and the file's dense arrays are dropped as soon as the
topology exists. Files are read on a thread of their own (`_Reader`), ahead of the core, which
meanwhile computes the pairs of the networks already read: reading a checkpoint is mostly
waiting on the disk, and overlapped it costs the run little. While all the networks'
topologies fit in `RESIDENT_BYTES`, each is read once; past it, the matrix is computed in
blocks of networks, a block's files read again for each block of pairs it is in, so that
memory stays bounded whatever the number of files. Every pair's value is the core's for that
pair alone (the canonical mode prepares a network the same way in any call, in a few
milliseconds), so neither the order of the calls nor the blocks change a number.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._network import Network, PathLike, load_network
from nnstd._options import Options

FloatArray = npt.NDArray[np.float64]

# Networks' topologies held at once when the set is read from files (in blocks: a block of
# rows, one of columns and the next one being read). 1 GiB holds about 1,600 networks of four
# 4,096-wide layers of fan-in 8.
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
    the first standing for every one), else as many as a third of it holds (a block of rows, a
    block of columns and the next block being read are resident together), at least one."""
    each = max(first.bytes, 1)
    if count * each <= RESIDENT_BYTES:
        return count
    return max(1, RESIDENT_BYTES // (3 * each))


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
    run = _Run(first, len(items), max(chosen) + 1, options, ordered)
    if all(isinstance(item, Network) for item in items):
        result = run.in_memory(items)
    else:
        size = block_size(first, len(items))
        result = run.growing(items) if size >= len(items) else run.blocks(items, size)
    if options.progress is not None:
        options.progress(run.total, run.total)
    return np.ascontiguousarray(result[:, :, list(chosen)])


class _Reader:
    """Networks read from ``items`` at ``order``'s positions, in that order, on a thread of its
    own, at most ``ahead`` of them read and not yet taken. Each is checked comparable with
    ``first`` (position 0 is ``first`` itself, not read again). A failure is kept and raised
    in the caller's thread by `take` or `check`."""

    def __init__(
        self, items: Sequence[Network | PathLike], order: list[int], first: Resident, ahead: int
    ) -> None:
        self._items, self._order, self._first = items, order, first
        self._ahead = max(ahead, 1)
        self._ready: list[Resident] = []
        self._error: BaseException | None = None
        self._stopped = False
        self._left = len(order)  # positions not yet taken
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="nnstd-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for k in self._order:
                with self._changed:
                    while len(self._ready) >= self._ahead and not self._stopped:
                        self._changed.wait()
                    if self._stopped:
                        return
                net = self._first if k == 0 else resident(self._items[k], k)
                check_comparable(self._first, net, k)
                with self._changed:
                    self._ready.append(net)
                    self._changed.notify_all()
        except BaseException as exc:  # raised in the caller's thread
            with self._changed:
                self._error = exc
                self._changed.notify_all()

    def check(self) -> None:
        """Raises what reading failed with, if it did."""
        if self._error is not None:
            raise self._error

    def take(self, count: int | None = None) -> list[Resident]:
        """The next ``count`` networks (None: all read so far, at least one), waiting for them."""
        want = 1 if count is None else count
        with self._changed:
            while len(self._ready) < min(want, self._left):
                self.check()
                self._changed.wait(0.2)  # a timeout: Ctrl-C is seen while waiting
            taken = self._ready if count is None else self._ready[:count]
            self._ready = [] if count is None else self._ready[count:]
            self._left -= len(taken)
            self._changed.notify_all()
        return taken

    def close(self) -> None:
        """Stops reading (the file being read is finished first) and waits for the thread."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join()


class _Run:
    """One matrix being filled by calls into the core, each on some of the networks."""

    def __init__(
        self, first: Resident, n: int, depth: int, options: Options, ordered: bool
    ) -> None:
        self.first, self.n, self.depth = first, n, depth
        self.options, self.ordered = options, ordered
        self.total = _core.pair_count(n, ordered)
        self.done = 0
        self.reader: _Reader | None = None

    def in_memory(self, items: Sequence[Network | PathLike]) -> FloatArray:
        """Networks the caller holds: one call (each network prepared once)."""
        nets = [self.first]
        for k in range(1, self.n):
            nets.append(resident(items[k], k))
            check_comparable(self.first, nets[k], k)
        return _core.pairwise(
            [net.topology for net in nets],
            depth=self.depth,
            solver=self.options.solver,
            ordered=self.ordered,
            threads=self.options.threads,
            progress=self._report(),
            memory_budget=self.options.memory_budget,
        )

    def growing(self, items: Sequence[Network | PathLike]) -> FloatArray:
        """Every network read once: each call computes the pairs of the networks read since the
        previous one with all those read before (and among themselves)."""
        out = np.zeros((self.n, self.n, self.depth))
        self.reader = _Reader(items, list(range(1, self.n)), self.first, self.n)
        try:
            nets: list[Resident] = []
            new = [self.first]
            while True:
                old = len(nets)
                nets += new
                i, j = np.meshgrid(np.arange(len(nets)), np.arange(len(nets)), indexing="ij")
                keep = np.maximum(i, j) >= old if self.ordered else (i >= old) & (j < i)
                self._compute(out, nets, i[keep], j[keep], np.arange(len(nets)))
                if len(nets) == self.n:
                    return out
                new = self.reader.take()
        finally:
            self.reader.close()

    def blocks(self, items: Sequence[Network | PathLike], size: int) -> FloatArray:
        """Block of rows by block of columns: a block of rows read and kept while each block of
        columns it pairs with is read in turn (the paper's convention: the blocks at or below
        the diagonal, the higher index as A), the next block read while one is computed."""
        out = np.zeros((self.n, self.n, self.depth))
        starts = range(0, self.n, size)
        # Each block of rows with its column blocks, its own (the diagonal) first: its
        # networks are the rows themselves.
        plan = [
            (r0, [r0, *(c0 for c0 in starts if c0 != r0 and (self.ordered or c0 < r0))])
            for r0 in starts
        ]
        order = [k for _, cols in plan for c0 in cols for k in range(c0, min(c0 + size, self.n))]
        self.reader = _Reader(items, order, self.first, size)
        try:
            for r0, cols in plan:
                rows = self.reader.take(min(size, self.n - r0))
                for c0 in cols:
                    block = rows if c0 == r0 else self.reader.take(min(size, self.n - c0))
                    nets = rows if c0 == r0 else rows + block
                    i, j = np.meshgrid(np.arange(len(rows)), np.arange(len(block)), indexing="ij")
                    keep = np.ones(i.shape, dtype=bool) if self.ordered else r0 + i > c0 + j
                    shift = 0 if c0 == r0 else len(rows)
                    positions = np.concatenate(
                        [np.arange(r0, r0 + len(rows))]
                        + ([] if c0 == r0 else [np.arange(c0, c0 + len(block))])
                    )
                    self._compute(out, nets, i[keep], j[keep] + shift, positions)
            return out
        finally:
            self.reader.close()

    def _compute(
        self,
        out: FloatArray,
        nets: list[Resident],
        a: npt.NDArray[np.intp],
        b: npt.NDArray[np.intp],
        positions: npt.NDArray[np.intp],
    ) -> None:
        """The pairs ``(nets[a[p]], nets[b[p]])`` into ``out`` at the networks' ``positions``
        (and their mirror, with the paper's convention)."""
        if not len(a):
            return
        values = _core.pairs(
            [net.topology for net in nets],
            np.stack([a, b], axis=1).astype(np.int64),
            depth=self.depth,
            solver=self.options.solver,
            threads=self.options.threads,
            progress=self._report(),
            memory_budget=self.options.memory_budget,
        )
        rows, cols = positions[a], positions[b]
        out[rows, cols] = values
        if not self.ordered:
            out[cols, rows] = values
        self.done += len(a)

    def _report(self) -> Callable[[int], object] | None:
        """What a call into the core reports its finished pairs to: the caller's progress over
        the whole run, and a failure of the reader (raised there, it stops the call at once)."""
        report, before, total, reader = self.options.progress, self.done, self.total, self.reader
        if report is None and reader is None:
            return None

        def hook(done: int) -> None:
            if reader is not None:
                reader.check()
            if report is not None:
                report(before + done, total)

        return hook
