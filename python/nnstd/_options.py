"""The options of every computing function, checked in one place: solver names and the
default solver (defined in the Rust core), the memory budget, threads, layer selection and
whether two networks can be compared. The API, the many-network routes and the command line all
take them from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

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


def check_solver(solver: object) -> str:
    """The solver's own name (``"exact"``, its former name, is ``"paper"``); the core's
    ValueError for a name it does not know."""
    return _core.check_options(solver=solver)[0]


def check_memory_budget(memory_budget: object) -> int | None:
    """``memory_budget`` in bytes as the core takes it: None (the default, 4 GiB) or a whole
    number from 0 to 2**64 - 1 (a float holding one, such as ``1e9``, is accepted); anything
    else is a one-line ValueError."""
    return None if memory_budget is None else byte_count(memory_budget)


def check_threads(threads: object) -> int | None:
    """``threads`` as the core reads it: None or 0 is one per core (None here), 1 to
    ``MAX_THREADS`` (256) that many; anything else is the core's one-line ValueError."""
    return _core.check_options(threads=threads)[2]


def layer_selection(layers: object, depth: int) -> tuple[int, ...]:
    """The requested layer indices, in the order asked: None (all), a whole number or a
    sequence of them (`whole_numbers`: no bools, floats or strings; a TypeError otherwise),
    each an existing layer of networks that report ``depth`` values (the core's rule: a
    TopologyError otherwise)."""
    if layers is None:
        asked = None
    elif is_whole_number(layers):
        asked = [int(layers)]  # type: ignore[call-overload]
    else:
        asked = whole_numbers(layers, "layers", "a layer index or a list of them")
    return tuple(_core.layer_selection(asked, depth))


def check_comparable(a: Network, b: Network, what: str | None = None) -> None:
    """The core's comparability rule (chains: equal depth and input width; graphs: the same
    structure), its refusal naming both networks (and ``what`` compared them)."""
    try:
        _core.check_comparable(a._topology, b._topology)
    except TopologyError as exc:
        pair = f"{a.name or 'A'} against {b.name or 'B'}"
        where = pair if what is None else f"{what} ({pair})"
        raise TopologyError(f"{where}: {exc}") from None
