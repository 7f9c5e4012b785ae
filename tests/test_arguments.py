"""Keyword arguments of the Python API: one rule each, the same whichever function reads them.

Layer indices and input groups are whole numbers (a bool is not one, nor is a float holding
one), lists of them are lists (a string is not one), flags are bools; a wrong type is a
TypeError naming the argument, a wrong value a TopologyError or ValueError. Masked arrays and
arrays that cannot be layers are read as documented in docs/inputs.md.
"""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from oracle import scipy_distance


def two_layer_nets() -> tuple[nnstd.Network, nnstd.Network]:
    rng = np.random.default_rng(3)
    layers_a = [rng.random((6, 5)) < 0.5, rng.random((5, 4)) < 0.5]
    layers_b = [rng.random((6, 5)) < 0.5, rng.random((5, 4)) < 0.5]
    return nnstd.Network(layers_a), nnstd.Network(layers_b)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (1, [1]),
        (np.int64(1), [1]),
        ([0, 1], [0, 1]),
        ((1,), [1]),
        (range(2), [0, 1]),
        (np.array([1, 0]), [1, 0]),
        ([np.int32(0)], [0]),
    ],
)
def test_layers_take_whole_numbers_and_sequences_of_them(
    layers: object, expected: list[int]
) -> None:
    a, b = two_layer_nets()
    full = nnstd.distance(a, b).layers
    picked = nnstd.distance(a, b, layers=layers)  # type: ignore[arg-type]
    assert list(picked.layer_indices) == expected
    np.testing.assert_array_equal(picked.layers, full[expected])
    matrix = nnstd.pairwise([a, b], layers=layers)  # type: ignore[arg-type]
    assert matrix.shape == (2, 2, len(expected))
    np.testing.assert_array_equal(matrix[1, 0], nnstd.distance(b, a).layers[expected])


@pytest.mark.parametrize(
    "layers",
    [True, np.True_, 1.0, np.float64(0), "01", b"01", [0, True], [0.0], [0, 1.5], {0}, object()],
    ids=repr,
)
def test_layers_of_other_types_are_a_type_error_naming_layers(layers: object) -> None:
    a, b = two_layer_nets()
    for call in (
        lambda: nnstd.distance(a, b, layers=layers),  # type: ignore[arg-type]
        lambda: nnstd.pairwise([a, b], layers=layers),  # type: ignore[arg-type]
        lambda: nnstd.cross([a], [b], layers=layers),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match=r"^layers must be") as caught:
            call()
        assert "\n" not in str(caught.value)


def test_layer_values_out_of_range_stay_a_topology_error() -> None:
    a, b = two_layer_nets()
    for bad in (2, [0, 2], -1):
        with pytest.raises(nnstd.TopologyError, match="layer .* does not exist"):
            nnstd.distance(a, b, layers=bad)
    with pytest.raises(ValueError, match="at least one layer"):
        nnstd.distance(a, b, layers=[])


@pytest.mark.parametrize(
    "groups",
    [[1, 2.7], [1, 2.0], [1, True], [1, "2"], "11", 3, [1, None]],
    ids=repr,
)
def test_input_groups_of_other_types_are_a_type_error(groups: object) -> None:
    layers = [np.ones((3, 3)), np.ones((3, 3))]
    with pytest.raises(TypeError, match=r"^input_groups must be"):
        nnstd.Network(layers, input_groups=groups)  # type: ignore[arg-type]


def test_input_groups_take_whole_numbers() -> None:
    conv_like = [np.ones((3, 2)), np.ones((4, 1))]  # 2 neurons, each owning 2 inputs next
    net = nnstd.Network(conv_like, input_groups=[1, np.int64(2)])
    assert net.input_groups == (1, 2)
    assert nnstd.Network(conv_like, input_groups=(1, 2)).input_groups == (1, 2)
    with pytest.raises(nnstd.TopologyError, match="one positive number per layer"):
        nnstd.Network(conv_like, input_groups=[1])
    for bad in (0, -1):  # the core's rule, the value as given
        with pytest.raises(nnstd.TopologyError, match=f"must be a positive number, got {bad}$"):
            nnstd.Network(conv_like, input_groups=[1, bad])


@pytest.mark.parametrize("flag", ["no", "False", 0, 1, None, 1.0], ids=repr)
def test_flags_are_bools(tmp_path: Path, flag: object) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    sp.save_npz(folder / "weight_l0.npz", sp.csr_matrix(np.ones((4, 3))))
    with pytest.raises(TypeError, match=r"^drop_bias must be True or False, got"):
        nnstd.load_network(folder, drop_bias=flag)  # type: ignore[arg-type]
    a, b = two_layer_nets()
    with pytest.raises(TypeError, match=r"^ordered must be True or False, got"):
        nnstd.pairwise([a, b], ordered=flag)  # type: ignore[arg-type]


def test_flags_take_python_and_numpy_bools(tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    sp.save_npz(folder / "weight_l0.npz", sp.csr_matrix(np.ones((4, 3))))
    assert nnstd.load_network(folder, drop_bias=np.False_).shapes == [(4, 3)]
    assert nnstd.load_network(folder, drop_bias=True).shapes == [(3, 3)]
    a, b = two_layer_nets()
    ordered = nnstd.pairwise([a, b], ordered=np.True_)
    np.testing.assert_array_equal(ordered[0, 1], nnstd.distance(a, b).layers)


def test_tensor_names_are_a_list_not_a_string(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, fc1=np.eye(3)[:, :2])
    for names in ("fc1", b"fc1", 3):
        with pytest.raises(TypeError, match=r"^layers must be a list of tensor names"):
            nnstd.load_network(path, layers=names)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^layers must be a list of tensor names"):
            nnstd.Network.from_torch({"fc1.weight": np.eye(3)[:2]}, layers=names)  # type: ignore[arg-type]
    assert nnstd.load_network(path, layers=["fc1"]).shapes == [(3, 2)]


@pytest.mark.parametrize("shape", [(3, 3, 2), (2, 3, 1, 1, 1), ()], ids=str)
def test_a_dense_npz_array_that_is_no_layer_is_refused_by_name(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    path = tmp_path / "layers.npz"
    np.savez(path, np.ones((4, 3)), np.ones(shape), np.eye(3))
    with pytest.raises(nnstd.TopologyError) as caught:
        nnstd.load_network(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: array 'arr_1' has shape {shape}")
    assert "2-D" in message and "4-D" in message and "layers=[...]" in message
    # Picking the layers by name reads the others as before.
    assert nnstd.load_network(path, layers=["arr_0", "arr_2"]).shapes == [(4, 3), (3, 3)]


def test_biases_beside_dense_npz_layers_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "layers.npz"
    np.savez(path, w0=np.ones((4, 3)), b0=np.zeros(3), w1=np.eye(3))
    assert nnstd.load_network(path).shapes == [(4, 3), (3, 3)]


def test_masked_entries_of_a_masked_array_are_absent_connections() -> None:
    rng = np.random.default_rng(5)
    data = rng.random((7, 5)) + 0.5  # no zeros: every connection comes from the mask
    mask = rng.random((7, 5)) < 0.5
    data[mask & (rng.random((7, 5)) < 0.5)] = np.nan  # a masked entry's value is never read
    masked = np.ma.masked_array(data, mask=mask)
    expected = ~mask
    net = nnstd.Network([masked])
    np.testing.assert_array_equal(net.layer(0).toarray(), expected)
    reference = rng.random((7, 5)) < 0.5
    got = nnstd.distance(nnstd.Network([reference]), net).layers
    np.testing.assert_allclose(got, scipy_distance([reference], [expected])[0])
    # The same through a state dict (4-D kernels included) and a whole masked network.
    kernel = np.ma.masked_array(np.ones((2, 3, 1, 2)), mask=np.zeros((2, 3, 1, 2), bool))
    kernel.mask[0, 1, 0, 1] = True
    from_torch = nnstd.Network.from_torch({"conv.weight": kernel})
    assert from_torch.connections == [2 * 3 * 2 - 1]


def test_incomparable_networks_are_refused_by_the_cores_rule_naming_both() -> None:
    a, b = two_layer_nets()
    shallow = nnstd.Network([np.ones((6, 3))], name="shallow")
    for call in (
        lambda: nnstd.distance(a, shallow),
        lambda: nnstd.pairwise([a, b, shallow]),
        lambda: nnstd.cross([a], [shallow]),
    ):
        with pytest.raises(nnstd.TopologyError, match="different depth") as caught:
            call()
        assert "shallow" in str(caught.value) and "\n" not in str(caught.value)


def test_options_are_checked_once_by_the_cores_rules() -> None:
    from nnstd import _core
    from nnstd._options import Options

    built = Options.of(solver="exact", threads=0, layers=np.array([1, 0]))
    assert (built.solver, built.threads, built.layers) == ("paper", None, (1, 0))
    assert built.memory_budget == _core.DEFAULT_MEMORY_BUDGET == 4 * 2**30
    assert built.select(2) == (1, 0)
    with pytest.raises(nnstd.TopologyError, match="layer 1 does not exist"):
        built.select(1)
    with pytest.raises(ValueError, match="unknown solver"):
        Options.of(solver="magic")
    with pytest.raises(ValueError, match="from 1 to 256"):
        Options.of(threads=_core.MAX_THREADS + 1)
    with pytest.raises(TypeError, match="^layers must be"):
        Options.of(layers=1.0)
