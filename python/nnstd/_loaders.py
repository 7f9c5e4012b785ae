"""Reading networks from the files researchers keep them in, and checking what they hold.

Every reader turns any failure into a one-line `TopologyError` naming the file; none unpickles
(``.npz`` and ``.safetensors`` are parsed here, ``torch.load(..., weights_only=True)``). Sizes a
file declares (array shapes, zip members' uncompressed sizes, sparse index arrays) are checked
against a memory budget before anything is allocated, and every sparse index structure is
checked completely before numpy, SciPy or the Rust core index with it.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
import stat
import warnings
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nnstd import _core
from nnstd._errors import TopologyError

Orientation = Literal["in_out", "out_in"]
ORIENTATIONS = ("in_out", "out_in")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
INDEX_LIMIT = _core.INDEX_LIMIT  # the core's index type (u32) bounds neurons, inputs, connections
# Bytes reading one file, or building one layer, may allocate: the core's default budget.
DEFAULT_LOAD_BUDGET = _core.DEFAULT_MEMORY_BUDGET
BYTE_LIMIT = _core.BYTE_LIMIT  # the core counts bytes in u64
# What building one layer costs, for the budget check: index arrays over the inputs and neurons
# (the core indexes connections both by neuron and by input), and the sort that makes the
# connection list canonical.
BYTES_PER_ROW_OR_COLUMN = 16
BYTES_PER_CONNECTION = 48
SAFETENSORS_HEADER_LIMIT = 100 << 20  # the format's own limit

Array: TypeAlias = npt.NDArray[Any]
# A layer's weights as read: a dense array, or a sparse matrix (a validated CSC pattern).
Weights: TypeAlias = "npt.NDArray[Any] | sp.csc_array"

_MASK_SUFFIX = "_mask"
_ORIG_SUFFIX = "_orig"
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def natural_key(name: str) -> list[object]:
    """Sort key ordering ``layer2`` before ``layer10`` (ASCII digits only)."""
    return [(1, int(t)) if t.isdigit() else (0, t) for t in re.split(r"([0-9]+)", name) if t]


def one_line(text: object) -> str:
    """A foreign error message on one line, without terminal colour codes."""
    lines = [ln.strip() for ln in _ANSI_CODE.sub("", str(text)).splitlines() if ln.strip()]
    return " ".join(lines)[:300] if lines else "no details"


# Arguments ------------------------------------------------------------------------------------


def byte_count(value: object, what: str = "memory_budget") -> int:
    """``value`` as a whole number of bytes in [0, 2**64 - 1]; one-line ValueError otherwise.

    Integers (Python or numpy) and floats holding a whole number (``1e9``) are accepted.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer, float, np.floating)
    ):
        raise ValueError(f"{what} must be a whole number of bytes, got {value!r}")
    if isinstance(value, (float, np.floating)) and not (
        math.isfinite(value) and value == math.floor(value)
    ):
        raise ValueError(f"{what} must be a whole number of bytes, got {value!r}")
    count = int(value)
    if not 0 <= count <= BYTE_LIMIT:
        raise ValueError(f"{what} must be between 0 and 2**64 - 1 bytes, got {count}")
    return count


def is_whole_number(value: object) -> bool:
    """An ``int`` or numpy integer; a bool is not one (``True`` is no layer index)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def whole_numbers(values: object, what: str, expected: str) -> list[int]:
    """``values`` as whole numbers: a list, tuple, range or 1-D integer array of them. A string,
    a set, an iterator, floats (even ``2.0``) and bools are a one-line TypeError naming
    ``what``, saying it must be ``expected``."""
    items: list[object] | None = None
    if isinstance(values, np.ndarray):
        items = list(values) if values.ndim == 1 else None
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes, bytearray)):
        items = list(values)
    if items is None or not all(is_whole_number(v) for v in items):
        raise TypeError(f"{what} must be {expected}, got {reprlib.repr(values)}")
    return [int(v) for v in items]  # type: ignore[call-overload]


def check_flag(value: object, what: str) -> bool:
    """A bool (Python's or numpy's); anything else, ``"no"``, ``0`` or ``None`` included, is a
    one-line TypeError naming ``what``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {reprlib.repr(value)}")
    return bool(value)


def check_names(names: object, what: str = "layers") -> list[str] | None:
    """None, or a list (tuple, ...) of tensor names or patterns; a lone string is a TypeError
    (it would be read letter by letter)."""
    if names is None:
        return None
    if (
        not isinstance(names, Sequence)
        or isinstance(names, (str, bytes, bytearray))
        or not all(isinstance(n, str) for n in names)
    ):
        hint = " (one name: wrap it in a list)" if isinstance(names, (str, bytes)) else ""
        raise TypeError(
            f"{what} must be a list of tensor names or patterns, got {reprlib.repr(names)}{hint}"
        )
    return list(names)


def unmasked(array: object) -> object:
    """A numpy masked array with its masked entries read as absent connections (zeros);
    anything else unchanged."""
    if isinstance(array, np.ma.MaskedArray):
        return np.ma.filled(array, 0)
    return array


def load_budget(memory_budget: object) -> int:
    return DEFAULT_LOAD_BUDGET if memory_budget is None else byte_count(memory_budget)


def check_budget(needed: int, budget: int, where: str, what: str) -> None:
    if needed > budget:
        raise TopologyError(
            f"{where}: {what} would take {needed:,} bytes, more than the memory budget of "
            f"{budget:,} bytes (pass a larger memory_budget if this is meant)"
        )


def layer_bytes(n_in: int, n_out: int, nnz: int) -> int:
    """Bytes nnstd allocates to hold (and canonicalise) one layer."""
    return BYTES_PER_ROW_OR_COLUMN * (n_in + n_out + 2) + BYTES_PER_CONNECTION * nnz


# Files ----------------------------------------------------------------------------------------


def open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading if it is a regular file; a FIFO or device never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise TopologyError(f"{path}: cannot open ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TopologyError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_zip_reason(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array (np.save); save the layers with np.savez"
    if head.startswith(b"\x80"):
        return "it is a pickle, which nnstd never loads"
    if not head:
        return "the file is empty"
    return "not a zip file"


def read_npz_arrays(path: Path, budget: int = DEFAULT_LOAD_BUDGET) -> dict[str, Array]:
    """The arrays of an ``np.savez`` archive, in archive order; never unpickles.

    Each member's declared shape and dtype are checked against the budget before it is read.
    """
    with open_regular(path) as handle:
        head = handle.read(8)
        if not head.startswith(b"PK"):
            raise TopologyError(f"{path}: not a readable .npz archive: {_not_zip_reason(head)}")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                return _read_members(archive, path, budget)
        except TopologyError:
            raise
        except MemoryError:  # within the budget, but more than this machine has free
            raise TopologyError(f"{path}: not enough memory to read it") from None
        except Exception as exc:  # zip, zlib, OS and numpy header errors alike
            raise TopologyError(f"{path}: not a readable .npz archive ({one_line(exc)})") from None


def _read_members(archive: zipfile.ZipFile, path: Path, budget: int) -> dict[str, Array]:
    arrays: dict[str, Array] = {}
    remaining = budget
    for info in archive.infolist():
        if info.is_dir():
            continue
        if not info.filename.endswith(".npy"):
            raise TopologyError(f"{path}: member {info.filename!r} is not a .npy array")
        with archive.open(info) as member:
            array = _read_npy(member, f"{path}: array {info.filename[:-4]!r}", remaining)
        remaining -= array.nbytes
        arrays[info.filename[:-4]] = array
    return arrays


def _read_npy(member: IO[bytes], where: str, budget: int) -> Array:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise TopologyError(f"{where}: unsupported .npy format version {version}")
    if dtype.hasobject:
        raise TopologyError(f"{where}: holds pickled (object) data, which nnstd refuses to load")
    if dtype.itemsize == 0:
        raise TopologyError(f"{where}: dtype {dtype} has no size")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise TopologyError(f"{where}: bad shape {shape}")
    count = math.prod(shape)
    check_budget(count * dtype.itemsize, budget, where, f"shape {shape} of {dtype}")
    data = member.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise TopologyError(f"{where}: truncated ({len(data)} of {count * dtype.itemsize} bytes)")
    flat = np.frombuffer(data, dtype=dtype, count=count)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # converted below: numpy has no bfloat16
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path: Path, budget: int = DEFAULT_LOAD_BUDGET) -> dict[str, Array]:
    """The tensors of a ``.safetensors`` file in natural name order (the format is parsed here:
    no package needed, bfloat16 read as float32, declared sizes checked before reading)."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        header, start = _safetensors_header(handle, size, path)
        entries = {k: v for k, v in header.items() if k != "__metadata__"}
        layout = {
            name: _safetensors_entry(name, entry, size - start, path)
            for name, entry in entries.items()
        }
        total = sum(hi - lo for _, _, lo, hi in layout.values())
        check_budget(total, budget, str(path), "its tensors")
        tensors = {}
        for name in sorted(layout, key=natural_key):
            code, shape, lo, hi = layout[name]
            handle.seek(start + lo)
            data = handle.read(hi - lo)
            if len(data) != hi - lo:
                raise TopologyError(f"{path}: tensor {name!r} is truncated")
            tensors[name] = _safetensors_array(data, code, shape)
    return tensors


def _safetensors_header(handle: IO[bytes], size: int, path: Path) -> tuple[dict[str, Any], int]:
    prefix = handle.read(8)
    length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
    if not 0 < length <= min(size - 8, SAFETENSORS_HEADER_LIMIT):
        raise TopologyError(f"{path}: not a .safetensors file (bad header length)")
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise TopologyError(f"{path}: not a .safetensors file ({one_line(exc)})") from None
    if not isinstance(header, dict):
        raise TopologyError(f"{path}: not a .safetensors file (header is not a JSON object)")
    return header, 8 + length


def _safetensors_entry(
    name: str, entry: object, data_size: int, path: Path
) -> tuple[str, tuple[int, ...], int, int]:
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise TopologyError(f"{where}: malformed header entry")
    code = entry.get("dtype")
    shape, offsets = _int_list(entry.get("shape")), _int_list(entry.get("data_offsets"))
    if not isinstance(code, str) or code not in _SAFETENSORS_DTYPES:
        raise TopologyError(f"{where}: unsupported dtype {code!r}"[:300])
    if shape is None or offsets is None or len(offsets) != 2:
        raise TopologyError(f"{where}: malformed shape or data_offsets")
    lo, hi = offsets
    nbytes = math.prod(shape) * np.dtype(_SAFETENSORS_DTYPES[code]).itemsize
    if not 0 <= lo <= hi <= data_size or hi - lo != nbytes:
        raise TopologyError(
            f"{where}: data_offsets {offsets} do not fit shape {shape} of {code} in the file"
        )
    return code, tuple(shape), lo, hi


def _int_list(value: object) -> list[int] | None:
    """``value`` if it is a JSON list of whole numbers >= 0."""
    if isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
    ):
        return value
    return None


def _safetensors_array(data: bytes, code: str, shape: tuple[int, ...]) -> Array:
    flat = np.frombuffer(data, dtype=_SAFETENSORS_DTYPES[code])
    if code == "BF16":  # bfloat16 is the top half of a float32
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    return flat.reshape(shape)


def read_torch(path: Path, budget: int = DEFAULT_LOAD_BUDGET) -> dict[str, Weights]:
    with open_regular(path) as handle:
        # The file's structure first: a damaged or oversized file is refused alike with or
        # without torch installed.
        _check_zip_sizes(handle, path, budget)
        try:
            import torch
        except ImportError:
            raise TopologyError(
                f"{path}: reading PyTorch checkpoints needs torch: pip install 'nnstd[torch]' "
                f"(a CPU-only build is enough)"
            ) from None
        try:
            loaded = torch.load(handle, map_location="cpu", weights_only=True)
        except MemoryError:
            raise TopologyError(f"{path}: not enough memory to read it") from None
        except Exception as exc:  # unpickling refusals, zip and OS errors alike
            raise TopologyError(
                f"{path}: not a readable PyTorch checkpoint ({_torch_reason(exc)})"
            ) from None
    return tensors_to_numpy(state_dict_of(loaded, str(path)), str(path), budget)


def _check_zip_sizes(handle: IO[bytes], path: Path, budget: int) -> None:
    """A zip checkpoint's members' declared uncompressed sizes against the budget."""
    try:
        is_zip = zipfile.is_zipfile(handle)
    except zipfile.BadZipFile:  # is_zipfile lets some malformed end records through
        is_zip = True  # the ZipFile below says what is wrong
    if not is_zip:
        handle.seek(0)
        return
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except Exception as exc:  # a corrupt directory; torch.load would fail on it too
        raise TopologyError(
            f"{path}: not a readable PyTorch checkpoint ({one_line(exc)})"
        ) from None
    check_budget(total, budget, str(path), "its uncompressed contents")
    handle.seek(0)


def _torch_reason(exc: BaseException) -> str:
    """The line of torch's (long, multi-line, coloured) refusal that says what is wrong."""
    text = _ANSI_CODE.sub("", str(exc))
    found = re.search(r"WeightsUnpickler error:\s*([^\n]*)", text)
    if found:
        return f"refused to unpickle: {found.group(1).strip()}"[:300]
    return one_line(text)


# Checkpoint layouts. A checkpoint dict holds the state dict under one of these keys, and
# possibly masks beside it (RigL, sparselearning, open_lth-style training loops): a dict from
# weight (or module) name to a 0/1 tensor of the weight's shape.
_MODEL_KEYS = ("state_dict", "model_state_dict", "model")
_MASK_KEYS = ("masks", "mask")
# Entries of a checkpoint that are not the model: optimizer and scheduler states, settings.
_NOT_MODEL = re.compile(
    r".*(optim|sched|scaler).*|hparams|hyper_parameters|args|config|callbacks|loops|"
    r".*_extra_state",
    re.IGNORECASE,
)
_KEYS_SHOWN = 20


def _is_module(obj: object) -> bool:
    return callable(getattr(obj, "state_dict", None))


def _is_tensor(value: object) -> bool:
    return (
        (hasattr(value, "detach") and hasattr(value, "layout"))
        or isinstance(value, np.ndarray)
        or sp.issparse(value)
    )


def _keys(obj: Iterable[Any]) -> str:
    """Names (a mapping's keys), the first few, comma-separated."""
    keys = [str(k) for k in obj]
    more = f", ... ({len(keys)} keys)" if len(keys) > _KEYS_SHOWN else ""
    return ", ".join(keys[:_KEYS_SHOWN]) + more


def state_dict_of(obj: object, source: str) -> Mapping[str, Any]:
    """A module's state dict, or the tensors of a checkpoint dict.

    Read: a state dict; a checkpoint holding one under ``state_dict``, ``model_state_dict`` or
    ``model`` (other entries, such as the optimizer's, ignored), or under a single other key
    (its names then prefixed with that key); masks beside the weights under ``masks`` or
    ``mask`` (a dict from weight or module name to a tensor of the weight's shape), returned as
    ``<weight>_mask`` tensors, which the readers prefer over the weights. Anything else is
    refused, listing the keys found.
    """
    if _is_module(obj):
        return dict(obj.state_dict())  # type: ignore[attr-defined]
    if not isinstance(obj, Mapping):
        raise TopologyError(
            f"{source}: expected a state dict or a module, got {type(obj).__name__}"
        )
    masks_key = next((k for k in _MASK_KEYS if k in obj and not _is_tensor(obj[k])), None)
    if masks_key is not None and not isinstance(obj[masks_key], Mapping):
        raise TopologyError(
            f"{source}: the masks under {masks_key!r} are a {type(obj[masks_key]).__name__}; "
            f"nnstd reads masks as a dict from weight name to mask (keys found: {_keys(obj)})"
        )
    model_key = next(
        (k for k in _MODEL_KEYS if isinstance(obj.get(k), Mapping) or _is_module(obj.get(k))),
        None,
    )
    if model_key is not None:
        state = state_dict_of(obj[model_key], source)
    else:
        state = _only_state_dict(obj, masks_key, source)
    if masks_key is not None:
        state = _with_masks(state, obj[masks_key], source)
    return state


def _only_state_dict(
    obj: Mapping[Any, Any], masks_key: str | None, source: str
) -> Mapping[str, Any]:
    """The tensors of a flat state dict, or of the one dict a checkpoint holds (prefixed)."""
    rest = {  # tensors are kept whatever their names: a layer may be called "scaler"
        str(k): v
        for k, v in obj.items()
        if k != masks_key and (_is_tensor(v) or not _NOT_MODEL.fullmatch(str(k)))
    }
    nested = [k for k, v in rest.items() if isinstance(v, Mapping) or _is_module(v)]
    has_tensors = any(_is_tensor(v) for v in rest.values())
    if len(nested) == 1 and not has_tensors:
        inner = state_dict_of(rest[nested[0]], source)
        return {f"{nested[0]}.{k}": v for k, v in inner.items()}
    if nested or not has_tensors:
        what = (
            "masks with no weights beside them"
            if masks_key is not None and not nested and not has_tensors
            else "not a state dict or a checkpoint layout nnstd knows"
        )
        raise TopologyError(
            f"{source}: {what} (keys found: {_keys(obj)}); nnstd reads a state dict, or a "
            f"checkpoint holding one under 'state_dict', 'model_state_dict' or 'model' (masks "
            f"beside it under 'masks'), or holding one dict: pass the state dict itself"
        )
    return rest


def _masked_weight(state: Mapping[str, Any], key: str) -> str | None:
    """The weight a mask's key names: the weight itself, its module, or either without (or
    with) a ``module.`` prefix (DataParallel); ``*_orig`` when the weight is pruned."""
    bare = key.removeprefix("module.")
    for candidate in (key, f"{key}.weight", bare, f"{bare}.weight"):
        for name in (candidate, f"{candidate}_orig"):
            if name in state:
                return name
    suffixes = (f".{bare}", f".{bare}.weight", f".{bare}_orig", f".{bare}.weight_orig")
    found = [n for n in state if n.endswith(suffixes)]
    return found[0] if len(found) == 1 else None


def _with_masks(state: Mapping[str, Any], masks: Mapping[Any, Any], source: str) -> dict[str, Any]:
    out = dict(state)
    for key, mask in masks.items():
        if not _is_tensor(mask):
            raise TopologyError(
                f"{source}: mask {str(key)!r} is a {type(mask).__name__}, not a tensor"
            )
        weight = _masked_weight(state, str(key))
        if weight is None:
            weights = [n for n in state if len(getattr(state[n], "shape", ())) >= 2]
            raise TopologyError(
                f"{source}: mask {str(key)!r} names no weight of the model (weights: "
                f"{_keys(weights)})"
            )
        shape, expected = tuple(mask.shape), tuple(getattr(state[weight], "shape", ()))
        if shape != expected:
            raise TopologyError(
                f"{source}: mask {str(key)!r} has shape {shape}, but {weight} has shape {expected}"
            )
        out[weight.removesuffix(_ORIG_SUFFIX) + _MASK_SUFFIX] = mask
    return out


def tensors_to_numpy(
    tensors: Mapping[str, Any], source: str, budget: int = DEFAULT_LOAD_BUDGET
) -> dict[str, Weights]:
    """numpy arrays (sparse tensors: validated CSC patterns) of the tensors in a state dict;
    other values (numbers, strings) are skipped."""
    out: dict[str, Weights] = {}
    for name, value in tensors.items():
        if hasattr(value, "detach") and hasattr(value, "layout"):
            out[name] = _torch_tensor(value, f"{source}: tensor {name!r}", budget)
        elif sp.issparse(value):  # checked now: transposing some formats indexes with it
            out[name] = sparse_pattern(value, f"{source}: tensor {name!r}", budget)
        elif isinstance(value, np.ndarray):
            out[name] = unmasked(value)
    if not out:
        raise TopologyError(f"{source}: no tensors found")
    return out


def _torch_tensor(tensor: Any, where: str, budget: int) -> Weights:
    layout, dtype = str(tensor.layout), str(tensor.dtype)
    if getattr(tensor, "is_quantized", False):
        raise TopologyError(f"{where}: a quantized tensor ({dtype}); dequantize() it first")
    if getattr(tensor, "is_meta", False):
        raise TopologyError(f"{where}: a meta tensor, which holds no values")
    tensor = tensor.detach().cpu()
    if layout == "torch.strided":
        check_budget(tensor.numel() * 8, budget, where, f"shape {tuple(tensor.shape)}")
        return _torch_numpy(tensor, where)
    shape = (int(tensor.shape[0]), int(tensor.shape[1])) if tensor.dim() == 2 else None
    if layout == "torch.sparse_coo" and shape is not None and tensor.dense_dim() == 0:
        indices = _torch_numpy(tensor._indices(), where)  # uncoalesced: coalescing indexes
        data = _torch_numpy(tensor._values(), where)
        return coo_pattern(indices[0], indices[1], data, shape, where, budget)
    if layout in ("torch.sparse_csr", "torch.sparse_csc") and shape is not None:
        by_row = layout == "torch.sparse_csr"
        indptr = tensor.crow_indices() if by_row else tensor.ccol_indices()
        minor = tensor.col_indices() if by_row else tensor.row_indices()
        return compressed_pattern(
            _torch_numpy(indptr, where),
            _torch_numpy(minor, where),
            _torch_numpy(tensor.values(), where),
            shape,
            by_row,
            where,
            budget,
        )
    raise TopologyError(
        f"{where}: a {tensor.dim()}-D tensor of layout {layout}; nnstd reads dense tensors and "
        f"2-D sparse COO, CSR and CSC tensors"
    )


_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")


def _torch_numpy(tensor: Any, where: str) -> Array:
    if tensor.dtype.is_floating_point and str(tensor.dtype) not in _NUMPY_FLOATS:
        tensor = tensor.float()  # bfloat16 and the float8 types have no numpy dtype
    try:
        return np.asarray(tensor.resolve_conj().resolve_neg().numpy())
    except Exception as exc:  # a dtype numpy lacks
        raise TopologyError(
            f"{where}: dtype {tensor.dtype} not supported ({one_line(exc)})"
        ) from None


# Connection patterns: every index checked before anything indexes with it ---------------------


def check_weight_values(values: Array, where: str) -> None:
    if values.dtype.hasobject or not (
        np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_
    ):
        raise TopologyError(f"{where}: weights must be numeric, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.inexact) and not np.all(np.isfinite(values)):
        raise TopologyError(f"{where}: weights contain NaN or infinite values")


def check_shape(shape: object, where: str) -> tuple[int, int]:
    """A declared matrix shape: two whole numbers within the core's index limit."""
    dims = tuple(shape) if isinstance(shape, (tuple, list, np.ndarray)) else ()
    if len(dims) != 2 or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in dims
    ):
        raise TopologyError(f"{where}: expected a 2-D shape, got {shape!r}")
    n_in, n_out = int(dims[0]), int(dims[1])
    if n_in < 0 or n_out < 0:
        raise TopologyError(f"{where}: negative shape ({n_in}, {n_out})")
    check_index_limit((n_in, n_out), where)
    return n_in, n_out


def check_index_limit(sizes: Sequence[int], where: str) -> None:
    for size in sizes:
        if size > INDEX_LIMIT:
            raise TopologyError(
                f"{where}: {size} neurons, inputs or connections exceed nnstd's limit of "
                f"{INDEX_LIMIT} (32-bit indices)"
            )


def _index_array(values: object, length: int | None, what: str, where: str) -> Array:
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        raise TopologyError(f"{where}: {what} must be a 1-D array")
    if not np.issubdtype(values.dtype, np.integer):
        raise TopologyError(f"{where}: {what} must hold integers, got dtype {values.dtype}")
    if length is not None and len(values) != length:
        raise TopologyError(f"{where}: {what} has {len(values)} entries, expected {length}")
    return values


def _in_range(values: Array, limit: int, what: str, where: str) -> Array:
    if len(values) and (values.min() < 0 or values.max() >= limit):
        bad = values[(values < 0) | (values >= limit)][0]
        raise TopologyError(f"{where}: {what} {bad} out of range 0..{limit - 1}")
    return values.astype(np.int64, copy=False)


def expand_compressed(
    indptr: object, indices: object, data: object, n_major: int, n_minor: int, where: str
) -> tuple[Array, Array, Array]:
    """Checks CSR/CSC buffers completely (SciPy's ``check_format(full_check=True)``) and returns
    ``(major, minor, data)`` coordinates of the stored entries."""
    indptr = _index_array(indptr, n_major + 1, "indptr", where)
    indices = _index_array(indices, None, "indices", where)
    if not isinstance(data, np.ndarray) or data.ndim != 1 or len(data) != len(indices):
        raise TopologyError(f"{where}: data must be a 1-D array as long as indices")
    if indptr[0] != 0 or np.any(indptr[1:] < indptr[:-1]):
        raise TopologyError(f"{where}: indptr must start at 0 and never decrease")
    nnz = int(indptr[-1])
    if nnz > len(indices):
        raise TopologyError(f"{where}: indptr runs to {nnz}, past the {len(indices)} entries")
    minor = _in_range(indices[:nnz], n_minor, "index", where)
    bounds = indptr.astype(np.int64)  # every entry is <= nnz: checked above
    counts = bounds[1:] - bounds[:-1]
    major = np.repeat(np.arange(n_major, dtype=np.int64), counts)
    return major, minor, data[:nnz]


def compressed_pattern(
    indptr: object,
    indices: object,
    data: object,
    shape: object,
    by_row: bool,
    where: str,
    budget: int,
) -> sp.csc_array:
    """The connection pattern of CSR (``by_row``) or CSC buffers, checked completely first."""
    n_in, n_out = check_shape(shape, where)
    entries = len(indices) if isinstance(indices, np.ndarray) else 0
    check_budget(
        layer_bytes(n_in, n_out, entries),
        budget,
        where,
        f"shape {(n_in, n_out)} with {entries:,} entries",
    )
    n_major, n_minor = (n_in, n_out) if by_row else (n_out, n_in)
    major, minor, values = expand_compressed(indptr, indices, data, n_major, n_minor, where)
    rows, cols = (major, minor) if by_row else (minor, major)
    return coo_pattern(rows, cols, values, (n_in, n_out), where, budget)


def coo_pattern(
    rows: object, cols: object, data: object, shape: object, where: str, budget: int
) -> sp.csc_array:
    """The connection pattern of COO entries as a canonical CSC array (sorted, no duplicates,
    no zeros; duplicates are summed first, as SciPy does), after checking them completely."""
    n_in, n_out = check_shape(shape, where)
    if not isinstance(data, np.ndarray) or data.ndim != 1:
        raise TopologyError(f"{where}: data must be a 1-D array")
    rows = _index_array(rows, len(data), "row indices", where)
    cols = _index_array(cols, len(data), "column indices", where)
    check_index_limit((len(data),), where)
    check_budget(
        layer_bytes(n_in, n_out, len(data)),
        budget,
        where,
        f"shape {(n_in, n_out)} with {len(data):,} entries",
    )
    check_weight_values(data, where)
    rows = _in_range(rows, n_in, "row index", where)
    cols = _in_range(cols, n_out, "column index", where)
    return _canonical(rows, cols, data, n_in, n_out)


def _canonical(rows: Array, cols: Array, data: Array, n_in: int, n_out: int) -> sp.csc_array:
    key = cols.astype(np.uint64) * np.uint64(max(n_in, 1)) + rows.astype(np.uint64)
    values = data
    if len(key) > 1 and not np.all(key[1:] > key[:-1]):  # unsorted or duplicated
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        values = np.add.reduceat(data[order].astype(_sum_dtype(data.dtype)), starts)
        key = key[starts]
    key = key[values != 0]
    rows = (key % np.uint64(max(n_in, 1))).astype(np.int64)
    cols = (key // np.uint64(max(n_in, 1))).astype(np.int64)
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=n_out), out=indptr[1:])
    return sp.csc_array((np.ones(len(rows), dtype=bool), rows, indptr), shape=(n_in, n_out))


def _sum_dtype(dtype: np.dtype[Any]) -> type[np.generic]:
    if np.issubdtype(dtype, np.complexfloating):
        return np.complex128
    if np.issubdtype(dtype, np.signedinteger):
        return np.int64
    if np.issubdtype(dtype, np.unsignedinteger):
        return np.uint64
    return np.float64


def sparse_pattern(matrix: Any, where: str, budget: int) -> sp.csc_array:
    """A ``scipy.sparse`` matrix's connection pattern, every index checked first."""
    fmt = getattr(matrix, "format", None)
    shape = check_shape(getattr(matrix, "shape", None), where)
    check_budget(layer_bytes(*shape, 0), budget, where, f"shape {shape}")
    try:
        if fmt in ("csr", "csc"):
            parts = (matrix.indptr, matrix.indices, matrix.data)
        elif fmt == "coo":
            parts = (matrix.row, matrix.col, matrix.data)
        else:  # bsr, dia, lil, dok: SciPy converts these to COO with numpy, which checks
            coo = matrix.tocoo()
            parts = (coo.row, coo.col, coo.data)
    except Exception as exc:  # malformed internals of a hand-made matrix
        raise TopologyError(f"{where}: malformed {fmt} matrix ({one_line(exc)})") from None
    if fmt in ("csr", "csc"):
        return compressed_pattern(*parts, shape, fmt == "csr", where, budget)
    rows, cols, data = parts
    return coo_pattern(rows, cols, data, shape, where, budget)


def dense_pattern(array: Array, where: str, budget: int) -> sp.csc_array:
    """A dense (inputs, neurons) array's connection pattern."""
    n_in, n_out = check_shape(array.shape, where)
    check_weight_values(array, where)
    nnz = int(np.count_nonzero(array))
    check_index_limit((nnz,), where)
    needed = layer_bytes(n_in, n_out, nnz) + n_in * n_out  # and a boolean mask
    check_budget(needed, budget, where, f"shape {(n_in, n_out)} with {nnz:,} connections")
    # Neuron-major: each neuron's inputs in order, CSC's layout. One flat nonzero and a
    # remainder take about a third of the time of a 2-D nonzero, which computes both indices.
    mask = (array != 0).T
    rows = np.flatnonzero(mask)
    if n_in:
        rows %= n_in
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(mask, axis=1), out=indptr[1:])
    return sp.csc_array((np.ones(nnz, dtype=bool), rows, indptr), shape=(n_in, n_out))


def connection_pattern(weights: object, where: str, budget: int) -> sp.csc_array:
    """Any layer's non-zero pattern as a canonical CSC array (sorted, no duplicates)."""
    if sp.issparse(weights):
        return sparse_pattern(weights, where, budget)
    try:
        array = np.asarray(unmasked(weights))
    except Exception as exc:  # ragged lists and the like
        raise TopologyError(f"{where}: not an array ({one_line(exc)})") from None
    if array.ndim != 2:
        raise TopologyError(
            f"{where}: expected a 2-D (inputs, neurons) array, got shape {array.shape}"
        )
    return dense_pattern(array, where, budget)


def sparse_from_npz(arrays: Mapping[str, Array], where: str, budget: int) -> sp.csc_array:
    """The pattern of a ``scipy.sparse.save_npz`` file's arrays (csr, csc or coo)."""
    fmt_array = arrays["format"]
    fmt = fmt_array.item() if fmt_array.size == 1 else None
    fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else str(fmt)
    shape_array = arrays["shape"]
    if shape_array.ndim != 1 or not np.issubdtype(shape_array.dtype, np.integer):
        raise TopologyError(f"{where}: shape must be a list of integers, got {shape_array!r}")
    shape = check_shape(tuple(int(n) for n in shape_array), where)
    missing = [k for k in _SPARSE_PARTS.get(fmt, ()) if k not in arrays]
    if fmt not in _SPARSE_PARTS:
        raise TopologyError(f"{where}: unsupported sparse format {fmt!r}")
    if missing and not (fmt == "coo" and "coords" in arrays):
        raise TopologyError(f"{where}: {fmt} matrix without {', '.join(missing)}")
    if fmt == "coo":
        rows, cols = _coo_rows_cols(arrays, where)
        return coo_pattern(rows, cols, arrays["data"], shape, where, budget)
    parts = (arrays["indptr"], arrays["indices"], arrays["data"])
    return compressed_pattern(*parts, shape, fmt == "csr", where, budget)


_SPARSE_PARTS = {
    "csr": ("indptr", "indices", "data"),
    "csc": ("indptr", "indices", "data"),
    "coo": ("row", "col", "data"),
}


def _coo_rows_cols(arrays: Mapping[str, Array], where: str) -> tuple[Array, Array]:
    if "row" in arrays and "col" in arrays:
        return arrays["row"], arrays["col"]
    coords = arrays["coords"]
    if coords.ndim != 2 or coords.shape[0] != 2:
        raise TopologyError(f"{where}: coords must have two rows, got shape {coords.shape}")
    return coords[0], coords[1]


def drop_last_row(pattern: sp.csc_array) -> sp.csc_array:
    """A canonical pattern without its last row (the paper's bias)."""
    n_in, n_out = pattern.shape
    keep = pattern.indices < n_in - 1
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return sp.csc_array(
        (pattern.data[keep], pattern.indices[keep], kept_before[pattern.indptr]),
        shape=(n_in - 1, n_out),
    )


# Layers of a weights file ---------------------------------------------------------------------


# What, in a state dict's names, shows a model that is not a plain chain: a state dict holds
# no graph, so it is read as a chain only when nothing in it says otherwise. Searched in the
# names of weights (2-D and more), in this order; what each shows, for the message.
_GRAPH_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?:^|[._])(?:downsample|shortcut|skip\w*|residual\w*)(?:[._]|$)", re.I),
        "a branch (downsample/shortcut) beside the main path",
    ),
    (
        re.compile(
            r"(?:^|[._])(?:\w*attn\w*|\w*attention\w*|in_proj\w*|[qkv]_proj|qkv\w*)(?:[._]|$)", re.I
        ),
        "part of attention (query, key and value projections read one input, added back to it)",
    ),
    (
        re.compile(r"(?:^|[._])(?:gate_proj|up_proj)(?:[._]|$)", re.I),
        "part of a gated MLP (gate and up projections read one input)",
    ),
    (
        re.compile(r"(?:^|\.)layer[0-9]+\.[0-9]+\.(?:conv|bn)[0-9]+\."),
        "in a residual block (a ResNet's layerN.M with conv1, conv2: its input is added to "
        "its output)",
    ),
)
GRAPH_WAY_OUT = (
    "A state dict holds no graph (residual connections, attention): nnstd reads it as one "
    "only with its spec, nnstd.torch.to_network(state, spec=...) in Python or --spec FILE on "
    "the command line (docs/inputs.md#graph-specs); to read a part of it that is a plain "
    "chain, name its weights in order with layers=[...]"
)


def not_a_chain(source: str, detail: str) -> TopologyError:
    return TopologyError(f"{source}: not a plain chain of layers: {detail}. {GRAPH_WAY_OUT}")


def check_plain_chain(
    shapes: Mapping[str, tuple[int, ...]], read: Collection[str], source: str
) -> None:
    """Refuses a state dict whose names or unread weights show a graph.

    ``shapes``: every tensor's shape; ``read``: the names the chain reads (weights and their
    masks). A weight whose name shows a branch, attention or a residual block, or a weight
    (2-D or more) the chain would leave unread, stops it with a `TopologyError` naming it.
    """
    weights = [name for name, shape in shapes.items() if len(shape) >= 2]
    for pattern, what in _GRAPH_NAMES:
        found = next((name for name in weights if pattern.search(name)), None)
        if found is not None:
            raise not_a_chain(source, f"{found} is {what}")
    unread = [name for name in weights if name not in read]
    if unread:
        name = unread[0]
        raise not_a_chain(
            source,
            f"{name} (shape {tuple(shapes[name])}) is not read as a layer, so a chain would "
            f"skip it (a branch, attention, or a layer nnstd does not read)",
        )


def _shape(value: object) -> tuple[int, ...]:
    return tuple(int(n) for n in getattr(value, "shape", ()))


def warn_if_dense(patterns: Sequence[sp.csc_array], source: str) -> None:
    """One warning when every layer (a connection pattern) holds a connection at every
    position: then every two networks of the same widths are at distance 0."""
    if patterns and all(0 < p.nnz == p.shape[0] * p.shape[1] for p in patterns):
        warnings.warn(
            f"{source}: every layer is 100% dense (no zero weight, no mask), so NNSTD between "
            f"it and any network of the same widths is 0; to compare sparse topologies, keep "
            f"the masks with the weights (prune's weight_mask, or masks under 'masks' beside "
            f"'model')",
            UserWarning,
            stacklevel=4,
        )


def pick_weights(
    tensors: Mapping[str, Weights], patterns: Sequence[str] | None, source: str
) -> list[tuple[str, Weights]]:
    """The layers' weights in order. Without patterns: every 2-D or 4-D weight, one per module,
    its pruning mask (``weight_mask``) preferred over ``weight`` over ``weight_orig``; refused
    (`check_plain_chain`) where names or unread weights show a graph. With patterns: each
    pattern (an exact name or a regular expression matched in full) in the order given, the
    names it matches in their natural order."""
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
                    f"{source}: no tensor matches {pattern!r}; tensors: {', '.join(tensors)}"[:500]
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
    check_plain_chain(
        {name: _shape(array) for name, array in tensors.items()},
        {name for base in order for name in bases[base].values()},
        source,
    )
    return [(n, tensors[n]) for n in picked]


def as_layer(
    name: str, array: Weights, orientation: Orientation, source: str, k: int, budget: int
) -> tuple[Weights, int]:
    """One weight as an (inputs, neurons) matrix and its input group size."""
    where = f"{source}: layer {k} ({name})"
    if not sp.issparse(array):
        check_weight_values(array, where)
    if array.ndim == 4:  # PyTorch convolution (out, in, kh, kw), whatever the orientation
        out_ch, in_ch, kh, kw = array.shape
        check_budget(array.nbytes, budget, where, f"shape {array.shape}")
        matrix = array.transpose(1, 2, 3, 0).reshape(in_ch * kh * kw, out_ch)
        return matrix, kh * kw
    if array.ndim != 2:
        raise TopologyError(
            f"{where}: expected a 2-D weight or a 4-D convolution kernel, got shape {array.shape}"
        )
    check_shape(array.shape, where)
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
            and previous > 0
            and n_in % previous == 0
        ):
            groups[k] = n_in // previous
    return groups


def _first_break(shapes: Sequence[tuple[int, int]], groups: Sequence[int]) -> int | None:
    for k in range(1, len(shapes)):
        if shapes[k][0] != shapes[k - 1][1] * groups[k]:
            return k
    return None


def _convolution_groups(shapes: Sequence[tuple[int, int]], kernels: Sequence[int], k: int) -> int:
    """How many groups convolution ``k`` has if it reads a whole fraction of the previous
    layer's channels (``groups=`` in PyTorch: each output channel reads its group only); 1
    when it does not look grouped (or is not a convolution)."""
    previous = shapes[k - 1][1]
    if kernels[k] == 1 or shapes[k][0] % kernels[k]:
        return 1
    channels = shapes[k][0] // kernels[k]
    if 0 < channels < previous and previous % channels == 0:
        return previous // channels
    return 1


def _branch_source(shapes: Sequence[tuple[int, int]], kernels: Sequence[int], k: int) -> int | None:
    """The earlier layer (-1: the network's inputs) whose units layer ``k``, which does not
    chain with layer ``k - 1``, reads whole: a branch such as a ResNet's downsample, which
    reads a block's input beside the block's first layer."""
    if shapes[k][0] % kernels[k]:
        return None
    channels = shapes[k][0] // kernels[k]
    for j in range(k - 2, -1, -1):
        if shapes[j][1] == channels:
            return j
    return -1 if shapes[0][0] == channels * kernels[0] else None


def chain_groups(
    names: Sequence[str],
    layers: list[tuple[Weights, int]],
    orientation: Orientation,
    source: str,
) -> list[int]:
    """Input groups for each layer; reports layers that do not chain, and says when reading
    them the other way round would chain (a transposed layer, or the wrong orientation)."""
    shapes = [(int(m.shape[0]), int(m.shape[1])) for m, _ in layers]
    kernels = [g for _, g in layers]
    groups = _infer_groups(shapes, kernels)
    k = _first_break(shapes, groups)
    if k is None:
        return groups
    other = "in_out" if orientation == "out_in" else "out_in"
    flipped = [(s[1], s[0]) if g == 1 else s for s, g in zip(shapes, kernels, strict=True)]
    if _first_break(flipped, _infer_groups(flipped, kernels)) is None:
        hint = (
            f"; all layers chain when read the other way round: pass "
            f"orientation={other!r} (they were read as {orientation!r})"
        )
    else:
        hint = _transposed_hint(shapes, flipped, kernels, k)
    problem = (
        f"layer {k} ({names[k]}) has shape {shapes[k]} as (inputs, neurons), which does not "
        f"chain with layer {k - 1}'s {shapes[k - 1][1]} neurons"
    )
    grouped = _convolution_groups(shapes, kernels, k)
    if grouped > 1:
        raise TopologyError(
            f"{source}: {problem}: it reads {shapes[k][0] // kernels[k]} of them per output "
            f"channel, so it is a grouped or depthwise convolution ({grouped} groups), which "
            f"nnstd does not read yet; name the layers before or after it with layers=[...]"
        )
    earlier = _branch_source(shapes, kernels, k)
    if earlier is not None and not hint.startswith("; all layers"):
        what = "the network's inputs" if earlier < 0 else f"layer {earlier} ({names[earlier]})"
        named = any(pattern.search(names[k]) for pattern, _ in _GRAPH_NAMES)
        transposed = ", unless it is a 2-D weight stored transposed (it chains when transposed)"
        raise not_a_chain(
            source,
            f"{problem}: it reads the units of {what}, so it is a branch (downsample/shortcut)"
            f"{transposed if hint and not named else ''}",
        )
    raise TopologyError(f"{source}: {problem}{hint}")


def _transposed_hint(
    shapes: list[tuple[int, int]], flipped: list[tuple[int, int]], kernels: list[int], k: int
) -> str:
    """The hint when layer ``k`` alone chains when transposed (a 2-D layer stored the other
    way round), else nothing."""
    if kernels[k] != 1:
        return ""
    single = list(shapes)
    single[k] = flipped[k]
    if (
        _first_break(single, _infer_groups(single, kernels)) in (None, k + 1)
        and single[k][0] == shapes[k - 1][1]
    ):
        return "; it chains when transposed: is this layer stored the other way round?"
    return ""


def check_orientation(orientation: str | None, default: Orientation) -> Orientation:
    chosen = default if orientation is None else orientation
    if chosen not in ORIENTATIONS:
        raise ValueError(f"orientation must be 'in_out' or 'out_in', got {orientation!r}")
    return chosen  # type: ignore[return-value]


# ---- mask conventions users keep ------------------------------------------------------------

# torch.nn.utils.parametrize: ``P.parametrizations.weight.original`` and a buffer of one of its
# parametrizations, ``P.parametrizations.weight.<i>.mask``.
_PARAMETRIZED_ORIGINAL = re.compile(r"(.+)\.parametrizations\.weight\.original")
_PARAMETRIZED_MASK = re.compile(r"(.+)\.parametrizations\.weight\.[0-9]+\.mask")
# compressed-tensors / sparseml: ``NAME.bitmask`` (rows packed little-endian) beside ``NAME.shape``.
_BITMASK = ".bitmask"
_BITMASK_SHAPE = ".shape"
_BITMASK_PARTS = (".compressed", ".row_offsets")


def _unpack_bitmask(packed: Array, shape_values: Array, where: str, budget: int) -> Array:
    """A boolean mask of ``shape`` from rows packed with ``numpy.packbits(bitorder="little")``."""
    shape = [int(v) for v in np.asarray(shape_values).ravel()]
    if len(shape) != 2 or min(shape) < 0:
        raise TopologyError(f"{where}: the shape tensor must hold 2 sizes, got {shape}")
    rows, cols = shape
    check_budget(rows * cols, budget, where, f"a mask of shape {shape}")
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.shape != (rows, (cols + 7) // 8):
        raise TopologyError(
            f"{where}: a bitmask of shape {shape} is {rows} rows of {(cols + 7) // 8} uint8 "
            f"bytes, got {packed.dtype} {packed.shape}"
        )
    return np.unpackbits(packed, axis=1, count=cols, bitorder="little").astype(bool)


def apply_mask_conventions(
    tensors: Mapping[str, Weights], source: str, budget: int = DEFAULT_LOAD_BUDGET
) -> dict[str, Weights]:
    """Tensors with the mask conventions read as ``weight`` / ``weight_orig`` / ``weight_mask``
    names: parametrize-style masks and compressed-tensors bitmasks. Other tensors unchanged."""
    out: dict[str, Weights] = {}
    for name, value in tensors.items():
        original = _PARAMETRIZED_ORIGINAL.fullmatch(name)
        mask = _PARAMETRIZED_MASK.fullmatch(name)
        if original:
            out[f"{original.group(1)}.weight_orig"] = value
        elif mask:
            out[f"{mask.group(1)}.weight_mask"] = value
        elif name.endswith(_BITMASK):
            base = name[: -len(_BITMASK)]
            shape = tensors.get(base + _BITMASK_SHAPE)
            if shape is None:
                raise TopologyError(f"{source}: {name} has no {base}{_BITMASK_SHAPE} beside it")
            out[base] = _unpack_bitmask(
                np.asarray(value), np.asarray(shape), f"{source}: {name}", budget
            )
        elif name.endswith((_BITMASK_SHAPE, *_BITMASK_PARTS)) and (
            name.rsplit(".", 1)[0] + _BITMASK in tensors
        ):
            continue  # the bitmask's companions
        else:
            out[name] = value
    return out


def read_sharded_safetensors(index: Path, budget: int = DEFAULT_LOAD_BUDGET) -> dict[str, Array]:
    """The tensors of a sharded safetensors checkpoint from its index json
    (``{"weight_map": {tensor: shard file}}``), shards read from the index's folder."""
    with open_regular(index) as handle:
        try:
            data = json.loads(handle.read(SAFETENSORS_HEADER_LIMIT).decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise TopologyError(f"{index}: not a safetensors index ({one_line(exc)})") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise TopologyError(f"{index}: not a safetensors index (no weight_map of file names)")
    tensors: dict[str, Array] = {}
    remaining = budget  # the budget holds for all shards together
    for shard in sorted(set(weight_map.values()), key=natural_key):
        if Path(shard).name != shard:
            raise TopologyError(f"{index}: shard {shard!r} is not a file beside the index")
        read = read_safetensors(index.parent / shard, remaining)
        remaining -= sum(a.nbytes for a in read.values())
        missing = [n for n, s in weight_map.items() if s == shard and n not in read]
        if missing:
            raise TopologyError(f"{index}: {missing[0]!r} is not in {shard}")
        tensors.update({n: a for n, a in read.items() if weight_map.get(n) == shard})
    return {n: tensors[n] for n in sorted(tensors, key=natural_key)}
