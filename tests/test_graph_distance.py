"""NNSTD on graphs of permutation groups (docs/definition.md#graphs-of-permutation-groups).

The oracle is a plain-Python statement of the definition, written here from the docs and the
spec format: input sets as sets of (writer, group, label, position) tuples, groups matched in
the spec's order with SciPy's `linear_sum_assignment`, heads by block costs, fixed groups by
the identity. The core's paper mode (SciPy's choices) must give its matchings exactly and its
costs to rounding, on sparse ResNets, transformer encoders and decoder blocks; renamed copies
are at 0 in every group under every solver; a plain chain read with example_inputs is the
chain `Network`.
"""

from __future__ import annotations

from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

torch = pytest.importorskip("torch")
nn = torch.nn

from test_graph_spec import relative_error, renamed  # noqa: E402
from test_torch_graphs import GRAPHS  # noqa: E402


def sparse_model(kind: str, seed: int, keep: float = 0.5) -> tuple[Any, Any]:
    """A model of ``GRAPHS`` with each weight's entries zeroed at random (kept with
    probability ``keep``), and an input."""
    make, _, shape = GRAPHS[kind]
    torch.manual_seed(seed)
    model = make().double().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.mul_((torch.rand(param.shape, generator=generator) < keep).double())
    return model, torch.randn(*shape, generator=generator, dtype=torch.float64)


# The oracle -------------------------------------------------------------------------------------


def weights_of(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def input_sets(
    spec: Any, weights: dict[str, np.ndarray], group: Any, labels: dict[str, Any], side: str
) -> list[frozenset[Any]]:
    sets: list[set[Any]] = [set() for _ in range(group.size)]
    for w, slot in enumerate(group.writers):
        weight = weights[slot.tensor]
        kernel = int(np.prod(weight.shape[2:]))
        rows = weight[slot.offset : slot.offset + group.size].reshape(group.size, -1)
        for source in spec.groups:
            if source.name not in labels:
                continue  # not matched yet
            for read in source.readers:
                if read.tensor != slot.tensor:
                    continue
                width = read.block * kernel
                start = read.offset * kernel
                block = rows[:, start : start + source.size * width]
                for u, c in zip(*np.nonzero(block), strict=True):
                    v, p = divmod(int(c), width)
                    label = v if side == "A" else int(labels[source.name][v])
                    sets[u].add((w, source.name, label, p))
    return [frozenset(s) for s in sets]


def cost_matrix(a: list[frozenset[Any]], b: list[frozenset[Any]]) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            union = len(x | y)
            out[i, j] = 0.0 if union == 0 else (union - len(x & y)) / union
    return out


def solve(costs: np.ndarray) -> tuple[np.ndarray, float]:
    """SciPy's assignment: matching[i] = column of row i (-1 if none), cost summed in row order."""
    rows, cols = linear_sum_assignment(costs)
    matching = np.full(costs.shape[0], -1)
    matching[rows] = cols
    total = 0.0
    for i, j in enumerate(matching):
        if j >= 0:
            total += costs[i, j]
    return matching, total


def carried(matching: np.ndarray, n_b: int) -> np.ndarray:
    labels = np.full(n_b, -1)
    for i, j in enumerate(matching):
        if j >= 0:
            labels[j] = i
    fresh = len(matching)
    for v in range(n_b):
        if labels[v] < 0:
            labels[v], fresh = fresh, fresh + 1
    return labels


def oracle(
    spec_a: Any, wa: Any, spec_b: Any, wb: Any, fixed_outputs: bool = False
) -> dict[str, Any]:
    """{group: (distance, cost, matching)} for every group some layer writes into."""
    groups_b = {g.name: g for g in spec_b.groups}
    fixed = {
        g.name for g in spec_a.groups if g.kind == "input" or (fixed_outputs and g.kind == "output")
    }
    labels = {name: np.arange(groups_b[name].size) for name in fixed}
    out: dict[str, Any] = {}
    for group in spec_a.groups:
        if group.name in fixed or group.name in out:
            continue
        members = [g for g in spec_a.groups if group.head_set and g.head_set == group.head_set] or [
            group
        ]
        costs = {
            g.name: cost_matrix(
                input_sets(spec_a, wa, g, labels, "A"),
                input_sets(spec_b, wb, groups_b[g.name], labels, "B"),
            )
            for g in members
        }
        if group.heads == 1:
            matching, cost = solve(costs[group.name])
            out[group.name] = (cost / group.size, cost, matching)
        else:
            h = group.heads
            within = {}
            block = np.zeros((h, h))
            for g in members:
                dim = g.size // h
                for p in range(h):
                    for q in range(h):
                        m, c = solve(
                            costs[g.name][p * dim : (p + 1) * dim, q * dim : (q + 1) * dim]
                        )
                        within[g.name, p, q] = (m, c)
                        block[p, q] += c
            pairing, _ = solve(block)
            for g in members:
                dim = g.size // h
                matching = np.full(g.size, -1)
                cost = 0.0
                for p, q in enumerate(pairing):
                    m, c = within[g.name, p, q]
                    cost += c
                    matching[p * dim : (p + 1) * dim] = q * dim + m
                out[g.name] = (cost / g.size, cost, matching)
        for g in members:
            labels[g.name] = carried(out[g.name][2], groups_b[g.name].size)
    for group in spec_a.groups:
        if group.name in fixed and group.writers:
            a = input_sets(spec_a, wa, group, labels, "A")
            b = input_sets(spec_b, wb, groups_b[group.name], labels, "B")
            cost = 0.0
            for u in range(group.size):
                cost += cost_matrix([a[u]], [b[u]])[0, 0]
            out[group.name] = (cost / group.size, cost, np.arange(group.size))
    return {g.name: out[g.name] for g in spec_a.groups if g.writers}


# The core against the oracle ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resnet", "encoder-2", "decoder"])
@pytest.mark.parametrize("outputs", ["free", "fixed"])
def test_paper_mode_is_the_definition(kind: str, outputs: str) -> None:
    (a, x), (b, _) = sparse_model(kind, 1), sparse_model(kind, 2)
    net_a = nnstd.torch.to_network(a, example_inputs=x, outputs=outputs)
    net_b = nnstd.torch.to_network(b, example_inputs=x, outputs=outputs)
    assert isinstance(net_a, nnstd.torch.GraphNetwork)
    got = nnstd.distance(net_a, net_b, solver="paper")
    expected = oracle(net_a.spec, weights_of(a), net_b.spec, weights_of(b), outputs == "fixed")
    assert tuple(expected) == net_a.groups
    for k, name in enumerate(net_a.groups):
        distance, cost, matching = expected[name]
        np.testing.assert_array_equal(got.matchings[k], matching, err_msg=name)
        assert got.costs[k] == pytest.approx(cost, abs=1e-12), name
        assert got.layers[k] == pytest.approx(distance, abs=1e-12), name
    assert 0 < got.value < 1


@pytest.mark.parametrize("solver", ["auto", "sparse", "dense"])
def test_every_solver_gives_optimal_group_costs(solver: str) -> None:
    """Groups whose earlier groups matched alike get the optimal cost under any solver: here
    the first free group of each model, whose inputs are the data."""
    for kind in ("resnet", "encoder-2", "decoder"):
        (a, x), (b, _) = sparse_model(kind, 3), sparse_model(kind, 4)
        net_a = nnstd.torch.to_network(a, example_inputs=x)
        net_b = nnstd.torch.to_network(b, example_inputs=x)
        paper = nnstd.distance(net_a, net_b, solver="paper")
        other = nnstd.distance(net_a, net_b, solver=solver)
        first = next(k for k, s in enumerate(paper.solvers) if s != "fixed")
        assert other.costs[first] == pytest.approx(paper.costs[first], abs=1e-9), kind


def has_twins(spec: Any, weights: dict[str, np.ndarray]) -> bool:
    """Whether two units of a renamed group have the same input set (every group known): a
    tie, which any solver but the canonical mode (test_graph_canonical.py) may break either
    way."""
    labels = {g.name: np.arange(g.size) for g in spec.groups}
    for group in spec.groups:
        if group.kind != "input" and group.writers:
            sets = input_sets(spec, weights, group, labels, "A")
            if len(set(sets)) < len(sets):
                return True
    return False


@pytest.mark.parametrize(
    "kind", ["resnet", "equal-width-resnet", "encoder-2", "encoder-1", "decoder"]
)
def test_a_renamed_copy_is_at_zero_in_every_group(kind: str) -> None:
    seed = 5
    model, x = sparse_model(kind, seed, keep=0.6)
    net = nnstd.torch.to_network(model, example_inputs=x)
    while has_twins(net.spec, weights_of(model)):  # a twin-free draw (ties: see the docstring)
        seed += 1
        model, x = sparse_model(kind, seed, keep=0.6)
        net = nnstd.torch.to_network(model, example_inputs=x)
    for copy_seed in range(2):
        copy = nnstd.torch.to_network(renamed(model, net.spec, copy_seed), example_inputs=x)
        for solver in ("paper", "auto", "sparse", "dense"):
            d = nnstd.distance(net, copy, solver=solver)
            np.testing.assert_array_equal(d.layers, 0.0, err_msg=f"{kind}, {solver}")
    other = nnstd.torch.to_network(sparse_model(kind, 99, keep=0.6)[0], example_inputs=x)
    assert nnstd.distance(net, other, solver="auto").value > 0.05


def test_pairwise_on_graphs_is_distance_per_pair() -> None:
    nets = []
    for seed in range(3):
        model, x = sparse_model("decoder", 10 + seed)
        nets.append(nnstd.torch.to_network(model, example_inputs=x))
    matrix = nnstd.pairwise(nets, solver="paper", threads=2)
    for i in range(3):
        for j in range(i):
            expected = nnstd.distance(nets[i], nets[j], solver="paper").layers
            np.testing.assert_array_equal(matrix[i, j], expected)
            np.testing.assert_array_equal(matrix[j, i], expected)


# Chains --------------------------------------------------------------------------------------


def mlp(seed: int) -> Any:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_((torch.rand(param.shape) < 0.5).float())
    return model


def test_a_chain_traced_is_the_chain_network() -> None:
    x = torch.zeros(2, 6)
    a, b = mlp(0), mlp(1)
    traced = nnstd.torch.to_network(a, example_inputs=x)
    assert not traced.is_graph
    assert traced.connections == nnstd.torch.to_network(a).connections
    for solver in ("canonical", "paper", "auto"):
        chain = nnstd.distance(nnstd.torch.to_network(a), nnstd.torch.to_network(b), solver=solver)
        got = nnstd.distance(traced, nnstd.torch.to_network(b, example_inputs=x), solver=solver)
        np.testing.assert_array_equal(got.layers, chain.layers)


def test_fixed_outputs_on_a_chain_compare_output_units_in_place() -> None:
    x = torch.zeros(2, 6)
    a, b = mlp(0), mlp(1)
    net_a = nnstd.torch.to_network(a, example_inputs=x, outputs="fixed")
    net_b = nnstd.torch.to_network(b, example_inputs=x, outputs="fixed")
    got = nnstd.distance(net_a, net_b, solver="paper")
    free = nnstd.distance(nnstd.torch.to_network(a), nnstd.torch.to_network(b), solver="paper")
    np.testing.assert_array_equal(got.layers[:2], free.layers[:2])
    assert got.solvers[2] == "fixed"
    np.testing.assert_array_equal(got.matchings[2], np.arange(3))
    expected = oracle(net_a.spec, weights_of(a), net_b.spec, weights_of(b), fixed_outputs=True)
    assert net_a.groups == ("0", "2", "4")
    assert got.layers[2] == pytest.approx(expected["4"][0], abs=1e-12)


# Refusals ---------------------------------------------------------------------------------------


def test_graphs_refuse_what_reads_layers() -> None:
    model, x = sparse_model("decoder", 1)
    net = nnstd.torch.to_network(model, example_inputs=x)
    with pytest.raises(nnstd.TopologyError, match=r"Decoder: .* is a graph of permutation groups"):
        nnstd.alignment(net, net, solver="auto")
    with pytest.raises(nnstd.TopologyError, match=r"is a graph of permutation groups"):
        net.layer(0)
    chain = nnstd.torch.to_network(mlp(0), example_inputs=torch.zeros(1, 6))
    with pytest.raises(
        nnstd.TopologyError, match=r"a chain of layers cannot be compared with a graph"
    ):
        nnstd.distance(chain, net, solver="auto")
    other = nnstd.torch.to_network(sparse_model("encoder-1", 1)[0], example_inputs=x)
    with pytest.raises(nnstd.TopologyError, match=r"graphs of different structure"):
        nnstd.distance(net, other, solver="auto")


def test_graph_arguments_are_checked() -> None:
    model, x = sparse_model("resnet", 1)
    with pytest.raises(ValueError, match=r"a graph needs a module and example_inputs"):
        nnstd.torch.to_network(model.state_dict(), example_inputs=x)
    with pytest.raises(ValueError, match=r"outputs must be 'free' or 'fixed'"):
        nnstd.torch.to_network(model, example_inputs=x, outputs="same")
    with pytest.raises(ValueError, match=r"layers= names a chain"):
        nnstd.torch.to_network(model, example_inputs=x, layers=["conv1"])
    with pytest.raises(
        nnstd.TopologyError, match=r"spec.*example_inputs=\.\.\. to read it as a graph"
    ):
        nnstd.torch.to_network(model)


# Alignment ------------------------------------------------------------------------------------


def pruned_model(kind: str, seed: int) -> tuple[Any, Any]:
    """A model of ``GRAPHS`` pruned at random with ``torch.nn.utils.prune`` (masks beside the
    weights), with BatchNorm statistics that are not the defaults."""
    import torch.nn.utils.prune as prune

    model, x = sparse_model(kind, seed, keep=1.0)
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            prune.random_unstructured(module, "weight", amount=0.4)
        if isinstance(module, nn.MultiheadAttention):
            prune.random_unstructured(module, "in_proj_weight", amount=0.4)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    refresh_pruned(model)  # masked weights without autograd history, so that copies can be made
    return model, x


def refresh_pruned(model: Any) -> None:
    """The masked weights recomputed from ``_orig`` and ``_mask`` (their forward hook does it
    only when the module is called, which a TransformerEncoderLayer's fast path does not)."""
    import torch.nn.utils.prune as prune

    with torch.no_grad():
        for module in model.modules():
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(module, hook._tensor_name, hook.apply_mask(module))


@pytest.mark.parametrize("kind", ["resnet", "encoder-2", "decoder"])
def test_align_renames_a_renamed_copy_back(kind: str) -> None:
    import copy

    seed = 7
    reference, x = pruned_model(kind, seed)
    traced = nnstd.torch.spec(reference, x)
    while has_twins(traced, dict(zip(*_logical(reference), strict=True))):
        seed += 1  # a twin-free draw, as for the distance
        reference, x = pruned_model(kind, seed)
        traced = nnstd.torch.spec(reference, x)
    model = renamed(reference, traced, 3)
    refresh_pruned(model)  # load_state_dict leaves the masked weights as they were
    with torch.no_grad():
        before = model(x)
    aligned = nnstd.torch.align(reference, copy.deepcopy(model), example_inputs=x)
    with torch.no_grad():
        assert relative_error(before, aligned(x)) < 1e-10
    ref_state, got = reference.state_dict(), aligned.state_dict()
    for name, value in ref_state.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)


def test_align_keeps_the_function_of_another_model() -> None:
    reference, x = pruned_model("decoder", 8)
    model, _ = pruned_model("decoder", 9)
    with torch.no_grad():
        before = model(x)
    aligned = nnstd.torch.align(reference, model, example_inputs=x, solver="paper")
    with torch.no_grad():
        assert relative_error(before, aligned(x)) < 1e-10
    for solver in ("canonical", None):  # the canonical mode, the default, aligns graphs too
        model, _ = pruned_model("decoder", 9)
        aligned = nnstd.torch.align(reference, model, example_inputs=x, solver=solver)
        with torch.no_grad():
            assert relative_error(before, aligned(x)) < 1e-10


def _logical(model: Any) -> tuple[list[str], list[np.ndarray]]:
    """Each writer's connections by its spec name (the mask where there is one)."""
    names, values = [], []
    for name, value in model.state_dict().items():
        if name.endswith("_orig"):
            continue
        names.append(name.removesuffix("_mask"))
        values.append(value.detach().numpy())
    return names, values


def test_the_worked_example_runs_and_prints_what_it_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "definition.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class Block" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/definition.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()
    after = block.split("print(net_a.spec)\n", 1)[1].splitlines()
    said = [line[2:] for line in after[: len(printed)]]
    assert printed == said
    d = namespace["d"]
    assert namespace["net_a"].groups == ("inp", "up")
    np.testing.assert_array_equal(d.layers, [0.0, 0.25])
    assert d.value == 0.125


# A spec given instead of tracing ---------------------------------------------------------------


def test_a_spec_reads_state_dicts_and_checkpoints_as_graphs(tmp_path: Any) -> None:
    import json

    (a, x), (b, _) = pruned_model("resnet", 1), pruned_model("resnet", 2)
    traced = nnstd.torch.spec(a, x)
    expected = nnstd.distance(
        nnstd.torch.to_network(a, example_inputs=x),
        nnstd.torch.to_network(b, example_inputs=x),
        solver="paper",
    )
    torch.save(b.state_dict(), tmp_path / "b.pt")
    state_b = torch.load(tmp_path / "b.pt", weights_only=True)
    written = json.loads(json.dumps(traced.to_dict()))  # as a user would keep it
    got = nnstd.distance(
        nnstd.torch.to_network(a.state_dict(), spec=traced),
        nnstd.torch.to_network(state_b, spec=written),
        solver="paper",
    )
    np.testing.assert_array_equal(got.layers, expected.layers)
    with pytest.raises(nnstd.TopologyError, match=r"layer2\.0\.downsample\.0\.weight .*no group"):
        del written["groups"][5]["writers"][1]  # the downsample's rows
        nnstd.torch.to_network(state_b, spec=written)
    with pytest.raises(ValueError, match=r"spec= gives the groups"):
        nnstd.torch.to_network(a, spec=traced, example_inputs=x)


def test_a_fused_qkv_block_against_the_definition_and_aligned_back() -> None:
    import copy

    from test_graph_spec import GPTBlock

    def sparse_gpt(seed: int) -> Any:
        torch.manual_seed(seed)
        model = GPTBlock().double().eval()
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() >= 2:
                    param.mul_((torch.rand(param.shape) < 0.5).double())
        return model

    x = torch.randn(2, 5, 8, dtype=torch.float64)
    a, b = sparse_gpt(1), sparse_gpt(2)
    net_a = nnstd.torch.to_network(a, example_inputs=x)
    net_b = nnstd.torch.to_network(b, example_inputs=x)
    got = nnstd.distance(net_a, net_b, solver="paper")
    expected = oracle(net_a.spec, weights_of(a), net_b.spec, weights_of(b))
    for k, name in enumerate(net_a.groups):
        np.testing.assert_array_equal(got.matchings[k], expected[name][2], err_msg=name)
        assert got.costs[k] == pytest.approx(expected[name][1], abs=1e-12), name
    seed = 3
    while has_twins(net_a.spec, weights_of(a)):  # a twin-free draw: the renaming found back
        a, seed = sparse_gpt(seed), seed + 1
    model = renamed(a, net_a.spec, 1)
    with torch.no_grad():
        before = model(x)
    aligned = nnstd.torch.align(a, copy.deepcopy(model), example_inputs=x)
    with torch.no_grad():
        assert relative_error(before, aligned(x)) < 1e-10
    for name, value in a.state_dict().items():
        torch.testing.assert_close(aligned.state_dict()[name], value, rtol=0, atol=0)
