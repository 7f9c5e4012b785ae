"""Writing output files whole or not at all, and checking output paths before any work.

Every file nnstd writes (matrices, figures) goes through `write_file`: the bytes go to a
temporary file in the target's folder, are flushed to disk, and only then renamed over the
target, so a full disk or an interrupt leaves the previous file as it was (and no temporary
file). Missing parent folders are created. A target that exists and is not a regular file (a
device such as ``/dev/stdout``, a FIFO) is written into directly, as a shell redirection would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["OutputError", "check_output_file", "check_output_folder", "write_file"]


class OutputError(OSError):
    """An output file that could not be written; the message is one line naming it."""

    def __str__(self) -> str:
        return str(self.strerror)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder writing would start from)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_writable_folder(path: Path, what: str) -> None:
    """``path`` can hold files, or the folders leading to it can be created."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise OutputError(0, f"{what}: cannot write it: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            0, f"{what}: cannot write it: no permission to write in {existing} (or read-only)"
        )


def check_output_file(path: Path, what: str | None = None) -> None:
    """Refuses, before any work, a path a file cannot be written to: an existing folder, a
    path under a file, a folder without write permission. One-line `OutputError`."""
    what = what or str(path)
    if path.is_dir():
        raise OutputError(0, f"{path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        return  # a device or FIFO, written into as it is
    _check_writable_folder(Path(os.path.realpath(path)).parent, what)


def check_output_folder(path: Path, what: str | None = None) -> None:
    """Refuses, before any work, a folder that files cannot be written into."""
    _check_writable_folder(path, what or str(path))


def _temporary_beside(target: Path) -> tuple[int, Path]:
    """A new file in ``target``'s folder, created with the permissions a plain ``open`` gives
    (0666 less the umask)."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return fd, candidate
    raise FileExistsError(f"{target}: no free temporary name beside it")


def _sync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (where the OS allows opening folders)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Writes ``path`` whole or not at all: ``write(stream)`` fills a temporary file beside it,
    which replaces ``path`` once it is on disk; a symbolic link is followed and kept.

    Raises
    ------
    OutputError
        If any step fails (full disk, permissions, ...); a previous file is kept and the
        temporary file removed. Other exceptions from ``write`` are raised as they are, after
        the same clean-up.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "sub" / "out.txt"
    >>> write_file(target, lambda stream: stream.write(b"hello"))
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'hello', ['out.txt'])
    """
    try:
        existing: os.stat_result | None = os.stat(path)  # through symbolic links
    except FileNotFoundError:
        existing = None
    kept = "; the previous file is kept" if existing is not None else ""
    try:
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            if stat.S_ISDIR(existing.st_mode):
                raise IsADirectoryError(21, "is a folder")
            # A device or FIFO (/dev/stdout: a link that only opening follows): no rename.
            with open(path, "wb") as stream:
                write(stream)
            return
        target = Path(os.path.realpath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(target, write, existing)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        reason = exc.strerror or str(exc)
        raise OutputError(exc.errno or 0, f"{path}: not written ({reason}){kept}") from None


def _replace(
    target: Path, write: Callable[[BinaryIO], object], existing: os.stat_result | None
) -> None:
    fd, temporary = _temporary_beside(target)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if existing is not None:  # the replaced file's permissions, not the umask's
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)
