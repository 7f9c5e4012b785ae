"""Reading networks from the files researchers keep them in.

Every reader turns any failure into a `TopologyError` naming the file; none unpickles
(``np.load(..., allow_pickle=False)``, ``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from nnstd._errors import TopologyError

Orientation = Literal["in_out", "out_in"]
ORIENTATIONS = ("in_out", "out_in")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
INDEX_LIMIT = 2**32 - 1  # the Rust core indexes neurons, inputs and connections with u32

_MASK_SUFFIX = "_mask"
_ORIG_SUFFIX = "_orig"


def natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_npz_arrays(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The arrays of an ``np.savez`` archive, in archive order; never unpickles."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise TopologyError(f"{path}: a single .npy array, not an .npz archive")
            return {name: np.asarray(archive[name]) for name in archive.files}
    except TopologyError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise TopologyError(
                f"{path}: holds pickled (object) arrays, which nnstd refuses to load"
            ) from None
        raise TopologyError(f"{path}: not a readable .npz archive ({exc})") from None
    except Exception as exc:  # zip, OS and numpy errors of a corrupt archive alike
        raise TopologyError(f"{path}: not a readable .npz archive ({exc})") from None


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise TopologyError(
            f"{path}: reading .safetensors files needs the safetensors package: "
            f"pip install 'nnstd[safetensors]'"
        ) from None
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise TopologyError(f"{path}: not a readable .safetensors file ({exc})") from None
    return dict(sorted(tensors.items(), key=lambda item: natural_key(item[0])))


def read_torch(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        import torch
    except ImportError:
        raise TopologyError(
            f"{path}: reading PyTorch checkpoints needs torch: pip install 'nnstd[torch]' "
            f"(a CPU-only build is enough)"
        ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals, zip and OS errors alike
        raise TopologyError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    return tensors_to_numpy(state_dict_of(loaded, str(path)), str(path))


def state_dict_of(obj: object, source: str) -> Mapping[str, Any]:
    """A module's state dict, or the tensors of a (possibly nested) checkpoint dict."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        return dict(obj.state_dict())
    if not isinstance(obj, Mapping):
        raise TopologyError(
            f"{source}: expected a state dict or a module, got {type(obj).__name__}"
        )
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            return state_dict_of(obj[key], source)
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in state_dict_of(value, source).items()})
        else:
            flat[str(key)] = value
    return flat


def tensors_to_numpy(tensors: Mapping[str, Any], source: str) -> dict[str, npt.NDArray[Any]]:
    out = {}
    for name, value in tensors.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            if str(getattr(value, "dtype", "")) == "torch.bfloat16":
                value = value.float()
            value = value.numpy()
        if isinstance(value, np.ndarray):
            out[name] = value
    if not out:
        raise TopologyError(f"{source}: no tensors found")
    return out


def pick_weights(
    tensors: Mapping[str, npt.NDArray[Any]], patterns: Sequence[str] | None, source: str
) -> list[tuple[str, npt.NDArray[Any]]]:
    """The layers' weights in order. Without patterns: every 2-D or 4-D weight, one per module,
    its pruning mask (``weight_mask``) preferred over ``weight`` over ``weight_orig``. With
    patterns: each pattern (an exact name or a regular expression matched in full) in the order
    given, the names it matches in their natural order."""
    if patterns is not None:
        chosen: list[str] = []
        for pattern in patterns:
            if pattern in tensors:
                names = [pattern]
            else:
                try:
                    regex = re.compile(pattern)
                except re.error as exc:
                    raise TopologyError(f"{source}: bad layer pattern {pattern!r}: {exc}") from None
                names = sorted((n for n in tensors if regex.fullmatch(n)), key=natural_key)
            if not names:
                raise TopologyError(
                    f"{source}: no tensor matches {pattern!r}; tensors: {', '.join(tensors)}"
                )
            chosen += [n for n in names if n not in chosen]
        return [(n, tensors[n]) for n in chosen]
    bases: dict[str, dict[str, str]] = {}
    for name, array in tensors.items():
        if array.ndim not in (2, 4):
            continue
        base, kind = name, "weight"
        for suffix, label in ((_MASK_SUFFIX, "mask"), (_ORIG_SUFFIX, "orig")):
            if name.endswith(suffix):
                base, kind = name[: -len(suffix)], label
        if base.rsplit(".", 1)[-1] != "weight" and "." in base:
            continue  # a 2-D buffer that is not a layer weight (embeddings' names differ too)
        bases.setdefault(base, {})[kind] = name
    # Modules in the order their first tensor (weight, bias or buffer) appears.
    first_seen: dict[str, int] = {}
    for index, name in enumerate(tensors):
        first_seen.setdefault(name.rsplit(".", 1)[0], index)
    order = sorted(bases, key=lambda base: first_seen.get(base.rsplit(".", 1)[0], 0))
    picked = [bases[b].get("mask") or bases[b].get("weight") or bases[b]["orig"] for b in order]
    if not picked:
        raise TopologyError(f"{source}: no 2-D or 4-D weights found")
    return [(n, tensors[n]) for n in picked]


def as_layer(
    name: str, array: npt.NDArray[Any], orientation: Orientation, source: str, k: int
) -> tuple[npt.NDArray[Any], int]:
    """One weight as an (inputs, neurons) matrix and its input group size."""
    where = f"{source}: layer {k} ({name})"
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TopologyError(f"{where}: weights must be numeric, got dtype {array.dtype}")
    if array.ndim == 4:  # PyTorch convolution (out, in, kh, kw), whatever the orientation
        out_ch, in_ch, kh, kw = array.shape
        matrix = array.transpose(1, 2, 3, 0).reshape(in_ch * kh * kw, out_ch)
        return matrix, kh * kw
    if array.ndim != 2:
        raise TopologyError(
            f"{where}: expected a 2-D weight or a 4-D convolution kernel, got shape {array.shape}"
        )
    for size in (*array.shape, int(np.count_nonzero(array))):
        if size > INDEX_LIMIT:
            raise TopologyError(
                f"{where}: {size} neurons, inputs or connections exceed nnstd's limit of "
                f"{INDEX_LIMIT} (32-bit indices)"
            )
    return (array.T if orientation == "out_in" else array), 1


def _infer_groups(shapes: Sequence[tuple[int, int]], kernel_groups: Sequence[int]) -> list[int]:
    """Input groups: a convolution's kernel size; after a convolution, a linear layer whose
    inputs are whole multiples of its channels takes channel-major blocks (a flatten)."""
    groups = list(kernel_groups)
    for k in range(1, len(shapes)):
        previous, n_in = shapes[k - 1][1], shapes[k][0]
        if (
            groups[k] == 1
            and kernel_groups[k - 1] > 1
            and n_in != previous
            and n_in % previous == 0
        ):
            groups[k] = n_in // previous
    return groups


def _first_break(shapes: Sequence[tuple[int, int]], groups: Sequence[int]) -> int | None:
    for k in range(1, len(shapes)):
        if shapes[k][0] != shapes[k - 1][1] * groups[k]:
            return k
    return None


def chain_groups(
    names: Sequence[str],
    layers: list[tuple[npt.NDArray[Any], int]],
    orientation: Orientation,
    source: str,
) -> list[int]:
    """Input groups for each layer; reports layers that do not chain, and says when reading
    them the other way round would chain (a transposed layer, or the wrong orientation)."""
    shapes = [m.shape for m, _ in layers]
    kernels = [g for _, g in layers]
    groups = _infer_groups(shapes, kernels)
    k = _first_break(shapes, groups)
    if k is None:
        return groups
    other = "in_out" if orientation == "out_in" else "out_in"
    flipped = [(s[1], s[0]) if g == 1 else s for s, g in zip(shapes, kernels, strict=True)]
    hint = ""
    if _first_break(flipped, _infer_groups(flipped, kernels)) is None:
        hint = (
            f"; all layers chain when read the other way round: pass "
            f"orientation={other!r} (they were read as {orientation!r})"
        )
    elif kernels[k] == 1:
        single = list(shapes)
        single[k] = flipped[k]
        if (
            _first_break(single, _infer_groups(single, kernels)) in (None, k + 1)
            and single[k][0] == shapes[k - 1][1]
        ):
            hint = "; it chains when transposed: is this layer stored the other way round?"
    raise TopologyError(
        f"{source}: layer {k} ({names[k]}) has shape {shapes[k]} as (inputs, neurons), which "
        f"does not chain with layer {k - 1}'s {shapes[k - 1][1]} neurons{hint}"
    )


def check_orientation(orientation: str | None, default: Orientation) -> Orientation:
    chosen = default if orientation is None else orientation
    if chosen not in ORIENTATIONS:
        raise ValueError(f"orientation must be 'in_out' or 'out_in', got {orientation!r}")
    return chosen  # type: ignore[return-value]
