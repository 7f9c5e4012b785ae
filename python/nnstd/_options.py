"""The options of every computing function, in one place: the public keywords (solver,
memory budget, threads, layers, progress) become one frozen `Options`, checked once by the
core's rules when built (`Options.of`) and passed as one value through the internal functions
(the API, the many-network engine, its tiles, Dask and the store). The rules themselves (solver
names and the default, the memory budget's default, the thread limit, which layers exist,
which networks compare) are the Rust core's, exported through ``nnstd._core``; this module
only converts units and types and adds file names to the core's messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, cast

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._loaders import byte_count, is_whole_number, whole_numbers
from nnstd._network import Network

#: The solver names as a type (a test checks them against the core's list, ``_core.SOLVERS``).
Solver = Literal["canonical", "auto", "paper", "exact", "sparse", "dense"]
#: Every solver name (defined once, in the Rust core); "exact" is the paper mode's former name.
SOLVERS: tuple[str, ...] = _core.SOLVERS
#: The solver used when none is named (the core defines it; every signature's default).
DEFAULT_SOLVER: Solver = cast(Solver, _core.DEFAULT_SOLVER)
DEFAULT_MEMORY_BUDGET: int = _core.DEFAULT_MEMORY_BUDGET
Layers: TypeAlias = int | Sequence[int] | None
Progress: TypeAlias = Callable[[int, int], object] | None


@dataclass(frozen=True)
class Options:
    """How one computation runs, checked once (`Options.of`) by the core's rules.

    Attributes
    ----------
    solver
        The solver's own name (``"exact"``, its former name, becomes ``"paper"``).
    memory_budget
        Bytes one layer's cost representation may take (the default filled in: 4 GiB).
    threads
        Worker threads; None is one per core (what ``threads=0`` asks for too).
    layers
        The layers asked for, as whole numbers (None: all); `select` checks them against the
        networks' depth.
    progress
        Called as ``progress(done, total)`` while the work runs, or None.
    """

    solver: str = DEFAULT_SOLVER
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    threads: int | None = None
    layers: tuple[int, ...] | None = None
    progress: Progress = None

    @classmethod
    def of(
        cls,
        *,
        solver: object = DEFAULT_SOLVER,
        memory_budget: object = None,
        threads: object = None,
        layers: object = None,
        progress: Progress = None,
    ) -> Options:
        """The options from the public keywords, refused before any work: an unknown solver,
        a thread count out of range or a budget that is no byte count is a ValueError, layers
        that are no whole numbers a TypeError."""
        budget = None if memory_budget is None else byte_count(memory_budget)
        name, resolved, count = _core.check_options(solver, budget, threads)
        return cls(name, resolved, count, asked_layers(layers), progress)

    def select(self, depth: int) -> tuple[int, ...]:
        """The layers to report of networks that report ``depth`` values, in the order asked;
        a TopologyError for a layer that does not exist (the core's rule)."""
        return tuple(_core.layer_selection(self.layers, depth))


def check_threads(threads: object) -> int | None:
    """``threads`` as the core reads it: None or 0 is one per core (None here), 1 to
    ``MAX_THREADS`` (256) that many; anything else is the core's one-line ValueError."""
    return _core.check_options(threads=threads)[2]


def asked_layers(layers: object) -> tuple[int, ...] | None:
    """``layers`` as whole numbers: None (all), a whole number or a sequence of them
    (`whole_numbers`: no bools, floats or strings; a one-line TypeError otherwise)."""
    if layers is None:
        return None
    if is_whole_number(layers):
        return (int(layers),)  # type: ignore[call-overload]
    return tuple(whole_numbers(layers, "layers", "a layer index or a list of them"))


def layer_selection(layers: object, depth: int) -> tuple[int, ...]:
    """The requested layer indices (`asked_layers`), each an existing layer of networks that
    report ``depth`` values (the core's rule: a TopologyError otherwise)."""
    return Options(layers=asked_layers(layers)).select(depth)


def check_comparable(a: Network, b: Network, what: str | None = None) -> None:
    """The core's comparability rule (chains: equal depth and input width; graphs: the same
    structure), its refusal naming both networks (and ``what`` compared them)."""
    try:
        _core.check_comparable(a._topology, b._topology)
    except TopologyError as exc:
        pair = f"{a.name or 'A'} against {b.name or 'B'}"
        where = pair if what is None else f"{what} ({pair})"
        raise TopologyError(f"{where}: {exc}") from None
