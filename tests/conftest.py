"""Shared fixtures: where the paper's topologies are, and small random networks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from nnstd.generate import PAPER_SNAPSHOTS
from nnstd.topology_set import bundled_topo_root

sys.path.insert(0, str(Path(__file__).parent))  # the oracle module

ROOT = Path(__file__).resolve().parent.parent
PAPER_TOPO_ENV = "NNSTD_PAPER_TOPO"


def paper_topo_root() -> Path:
    """`$NNSTD_PAPER_TOPO`, else `../shared/paper-topo` beside the checkout."""
    return Path(os.environ.get(PAPER_TOPO_ENV, ROOT.parent / "shared" / "paper-topo"))


@pytest.fixture(scope="session")
def paper_topo() -> Path:
    """The paper's topologies. Missing data fails on CI (CI=true) and skips, loudly, elsewhere."""
    root = paper_topo_root()
    if not (root / "e5_s0_w0").is_dir():
        message = (
            f"the paper's topologies are not at {root}; set {PAPER_TOPO_ENV} to the folder "
            f"holding e5_s0_w0 ... e5_s0_w9"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def paper_networks(root: Path, epoch: str) -> list[Path]:
    return [root / f"e5_s0_w{k}" / epoch for k in range(10)]


@pytest.fixture(scope="session")
def bundled_topo() -> Path:
    """The topologies bundled with nnstd (ten networks w0 ... w9, the paper's snapshots): what
    every test but the checks of the paper's own numbers runs on, on CI and on a fresh clone."""
    return bundled_topo_root()


def bundled_networks(root: Path, epoch: str) -> list[Path]:
    return [root / f"w{k}" / epoch for k in range(10)]


PAPER_EPOCHS = [f"epoch_{e:03d}" for e in PAPER_SNAPSHOTS]


# Mean off-diagonal layer-0 distance of the paper's published topologies (SciPy's values:
# test_paper.py checks these means against the SciPy oracle on ../shared/paper-topo) and of the
# paper's initial networks (its Figure 4 panel (a); the paper publishes no initial topologies).
PAPER_PANEL_MEANS = {
    "init": 0.064,
    "epoch_000": 0.318,
    "epoch_010": 0.391,
    "epoch_030": 0.420,
    "epoch_050": 0.437,
    "epoch_100": 0.466,
    "epoch_190": 0.504,
}
