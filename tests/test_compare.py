"""``nnstd compare A B``: NNSTD, IoU and Hamming, raw and aligned, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from oracle import shuffled_hidden

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnstd.cli", "compare", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_json_matches_the_api(bundled_topo: Path) -> None:
    a, b = (bundled_topo / f"w{k}" / "epoch_190" for k in (0, 1))
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


# ---- views: clustered heat map, MDS, convergence ---------------------------------------------


def tiny_set(root: Path) -> Path:
    """4 networks x 4 snapshots of a 12-8-3 network in the paper's layout; the topology of
    each stops changing after epoch 2."""
    rng = np.random.default_rng(9)
    for n in range(4):
        layers = [rng.random((12, 8)) < 0.3, rng.random((8, 3)) < 0.5]
        for epoch in range(4):
            if epoch <= 2:
                layers[0] = layers[0] ^ (rng.random((12, 8)) < 0.2)
            folder = root / f"w{n}" / f"epoch_{epoch:03d}"
            folder.mkdir(parents=True)
            for k, w in enumerate(layers):
                with_bias = np.vstack([w, np.ones((1, w.shape[1]))])
                sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(with_bias))
    return root


def test_cluster_draws_both_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nnstd.cli import main

    root = tiny_set(tmp_path / "topo")
    out, mds = tmp_path / "c.png", tmp_path / "m.png"
    args = ["cluster", "--topo-root", root, "--epoch", "3", "--out", out, "--mds", mds]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == PNG_MAGIC and mds.read_bytes()[:8] == PNG_MAGIC
    assert "average linkage" in capsys.readouterr().out


def test_clustered_heatmap_orders_by_the_dendrogram() -> None:
    from nnstd.plot import clustered_heatmap, mds_coordinates

    m = np.array([[0, 0.9, 0.1, 0.85], [0.9, 0, 0.8, 0.2], [0.1, 0.8, 0, 0.9], [0.85, 0.2, 0.9, 0]])
    fig = clustered_heatmap(m, ["a", "b", "c", "d"])
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert {frozenset(labels[:2]), frozenset(labels[2:])} == {frozenset("ac"), frozenset("bd")}
    xy = mds_coordinates(m)
    near, far = np.linalg.norm(xy[0] - xy[2]), np.linalg.norm(xy[0] - xy[1])
    assert near < far / 3


def test_convergence_finds_the_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nnstd.cli import main
    from nnstd.plot import convergence_index

    assert convergence_index([0.3, 0.05, 0.2, 0.0, 0.0], 0.1, 2) == 4
    root = tiny_set(tmp_path / "topo")
    args = ["convergence", "--topo-root", root, "--threshold", "0.01", "--window", "1"]
    capsys.readouterr()
    assert main([str(a) for a in [*args, "--json", "--out", tmp_path / "v.png"]]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["converged_at"] == {f"w{n}": "epoch_003" for n in range(4)}
    values = np.array(got["consecutive"])
    assert values.shape == (4, 3) and np.all(values[:, :2] > 0) and np.all(values[:, 2] == 0)
    assert (tmp_path / "v.png").read_bytes()[:8] == PNG_MAGIC
    assert main([str(a) for a in args]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["converged", *["epoch_003"] * 4]
