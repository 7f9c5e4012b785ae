"""`nnstd.pairwise` over paths: each file read once into the core's topology, blocks that bound
memory on large sets, and the same numbers as the networks in memory."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from networks import random_network, save_paper_folder
from nnstd import _blocks, _core

FORMATS = ("npz", "pt", "safetensors")
SOLVERS = ("canonical", "auto", "paper")


def dense_weights(net: nnstd.Network, seed: int) -> list[np.ndarray]:
    """(out, in) float32 weights, PyTorch's layout: a non-zero weight on each connection."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(net.depth):
        mask = net.layer(k).toarray()
        weights = (rng.uniform(0.5, 1.5, mask.shape) * rng.choice([-1, 1], mask.shape)) * mask
        out.append(np.ascontiguousarray(weights.T, dtype=np.float32))
    return out


def write(net: nnstd.Network, fmt: str, path: Path, seed: int) -> Path:
    if fmt == "npz":
        return save_paper_folder(net, path)
    state = {f"fc{k}.weight": w for k, w in enumerate(dense_weights(net, seed))}
    if fmt == "pt":
        torch = pytest.importorskip("torch", reason="writing .pt checkpoints needs torch")
        file = path.with_suffix(".pt")
        torch.save({name: torch.from_numpy(w) for name, w in state.items()}, file)
        return file
    from safetensors.numpy import save_file

    file = path.with_suffix(".safetensors")
    save_file(state, str(file))
    return file


def network_set(tmp_path: Path, fmt: str, count: int = 5) -> list[Path]:
    rng = np.random.default_rng(7)
    nets = [random_network(rng) for _ in range(count - 1)]
    # A copy with its hidden neurons renamed: ties among optimal assignments, where the
    # solvers' choices differ.
    first = [nets[0].layer(k) for k in range(nets[0].depth)]
    order = rng.permutation(first[0].shape[1])
    nets.append(nnstd.Network([first[0][:, order], first[1][order, :], first[2]]))
    return [write(net, fmt, tmp_path / f"n{k}", k) for k, net in enumerate(nets)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_paths_give_the_in_memory_matrix(tmp_path: Path, fmt: str, solver: str) -> None:
    paths = network_set(tmp_path, fmt)
    loaded = [nnstd.load_network(p) for p in paths]
    for ordered in (False, True):
        want = nnstd.pairwise(loaded, solver=solver, ordered=ordered)  # type: ignore[arg-type]
        got = nnstd.pairwise(paths, solver=solver, ordered=ordered)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, want)
    # The renamed copy (last) is at distance 0 from the first in the canonical mode.
    if solver == "canonical":
        np.testing.assert_array_equal(got[0, -1], 0.0)


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], list[int]]:
    """Counts each path's loads and, at each load, the networks loaded earlier still alive."""
    loads: dict[str, int] = {}
    alive_at_load: list[int] = []
    earlier: weakref.WeakSet[nnstd.Network] = weakref.WeakSet()
    real = _blocks.load_network

    def load(path: object) -> nnstd.Network:
        alive_at_load.append(len(earlier))
        net = real(path)  # type: ignore[arg-type]
        loads[str(path)] = loads.get(str(path), 0) + 1
        earlier.add(net)
        return net

    monkeypatch.setattr(_blocks, "load_network", load)
    return loads, alive_at_load


def test_each_file_is_read_once_and_only_its_topology_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = network_set(tmp_path, "npz")
    loads, alive_at_load = counting_loads(monkeypatch)
    nnstd.pairwise(paths)  # type: ignore[arg-type]
    assert loads == {str(p): 1 for p in paths}
    # The Network a file was read into (with its Python-side layers) is gone before the next
    # file is read: only the core's topology stays.
    assert alive_at_load == [0] * len(paths)


@pytest.mark.parametrize("ordered", [False, True])
def test_blocks_give_the_same_matrix_with_bounded_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ordered: bool
) -> None:
    paths = network_set(tmp_path, "npz", count=7)
    loaded = [nnstd.load_network(p) for p in paths]
    wants = {s: nnstd.pairwise(loaded, solver=s, ordered=ordered) for s in SOLVERS}  # type: ignore[arg-type]
    each = _blocks.Resident(loaded[0]._topology, None).bytes
    monkeypatch.setattr(_blocks, "RESIDENT_BYTES", 3 * 2 * each)  # blocks of 2 networks
    calls: list[int] = []
    real_pairs = _core.pairs

    def pairs(networks: list[_core.Topology], *args: object, **kwargs: object) -> object:
        calls.append(len(networks))
        return real_pairs(networks, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_core, "pairs", pairs)
    loads, _ = counting_loads(monkeypatch)
    for solver, want in wants.items():
        got = nnstd.pairwise(paths, solver=solver, ordered=ordered)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, want)
    # Blocks of 2 of 7 networks: 4 blocks, 16 block pairs when ordered; 10 at or below the
    # diagonal, less the last block's own (one network, no pair). A call holds two blocks.
    per_solver = 16 if ordered else 9
    assert len(calls) == len(SOLVERS) * per_solver and max(calls) <= 4
    # A block of rows is read once, and again as columns for each block of rows below it.
    assert max(loads.values()) <= len(SOLVERS) * 4


def test_block_progress_counts_every_pair_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = network_set(tmp_path, "npz", count=6)
    each = _blocks.Resident(nnstd.load_network(paths[0])._topology, None).bytes
    monkeypatch.setattr(_blocks, "RESIDENT_BYTES", 3 * 2 * each)
    seen: list[tuple[int, int]] = []
    nnstd.pairwise(paths, progress=lambda done, total: seen.append((done, total)))  # type: ignore[arg-type]
    assert seen[-1] == (15, 15)
    assert all(total == 15 for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    def stop(done: int, total: int) -> None:
        raise RuntimeError("stopped by the caller")

    with pytest.raises(RuntimeError, match="stopped by the caller"):
        nnstd.pairwise(paths, progress=stop)  # type: ignore[arg-type]


def test_mixed_networks_and_paths_and_bad_items(tmp_path: Path) -> None:
    paths = network_set(tmp_path, "npz", count=3)
    loaded = [nnstd.load_network(p) for p in paths]
    mixed = [loaded[0], paths[1], str(paths[2])]
    np.testing.assert_array_equal(nnstd.pairwise(mixed), nnstd.pairwise(loaded))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"networks\[1\]: expected a nnstd.Network or a path"):
        nnstd.pairwise([paths[0], 3])  # type: ignore[list-item]
    other = save_paper_folder(nnstd.Network([np.eye(4)]), tmp_path / "shallow")
    with pytest.raises(nnstd.TopologyError, match="network 1 against network 0 .*shallow"):
        nnstd.pairwise([paths[0], other])
    with pytest.raises(ValueError, match="at least one network"):
        nnstd.pairwise([])


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.int8, np.bool_, np.complex64]
)
def test_dense_layers_in_any_memory_layout_give_scipys_pattern(dtype: type) -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(14, 22)) * (rng.random((14, 22)) < 0.3)
    base[0, 0], base[3, 5] = -0.0, 2.0  # a negative zero is no connection
    for array in (base, base.T.copy().T, base[::2, 1::3], np.asfortranarray(base)[1:, :-2]):
        typed = array.astype(dtype)
        want = sp.csc_array(typed != 0)
        want.sort_indices()
        got = nnstd.Network([typed]).layer(0)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)


def test_a_nan_anywhere_in_a_transposed_layer_is_refused() -> None:
    weights = np.zeros((6, 9), dtype=np.float32)  # (out, in), read transposed
    weights[5, 8] = np.nan
    with pytest.raises(nnstd.TopologyError, match="NaN or infinite"):
        nnstd.Network.from_torch({"fc.weight": weights})


@pytest.mark.parametrize("blocks", [False, True])
def test_a_bad_file_is_refused_naming_it_and_reading_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocks: bool
) -> None:
    paths = network_set(tmp_path, "npz", count=5)
    (paths[3] / "weight_l1.npz").write_bytes(b"not a zip")
    if blocks:
        each = _blocks.Resident(nnstd.load_network(paths[0])._topology, None).bytes
        monkeypatch.setattr(_blocks, "RESIDENT_BYTES", 3 * 2 * each)
    with pytest.raises(nnstd.TopologyError, match=r"n3/weight_l1.npz: not a readable"):
        nnstd.pairwise(paths)  # type: ignore[arg-type]
    assert not [t for t in threading.enumerate() if t.name == "nnstd-reader"]
