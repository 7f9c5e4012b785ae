"""Loaders for real inputs: round trips, orientation, convolutions, and hostile files."""

from __future__ import annotations

import contextlib
import importlib.util
import pickle
import sys
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HAS_TORCH = importlib.util.find_spec("torch") is not None


def mlp(seed: int = 0, widths: tuple[int, ...] = (12, 8, 6, 3)) -> list[np.ndarray]:
    """(inputs, neurons) weights with about 40% connections."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(a, b)) * (rng.random((a, b)) < 0.4)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


def torch_style(layers: list[np.ndarray]) -> dict[str, np.ndarray]:
    """A PyTorch-like state dict: (out, in) weights and biases."""
    state: dict[str, np.ndarray] = {}
    for k, w in enumerate(layers):
        state[f"layers.{k}.weight"] = np.ascontiguousarray(w.T)
        state[f"layers.{k}.bias"] = np.zeros(w.shape[1])
    return state


def test_npz_of_dense_arrays_round_trip(tmp_path: Path) -> None:
    layers = mlp(1)
    np.savez(tmp_path / "net.npz", *layers)
    loaded = nnstd.load_network(tmp_path / "net.npz")
    assert loaded.shapes == [w.shape for w in layers]
    other = nnstd.Network(mlp(2))
    np.testing.assert_array_equal(
        nnstd.distance(loaded, other).layers, nnstd.distance(nnstd.Network(layers), other).layers
    )
    np.savez(tmp_path / "t.npz", *[w.T for w in layers])
    assert nnstd.load_network(tmp_path / "t.npz", orientation="out_in").shapes == loaded.shapes


def test_single_scipy_sparse_npz_is_one_layer(tmp_path: Path) -> None:
    sp.save_npz(tmp_path / "w.npz", sp.csr_matrix(np.eye(4)))
    assert nnstd.load_network(tmp_path / "w.npz").shapes == [(4, 4)]


def test_safetensors_round_trip_and_layer_selection(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    layers = mlp(3, (12, 8, 6, 5, 4, 4, 4, 4, 4, 4, 4, 3))  # 11 layers: "layers.10" sorts late
    save_file(torch_style(layers), str(tmp_path / "m.safetensors"))
    loaded = nnstd.load_network(tmp_path / "m.safetensors")
    assert loaded.shapes == [w.shape for w in layers]
    assert nnstd.distance(loaded, nnstd.Network(layers)).value == 0.0
    first_two = nnstd.load_network(
        tmp_path / "m.safetensors", layers=["layers.0.weight", r"layers\.1\.weight"]
    )
    assert first_two.depth == 2
    with pytest.raises(nnstd.TopologyError, match="no tensor matches 'nope'"):
        nnstd.load_network(tmp_path / "m.safetensors", layers=["nope"])


def test_transposed_layers_are_reported(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    layers = mlp(4)
    state = torch_style(layers)
    state["layers.1.weight"] = np.ascontiguousarray(state["layers.1.weight"].T)  # one wrong
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(
        nnstd.TopologyError, match=r"layer 1 \(layers.1.weight\).*chains when transposed"
    ):
        nnstd.load_network(tmp_path / "bad.safetensors")
    np.savez(tmp_path / "in_out.npz", *layers)
    with pytest.raises(nnstd.TopologyError, match="orientation='in_out'"):
        nnstd.load_network(tmp_path / "in_out.npz", orientation="out_in")
    with pytest.raises(ValueError, match="orientation must be"):
        nnstd.load_network(tmp_path / "in_out.npz", orientation="sideways")  # type: ignore[arg-type]


def test_masks_are_preferred_over_weights() -> None:
    layers = mlp(5)
    state = torch_style(layers)
    mask = (np.abs(state["layers.0.weight"]) > 0.5).astype(np.float32)
    state["layers.0.weight_orig"] = state.pop("layers.0.weight") + 1.0  # dense before pruning
    state["layers.0.weight_mask"] = mask
    net = nnstd.Network.from_torch(state)
    assert net.connections[0] == int(mask.sum())


def test_unknown_files_and_pickles_are_refused(tmp_path: Path) -> None:
    (tmp_path / "w.h5").write_bytes(b"\x89HDF")
    with pytest.raises(nnstd.TopologyError, match="unknown file type '.h5'"):
        nnstd.load_network(tmp_path / "w.h5")
    np.savez(tmp_path / "obj.npz", np.array([{"a": 1}], dtype=object))
    with pytest.raises(nnstd.TopologyError, match="pickled"):
        nnstd.load_network(tmp_path / "obj.npz")
    np.savez(tmp_path / "vec.npz", np.ones(3), np.ones(2))  # biases only
    with pytest.raises(nnstd.TopologyError, match="no 2-D or 4-D weights"):
        nnstd.load_network(tmp_path / "vec.npz")
    np.savez(tmp_path / "cube.npz", np.ones(3), np.ones((3, 2, 2)))  # no longer left out
    with pytest.raises(nnstd.TopologyError, match=r"array 'arr_1' has shape \(3, 2, 2\)"):
        nnstd.load_network(tmp_path / "cube.npz")
    np.savez(tmp_path / "nan.npz", np.array([[1.0, np.nan]]))
    with pytest.raises(nnstd.TopologyError, match="NaN"):
        nnstd.load_network(tmp_path / "nan.npz")


def test_index_limit_is_stated() -> None:
    huge = sp.coo_array(([1.0], ([0], [0])), shape=(2**32, 2))
    with pytest.raises(nnstd.TopologyError, match="limit of 4294967295"):
        nnstd.Network([huge])


# Convolutions: output channels are neurons; inputs are (input channel, kernel position).


def conv_net(rng: np.random.Generator) -> dict[str, np.ndarray]:
    while True:
        state = {
            "conv1.weight": (rng.random((4, 2, 3, 3)) < 0.5).astype(float),
            "conv2.weight": (rng.random((3, 4, 3, 3)) < 0.4).astype(float),
            "fc.weight": (rng.random((5, 3 * 2 * 2)) < 0.5).astype(float),  # flatten of 3x2x2
        }
        sets = [{tuple(np.flatnonzero(w[c])) for c in range(w.shape[0])} for w in state.values()]
        if all(len(s) == w.shape[0] for s, w in zip(sets, state.values(), strict=True)):
            return state  # no two output channels share an input set


def test_conv_network_layout() -> None:
    net = nnstd.Network.from_torch(conv_net(np.random.default_rng(0)))
    assert net.shapes == [(18, 4), (36, 3), (12, 5)]
    assert net.input_groups == (9, 9, 4)


def test_conv_channels_shuffled_consistently_give_zero() -> None:
    rng = np.random.default_rng(1)
    a = conv_net(rng)
    p1, p2, p3 = rng.permutation(4), rng.permutation(3), rng.permutation(5)
    blocks = np.arange(12).reshape(3, 4)[p2].ravel()  # fc input blocks follow conv2's channels
    b = {
        "conv1.weight": a["conv1.weight"][p1],
        "conv2.weight": a["conv2.weight"][p2][:, p1],
        "fc.weight": a["fc.weight"][p3][:, blocks],
    }
    d = nnstd.distance(nnstd.Network.from_torch(a), nnstd.Network.from_torch(b))
    assert np.all(d.layers == 0.0)
    np.testing.assert_array_equal(d.matchings[0], np.argsort(p1))


def test_conv_one_moved_connection_is_small_and_as_computed_by_hand() -> None:
    a = conv_net(np.random.default_rng(2))
    b = {k: v.copy() for k, v in a.items()}
    kernel = b["conv1.weight"][0]
    on, off = np.argwhere(kernel == 1)[0], np.argwhere(kernel == 0)[0]
    kernel[tuple(on)], kernel[tuple(off)] = 0.0, 1.0
    size = int(a["conv1.weight"][0].sum())
    d = nnstd.distance(nnstd.Network.from_torch(a), nnstd.Network.from_torch(b))
    # Channel 0 keeps size - 1 of its inputs and gains one: (size + 1 - (size - 1)) / (size + 1).
    assert d.layers[0] == pytest.approx(2 / (size + 1) / 4, abs=1e-15)
    assert np.all(d.layers[1:] == 0.0)


# PyTorch, when installed (CI installs the CPU build; see .ci/run).


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (pip install 'nnstd[torch]')")
def test_torch_checkpoints_modules_and_prune_masks(tmp_path: Path) -> None:
    import torch
    from torch import nn
    from torch.nn.utils import prune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    prune.random_unstructured(model[0], name="weight", amount=0.6)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.ckpt")
    from_module = nnstd.Network.from_torch(model)
    assert from_module.shapes == [(12, 8), (8, 3)]
    assert from_module.connections[0] == int(model[0].weight_mask.sum())
    for file in ("sd.pt", "ckpt.ckpt"):
        assert nnstd.distance(nnstd.load_network(tmp_path / file), from_module).value == 0.0
    torch.save({"evil": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(nnstd.TopologyError, match="evil.pt: not a readable PyTorch"):
        nnstd.load_network(tmp_path / "evil.pt")


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


def test_torch_missing_is_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails, as if not installed
    (tmp_path / "x.pt").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(nnstd.TopologyError, match="needs torch: pip install"):
        nnstd.load_network(tmp_path / "x.pt")


# Fuzzing: random bytes and mutated valid files; only TopologyError may come out.


def valid_files(root: Path) -> dict[str, bytes]:
    from safetensors.numpy import save_file

    layers = mlp(6, (6, 4, 3))
    np.savez(root / "a.npz", *layers)
    save_file(torch_style(layers), str(root / "a.safetensors"))
    sp.save_npz(root / "s.npz", sp.csr_matrix(np.vstack([layers[0], np.ones((1, 4))])))
    files = {
        ".npz": (root / "a.npz").read_bytes(),
        ".safetensors": (root / "a.safetensors").read_bytes(),
        "folder": (root / "s.npz").read_bytes(),
    }
    if HAS_TORCH:
        import torch

        torch.save({k: torch.tensor(v) for k, v in torch_style(layers).items()}, root / "a.pt")
        files[".pt"] = (root / "a.pt").read_bytes()
    return files


FUZZ_EXAMPLES = 1500


def test_hostile_files_give_only_topology_errors(tmp_path: Path) -> None:
    originals = valid_files(tmp_path)
    cases = 0

    @settings(
        max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        kind=st.sampled_from([".npz", ".safetensors", ".pt", "folder"]),
        mode=st.sampled_from(["random", "flip", "truncate", "splice"]),
        data=st.data(),
    )
    def load_one(kind: str, mode: str, data: st.DataObject) -> None:
        nonlocal cases
        base = originals.get(kind, originals[".npz"])
        if mode == "random":
            content = data.draw(st.binary(max_size=2048))
        elif mode == "flip":
            content = bytearray(base)
            for pos in data.draw(st.lists(st.integers(0, len(base) - 1), min_size=1, max_size=8)):
                content[pos] ^= data.draw(st.integers(1, 255))
            content = bytes(content)
        elif mode == "truncate":
            content = base[: data.draw(st.integers(0, len(base) - 1))]
        else:
            cut = data.draw(st.integers(0, len(base)))
            content = base[:cut] + data.draw(st.binary(max_size=64)) + base[cut:]
        case = tmp_path / f"case{cases}"
        case.mkdir()
        target = case / "weight_l0.npz" if kind == "folder" else case / f"net{kind}"
        target.write_bytes(content)
        cases += 1
        with contextlib.suppress(nnstd.TopologyError):
            nnstd.load_network(case if kind == "folder" else target)

    load_one()
    assert cases >= FUZZ_EXAMPLES  # the hostile files were really tried, not cut short
