"""Networks as binary sparse topologies, and the loader for the paper's folder layout."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nnstd import _core
from nnstd._errors import TopologyError

LayerLike: TypeAlias = npt.ArrayLike | sp.spmatrix | sp.sparray
PathLike: TypeAlias = str | os.PathLike[str]

_PAPER_LAYER = re.compile(r"^weight_l(\d+)\.npz$")


def _where(source: str | None, layer: int) -> str:
    return f"{source}: layer {layer}" if source else f"layer {layer}"


def _connection_pattern(weights: LayerLike, layer: int, source: str | None) -> sp.csc_array:
    """The non-zero pattern of one layer as a canonical CSC array (sorted, no duplicates)."""
    where = _where(source, layer)
    if sp.issparse(weights):
        matrix = sp.csc_array(weights, copy=True)
        if matrix.ndim != 2:
            raise TopologyError(f"{where}: expected a 2-D matrix, got {matrix.ndim}-D")
        _check_values(matrix.data, where)
        matrix.sum_duplicates()
    else:
        array = np.asarray(weights)
        if array.ndim != 2:
            raise TopologyError(
                f"{where}: expected a 2-D (inputs, neurons) array, got shape {array.shape}"
            )
        _check_values(array, where)
        matrix = sp.csc_array(array)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _check_values(values: npt.NDArray[Any], where: str) -> None:
    if values.dtype == object or not (
        np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_
    ):
        raise TopologyError(f"{where}: weights must be numeric, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.inexact) and not np.all(np.isfinite(values)):
        raise TopologyError(f"{where}: weights contain NaN or infinite values")


class Network:
    """A sparse network topology: an ordered list of layers in (inputs, neurons) orientation.

    Parameters
    ----------
    layers
        One 2-D array or ``scipy.sparse`` matrix per layer, of shape ``(n_in, n_out)``: rows are
        the layer's inputs, columns its neurons. A connection is a non-zero entry (an explicitly
        stored zero is not one). Layer ``k``'s neuron count must equal layer ``k+1``'s input count.
    name
        A label for plots and messages (for example the folder it was loaded from).

    Raises
    ------
    TopologyError
        If a layer is not 2-D, holds NaN/inf or non-numeric weights, or the shapes do not chain.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> net = nnstd.Network([np.eye(3), np.ones((3, 2))])
    >>> net.shapes
    [(3, 3), (3, 2)]
    >>> net.connections
    [3, 6]
    """

    def __init__(self, layers: Sequence[LayerLike], *, name: str | None = None) -> None:
        if isinstance(layers, (np.ndarray, sp.spmatrix, sp.sparray)):
            raise TopologyError("layers must be a list of matrices, not a single matrix")
        patterns = [_connection_pattern(w, k, name) for k, w in enumerate(layers)]
        if not patterns:
            raise TopologyError(f"{name or 'network'}: a network needs at least one layer")
        for k in range(len(patterns) - 1):
            n_out, n_in_next = patterns[k].shape[1], patterns[k + 1].shape[0]
            if n_out != n_in_next:
                raise TopologyError(
                    f"{_where(name, k + 1)}: has {n_in_next} inputs but layer {k} has {n_out} "
                    f"neurons (layers are (inputs, neurons); is one of them transposed?)"
                )
        self.name = name
        self._patterns = patterns
        self._topology = _core.Topology(
            [
                (
                    p.shape[0],
                    p.shape[1],
                    p.indptr.astype(np.int64, copy=False),
                    p.indices.astype(np.int64, copy=False),
                )
                for p in patterns
            ]
        )

    @property
    def depth(self) -> int:
        """The number of layers."""
        return len(self._patterns)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(n_in, n_out)`` of every layer."""
        return [(int(p.shape[0]), int(p.shape[1])) for p in self._patterns]

    @property
    def connections(self) -> list[int]:
        """The number of connections of every layer."""
        return [int(p.nnz) for p in self._patterns]

    def layer(self, k: int) -> sp.csc_array:
        """Layer ``k``'s connection pattern as a boolean CSC array of shape (n_in, n_out)."""
        p = self._patterns[k]
        return sp.csc_array((np.ones(p.nnz, dtype=bool), p.indices, p.indptr), shape=p.shape)

    def __repr__(self) -> str:
        widths = [self.shapes[0][0]] + [s[1] for s in self.shapes]
        label = f"{self.name!r}, " if self.name else ""
        arch = "-".join(map(str, widths))
        return f"Network({label}{arch}, connections={self.connections})"


def _paper_layer_files(folder: Path) -> list[Path]:
    found = {
        int(m.group(1)): folder / f for f in os.listdir(folder) if (m := _PAPER_LAYER.match(f))
    }
    if not found:
        raise TopologyError(f"{folder}: no weight_l0.npz, weight_l1.npz, ... files found")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise TopologyError(
            f"{folder}: gap in layer numbering, weight_l{missing[0]}.npz is missing "
            f"(found layers {sorted(found)})"
        )
    return [found[k] for k in range(len(found))]


_SPARSE_FORMATS = {"csr": sp.csr_array, "csc": sp.csc_array}


def _read_sparse_npz(path: Path) -> sp.csr_array:
    """One ``scipy.sparse.save_npz`` file, read from its arrays; never unpickles."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            fmt = archive["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(n) for n in archive["shape"])
            if fmt in _SPARSE_FORMATS:
                parts = (archive["data"], archive["indices"], archive["indptr"])
                return sp.csr_array(_SPARSE_FORMATS[fmt](parts, shape=shape))
            if fmt == "coo":
                coords = (archive["row"], archive["col"])
                return sp.csr_array(sp.coo_array((archive["data"], coords), shape=shape))
            raise TopologyError(f"{path}: unsupported sparse format {fmt!r}")
    except TopologyError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        TypeError,
        AttributeError,
        zipfile.BadZipFile,
    ) as exc:
        raise TopologyError(f"{path}: not a readable scipy.sparse .npz file ({exc})") from None


def load_network(path: PathLike, *, drop_bias: bool = True) -> Network:
    """Load a network stored in the paper's folder layout.

    Parameters
    ----------
    path
        A folder holding ``weight_l0.npz``, ``weight_l1.npz``, ... as written by
        ``scipy.sparse.save_npz``, each of shape ``(n_in + 1, n_out)`` in (inputs, neurons)
        orientation. Any number of layers; the numbering must have no gap.
    drop_bias
        Drop the last row of every layer (the paper stores the bias there).

    Returns
    -------
    Network
        Named after the folder.

    Raises
    ------
    TopologyError
        If the folder does not exist, has no or gapped layer files, a file is corrupt, or the
        layers do not chain.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, tempfile, pathlib, nnstd
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sp.save_npz(folder / "weight_l0.npz", sp.csr_matrix(np.ones((5, 3))))  # 4 inputs + bias
    >>> nnstd.load_network(folder).shapes
    [(4, 3)]
    """
    folder = Path(path)
    if not folder.exists():
        raise TopologyError(f"{folder}: no such file or folder")
    if not folder.is_dir():
        raise TopologyError(f"{folder}: expected a folder of weight_l<k>.npz files")
    layers = []
    for k, file in enumerate(_paper_layer_files(folder)):
        matrix = _read_sparse_npz(file)
        if matrix.ndim != 2 or (drop_bias and matrix.shape[0] < 1):
            raise TopologyError(f"{file}: layer {k} has shape {matrix.shape}; expected 2-D")
        layer = matrix[:-1] if drop_bias else matrix
        _connection_pattern(layer, k, str(file))  # reports the file itself on bad values
        layers.append(layer)
    return Network(layers, name=str(folder))


def as_network(obj: Network | PathLike) -> Network:
    """A `Network` as it is, or loaded from a path."""
    if isinstance(obj, Network):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load_network(obj)
    raise TypeError(f"expected a nnstd.Network or a path, got {type(obj).__name__}")
