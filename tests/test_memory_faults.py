"""Layers that the memory budget allows but the machine cannot hold, each run in a child process
whose address space is limited (``RLIMIT_AS``, as ``ulimit -v`` on a cluster) to a little more
than it holds once numpy and nnstd are imported.

The refusal must be one line: a ``MemoryError`` in Python, ``nnstd: error: ...`` and exit 1 from
the command. Rust's default reaction to a refused allocation is to abort the process (SIGABRT,
exit 134), which would kill a Python session with all its work; an abort or a hang shows here
as a failed test, not as a crashed test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHILD_TIMEOUT = 120
GIB = 1 << 30

# 64 inputs, 20,000 neurons, density 0.5: every neuron pair shares inputs, so the dense cost
# matrix is chosen (by "auto" and the default, and asked for by "dense"): 20,000^2 float64 =
# 3.2 GB, under the default memory budget of 4 GiB.
INPUTS, NEURONS, DENSITY = 64, 20_000, 0.5

# The child: limits its address space to what it holds after the imports (and the networks) plus
# `headroom` bytes, runs one case and prints one JSON line (the exception's type and message, or
# "ok"); a command exits with its own code.
CHILD = r"""
import json, resource, sys
import numpy as np
import nnstd
from nnstd.cli import main

def address_space():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")

def layer(seed, inputs, neurons, density):
    return np.random.default_rng(seed).random((inputs, neurons)) < density

def limit_address_space(headroom):
    limit = address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

case = json.loads(sys.argv[1])
if case["kind"] == "cli":
    limit_address_space(case["headroom"])
    sys.exit(main(case["argv"]))
if case["kind"] == "many":
    # Many small networks (layers of two neurons): the list of pairs and the matrix are what grow.
    layers = [[np.array([[1, 0], [k % 2, 1]])] * case["depth"] for k in range(case["networks"])]
    nets = [nnstd.Network(layer) for layer in layers]
    limit_address_space(case["headroom"])
    try:
        print(json.dumps({"outcome": "ok", "shape": nnstd.pairwise(nets).shape}))
    except Exception as exc:
        print(json.dumps({"outcome": type(exc).__name__, "message": str(exc)}))
    sys.exit(0)
a, b = (nnstd.Network([layer(seed, *case["shape"])]) for seed in (1, 2))
limit_address_space(case["headroom"])
try:
    if case["kind"] == "pairwise":
        nnstd.pairwise([a, b], **case["options"])
        print(json.dumps({"outcome": "ok"}))
    else:
        d = nnstd.distance(a, b, **case["options"])
        print(json.dumps({"outcome": "ok", "solvers": list(d.solvers)}))
except Exception as exc:
    print(json.dumps({"outcome": type(exc).__name__, "message": str(exc)}))
"""


def run_child(case: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        # Two worker threads and two malloc arenas whatever the machine: each thread's arena
        # reserves 64 MiB of address space, so the space used before the large buffers would
        # otherwise grow with the number of cores.
        env={
            **os.environ,
            "RUST_BACKTRACE": "0",
            "RAYON_NUM_THREADS": "2",
            "MALLOC_ARENA_MAX": "2",
        },
    )


def refusal(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The child's one JSON line, after checking it ended normally (not SIGABRT, exit 134)."""
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    outcome: dict[str, str] = json.loads(lines[0])
    return outcome


@pytest.mark.parametrize("solver", ["dense", None])
def test_a_dense_matrix_the_machine_cannot_hold_is_a_memory_error(solver: str | None) -> None:
    options = {} if solver is None else {"solver": solver}
    result = run_child(
        {"kind": "api", "headroom": GIB, "shape": [INPUTS, NEURONS, DENSITY], "options": options}
    )
    outcome = refusal(result)
    assert outcome["outcome"] == "MemoryError", outcome
    message = outcome["message"]
    assert "\n" not in message
    assert message.startswith("layer 0: not enough memory for the dense cost matrix (3.0 GiB)")
    assert "memory budget" in message
    assert result.stderr == ""


@pytest.mark.parametrize("store", [False, True])
def test_pairwise_says_so_in_one_line(tmp_path: Path, store: bool) -> None:
    options = {"store": str(tmp_path / "store")} if store else {}
    result = run_child(
        {
            "kind": "pairwise",
            "headroom": GIB,
            "shape": [INPUTS, NEURONS, DENSITY],
            "options": options,
        }
    )
    outcome = refusal(result)
    assert outcome["outcome"] == "MemoryError", outcome
    assert outcome["message"].startswith(
        "layer 0: not enough memory for the dense cost matrix (3.0 GiB)"
    ), outcome


@pytest.mark.parametrize(
    ("headroom_mib", "refused"),
    [(64, "the list of pairs (122.0 MiB)"), (384, "the pairwise distance matrix (488.3 MiB)")],
)
def test_a_matrix_of_many_networks_the_machine_cannot_hold(headroom_mib: int, refused: str) -> None:
    # 4,000 networks of 4 layers: 8 million pairs (122 MiB of list) and a 4,000 x 4,000 x 4
    # matrix (488 MiB), refused before any pair is computed.
    case = {"kind": "many", "networks": 4000, "depth": 4, "headroom": headroom_mib << 20}
    outcome = refusal(run_child(case))
    assert outcome["outcome"] == "MemoryError", outcome
    assert outcome["message"] == (
        f"not enough memory for {refused}; free memory, or compare fewer networks at once"
    ), outcome


def test_the_similarity_graph_the_machine_cannot_hold_is_a_memory_error() -> None:
    # The sparse path on the same kind of layer, 8,000 wide: 64 million neuron pairs share
    # inputs (768 MB of graph), with a budget far above it and 256 MiB to spare.
    result = run_child(
        {
            "kind": "api",
            "headroom": GIB // 4,
            "shape": [INPUTS, 8000, DENSITY],
            "options": {"solver": "sparse", "memory_budget": 64 * GIB},
        }
    )
    outcome = refusal(result)
    assert outcome["outcome"] == "MemoryError", outcome
    message = outcome["message"]
    assert "\n" not in message
    assert message.startswith("layer 0: not enough memory for the similarity graph"), message


def test_worker_threads_the_system_will_not_start_are_a_memory_error() -> None:
    # 2 MiB to spare: not even the worker threads' stacks fit (rayon would panic starting them).
    result = run_child(
        {"kind": "api", "headroom": 2 << 20, "shape": [INPUTS, 3000, DENSITY], "options": {}}
    )
    outcome = refusal(result)
    assert outcome["outcome"] == "MemoryError", outcome
    assert "\n" not in outcome["message"]
    assert outcome["message"].startswith("cannot start nnstd's worker threads ("), outcome


def dense_npz(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, rng.random((INPUTS, NEURONS)) < DENSITY)
    return path


def test_the_command_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    a, b = dense_npz(tmp_path / "a.npz", 1), dense_npz(tmp_path / "b.npz", 2)
    result = run_child({"kind": "cli", "headroom": GIB, "argv": ["distance", str(a), str(b)]})
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "nnstd: error: layer 0: not enough memory for the dense cost matrix (3.0 GiB)"
    ), lines[0]


def test_an_array_numpy_cannot_allocate_is_one_line_from_the_command(tmp_path: Path) -> None:
    # A compressed dense layer of 512 MiB (half a MB on disk), under the 4 GiB load budget but
    # over the child's 256 MiB to spare: numpy cannot allocate it while reading the file.
    big = tmp_path / "big.npz"
    rows, cols = 1 << 14, 4 << 10  # float64: 512 MiB
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, cols)}
    chunk = bytes(64 << 20)
    with (
        zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("arr_0.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(member, header)
        for _ in range(rows * cols * 8 // len(chunk)):
            member.write(chunk)
    argv = ["distance", str(big), str(big)]
    result = run_child({"kind": "cli", "headroom": GIB // 4, "argv": argv})
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"nnstd: error: {big}: "), lines[0]
    assert "memory" in lines[0], lines[0]
