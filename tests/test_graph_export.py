"""torch.export as the tracer's fallback (issue 20): a module whose ``forward`` torch.fx cannot
trace (Python control flow on an input's shape, as in models that take one image or a batch)
is exported instead, and its ATen graph gives the same spec as an fx-traceable module of the
same layers; where both fail, the refusal names both failures and the way out (a spec)."""

from __future__ import annotations

import copy
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from test_graph_distance import refresh_pruned, sparse_model  # noqa: E402
from test_graph_spec import GPTBlock, relative_error, renamed  # noqa: E402
from test_torch_graphs import GRAPHS, Decoder, ResNet  # noqa: E402


class OneOrManyResNet(ResNet):
    """The tests' ResNet taking one image (C, H, W) or a batch: ``if x.dim() == 3`` is Python
    control flow on a traced value, which torch.fx refuses and torch.export takes as the
    example takes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(0)
        return super().forward(x)


class OneOrManyDecoder(Decoder):
    """The tests' decoder block (q/k/v/o attention, gated MLP, RMSNorm), one sequence or a
    batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0)
        return super().forward(x)


class OneOrManyGPTBlock(GPTBlock):
    """nanoGPT's block (a fused c_attn split into q, k, v; LayerNorm; GELU), one sequence or a
    batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0)
        return super().forward(x)


class DataDependent(nn.Module):
    """Control flow on values: neither fx nor export (which traces shapes, not values)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.sum() > 0:
            h = h.relu()
        return self.b(h)


def one_or_many(kind: str) -> Any:
    """A model and its untraceable twin, with the same weights."""
    plain = GPTBlock().eval() if kind == "gpt" else GRAPHS[kind][0]()
    twin = {"resnet": lambda: OneOrManyResNet((4, 8), (1, 2)), "decoder": OneOrManyDecoder}.get(
        kind, OneOrManyGPTBlock
    )()
    twin.load_state_dict(plain.state_dict())
    return plain, twin.eval()


@pytest.mark.parametrize("kind", ["resnet", "decoder", "gpt"])
def test_an_untraceable_forward_is_exported_to_the_same_spec(kind: str) -> None:
    plain, twin = one_or_many(kind)
    x = torch.randn(*GRAPHS["decoder" if kind == "gpt" else kind][2])
    with pytest.raises(Exception, match="control flow"):
        torch.fx.symbolic_trace(twin)  # the premise: fx cannot trace it
    with torch.no_grad():
        before = twin(x)
    got, want = nnstd.torch.spec(twin, x), nnstd.torch.spec(plain, x)
    assert got.groups == want.groups
    with torch.no_grad():
        torch.testing.assert_close(twin(x), before, rtol=0, atol=0)  # left as it was


def test_exported_pruned_weights_and_distances_match_the_traced_ones() -> None:
    import torch.nn.utils.prune as prune

    nets: dict[str, list[Any]] = {"plain": [], "twin": []}
    for seed in (1, 2):
        model, x = sparse_model("resnet", seed, keep=1.0)
        torch.manual_seed(seed)  # the masks' draw (the model's maker seeds its own)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                prune.random_unstructured(module, "weight", amount=0.95)
        refresh_pruned(model)
        twin = OneOrManyResNet((4, 8), (1, 2)).double().eval()
        for module in twin.modules():  # the same masks, kept the same way
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                prune.identity(module, "weight")
        twin.load_state_dict(model.state_dict())
        refresh_pruned(twin)
        with torch.no_grad():
            before = twin(x)
        exported = nnstd.torch.spec(twin, x)
        assert exported.groups == nnstd.torch.spec(model, x).groups
        with torch.no_grad():  # exporting left the pruned model computing what it did
            torch.testing.assert_close(twin(x), before, rtol=0, atol=0)
            twin.conv1.weight_mask.zero_()
            assert not torch.equal(twin(x), before)  # its pruning hook still runs
            twin.load_state_dict(model.state_dict())
        nets["plain"].append(nnstd.torch.to_network(model, example_inputs=x))
        nets["twin"].append(nnstd.torch.to_network(twin, spec=exported))
    for solver in ("paper", "auto"):
        want = nnstd.distance(*nets["plain"], solver=solver)  # type: ignore[arg-type]
        got = nnstd.distance(*nets["twin"], solver=solver)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got.layers, want.layers)
    assert want.layers.max() > 0  # two different draws: a test that could fail


def test_align_works_on_an_exported_model() -> None:
    plain, reference = one_or_many("resnet")
    x = torch.randn(*GRAPHS["resnet"][2])
    with torch.no_grad():  # BatchNorm statistics that are not the defaults
        for module in reference.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
            if isinstance(module, nn.Conv2d):
                module.weight.mul_((torch.rand(module.weight.shape) < 0.6).float())
    model = renamed(reference, nnstd.torch.spec(plain, x), 5)
    with torch.no_grad():
        before = model(x)
    aligned = nnstd.torch.align(reference, copy.deepcopy(model), example_inputs=x, solver="paper")
    with torch.no_grad():
        assert relative_error(before, aligned(x)) < 1e-5
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(aligned.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_where_both_fail_the_refusal_names_both_and_the_way_out() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(
        nnstd.TopologyError,
        match=r"DataDependent: torch\.fx cannot trace its forward \(.*control flow.*\), and "
        r"torch\.export cannot export it either \(.+\); write its spec by hand and pass it as "
        r"spec=",
    ):
        nnstd.torch.spec(DataDependent(), x)
