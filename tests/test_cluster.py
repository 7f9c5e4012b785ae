"""Tiles on a real Dask cluster (a LocalCluster of 2 worker processes): the same numbers as
in-process, a store written by the workers, and a worker lost mid-run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import distributed  # in the test extra: never skipped
import nnstd
import numpy as np
import pytest
from nnstd import _many
from nnstd._many import paired_matrix
from test_many import random_network, save_paper_folder


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: 8787 may be taken
        worker_dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def nets() -> list[nnstd.Network]:
    rng = np.random.default_rng(5)
    return [random_network(rng) for _ in range(9)]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory, nets: list[nnstd.Network]) -> list[Path]:
    root = tmp_path_factory.mktemp("cluster-nets")
    return [save_paper_folder(n, root / f"n{k}") for k, n in enumerate(nets)]


def on_cluster(
    client: distributed.Client,
    networks: list[Path] | list[nnstd.Network],
    *,
    store: Path | None = None,
    ordered: bool = False,
    progress: object = None,
) -> np.ndarray:
    return paired_matrix(
        networks,
        layers=None,
        solver="canonical",
        ordered=ordered,
        threads=None,
        progress=progress,  # type: ignore[arg-type]
        memory_budget=None,
        store=store,
        client=client,
        tile=2,
    )


@pytest.mark.parametrize("ordered", [False, True])
def test_cluster_equals_in_process(
    client: distributed.Client, nets: list[nnstd.Network], paths: list[Path], ordered: bool
) -> None:
    expected = nnstd.pairwise(nets, ordered=ordered)
    np.testing.assert_array_equal(on_cluster(client, paths, ordered=ordered), expected)


def test_cluster_takes_in_memory_networks_and_cross(
    client: distributed.Client, nets: list[nnstd.Network], paths: list[Path]
) -> None:
    np.testing.assert_array_equal(on_cluster(client, nets), nnstd.pairwise(nets))
    m = nnstd.cross(paths[:3], nets[3:], client=client)
    np.testing.assert_array_equal(m, nnstd.cross(nets[:3], nets[3:]))


def test_workers_write_the_store(
    tmp_path: Path, client: distributed.Client, nets: list[nnstd.Network], paths: list[Path]
) -> None:
    seen: list[tuple[int, int]] = []
    store = tmp_path / "s"
    m = nnstd.pairwise(paths, store=store, client=client, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(m, nnstd.pairwise(nets))
    assert seen[0] == (0, 36) and seen[-1] == (36, 36)
    assert list(store.glob("mode-*/tiles/*.npz"))
    # Read back in-process: nothing left to compute, the same numbers.
    seen.clear()
    again = nnstd.pairwise(paths, store=store, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (36, 36)
    np.testing.assert_array_equal(again, m)


def slow_down_pairs(delay: float) -> None:
    """Run on a worker: every pair takes ``delay`` seconds longer, so that a run lasts long
    enough for a worker to be killed while it holds tiles."""
    import time

    real = _many.pair_distances

    def slow(a: nnstd.Network, b: nnstd.Network, mode: _many.Mode) -> np.ndarray:
        time.sleep(delay)
        return real(a, b, mode)

    slow.real = real  # type: ignore[attr-defined]
    _many.pair_distances = slow  # type: ignore[assignment]


def restore_pairs() -> None:
    _many.pair_distances = getattr(_many.pair_distances, "real", _many.pair_distances)


def test_a_worker_lost_mid_run(
    client: distributed.Client, nets: list[nnstd.Network], paths: list[Path]
) -> None:
    client.run(slow_down_pairs, 0.03)
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed or done == 0 or done == total:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            killed.append(busy[0])
            os.kill(pids[busy[0]], signal.SIGKILL)  # as the OOM killer or a lost node would

    try:
        m = on_cluster(client, paths, ordered=True, progress=kill_a_busy_worker)
    finally:
        client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the other tests
        client.run(restore_pairs)
    assert killed, "no worker was killed: the run finished before the first report"
    np.testing.assert_array_equal(m, nnstd.pairwise(nets, ordered=True))


def test_cli_matrix_on_a_scheduler_and_a_local_cluster(
    tmp_path: Path, client: distributed.Client, paths: list[Path], nets: list[nnstd.Network]
) -> None:
    from nnstd.cli import main

    root = tmp_path / "topo"
    for k, path in enumerate(paths):
        (root / f"w{k}").mkdir(parents=True)
        (root / f"w{k}" / "epoch_000").symlink_to(path)
    common = ["matrix", "--topo-root", str(root), "--epoch", "0", "--layer", "1", "-q"]
    expected = nnstd.pairwise(nets)[:, :, 1]
    address = client.scheduler.address
    assert main([*common, "--scheduler", address, "--save", str(tmp_path / "a.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), expected)
    local = ["--scheduler", "local", "--threads", "2", "--save", str(tmp_path / "b.npy")]
    assert main([*common, *local, "--store", str(tmp_path / "s")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected)
