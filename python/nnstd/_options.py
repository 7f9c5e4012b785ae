"""The options of every computing function, checked in one place: solver names and the
default solver (defined in the Rust core), the memory budget, threads, layer selection and
whether two networks can be compared. The API, the many-network routes and the command line all
take them from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import numpy as np

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._loaders import byte_count, is_whole_number, whole_numbers
from nnstd._network import Network

Solver = Literal["canonical", "auto", "paper", "exact", "sparse", "dense"]
#: Every solver name (defined once, in the Rust core); "exact" is the paper mode's former name.
SOLVERS: tuple[str, ...] = _core.SOLVERS
#: The solver used when none is named (the core defines it).
DEFAULT_SOLVER: str = _core.DEFAULT_SOLVER
DEFAULT_MEMORY_BUDGET: int = _core.DEFAULT_MEMORY_BUDGET
Layers: TypeAlias = int | Sequence[int] | None


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")


def check_memory_budget(memory_budget: object) -> int | None:
    """``memory_budget`` in bytes as the core takes it: None (the default, 4 GiB) or a whole
    number from 0 to 2**64 - 1 (a float holding one, such as ``1e9``, is accepted); anything
    else is a one-line ValueError."""
    return None if memory_budget is None else byte_count(memory_budget)


def check_threads(threads: object) -> int | None:
    """``threads`` as the core takes it: None or 0 (one per core, as ``--threads 0`` on the
    command line) or a whole number from 1 to ``MAX_THREADS`` (256); anything else is a
    one-line ValueError."""
    if threads is None:
        return None
    if (
        isinstance(threads, (bool, np.bool_))
        or not isinstance(threads, (int, np.integer))
        or not 0 <= threads <= _core.MAX_THREADS
    ):
        raise ValueError(
            f"threads must be a whole number from 1 to {_core.MAX_THREADS} "
            f"(or 0 or None: one per core), got {threads!r}"
        )
    return int(threads) or None


def layer_selection(layers: object, depth: int) -> tuple[int, ...]:
    """The requested layer indices, validated against the network depth: None (all), a whole
    number or a sequence of them (`whole_numbers`: no bools, floats or strings; a TypeError
    otherwise), each an existing layer (a TopologyError otherwise)."""
    if layers is None:
        return tuple(range(depth))
    if is_whole_number(layers):
        chosen = [int(layers)]  # type: ignore[call-overload]
    else:
        chosen = whole_numbers(layers, "layers", "a layer index or a list of them")
    for k in chosen:
        if not 0 <= k < depth:
            raise TopologyError(
                f"layer {k} does not exist: the networks have layers 0..{depth - 1}"
            )
    if not chosen:
        raise ValueError("layers must name at least one layer")
    return tuple(chosen)


def check_comparable(a: Network, b: Network, what: str) -> None:
    if a.is_graph or b.is_graph:
        return  # the core compares graphs' structures (and refuses a chain against a graph)
    if a.depth != b.depth:
        raise TopologyError(
            f"{what}: networks of different depth ({a.name or 'A'}: {a.depth} layers, "
            f"{b.name or 'B'}: {b.depth} layers)"
        )
    if a.shapes[0][0] != b.shapes[0][0]:
        raise TopologyError(
            f"{what}: networks of different input width ({a.name or 'A'}: {a.shapes[0][0]}, "
            f"{b.name or 'B'}: {b.shapes[0][0]})"
        )
