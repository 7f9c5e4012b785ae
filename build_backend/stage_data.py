"""Copy the package data a wheel carries from where it lives in the checkout.

The bundled topologies live at the top of the checkout (and of the sdist) in ``topo/``, the
documentation in ``docs/``; a wheel carries them as ``nnstd/data/topo`` and ``nnstd/data/docs``
(so that ``nnstd figure4`` runs and ``nnstd --help`` can point to the definition from any
folder). The build backend calls this before maturin packs the package; CI and the release
workflow, which call maturin directly, run this file first: ``python build_backend/stage_data.py``.
The copies are git-ignored, so ``topo/`` and ``docs/`` stay the one source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = ROOT / "python" / "nnstd" / "data"
SOURCES = ("topo", "docs")


def stage_package_data() -> None:
    """Replace each package data folder by a fresh copy of its source, where the source exists."""
    for name in SOURCES:
        source, target = ROOT / name, PACKAGE_DATA / name
        if not source.is_dir():
            continue
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


if __name__ == "__main__":
    stage_package_data()
