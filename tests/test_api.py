"""The public API: results, options and clear errors."""

from __future__ import annotations

import doctest
import signal
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from nnstd import _api, _network, plot, topology_set


def small_net(seed: int = 0, widths: tuple[int, ...] = (6, 5, 4)) -> nnstd.Network:
    rng = np.random.default_rng(seed)
    return nnstd.Network(
        [rng.random((a, b)) < 0.4 for a, b in zip(widths, widths[1:], strict=False)]
    )


def write_paper_folder(folder: Path, layers: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, w in enumerate(layers):
        with_bias = np.vstack([w, np.ones((1, w.shape[1]))])
        sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(with_bias))
    return folder


@pytest.mark.parametrize("module", [nnstd, _api, _network, plot, topology_set])
def test_docstring_examples_run(module: object) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_distance_result_fields() -> None:
    a, b = small_net(1), small_net(2)
    d = nnstd.distance(a, b)
    assert d.layer_indices == (0, 1)
    assert d.layers.dtype == np.float64 and d.layers.shape == (2,)
    assert d.value == pytest.approx(d.layers.mean())
    assert [m.shape for m in d.matchings] == [(5,), (4,)]
    assert sorted(d.matchings[0].tolist()) == list(range(5))
    np.testing.assert_allclose(d.costs / np.array([5, 4]), d.layers)


def test_layer_selection_computes_earlier_layers_for_the_carry() -> None:
    a, b = small_net(3), small_net(4)
    full = nnstd.distance(a, b)
    assert nnstd.distance(a, b, layers=1).layers.tolist() == [full.layers[1]]
    assert nnstd.distance(a, b, layers=[1, 0]).layer_indices == (1, 0)
    with pytest.raises(nnstd.TopologyError, match="layer 2 does not exist"):
        nnstd.distance(a, b, layers=[2])


def test_explicit_zeros_and_sparse_inputs_are_handled() -> None:
    dense = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    stored_zero = sp.coo_array(([1.0, 0.0, 2.0, 3.0], ([0, 0, 1, 2], [0, 1, 1, 0])), shape=(3, 2))
    a, b = nnstd.Network([dense]), nnstd.Network([stored_zero])
    assert a.connections == b.connections == [3]
    assert nnstd.distance(a, b).value == 0.0


def test_different_widths_are_compared_with_unmatched_neurons() -> None:
    a = small_net(5, (6, 5, 4))
    b = small_net(6, (6, 7, 3))
    d = nnstd.distance(a, b)
    assert np.all((d.layers >= 0) & (d.layers <= 1))
    assert (d.matchings[1] == -1).sum() == 1  # A's output layer is wider by one


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([np.ones((3, 4)), np.ones((5, 2))], "layer 1: has 5 inputs but layer 0 has 4 neurons"),
        ([np.ones(3)], "expected a 2-D"),
        ([np.array([[1.0, np.nan]])], "NaN or infinite"),
        ([np.array([[1.0, np.inf]])], "NaN or infinite"),
        ([np.array([["a"]], dtype=object)], "numeric"),
        ([], "at least one layer"),
    ],
)
def test_bad_networks_raise_topology_error(layers: list, message: str) -> None:
    with pytest.raises(nnstd.TopologyError, match=message):
        nnstd.Network(layers)


def test_topology_error_is_a_value_error() -> None:
    assert issubclass(nnstd.TopologyError, ValueError)


def test_incomparable_networks_are_reported() -> None:
    with pytest.raises(nnstd.TopologyError, match="different depth"):
        nnstd.distance(small_net(0, (6, 5, 4)), small_net(0, (6, 5)))
    with pytest.raises(nnstd.TopologyError, match="different input width"):
        nnstd.distance(small_net(0, (6, 5)), small_net(0, (7, 5)))
    with pytest.raises(nnstd.TopologyError, match="network 1 against network 0"):
        nnstd.pairwise([small_net(0, (6, 5)), small_net(0, (7, 5))])


def test_bad_options_are_reported() -> None:
    with pytest.raises(ValueError, match="unknown solver"):
        nnstd.distance(small_net(), small_net(), solver="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threads"):
        nnstd.pairwise([small_net()], threads=-1)
    # 0 means one thread per core, as `--threads 0` on the command line.
    np.testing.assert_array_equal(
        nnstd.pairwise([small_net(0), small_net(1)], threads=0),
        nnstd.pairwise([small_net(0), small_net(1)], threads=None),
    )
    with pytest.raises(TypeError, match="nnstd.Network or a path"):
        nnstd.distance(42, small_net())  # type: ignore[arg-type]


def test_pairwise_progress_reports_every_pair() -> None:
    seen: list[tuple[int, int]] = []
    nnstd.pairwise([small_net(s) for s in range(5)], progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (10, 10)
    assert all(t == 10 and 0 <= d <= 10 for d, t in seen)


def test_distance_progress_reports_layers() -> None:
    seen: list[tuple[int, int]] = []
    d = nnstd.distance(small_net(1), small_net(2), progress=lambda d, t: seen.append((d, t)))
    depth = len(d.layers)
    assert seen[-1] == (depth, depth)
    assert all(t == depth and 0 <= d <= depth for d, t in seen)
    seen.clear()
    nnstd.distance(small_net(1), small_net(2), layers=0, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (1, 1)


def test_distance_progress_errors_stop_the_work() -> None:
    rng = np.random.default_rng(5)
    # 40 unrelated 1,500-wide layers: long enough for a report while layers are matched.
    layers_a = [sp.random(1500, 1500, density=0.005, random_state=rng) for _ in range(40)]
    layers_b = [sp.random(1500, 1500, density=0.005, random_state=rng) for _ in range(40)]
    calls: list[tuple[int, int]] = []

    def stop(done: int, total: int) -> None:
        calls.append((done, total))
        if done < total:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        nnstd.distance(nnstd.Network(layers_a), nnstd.Network(layers_b), progress=stop)
    assert len(calls) == 1 and calls[0][1] == 40


def test_progress_callback_errors_stop_the_work() -> None:
    # 3,600 ordered pairs: seconds of work on any machine, so the 0.2 s progress ticks come.
    nets = [small_net(s, (400, 400, 400, 10)) for s in range(60)]
    calls: list[tuple[int, int]] = []

    def stop(done: int, total: int) -> None:
        calls.append((done, total))
        if done < total:  # only a report made while the work runs may stop it
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        nnstd.pairwise(nets, ordered=True, threads=1, progress=stop)
    # The error came from a report during the work, and the work stopped there: the final
    # report (done == total) was never made.
    assert len(calls) == 1
    assert calls[0][0] < calls[0][1] == 3600


def test_loader_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    layers = [(rng.random((8, 6)) < 0.3) * rng.normal(size=(8, 6)), rng.random((6, 3)) < 0.5]
    folder = write_paper_folder(tmp_path / "net", [np.asarray(w, dtype=float) for w in layers])
    loaded = nnstd.load_network(folder)
    assert loaded.shapes == [(8, 6), (6, 3)]
    assert nnstd.distance(loaded, nnstd.Network(layers)).value == 0.0
    assert nnstd.distance(str(folder), folder).value == 0.0


def test_loader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(nnstd.TopologyError, match="no such file or folder"):
        nnstd.load_network(tmp_path / "missing")
    with pytest.raises(nnstd.TopologyError, match="no weight_l0.npz"):
        nnstd.load_network(tmp_path)
    gap = write_paper_folder(tmp_path / "gap", [np.ones((4, 3)), np.ones((3, 2)), np.ones((2, 2))])
    (gap / "weight_l1.npz").unlink()
    with pytest.raises(nnstd.TopologyError, match="weight_l1.npz is missing"):
        nnstd.load_network(gap)
    corrupt = write_paper_folder(tmp_path / "corrupt", [np.ones((4, 3))])
    (corrupt / "weight_l0.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(nnstd.TopologyError, match=r"weight_l0.npz: not a readable"):
        nnstd.load_network(corrupt)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    np.savez(pickled / "weight_l0.npz", format=np.array(["csr"], dtype=object), shape=(2, 2))
    with pytest.raises(nnstd.TopologyError, match="weight_l0.npz"):
        nnstd.load_network(pickled)
    nan_folder = write_paper_folder(tmp_path / "nan", [np.array([[1.0, np.nan], [1.0, 1.0]])])
    with pytest.raises(nnstd.TopologyError, match=r"weight_l0.npz: layer 0: .*NaN"):
        nnstd.load_network(nan_folder)
    transposed = write_paper_folder(tmp_path / "t", [np.ones((4, 3)), np.ones((4, 2))])
    with pytest.raises(nnstd.TopologyError, match="transposed"):
        nnstd.load_network(transposed)


def test_truncated_archive_is_a_topology_error(tmp_path: Path) -> None:
    folder = write_paper_folder(tmp_path / "n", [np.ones((4, 3))])
    data = (folder / "weight_l0.npz").read_bytes()
    (folder / "weight_l0.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(nnstd.TopologyError, match="weight_l0.npz: not a readable"):
        nnstd.load_network(folder)


def test_ctrl_c_stops_a_long_pairwise() -> None:
    import _thread

    # 3,600 ordered pairs: seconds of work on any machine, so the 0.2 s progress ticks come.
    nets = [small_net(s, (400, 400, 400, 10)) for s in range(60)]

    def press_ctrl_c(done: int, total: int) -> None:
        if done < total:
            _thread.interrupt_main()  # what the terminal's Ctrl-C does to Python

    # Python's own SIGINT handler, as in a terminal: a runner started in the background of a
    # non-interactive shell ignores SIGINT, and then interrupt_main does nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            nnstd.pairwise(nets, ordered=True, threads=1, progress=press_ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_repr_of_a_distance_is_one_short_line() -> None:
    rng = np.random.default_rng(1)
    a = nnstd.Network([rng.random((784, 300)) < 0.05, rng.random((300, 10)) < 0.3])
    text = repr(nnstd.distance(a, a))
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith("Distance(value=0, layers=[0, 0]") and "300, 10 neurons" in text


def test_the_solver_type_names_exactly_the_cores_solvers() -> None:
    import typing

    from nnstd import _core, _options

    assert set(typing.get_args(_options.Solver)) == set(_core.SOLVERS)
    assert _options.SOLVERS == _core.SOLVERS and _core.DEFAULT_SOLVER in _core.SOLVERS
