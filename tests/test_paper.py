"""nnstd on the paper's published topologies against the SciPy oracle."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
from conftest import PAPER_EPOCHS, PAPER_PANEL_MEANS, bundled_networks, paper_networks
from oracle import paper_layers, scipy_distance


def check_pairwise_equals_scipy_oracle(folders: list[Path]) -> np.ndarray:
    """nnstd's paper mode against SciPy on every pair and layer; returns SciPy's values."""
    result = nnstd.pairwise(folders, solver="paper")
    assert result.shape == (10, 10, 4)
    layers = [paper_layers(str(f)) for f in folders]
    oracle = np.zeros_like(result)
    for i in range(10):
        assert np.all(result[i, i] == 0.0)
        for j in range(i):
            expected, _ = scipy_distance(layers[i], layers[j])  # the paper: higher index is A
            oracle[i, j] = oracle[j, i] = expected
            np.testing.assert_allclose(result[i, j], expected, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(result[j, i], result[i, j])
    return oracle


def check_matchings_are_scipys_assignments(a: Path, b: Path) -> None:
    d = nnstd.distance(a, b, solver="paper")
    _, matchings = scipy_distance(paper_layers(str(a)), paper_layers(str(b)))
    assert len(d.matchings) == len(matchings)
    for mine, theirs in zip(d.matchings, matchings, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_pairwise_equals_scipy_oracle_on_every_pair_and_layer_of_the_paper_set(
    paper_topo: Path,
) -> None:
    for epoch in PAPER_EPOCHS:
        oracle = check_pairwise_equals_scipy_oracle(paper_networks(paper_topo, epoch))
        if epoch in PAPER_PANEL_MEANS:
            layer0 = oracle[:, :, 0][~np.eye(10, dtype=bool)]
            assert float(layer0.mean()) == pytest.approx(PAPER_PANEL_MEANS[epoch], abs=5e-4)


def test_matchings_are_scipys_assignments_on_the_paper_set(paper_topo: Path) -> None:
    for epoch in ("epoch_000", "epoch_100", "epoch_190"):
        check_matchings_are_scipys_assignments(
            paper_topo / "e5_s0_w7" / epoch, paper_topo / "e5_s0_w2" / epoch
        )


@pytest.mark.parametrize("epoch", ["epoch_000", "epoch_190"])
def test_pairwise_equals_scipy_oracle_on_the_bundled_set(bundled_topo: Path, epoch: str) -> None:
    check_pairwise_equals_scipy_oracle(bundled_networks(bundled_topo, epoch))


@pytest.mark.parametrize("epoch", ["epoch_000", "epoch_100", "epoch_190"])
def test_matchings_are_scipys_assignments_on_the_bundled_set(
    bundled_topo: Path, epoch: str
) -> None:
    check_matchings_are_scipys_assignments(bundled_topo / "w7" / epoch, bundled_topo / "w2" / epoch)


@pytest.mark.parametrize("solver", ["auto", "paper", "sparse", "dense", "canonical"])
def test_self_distance_is_zero_and_values_in_unit_interval(bundled_topo: Path, solver: str) -> None:
    for epoch in ("epoch_000", "epoch_190"):
        net = nnstd.load_network(bundled_topo / "w4" / epoch)
        assert np.all(nnstd.distance(net, net, solver=solver).layers == 0.0)  # type: ignore[arg-type]
        nets = bundled_networks(bundled_topo, epoch)[:4]
        ordered = nnstd.pairwise(nets, ordered=True, solver=solver)  # type: ignore[arg-type]
        assert np.all((ordered >= 0) & (ordered <= 1))
        assert np.all(np.diagonal(ordered, axis1=0, axis2=1) == 0.0)


def test_results_do_not_depend_on_thread_count(bundled_topo: Path) -> None:
    folders = bundled_networks(bundled_topo, "epoch_100")[:5]
    one = nnstd.pairwise(folders, threads=1, ordered=True)
    two = nnstd.pairwise(folders, threads=2, ordered=True)
    np.testing.assert_array_equal(one, two)


def test_loader_reads_the_paper_layout(paper_topo: Path) -> None:
    net = nnstd.load_network(paper_topo / "e5_s0_w0" / "epoch_000")
    assert net.shapes == [(784, 784), (784, 784), (784, 784), (784, 10)]
    assert net.connections[3] == 7840
    assert 3000 < net.connections[0] < 4500
