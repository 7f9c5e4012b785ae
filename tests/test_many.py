"""Many networks: cross, pairwise from paths with a store (resume, incremental add, changed
files), shards and the reference mode."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import pytest
from networks import WIDTHS, random_network, save_paper_folder
from nnstd import _cluster, _store, _tiles
from nnstd._many import paired_matrix
from nnstd._options import Options


@pytest.fixture
def nets() -> list[nnstd.Network]:
    rng = np.random.default_rng(12)
    return [random_network(rng) for _ in range(7)]


@pytest.fixture
def paths(tmp_path: Path, nets: list[nnstd.Network]) -> list[Path]:
    return [save_paper_folder(n, tmp_path / "nets" / f"n{k}") for k, n in enumerate(nets)]


REAL_TILE_DISTANCES = _tiles.tile_distances


class Interrupted(Exception):
    """Stands for Ctrl-C or a killed process in the middle of a run."""


class Counting:
    """Counts the pairs the core computes, and optionally fails once ``stop_after`` of them are
    done (in the middle of the tile that would pass that number: none of it is kept)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls = 0
        self.stop_after = stop_after
        self._real = REAL_TILE_DISTANCES

    def __call__(
        self,
        nets: list[nnstd.Network],
        pairs: np.ndarray,
        mode: _tiles.Mode,
        threads: int | None,
        progress: object,
    ) -> np.ndarray:
        if self.stop_after is not None and self.calls + len(pairs) > self.stop_after:
            self.calls = self.stop_after
            raise Interrupted
        self.calls += len(pairs)
        return self._real(nets, pairs, mode, threads, progress)  # type: ignore[arg-type]


def counting(monkeypatch: pytest.MonkeyPatch, stop_after: int | None = None) -> Counting:
    counter = Counting(stop_after)
    monkeypatch.setattr(_tiles, "tile_distances", counter)
    return counter


# ---- cross ---------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["exact", "canonical", "sparse"])
def test_cross_equals_distance_entry_by_entry(nets: list[nnstd.Network], solver: str) -> None:
    a, b = nets[:4], nets[3:]
    m = nnstd.cross(a, b, solver=solver)  # type: ignore[arg-type]
    assert m.shape == (4, 4, 3)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            expected = nnstd.distance(x, y, solver=solver).layers  # type: ignore[arg-type]
            np.testing.assert_array_equal(m[i, j], expected)


def test_cross_of_paths_with_layers_and_one_thread(
    nets: list[nnstd.Network], paths: list[Path]
) -> None:
    m = nnstd.cross(paths[:2], [str(p) for p in paths[2:5]], layers=[0, 2], threads=1)
    assert m.shape == (2, 3, 2)
    for i in range(2):
        for j in range(3):
            d = nnstd.distance(nets[i], nets[2 + j], layers=[0, 2])
            np.testing.assert_array_equal(m[i, j], d.layers)


def test_cross_refuses_incomparable_networks_and_non_networks(nets: list[nnstd.Network]) -> None:
    other = nnstd.Network([np.eye(30), np.eye(30)])
    with pytest.raises(nnstd.TopologyError, match="different depth"):
        nnstd.cross(nets[:2], [other])
    with pytest.raises(TypeError, match=r"b_networks\[1\]: expected a nnstd.Network or a path"):
        nnstd.cross(nets[:2], [nets[0], 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one network"):
        nnstd.cross(nets[:2], [])


def test_cross_reports_progress_to_the_end(nets: list[nnstd.Network]) -> None:
    seen: list[tuple[int, int]] = []
    nnstd.cross(nets[:3], nets[:3], progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 9) and seen[-1] == (9, 9)


# ---- pairwise through tiles and the store --------------------------------------------------


@pytest.mark.parametrize("ordered", [False, True])
def test_pairwise_with_store_equals_pairwise(
    tmp_path: Path, nets: list[nnstd.Network], paths: list[Path], ordered: bool
) -> None:
    expected = nnstd.pairwise(nets, ordered=ordered)
    stored = nnstd.pairwise(paths, ordered=ordered, store=tmp_path / "store")
    np.testing.assert_array_equal(stored, expected)
    tiled = paired_matrix(
        nets,
        Options.of(solver="canonical", threads=2),
        ordered=ordered,
        tile=3,
    )
    np.testing.assert_array_equal(tiled, expected)


def test_a_finished_store_computes_nothing_again(
    tmp_path: Path, paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = nnstd.pairwise(paths, store=tmp_path / "s")
    counter = counting(monkeypatch)
    seen: list[tuple[int, int]] = []
    again = nnstd.pairwise(paths, store=tmp_path / "s", progress=lambda d, t: seen.append((d, t)))
    assert counter.calls == 0
    assert seen[0] == (21, 21)
    np.testing.assert_array_equal(again, first)


def test_interrupted_run_resumes(
    tmp_path: Path, nets: list[nnstd.Network], paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    stop = counting(monkeypatch, stop_after=13)

    def run(threads: int = 1) -> np.ndarray:
        return paired_matrix(
            paths,
            Options.of(solver="canonical", threads=threads),
            store=store,
            tile=3,
        )

    with pytest.raises(Interrupted):
        run()
    assert stop.calls == 13
    # Tiles of 3 x 3 in the lower triangle of 7 networks; the 13 pairs done cover whole tiles
    # (3 + 9 = 12 pairs), the 13th pair's tile was never written.
    counter = counting(monkeypatch)
    resumed = run(threads=2)
    assert counter.calls == 21 - 12
    np.testing.assert_array_equal(resumed, nnstd.pairwise(nets))


def test_adding_networks_computes_only_new_pairs(
    tmp_path: Path, nets: list[nnstd.Network], paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    nnstd.pairwise(paths[:5], store=store)
    counter = counting(monkeypatch)
    grown = nnstd.pairwise(paths, store=store)
    assert counter.calls == 21 - 10  # 7 networks: 21 pairs, 10 of them among the first 5
    np.testing.assert_array_equal(grown, nnstd.pairwise(nets))


def test_changed_file_is_recomputed(
    tmp_path: Path, nets: list[nnstd.Network], paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    nnstd.pairwise(paths, store=store)
    replacement = random_network(np.random.default_rng(99))
    save_paper_folder(replacement, paths[2])  # same path, new content
    counter = counting(monkeypatch)
    again = nnstd.pairwise(paths, store=store)
    assert counter.calls == 6  # network 2 against each of the other 6
    changed = [*nets[:2], replacement, *nets[3:]]
    np.testing.assert_array_equal(again, nnstd.pairwise(changed))


def test_store_is_keyed_by_mode_and_survives_a_damaged_tile(
    tmp_path: Path, nets: list[nnstd.Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    nnstd.pairwise(nets[:4], store=store, solver="exact")
    counter = counting(monkeypatch)
    nnstd.pairwise(nets[:4], store=store, solver="canonical")
    assert counter.calls == 6  # another solver: nothing reused
    nnstd.pairwise(nets[:4], store=store, solver="canonical", layers=[0, 1])
    assert counter.calls == 12  # another depth: nothing reused
    (tile,) = [p for p in store.glob("mode-*/tiles/*.npz") if _solver_of(p) == "paper"]
    tile.write_bytes(b"not a zip file")
    with pytest.warns(_store.StoreWarning, match=rf"skipped a tile.*{tile.name}.*not a zip file"):
        again = nnstd.pairwise(nets[:4], store=store, solver="exact")
    assert counter.calls == 18  # the damaged tile's pairs computed again
    np.testing.assert_array_equal(again, nnstd.pairwise(nets[:4], solver="exact"))
    nnstd.pairwise(nets[:4], store=store, solver="paper")
    assert counter.calls == 18  # "exact" is the paper mode's former name: the same store entries


def _solver_of(tile: Path) -> str:
    import json

    return str(json.loads((tile.parent.parent / "mode.json").read_text())["solver"])


def test_store_handles_a_network_given_twice(tmp_path: Path, nets: list[nnstd.Network]) -> None:
    listed = [nets[0], nets[1], nets[0]]
    np.testing.assert_array_equal(
        nnstd.pairwise(listed, store=tmp_path / "s"), nnstd.pairwise(listed)
    )
    np.testing.assert_array_equal(
        nnstd.pairwise(listed, store=tmp_path / "s"), nnstd.pairwise(listed)
    )


def test_store_that_is_a_file_is_refused(tmp_path: Path, nets: list[nnstd.Network]) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(nnstd.TopologyError, match="not a folder"):
        nnstd.pairwise(nets[:2], store=tmp_path / "f")


def test_shards_fill_the_store_and_a_plain_run_merges_them(
    tmp_path: Path, nets: list[nnstd.Network], paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"

    def run(shard: tuple[int, int] | None) -> np.ndarray:
        return paired_matrix(
            paths,
            Options.of(solver="canonical", threads=1),
            store=store,
            shard=shard,
            tile=2,
        )

    counter = counting(monkeypatch)
    part = run((1, 3))
    assert np.isnan(part).any()
    run((0, 3))
    run((2, 3))
    assert counter.calls == 21  # every pair once, across the shards
    np.testing.assert_array_equal(run(None), nnstd.pairwise(nets))
    assert counter.calls == 21


# ---- the reference mode --------------------------------------------------------------------


def test_to_reference_by_position_network_and_medoid(nets: list[nnstd.Network]) -> None:
    full = nnstd.pairwise(nets, ordered=True)
    d, index = nnstd.to_reference(nets, 2)
    assert index == 2
    np.testing.assert_array_equal(d, full[2])
    d, index = nnstd.to_reference(nets, nets[4])
    assert index is None
    np.testing.assert_array_equal(d, full[4])
    d, index = nnstd.to_reference(nets, sample=len(nets))
    medoid = int(np.argmin(nnstd.pairwise(nets).mean(axis=2).sum(axis=1)))
    assert index == medoid
    np.testing.assert_array_equal(d, full[medoid])


@pytest.mark.parametrize(
    ("reference", "kwargs", "message"),
    [(7, {}, "not a position"), ("medoid", {"sample": 0}, "sample must be")],
)
def test_to_reference_refuses_bad_arguments(
    nets: list[nnstd.Network], reference: object, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        nnstd.to_reference(nets, reference, **kwargs)  # type: ignore[arg-type]


# ---- the command line ----------------------------------------------------------------------


@pytest.fixture
def topo_root(tmp_path: Path, nets: list[nnstd.Network]) -> Path:
    root = tmp_path / "topo"
    for k, net in enumerate(nets):
        save_paper_folder(net, root / f"w{k}" / "epoch_000")
    return root


def test_cli_matrix_with_store_and_shards(
    tmp_path: Path, topo_root: Path, nets: list[nnstd.Network], capsys: pytest.CaptureFixture[str]
) -> None:
    from nnstd.cli import main

    common = ["matrix", "--topo-root", str(topo_root), "--epoch", "0", "--layer", "2", "-q"]
    assert main([*common, "--save", str(tmp_path / "plain.npy")]) == 0
    store = ["--store", str(tmp_path / "s")]
    for shard in ("0/2", "1/2"):
        assert main([*common, *store, "--shard", shard]) == 0
    assert not (tmp_path / "merged.npy").exists()
    assert main([*common, *store, "--save", str(tmp_path / "merged.npy")]) == 0
    merged = np.load(tmp_path / "merged.npy")
    np.testing.assert_array_equal(merged, np.load(tmp_path / "plain.npy"))
    np.testing.assert_array_equal(merged, nnstd.pairwise(nets)[:, :, 2])
    capsys.readouterr()
    assert main([*common, "--shard", "2/2", *store]) == 2
    assert "expected I/N with 0 <= I < N" in capsys.readouterr().err
    assert main([*common, "--shard", "0/2"]) == 2
    assert "--shard needs --store" in capsys.readouterr().err


def test_cluster_tiles_shrink_to_keep_every_worker_busy() -> None:
    class TwoWorkers:
        def nthreads(self) -> dict[str, int]:
            return {"tcp://a": 1, "tcp://b": 1}

    client = TwoWorkers()
    # 20 x 20 in tiles of 16 is 4 tiles for 2 threads: too few; tiles of 8 make 9.
    assert _cluster.cluster_tile(np.ones((20, 20), dtype=bool), client) == 8  # type: ignore[arg-type]
    assert _cluster.cluster_tile(np.ones((200, 200), dtype=bool), client) == 16  # type: ignore[arg-type]
    assert _cluster.cluster_tile(np.ones((2, 2), dtype=bool), client) == _cluster.MIN_CLUSTER_TILE  # type: ignore[arg-type]


# ---- the store's path, permissions and load budget -----------------------------------------


def test_store_files_honour_the_umask(tmp_path: Path, nets: list[nnstd.Network]) -> None:
    import os

    previous = os.umask(0o002)  # a group-shared store
    try:
        nnstd.pairwise(nets[:3], store=tmp_path / "s")
    finally:
        os.umask(previous)
    (described,) = tmp_path.glob("s/mode-*/mode.json")
    files = [described, *tmp_path.glob("s/mode-*/tiles/*.npz")]
    assert len(files) == 2
    for file in files:
        assert file.stat().st_mode & 0o777 == 0o664, file


def test_an_empty_store_path_is_refused(
    tmp_path: Path, nets: list[nnstd.Network], topo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnstd.cli import main

    with pytest.raises(ValueError, match="store must be a folder path, got an empty one"):
        nnstd.pairwise(nets[:2], store="")
    common = ["matrix", "--topo-root", str(topo_root), "--epoch", "0", "-q"]
    assert main([*common, "--store", ""]) == 2
    assert "--store: expected a folder path" in capsys.readouterr().err


def test_a_relative_store_is_made_absolute_before_the_run(
    tmp_path: Path, nets: list[nnstd.Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = _store.Store("rel", _tiles.make_mode(nets[0], Options())[0])
    assert store.root == tmp_path / "rel"
    nnstd.pairwise(nets[:2], store="rel")
    assert len(list(tmp_path.glob("rel/mode-*/tiles/*.npz"))) == 1


def dense_paper_folder(folder: Path) -> Path:
    """A network of WIDTHS with every connection: about 30 KB to build its first layer."""
    return save_paper_folder(
        nnstd.Network([np.ones((WIDTHS[k], WIDTHS[k + 1])) for k in range(3)]), folder
    )


def test_the_load_budget_applies_to_every_network(
    tmp_path: Path, paths: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from nnstd.cli import main

    dense = dense_paper_folder(tmp_path / "dense")
    listed = [*paths[:3], dense]
    budget = 15_000  # the sparse networks fit, the dense one does not
    nnstd.pairwise(paths[:3], store=tmp_path / "fits")  # no budget: no complaint
    for store in (None, tmp_path / "s"):
        with pytest.raises(nnstd.TopologyError, match=rf"{dense}.*memory budget of 15,000"):
            paired_matrix(
                listed,
                Options.of(solver="canonical", threads=1),
                store=store,
                tile=2,
                load_budget=budget,
            )
    root = tmp_path / "topo"
    for k, path in enumerate(listed):
        (root / f"w{k}").mkdir(parents=True)
        (root / f"w{k}" / "epoch_000").symlink_to(path)
    common = ["matrix", "--topo-root", str(root), "--epoch", "0", "-q"]
    gib = f"{budget / 2**30:.12f}"
    assert main([*common, "--load-budget", gib, "--store", str(tmp_path / "cli")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnstd: error: ") and "w3/epoch_000" in err, err


def test_a_client_must_be_a_dask_client(nets: list[nnstd.Network]) -> None:
    with pytest.raises(TypeError, match=r"client must be a dask.distributed.Client, got str"):
        nnstd.pairwise(nets[:2], client="tcp://127.0.0.1:8786")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got int"):
        nnstd.cross(nets[:1], nets[1:2], client=3)  # type: ignore[arg-type]
