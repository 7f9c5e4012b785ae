"""Models that are not plain chains are refused, never read as one; checkpoint layouts.

ResNets (torchvision's resnet18 layout, narrow), ``nn.TransformerEncoder`` and a decoder-style
block (q/k/v/o, gate/up/down, RMSNorm) give a `TopologyError` naming a tensor and the way out
from every entry point: a state dict, a module, a ``.pt`` or ``.safetensors`` file, the command
line; `permute` and `align` on state dicts refuse them (modules with example_inputs are
aligned as graphs: test_graph_distance.py). RigL-style ``{"model", "masks"}`` checkpoints are read
as their masks (checked against the SciPy oracle); a checkpoint dense in every layer warns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from oracle import scipy_distance

torch = pytest.importorskip("torch")
nn = torch.nn

REFUSAL = r"only with its spec.*--spec FILE.*layers="


# Models --------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convolutions, the input added to their output."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """resnet18's layout (stem, stages ``layerN`` of two blocks, ``fc``), narrow."""

    def __init__(self, widths: tuple[int, ...], strides: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        previous, self.stages = widths[0], len(widths)
        for i, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            stage = nn.Sequential(BasicBlock(previous, width, stride), BasicBlock(width, width, 1))
            self.add_module(f"layer{i + 1}", stage)
            previous = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet() -> nn.Module:
    torch.manual_seed(0)
    return ResNet((4, 8), (1, 2)).eval()  # layer2.0 has a downsample


def equal_width_resnet() -> nn.Module:
    torch.manual_seed(0)
    return ResNet((4, 4), (1, 1)).eval()  # no downsample: every tensor chains by its shape


def encoder(num_layers: int) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False).eval()


class Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.v_proj, self.o_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(h: torch.Tensor) -> torch.Tensor:
            return h.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


class GatedMLP(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, d: int = 8, heads: int = 2, hidden: int = 12) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(d)
        self.self_attn = Attention(d, heads)
        self.post_attention_layernorm = nn.RMSNorm(d)
        self.mlp = GatedMLP(d, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer()])
        self.norm = nn.RMSNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def decoder() -> nn.Module:
    torch.manual_seed(0)
    return Decoder().eval()


GRAPHS: dict[str, tuple[Callable[[], nn.Module], str, tuple[int, ...]]] = {
    # model, the tensor the refusal names, an input shape
    "resnet": (resnet, r"layer2\.0\.downsample\.0\.weight", (2, 3, 8, 8)),
    "equal-width-resnet": (equal_width_resnet, r"layer1\.0\.conv1\.weight", (2, 3, 8, 8)),
    "encoder-2": (lambda: encoder(2), r"layers\.0\.self_attn", (2, 5, 8)),
    "encoder-1": (lambda: encoder(1), r"layers\.0\.self_attn", (2, 5, 8)),
    "decoder": (decoder, r"layers\.0\.self_attn\.[qkv]_proj\.weight", (2, 5, 8)),
}


def save_safetensors(state: dict[str, Any], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v.numpy()) for k, v in state.items()}, str(path))


def run_cli(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from nnstd.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# Never a silent wrong number -----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_graphs_are_refused_everywhere(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, tensor, _ = GRAPHS[kind]
    model = make()
    state = model.state_dict()
    message = f"{tensor}.*{REFUSAL}"
    for read in (
        lambda: nnstd.torch.to_network(state),
        lambda: nnstd.torch.to_network(model),
        lambda: nnstd.Network.from_torch(state),
        lambda: nnstd.Network.from_torch(model),
    ):
        with pytest.raises(nnstd.TopologyError, match=message):
            read()
    torch.save(state, tmp_path / "model.pt")
    save_safetensors(state, tmp_path / "model.safetensors")
    for file in ("model.pt", "model.safetensors"):
        with pytest.raises(nnstd.TopologyError, match=f"model{file[5:]}: .*{message}"):
            nnstd.load_network(tmp_path / file)
    code, err = run_cli("distance", tmp_path / "model.pt", tmp_path / "model.pt", capsys=capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "model.pt" in err
    assert "--spec FILE" in err
    assert "layers=" in err


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_permute_and_align_refuse_graphs(kind: str) -> None:
    make, tensor, shape = GRAPHS[kind]
    model = make()
    x = torch.randn(*shape)
    before = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(nnstd.TopologyError, match=f"{tensor}.*{REFUSAL}"):
        nnstd.torch.permute(state, [])
    with pytest.raises(nnstd.TopologyError, match=f"{tensor}.*{REFUSAL}"):
        nnstd.torch.permute(model, [], example_inputs=x)
    with pytest.raises(nnstd.TopologyError, match=f"{tensor}.*{REFUSAL}"):
        nnstd.torch.align(make().state_dict(), state)
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)  # left as it was
    # Two modules with example_inputs are aligned as graphs (test_graph_distance): checked.
    aligned = nnstd.torch.align(make(), make(), example_inputs=x)
    torch.testing.assert_close(aligned(x), before, rtol=1e-4, atol=1e-6)


def test_a_resnet_state_dict_named_as_a_sub_chain_is_read() -> None:
    model = resnet()
    stem = ["conv1.weight", "layer1.0.conv1.weight"]  # the user says this is a chain
    with pytest.warns(UserWarning, match="100% dense"):  # unpruned
        net = nnstd.Network.from_torch(model.state_dict(), layers=stem)
    assert net.shapes == [(27, 4), (36, 4)]
    with pytest.warns(UserWarning, match="100% dense"):
        same = nnstd.torch.to_network(model, layers=["conv1", "layer1.0.conv1"])
    assert same.shapes == net.shapes


def test_an_untraceable_model_is_checked_on_its_outputs() -> None:
    """A one-layer TransformerEncoder: torch.fx cannot trace it. Renaming the FFN's hidden units
    (a chain inside it) keeps its outputs; renaming the residual stream does not, and is
    refused with the model left as it was."""
    model = encoder(1)
    x = torch.randn(2, 5, 8)
    before = model(x)
    ffn = ["layers.0.linear1", "layers.0.linear2"]
    order = np.random.default_rng(0).permutation(16)
    with pytest.raises(nnstd.TopologyError, match=r"cannot trace.*pass example_inputs"):
        nnstd.torch.permute(model, [order], layers=ffn)  # no input to check it on
    with pytest.raises(ValueError, match="example_inputs needs a module"):
        nnstd.torch.permute(model.state_dict(), [order], layers=ffn, example_inputs=x)
    nnstd.torch.permute(model, [order], layers=ffn, example_inputs=x)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    assert not torch.equal(model.layers[0].linear1.weight, encoder(1).layers[0].linear1.weight)
    stream = ["layers.0.self_attn.out_proj", "layers.0.linear1"]
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(nnstd.TopologyError, match=r"outputs.*relative error.*only with its spec"):
        nnstd.torch.permute(model, [np.arange(8)[::-1]], layers=stream, example_inputs=x)
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name  # restored


def test_an_untraceable_model_without_inputs_is_refused() -> None:
    class Dynamic(nn.Module):  # data-dependent control flow: torch.fx cannot trace it
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(2, 4, 3), nn.Conv2d(4, 3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv1(x)
            if h.sum() > 0:
                h = torch.relu(h)
            return self.conv2(h)

    model = Dynamic()
    with pytest.raises(nnstd.TopologyError, match="example_inputs"):
        nnstd.torch.permute(model, [np.arange(4)[::-1]])
    x = torch.randn(2, 2, 6, 6)
    before = model(x)
    nnstd.torch.permute(model, [np.arange(4)[::-1]], example_inputs=x)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)


def test_an_mlp_is_checked_on_random_inputs() -> None:
    """The first layer is a Linear: a random input is built and the check runs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    before = model(x)
    nnstd.torch.permute(model, [np.random.default_rng(1).permutation(7)])
    torch.testing.assert_close(model(x), before, rtol=1e-12, atol=1e-12)


def test_a_skip_between_equal_widths_is_refused_from_the_module() -> None:
    class SameWidthResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.fc1(x))
            return self.fc3(self.fc2(h) + h)

    with pytest.raises(nnstd.TopologyError, match="units of fc1 are read by 2 operations"):
        nnstd.torch.to_network(SameWidthResidual())


def test_a_branch_seen_in_shapes_is_named_as_one() -> None:
    """A 1x1 convolution reading an earlier layer (a shortcut under another name): the hint is
    the branch, not a layer "stored the other way round"."""
    torch.manual_seed(0)
    state = {
        "conv1.weight": torch.randn(8, 3, 3, 3),
        "conv2.weight": torch.randn(16, 8, 3, 3),
        "extra.weight": torch.randn(16, 8, 1, 1),
        "fc.weight": torch.randn(2, 16),
    }
    with pytest.raises(nnstd.TopologyError, match=r"extra\.weight.*a branch") as raised:
        nnstd.Network.from_torch(state)
    assert "is this layer stored the other way round?" not in str(raised.value)


def test_a_branch_named_in_layers_is_named_as_one() -> None:
    chain = [r"conv1\.weight", r"layer\d\.\d\.(conv\d|downsample\.0)\.weight", "fc.weight"]
    with pytest.raises(nnstd.TopologyError, match=r"layer2\.0\.downsample\.0\.weight.*") as raised:
        nnstd.Network.from_torch(resnet(), layers=chain)
    message = str(raised.value)
    assert "reads the units of layer 4 (layer1.1.conv2.weight), so it is a branch" in message
    assert "transposed" not in message


def test_an_unread_weight_is_refused() -> None:
    """A 3-D weight (Conv1d) beside the 2-D ones: reading the rest as a chain would skip it."""
    state = {"conv.weight": torch.ones(4, 2, 3), "fc.weight": torch.eye(4)}
    with pytest.raises(nnstd.TopologyError, match=r"conv\.weight.*not read.*" + REFUSAL):
        nnstd.Network.from_torch(state)
    assert nnstd.Network.from_torch(state, layers=["fc.weight"]).shapes == [(4, 4)]


# Checkpoint conventions ----------------------------------------------------------------------


def rigl_checkpoint(seed: int, key: str = "masks") -> tuple[dict[str, Any], list[np.ndarray]]:
    """Dense weights under ``model``, 0/1 masks beside them; the masks as (inputs, neurons)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4)
    )
    masks = {f"{i}.weight": (torch.rand_like(model[i].weight) < 0.4).float() for i in (0, 2, 4)}
    checkpoint = {"model": model.state_dict(), key: masks, "epoch": 7}
    return checkpoint, [m.numpy().T for m in masks.values()]


def test_rigl_checkpoints_are_read_as_their_masks(tmp_path: Path) -> None:
    a, masks_a = rigl_checkpoint(0)
    b, masks_b = rigl_checkpoint(1, key="mask")
    torch.save(a, tmp_path / "a.pt")
    torch.save(b, tmp_path / "b.pt")
    expected, _ = scipy_distance(masks_a, masks_b)
    found = nnstd.distance(
        nnstd.load_network(tmp_path / "a.pt"), nnstd.load_network(tmp_path / "b.pt")
    )
    np.testing.assert_allclose(found.layers, expected, rtol=1e-12)
    assert min(expected) > 0
    in_memory = nnstd.distance(nnstd.Network.from_torch(a), nnstd.torch.to_network(b))
    np.testing.assert_allclose(in_memory.layers, expected, rtol=1e-12)
    by_module = {**a, "masks": {k.removesuffix(".weight"): v for k, v in a["masks"].items()}}
    assert nnstd.Network.from_torch(by_module).connections == [int(m.sum()) for m in masks_a]


def test_bad_mask_layouts_are_refused_listing_the_keys(tmp_path: Path) -> None:
    a, _ = rigl_checkpoint(0)
    torch.save({"masks": a["masks"]}, tmp_path / "masks.pt")
    with pytest.raises(nnstd.TopologyError, match=r"masks\.pt: .*keys found: masks\b"):
        nnstd.load_network(tmp_path / "masks.pt")
    torch.save({"net": a["model"], "ema": a["model"]}, tmp_path / "two.pt")
    with pytest.raises(nnstd.TopologyError, match=r"two\.pt: .*keys found: net, ema"):
        nnstd.load_network(tmp_path / "two.pt")
    with pytest.raises(nnstd.TopologyError, match=r"keys found: epoch"):
        nnstd.Network.from_torch({"epoch": 3})
    stray = {**a, "masks": {**a["masks"], "9.weight": torch.ones(2, 2)}}
    with pytest.raises(nnstd.TopologyError, match=r"mask '9\.weight' .*no weight"):
        nnstd.Network.from_torch(stray)
    wrong = {**a, "masks": {**a["masks"], "0.weight": torch.ones(10, 16)}}
    with pytest.raises(nnstd.TopologyError, match=r"mask '0\.weight' has shape \(10, 16\)"):
        nnstd.Network.from_torch(wrong)


def test_a_checkpoint_dense_in_every_layer_warns_once(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    torch.save({"state_dict": model.state_dict()}, tmp_path / "dense.pt")
    with pytest.warns(UserWarning) as caught:
        net = nnstd.load_network(tmp_path / "dense.pt")
    assert net.connections == [30, 10]
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "dense.pt" in text and "100% dense" in text and "\n" not in text
    a, _ = rigl_checkpoint(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # masked: no warning
        nnstd.Network.from_torch(a)


def test_checkpoint_entries_beside_the_model_are_ignored_by_name_not_tensors() -> None:
    a, masks = rigl_checkpoint(0)
    model = {k: v for k, v in a["model"].items()}
    optimizer = {"state": {0: {"momentum_buffer": torch.ones(16, 10)}}, "param_groups": []}
    nested = {"net": model, "optimizer": optimizer, "epoch": 3, "masks": a["masks"]}
    net = nnstd.Network.from_torch(nested)  # the one model dict, its masks matched by suffix
    assert net.connections == [int(m.sum()) for m in masks]
    renamed = {
        k.replace("0.", "scaler.", 1) if k.startswith("0.") else k: v for k, v in model.items()
    }  # a layer named like a scheduler's entry is kept
    with pytest.warns(UserWarning, match="100% dense"):
        assert nnstd.Network.from_torch(renamed).depth == 3


def test_a_depthwise_convolution_is_named() -> None:
    torch.manual_seed(0)
    state = {
        "stem.weight": torch.randn(8, 3, 3, 3),
        "dw.weight": torch.randn(8, 1, 3, 3),  # groups=8
        "pw.weight": torch.randn(16, 8, 1, 1),
    }
    with pytest.raises(nnstd.TopologyError, match=r"dw\.weight.*depthwise convolution \(8 groups"):
        nnstd.Network.from_torch(state)


def test_a_renaming_fx_passes_but_the_outputs_refute_is_undone() -> None:
    class Scaled(nn.Module):  # a per-unit parameter outside the layers: fx sees no branch
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 2)
            self.scale = nn.Parameter(torch.linspace(0.5, 2.0, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.fc1(x)) * self.scale)

    torch.manual_seed(0)
    model = Scaled()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(nnstd.TopologyError, match=r"units of fc1 changes.*random input"):
        nnstd.torch.permute(model, [np.arange(6)[::-1]])
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name
