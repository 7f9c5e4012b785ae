"""Property tests on small tie-heavy inputs: nnstd against SciPy and the plain definition."""

from __future__ import annotations

import nnstd
import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nnstd import _core
from oracle import scipy_distance, set_cost_matrix
from scipy.optimize import linear_sum_assignment

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIE_VALUES = [1.0, 1.0, 1.0, 0.0, 0.5, 0.75, 2 / 3, 0.8, 0.25]


@st.composite
def tie_heavy_matrices(draw: st.DrawFn) -> np.ndarray:
    rows = draw(st.integers(1, 9))
    cols = draw(st.integers(1, 9))
    cells = draw(st.lists(st.sampled_from(TIE_VALUES), min_size=rows * cols, max_size=rows * cols))
    m = np.array(cells).reshape(rows, cols)
    for i in range(1, rows):  # repeat some rows and columns to create identical neurons
        if draw(st.booleans()):
            m[i] = m[i - 1]
    for j in range(1, cols):
        if draw(st.integers(0, 3)) == 0:
            m[:, j] = m[:, j - 1]
    return m


def solve_with_nnstd(m: np.ndarray, dense: bool = False) -> np.ndarray:
    r, c = np.nonzero(m != 1.0)
    s = sp.csr_array((m[r, c], (r, c)), shape=m.shape)
    s.sort_indices()
    return _core.assign_exact(
        m.shape[0],
        m.shape[1],
        s.indptr.astype(np.int64),
        s.indices.astype(np.int64),
        s.data.astype(np.float64),
        dense=dense,
    )


@SETTINGS
@given(tie_heavy_matrices())
def test_exact_solver_makes_scipys_assignment(m: np.ndarray) -> None:
    row_ind, col_ind = linear_sum_assignment(m)
    expected = np.full(m.shape[0], -1)
    expected[row_ind] = col_ind
    np.testing.assert_array_equal(solve_with_nnstd(m), expected)
    np.testing.assert_array_equal(solve_with_nnstd(m, dense=True), expected)


def network_layers(draw: st.DrawFn, widths: list[int], density: float) -> list[np.ndarray]:
    """Random layers of the given widths (inputs first), some with identical neurons."""
    out = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        seed = draw(st.integers(0, 2**32 - 1))
        w = (np.random.default_rng(seed).random((n_in, n_out)) < density).astype(np.float64)
        if n_out > 1 and draw(st.booleans()):
            w[:, 1] = w[:, 0]  # identical neurons
        out.append(w)
    return out


@st.composite
def network_pairs(draw: st.DrawFn) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two small networks over the same inputs, with empty and duplicated neurons."""
    depth = draw(st.integers(1, 3))
    widths_a = [draw(st.integers(1, 7)) for _ in range(depth + 1)]
    same_width = draw(st.booleans())
    widths_b = [widths_a[0]] + (
        widths_a[1:] if same_width else [draw(st.integers(1, 7)) for _ in range(depth)]
    )
    density = draw(st.sampled_from([0.15, 0.3, 0.5]))
    return network_layers(draw, widths_a, density), network_layers(draw, widths_b, density)


@st.composite
def comparable_networks(draw: st.DrawFn) -> list[list[np.ndarray]]:
    """2 to 4 networks of one depth and input width; hidden widths may differ."""
    depth = draw(st.integers(1, 3))
    inputs = draw(st.integers(1, 7))
    density = draw(st.sampled_from([0.15, 0.3, 0.5]))
    count = draw(st.integers(2, 4))
    return [
        network_layers(draw, [inputs] + [draw(st.integers(1, 7)) for _ in range(depth)], density)
        for _ in range(count)
    ]


@SETTINGS
@given(network_pairs())
def test_network_distance_equals_the_definition(pair: tuple[list, list]) -> None:
    layers_a, layers_b = pair
    d = nnstd.distance(nnstd.Network(layers_a), nnstd.Network(layers_b), solver="paper")
    expected, matchings = scipy_distance(layers_a, layers_b, cost_fn=set_cost_matrix)
    np.testing.assert_allclose(d.layers, expected, rtol=0, atol=1e-12)
    for mine, theirs in zip(d.matchings, matchings, strict=False):
        np.testing.assert_array_equal(mine, theirs)
    assert np.all((d.layers >= 0) & (d.layers <= 1))


@SETTINGS
@given(network_pairs())
def test_distance_to_itself_is_zero(pair: tuple[list, list]) -> None:
    net = nnstd.Network(pair[0])
    assert np.all(nnstd.distance(net, net).layers == 0.0)


@settings(max_examples=60, deadline=None)
@given(comparable_networks())
def test_pairwise_follows_the_paper_convention(layer_lists: list) -> None:
    nets = [nnstd.Network(layers) for layers in layer_lists]
    m = nnstd.pairwise(nets)
    ordered = nnstd.pairwise(nets, ordered=True)
    for i in range(len(nets)):
        for j in range(i):
            np.testing.assert_array_equal(m[i, j], nnstd.distance(nets[i], nets[j]).layers)
            np.testing.assert_array_equal(m[j, i], m[i, j])
            np.testing.assert_array_equal(ordered[j, i], nnstd.distance(nets[j], nets[i]).layers)
