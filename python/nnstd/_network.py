"""Networks as binary sparse topologies, and the loader for the paper's folder layout."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._loaders import (
    TORCH_SUFFIXES,
    Orientation,
    as_layer,
    chain_groups,
    check_orientation,
    pick_weights,
    read_npz_arrays,
    read_safetensors,
    read_torch,
    state_dict_of,
    tensors_to_numpy,
)

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
    input_groups
        For each layer, how many of its inputs belong to one neuron of the previous layer
        (default 1 everywhere). A convolution flattened to ``(in_channels * kh * kw, out)``
        with rows ordered channel-major has ``kh * kw``; a linear layer after flattening
        ``C x H x W`` feature maps has ``H * W``. Matching renames whole groups together.

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

    def __init__(
        self,
        layers: Sequence[LayerLike],
        *,
        name: str | None = None,
        input_groups: Sequence[int] | None = None,
    ) -> None:
        if isinstance(layers, (np.ndarray, sp.spmatrix, sp.sparray)):
            raise TopologyError("layers must be a list of matrices, not a single matrix")
        patterns = [_connection_pattern(w, k, name) for k, w in enumerate(layers)]
        self._set_up(patterns, name, input_groups)

    @classmethod
    def _from_patterns(
        cls,
        patterns: list[sp.csc_array],
        name: str,
        input_groups: Sequence[int] | None = None,
    ) -> Network:
        """A network from layers already made canonical by `_connection_pattern` (the loaders
        make them with error messages that name the file)."""
        net = cls.__new__(cls)
        net._set_up(patterns, name, input_groups)
        return net

    def _set_up(
        self,
        patterns: list[sp.csc_array],
        name: str | None,
        input_groups: Sequence[int] | None,
    ) -> None:
        """Checks the chain of shapes and builds the native topology."""
        if not patterns:
            raise TopologyError(f"{name or 'network'}: a network needs at least one layer")
        groups = [1] * len(patterns) if input_groups is None else [int(g) for g in input_groups]
        if len(groups) != len(patterns) or min(groups) < 1:
            raise TopologyError(
                f"{name or 'network'}: input_groups needs one positive number per layer"
            )
        for k in range(len(patterns) - 1):
            n_out, n_in_next = patterns[k].shape[1], patterns[k + 1].shape[0]
            if n_out * groups[k + 1] != n_in_next:
                grouped = f" in groups of {groups[k + 1]}" if groups[k + 1] > 1 else ""
                raise TopologyError(
                    f"{_where(name, k + 1)}: has {n_in_next} inputs{grouped} but layer {k} has "
                    f"{n_out} neurons (layers are (inputs, neurons); is one of them transposed?)"
                )
        self.name = name
        self.input_groups = tuple(groups)
        self._patterns = patterns
        self._topology = _core.Topology(
            [
                (
                    p.shape[0],
                    p.shape[1],
                    p.indptr.astype(np.int64, copy=False),
                    p.indices.astype(np.int64, copy=False),
                    g,
                )
                for p, g in zip(patterns, groups, strict=True)
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

    @classmethod
    def from_torch(
        cls,
        model: object,
        *,
        layers: Sequence[str] | None = None,
        orientation: Orientation | None = None,
        name: str | None = None,
    ) -> Network:
        """A network from a PyTorch module or state dict already in memory.

        Parameters
        ----------
        model
            A ``torch.nn.Module`` (its ``state_dict()`` is read) or a mapping of tensors.
        layers
            Tensor names or regular expressions, in layer order (default: every 2-D or 4-D
            weight in the state dict's order, a pruning mask ``*.weight_mask`` preferred).
        orientation
            ``"out_in"`` (default: PyTorch's ``Linear.weight`` is (out, in)) or ``"in_out"``.
            Convolution kernels (out, in, kh, kw) are always read as PyTorch stores them.

        Examples
        --------
        >>> import numpy as np, nnstd
        >>> state = {"fc1.weight": np.eye(3), "fc1.bias": np.zeros(3),
        ...          "fc2.weight": np.ones((2, 3))}
        >>> nnstd.Network.from_torch(state).shapes
        [(3, 3), (3, 2)]
        """
        source = name or type(model).__name__
        tensors = tensors_to_numpy(state_dict_of(model, source), source)
        return network_from_tensors(
            tensors,
            layers=layers,
            orientation=check_orientation(orientation, "out_in"),
            name=source,
        )

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
    except Exception as exc:  # a corrupt archive fails in zipfile, numpy or scipy, many ways
        raise TopologyError(f"{path}: not a readable scipy.sparse .npz file ({exc})") from None


def network_from_tensors(
    tensors: dict[str, npt.NDArray[Any]],
    *,
    layers: Sequence[str] | None,
    orientation: Orientation,
    name: str,
) -> Network:
    """Picks the layer weights, orients them (inputs, neurons) and checks that they chain."""
    picked = pick_weights(tensors, layers, name)
    converted = [as_layer(n, a, orientation, name, k) for k, (n, a) in enumerate(picked)]
    groups = chain_groups([n for n, _ in picked], converted, orientation, name)
    patterns = [
        _connection_pattern(matrix, k, f"{name} ({label})")
        for k, ((label, _), (matrix, _)) in enumerate(zip(picked, converted, strict=True))
    ]
    return Network._from_patterns(patterns, name, groups)


def _load_paper_folder(folder: Path, drop_bias: bool) -> Network:
    layers = []
    for k, file in enumerate(_paper_layer_files(folder)):
        matrix = _read_sparse_npz(file)
        if matrix.ndim != 2 or (drop_bias and matrix.shape[0] < 1):
            raise TopologyError(f"{file}: layer {k} has shape {matrix.shape}; expected 2-D")
        layer = matrix[:-1] if drop_bias else matrix
        layers.append(_connection_pattern(layer, k, str(file)))  # errors name the file
    return Network._from_patterns(layers, str(folder))


def load_network(
    path: PathLike,
    *,
    orientation: Orientation | None = None,
    layers: Sequence[str] | None = None,
    drop_bias: bool = True,
) -> Network:
    """Load a network from a folder in the paper's layout or from a weights file.

    Parameters
    ----------
    path
        - a folder of ``weight_l0.npz``, ``weight_l1.npz``, ... as written by
          ``scipy.sparse.save_npz``, each ``(n_in + 1, n_out)`` with the bias as the last row
          (the paper's layout; any number of layers, no gap in the numbering);
        - a ``.npz`` of dense arrays (``np.savez``; one per layer, in archive order), or a
          single ``scipy.sparse.save_npz`` matrix (a one-layer network);
        - a ``.safetensors`` file (needs ``nnstd[safetensors]``; no torch);
        - a PyTorch checkpoint or state dict, ``.pt``, ``.pth``, ``.bin`` or ``.ckpt`` (needs
          ``nnstd[torch]``; read with ``weights_only=True``).
    orientation
        How 2-D weights are stored: ``"in_out"`` (inputs, neurons), the default for the paper's
        folders and ``.npz`` arrays; ``"out_in"``, PyTorch's ``Linear.weight`` layout, the
        default for safetensors and PyTorch files. A layer that only chains when transposed is
        reported, not computed. Convolution kernels (out, in, kh, kw) are read as PyTorch
        stores them; a linear layer after a flatten takes channel-major blocks.
    layers
        For weights files: tensor names or regular expressions (matched in full), in layer
        order. Default: every 2-D or 4-D weight in file order (natural name order for
        safetensors), a pruning mask ``*.weight_mask`` preferred over the weight.
    drop_bias
        For the paper's folders: drop the last row of every layer (the bias).

    Returns
    -------
    Network
        Named after the path.

    Raises
    ------
    TopologyError
        If the path does not exist, a file is corrupt, pickled or of an unknown type, a layer
        is not 2-D (or 4-D), holds NaN/inf, or the layers do not chain.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, tempfile, pathlib, nnstd
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sp.save_npz(folder / "weight_l0.npz", sp.csr_matrix(np.ones((5, 3))))  # 4 inputs + bias
    >>> nnstd.load_network(folder).shapes
    [(4, 3)]
    >>> np.savez(folder / "masks.npz", np.ones((4, 3)), np.eye(3))
    >>> nnstd.load_network(folder / "masks.npz").shapes
    [(4, 3), (3, 3)]
    """
    file = Path(path)
    if not file.exists():
        raise TopologyError(f"{file}: no such file or folder")
    if file.is_dir():
        check_orientation(orientation, "in_out")
        if orientation == "out_in":
            raise TopologyError(
                f"{file}: the paper's layout is (inputs, neurons); 'out_in' does not apply"
            )
        return _load_paper_folder(file, drop_bias)
    suffix = file.suffix.lower()
    default: Orientation = "out_in"
    if suffix == ".npz":
        tensors = read_npz_arrays(file)
        if {"format", "shape"} <= set(tensors):
            return Network([_read_sparse_npz(file)], name=str(file))
        default = "in_out"
    elif suffix == ".safetensors":
        tensors = read_safetensors(file)
    elif suffix in TORCH_SUFFIXES:
        tensors = read_torch(file)
    else:
        raise TopologyError(
            f"{file}: unknown file type {suffix!r}; nnstd reads folders of weight_l<k>.npz, "
            f".npz, .safetensors and PyTorch {', '.join(TORCH_SUFFIXES)} files"
        )
    return network_from_tensors(
        tensors,
        layers=layers,
        orientation=check_orientation(orientation, default),
        name=str(file),
    )


def as_network(obj: Network | PathLike) -> Network:
    """A `Network` as it is, or loaded from a path."""
    if isinstance(obj, Network):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load_network(obj)
    raise TypeError(f"expected a nnstd.Network or a path, got {type(obj).__name__}")
