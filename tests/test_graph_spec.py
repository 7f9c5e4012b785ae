"""`nnstd.torch.spec`: the groups of units a module renames together.

The oracle is the model itself: renaming every group of a spec at random (heads block-wise,
shared within a head set), with a renamer written here from the spec format alone, must leave
the model's outputs unchanged, and renaming a group only in part must change them. The groups
expected for each model are written out by hand.
"""

from __future__ import annotations

import json
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from nnstd.torch import Spec

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_graphs import GRAPHS, Decoder, ResNet  # noqa: E402


def model_and_input(kind: str) -> tuple[Any, Any]:
    make, _, shape = GRAPHS[kind]
    model = make().double().eval()
    generator = torch.Generator().manual_seed(1)
    return model, torch.randn(*shape, generator=generator, dtype=torch.float64)


def unit_order(group: Any, rng: np.random.Generator, head_orders: dict[str, Any]) -> Any:
    """A random order of the group's units; heads block-wise, one head order per head set."""
    if group.heads == 1:
        return rng.permutation(group.size)
    width = group.size // group.heads
    key = group.head_set or group.name
    heads = head_orders.setdefault(key, rng.permutation(group.heads))
    return np.concatenate([h * width + rng.permutation(width) for h in heads])


def renamed(model: Any, spec: Spec, seed: int, skip: set[str] | None = None) -> Any:
    """A copy of ``model`` with every hidden group of ``spec`` renamed at random (slots not
    in ``skip``)."""
    import copy

    rng = np.random.default_rng(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    heads: dict[str, Any] = {}
    for group in spec.groups:
        if group.kind != "hidden":
            continue
        order = unit_order(group, rng, heads)
        for slot in (*group.writers, *group.readers, *group.followers):
            if skip and slot.tensor in skip:
                continue
            # A pruned weight is stored as weight_orig and weight_mask: both are renamed.
            for name in (slot.tensor, slot.tensor + "_orig", slot.tensor + "_mask"):
                if name not in state:
                    continue
                tensor = state[name]
                block = np.arange(slot.block)
                index = slot.offset + (order[:, None] * slot.block + block).ravel()
                target = slot.offset + np.arange(group.size * slot.block)
                moved = tensor.index_select(slot.axis, torch.as_tensor(index))
                tensor.index_copy_(slot.axis, torch.as_tensor(target), moved)
    copy_ = copy.deepcopy(model)
    copy_.load_state_dict(state)
    return copy_


def relative_error(a: Any, b: Any) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(a))


# The groups of each model, written out ------------------------------------------------------


def test_resnet_groups() -> None:
    model, x = model_and_input("resnet")
    spec = nnstd.torch.spec(model, x)
    assert [g.name for g in spec.groups] == [
        "x",
        "conv1",
        "layer1.0.conv1",
        "layer1.1.conv1",
        "layer2.0.conv1",
        "layer2.0.conv2",
        "layer2.1.conv1",
        "fc",
    ]
    stream1, stream2 = spec["conv1"], spec["layer2.0.conv2"]
    assert {s.tensor for s in stream1.writers} == {
        "conv1.weight",
        "layer1.0.conv2.weight",
        "layer1.1.conv2.weight",
    }
    assert {s.tensor for s in stream2.writers} == {
        "layer2.0.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer2.1.conv2.weight",
    }
    assert {s.tensor for s in stream1.readers} == {
        "layer1.0.conv1.weight",
        "layer1.1.conv1.weight",
        "layer2.0.conv1.weight",
        "layer2.0.downsample.0.weight",
    }
    assert "layer2.0.downsample.1.running_var" in {s.tensor for s in stream2.followers}
    assert (spec["x"].kind, spec["fc"].kind, stream2.size) == ("input", "output", 8)


@pytest.mark.parametrize("kind", ["encoder-2", "encoder-1"])
def test_transformer_encoder_groups(kind: str) -> None:
    model, x = model_and_input(kind)
    spec = nnstd.torch.spec(model, x)
    layers = 2 if kind == "encoder-2" else 1
    names = ["x"]
    for k in range(layers):
        names += [f"layers.{k}.self_attn.qk", f"layers.{k}.self_attn.v", f"layers.{k}.linear1"]
    assert [g.name for g in spec.groups] == names
    qk, v = spec["layers.0.self_attn.qk"], spec["layers.0.self_attn.v"]
    assert (qk.heads, v.heads, qk.head_set, v.head_set) == (2, 2, qk.name, qk.name)
    assert [(s.tensor, s.offset) for s in qk.writers] == [
        ("layers.0.self_attn.in_proj_weight", 0),
        ("layers.0.self_attn.in_proj_weight", 8),
    ]
    assert [s.tensor for s in v.readers] == ["layers.0.self_attn.out_proj.weight"]
    # The stream is the input: written into by every block, never renamed.
    assert spec["x"].kind == "input" and len(spec["x"].writers) == 2 * layers


def test_decoder_groups() -> None:
    model, x = model_and_input("decoder")
    spec = nnstd.torch.spec(model, x)
    prefix = "layers.0."
    qk, v, mlp = (
        spec[prefix + n] for n in ("self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj")
    )
    assert {s.tensor for s in qk.writers} == {
        prefix + "self_attn.q_proj.weight",
        prefix + "self_attn.k_proj.weight",
    }
    assert (qk.heads, v.heads, v.head_set) == (2, 2, qk.name)
    assert [s.tensor for s in v.readers] == [prefix + "self_attn.o_proj.weight"]
    assert {s.tensor for s in mlp.writers} == {
        prefix + "mlp.gate_proj.weight",
        prefix + "mlp.up_proj.weight",
    }
    assert {s.tensor for s in spec["x"].followers} == {
        prefix + "input_layernorm.weight",
        prefix + "post_attention_layernorm.weight",
        "norm.weight",
    }


# Renaming by the spec keeps the function; renaming a group in part does not ----------------


@pytest.mark.parametrize(
    "kind", ["resnet", "equal-width-resnet", "encoder-2", "encoder-1", "decoder"]
)
def test_renaming_every_group_keeps_the_outputs(kind: str) -> None:
    model, x = model_and_input(kind)
    spec = nnstd.torch.spec(model, x)
    with torch.no_grad():
        before = model(x)
        for seed in range(3):
            assert relative_error(before, renamed(model, spec, seed)(x)) < 1e-10


@pytest.mark.parametrize(
    ("kind", "tensor"),
    [
        ("resnet", "layer2.0.downsample.0.weight"),  # one writer of a stream
        ("encoder-2", "layers.0.self_attn.out_proj.weight"),  # the value group's reader
        ("decoder", "layers.0.mlp.up_proj.weight"),  # one half of a gated MLP
    ],
)
def test_renaming_a_group_in_part_changes_the_outputs(kind: str, tensor: str) -> None:
    model, x = model_and_input(kind)
    spec = nnstd.torch.spec(model, x)
    with torch.no_grad():
        assert relative_error(model(x), renamed(model, spec, 0, skip={tensor})(x)) > 1e-3


def test_heads_renamed_apart_change_the_outputs() -> None:
    """Query-key and value groups renamed with different head orders: not the same function,
    so the shared head set is needed."""
    model, x = model_and_input("decoder")
    spec = nnstd.torch.spec(model, x)
    data = spec.to_dict()
    for group in data["groups"]:
        group.pop("head_set", None)
    apart = Spec.from_dict(data)
    with torch.no_grad():
        errors = [relative_error(model(x), renamed(model, apart, s)(x)) for s in range(4)]
    assert max(errors) > 1e-3


def test_prenorm_encoder_layer_and_a_head_on_top() -> None:
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(
                8, 4, 12, 0.0, batch_first=True, norm_first=True
            )
            self.head = nn.Linear(8, 3)

        def forward(self, x: Any) -> Any:
            return self.head(self.layer(x))

    model = Model().double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    spec = nnstd.torch.spec(model, x)
    assert spec["layer.self_attn.qk"].heads == 4 and spec["head"].kind == "output"
    with torch.no_grad():
        assert relative_error(model(x), renamed(model, spec, 0)(x)) < 1e-10


def test_pruned_weights_are_named_as_their_parameter() -> None:
    model, x = model_and_input("resnet")
    import torch.nn.utils.prune as prune

    prune.random_unstructured(model.conv1, "weight", amount=0.5)
    spec = nnstd.torch.spec(model, x)
    assert "conv1.weight" in {s.tensor for s in spec["conv1"].writers}


def test_spec_restores_training_mode() -> None:
    model, x = model_and_input("resnet")
    model.train()
    stats = model.bn1.running_mean.clone()
    nnstd.torch.spec(model, x)
    assert model.training and torch.equal(model.bn1.running_mean, stats)


# Refusals -------------------------------------------------------------------------------------


class Sliced(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.out = nn.Linear(4, 8)

    def forward(self, x: Any) -> Any:
        return self.out(self.fc(x)[..., :4])


class Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, groups=3)

    def forward(self, x: Any) -> Any:
        return self.conv(x)


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.fc(x)))


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Any) -> Any:
        return self.fc(x) if x.sum() > 0 else x


class Embedded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, x: Any) -> Any:
        return self.emb(x)


@pytest.mark.parametrize(
    ("model", "x", "message"),
    [
        (Sliced(), torch.zeros(2, 8), r"getitem.*indexes a value with units"),
        (Depthwise(), torch.zeros(1, 3, 5, 5), r"3 groups \(grouped or depthwise\)"),
        (Shared(), torch.zeros(2, 4), r"fc is called more than once"),
        (Branching(), torch.zeros(2, 4), r"torch\.fx cannot trace"),
        (Embedded(), torch.zeros(2, dtype=torch.long), r"no rule for the module emb \(Embedding\)"),
    ],
)
def test_what_no_rule_covers_is_refused(model: Any, x: Any, message: str) -> None:
    with pytest.raises(nnstd.TopologyError, match=f"{message}.*graph-specs"):
        nnstd.torch.spec(model, x)


def test_a_weight_outside_every_group_is_refused() -> None:
    class Extra(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return self.fc(x)

    with pytest.raises(nnstd.TopologyError, match=r"unused\.weight .*no group's writer"):
        nnstd.torch.spec(Extra(), torch.zeros(2, 4))


# Specs written by hand --------------------------------------------------------------------------

CHAIN = {
    "groups": [
        {"name": "out", "size": 2, "kind": "output", "writers": ["fc2.weight"]},
        {"name": "x", "size": 3, "kind": "input", "readers": ["fc1.weight"]},
        {"name": "h", "size": 4, "writers": ["fc1.weight"], "readers": ["fc2.weight"]},
    ]
}


def test_a_written_spec_is_put_in_matching_order_and_round_trips() -> None:
    spec = Spec.from_dict(json.loads(json.dumps(CHAIN)))
    assert [g.name for g in spec.groups] == ["x", "h", "out"]
    assert Spec.from_dict(spec.to_dict()) == spec
    spec.check({"fc1.weight": (4, 3), "fc2.weight": (2, 4)})


def test_traced_specs_round_trip() -> None:
    model, x = model_and_input("encoder-2")
    spec = nnstd.torch.spec(model, x)
    assert Spec.from_dict(json.loads(json.dumps(spec.to_dict())), spec.source) == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["groups"][2].update(size=0), r"group 'h': 'size' must be a positive"),
        (lambda d: d["groups"][2].update(heads=3), r"4 units, not a multiple of its 3 heads"),
        (lambda d: d["groups"][2].update(kind="stream"), r"'kind' must be one of"),
        (lambda d: d["groups"][2].update(weights=[]), r"unknown keys \['weights'\]"),
        (lambda d: d["groups"][0].update(name="h"), r"two groups are named 'h'"),
        (
            lambda d: d["groups"][0]["writers"].append("fc1.weight"),
            r"fc1\.weight: groups .* both claim rows",
        ),
        (lambda d: d["groups"][2].update(readers="fc2.weight"), r"'readers' must be a list"),
        (
            lambda d: d["groups"][2]["readers"].append({"tensor": "fc3.weight", "offset": -1}),
            r"offset must be >= 0",
        ),
    ],
)
def test_bad_written_specs_are_refused(change: Any, message: str) -> None:
    data = json.loads(json.dumps(CHAIN))
    change(data)
    with pytest.raises(nnstd.TopologyError, match=message):
        Spec.from_dict(data)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"fc1.weight": (4, 3)}, r"names fc2\.weight, not a tensor of the model"),
        ({"fc1.weight": (4, 3), "fc2.weight": (2, 5)}, r"read 4 of the 5 columns .* fc2\.weight"),
        ({"fc1.weight": (5, 3), "fc2.weight": (2, 4)}, r"write 4 of the 5 rows of fc1\.weight"),
        (
            {"fc1.weight": (4, 3), "fc2.weight": (2, 4), "fc3.weight": (2, 2)},
            r"fc3\.weight .*no group's writer",
        ),
        (
            {"fc1.weight": (4, 2), "fc2.weight": (2, 4)},
            r"needs 3 entries along axis 1 of fc1\.weight",
        ),
    ],
)
def test_a_spec_that_does_not_fit_the_model_is_refused(shapes: Any, message: str) -> None:
    with pytest.raises(nnstd.TopologyError, match=message):
        Spec.from_dict(CHAIN).check(shapes)


def test_models_in_this_file_are_the_refused_graphs() -> None:
    """The models are the ones the readers refuse (test_torch_graphs): still refused there."""
    assert ResNet is not None and Decoder is not None
    with pytest.raises(nnstd.TopologyError, match="only with its spec"):
        nnstd.torch.to_network(model_and_input("resnet")[0])


def test_docstring_examples_run() -> None:
    import doctest

    import nnstd._graph

    failures, tried = doctest.testmod(nnstd._graph, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_cat_places_groups_side_by_side() -> None:
    class Cat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.fc = nn.Linear(4, 3), nn.Linear(4, 5), nn.Linear(8, 2)

        def forward(self, x: Any) -> Any:
            return self.fc(torch.cat([torch.relu(self.a(x)), self.b(x)], dim=-1))

    torch.manual_seed(0)
    model = Cat().double().eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    spec = nnstd.torch.spec(model, x)
    assert [(s.tensor, s.offset) for s in spec["a"].readers] == [("fc.weight", 0)]
    assert [(s.tensor, s.offset) for s in spec["b"].readers] == [("fc.weight", 3)]
    with torch.no_grad():
        assert relative_error(model(x), renamed(model, spec, 0)(x)) < 1e-10


class GPTBlock(nn.Module):
    """nanoGPT's block: a fused c_attn projection split into q, k, v; GELU MLP; LayerNorm."""

    def __init__(self, d: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.d = heads, d
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attn(self, x: Any) -> Any:
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x: Any) -> Any:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(nn.functional.gelu(self.c_fc(self.ln_2(x))))


def test_a_fused_projection_split_into_q_k_v() -> None:
    torch.manual_seed(0)
    model = GPTBlock().double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    spec = nnstd.torch.spec(model, x)
    qk, v = spec["c_attn.0"], spec["c_attn.2"]
    assert [(s.tensor, s.offset) for s in qk.writers] == [
        ("c_attn.weight", 0),
        ("c_attn.weight", 8),
    ]
    assert [(s.tensor, s.offset) for s in v.followers] == [("c_attn.bias", 16)]
    assert (qk.heads, v.head_set) == (2, qk.name)
    assert [g.name for g in spec.groups] == ["x", "c_attn.0", "c_attn.2", "c_fc"]
    with torch.no_grad():
        for seed in range(2):
            assert relative_error(model(x), renamed(model, spec, seed)(x)) < 1e-10
