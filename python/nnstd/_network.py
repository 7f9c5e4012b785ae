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
    DEFAULT_LOAD_BUDGET,
    TORCH_SUFFIXES,
    Orientation,
    Weights,
    apply_mask_conventions,
    as_layer,
    chain_groups,
    check_flag,
    check_names,
    check_orientation,
    connection_pattern,
    drop_last_row,
    load_budget,
    pick_weights,
    read_npz_arrays,
    read_safetensors,
    read_sharded_safetensors,
    read_torch,
    sparse_from_npz,
    state_dict_of,
    tensors_to_numpy,
    warn_if_dense,
    whole_numbers,
)

LayerLike: TypeAlias = npt.ArrayLike | sp.spmatrix | sp.sparray
PathLike: TypeAlias = str | os.PathLike[str]

SHARDED_INDEX_SUFFIX = ".safetensors.index.json"
_PAPER_LAYER = re.compile(r"weight_l([0-9]+)\.npz")  # ASCII digits; matched in full


def _where(source: str | None, layer: int) -> str:
    return f"{source}: layer {layer}" if source else f"layer {layer}"


def _connection_pattern(
    weights: LayerLike | Weights, layer: int, source: str | None, budget: int
) -> sp.csc_array:
    """The non-zero pattern of one layer as a canonical CSC array (sorted, no duplicates)."""
    return connection_pattern(weights, _where(source, layer), budget)


class Network:
    """A sparse network topology: an ordered list of layers in (inputs, neurons) orientation.

    Parameters
    ----------
    layers
        One 2-D array or ``scipy.sparse`` matrix per layer, of shape ``(n_in, n_out)``: rows are
        the layer's inputs, columns its neurons. A connection is a non-zero entry (an explicitly
        stored zero is not one; in a numpy masked array, a masked entry is not one either).
        Layer ``k``'s neuron count must equal layer ``k+1``'s input count.
    name
        A label for plots and messages (for example the folder it was loaded from).
    input_groups
        For each layer, how many of its inputs belong to one neuron of the previous layer
        (default 1 everywhere). A convolution flattened to ``(in_channels * kh * kw, out)``
        with rows ordered channel-major has ``kh * kw``; a linear layer after flattening
        ``C x H x W`` feature maps has ``H * W``. Matching renames whole groups together.
        Whole numbers (a float, even ``2.0``, or a bool is a TypeError).
    memory_budget
        Bytes building one layer may allocate (default 4 GiB); a layer declaring more (a sparse
        matrix's shape and entry count, a dense array's size) is refused before allocating.

    Raises
    ------
    TopologyError
        If a layer is not 2-D, holds NaN/inf or non-numeric weights, has a malformed sparse
        index structure (every index is checked), exceeds the memory budget, or the shapes do
        not chain.
    TypeError
        If ``input_groups`` is not a sequence of whole numbers.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> net = nnstd.Network([np.eye(3), np.ones((3, 2))])
    >>> net.shapes
    [(3, 3), (3, 2)]
    >>> net.connections
    [3, 6]
    """

    is_graph = False  # a chain of layers; `nnstd._graph.GraphNetwork` is a graph of groups

    def __init__(
        self,
        layers: Sequence[LayerLike],
        *,
        name: str | None = None,
        input_groups: Sequence[int] | None = None,
        memory_budget: int | None = None,
    ) -> None:
        if isinstance(layers, (np.ndarray, sp.spmatrix, sp.sparray)):
            raise TopologyError("layers must be a list of matrices, not a single matrix")
        budget = load_budget(memory_budget)
        patterns = [_connection_pattern(w, k, name, budget) for k, w in enumerate(layers)]
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
        """Builds the native topology; the core checks the layers chain (its refusal names the
        network here)."""
        groups = (
            [1] * len(patterns)
            if input_groups is None
            else whole_numbers(
                input_groups, "input_groups", "a list of whole numbers, one per layer"
            )
        )
        if patterns and len(groups) != len(patterns):
            raise TopologyError(
                f"{name or 'network'}: input_groups needs one positive number per layer"
            )
        try:
            topology = _core.Topology(
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
        except TopologyError as exc:
            raise TopologyError(f"{name}: {exc}" if name else str(exc)) from None
        self.name = name
        self.input_groups = tuple(groups)
        self._patterns = patterns
        self._topology = topology

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
        memory_budget: int | None = None,
    ) -> Network:
        """A network from a PyTorch module or state dict already in memory.

        Parameters
        ----------
        model
            A ``torch.nn.Module`` (its ``state_dict()`` is read) or a mapping of tensors.
        layers
            Tensor names or regular expressions, in layer order (default: every 2-D or 4-D
            weight in the state dict's order, a pruning mask ``*.weight_mask`` preferred); a
            list (a lone string is a TypeError). Masked entries of numpy masked arrays are
            absent connections.
        orientation
            ``"out_in"`` (default: PyTorch's ``Linear.weight`` is (out, in)) or ``"in_out"``.
            Convolution kernels (out, in, kh, kw) are always read as PyTorch stores them.
        memory_budget
            As in `load_network`. Sparse COO, CSR and CSC tensors are read as their pattern
            (every index checked); bfloat16 and float16 weights are read; quantized and meta
            tensors are refused.

        Examples
        --------
        >>> import numpy as np, nnstd
        >>> state = {"fc1.weight": np.eye(3), "fc1.bias": np.zeros(3),
        ...          "fc2.weight": np.ones((2, 3))}
        >>> nnstd.Network.from_torch(state).shapes
        [(3, 3), (3, 2)]
        """
        source = name or type(model).__name__
        budget = load_budget(memory_budget)
        layers = check_names(layers)
        tensors = tensors_to_numpy(state_dict_of(model, source), source, budget)
        return network_from_tensors(
            tensors,
            layers=layers,
            orientation=check_orientation(orientation, "out_in"),
            name=source,
            budget=budget,
        )

    def __repr__(self) -> str:
        widths = [self.shapes[0][0]] + [s[1] for s in self.shapes]
        label = f"{self.name!r}, " if self.name else ""
        arch = "-".join(map(str, widths))
        return f"Network({label}{arch}, connections={self.connections})"


def _paper_layer_files(folder: Path) -> list[Path]:
    """``weight_l0.npz, weight_l1.npz, ...`` of a folder; refuses gaps and two files for one
    layer (``weight_l1.npz`` beside ``weight_l01.npz``) without counting up to a huge number."""
    found: dict[int, str] = {}
    for entry in sorted(os.listdir(folder)):
        match = _PAPER_LAYER.fullmatch(entry)
        if match is None:
            continue
        k = int(match.group(1))
        if k in found:
            raise TopologyError(f"{folder}: two files for layer {k}: {found[k]} and {entry}")
        found[k] = entry
    if not found:
        raise TopologyError(f"{folder}: no weight_l0.npz, weight_l1.npz, ... files found")
    missing = next(k for k in range(len(found) + 1) if k not in found)
    if missing < len(found):
        numbers = sorted(found)
        shown = ", ".join(map(str, numbers[:10])) + (", ..." if len(numbers) > 10 else "")
        raise TopologyError(
            f"{folder}: gap in layer numbering, weight_l{missing}.npz is missing "
            f"(found layers {shown})"
        )
    return [folder / found[k] for k in range(len(found))]


def _read_sparse_npz(
    path: Path,
    budget: int,
    arrays: dict[str, npt.NDArray[Any]] | None = None,
    where: str | None = None,
) -> sp.csc_array:
    """One ``scipy.sparse.save_npz`` file's connection pattern (from its arrays, when already
    read); never unpickles."""
    if arrays is None:
        arrays = read_npz_arrays(path, budget)
    if not {"format", "shape"} <= set(arrays):
        raise TopologyError(f"{path}: not a scipy.sparse .npz file (no format and shape)")
    return sparse_from_npz(arrays, where or str(path), budget)


def network_from_tensors(
    tensors: dict[str, npt.NDArray[Any]],
    *,
    layers: Sequence[str] | None,
    orientation: Orientation,
    name: str,
    budget: int = DEFAULT_LOAD_BUDGET,
) -> Network:
    """Picks the layer weights, orients them (inputs, neurons) and checks that they chain."""
    tensors = apply_mask_conventions(tensors, name, budget)
    picked = pick_weights(tensors, layers, name)
    converted = [as_layer(n, a, orientation, name, k, budget) for k, (n, a) in enumerate(picked)]
    groups = chain_groups([n for n, _ in picked], converted, orientation, name)
    patterns = [
        _connection_pattern(matrix, k, f"{name} ({label})", budget)
        for k, ((label, _), (matrix, _)) in enumerate(zip(picked, converted, strict=True))
    ]
    warn_if_dense(patterns, name)
    return Network._from_patterns(patterns, name, groups)


def _paper_layer(file: Path, k: int, drop_bias: bool, pattern: sp.csc_array) -> sp.csc_array:
    """Layer ``k`` of the paper's layout: (inputs + bias, neurons), the bias row dropped."""
    if not drop_bias:
        return pattern
    if pattern.shape[0] < 1:
        raise TopologyError(f"{file}: layer {k} has shape {pattern.shape}: no bias row to drop")
    return drop_last_row(pattern)


def _load_paper_folder(folder: Path, drop_bias: bool, budget: int) -> Network:
    files = _paper_layer_files(folder)
    layers = [
        _paper_layer(file, k, drop_bias, _read_sparse_npz(file, budget, where=f"{file}: layer {k}"))
        for k, file in enumerate(files)
    ]
    return Network._from_patterns(layers, str(folder))


def _load_lone_sparse_npz(
    file: Path, arrays: dict[str, npt.NDArray[Any]], drop_bias: bool, budget: int
) -> Network:
    """A single ``scipy.sparse.save_npz`` file. One named like the paper's (``weight_l<k>.npz``)
    is read as the paper's layer: ``weight_l0.npz`` with its bias row dropped, as in its folder;
    a later layer is refused, since its value depends on the matching of the layers before it."""
    pattern = _read_sparse_npz(file, budget, arrays)
    match = _PAPER_LAYER.fullmatch(file.name)
    if match is None:
        return Network._from_patterns([pattern], str(file))
    k = int(match.group(1))
    if k > 0:
        before = "layer 0" if k == 1 else f"layers 0..{k - 1}"
        raise TopologyError(
            f"{file}: layer {k} of a network in the paper's layout; its distance depends on "
            f"the matching of {before}: pass the folder {file.parent} instead"
        )
    return Network._from_patterns([_paper_layer(file, k, drop_bias, pattern)], str(file))


def _check_dense_npz(file: Path, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Every array of a ``.npz`` of dense layers is a layer (2-D, or a 4-D convolution kernel)
    or a bias (1-D, skipped); anything else is refused rather than silently left out."""
    for name, array in arrays.items():
        if array.ndim not in (1, 2, 4):
            raise TopologyError(
                f"{file}: array {name!r} has shape {array.shape}: a layer is a 2-D (inputs, "
                "neurons) array or a 4-D convolution kernel (out, in, kh, kw), a bias 1-D; "
                "reshape it, or pick the layers by name (load_network's layers=[...])"
            )


def load_network(
    path: PathLike,
    *,
    orientation: Orientation | None = None,
    layers: Sequence[str] | None = None,
    drop_bias: bool = True,
    memory_budget: int | None = None,
) -> Network:
    """Load a network from a folder in the paper's layout or from a weights file.

    Parameters
    ----------
    path
        - a folder of ``weight_l0.npz``, ``weight_l1.npz``, ... as written by
          ``scipy.sparse.save_npz``, each ``(n_in + 1, n_out)`` with the bias as the last row
          (the paper's layout; any number of layers, no gap in the numbering);
        - a ``.npz`` of dense arrays (``np.savez``; one per layer, in archive order), or a
          single ``scipy.sparse.save_npz`` matrix (a one-layer network). A lone
          ``weight_l0.npz`` is read as the paper's layer 0 (bias row dropped, the same value
          as in its folder); a lone ``weight_l<k>.npz`` with k >= 1 is refused: its value
          depends on the layers before it, so pass the folder;
        - a ``.safetensors`` file (read by nnstd itself; bfloat16 is read too), or the
          ``*.safetensors.index.json`` of a sharded checkpoint (its shards beside it);
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
        safetensors), a pruning mask ``*.weight_mask`` preferred over the weight. Masks kept
        as ``parametrizations.weight.<i>.mask`` (``torch.nn.utils.parametrize``) or as
        compressed-tensors bitmasks (``NAME.bitmask`` beside ``NAME.shape``) are read as
        masks too (``docs/aligning.md``), and so are masks beside the weights in a checkpoint
        (``{"model": ..., "masks": ...}``, ``docs/inputs.md``). Without ``layers``, a model
        whose names or weights show a graph (a downsample or shortcut branch, a ResNet block,
        attention, a weight left unread) is refused; ``layers`` names a sub-chain, read as
        given. A list (a lone string is a TypeError). In a ``.npz``
        of dense arrays read without ``layers``, an array that is neither 2-D nor 4-D (nor a
        1-D bias, skipped) is refused.
    drop_bias
        For the paper's folders (and a lone ``weight_l0.npz``): drop the last row of every
        layer (the bias). A bool (``"no"``, ``0`` and ``None`` are a TypeError).
    memory_budget
        Bytes reading the file, or building one layer, may allocate (default 4 GiB). Declared
        sizes (array shapes, zip members' uncompressed sizes, sparse shapes and entry counts)
        are checked against it before anything is allocated.

    Returns
    -------
    Network
        Named after the path.

    Raises
    ------
    TopologyError
        If the path does not exist or is not a regular file, a file is corrupt, pickled or of
        an unknown type, a sparse index structure is malformed, a declared size exceeds the
        memory budget, a layer is not 2-D (or 4-D), holds NaN/inf or non-numeric values, or
        the layers do not chain or the model is not a plain chain. The message is one line
        and names the file.

    Warns
    -----
    UserWarning
        Once, when every layer read is 100% dense (its distance to any network of the same
        widths is 0).

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
    budget = load_budget(memory_budget)
    layers = check_names(layers)
    drop_bias = check_flag(drop_bias, "drop_bias")
    if not file.exists():
        raise TopologyError(f"{file}: no such file or folder")
    if file.is_dir():
        check_orientation(orientation, "in_out")
        if orientation == "out_in":
            raise TopologyError(
                f"{file}: the paper's layout is (inputs, neurons); 'out_in' does not apply"
            )
        return _load_paper_folder(file, drop_bias, budget)
    default: Orientation = "out_in"
    tensors: dict[str, Weights]
    if file.suffix.lower() == ".npz":
        arrays = read_npz_arrays(file, budget)
        if {"format", "shape"} <= set(arrays):
            return _load_lone_sparse_npz(file, arrays, drop_bias, budget)
        if layers is None:
            _check_dense_npz(file, arrays)
        tensors = dict(arrays)
        default = "in_out"
    else:
        tensors = read_tensors(file, budget)
    return network_from_tensors(
        tensors,
        layers=layers,
        orientation=check_orientation(orientation, default),
        name=str(file),
        budget=budget,
    )


def read_tensors(path: PathLike, memory_budget: int | None = None) -> dict[str, Weights]:
    """Every tensor of a weights file by name: a ``.safetensors`` file or a sharded one's
    index, a PyTorch checkpoint, or a ``.npz`` of dense arrays (as `load_network` reads them,
    with ``memory_budget`` as there)."""
    file = Path(path)
    budget = load_budget(memory_budget)
    suffix = file.suffix.lower()
    if not file.exists():
        raise TopologyError(f"{file}: no such file or folder")
    if suffix == ".npz":
        arrays = read_npz_arrays(file, budget)
        if {"format", "shape"} <= set(arrays):
            raise TopologyError(f"{file}: a single scipy.sparse matrix, not named tensors")
        return dict(arrays)
    if suffix == ".safetensors":
        return dict(read_safetensors(file, budget))
    if file.name.lower().endswith(SHARDED_INDEX_SUFFIX):
        return dict(read_sharded_safetensors(file, budget))
    if suffix in TORCH_SUFFIXES:
        return read_torch(file, budget)
    raise TopologyError(
        f"{file}: unknown file type {suffix!r}; nnstd reads folders of weight_l<k>.npz, "
        f".npz, .safetensors and PyTorch {', '.join(TORCH_SUFFIXES)} files"
    )


def as_network(obj: Network | PathLike) -> Network:
    """A `Network` as it is, or loaded from a path."""
    if isinstance(obj, Network):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load_network(obj)
    raise TypeError(f"expected a nnstd.Network or a path, got {type(obj).__name__}")
