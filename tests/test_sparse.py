"""The optimal solvers ("sparse", "dense", "auto"): optimal layer costs, the policy, the budget."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import bundled_networks
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_layers_are_optimal, paper_layers, scipy_distance, set_cost_matrix


@pytest.mark.parametrize("solver", ["sparse", "dense", "auto"])
@pytest.mark.parametrize("epoch", ["epoch_000", "epoch_050", "epoch_190"])
def test_costs_are_optimal_on_the_bundled_set(bundled_topo: Path, epoch: str, solver: str) -> None:
    folders = bundled_networks(bundled_topo, epoch)
    layers = [paper_layers(str(f)) for f in folders]
    for i, j in [(1, 0), (5, 0), (9, 3), (7, 6)]:
        d = nnstd.distance(folders[i], folders[j], solver=solver)  # type: ignore[arg-type]
        if solver != "auto":
            assert d.solvers == (solver,) * 4
        check_layers_are_optimal(layers[i], layers[j], d)
    paper = nnstd.pairwise(folders, layers=0, solver="paper")
    np.testing.assert_allclose(
        nnstd.pairwise(folders, layers=0, solver=solver),  # type: ignore[arg-type]
        paper,
        rtol=0,
        atol=1e-12,
    )


@st.composite
def layer_pairs(draw: st.DrawFn) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two-layer networks with empty neurons, identical neurons or no overlap at all."""
    n_in = draw(st.integers(1, 9))
    widths = [n_in, draw(st.integers(1, 8)), draw(st.integers(1, 6))]
    widths_b = [n_in, draw(st.integers(1, 8)), widths[2]]
    kind = draw(st.sampled_from(["random", "empty", "identical", "disjoint"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def make(ws: list[int], offset: int) -> list[np.ndarray]:
        out = []
        for a, b in zip(ws[:-1], ws[1:], strict=True):
            w = (rng.random((a, b)) < 0.35).astype(float)
            if kind == "empty":
                w[:, rng.random(b) < 0.4] = 0.0
            elif kind == "identical" and b > 1:
                w[:, 1:] = w[:, :1]
            elif kind == "disjoint" and a > 1:
                w[(np.arange(a) % 2) != offset] = 0.0
            out.append(w)
        return out

    return make(widths, 0), make(widths_b, 1)


@settings(max_examples=300, deadline=None)
@given(layer_pairs(), st.sampled_from(["sparse", "dense"]))
def test_costs_are_optimal_on_random_layers(pair: tuple[list, list], solver: str) -> None:
    a, b = pair
    d = nnstd.distance(nnstd.Network(a), nnstd.Network(b), solver=solver)  # type: ignore[arg-type]
    check_layers_are_optimal(a, b, d, cost_fn=set_cost_matrix)
    paper = nnstd.distance(nnstd.Network(a), nnstd.Network(b), layers=0, solver="paper")
    assert abs(paper.costs[0] - d.costs[0]) < 1e-9


def test_auto_picks_by_density_and_says_so() -> None:
    rng = np.random.default_rng(1)
    # Layer 0: neurons share most inputs (dense); layer 1: a permutation (sparse).
    net = [rng.random((50, 40)) < 0.5, np.eye(40)]
    a, b = nnstd.Network(net), nnstd.Network([net[0][:, ::-1], net[1][::-1]])
    assert nnstd.distance(a, b, solver="auto").solvers == ("dense", "sparse")
    # A budget too small for the dense matrix and for the similarity graph: refused.
    with pytest.raises(nnstd.TopologyError, match=r"layer 0: .*40 x 40 layer"):
        nnstd.distance(a, b, solver="auto", memory_budget=40 * 40 * 8 - 1)


def test_layers_over_the_budget_are_refused_with_their_size() -> None:
    rng = np.random.default_rng(1)
    a = nnstd.Network([rng.random((50, 40)) < 0.2])
    with pytest.raises(
        nnstd.TopologyError, match=r'layer 0: the dense cost matrix of the 40 x 40 layer .*"sparse"'
    ):
        nnstd.distance(a, a, solver="dense", memory_budget=1000)
    with pytest.raises(nnstd.TopologyError, match=r"layer 0: the similarity graph .* 1000 bytes"):
        nnstd.distance(a, a, solver="sparse", memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget"):
        nnstd.distance(a, a, memory_budget=-1)


def test_a_hub_input_is_refused_before_the_pairs_are_built() -> None:
    # One input feeds every neuron: every pair of neurons shares it (n^2 pairs).
    n = 3000
    hub = sp.csc_array((np.ones(n), (np.zeros(n, dtype=np.int64), np.arange(n))), shape=(2, n))
    net = nnstd.Network([hub])
    with pytest.raises(nnstd.TopologyError, match=r"layer 0: the similarity graph .* 3000 x 3000"):
        nnstd.distance(net, net, solver="sparse", memory_budget=2**20)


def test_paper_mode_on_dense_costs_makes_scipys_choices() -> None:
    rng = np.random.default_rng(7)
    layers_a = [rng.random((60, 30)) < 0.5, rng.random((30, 20)) < 0.3]
    layers_b = [rng.random((60, 30)) < 0.5, rng.random((30, 20)) < 0.3]
    d = nnstd.distance(nnstd.Network(layers_a), nnstd.Network(layers_b), solver="paper")
    expected, matchings = scipy_distance(layers_a, layers_b, cost_fn=set_cost_matrix)
    np.testing.assert_allclose(d.layers, expected, rtol=0, atol=1e-12)
    for mine, theirs in zip(d.matchings, matchings, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert d.solvers == ("paper", "paper")
    a, b = nnstd.Network(layers_a), nnstd.Network(layers_b)
    assert nnstd.distance(a, b, solver="exact").solvers == ("paper", "paper")
