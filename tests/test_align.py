"""nnstd.align and nnstd.overlap: B renamed after A, and the overlap of connection sets."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from nnstd import _options
from oracle import input_sets, paper_layers, shuffled_hidden

PAIRS = [("epoch_000", 0, 5), ("epoch_190", 7, 2)]
SOLVERS = _options.SOLVERS  # every solver the core offers


def column_distances(a: sp.csc_array, b: sp.csc_array) -> np.ndarray:
    """NNSTD's neuron distance between column i of ``a`` and column i of ``b``."""
    out = []
    for x, y in zip(input_sets(a), input_sets(b), strict=True):
        union = len(x | y)
        out.append(0.0 if union == 0 else (union - len(x & y)) / union)
    return np.array(out)


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: f"{p[0]}-w{p[1]}-w{p[2]}")
def paper_pair(request: pytest.FixtureRequest, bundled_topo: Path) -> tuple[nnstd.Network, ...]:
    epoch, x, y = request.param
    a = nnstd.Network(paper_layers(str(bundled_topo / f"w{x}" / epoch)))
    b = nnstd.Network(paper_layers(str(bundled_topo / f"w{y}" / epoch)))
    return a, b


@pytest.mark.parametrize("solver", SOLVERS)
def test_columns_of_the_aligned_network_give_the_layer_distances(
    paper_pair: tuple[nnstd.Network, nnstd.Network], solver: str
) -> None:
    a, b = paper_pair
    d = nnstd.distance(a, b, solver=solver)  # type: ignore[arg-type]
    aligned = nnstd.align(a, b, solver=solver)  # type: ignore[arg-type]
    assert aligned.shapes == b.shapes and aligned.connections == b.connections
    for k in range(a.depth):
        per_neuron = column_distances(a.layer(k), aligned.layer(k))
        if k == a.depth - 1:  # output neurons keep their labels: compare through the matching
            per_neuron = column_distances(a.layer(k), aligned.layer(k)[:, d.matchings[k]])
        assert per_neuron.sum() / a.shapes[k][1] == pytest.approx(d.layers[k], abs=1e-12)
        assert per_neuron.sum() == pytest.approx(d.costs[k], abs=1e-9)
    # Aligning is only a renaming: the aligned network is at the same distance from A.
    np.testing.assert_allclose(
        nnstd.distance(a, aligned, solver="canonical").layers[0], d.layers[0]
    )


def test_a_relabelled_copy_is_aligned_back_exactly(
    paper_pair: tuple[nnstd.Network, nnstd.Network],
) -> None:
    a, _ = paper_pair
    layers = [a.layer(k) for k in range(a.depth)]
    copy = nnstd.Network(shuffled_hidden(layers, np.random.default_rng(3)))
    assert np.all(nnstd.overlap(a, copy)[:-1] < 0.1)  # renamed: the masks barely coincide
    back = nnstd.align(a, copy)
    for k in range(a.depth):
        assert (a.layer(k) != back.layer(k)).nnz == 0, f"layer {k}"
    np.testing.assert_array_equal(nnstd.overlap(a, back), 1.0)
    np.testing.assert_array_equal(nnstd.overlap(a, back, measure="hamming"), 0.0)


def test_overlap_of_identical_networks(bundled_topo: Path) -> None:
    a = nnstd.load_network(bundled_topo / "w0" / "epoch_190")
    np.testing.assert_array_equal(nnstd.overlap(a, a), [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(nnstd.overlap(a, a, measure="hamming"), 0.0)
    b = nnstd.load_network(bundled_topo / "w1" / "epoch_190")
    raw = nnstd.overlap(a, b)
    assert np.all((raw[:3] > 0) & (raw[:3] < 1)) and raw[3] == 1.0  # the output layer is dense


def test_overlap_against_numpy() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 5)) < 0.4, rng.random((6, 5)) < 0.4
    a, b = nnstd.Network([x]), nnstd.Network([y])
    assert nnstd.overlap(a, b)[0] == (x & y).sum() / (x | y).sum()
    assert nnstd.overlap(a, b, measure="hamming")[0] == (x ^ y).sum() / 30
    empty = nnstd.Network([np.zeros((6, 5))])
    assert nnstd.overlap(empty, empty)[0] == 1.0
    assert nnstd.overlap(a, empty)[0] == 0.0


def test_overlap_refuses_what_it_cannot_compare() -> None:
    a = nnstd.Network([np.eye(3)])
    with pytest.raises(nnstd.TopologyError, match=r"layer 0 has shape \(3, 3\) in A and \(3, 2\)"):
        nnstd.overlap(a, nnstd.Network([np.ones((3, 2))]))
    with pytest.raises(nnstd.TopologyError, match="different depth"):
        nnstd.overlap(a, nnstd.Network([np.eye(3), np.eye(3)]))
    with pytest.raises(ValueError, match="unknown measure 'jaccard'"):
        nnstd.overlap(a, a, measure="jaccard")  # type: ignore[arg-type]


def test_grouped_inputs_are_renamed_as_blocks() -> None:
    """A conv-like next layer with 2 inputs per neuron: blocks move with their neuron."""
    rng = np.random.default_rng(5)
    first = rng.random((4, 3)) < 0.6
    second = rng.random((6, 2)) < 0.5
    a = nnstd.Network([first, second], input_groups=[1, 2])
    perm = np.array([2, 0, 1])
    rows = (perm[:, None] * 2 + np.arange(2)).ravel()
    b = nnstd.Network([first[:, perm], second[rows]], input_groups=[1, 2])
    back = nnstd.align(a, b)
    for k in range(2):
        assert (a.layer(k) != back.layer(k)).nnz == 0


def test_unequal_widths() -> None:
    """B wider: matched neurons first in A's order, then the rest; B narrower: partners' order."""
    a = nnstd.Network([np.eye(3)[:, [0, 1]], np.ones((2, 1))])
    b = nnstd.Network([np.eye(3)[:, [2, 1, 0]], np.ones((3, 1))])
    np.testing.assert_array_equal(nnstd.alignment(a, b)[0], [2, 1, 0])
    wide = nnstd.align(a, b)
    assert wide.shapes == b.shapes
    np.testing.assert_array_equal(wide.layer(0).toarray()[:, :2], np.eye(3)[:, :2])
    narrow = nnstd.align(b, a)  # A (3 neurons) as reference, B has 2: partners 1 and 2 of A
    np.testing.assert_array_equal(nnstd.alignment(b, a)[0], [1, 0])
    assert narrow.shapes == a.shapes


@pytest.mark.parametrize("module", ["nnstd._align", "nnstd._graph", "nnstd.torch"])
def test_docstring_examples_run(module: str) -> None:
    if module == "nnstd.torch":
        pytest.importorskip("torch", reason="nnstd.torch's examples build PyTorch modules")
    failures, tried = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert tried > 0 and failures == 0


# ---- mask conventions, as loaders -----------------------------------------------------------


def random_masks(seed: int) -> list[np.ndarray]:
    """(out, in) masks of a 11-9-7-3 network, as PyTorch stores Linear weights."""
    rng = np.random.default_rng(seed)
    return [rng.random((o, i)) < 0.4 for i, o in [(11, 9), (9, 7), (7, 3)]]


def same_topology(net: nnstd.Network, masks: list[np.ndarray]) -> bool:
    return all(
        np.array_equal(net.layer(k).toarray(), m.T) for k, m in enumerate(masks)
    ) and net.depth == len(masks)


def test_parametrize_style_masks_in_safetensors(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    masks = random_masks(1)
    state = {}
    for k, m in enumerate(masks):
        state[f"fc{k}.parametrizations.weight.original"] = np.ones(m.shape, np.float32)
        state[f"fc{k}.parametrizations.weight.0.mask"] = m.astype(np.float32)
        state[f"fc{k}.bias"] = np.zeros(m.shape[0], np.float32)
    save_file(state, str(tmp_path / "p.safetensors"))
    assert same_topology(nnstd.load_network(tmp_path / "p.safetensors"), masks)
    assert same_topology(nnstd.Network.from_torch(state), masks)


def test_compressed_tensors_bitmask(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    masks = random_masks(2)
    state: dict[str, np.ndarray] = {}
    for k, m in enumerate(masks):
        name = f"model.layers.{k}.weight"
        state[f"{name}.bitmask"] = np.packbits(m, axis=-1, bitorder="little")
        state[f"{name}.shape"] = np.array(m.shape, dtype=np.int64)
        state[f"{name}.compressed"] = np.ones(int(m.sum()), np.float16)
    save_file(state, str(tmp_path / "c.safetensors"))
    assert same_topology(nnstd.load_network(tmp_path / "c.safetensors"), masks)
    del state["model.layers.1.weight.shape"]
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(
        nnstd.TopologyError, match=r"bad\.safetensors: model\.layers\.1\.weight\.bitmask has no"
    ):
        nnstd.load_network(tmp_path / "bad.safetensors")


def test_sharded_safetensors_with_an_index(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    masks = random_masks(3)
    weight_map = {}
    for k in range(len(masks)):
        shard = f"model-{k // 2 + 1:05d}-of-00002.safetensors"
        weight_map[f"layers.{k}.weight"] = shard
    for shard in set(weight_map.values()):
        save_file(
            {
                n: masks[int(n.split(".")[1])].astype(np.float32)
                for n, s in weight_map.items()
                if s == shard
            },
            str(tmp_path / shard),
        )
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    assert same_topology(nnstd.load_network(index), masks)
    weight_map["layers.3.weight"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(nnstd.TopologyError, match="'layers.3.weight' is not in model-00001"):
        nnstd.load_network(index)


def test_open_lth_mask_pth(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    masks = random_masks(4)
    names = ["fc_layers.0.weight", "fc_layers.1.weight", "fc.weight"]
    torch.save(
        {n: torch.from_numpy(m.astype(np.float32)) for n, m in zip(names, masks, strict=True)},
        tmp_path / "mask.pth",
    )
    assert same_topology(nnstd.load_network(tmp_path / "mask.pth"), masks)


def test_the_aligning_docs_example_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "aligning.md").read_text("utf-8")
    code, printed = re.findall(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", page, re.S)[0]
    exec(compile(code, "docs/aligning.md", "exec"), {})
    assert capsys.readouterr().out == printed


def test_mask_conventions_refuse_bad_declarations(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    state = {
        "l.weight.bitmask": np.zeros((2, 1), np.uint8),
        "l.weight.shape": np.array([2, 9], np.int64),  # 9 columns need 2 bytes per row
    }
    save_file(state, str(tmp_path / "short.safetensors"))
    with pytest.raises(
        nnstd.TopologyError, match=r"short\.safetensors: l\.weight\.bitmask: a bitmask"
    ):
        nnstd.load_network(tmp_path / "short.safetensors")
    state = {
        "l.weight.bitmask": np.zeros((1, 1), np.uint8),
        "l.weight.shape": np.array([2**40, 2**20], np.int64),
    }
    save_file(state, str(tmp_path / "huge.safetensors"))
    with pytest.raises(nnstd.TopologyError, match="more than the memory budget"):
        nnstd.load_network(tmp_path / "huge.safetensors")
    index = tmp_path / "m.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"w": "../elsewhere.safetensors"}}))
    with pytest.raises(nnstd.TopologyError, match="is not a file beside the index"):
        nnstd.load_network(index)
    index.write_text("[1, 2]")
    with pytest.raises(nnstd.TopologyError, match="not a safetensors index"):
        nnstd.load_network(index)
