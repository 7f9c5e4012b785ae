"""Copy the bundled topologies, ``topo/``, into the package data a wheel carries.

The topologies live at the top of the checkout (and of the sdist); a wheel carries them as
``nnstd/data/topo``. The build backend calls this before maturin packs the package; CI and the
release workflow, which call maturin directly, run this file first:
``python build_backend/stage_topo.py``. The copy is git-ignored, so ``topo/`` stays the one source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPO_SOURCE = ROOT / "topo"
TOPO_PACKAGE_DATA = ROOT / "python" / "nnstd" / "data" / "topo"


def stage_topologies() -> None:
    """Replace the package data folder by a fresh copy of ``topo/``, where ``topo/`` exists."""
    if not TOPO_SOURCE.is_dir():
        return
    if TOPO_PACKAGE_DATA.exists():
        shutil.rmtree(TOPO_PACKAGE_DATA)
    shutil.copytree(TOPO_SOURCE, TOPO_PACKAGE_DATA)


if __name__ == "__main__":
    stage_topologies()
