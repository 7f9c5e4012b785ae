"""solver="canonical": optimal layer costs, ties broken by structure instead of labels."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
from conftest import paper_networks
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_layers_are_optimal, paper_layers, set_cost_matrix, shuffled_hidden

CASES = [("epoch_000", 0, 5), ("epoch_100", 3, 9), ("epoch_190", 0, 5), ("epoch_190", 7, 2)]


@pytest.mark.parametrize(("epoch", "x", "y"), CASES)
def test_canonical_on_the_paper_set(paper_topo: Path, epoch: str, x: int, y: int) -> None:
    rng = np.random.default_rng(x * 10 + y)
    la = paper_layers(str(paper_topo / f"e5_s0_w{x}" / epoch))
    lb = paper_layers(str(paper_topo / f"e5_s0_w{y}" / epoch))
    a, b = nnstd.Network(la), nnstd.Network(lb)
    # A relabelled copy of itself is at distance 0 (the exact mode gives 0.03-0.07 here).
    copy = nnstd.Network(shuffled_hidden(la, rng))
    assert np.all(nnstd.distance(a, copy, solver="canonical").layers == 0.0)
    # Every layer's cost is the optimum of its cost matrix, given the carried alignment.
    d = nnstd.distance(a, b, solver="canonical")
    check_layers_are_optimal(la, lb, d)
    assert d.solvers == ("canonical",) * 4
    # Symmetric, and unchanged when B's hidden neurons are renamed.
    # (Equal up to the order in which the same matched costs are summed.)
    back = nnstd.distance(b, a, solver="canonical")
    np.testing.assert_allclose(back.layers, d.layers, rtol=0, atol=1e-12)
    renamed = nnstd.Network(shuffled_hidden(lb, rng))
    moved = nnstd.distance(a, renamed, solver="canonical")
    np.testing.assert_allclose(moved.layers, d.layers, rtol=0, atol=1e-12)


def test_canonical_pairwise_is_symmetric(paper_topo: Path) -> None:
    folders = paper_networks(paper_topo, "epoch_050")[:4]
    m = nnstd.pairwise(folders, solver="canonical", ordered=True)
    np.testing.assert_allclose(m, m.transpose(1, 0, 2), rtol=0, atol=1e-12)
    assert np.all(np.diagonal(m, axis1=0, axis2=1) == 0.0)


@st.composite
def network_pairs(draw: st.DrawFn) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two random networks of one depth and input width (hidden widths may differ)."""
    depth = draw(st.integers(1, 3))
    inputs = draw(st.integers(2, 9))

    def layers() -> list[np.ndarray]:
        widths = [inputs] + [draw(st.integers(2, 9)) for _ in range(depth)]
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        density = draw(st.sampled_from([0.2, 0.4, 0.6]))
        return [
            (rng.random((a, b)) < density).astype(float)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]

    return layers(), layers()


@settings(max_examples=300, deadline=None)
@given(network_pairs())
def test_canonical_layer_costs_are_optimal_and_symmetric(pair: tuple[list, list]) -> None:
    la, lb = pair
    d = nnstd.distance(nnstd.Network(la), nnstd.Network(lb), solver="canonical")
    check_layers_are_optimal(la, lb, d, cost_fn=set_cost_matrix)
    back = nnstd.distance(nnstd.Network(lb), nnstd.Network(la), solver="canonical")
    np.testing.assert_allclose(back.costs, d.costs, rtol=0, atol=1e-12)


def random_network(rng: np.random.Generator) -> list[np.ndarray]:
    widths = rng.integers(2, 10, size=rng.integers(2, 5))
    density = rng.choice([0.2, 0.4, 0.6])
    return [
        (rng.random((a, b)) < density).astype(float)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


def test_relabelled_random_networks_are_at_zero() -> None:
    """A fixed sample of 500 random networks (the exact mode is nonzero on about a quarter)."""
    rng = np.random.default_rng(1)
    exact_nonzero = 0
    for _ in range(500):
        layers = random_network(rng)
        net, copy = nnstd.Network(layers), nnstd.Network(shuffled_hidden(layers, rng))
        assert np.all(nnstd.distance(net, copy, solver="canonical").layers == 0.0)
        exact_nonzero += bool(np.any(nnstd.distance(net, copy, solver="exact").layers > 0))
    assert exact_nonzero > 50


@pytest.mark.xfail(
    strict=True,
    reason="known limit: colour refinement cannot tell apart "
    "neurons that differ only through an automorphism of later layers (here "
    "input-less neurons feeding two interchangeable outputs), so they may be "
    "paired inconsistently; see the README's 'Solvers' section",
)
def test_known_limit_automorphic_outputs() -> None:
    layer0 = np.zeros((4, 2))  # no connections: both hidden neurons are empty
    layer1 = np.zeros((2, 9))
    layer1[0, [0, 3, 4]] = 1.0
    layer2 = np.zeros((9, 2))
    layer2[[4, 5, 6], 0] = 1.0  # output 0 and output 1 are interchangeable
    layer2[[1, 4, 8], 1] = 1.0
    layers = [layer0, layer1, layer2]
    copy = nnstd.Network(shuffled_hidden(layers, np.random.default_rng(0)))
    d = nnstd.distance(nnstd.Network(layers), copy, solver="canonical")
    assert np.all(d.layers == 0.0)


def test_canonical_refuses_layers_over_the_budget() -> None:
    net = nnstd.Network([np.eye(30)])
    with pytest.raises(nnstd.TopologyError, match='canonical mode.*"sparse" solver'):
        nnstd.distance(net, net, solver="canonical", memory_budget=1000)
