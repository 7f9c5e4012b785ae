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
def networks(draw: st.DrawFn) -> list[np.ndarray]:
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(2, 9)) for _ in range(depth + 1)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.2, 0.4, 0.6]))
    return [
        (rng.random((a, b)) < density).astype(float)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


@settings(max_examples=300, deadline=None)
@given(networks(), networks(), st.integers(0, 2**32 - 1))
def test_canonical_on_random_networks(la: list, lb: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = nnstd.Network(la)
    assert np.all(
        nnstd.distance(a, nnstd.Network(shuffled_hidden(la, rng)), solver="canonical").layers == 0.0
    )
    if len(la) != len(lb) or la[0].shape[0] != lb[0].shape[0]:
        return
    d = nnstd.distance(a, nnstd.Network(lb), solver="canonical")
    check_layers_are_optimal(la, lb, d, cost_fn=set_cost_matrix)
    back = nnstd.distance(nnstd.Network(lb), a, solver="canonical")
    np.testing.assert_allclose(back.costs, d.costs, rtol=0, atol=1e-12)


def test_canonical_refuses_layers_over_the_budget() -> None:
    net = nnstd.Network([np.eye(30)])
    with pytest.raises(nnstd.TopologyError, match='canonical mode .* solver="sparse"'):
        nnstd.distance(net, net, solver="canonical", memory_budget=1000)
