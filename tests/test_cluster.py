"""Tiles on a real Dask cluster (a LocalCluster of 2 worker processes): the same numbers as
in-process, a store written by the workers, and a worker lost mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import distributed  # in the test extra: never skipped
import nnstd
import numpy as np
import pytest
from networks import random_network, save_paper_folder
from nnstd import _tiles
from nnstd._many import paired_matrix
from nnstd._options import Options


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
        Options.of(solver="canonical", progress=progress),  # type: ignore[arg-type]
        ordered=ordered,
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
    tmp_path: Path, client: distributed.Client, nets: list[nnstd.Network], paths: list[Path]
) -> None:
    np.testing.assert_array_equal(on_cluster(client, nets), nnstd.pairwise(nets))
    # Scattered networks keep their content keys on the workers: stored, read back as such.
    stored = on_cluster(client, nets, store=tmp_path / "s")
    np.testing.assert_array_equal(stored, nnstd.pairwise(nets))
    np.testing.assert_array_equal(nnstd.pairwise(paths, store=tmp_path / "s"), stored)
    m = nnstd.cross(paths[:3], nets[3:], client=client)
    np.testing.assert_array_equal(m, nnstd.cross(nets[:3], nets[3:]))


def residual_graphs(count: int) -> list[nnstd.Network]:
    """Graph networks without torch: a residual block ``x + down(relu(up(x)))`` and a head,
    read from numpy state dicts with a hand-written spec, random masks."""
    import nnstd.torch

    spec = {
        "groups": [
            {"name": "x", "size": 6, "kind": "input", "writers": ["down.weight"],
             "readers": ["up.weight", "head.weight"]},
            {"name": "up", "size": 9, "writers": ["up.weight"], "readers": ["down.weight"]},
            {"name": "head", "size": 3, "kind": "output", "writers": ["head.weight"]},
        ]
    }  # fmt: skip
    rng = np.random.default_rng(3)
    shapes = {"up.weight": (9, 6), "down.weight": (6, 9), "head.weight": (3, 6)}
    return [
        nnstd.torch.to_network(
            {k: (rng.random(s) < 0.5).astype(float) for k, s in shapes.items()}, spec=spec
        )
        for _ in range(count)
    ]


def test_cluster_takes_graph_networks(tmp_path: Path, client: distributed.Client) -> None:
    graphs = residual_graphs(5)
    assert graphs[0].is_graph
    expected = nnstd.pairwise(graphs, solver="paper")
    got = paired_matrix(
        graphs, Options.of(solver="paper"), store=tmp_path / "s", client=client, tile=2
    )
    np.testing.assert_array_equal(got, expected)
    # The workers stored the tiles under the graphs' keys: read back in-process as such.
    np.testing.assert_array_equal(
        nnstd.pairwise(graphs, solver="paper", store=tmp_path / "s"), expected
    )
    m = nnstd.cross(graphs[:2], graphs[2:], solver="paper", client=client)
    np.testing.assert_array_equal(m, nnstd.cross(graphs[:2], graphs[2:], solver="paper"))


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

    real = _tiles.tile_distances

    def slow(
        nets: list[nnstd.Network],
        pairs: np.ndarray,
        mode: _tiles.Mode,
        threads: int | None,
        progress: object,
    ) -> np.ndarray:
        time.sleep(delay * len(pairs))
        return real(nets, pairs, mode, threads, progress)  # type: ignore[arg-type]

    slow.real = real  # type: ignore[attr-defined]
    _tiles.tile_distances = slow  # type: ignore[assignment]


def restore_pairs() -> None:
    _tiles.tile_distances = getattr(_tiles.tile_distances, "real", _tiles.tile_distances)


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


# ---- faults: files changed mid-run, a relative store, schedulers that fail -----------------


def test_a_file_changed_mid_run_on_the_cluster_is_keyed_by_what_workers_loaded(
    tmp_path: Path, client: distributed.Client, nets: list[nnstd.Network]
) -> None:
    own = [save_paper_folder(n, tmp_path / "nets" / f"n{k}") for k, n in enumerate(nets[:5])]
    original = shutil.copytree(own[1], tmp_path / "original")
    replacement = save_paper_folder(nets[7], tmp_path / "replacement")
    store = tmp_path / "s"

    def change_once(done: int, total: int) -> None:
        if done == 0:  # keyed, not yet submitted: the workers load the new content
            for file in replacement.iterdir():
                shutil.copyfile(file, own[1] / file.name)

    with pytest.raises(nnstd.TopologyError, match=rf"{own[1]}: changed during the run"):
        nnstd.pairwise(own, store=store, client=client, progress=change_once)
    changed = [nets[0], nets[7], *nets[2:5]]
    np.testing.assert_array_equal(nnstd.pairwise(own, store=store), nnstd.pairwise(changed))
    shutil.rmtree(own[1])
    shutil.copytree(original, own[1])
    np.testing.assert_array_equal(nnstd.pairwise(own, store=store), nnstd.pairwise(nets[:5]))


def test_a_relative_store_is_where_the_caller_means(
    tmp_path: Path,
    client: distributed.Client,
    paths: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "workers-cwd"
    elsewhere.mkdir()
    client.run(os.chdir, str(elsewhere))  # a remote worker's working folder is not ours
    monkeypatch.chdir(tmp_path)
    nnstd.pairwise(paths[:4], store="rel", client=client)
    assert list(tmp_path.glob("rel/mode-*/tiles/*.npz"))
    assert not list(elsewhere.iterdir())


CLI_CHILD_TIMEOUT = 60


def cli_child(root: Path, scheduler: str) -> subprocess.CompletedProcess[str]:
    """``nnstd matrix --scheduler`` in a child, Dask's connect timeout set to 1 s."""
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    command = ["matrix", "--topo-root", str(root), "--epoch", "0", "-q", "--scheduler", scheduler]
    return subprocess.run(
        [sys.executable, "-m", "nnstd.cli", *command],
        capture_output=True,
        text=True,
        timeout=CLI_CHILD_TIMEOUT,
        env=env,
    )


@pytest.fixture
def topo_root(tmp_path: Path, paths: list[Path]) -> Path:
    root = tmp_path / "topo"
    for k, path in enumerate(paths[:3]):
        (root / f"w{k}").mkdir(parents=True)
        (root / f"w{k}" / "epoch_000").symlink_to(path)
    return root


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


@pytest.fixture
def babbling_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that answers every connection in another protocol (HTTP)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    server.settimeout(0.1)  # so that the thread sees `done` soon after the test
    done = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 8)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join()
        server.close()
        for conn in held:
            conn.close()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("nnstd: ")]
    assert line.startswith("nnstd: error: "), line
    return line


def test_a_scheduler_that_never_answers_is_one_line_after_the_timeout(
    topo_root: Path, silent_port: int
) -> None:
    line = one_error_line(cli_child(topo_root, f"tcp://127.0.0.1:{silent_port}"))
    assert f"tcp://127.0.0.1:{silent_port} did not answer within 1 s" in line


@pytest.mark.parametrize(
    ("scheme", "hint"), [("tcp", "not Dask's protocol"), ("tls", "Dask's TLS settings")]
)
def test_a_port_of_another_protocol_or_tls_is_one_line(
    topo_root: Path, babbling_port: int, scheme: str, hint: str
) -> None:
    address = f"{scheme}://127.0.0.1:{babbling_port}"
    line = one_error_line(cli_child(topo_root, address))
    assert f"nnstd: error: cannot use the Dask scheduler at {address}: " in line
    assert hint in line


# The scheduler of an in-process cluster closed while tiles run: the client's futures are
# cancelled; the run must end with one TopologyError, not Dask's FutureCancelledError.
DYING_SCHEDULER = """
import os
import time
import numpy as np
import distributed
import nnstd
from nnstd import _tiles

real = _tiles.tile_distances

def slow(nets, pairs, mode, threads, progress):
    time.sleep(0.05 * len(pairs))
    return real(nets, pairs, mode, threads, progress)

_tiles.tile_distances = slow
rng = np.random.default_rng(0)
nets = [nnstd.Network([rng.random((30, 20)) < 0.2]) for _ in range(12)]
cluster = distributed.LocalCluster(
    n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
)
client = distributed.Client(cluster)
closed = []

def close_the_scheduler(done, total):
    if done > 0 and not closed:
        closed.append(True)
        client.loop.add_callback(cluster.scheduler.close)

try:
    nnstd.pairwise(nets, client=client, progress=close_the_scheduler)
except nnstd.TopologyError as exc:
    print("TopologyError:", exc, flush=True)
os._exit(0)  # Dask's exit handlers would wait 10 s for the scheduler that is gone
"""


def test_a_scheduler_that_dies_mid_run_is_one_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", DYING_SCHEDULER],
        capture_output=True,
        text=True,
        timeout=CLI_CHILD_TIMEOUT,
    )
    (line,) = result.stdout.splitlines()
    assert line.startswith("TopologyError: the Dask cluster failed during the run"), line
    assert "FutureCancelledError" in line
