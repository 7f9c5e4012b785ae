"""nnstd.analysis: the computations behind the commands, against independent oracles."""

from __future__ import annotations

import doctest
import itertools

import nnstd
import numpy as np
import pytest
from nnstd import analysis
from oracle import scipy_distance


def random_layers(rng: np.random.Generator, widths: list[int], density: float) -> list[np.ndarray]:
    return [
        (rng.random((n_in, n_out)) < density).astype(float)
        for n_in, n_out in itertools.pairwise(widths)
    ]


def test_docstring_examples_run() -> None:
    failures, tried = doctest.testmod(analysis, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_consecutive_distances_equal_scipy_per_pair() -> None:
    rng = np.random.default_rng(3)
    runs = [[random_layers(rng, [12, 9, 9, 4], 0.3) for _ in range(4)] for _ in range(2)]
    got = analysis.consecutive_distances(
        [[nnstd.Network(layers) for layers in run] for run in runs], solver="paper"
    )
    assert got.shape == (2, 3, 3)
    for r, run in enumerate(runs):
        for i in range(3):
            expected, _ = scipy_distance(run[i + 1], run[i])  # the later snapshot as A
            np.testing.assert_allclose(got[r, i], expected, rtol=0, atol=1e-12)


def test_evolution_curves_are_statistics_over_unordered_pairs() -> None:
    rng = np.random.default_rng(5)
    matrices = []
    for _ in range(3):
        m = rng.random((4, 4, 2))
        matrices.append((m + m.transpose(1, 0, 2)) / 2)
    mean, spread = analysis.evolution_curves(matrices)
    assert mean.shape == spread.shape == (2, 3)
    for s, m in enumerate(matrices):
        for line in range(2):
            values = [m[i, j, line] for i, j in itertools.combinations(range(4), 2)]
            assert mean[line, s] == pytest.approx(np.mean(values))
            assert spread[line, s] == pytest.approx(np.std(values))


def test_always_dense_layers_need_every_network_dense() -> None:
    dense = [np.ones((3, 4)), np.eye(4), np.ones((4, 2))]
    holed = [np.ones((3, 4)), np.eye(4), np.ones((4, 2))]
    holed[2][0, 0] = 0
    assert analysis.always_dense_layers([nnstd.Network(dense)] * 2) == {0, 2}
    assert analysis.always_dense_layers([nnstd.Network(dense), nnstd.Network(holed)]) == {0}


def test_layer_selection_refuses_missing_layers() -> None:
    m = np.arange(6, dtype=float).reshape(1, 2, 3)
    np.testing.assert_array_equal(analysis.cumulative_layers(m, 2), [[1.0, 4.0]])
    np.testing.assert_array_equal(analysis.select_layer(m, 2, cumulative=False), [[2.0, 5.0]])
    with pytest.raises(nnstd.TopologyError, match="layer 3 does not exist"):
        analysis.select_layer(m, 3, cumulative=True)
