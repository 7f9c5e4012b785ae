"""solver="canonical": optimal layer costs, ties broken by structure instead of labels."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import bundled_networks
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import (
    check_layers_are_optimal,
    paper_layers,
    scipy_distance,
    set_cost_matrix,
    shuffled_hidden,
)

CASES = [("epoch_000", 0, 5), ("epoch_100", 3, 9), ("epoch_190", 0, 5), ("epoch_190", 7, 2)]


@pytest.mark.parametrize(("epoch", "x", "y"), CASES)
def test_canonical_on_the_bundled_set(bundled_topo: Path, epoch: str, x: int, y: int) -> None:
    rng = np.random.default_rng(x * 10 + y)
    la = paper_layers(str(bundled_topo / f"w{x}" / epoch))
    lb = paper_layers(str(bundled_topo / f"w{y}" / epoch))
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
    np.testing.assert_array_equal(back.costs, d.costs)
    renamed = nnstd.Network(shuffled_hidden(lb, rng))
    moved = nnstd.distance(a, renamed, solver="canonical")
    np.testing.assert_array_equal(moved.layers, d.layers)
    # The default.
    np.testing.assert_array_equal(nnstd.distance(a, b).layers, d.layers)


def test_canonical_pairwise_is_symmetric(bundled_topo: Path) -> None:
    folders = bundled_networks(bundled_topo, "epoch_050")[:4]
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


def test_input_less_neurons_feeding_interchangeable_outputs() -> None:
    """Colour refinement alone cannot tell these hidden neurons apart; the search can."""
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


def shuffled_all(layers: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Every non-input neuron renamed, output neurons included."""
    out = shuffled_hidden(layers, rng)
    out[-1] = out[-1][:, rng.permutation(out[-1].shape[1])]
    return out


def tiny_network(rng: np.random.Generator, depth: int, n_in: int) -> list[np.ndarray]:
    """Widths 2-6, densities 0.1-0.9: many empty, duplicate and automorphic neurons."""
    widths = [n_in] + [int(w) for w in rng.integers(2, 7, size=depth)]
    density = rng.uniform(0.1, 0.9)
    return [
        (rng.random((a, b)) < density).astype(float)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


def test_labels_never_change_a_value_on_3000_tiny_networks() -> None:
    """The issue's sample, where colour refinement alone failed 1-2 times in 1,000."""
    rng = np.random.default_rng(2026)
    for _ in range(3000):
        depth, n_in = int(rng.integers(1, 4)), int(rng.integers(2, 7))
        la, lb = tiny_network(rng, depth, n_in), tiny_network(rng, depth, n_in)
        a, b = nnstd.Network(la), nnstd.Network(lb)
        copy = nnstd.Network(shuffled_all(la, rng))
        assert np.all(nnstd.distance(a, copy, solver="canonical").layers == 0.0)
        d = nnstd.distance(a, b, solver="canonical")
        renamed = nnstd.distance(a, nnstd.Network(shuffled_all(lb, rng)), solver="canonical")
        np.testing.assert_array_equal(renamed.layers, d.layers)
        back = nnstd.distance(b, a, solver="canonical")
        np.testing.assert_array_equal(back.costs, d.costs)


def test_dense_and_sparse_paths_choose_the_same_assignments() -> None:
    """At fill 0.085-0.098 (just below the dense matrix's 0.10) layers go to the similarity
    graph; a budget that holds the dense matrix and not the sparse solver's arrays (about 11
    times the fill times the dense matrix) sends them to the dense solver."""
    rng = np.random.default_rng(7)
    for n, density in [(400, 0.0152), (500, 0.0137)]:
        la = [(rng.random((n, n)) < density).astype(float) for _ in range(3)]
        lb = [(rng.random((n, n)) < density).astype(float) for _ in range(3)]
        a, b = nnstd.Network(la), nnstd.Network(lb)
        # Room for an n x n float64 matrix, not for the similarity graph and its solver.
        budget = n * n * 8
        assert nnstd.distance(a, b, solver="auto").solvers == ("sparse",) * 3
        assert nnstd.distance(a, b, solver="auto", memory_budget=budget).solvers == ("dense",) * 3
        sparse = nnstd.distance(a, b, solver="canonical")
        dense = nnstd.distance(a, b, solver="canonical", memory_budget=budget)
        np.testing.assert_array_equal(sparse.layers, dense.layers)
        for k in range(3):
            np.testing.assert_array_equal(sparse.matchings[k], dense.matchings[k])
        check_layers_are_optimal(la, lb, dense, cost_fn=set_cost_matrix)


def test_canonical_runs_past_the_dense_budget() -> None:
    """No dense matrix is needed: the layer is solved on the similarity graph."""
    layers = [np.eye(300), np.eye(300)]
    net = nnstd.Network(layers)
    shuffled = nnstd.Network(shuffled_all(layers, np.random.default_rng(3)))
    # 250 kB: room for the similarity graph and the sparse solver's arrays (about 241 kB), not
    # for the 720 kB dense matrix.
    d = nnstd.distance(net, shuffled, solver="canonical", memory_budget=250_000)
    assert np.all(d.layers == 0.0)
    with pytest.raises(nnstd.TopologyError, match="dense cost matrix"):
        nnstd.distance(net, shuffled, solver="dense", memory_budget=250_000)


def shuffled_channels(layers: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Every non-input channel renamed; a convolution's inputs move a kernel block at a time."""
    out = [w.copy() for w in layers]
    for k in range(len(out)):
        perm = rng.permutation(out[k].shape[1])
        out[k] = out[k][:, perm]
        if k + 1 < len(out):
            g = out[k + 1].shape[0] // len(perm)
            rows = (perm[:, None] * g + np.arange(g)[None, :]).reshape(-1)
            out[k + 1] = out[k + 1][rows, :]
    return out


def test_relabelled_conv_networks_are_at_zero() -> None:
    """3x3 convolutions (9 inputs per input channel), channels renamed as a whole."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        widths = [3, *(int(w) for w in rng.integers(4, 12, size=3))]
        layers = [
            (rng.random((c_in * 9, c_out)) < 0.15).astype(float)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        ]
        groups = [9, 9, 9]
        net = nnstd.Network(layers, input_groups=groups)
        copy = nnstd.Network(shuffled_channels(layers, rng), input_groups=groups)
        assert np.all(nnstd.distance(net, copy).layers == 0.0)
        other = [(rng.random(w.shape) < 0.15).astype(float) for w in layers]
        d = nnstd.distance(net, nnstd.Network(other, input_groups=groups))
        renamed = nnstd.Network(shuffled_channels(other, rng), input_groups=groups)
        np.testing.assert_array_equal(nnstd.distance(net, renamed).layers, d.layers)


# The pruned networks: widths and connections per layer (most neurons have none).
PRUNED_SHAPES = [((784, 300, 100, 10), 70), ((1000, 1000, 1000), 250), ((64, 64, 64, 64), 13)]


def pruned_network(
    rng: np.random.Generator, widths: tuple[int, ...], connections: int
) -> list[sp.csc_array]:
    """`connections` distinct connections per layer at random places."""
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        places = rng.choice(n_in * n_out, size=connections, replace=False)
        rows, cols = places // n_out, places % n_out
        layers.append(sp.csc_array((np.ones(connections), (rows, cols)), shape=(n_in, n_out)))
    return layers


def shuffled_sparse(layers: list[sp.csc_array], rng: np.random.Generator) -> list[sp.csc_array]:
    """Every non-input neuron renamed, output neurons included (sparse layers)."""
    out = [sp.csc_array(w) for w in layers]
    for k in range(len(out)):
        perm = rng.permutation(out[k].shape[1])
        out[k] = sp.csc_array(out[k][:, perm])
        if k + 1 < len(out):
            out[k + 1] = sp.csc_array(out[k + 1][perm, :])
    return out


@pytest.mark.parametrize(("widths", "connections"), PRUNED_SHAPES)
def test_pruned_networks_are_labelled_and_at_zero_from_relabelled_copies(
    widths: tuple[int, ...], connections: int
) -> None:
    """The search used to refuse nearly all of these; layer 0 against the SciPy oracle."""
    rng = np.random.default_rng(sum(widths))
    for _ in range(8):
        la, lb = pruned_network(rng, widths, connections), pruned_network(rng, widths, connections)
        a = nnstd.Network(la)
        assert np.all(nnstd.distance(a, a).layers == 0.0)
        copy = nnstd.Network(shuffled_sparse(la, rng))
        assert np.all(nnstd.distance(a, copy, solver="canonical").layers == 0.0)
        d = nnstd.distance(a, nnstd.Network(lb), solver="canonical")
        oracle, _ = scipy_distance(la[:1], lb[:1])
        np.testing.assert_allclose(d.layers[0], oracle[0], rtol=1e-12, atol=0)


def test_pruned_networks_give_one_matrix_for_any_thread_count() -> None:
    rng = np.random.default_rng(5)
    nets = [nnstd.Network(pruned_network(rng, (64, 64, 64, 64), 13)) for _ in range(6)]
    one = nnstd.pairwise(nets, threads=1, ordered=True)
    np.testing.assert_array_equal(one, nnstd.pairwise(nets, threads=2, ordered=True))
    np.testing.assert_array_equal(np.diagonal(one, axis1=0, axis2=1), 0.0)


def symmetric_layers(rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """Highly symmetric networks: empty layers, complete bipartite layers, disjoint copies of
    one block (all reading the block's inputs), neurons without inputs feeding one neuron."""
    if kind == "empty":
        return [np.zeros((30, 40)), (rng.random((40, 20)) < 0.1).astype(float), np.zeros((20, 5))]
    if kind == "complete":
        return [np.ones((6, 50)), (rng.random((50, 30)) < 0.05).astype(float), np.ones((30, 40))]
    if kind == "copies":
        block = [(rng.random((5, 4)) < 0.5).astype(float), (rng.random((4, 3)) < 0.5).astype(float)]
        copies = 40
        return [np.tile(block[0], (1, copies)), np.kron(np.eye(copies), block[1])]
    # Pairs: 300 hidden neurons without inputs, each feeding its own output neuron.
    return [np.zeros((10, 300)), np.eye(300)]


@pytest.mark.parametrize("kind", ["empty", "complete", "copies", "pairs"])
def test_symmetric_networks_are_labelled_and_at_zero_from_relabelled_copies(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    layers = symmetric_layers(rng, kind)
    a = nnstd.Network(layers)
    copy = nnstd.Network(shuffled_all(layers, rng))
    assert np.all(nnstd.distance(a, copy).layers == 0.0)
    assert np.all(nnstd.distance(copy, a).layers == 0.0)


def test_interchangeable_conv_channels_are_at_zero_from_relabelled_copies() -> None:
    """3x3 convolutions: 30 channels without inputs, each feeding its own channel at one of
    three kernel positions (three classes of 10 interchangeable pairs), beside random ones."""
    rng = np.random.default_rng(12)
    for _ in range(5):
        first = (rng.random((27, 64)) < 0.01).astype(float)
        first[:, :30] = 0.0
        second = np.zeros((64 * 9, 64))
        second[30 * 9 :, :34] = rng.random((34 * 9, 34)) < 0.005
        for j in range(30):
            second[j * 9 + (j % 3) * 4, 34 + j] = 1.0
        layers, groups = [first, second], [9, 9]
        net = nnstd.Network(layers, input_groups=groups)
        copy = nnstd.Network(shuffled_channels(layers, rng), input_groups=groups)
        assert np.all(nnstd.distance(net, copy).layers == 0.0)
        assert np.all(nnstd.distance(copy, net).layers == 0.0)
