"""solver="sparse" and "auto": optimal layer costs from the similarity graph, and the budget."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
from conftest import paper_networks
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_layers_are_optimal, paper_layers, set_cost_matrix


@pytest.mark.parametrize("epoch", ["epoch_000", "epoch_050", "epoch_190"])
def test_sparse_costs_are_optimal_on_the_paper_set(paper_topo: Path, epoch: str) -> None:
    folders = paper_networks(paper_topo, epoch)
    layers = [paper_layers(str(f)) for f in folders]
    for i, j in [(1, 0), (5, 0), (9, 3), (7, 6)]:
        d = nnstd.distance(folders[i], folders[j], solver="sparse")
        assert d.solvers == ("sparse",) * 4
        check_layers_are_optimal(layers[i], layers[j], d)
    exact = nnstd.pairwise(folders, layers=0)
    np.testing.assert_allclose(
        nnstd.pairwise(folders, layers=0, solver="sparse"), exact, rtol=0, atol=1e-12
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
@given(layer_pairs())
def test_sparse_costs_are_optimal_on_random_layers(pair: tuple[list, list]) -> None:
    a, b = pair
    d = nnstd.distance(nnstd.Network(a), nnstd.Network(b), solver="sparse")
    check_layers_are_optimal(a, b, d, cost_fn=set_cost_matrix)
    exact = nnstd.distance(nnstd.Network(a), nnstd.Network(b), layers=0)
    assert abs(exact.costs[0] - d.costs[0]) < 1e-9


def test_auto_uses_sparse_beyond_the_budget_and_says_so() -> None:
    rng = np.random.default_rng(1)
    net = [rng.random((50, 40)) < 0.2, rng.random((40, 30)) < 0.2]
    a, b = nnstd.Network(net), nnstd.Network([w[:, ::-1] for w in net[:1]] + net[1:])
    budget = 40 * 30 * 8  # layer 1 fits, layer 0 (50 x 40... as 40 x 40 matrix) does not
    d = nnstd.distance(a, b, solver="auto", memory_budget=budget)
    assert d.solvers == ("sparse", "exact")
    assert nnstd.distance(a, b).solvers == ("exact", "exact")  # auto is the default
    with pytest.raises(
        nnstd.TopologyError, match=r'layer 0: .*40 x 40 .*12.5 KiB.*solver="sparse"'
    ):
        nnstd.distance(a, b, solver="exact", memory_budget=budget)
    with pytest.raises(ValueError, match="memory_budget"):
        nnstd.distance(a, b, memory_budget=-1)
