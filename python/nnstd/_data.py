"""Where the files nnstd ships beside its code are: the bundled topologies and the docs."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder ``name`` (``"topo"`` or ``"docs"``) as installed or as in a checkout.

    A wheel carries it as package data (``nnstd/data/<name>``); a checkout, or an editable install
    of one, reads the checkout's top-level folder, the source of that package data.
    """
    installed = _PACKAGE / "data" / name
    return installed if installed.is_dir() else _PACKAGE.parent.parent / name
