"""Networks as graphs of permutation groups: the spec.

See docs/definition.md#graphs-of-permutation-groups.

A *group* is a set of units renamed together. Where its units sit in the model's tensors is
said by *slots*: a writer's rows (the layer's outputs, axis 0 of its weight), a reader's
columns (the layer's inputs, axis 1), a follower's entries (a bias, BatchNorm or LayerNorm
parameters and statistics, axis 0). A `Spec` lists the groups in the order NNSTD matches them;
`nnstd.torch.spec` builds one by tracing a module, `Spec.from_dict` reads one written by hand
(format in docs/inputs.md#graph-specs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
import scipy.sparse as sp

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._loaders import DEFAULT_LOAD_BUDGET, connection_pattern, one_line, open_regular
from nnstd._network import Network

__all__ = ["GraphNetwork", "Group", "Slot", "Spec"]

# A spec file is a few kilobytes per hundred groups; a file far larger is not one.
SPEC_FILE_LIMIT = 64 << 20

Kind = Literal["input", "hidden", "output"]
KINDS: tuple[Kind, ...] = ("input", "hidden", "output")


@dataclass(frozen=True)
class Slot:
    """Where a group's units sit in one tensor.

    ``tensor`` is a parameter's name as ``model.named_parameters()`` / ``named_buffers()`` give
    it for an unpruned model (``layer1.0.conv1.weight``; pruning masks and parametrizations are
    resolved when the tensors are read). Unit ``u`` of the group is the entries
    ``offset + u * block ... offset + (u + 1) * block - 1`` along ``axis`` (``block`` > 1 for a
    linear layer reading a flattened feature map: one unit is a channel of ``H * W`` inputs).
    """

    tensor: str
    axis: int = 0
    offset: int = 0
    block: int = 1

    def describe(self, size: int) -> str:
        """``tensor[start:end]`` (rows) or ``tensor[:, start:end]`` (columns) for ``size``
        units."""
        end = self.offset + size * self.block
        text = f"{self.tensor}[{'' if self.axis == 0 else ':, '}{self.offset}:{end}]"
        return text + (f" ({self.block} per unit)" if self.block != 1 else "")


@dataclass(frozen=True)
class Group:
    """A set of ``size`` units renamed together.

    ``kind``: ``"input"`` units are the data's features (never renamed; a layer may still
    write into them, as a transformer's residual stream fed by its input), ``"output"`` units
    are the model's outputs, ``"hidden"`` the rest. ``heads`` > 1: the units are ``heads``
    blocks (attention heads) of ``size // heads`` units, renamed block-wise first; groups with
    the same ``head_set`` (a head's query/key units and its value units) share the renaming
    of their blocks. ``writers`` write the units (axis 0 of a weight), ``readers`` read them
    (axis 1), ``followers`` hold one value per unit (axis 0 of a bias or a norm's parameter).
    """

    name: str
    size: int
    kind: Kind = "hidden"
    writers: tuple[Slot, ...] = ()
    readers: tuple[Slot, ...] = ()
    followers: tuple[Slot, ...] = ()
    heads: int = 1
    head_set: str | None = None

    def __str__(self) -> str:
        head = f", {self.heads} heads of {self.size // self.heads}" if self.heads > 1 else ""
        head += f" (head set {self.head_set})" if self.head_set else ""
        lines = [f"{self.name}: {self.kind}, {self.size} units{head}"]
        for label, slots in (
            ("written by", self.writers),
            ("read by", self.readers),
            ("followers", self.followers),
        ):
            if slots:
                lines.append(f"    {label}: " + ", ".join(s.describe(self.size) for s in slots))
        return "\n".join(lines)


@dataclass(frozen=True)
class Spec:
    """A network as groups of units renamed together, in the order NNSTD matches them.

    ``groups`` come in matching order (docs/definition.md#graph-matching-order); the input
    groups first. ``source`` names the model in error messages.
    """

    groups: tuple[Group, ...]
    source: str = "spec"
    _by_name: dict[str, Group] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        object.__setattr__(self, "_by_name", {g.name: g for g in self.groups})

    def __getitem__(self, name: str) -> Group:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.source}: no group named {name!r}") from None

    def __len__(self) -> int:
        return len(self.groups)

    def __str__(self) -> str:
        header = f"{self.source}: {len(self.groups)} groups, in matching order"
        body = [f"{k}. {g}" for k, g in enumerate(self.groups)]
        return "\n".join([header, *body])

    def layers(self) -> dict[str, tuple[str, ...]]:
        """Each written tensor and the groups its writers read (its axis 1), in order."""
        reads: dict[str, list[str]] = {}
        for group in self.groups:
            for slot in group.readers:
                names = reads.setdefault(slot.tensor, [])
                if group.name not in names:
                    names.append(group.name)
        return {
            slot.tensor: tuple(reads.get(slot.tensor, ()))
            for group in self.groups
            for slot in group.writers
        }

    def to_dict(self) -> dict[str, Any]:
        """The spec in the format `from_dict` reads (JSON-able)."""

        def slots(items: Iterable[Slot]) -> list[Any]:
            out: list[Any] = []
            for s in items:
                if s.offset == 0 and s.block == 1:
                    out.append(s.tensor)
                else:
                    entry: dict[str, Any] = {"tensor": s.tensor}
                    if s.offset:
                        entry["offset"] = s.offset
                    if s.block != 1:
                        entry["block"] = s.block
                    out.append(entry)
            return out

        groups = []
        for g in self.groups:
            entry: dict[str, Any] = {"name": g.name, "size": g.size, "kind": g.kind}
            for key, items in (
                ("writers", g.writers),
                ("readers", g.readers),
                ("followers", g.followers),
            ):
                if items:
                    entry[key] = slots(items)
            if g.heads > 1:
                entry["heads"] = g.heads
            if g.head_set is not None:
                entry["head_set"] = g.head_set
            groups.append(entry)
        return {"groups": groups}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the spec as JSON (`to_dict`'s format), for `load`, ``nnstd.torch.to_network(
        state, spec=...)`` and the command line's ``--spec FILE``.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from nnstd.torch import Spec
        >>> spec = Spec.from_dict({"groups": [
        ...     {"name": "x", "size": 3, "kind": "input", "readers": ["fc.weight"]},
        ...     {"name": "fc", "size": 2, "kind": "output", "writers": ["fc.weight"]}]})
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "spec.json"
        >>> spec.save(path)
        >>> Spec.load(path).groups == spec.groups
        True
        """
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Spec:
        """A spec from a JSON file in `to_dict`'s format (written by `save`, or by hand);
        a file that is not one is a `TopologyError` naming it."""
        file = Path(path)
        with open_regular(file) as handle:
            data = handle.read(SPEC_FILE_LIMIT + 1)
        if len(data) > SPEC_FILE_LIMIT:
            raise TopologyError(f"{file}: over {SPEC_FILE_LIMIT >> 20} MiB, not a spec file")
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise TopologyError(f"{file}: not a JSON spec ({one_line(exc)})") from None
        return cls.from_dict(parsed, str(file))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "spec") -> Spec:
        """A spec written by hand (docs/inputs.md#graph-specs); the groups are put in
        matching order.

        Examples
        --------
        >>> from nnstd.torch import Spec
        >>> spec = Spec.from_dict({"groups": [
        ...     {"name": "x", "size": 3, "kind": "input", "readers": ["fc1.weight"]},
        ...     {"name": "fc1", "size": 4, "writers": ["fc1.weight"], "readers": ["fc2.weight"],
        ...      "followers": ["fc1.bias"]},
        ...     {"name": "fc2", "size": 2, "kind": "output", "writers": ["fc2.weight"]}]})
        >>> [g.name for g in spec.groups]
        ['x', 'fc1', 'fc2']
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("groups"), Sequence):
            raise TopologyError(f"{source}: a spec is a mapping with a list under 'groups'")
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise TopologyError(f"{source}: unknown keys {sorted(unknown)} in a spec")
        groups = [_group_from_dict(entry, k, source) for k, entry in enumerate(data["groups"])]
        return cls(tuple(matching_order(groups, source)), source)

    def check(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Checks the spec against a model's tensors (``name -> shape``, as
        ``named_parameters``/``named_buffers`` name them): every slot fits its tensor, every
        weight's rows are written by exactly one group and its columns read exactly once, and
        every tensor of two or more dimensions is some group's writer.

        Raises
        ------
        TopologyError
            Naming the tensor and the group.
        """
        _check_against(self, shapes)


_SPEC_KEYS = {"groups"}
_SLOT_KEYS = {"tensor", "offset", "block"}
_GROUP_KEYS = {"name", "size", "kind", "writers", "readers", "followers", "heads", "head_set"}


def _is_count(value: Any) -> TypeGuard[int]:
    """An integer written as one: JSON ``true`` is not 1 unit (bool is an int subclass)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _slot_from(value: Any, axis: int, where: str) -> Slot:
    if isinstance(value, str):
        return Slot(value, axis)
    if isinstance(value, Mapping) and isinstance(value.get("tensor"), str):
        unknown = set(value) - _SLOT_KEYS
        if unknown:
            raise TopologyError(f"{where}: unknown keys {sorted(unknown)} in a slot")
        return Slot(value["tensor"], axis, value.get("offset", 0), value.get("block", 1))
    raise TopologyError(
        f"{where}: a slot is a tensor name or {{'tensor': name, 'offset': n, 'block': n}}, "
        f"got {value!r}"
    )


def _group_from_dict(entry: Any, k: int, source: str) -> Group:
    where = f"{source}: group {k}"
    if not isinstance(entry, Mapping):
        raise TopologyError(f"{where} is not a mapping")
    unknown = set(entry) - _GROUP_KEYS
    if unknown:
        raise TopologyError(f"{where}: unknown keys {sorted(unknown)}")
    name, kind = entry.get("name"), entry.get("kind", "hidden")
    size: Any = entry.get("size")  # checked with the other values, in _validate
    if not isinstance(name, str) or not name:
        raise TopologyError(f"{where}: 'name' must be a non-empty string")
    where = f"{source}: group {name!r}"
    slots = {}
    for key, axis in (("writers", 0), ("readers", 1), ("followers", 0)):
        items = entry.get(key, [])
        if isinstance(items, (str, Mapping)) or not isinstance(items, Sequence):
            raise TopologyError(f"{where}: '{key}' must be a list")
        slots[key] = tuple(_slot_from(item, axis, where) for item in items)
    heads, head_set = entry.get("heads", 1), entry.get("head_set")
    return Group(
        name, size, kind, slots["writers"], slots["readers"], slots["followers"], heads, head_set
    )


def _validate(spec: Spec) -> None:
    """What a spec must satisfy whatever the model: unique names, heads that divide the
    size, head sets of one head count, each tensor's rows written by one group only."""
    source, seen = spec.source, set()
    for g in spec.groups:
        _check_values(g, source)
        if g.name in seen:
            raise TopologyError(f"{source}: two groups are named {g.name!r}")
        seen.add(g.name)
        if g.size % g.heads:
            raise TopologyError(
                f"{source}: group {g.name!r} has {g.size} units, not a multiple of its "
                f"{g.heads} heads"
            )
        if g.kind == "input" and g.heads > 1:
            raise TopologyError(f"{source}: input group {g.name!r} cannot have heads")
        if g.kind != "input" and not g.writers:
            # Its units would be matched arbitrarily, and its readers compared through that.
            raise TopologyError(
                f"{source}: group {g.name!r} is {g.kind} but no layer writes it (name its "
                f"writers, or make it an input group: the data's features)"
            )
        if not g.writers and not g.readers:
            raise TopologyError(f"{source}: group {g.name!r}: no layer reads or writes it")
    head_sets: dict[str, int] = {}
    for g in spec.groups:
        if g.head_set is not None and head_sets.setdefault(g.head_set, g.heads) != g.heads:
            raise TopologyError(
                f"{source}: head set {g.head_set!r} joins groups of {head_sets[g.head_set]} "
                f"and {g.heads} heads"
            )
    _check_rows(spec)


def _check_values(g: Group, source: str) -> None:
    """A group's fields have their types and ranges (`Spec.from_dict` checks only the layout
    of the mapping; a `Spec` built in Python is checked here too)."""
    if not isinstance(g.name, str) or not g.name:
        raise TopologyError(f"{source}: a group's 'name' must be a non-empty string")
    where = f"{source}: group {g.name!r}"
    if not _is_count(g.size) or g.size <= 0:
        raise TopologyError(f"{where}: 'size' must be a positive integer, got {g.size!r}")
    if g.kind not in KINDS:
        raise TopologyError(f"{where}: 'kind' must be one of {KINDS}, got {g.kind!r}")
    if not _is_count(g.heads) or g.heads <= 0:
        raise TopologyError(f"{where}: 'heads' must be a positive integer, got {g.heads!r}")
    if g.head_set is not None and not isinstance(g.head_set, str):
        raise TopologyError(f"{where}: 'head_set' must be a string")
    for s in (*g.writers, *g.readers, *g.followers):
        if not isinstance(s.tensor, str):
            raise TopologyError(f"{where}: a slot's tensor must be a name, got {s.tensor!r}")
        if not (_is_count(s.offset) and s.offset >= 0 and _is_count(s.block) and s.block > 0):
            raise TopologyError(
                f"{where}: offset must be >= 0 and block > 0, got offset {s.offset!r} and "
                f"block {s.block!r} in {s.tensor}"
            )


def _check_rows(spec: Spec) -> None:
    """No two writer slots overlap (a row is one unit of one group), nor two reader slots,
    nor two follower slots (an entry holds one unit's value)."""
    for attribute, what in (("writers", "rows"), ("readers", "columns"), ("followers", "entries")):
        spans: dict[str, list[tuple[int, int, str]]] = {}
        for g in spec.groups:
            for s in getattr(g, attribute):
                spans.setdefault(s.tensor, []).append(
                    (s.offset, s.offset + g.size * s.block, g.name)
                )
        for tensor, items in spans.items():
            items.sort()
            for (_, end, first), (start, _, second) in zip(items, items[1:], strict=False):
                if start < end:
                    raise TopologyError(
                        f"{spec.source}: {tensor}: groups {first!r} and {second!r} both claim "
                        f"{what} {start}..{end - 1}"
                    )


def matching_order(groups: Sequence[Group], source: str) -> list[Group]:
    """The groups in the order NNSTD matches them (docs/definition.md#graph-matching-order).

    Input groups first (they are never renamed). Then, repeatedly, the first group (in the
    order given) whose writers read only groups already placed; when none is (a residual
    stream read by a block that writes back into it), the first group not yet placed.
    """
    reads: dict[str, set[str]] = {}
    for g in groups:
        for s in g.readers:
            reads.setdefault(s.tensor, set()).add(g.name)
    placed: list[Group] = [g for g in groups if g.kind == "input"]
    known = {g.name for g in placed}
    waiting = [g for g in groups if g.kind != "input"]
    while waiting:
        ready = next(
            (g for g in waiting if all(reads.get(s.tensor, set()) <= known for s in g.writers)),
            waiting[0],
        )
        waiting.remove(ready)
        placed.append(ready)
        known.add(ready.name)
    return placed


# Checks against a model's tensors -------------------------------------------------------------


def _check_against(spec: Spec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    source = spec.source
    rows: dict[str, int] = {}
    cols: dict[str, int] = {}
    for g in spec.groups:
        for s in (*g.writers, *g.readers, *g.followers):
            shape = shapes.get(s.tensor)
            if shape is None:
                raise TopologyError(
                    f"{source}: group {g.name!r} names {s.tensor}, not a tensor of the model"
                )
            if len(shape) <= s.axis:
                raise TopologyError(
                    f"{source}: group {g.name!r}: {s.tensor} has shape {shape}, no axis {s.axis}"
                )
            end = s.offset + g.size * s.block
            if end > shape[s.axis]:
                raise TopologyError(
                    f"{source}: group {g.name!r}: {s} needs {end} entries along axis {s.axis} "
                    f"of {s.tensor}, which has shape {shape}"
                )
        for s in g.writers:
            if len(shapes[s.tensor]) < 2:
                raise TopologyError(
                    f"{source}: group {g.name!r}: writer {s.tensor} is not a weight "
                    f"(fewer than 2 axes)"
                )
            rows[s.tensor] = rows.get(s.tensor, 0) + g.size
        for s in g.readers:
            cols[s.tensor] = cols.get(s.tensor, 0) + g.size * s.block
    for tensor, shape in shapes.items():
        if len(shape) < 2:
            continue
        if tensor not in rows:
            raise TopologyError(
                f"{source}: {tensor} (shape {shape}) is no group's writer: the spec leaves a "
                f"layer unread"
            )
        if rows[tensor] != shape[0]:
            raise TopologyError(
                f"{source}: the groups write {rows[tensor]} of the {shape[0]} rows of {tensor}"
            )
        if cols.get(tensor, 0) != shape[1]:
            raise TopologyError(
                f"{source}: the groups read {cols.get(tensor, 0)} of the {shape[1]} columns "
                f"(inputs) of {tensor}"
            )
    for tensor in cols:
        if tensor not in rows:
            raise TopologyError(f"{source}: {tensor} is read from but no group writes it")


# Graph networks ---------------------------------------------------------------------------------


class GraphNetwork(Network):
    """A network as a graph of permutation groups, which `nnstd.distance`, `pairwise`,
    `cross`, `to_reference`, the store and Dask compare group by group
    (docs/definition.md#graphs-of-permutation-groups).

    Made by `nnstd.torch.to_network` with ``example_inputs`` (or ``spec=``) for a model that is
    not a plain chain. ``groups`` names the groups that report a distance
    (``Distance.layers[k]`` is ``groups[k]``'s), ``spec`` is the full `Spec`. Routes that read
    layers one by one (`nnstd.align`, `nnstd.alignment`, `overlap`) refuse a graph, naming
    `nnstd.torch.align`, which renames a model's groups.
    """

    is_graph = True

    def __init__(
        self, spec: Spec, groups: list[Any], writers: list[Any], name: str, fixed_outputs: bool
    ) -> None:
        self.name = name
        self.spec = spec
        self.fixed_outputs = fixed_outputs
        # What the native topology is built from (kept: it identifies the network in a store,
        # and rebuilds it where the network is unpickled, on a Dask worker).
        self._groups, self._writers = groups, writers
        self._topology = _core.Topology.graph(groups, writers, fixed_outputs)
        self.groups = tuple(g.name for g in spec.groups if g.writers)

    def __reduce__(self) -> tuple[Any, ...]:
        # The native topology does not pickle; what it is built from does.
        return (
            GraphNetwork,
            (self.spec, self._groups, self._writers, self.name, self.fixed_outputs),
        )

    def content_key(self) -> bytes:
        """Bytes that identify the network's structure and connections, whatever its name:
        the spec (groups, slots, heads), whether outputs are fixed, and every writer's
        connection pattern. A store keys its tiles by them."""
        structure = {"spec": self.spec.to_dict(), "fixed_outputs": self.fixed_outputs}
        parts = [json.dumps(structure, sort_keys=True).encode()]
        for group, reads, (n_in, n_out, indptr, indices, block) in self._writers:
            parts.append(np.array([group, n_in, n_out, block], dtype=np.int64).tobytes())
            parts.append(np.array(reads, dtype=np.int64).tobytes())
            parts.append(np.ascontiguousarray(indptr, dtype=np.int64).tobytes())
            parts.append(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
        return b"".join(len(p).to_bytes(8, "little") + p for p in parts)

    def _refuse(self, what: str) -> TopologyError:
        return TopologyError(
            f"{self.name}: {what} needs a chain of layers, and this network is a graph of "
            f"permutation groups; nnstd.distance, pairwise, cross and to_reference compare "
            f"graphs"
        )

    @property
    def depth(self) -> int:
        """The number of groups that report a distance."""
        return len(self.groups)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        raise self._refuse("reading its layers' shapes")

    @property
    def connections(self) -> list[int]:
        """The number of connections of every writer, in matching order."""
        return list(self._topology.connections)

    @property
    def input_groups(self) -> tuple[int, ...]:  # type: ignore[override]
        raise self._refuse("reading its layers' input groups")

    @property
    def _patterns(self) -> list[sp.csc_array]:  # type: ignore[override]
        raise self._refuse("this route")

    def layer(self, k: int) -> sp.csc_array:
        raise self._refuse("reading a layer")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{g.name}: {g.size}" for g in self.spec.groups if g.writers)
        return f"GraphNetwork({self.name!r}, groups=[{sizes}])"


def _reads(spec: Spec, tensor: str, columns: int, kernel: int) -> list[tuple[int, int]]:
    """``(group index, columns per unit)`` of the groups ``tensor`` reads, in column order;
    they must cover its columns without a gap."""
    slots = sorted(
        (s.offset, k, s.block, g.size)
        for k, g in enumerate(spec.groups)
        for s in g.readers
        if s.tensor == tensor
    )
    out, at = [], 0
    for offset, k, block, size in slots:
        if offset != at:
            raise TopologyError(
                f"{spec.source}: the columns of {tensor} from {at} to {offset - 1} are read by "
                f"no group"
            )
        out.append((k, block * kernel))
        at = offset + size * block
    if at != columns:
        raise TopologyError(
            f"{spec.source}: the groups read {at} of the {columns} columns of {tensor}"
        )
    return out


def graph_network(
    spec: Spec,
    weights: Mapping[str, Any],
    *,
    name: str,
    fixed_outputs: bool = False,
    budget: int = DEFAULT_LOAD_BUDGET,
) -> GraphNetwork:
    """The graph network of ``spec`` with the connections of ``weights`` (each writer's weight
    or mask, as PyTorch stores it: ``(out, in, *kernel)``, non-zero entries are connections; a
    numpy array, or a 2-D scipy sparse array as `tensors_to_numpy` reads a sparse tensor)."""
    index = {g.name: k for k, g in enumerate(spec.groups)}
    head_sets: dict[str, int] = {}
    groups = []
    for g in spec.groups:
        head_set = None if g.head_set is None else head_sets.setdefault(g.head_set, len(head_sets))
        groups.append((g.size, g.kind, g.heads, head_set))
    writers = []
    for g in spec.groups:
        for slot in g.writers:
            stored = weights[slot.tensor]
            weight: Any = stored.tocsr() if sp.issparse(stored) else np.asarray(stored)
            kernel = int(np.prod(weight.shape[2:], dtype=np.int64))
            rows = weight[slot.offset : slot.offset + g.size].reshape(g.size, -1)
            where = f"{name} ({slot.tensor}, rows {slot.offset}:{slot.offset + g.size})"
            pattern = connection_pattern(rows.T, where, budget)
            reads = _reads(spec, slot.tensor, weight.shape[1], kernel)
            buffers = (
                pattern.shape[0],
                pattern.shape[1],
                pattern.indptr.astype(np.int64, copy=False),
                pattern.indices.astype(np.int64, copy=False),
                1,
            )
            writers.append((index[g.name], reads, buffers))
    return GraphNetwork(spec, groups, writers, name, fixed_outputs)
