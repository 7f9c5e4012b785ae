"""The topology generator (tiny configurations) and the committed topo/ set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nnstd
import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp
from conftest import PAPER_PANEL_MEANS
from nnstd._paper import FIGURE4_EPOCHS
from nnstd.generate import SetConfig, generate
from nnstd.topology_set import TopologySet, bundled_topo_root
from scipy.stats import spearmanr

TINY = SetConfig(
    widths=(784, 48, 32, 10), density=0.05, networks=3, epochs=3, snapshots=(0, 2), seed=3
)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, TINY, log=lambda message: None)
    return out


def test_tiny_generation_end_to_end(tiny_set: Path, tmp_path: Path) -> None:
    ts = TopologySet.open(tiny_set)
    assert ts.networks == ("w0", "w1", "w2")
    assert ts.epochs == ("init", "epoch_000", "epoch_002")
    net = nnstd.load_network(tiny_set / "w1" / "epoch_002")
    assert net.shapes == [(784, 48), (48, 32), (32, 10)]
    raw = sp.load_npz(tiny_set / "w1" / "epoch_002" / "weight_l0.npz")
    assert raw.shape == (785, 48) and raw.dtype == np.float32  # bias row last
    accuracy = (tiny_set / "w0" / "testacc.txt").read_text().split()
    assert len(accuracy) == 3 and all(0.0 <= float(a) <= 1.0 for a in accuracy)
    assert json.loads((tiny_set / "config.json").read_text())["networks"] == 3
    out = tmp_path / "fig.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnstd.cli",
            "figure4",
            "--topo-root",
            str(tiny_set),
            "--out",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000


def test_generation_is_deterministic_in_parallel_too(tiny_set: Path, tmp_path: Path) -> None:
    generate(tmp_path, TINY, log=lambda message: None, processes=2)
    for name in ("w2/init/weight_l0.npz", "w2/epoch_002/weight_l1.npz"):
        a, b = sp.load_npz(tiny_set / name), sp.load_npz(tmp_path / name)
        assert (a != b).nnz == 0


def test_rewiring_and_set_keep_the_connection_count(tiny_set: Path) -> None:
    counts = {
        (n, e): nnstd.load_network(tiny_set / n / e).connections
        for n in ("w0", "w1", "w2")
        for e in ("init", "epoch_000", "epoch_002")
    }
    assert len(set(map(tuple, counts.values()))) == 1
    init = [nnstd.load_network(tiny_set / n / "init") for n in ("w0", "w1", "w2")]
    d = nnstd.pairwise(init, layers=0)[:, :, 0]
    assert 0 < d[1, 0] < d[2, 0]  # two rewiring steps apart is farther than one


def test_generate_command_reports_missing_outputs_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnstd.cli",
            "generate",
            "--out",
            str(tmp_path / "g"),
            "--widths",
            "100",
            "10",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "784 inputs" in result.stderr


# The bundled set (generated once with `nnstd generate`, see topo/README.md).


@pytest.fixture(scope="module")
def committed() -> TopologySet:
    root = bundled_topo_root()
    assert (root / "w0").is_dir(), f"{root}: nnstd ships its generated topologies"
    return TopologySet.open(root)


@pytest.fixture(scope="module")
def panels(committed: TopologySet) -> dict[str, npt.NDArray[np.float64]]:
    return {e: committed.matrix(e, layers=0)[:, :, 0] for e in PAPER_PANEL_MEANS}


@pytest.mark.parametrize("epoch", list(PAPER_PANEL_MEANS))
def test_panel_means_match_the_papers(
    panels: dict[str, npt.NDArray[np.float64]], epoch: str
) -> None:
    d = panels[epoch]
    mean = float(d[~np.eye(len(d), dtype=bool)].mean())
    assert mean == pytest.approx(PAPER_PANEL_MEANS[epoch], abs=0.05)


@pytest.mark.parametrize("epoch", list(PAPER_PANEL_MEANS))
def test_distance_grows_with_rewiring_steps_in_every_panel(
    panels: dict[str, npt.NDArray[np.float64]], epoch: str
) -> None:
    d = panels[epoch]
    upper = np.triu_indices(len(d), 1)
    steps = upper[1] - upper[0]
    assert spearmanr(steps, d[upper]).statistic >= 0.8


def test_main_job_runs_from_any_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("nnstd")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "nnstd.cli"]
    result = subprocess.run(
        [*command, "figure4", "--out", "fig.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fig.png").stat().st_size > 10_000


def test_committed_set_has_the_figure4_snapshots(committed: TopologySet) -> None:
    assert len(committed.networks) == 10
    for epoch in FIGURE4_EPOCHS:
        assert epoch in committed.epochs


def test_initial_distances_grow_with_rewiring_steps(committed: TopologySet) -> None:
    d = committed.matrix("init", layers=0)[:, :, 0]
    by_steps = [np.mean([d[i, i + s] for i in range(10 - s)]) for s in range(1, 10)]
    assert all(a < b for a, b in zip(by_steps, by_steps[1:], strict=False))
    assert np.all(d[np.triu_indices(10, 1)] > 0)


def test_networks_drift_apart_during_training(committed: TopologySet) -> None:
    off = ~np.eye(10, dtype=bool)
    first = committed.matrix("init", layers=0)[:, :, 0][off].mean()
    last = committed.matrix(committed.epochs[-1], layers=0)[:, :, 0][off].mean()
    assert last > first + 0.2


def test_density_is_constant_through_set(committed: TopologySet) -> None:
    counts = {
        tuple(nnstd.load_network(committed.root / n / e).connections)
        for n in committed.networks
        for e in committed.epochs
    }
    assert len(counts) == 1
