"""Graph networks on every route: `cross`, `to_reference`, the resumable store, shards and
the command line's ``--spec`` give the numbers of the in-memory `pairwise` on the same graphs
(issue 20); a store never resumes a run with networks of another spec."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from nnstd import _tiles
from nnstd._many import paired_matrix
from nnstd._options import DEFAULT_SOLVER, Options
from nnstd._tiles import network_key

torch = pytest.importorskip("torch")

from test_graph_distance import pruned_model, sparse_model  # noqa: E402

SOLVERS = ["paper", "auto", DEFAULT_SOLVER]


@pytest.fixture(scope="module")
def models() -> list[tuple[Any, Any]]:
    """Four small ResNets (resnet18's layout, a downsample block) with random masks."""
    return [sparse_model("resnet", seed) for seed in range(4)]


@pytest.fixture(scope="module")
def graphs(models: list[tuple[Any, Any]]) -> list[nnstd.Network]:
    return [nnstd.torch.to_network(m, example_inputs=x) for m, x in models]


def expected_pairwise(graphs: list[nnstd.Network], solver: str) -> np.ndarray:
    """`pairwise` in memory (ordered): every solver takes graphs, the default canonical mode
    included (test_graph_canonical.py)."""
    return nnstd.pairwise(graphs, solver=solver, ordered=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("solver", SOLVERS)
def test_cross_and_to_reference_equal_pairwise(graphs: list[nnstd.Network], solver: str) -> None:
    expected = expected_pairwise(graphs, solver)
    assert expected.shape == (4, 4, len(graphs[0].groups))
    got = nnstd.cross(graphs[:2], graphs[1:], solver=solver)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, expected[:2, 1:])
    to_ref, index = nnstd.to_reference(graphs, 2, solver=solver)  # type: ignore[arg-type]
    assert index == 2
    np.testing.assert_array_equal(to_ref, expected[2])
    medoid, index = nnstd.to_reference(graphs, solver=solver)  # type: ignore[arg-type]
    assert index is not None
    np.testing.assert_array_equal(medoid, expected[index])


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_store_and_its_shards_equal_pairwise(
    graphs: list[nnstd.Network], solver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = expected_pairwise(graphs, solver)
    unordered = nnstd.pairwise(graphs, solver=solver)  # type: ignore[arg-type]
    np.testing.assert_array_equal(unordered[3, 1], expected[3, 1])
    store = tmp_path / "store"

    def run(shard: tuple[int, int] | None, nets: list[nnstd.Network]) -> np.ndarray:
        return paired_matrix(nets, Options.of(solver=solver), store=store, shard=shard, tile=2)

    for shard in ((0, 2), (1, 2)):
        run(shard, graphs)
    calls = []
    real = _tiles.tile_distances
    monkeypatch.setattr(
        _tiles, "tile_distances", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k)
    )
    np.testing.assert_array_equal(run(None, graphs), unordered)  # read back, none computed
    assert calls == []
    # A copy of the networks (pickled, as Dask ships them) is the same content.
    copies = [pickle.loads(pickle.dumps(g)) for g in graphs]
    np.testing.assert_array_equal(run(None, copies), unordered)
    assert calls == []


def test_a_store_never_resumes_with_networks_of_another_spec(
    models: list[tuple[Any, Any]],
    graphs: list[nnstd.Network],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same tensors under another spec (a BatchNorm's parameters no longer follow their
    # group: the connections are the same, the structure is not) and with fixed outputs.
    spec = graphs[0].spec.to_dict()  # type: ignore[attr-defined]
    for group in spec["groups"]:
        group.pop("followers", None)
    states = [m.state_dict() for m, _ in models]
    other = [nnstd.torch.to_network(s, spec=spec) for s in states]
    fixed = [nnstd.torch.to_network(m, example_inputs=x, outputs="fixed") for m, x in models]
    keys = [{network_key(n) for n in nets} for nets in (graphs, other, fixed)]
    assert all(len(k) == 4 for k in keys)
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    # The key is the content: the same graph read again (from its state dict) has the same key.
    again = nnstd.torch.to_network(states[1], spec=graphs[0].spec)  # type: ignore[attr-defined]
    assert network_key(again) == network_key(graphs[1])
    store = tmp_path / "store"
    nnstd.pairwise(graphs, solver="paper", store=store)
    calls = []
    real = _tiles.tile_distances
    monkeypatch.setattr(
        _tiles, "tile_distances", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k)
    )
    for nets in (other, fixed):
        calls.clear()
        got = nnstd.pairwise(nets, solver="paper", store=store)
        assert sum(calls) == 6  # every pair computed, none read from the other spec's tiles
        np.testing.assert_array_equal(got, nnstd.pairwise(nets, solver="paper"))


def test_alignment_and_overlap_refuse_graphs_naming_the_way(graphs: list[nnstd.Network]) -> None:
    way = r"is a graph of permutation groups; nnstd\.torch\.align\(reference, model"
    for call in (
        lambda: nnstd.alignment(graphs[0], graphs[1], solver="paper"),
        lambda: nnstd.align(graphs[0], graphs[1], solver="paper"),
        lambda: nnstd.overlap(graphs[0], graphs[1]),
    ):
        with pytest.raises(nnstd.TopologyError, match=way):
            call()


# The command line ------------------------------------------------------------------------------


def test_spec_files_round_trip(graphs: list[nnstd.Network], tmp_path: Path) -> None:
    spec = graphs[0].spec  # type: ignore[attr-defined]
    spec.save(tmp_path / "spec.json")
    loaded = nnstd.torch.Spec.load(tmp_path / "spec.json")
    assert loaded.groups == spec.groups
    assert json.loads((tmp_path / "spec.json").read_text()) == spec.to_dict()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(nnstd.TopologyError, match=r"bad\.json: not a JSON spec"):
        nnstd.torch.Spec.load(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(nnstd.TopologyError, match=r"list\.json: a spec is a mapping"):
        nnstd.torch.Spec.load(tmp_path / "list.json")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[Any]]:
    """A run of a small ResNet: four checkpoints pruned with torch.nn.utils.prune (masks
    beside the weights), alternately .pt and .safetensors, and its spec in a file."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("run")
    files, graphs = [], []
    for epoch in range(4):
        model, x = pruned_model("resnet", 20 + epoch)
        graphs.append(nnstd.torch.to_network(model, example_inputs=x))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if epoch % 2:
            files.append(root / f"epoch_{epoch}.safetensors")
            save_file(state, str(files[-1]))
        else:
            files.append(root / f"epoch_{epoch}.pt")
            torch.save(state, files[-1])
        if epoch == 0:
            nnstd.torch.spec(model, x).save(root / "spec.json")
    return root / "spec.json", files, graphs


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    from nnstd.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("solver", ["paper", DEFAULT_SOLVER])
def test_cli_reads_checkpoints_with_a_spec(
    checkpoints: tuple[Path, list[Path], list[Any]],
    solver: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, files, graphs = checkpoints
    expected = expected_pairwise(graphs, solver)
    common = ["--spec", spec, "--solver", solver, "-q"]
    last = len(graphs[0].groups) - 1
    code, out, err = run_cli(
        capsys, "convergence", *files, *common, "--layer", last, "--cumulative", "--json"
    )
    assert code == 0, err
    found = json.loads(out)
    assert found["snapshots"] == [f.stem for f in files]
    steps = [expected[i + 1, i].mean() for i in range(3)]  # the later snapshot as A
    np.testing.assert_allclose(found["consecutive"][0], steps, rtol=0, atol=1e-15)
    for layer in (0, last):
        code, _, err = run_cli(
            capsys, "matrix", *files, *common, "--layer", layer, "--save", tmp_path / "m.npy"
        )
        assert code == 0, err
        want = np.tril(expected[:, :, layer]) + np.tril(expected[:, :, layer], -1).T
        np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), want)
    code, _, err = run_cli(
        capsys, "matrix", *files, *common, "--store", tmp_path / "s", "--save", tmp_path / "s.npy"
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        np.load(tmp_path / "s.npy"), np.tril(expected[:, :, 0]) + np.tril(expected[:, :, 0], -1).T
    )
    code, out, err = run_cli(capsys, "distance", files[1], files[0], *common[:4], "--json")
    assert code == 0, err
    found = json.loads(out)
    np.testing.assert_array_equal(found["distances"], expected[1, 0])
    assert found["groups"] == list(graphs[0].groups)  # a graph's layers, named
    code, out, err = run_cli(capsys, "distance", files[1], files[0], *common[:4])
    assert code == 0, err
    row = out.splitlines()[4].split()  # layer 1: index, distance, cost, solver, group
    assert row[:2] == ["1", f"{expected[1, 0, 1]:.6f}"] and row[-1] == graphs[0].groups[1]


def test_cli_without_a_spec_names_it(
    checkpoints: tuple[Path, list[Path], list[Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, files, _ = checkpoints
    for command in ("matrix", "convergence", "cluster"):
        code, _, err = run_cli(capsys, command, *files, "-q")
        assert code == 1, err
        assert "--spec FILE" in err and "downsample" in err
    code, _, err = run_cli(capsys, "distance", files[0], files[1])
    assert code == 1 and "--spec FILE" in err
    # Misuses of --spec are named.
    code, _, err = run_cli(capsys, "matrix", *files, "--spec", spec, "--tensors", "conv1.weight")
    assert code == 2 and "drop --tensors" in err
    code, _, err = run_cli(capsys, "matrix", "--spec", spec, "--epoch", "0")
    assert code == 2 and "--spec reads the NETWORK files" in err
    other = tmp_path / "other.json"
    nnstd.torch.spec(*sparse_model("decoder", 0)).save(other)
    code, _, err = run_cli(capsys, "matrix", *files, "--spec", other, "--solver", "auto")
    assert code == 1
    assert f"{files[0]}: does not fit --spec: {other}: group 'x' names layers.0" in err
    code, _, err = run_cli(capsys, "matrix", *files, "--spec", files[0])
    assert code == 2 and "not a JSON spec" in err
    code, _, err = run_cli(capsys, "matrix", *files, "--spec", files[0].parent / "none.json")
    assert code == 2 and "none.json" in err
