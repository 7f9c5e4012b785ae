# Hand-written stubs of the native module, checked with `python -m mypy.stubtest nnstd._core`.
from collections.abc import Callable, Sequence
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_THREADS",
    "INDEX_LIMIT",
    "BYTE_LIMIT",
    "SOLVERS",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_SOLVER",
    "TopologyError",
    "Topology",
    "distance",
    "pairwise",
    "pairs",
    "pair_count",
    "assign_exact",
    "check_options",
    "layer_selection",
    "check_comparable",
]

MAX_THREADS: int
INDEX_LIMIT: int
BYTE_LIMIT: int
SOLVERS: tuple[str, ...]
DEFAULT_SOLVER: str
DEFAULT_MEMORY_BUDGET: int

class TopologyError(ValueError):
    """A topology that cannot be read or compared; the message names the layer and the problem."""

@final
class Topology:
    """The binary topology of a network, layer by layer, in compressed sparse column form."""

    def __new__(
        cls,
        layers: Sequence[tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64], int]],
    ) -> Topology: ...
    @staticmethod
    def graph(
        groups: Sequence[tuple[int, str, int, int | None]],
        writers: Sequence[
            tuple[
                int,
                Sequence[tuple[int, int]],
                tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64], int],
            ]
        ],
        fixed_outputs: bool = False,
    ) -> Topology: ...
    @property
    def shapes(self) -> list[tuple[int, int]]: ...
    @property
    def connections(self) -> list[int]: ...
    @property
    def depth(self) -> int: ...

def distance(
    a: Topology,
    b: Topology,
    depth: int | None = None,
    solver: str | None = None,
    memory_budget: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    list[npt.NDArray[np.int64]],
    list[str],
]: ...
def pairwise(
    networks: Sequence[Topology],
    depth: int | None = None,
    solver: str | None = None,
    ordered: bool = False,
    threads: object = None,
    progress: Callable[[int], object] | None = None,
    memory_budget: int | None = None,
) -> npt.NDArray[np.float64]: ...
def pairs(
    networks: Sequence[Topology],
    pairs: npt.NDArray[np.int64],
    depth: int | None = None,
    solver: str | None = None,
    threads: object = None,
    progress: Callable[[int], object] | None = None,
    memory_budget: int | None = None,
) -> npt.NDArray[np.float64]: ...
def pair_count(n: int, ordered: bool = False) -> int: ...
def assign_exact(
    n_rows: int,
    n_cols: int,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    dense: bool = False,
) -> npt.NDArray[np.int64]: ...
def check_options(
    solver: object = None, memory_budget: int | None = None, threads: object = None
) -> tuple[str, int, int | None]: ...
def layer_selection(layers: Sequence[int] | None, depth: int) -> list[int]: ...
def check_comparable(a: Topology, b: Topology) -> None: ...
