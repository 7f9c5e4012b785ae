"""``nnstd compare A B``: NNSTD, IoU and Hamming, raw and aligned, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nnstd
import numpy as np
import pytest
from oracle import shuffled_hidden


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnstd.cli", "compare", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_json_matches_the_api(paper_topo: Path) -> None:
    a, b = (paper_topo / f"e5_s0_w{k}" / "epoch_190" for k in (0, 1))
    result = run(a, b, "--json", "--solver", "canonical")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    np.testing.assert_array_equal(got["nnstd"], nnstd.distance(a, b, solver="canonical").layers)
    np.testing.assert_array_equal(got["iou_raw"], nnstd.overlap(a, b))
    np.testing.assert_array_equal(got["hamming_raw"], nnstd.overlap(a, b, measure="hamming"))
    aligned = nnstd.align(a, b, solver="canonical")
    np.testing.assert_array_equal(got["iou_aligned"], nnstd.overlap(a, aligned))
    assert got["layers"] == [0, 1, 2, 3] and got["solver"] == "canonical"
    assert got["iou_raw"] != got["iou_aligned"]


def test_table_of_a_relabelled_copy(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    layers = [rng.random((12, 8)) < 0.3, rng.random((8, 6)) < 0.4, rng.random((6, 3)) < 0.5]
    np.savez(tmp_path / "a.npz", *[w.astype(np.float32) for w in layers])
    copy = shuffled_hidden(layers, rng)
    np.savez(tmp_path / "b.npz", *[w.astype(np.float32) for w in copy])
    result = run(tmp_path / "a.npz", tmp_path / "b.npz", "--solver", "canonical")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split() == [
        "layer",
        "NNSTD",
        "IoU",
        "raw",
        "IoU",
        "aln",
        "Ham",
        "raw",
        "Ham",
        "aln",
    ]
    rows = [line.split() for line in lines[3:6]]
    assert [r[0] for r in rows] == ["0", "1", "2"]
    for row in rows:  # identical up to renaming: distance 0, aligned IoU 1, aligned Hamming 0
        assert (row[1], row[3], row[5]) == ("0.0000", "1.0000", "0.0000")
    assert float(rows[0][2]) < 1.0  # the raw masks differ


def test_unequal_widths_show_no_overlap(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", np.eye(4)[:, :3], np.ones((3, 2)))
    np.savez(tmp_path / "b.npz", np.eye(4), np.ones((4, 2)))
    result = run(tmp_path / "a.npz", tmp_path / "b.npz", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["iou_raw"] == [None, None] and got["nnstd"] == [0.0, 0.25]


@pytest.mark.parametrize("args", [("--solver", "nope"), ("--json",)])
def test_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run(tmp_path / "missing", tmp_path / "missing2", *args)
    assert result.returncode in (1, 2)
    assert len(result.stderr.strip().splitlines()) == 1
