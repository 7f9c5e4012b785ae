"""The resumable store: finished tiles on disk, each one file written atomically and checked
when read back."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from nnstd._errors import TopologyError
from nnstd._loaders import read_npz_arrays
from nnstd._network import PathLike
from nnstd._tiles import STORE_FORMAT, BoolArray, FloatArray, Mode

# A tile nnstd writes is 16 x 16 pairs (a few MB even for a thousand layers); a file declaring
# more than this, or more than its own size on disk, is not one and is never allocated.
TILE_READ_LIMIT = 256 << 20
TILE_MEMBERS = ("format", "mode", "rows", "cols", "computed", "values")
NETWORK_KEY = re.compile(r"[0-9a-f]{32}")  # network_key's digest: 16 bytes in hex


class StoreWarning(UserWarning):
    """A tile of a store failed its checks or could not be written: its pairs are computed
    again (the message names the tile)."""


class Store:
    """Finished tiles on disk, keyed by the networks' content and the mode.

    Layout: ``PATH/mode-<key>/mode.json`` (the mode in words) and ``tiles/<name>.npz``, one file
    per finished tile holding the store format, the mode's key, its row keys, column keys, which
    pairs it computed and their values; the name is a hash of all but the values. Every tile is
    written to a temporary file and renamed into place, so an interrupted run leaves whole tiles
    or none, and any number of writers (threads, Dask workers, SLURM tasks) can share a store
    without locks: no file is ever written twice with different content. Every tile read is
    checked (regular file, declared sizes, format, mode, keys, name, values in [0, 1]); one that
    fails is skipped with a `StoreWarning` and its pairs are computed again.
    """

    def __init__(self, path: PathLike, mode: Mode) -> None:
        if os.fspath(path) in ("", b""):
            raise ValueError("store must be a folder path, got an empty one")
        # Absolute from the start: Dask workers get this path, and their working folder is not
        # the caller's.
        self.root = Path(os.fspath(path)).absolute()
        if self.root.exists() and not self.root.is_dir():
            raise TopologyError(f"store {self.root}: exists and is not a folder")
        self.mode = mode
        self.folder = self.root / f"mode-{mode.key()}"
        self.tiles = self.folder / "tiles"
        self.tiles.mkdir(parents=True, exist_ok=True)
        self._reported: set[Path] = set()  # tiles already named in a warning by this process
        described = self.folder / "mode.json"
        if not described.exists():
            _atomic_write_bytes(
                described,
                json.dumps({"format": STORE_FORMAT, **asdict(mode)}, indent=1).encode(),
            )

    def known(self, row_keys: Sequence[str], col_keys: Sequence[str]) -> FloatArray:
        """Stored values for every (row, column) key pair; NaN where none is stored."""
        out = np.full((len(row_keys), len(col_keys), self.mode.depth), np.nan)
        row_at, col_at = _positions(row_keys), _positions(col_keys)
        refused: list[str] = []
        for tile in sorted(self.tiles.glob("*.npz")):
            try:
                t_rows, t_cols, computed, values = _read_tile(tile, self.mode)
            except TopologyError as exc:
                refused.append(str(exc))  # its pairs are simply computed again
                self._reported.add(tile)
                continue
            src_r, dst_r = _matches(t_rows, row_at)
            src_c, dst_c = _matches(t_cols, col_at)
            if not len(src_r) or not len(src_c):
                continue
            found = values[np.ix_(src_r, src_c)]
            target = out[np.ix_(dst_r, dst_c)]
            stored = computed[np.ix_(src_r, src_c)]
            target[stored] = found[stored]
            out[np.ix_(dst_r, dst_c)] = target
        if refused:
            _warn_refused(refused)
        return out

    def write(
        self,
        row_keys: Sequence[str],
        col_keys: Sequence[str],
        computed: BoolArray,
        values: FloatArray,
    ) -> Path | None:
        """One finished tile, atomically; returns its file (None if a folder is in its place)."""
        mode_key = self.mode.key()
        target = self.tiles / f"{tile_name(mode_key, row_keys, col_keys, computed)}.npz"
        fd, tmp = _create_temporary(self.tiles)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    format=np.int64(STORE_FORMAT),
                    mode=np.str_(mode_key),
                    rows=np.array(row_keys, dtype="U32"),
                    cols=np.array(col_keys, dtype="U32"),
                    computed=computed,
                    values=np.where(computed[:, :, None], values, np.nan),
                )
            os.replace(tmp, target)
        except IsADirectoryError:
            Path(tmp).unlink(missing_ok=True)
            if target not in self._reported:
                self._reported.add(target)
                warnings.warn(
                    f"store: cannot write tile {target}: a folder is in its place; its pairs are "
                    "computed again on every run until it is removed",
                    StoreWarning,
                    stacklevel=2,
                )
            return None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def tile_name(
    mode_key: str, row_keys: Sequence[str], col_keys: Sequence[str], computed: BoolArray
) -> str:
    """A tile's file name: a hash of its mode, networks and computed pairs (not its values)."""
    h = hashlib.blake2b(digest_size=16)
    for key in (mode_key, "|", *row_keys, "|", *col_keys):
        h.update(key.encode() + b",")
    h.update(np.array(computed.shape, dtype=np.int64).tobytes())
    h.update(np.packbits(computed).tobytes())
    return h.hexdigest()


def _warn_refused(refused: list[str]) -> None:
    """One line for all the tiles a read skipped: how many, and the first one's problem."""
    if len(refused) == 1:
        text = f"store: skipped a tile, its pairs are computed again: {refused[0]}"
    else:
        text = (
            f"store: skipped {len(refused)} tiles, their pairs are computed again; the first: "
            f"{refused[0]}"
        )
    warnings.warn(text, StoreWarning, stacklevel=3)


def _positions(keys: Sequence[str]) -> dict[str, list[int]]:
    at: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        at.setdefault(key, []).append(i)
    return at


def _matches(
    keys: npt.NDArray[np.str_], at: dict[str, list[int]]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(position in the tile, position in the run) for every key of the tile found in the run;
    a network given twice gets the stored values at both its positions."""
    src: list[int] = []
    dst: list[int] = []
    for k, key in enumerate(keys):
        for i in at.get(str(key), ()):
            src.append(k)
            dst.append(i)
    return np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp)


StoredTile: TypeAlias = "tuple[npt.NDArray[np.str_], npt.NDArray[np.str_], BoolArray, FloatArray]"


def _read_tile(path: Path, mode: Mode) -> StoredTile:
    """A tile's row keys, column keys, computed pairs and values, read with the loaders' checks
    (a regular file; every declared size within the file's own size, so a forged header is
    never allocated; no pickle) and then checked as a tile of this mode: one-line
    TopologyError naming the file otherwise."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read ({exc.strerror})") from None
    arrays = read_npz_arrays(path, min(size, TILE_READ_LIMIT))

    def refuse(problem: str) -> TopologyError:
        return TopologyError(f"{path}: {problem}")

    missing = [name for name in TILE_MEMBERS if name not in arrays]
    if missing:
        raise refuse(f"not a tile of this store (no {', '.join(missing)})")
    fmt, mode_key = arrays["format"], arrays["mode"]
    if fmt.shape != () or fmt.dtype.kind not in "iu" or int(fmt) != STORE_FORMAT:
        raise refuse(f"not a tile of store format {STORE_FORMAT}")
    if mode_key.shape != () or mode_key.dtype.kind != "U" or str(mode_key) != mode.key():
        raise refuse("a tile of another mode (solver, depth, memory budget or version)")
    rows, cols, computed, values = (arrays[n] for n in ("rows", "cols", "computed", "values"))
    for keys in (rows, cols):
        if keys.ndim != 1 or keys.dtype.kind != "U" or not all(map(NETWORK_KEY.fullmatch, keys)):
            raise refuse("its network keys are malformed")
    if computed.dtype != np.bool_ or computed.shape != (len(rows), len(cols)):
        raise refuse("its computed pairs do not match its networks")
    if values.dtype != np.float64 or values.shape != (len(rows), len(cols), mode.depth):
        raise refuse(f"its values are not {len(rows)} x {len(cols)} x {mode.depth} float64")
    found = values[computed]
    if not np.all((found >= 0.0) & (found <= 1.0)):  # NaN fails both
        raise refuse("holds distances outside [0, 1] or not finite")
    if path.stem != tile_name(str(mode_key), list(map(str, rows)), list(map(str, cols)), computed):
        raise refuse("its name does not match its content")
    return rows, cols, computed, values


def _create_temporary(folder: Path) -> tuple[int, str]:
    """A new file in ``folder`` for writing, created with mode 0666 so that the umask (and any
    default ACL) decides who may read it, as for any other file the user creates; mkstemp's
    0600 would make a group-shared store unreadable to the group."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = os.path.join(folder, f".part-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = _create_temporary(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
