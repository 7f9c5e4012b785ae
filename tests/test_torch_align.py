"""nnstd.torch: an alignment applied to PyTorch modules computes the same function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
prune = pytest.importorskip("torch.nn.utils.prune")
parametrize = pytest.importorskip("torch.nn.utils.parametrize")


def random_orders(widths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.permutation(w) for w in widths]


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4)
    )
    for layer in model[::2]:
        prune.random_unstructured(layer, name="weight", amount=0.6)
    return model


def conv_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, padding=1),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 4 * 4, 7),
        nn.ReLU(),
        nn.Linear(7, 3),
    )
    for bn in (model[1], model[4]):  # statistics that differ per channel
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.5, 0.5)
    for layer in (model[0], model[3], model[7]):
        prune.random_unstructured(layer, name="weight", amount=0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("make", "shape", "widths"),
    [(mlp, (8, 10), [16, 12]), (conv_net, (8, 2, 6, 6), [6, 5, 7])],
    ids=["mlp", "conv-bn-flatten-linear"],
)
def test_a_permuted_model_computes_the_same_function(
    make: Callable[[int], Any], shape: tuple[int, ...], widths: list[int]
) -> None:
    model = make(0)
    x = torch.randn(*shape)
    before = model(x)
    renamed = nnstd.torch.permute(make(0), random_orders(widths, 1))  # the same model, renamed
    torch.testing.assert_close(renamed(x), before, rtol=1e-5, atol=1e-5)
    masks = [n for n, _ in model.named_buffers() if n.endswith("weight_mask")]
    changed = [n for n in masks if not torch.equal(model.get_buffer(n), renamed.get_buffer(n))]
    assert changed, "the renaming moved nothing"
    # A relabelled copy aligned back: the masks coincide with the original's.
    back = nnstd.torch.align(model, renamed)
    torch.testing.assert_close(back(x), before, rtol=1e-5, atol=1e-5)
    for name in masks:
        assert torch.equal(back.get_buffer(name), model.get_buffer(name)), name


def test_a_state_dict_is_permuted_too() -> None:
    model = mlp(3)
    state = model.state_dict()
    orders = random_orders([16, 12], 4)
    new = nnstd.torch.permute(state, orders)
    assert set(new) == set(state)
    assert torch.equal(new["0.weight_mask"], state["0.weight_mask"][orders[0]])
    assert torch.equal(new["2.weight_orig"], state["2.weight_orig"][orders[1]][:, orders[0]])
    assert torch.equal(new["4.bias"], state["4.bias"])  # output units keep their order
    other = mlp(3)
    other.load_state_dict(new)
    x = torch.randn(5, 10)
    torch.testing.assert_close(other(x), model(x))


class Masked(nn.Module):
    """A parametrization holding its mask as a buffer (``parametrizations.weight.0.mask``)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def test_parametrized_masks(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 2))
    for layer in (model[0], model[2]):
        mask = (torch.rand_like(layer.weight) < 0.5).float()
        parametrize.register_parametrization(layer, "weight", Masked(mask))
    assert "0.parametrizations.weight.0.mask" in model.state_dict()
    x = torch.randn(4, 6)
    before = model(x)
    orders = random_orders([9], 6)
    mask0 = model[0].parametrizations.weight[0].mask.clone()
    nnstd.torch.permute(model, orders)
    torch.testing.assert_close(model(x), before)
    assert torch.equal(model[0].parametrizations.weight[0].mask, mask0[orders[0]])
    net = nnstd.torch.to_network(model)
    torch.save(model.state_dict(), tmp_path / "parametrized.pt")  # the convention, as a loader
    loaded = nnstd.load_network(tmp_path / "parametrized.pt")
    assert all((loaded.layer(k) != net.layer(k)).nnz == 0 for k in range(2))
    assert net.connections == [
        int(model[0].parametrizations.weight[0].mask.sum()),
        int(model[2].parametrizations.weight[0].mask.sum()),
    ]


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.downsample = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        h = self.conv2(h) + self.downsample(h)
        return self.fc(h.mean(dim=(2, 3)))


class SameWidthResidual(nn.Module):
    """A skip connection the state dict cannot show: every layer chains by its shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.fc3(self.fc2(h) + h)


def test_a_residual_connection_is_named() -> None:
    model = Residual()
    orders = random_orders([8, 16, 16], 0)
    branch = r"downsample\.weight is a branch \(downsample/shortcut\).*only with its spec"
    with pytest.raises(nnstd.TopologyError, match=branch):
        nnstd.torch.permute(model, orders)
    with pytest.raises(nnstd.TopologyError, match=branch):
        nnstd.torch.permute(model.state_dict(), orders)
    chain = ["conv1", "conv2", "fc"]  # a chain named by the user: fx sees the branch
    with pytest.raises(nnstd.TopologyError, match="units of conv1 are read by 2 operations"):
        nnstd.torch.permute(model, random_orders([8, 16], 0), layers=chain)
    with pytest.raises(nnstd.TopologyError, match="units of fc1 are read by 2 operations"):
        nnstd.torch.permute(SameWidthResidual(), random_orders([8, 8], 0))


def test_a_flatten_through_view_is_followed() -> None:
    class Viewed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 3, 3), nn.Linear(3 * 2 * 2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.conv(x))
            return self.fc(h.view(h.size(0), -1))

    torch.manual_seed(0)
    model, x = Viewed(), torch.randn(3, 1, 4, 4)
    before = model(x)
    torch.testing.assert_close(nnstd.torch.permute(model, [[2, 0, 1]])(x), before)


def test_bad_orders_are_refused() -> None:
    model = mlp(0)
    with pytest.raises(nnstd.TopologyError, match="1 orders for 2 hidden layers"):
        nnstd.torch.permute(model, [np.arange(16)])
    with pytest.raises(nnstd.TopologyError, match="the order for 2 is not a permutation"):
        nnstd.torch.permute(model, [np.arange(16), np.zeros(12, dtype=int)])
