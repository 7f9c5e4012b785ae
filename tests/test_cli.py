"""The ``nnstd`` command, run as a user runs it (subprocesses), and its outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import paper_networks
from oracle import paper_layers, scipy_distance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnstd.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_is_not_blank(path: Path) -> bool:
    from matplotlib.image import imread

    pixels = imread(path)
    return float(pixels[..., :3].std()) > 0.05


def tiny_topo(
    root: Path, networks: int = 3, epochs: tuple[str, ...] = ("init", "epoch_000")
) -> Path:
    rng = np.random.default_rng(0)
    for n in range(networks):
        for epoch in epochs:
            folder = root / f"net{n}" / epoch
            folder.mkdir(parents=True)
            for k, shape in enumerate([(9, 6), (7, 4)]):  # (n_in + bias, n_out)
                w = (rng.random(shape) < 0.4).astype(float)
                sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(w))
    return root


def test_figure4_matrices_equal_pairwise_and_scipy(paper_topo: Path, tmp_path: Path) -> None:
    out, saved = tmp_path / "fig4.png", tmp_path / "matrices"
    result = run(
        "figure4",
        "--topo-root",
        paper_topo,
        "--epochs",
        "0",
        "190",
        "--out",
        out,
        "--save-matrices",
        saved,
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    for epoch in ("epoch_000", "epoch_190"):
        folders = paper_networks(paper_topo, epoch)
        matrix = np.load(saved / f"{epoch}.npy")
        np.testing.assert_array_equal(matrix, nnstd.pairwise(folders, layers=0)[:, :, 0])
        layers = [paper_layers(str(f)) for f in folders]
        for i in range(10):
            for j in range(i):
                expected, _ = scipy_distance(layers[i][:1], layers[j][:1])
                assert abs(matrix[i, j] - expected[0]) < 1e-12
        csv = np.loadtxt(saved / f"{epoch}.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
        np.testing.assert_array_equal(csv, matrix)
        header = (saved / f"{epoch}.csv").read_text().splitlines()[0].split(",")
        assert header[1:] == [f"e5_s0_w{k}" for k in range(10)]
    width, height = png_size(out)
    assert width > height > 300  # two panels side by side
    assert png_is_not_blank(out)


def test_figure4_layer_options_and_formats(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    for name in ("f.png", "f.pdf", "f.svg"):
        result = run(
            "figure4",
            "--topo-root",
            root,
            "--layer",
            "1",
            "--out",
            tmp_path / name,
            "--save-matrices",
            tmp_path / "m",
            "-q",
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]
    nets = [nnstd.load_network(root / f"net{n}" / "init") for n in range(3)]
    cumulative = nnstd.pairwise(nets).mean(axis=2)
    np.testing.assert_allclose(np.load(tmp_path / "m" / "init.npy"), cumulative, atol=1e-15)
    result = run(
        "figure4",
        "--topo-root",
        root,
        "--layer",
        "1",
        "--only-layer",
        "--save-matrices",
        tmp_path / "only",
        "--out",
        tmp_path / "g.png",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "only" / "init.npy"), nnstd.pairwise(nets)[:, :, 1]
    )
    # one panel per snapshot (init and epoch 0): two panels side by side
    width, height = png_size(tmp_path / "f.png")
    assert width > 1.5 * height


def test_figure4_defaults_to_topo_in_the_working_directory(tmp_path: Path) -> None:
    tiny_topo(tmp_path / "topo")
    result = run("figure4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote figure4.png (2 panels, 3 networks" in result.stdout
    assert png_is_not_blank(tmp_path / "figure4.png")


def test_matrix_distance_and_evolution(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    result = run(
        "matrix",
        root,
        "--epoch",
        "0",
        "--save",
        tmp_path / "m.csv",
        "--out",
        tmp_path / "m.png",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert png_is_not_blank(tmp_path / "m.png")
    printed = run("matrix", root, "--epoch", "init", "--layer", "1")
    assert printed.returncode == 0 and "net0" in printed.stdout
    a, b = root / "net0" / "init", root / "net1" / "init"
    result = run("distance", a, b, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    np.testing.assert_array_equal(data["distances"], nnstd.distance(a, b).layers)
    table = run("distance", a, b, "--layers", "1")
    assert table.returncode == 0 and "mean" in table.stdout
    evo = run("evolution", root, "--out", tmp_path / "evo.png", "-q")
    assert evo.returncode == 0, evo.stderr
    assert evo.stdout.splitlines()[1].startswith("init")
    assert png_is_not_blank(tmp_path / "evo.png")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["figure4", "--topo-root", "{tmp}/missing"], 1, "no such topology folder"),
        (["figure4", "--topo-root", "{root}", "--epochs", "77"], 1, "no snapshot 'epoch_077'"),
        (["figure4", "--topo-root", "{root}", "--layer", "5"], 1, "layer 5 does not exist"),
        (["figure4", "--topo-root", "{root}", "--out", "x.gif"], 2, "extension"),
        (["matrix", "{root}", "--epoch", "soon"], 1, "not an epoch"),
        (["distance", "{root}/net0/init", "{tmp}/nope"], 1, "no such file or folder"),
        (["distance", "{root}/net0/init", "{bad}"], 1, "weight_l0.npz: not a readable"),
        (["distance", "{root}/net0/init", "{shallow}"], 1, "different depth"),
        (["evolution"], 2, "TOPO_ROOT"),
        (
            [
                "distance",
                "{root}/net0/init",
                "{root}/net1/init",
                "--solver",
                "exact",
                "--memory-budget",
                "0",
            ],
            1,
            'solver="sparse"',
        ),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    root = tiny_topo(tmp_path / "topo")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "weight_l0.npz").write_bytes(b"not a zip file at all")
    shallow = tmp_path / "shallow"
    shallow.mkdir()
    sp.save_npz(shallow / "weight_l0.npz", sp.csr_matrix(np.ones((9, 6))))
    fill = {"tmp": tmp_path, "root": root, "bad": bad, "shallow": shallow}
    result = run(*(a.format(**fill) for a in args), cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_distance_reads_weight_files_with_an_orientation(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    a = {"fc1.weight": (rng.random((6, 9)) < 0.4) * 1.0, "fc2.weight": np.ones((2, 6))}
    save_file(a, str(tmp_path / "a.safetensors"))
    np.savez(tmp_path / "b.npz", a["fc1.weight"], a["fc2.weight"])
    same = run(
        "distance",
        tmp_path / "a.safetensors",
        tmp_path / "b.npz",
        "--json",
        "--orientation",
        "out_in",
    )
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["distances"] == [0.0, 0.0]
    wrong = run("distance", tmp_path / "a.safetensors", tmp_path / "b.npz")
    assert wrong.returncode == 1
    assert "orientation='out_in'" in wrong.stderr


def test_auto_is_the_default_and_falls_back_to_sparse(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    result = run(
        "distance", root / "net0" / "init", root / "net1" / "init", "--json", "--memory-budget", "0"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["solver"] == "auto"
    assert data["solvers"] == ["sparse", "sparse"]


def test_help_has_examples() -> None:
    top = run("--help")
    assert top.returncode == 0 and "Example:" in top.stdout
    for command in ("figure4", "matrix", "distance", "evolution"):
        sub = run(command, "--help")
        assert sub.returncode == 0 and "Example: nnstd " + command in sub.stdout
