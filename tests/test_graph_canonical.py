"""The canonical mode, the default solver, on graphs of permutation groups
(docs/definition.md#graph-canonical-mode).

On a narrow resnet18-layout ResNet (downsample blocks), a 2-layer ``nn.TransformerEncoder`` and
a decoder-style block (q/k/v/o, gate/up/down, RMSNorm), with random masks at about 90% and 50%
sparsity: a copy with every group renamed at random (heads as blocks, units within heads too)
is at exactly 0 in every group; renaming either network changes no value, bit for bit; one and
two threads agree; and every group costs the optimum of its assignment for the labels carried
into it, checked against SciPy from the input sets of the oracle in test_graph_distance.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

torch = pytest.importorskip("torch")

from test_graph_distance import carried, cost_matrix, input_sets, weights_of  # noqa: E402
from test_graph_spec import renamed  # noqa: E402
from test_torch_graphs import GRAPHS, ResNet  # noqa: E402


def resnet18_layout() -> Any:
    torch.manual_seed(0)
    # resnet18's stages and blocks, narrow; every stage after the first opens with a downsample.
    return ResNet((4, 8, 12, 16), (1, 2, 2, 2)).eval()


MODELS: dict[str, tuple[Callable[[], Any], tuple[int, ...]]] = {
    "resnet18": (resnet18_layout, (2, 3, 16, 16)),
    "encoder-2": (GRAPHS["encoder-2"][0], GRAPHS["encoder-2"][2]),
    "decoder": (GRAPHS["decoder"][0], GRAPHS["decoder"][2]),
}


def masked(kind: str, seed: int, keep: float) -> tuple[Any, Any]:
    """A model of ``MODELS`` with each weight's entries kept with probability ``keep``, and an
    input."""
    make, shape = MODELS[kind]
    model = make().double().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.mul_((torch.rand(param.shape, generator=generator) < keep).double())
    return model, torch.randn(*shape, generator=generator, dtype=torch.float64)


def network(model: Any, x: Any) -> Any:
    net = nnstd.torch.to_network(model, example_inputs=x)
    assert isinstance(net, nnstd.torch.GraphNetwork)
    return net


CASES = [(kind, keep) for kind in MODELS for keep in (0.1, 0.5)]


@pytest.mark.parametrize(("kind", "keep"), CASES)
def test_a_renamed_copy_is_at_zero_in_every_group_by_default(kind: str, keep: float) -> None:
    model, x = masked(kind, 1, keep)
    net = network(model, x)
    for seed in range(2):
        copy = network(renamed(model, net.spec, seed), x)
        d = nnstd.distance(net, copy)
        np.testing.assert_array_equal(d.costs, 0.0, err_msg=f"{kind} {keep} copy {seed}")
        np.testing.assert_array_equal(d.layers, 0.0)
        assert set(d.solvers) <= {"canonical", "fixed"}, d.solvers
    assert nnstd.distance(net, network(*masked(kind, 2, keep))).value > 0.05


@pytest.mark.parametrize(("kind", "keep"), CASES)
def test_renaming_either_network_or_threads_change_no_value(kind: str, keep: float) -> None:
    (a, x), (b, _) = masked(kind, 3, keep), masked(kind, 4, keep)
    net_a, net_b = network(a, x), network(b, x)
    base = nnstd.distance(net_a, net_b)
    renamed_b = network(renamed(b, net_b.spec, 5), x)
    renamed_a = network(renamed(a, net_a.spec, 6), x)
    for other in (nnstd.distance(net_a, renamed_b), nnstd.distance(renamed_a, net_b)):
        np.testing.assert_array_equal(other.costs, base.costs, err_msg=kind)
        np.testing.assert_array_equal(other.layers, base.layers, err_msg=kind)
    # The other direction makes the same pairs (so the same costs).
    np.testing.assert_array_equal(nnstd.distance(net_b, net_a).costs, base.costs)
    nets = [net_a, net_b, renamed_b]
    one, two = (nnstd.pairwise(nets, threads=t, ordered=True) for t in (1, 2))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one[0, 1], base.layers)
    np.testing.assert_array_equal(one[0, 2], base.layers)


def scipy_cost(costs: np.ndarray) -> float:
    rows, cols = linear_sum_assignment(costs)
    return float(costs[rows, cols].sum())


@pytest.mark.parametrize(("kind", "keep"), CASES)
def test_every_group_costs_the_optimum_for_the_labels_carried(kind: str, keep: float) -> None:
    """Each group's input sets are built (by the oracle) with the labels the canonical mode's
    own matchings carry; its cost must be SciPy's optimum of them, and a head set's the optimal
    pairing of SciPy's optimal within-head costs."""
    (a, x), (b, _) = masked(kind, 7, keep), masked(kind, 8, keep)
    net_a, net_b = network(a, x), network(b, x)
    got = nnstd.distance(net_a, net_b)
    auto = nnstd.distance(net_a, net_b, solver="auto")
    spec_a, spec_b = net_a.spec, net_b.spec
    wa, wb = weights_of(a), weights_of(b)
    sizes_b = {g.name: g.size for g in spec_b.groups}
    index = {name: k for k, name in enumerate(net_a.groups)}
    labels = {g.name: np.arange(g.size) for g in spec_a.groups if g.kind == "input"}
    done: set[str] = set()
    first = True
    for group in spec_a.groups:
        if group.name in labels or group.name in done:
            continue
        members = [g for g in spec_a.groups if group.head_set and g.head_set == group.head_set]
        members = members or [group]
        costs = {
            g.name: cost_matrix(
                input_sets(spec_a, wa, g, labels, "A"),
                input_sets(spec_b, wb, spec_b[g.name], labels, "B"),
            )
            for g in members
        }
        if group.heads == 1:
            optimum = scipy_cost(costs[group.name])
            assert got.costs[index[group.name]] == pytest.approx(optimum, abs=1e-9), group.name
            if first:  # the same carried labels as any solver: auto's optimum too
                assert auto.costs[index[group.name]] == pytest.approx(optimum, abs=1e-9)
        else:
            h = group.heads
            block = np.zeros((h, h))
            within: dict[tuple[str, int, int], float] = {}
            for g in members:
                dim = g.size // h
                for p in range(h):
                    for q in range(h):
                        part = costs[g.name][p * dim : (p + 1) * dim, q * dim : (q + 1) * dim]
                        within[g.name, p, q] = scipy_cost(part)
                        block[p, q] += within[g.name, p, q]
            total = sum(got.costs[index[g.name]] for g in members)
            assert total == pytest.approx(scipy_cost(block), abs=1e-9), group.name
            for g in members:
                dim = g.size // h
                matching = got.matchings[index[g.name]]
                pairing = [int(matching[p * dim]) // dim for p in range(h)]
                expected = sum(within[g.name, p, q] for p, q in enumerate(pairing))
                assert got.costs[index[g.name]] == pytest.approx(expected, abs=1e-9), g.name
        first = False
        for g in members:
            labels[g.name] = carried(got.matchings[index[g.name]], sizes_b[g.name])
            done.add(g.name)
