"""Sets of networks saved at several epochs, in the paper's layout: ``ROOT/<network>/<epoch>/``.

A topology root holds one folder per network (``e5_s0_w0``, ..., or any names); each holds one
folder per snapshot: ``epoch_000``, ``epoch_010``, ... (the paper's names) and optionally
``init``, the untrained network before the first epoch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nnstd._api import pairwise
from nnstd._data import data_dir
from nnstd._errors import TopologyError
from nnstd._loaders import natural_key
from nnstd._network import Network, PathLike, load_network
from nnstd._options import DEFAULT_SOLVER, Layers
from nnstd._output import write_file
from nnstd.analysis import cumulative_layers, select_layer

INIT = "init"
_EPOCH = re.compile(r"^epoch_(\d+)$")

__all__ = [
    "INIT",
    "TopologySet",
    "bundled_topo_root",
    "cumulative_layers",
    "default_topo_root",
    "select_layer",
]


def epoch_label(epoch: str) -> str:
    """``epoch_010`` -> ``epoch 10``; ``init`` -> ``initial``."""
    match = _EPOCH.match(epoch)
    return f"epoch {int(match.group(1))}" if match else ("initial" if epoch == INIT else epoch)


def snapshot_epoch(snapshot: str) -> float | None:
    """The epoch a snapshot was taken after (``epoch_010`` -> 10); None for ``init``."""
    return None if snapshot == INIT else float(int(snapshot.removeprefix("epoch_")))


def parse_epoch(text: str | int) -> str:
    """``10``, ``"10"`` or ``"epoch_010"`` -> ``"epoch_010"``; ``"init"`` stays."""
    text = str(text)
    if text == INIT or _EPOCH.match(text):
        return text
    if text.isdigit():
        return f"epoch_{int(text):03d}"
    raise TopologyError(f"not an epoch: {text!r} (expected a number, epoch_NNN or {INIT!r})")


def bundled_topo_root() -> Path:
    """The topologies bundled with nnstd, whatever the working directory.

    A wheel carries them as package data (``nnstd/data/topo``); a checkout (or an editable
    install of one) reads its top-level ``topo/`` folder, the source of that package data.

    Examples
    --------
    >>> from nnstd.topology_set import bundled_topo_root
    >>> (bundled_topo_root() / "w0" / "epoch_190" / "weight_l0.npz").is_file()
    True
    """
    return data_dir("topo")


def default_topo_root() -> Path:
    """``./topo`` if the working directory has one, else `bundled_topo_root`."""
    here = Path.cwd() / "topo"
    return here if here.is_dir() else bundled_topo_root()


@dataclass(frozen=True)
class TopologySet:
    """The networks and snapshots under a topology root.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for net in ("w0", "w1"):
    ...     for epoch in ("init", "epoch_000"):
    ...         (root / net / epoch).mkdir(parents=True)
    ...         sp.save_npz(root / net / epoch / "weight_l0.npz", sp.csr_matrix(np.eye(4)))
    >>> ts = TopologySet.open(root)
    >>> ts.networks, ts.epochs
    (('w0', 'w1'), ('init', 'epoch_000'))
    >>> ts.matrix("epoch_000")[:, :, 0]
    array([[0., 0.],
           [0., 0.]])
    """

    root: Path
    networks: tuple[str, ...]
    epochs: tuple[str, ...]
    load_budget: int | None = None  # bytes one file may take to load (None: the default)

    @classmethod
    def open(cls, root: PathLike, *, load_budget: int | None = None) -> TopologySet:
        """Scans ``root``; raises `TopologyError` if it holds no network folders.
        ``load_budget`` is `load_network`'s ``memory_budget`` for every file of the set."""
        path = Path(root)
        if not path.is_dir():
            raise TopologyError(f"{path}: no such topology folder")
        networks = sorted((d.name for d in path.iterdir() if d.is_dir()), key=natural_key)
        snapshots = {
            s.name
            for n in networks
            for s in (path / n).iterdir()
            if s.is_dir() and (s.name == INIT or _EPOCH.match(s.name))
        }
        networks = [n for n in networks if any((path / n / s).is_dir() for s in snapshots)]
        if not networks:
            raise TopologyError(
                f"{path}: no networks found (expected {path}/<network>/epoch_NNN/weight_l0.npz)"
            )
        order = sorted(snapshots - {INIT}, key=natural_key)
        epochs = ([INIT] if INIT in snapshots else []) + order
        return cls(path, tuple(networks), tuple(epochs), load_budget)

    def check_epoch(self, epoch: str) -> str:
        if epoch not in self.epochs:
            raise TopologyError(
                f"{self.root}: no snapshot {epoch!r}; available: {', '.join(self.epochs)}"
            )
        return epoch

    def load(self, epoch: str) -> list[Network]:
        """Every network at ``epoch``, in network order."""
        self.check_epoch(epoch)
        return [
            load_network(self.root / n / epoch, memory_budget=self.load_budget)
            for n in self.networks
        ]

    def short_names(self) -> list[str]:
        """Network names without the prefix they all share (``e5_s0_w3`` -> ``w3``)."""
        names = list(self.networks)
        if len(names) < 2:
            return names
        prefix = names[0]
        for n in names[1:]:
            while not n.startswith(prefix):
                prefix = prefix[:-1]
        cut = prefix.rfind("_") + 1  # whole "_"-separated parts only; 0 when there is none
        return [n[cut:] or n for n in names]

    def matrix(
        self,
        epoch: str,
        *,
        layers: Layers = None,
        solver: str = DEFAULT_SOLVER,
        threads: int | None = None,
        progress: Callable[[int, int], object] | None = None,
        memory_budget: int | None = None,
    ) -> npt.NDArray[np.float64]:
        """``nnstd.pairwise`` over all networks at ``epoch``: shape (n, n, layers)."""
        return pairwise(
            self.load(epoch),
            layers=layers,
            solver=solver,  # type: ignore[arg-type]
            threads=threads,
            progress=progress,
            memory_budget=memory_budget,
        )


def save_matrix(path: Path, matrix: npt.NDArray[np.float64], names: Sequence[str]) -> None:
    """``.npy`` (the array) or ``.csv`` (with the network names as header and first column),
    written whole or not at all (`nnstd._output.write_file`: a previous file is kept if the
    write fails; missing parent folders are created)."""
    if path.suffix == ".npy":
        write_file(path, lambda out: np.save(out, matrix, allow_pickle=False))
    elif path.suffix == ".csv":
        lines = ["network," + ",".join(names)]
        lines += [
            name + "," + ",".join(f"{x:.17g}" for x in row)
            for name, row in zip(names, matrix, strict=True)
        ]
        text = "".join(line + "\n" for line in lines).encode("utf-8")
        write_file(path, lambda out: out.write(text))
    else:
        raise TopologyError(f"{path}: unsupported matrix format (use .npy or .csv)")
