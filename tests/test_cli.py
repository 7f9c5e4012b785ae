"""The ``nnstd`` command, run as a user runs it (subprocesses), and its outputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import bundled_networks
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


def run_here(
    *args: str | Path, capsys: pytest.CaptureFixture[str]
) -> subprocess.CompletedProcess[str]:
    """`run` in this process (no start-up cost), for the many small cases; same result shape."""
    from nnstd.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_is_not_blank(path: Path) -> bool:
    from matplotlib.image import imread

    pixels = imread(path)
    return float(pixels[..., :3].std()) > 0.05


PAPER_SNAPSHOTS = ("init", "epoch_010", "epoch_030", "epoch_050", "epoch_100", "epoch_190")


def tiny_topo(
    root: Path,
    networks: int = 3,
    epochs: tuple[str, ...] = ("init", "epoch_000"),
    dense_output: bool = False,
) -> Path:
    rng = np.random.default_rng(0)
    for n in range(networks):
        for epoch in epochs:
            folder = root / f"net{n}" / epoch
            folder.mkdir(parents=True)
            for k, shape in enumerate([(9, 6), (7, 4)]):  # (n_in + bias, n_out)
                w = (rng.random(shape) < 0.4).astype(float)
                if dense_output and k == 1:
                    w = np.ones(shape)
                sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(w))
    return root


def svg_texts(path: Path) -> list[str]:
    """The text drawn on a matplotlib SVG (each string is written as a comment beside it)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8"))


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_figure4_matrices_equal_pairwise_and_scipy(bundled_topo: Path, tmp_path: Path) -> None:
    out, saved = tmp_path / "fig4.png", tmp_path / "matrices"
    result = run(
        "figure4",
        "--topo-root",
        bundled_topo,
        "--epoch",
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
        folders = bundled_networks(bundled_topo, epoch)
        matrix = np.load(saved / f"{epoch}.npy")
        np.testing.assert_array_equal(
            matrix, nnstd.pairwise(folders, layers=0, solver="paper")[:, :, 0]
        )
        layers = [paper_layers(str(f)) for f in folders]
        for i in range(10):
            for j in range(i):
                expected, _ = scipy_distance(layers[i][:1], layers[j][:1])
                assert abs(matrix[i, j] - expected[0]) < 1e-12
        csv = np.loadtxt(saved / f"{epoch}.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
        np.testing.assert_array_equal(csv, matrix)
        header = (saved / f"{epoch}.csv").read_text().splitlines()[0].split(",")
        assert header[1:] == [f"w{k}" for k in range(10)]
    width, height = png_size(out)
    assert width > height > 300  # two panels side by side
    assert png_is_not_blank(out)


def test_figure4_draws_the_papers_panels_and_captions(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo", epochs=("epoch_000", *PAPER_SNAPSHOTS))
    out, saved = tmp_path / "fig4.svg", tmp_path / "m"
    result = run("figure4", "--topo-root", root, "--out", out, "--save-matrices", saved)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nothing missing, nothing to say
    assert f"wrote {out}: 6 panels, Layer 0, 3 networks" in result.stdout
    texts = svg_texts(out)
    captions = [t for t in texts if re.fullmatch(r"\([a-z]\) .*", t)]
    assert captions == [
        "(a) Epoch 0",
        "(b) Epoch 10",
        "(c) Epoch 30",
        "(d) Epoch 50",
        "(e) Epoch 100",
        "(f) Epoch 190",
    ]
    assert texts.count("Layer 0") == 6
    # panel (a) is the initial networks, not the snapshot after epoch 0
    assert sorted(f.name for f in saved.glob("*.npy")) == sorted(
        f"{e}.npy" for e in PAPER_SNAPSHOTS
    )
    nets = [nnstd.load_network(root / f"net{n}" / "init") for n in range(3)]
    np.testing.assert_array_equal(np.load(saved / "init.npy"), nnstd.pairwise(nets)[:, :, 0])


def test_figure4_says_what_is_missing_on_the_figure_and_stderr(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo", epochs=("epoch_000", "epoch_010", "epoch_190"))
    out = tmp_path / "fig4.svg"
    result = run("figure4", "--topo-root", root, "--out", out, "--save-matrices", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    notes = result.stderr.splitlines()
    assert len(notes) == 4 and all(n.startswith("nnstd: note: ") for n in notes)
    assert "no initial networks ('init'): panel (a) shows snapshot epoch_000 instead" in notes[0]
    assert "no snapshot epoch_030: panel (c) is left empty" in notes[1]
    texts = svg_texts(out)
    assert "(a) Epoch 0*" in texts and "(c) Epoch 30" in texts
    drawn = " ".join(texts)
    assert "panel (a) shows snapshot epoch_000 instead" in drawn
    assert "no snapshot epoch_050: panel (d) is left empty" in drawn
    assert texts.count("not in this") == 3  # (c), (d), (e) are empty panels
    assert {f.name for f in (tmp_path / "m").glob("*.npy")} == {
        "epoch_000.npy",
        "epoch_010.npy",
        "epoch_190.npy",
    }


def test_figure4_layer_options_and_formats(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    nets = [nnstd.load_network(root / f"net{n}" / "init") for n in range(3)]
    full = nnstd.pairwise(nets, solver="paper")  # figure4 reproduces the paper
    for name, extra, expected in [
        ("alone.png", [], full[:, :, 1]),
        ("mean.pdf", ["--cumulative"], full.mean(axis=2)),
        ("alias.svg", ["--only-layer"], full[:, :, 1]),  # the earlier spelling of the default
    ]:
        saved = tmp_path / name.replace(".", "_")
        result = run(
            "figure4",
            "--topo-root",
            root,
            "--epoch",
            "init",
            "--layer",
            "1",
            *extra,
            "--out",
            tmp_path / name,
            "--save-matrices",
            saved,
            "-q",
        )
        assert result.returncode == 0, result.stderr
        np.testing.assert_allclose(np.load(saved / "init.npy"), expected, rtol=0, atol=1e-15)
    assert (tmp_path / "mean.pdf").read_bytes()[:4] == b"%PDF"
    assert "Layer 1 alone" in svg_texts(tmp_path / "alias.svg")
    width, height = png_size(tmp_path / "alone.png")
    assert height > 300 and 0.8 < width / height < 1.3  # one panel


def test_figure4_finds_a_topology_set_from_any_folder(tmp_path: Path) -> None:
    here = tiny_topo(tmp_path / "project" / "topo")
    result = run("figure4", "--epoch", "init", cwd=here.parent)
    assert result.returncode == 0, result.stderr
    assert f"from {here}" in result.stdout  # ./topo comes first
    assert png_is_not_blank(here.parent / "figure4.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("figure4", "--epoch", "init", "--out", "f.png", "-q", cwd=elsewhere)
    assert result.returncode == 0, result.stderr  # the bundled topologies
    assert (elsewhere / "f.png").stat().st_size > 10_000


def test_default_topology_root_without_a_local_topo_is_the_bundled_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnstd.topology_set import TopologySet, bundled_topo_root, default_topo_root

    monkeypatch.chdir(tmp_path)
    assert default_topo_root() == bundled_topo_root()
    bundled = TopologySet.open(bundled_topo_root())
    assert len(bundled.networks) == 10 and "init" in bundled.epochs


def test_outputs_are_announced_and_replacing_a_file_is_said(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    args = ["--topo-root", root, "--epoch", "init"]
    first = run("figure4", *args, "--out", tmp_path / "f.png")
    assert first.returncode == 0 and "replaced" not in first.stdout
    again = run("figure4", *args, "--out", tmp_path / "f.png")
    assert f"wrote {tmp_path / 'f.png'} (replaced the existing file)" in again.stdout
    for _ in range(2):
        result = run("matrix", *args, "--out", tmp_path / "m.png", "--save", tmp_path / "m.csv")
        assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'm.csv'} (replaced the existing file)")
    assert lines[1].startswith(f"wrote {tmp_path / 'm.png'} (replaced the existing file)")
    assert "higher index" in lines[0]  # the reference convention goes with the numbers


def test_every_set_command_takes_the_same_root_epoch_and_layer_options(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    nets = [nnstd.load_network(root / f"net{n}" / "epoch_000") for n in range(3)]
    full = nnstd.pairwise(nets)
    common = ["--topo-root", root, "--epoch", "0", "--layer", "1"]
    for extra, expected in [([], full[:, :, 1]), (["--cumulative"], full.mean(axis=2))]:
        m = run("matrix", *common, *extra, "--save", tmp_path / "m.npy", "-q")
        assert m.returncode == 0, m.stderr
        np.testing.assert_allclose(np.load(tmp_path / "m.npy"), expected, rtol=0, atol=1e-15)
        evo = run("evolution", *common, *extra)
        assert evo.returncode == 0, evo.stderr
        row = evo.stdout.splitlines()[-1].split()
        assert row[0] == "epoch_000"
        pairs = expected[np.triu_indices(3, k=1)]
        assert float(row[1]) == pytest.approx(pairs.mean(), abs=1e-4)
        assert float(row[3]) == pytest.approx(pairs.std(), abs=1e-4)
    # the earlier positional root is still accepted, and agrees
    legacy = run("matrix", root, "--epoch", "0", "--layer", "1")
    documented = run("matrix", "--topo-root", root, "--epoch", "0", "--layer", "1")
    assert legacy.returncode == 0 and legacy.stdout == documented.stdout
    assert "higher index" in documented.stdout.splitlines()[0]


def test_distance_states_its_reference_and_what_the_mean_is(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    a, b = root / "net0" / "init", root / "net1" / "init"
    result = run("distance", a, b, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    np.testing.assert_array_equal(data["distances"], nnstd.distance(a, b).layers)
    assert data["reference"] == "a"
    table = run("distance", a, b, "--layers", "1")
    assert table.returncode == 0, table.stderr
    assert "(the reference" in table.stdout.splitlines()[0]
    assert "layer 1 alone" in table.stdout
    assert "higher-indexed network as A" in table.stdout
    paper = run("distance", a, b, "--layers", "0", "1")
    assert "mean of layers 0..1 (the paper's 'layer 1' value" in paper.stdout
    help_text = run("distance", "--help").stdout + run("matrix", "--help").stdout
    assert help_text.count("higher") >= 2


def test_evolution_plot_has_an_epoch_axis_and_explains_band_and_dense_layer(
    tmp_path: Path,
) -> None:
    root = tiny_topo(
        tmp_path / "topo", epochs=("init", "epoch_000", "epoch_100"), dense_output=True
    )
    out = tmp_path / "evo.svg"
    result = run("evolution", "--topo-root", root, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Layer 1 left out: dense" in result.stdout
    texts = svg_texts(out)
    assert "layer 0" in texts and "layer 1" not in texts
    assert "±1 standard deviation over the 3 pairs" in texts
    assert (
        "Layer 1 left out: dense (every neuron sees every input), so its distance is 0 for "
        "every pair." in texts
    )
    from nnstd.plot import evolution

    fig = evolution([None, 0, 10, 100], np.zeros((1, 4)), np.zeros((1, 4)), ["layer 0"])
    x = fig.axes[0].lines[0].get_xdata()
    np.testing.assert_array_equal(x, [0, 10, 100])  # epochs on a numeric axis
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "init"


def test_generate_refuses_a_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    old = tiny_topo(tmp_path / "out")
    tiny = ["--widths", "784", "12", "10", "--networks", "2", "--epochs", "2", "--snapshots", "1"]
    refused = run("generate", "--out", old, *tiny, "-q")
    assert "not empty" in one_line_error(refused, 1) and "--force" in refused.stderr
    assert (old / "net0").is_dir()
    forced = run("generate", "--out", old, *tiny, "-q", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in old.iterdir()) == ["config.json", "w0", "w1"]
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    kept = run("generate", "--out", stray, *tiny, "-q", "--force")
    assert "not a topology set" in one_line_error(kept, 1)
    assert (stray / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--threads", "9223372036854775808", "at most"),
        ("--threads", str(nnstd._core.MAX_THREADS + 1), "at most"),
        ("--threads", "-1", "0 (all cores) or more"),
        ("--threads", "lots", "not a whole number"),
        ("--memory-budget", "nan", "number of GiB >= 0"),
        ("--memory-budget", "-2", "number of GiB >= 0"),
    ],
)
def test_bad_threads_and_budgets_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    root = tiny_topo(tmp_path / "topo")
    for command in (
        ["figure4", "--topo-root", str(root)],
        ["distance", str(root / "net0" / "init"), str(root / "net1" / "init")],
    ):
        line = one_line_error(run_here(*command, option, value, capsys=capsys), 2)
        assert line.startswith(f"nnstd {command[0]}: error: argument {option}")
        assert message in line and "--help" in line


@pytest.mark.parametrize(
    ("option", "value", "solvers"),
    [
        ("--threads", "0", None),  # all cores
        ("--threads", "1", None),
        ("--threads", str(nnstd._core.MAX_THREADS), None),
        ("--memory-budget", "inf", ["dense", "dense"]),
        ("--memory-budget", "1e12", ["dense", "dense"]),
        ("--memory-budget", "0.5", ["dense", "dense"]),
    ],
)
def test_threads_and_budgets_are_accepted_as_meant(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    solvers: list[str] | None,
) -> None:
    root = tiny_topo(tmp_path / "topo")
    a, b = root / "net0" / "init", root / "net1" / "init"
    # "auto" reports the algorithm the budget let it use (the default reports "canonical").
    result = run_here("distance", a, b, "--json", "--solver", "auto", option, value, capsys=capsys)
    assert result.returncode == 0, result.stderr
    if solvers is not None:
        assert json.loads(result.stdout)["solvers"] == solvers
    out = tmp_path / "f.png"
    fig = run_here(
        "figure4",
        "--topo-root",
        root,
        "--epoch",
        "init",
        "--out",
        out,
        option,
        value,
        capsys=capsys,
    )
    assert fig.returncode == 0, fig.stderr


def test_a_huge_thread_count_is_refused_by_the_installed_command(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    result = run("figure4", "--topo-root", root, "--threads", "9223372036854775808")
    assert f"at most {nnstd._core.MAX_THREADS}" in one_line_error(result, 2)


def test_help_says_the_budget_is_in_gib() -> None:
    text = " ".join(run("figure4", "--help").stdout.split())
    assert "GiB (not bytes; the Python API takes bytes)" in text
    assert "0 (the default) uses all cores" in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["figure4", "--topo-root", "{tmp}/missing"], 1, "no such topology folder"),
        (["figure4", "--topo-root", "{root}", "--epoch", "77"], 1, "no snapshot 'epoch_077'"),
        (["figure4", "--topo-root", "{root}", "--layer", "5"], 1, "layer 5 does not exist"),
        (["figure4", "--topo-root", "{root}", "--out", "x.gif"], 2, "extension"),
        (["matrix", "--topo-root", "{root}", "--epoch", "soon"], 1, "not an epoch"),
        (["matrix", "--topo-root", "{root}"], 2, "give one snapshot with --epoch"),
        (["matrix", "{root}", "--topo-root", "{tmp}", "--epoch", "0"], 1, "two topology roots"),
        (["evolution", "--topo-root", "{root}", "--cumulative"], 2, "--cumulative needs"),
        (["distance", "{root}/net0/init", "{tmp}/nope"], 1, "no such file or folder"),
        (["distance", "{root}/net0/init", "{bad}"], 1, "weight_l0.npz: not a readable"),
        (["distance", "{root}/net0/init", "{shallow}"], 1, "different depth"),
        (["distance", "{root}/net0/init"], 2, "required: B"),
        (
            [
                "distance",
                "{root}/net0/init",
                "{root}/net1/init",
                "--solver",
                "dense",
                "--memory-budget",
                "0",
            ],
            1,
            'use the "sparse" solver',
        ),
        (
            ["distance", "{root}/net0/init", "{root}/net1/init", "--load-budget", "0"],
            1,
            "--load-budget",
        ),
        (["figure4", "--topo-root", "{root}", "--load-budget", "0"], 1, "--load-budget GIB"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required: COMMAND"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
) -> None:
    root = tiny_topo(tmp_path / "topo")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "weight_l0.npz").write_bytes(b"not a zip file at all")
    shallow = tmp_path / "shallow"
    shallow.mkdir()
    sp.save_npz(shallow / "weight_l0.npz", sp.csr_matrix(np.ones((9, 6))))
    fill = {"tmp": tmp_path, "root": root, "bad": bad, "shallow": shallow}
    monkeypatch.chdir(tmp_path)
    result = run_here(*(a.format(**fill) for a in args), capsys=capsys)
    assert message in one_line_error(result, code)


def test_distance_reads_weight_files_with_an_orientation_each(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    a = {"fc1.weight": (rng.random((6, 9)) < 0.4) * 1.0, "fc2.weight": np.ones((2, 6))}
    save_file(a, str(tmp_path / "a.safetensors"))  # (out, in): read as out_in by default
    np.savez(tmp_path / "b.npz", a["fc1.weight"], a["fc2.weight"])  # (out, in) too
    wrong = run("distance", tmp_path / "a.safetensors", tmp_path / "b.npz")
    assert "pass --orientation out_in" in one_line_error(wrong, 1)  # said as a shell option
    for options in (["--orientation", "out_in"], ["--orientation-b", "out_in"]):
        same = run("distance", tmp_path / "a.safetensors", tmp_path / "b.npz", "--json", *options)
        assert same.returncode == 0, same.stderr
        assert json.loads(same.stdout)["distances"] == [0.0, 0.0]
    np.savez(tmp_path / "c.npz", a["fc1.weight"].T, a["fc2.weight"].T)  # (in, out)
    mixed = run(
        "distance",
        tmp_path / "c.npz",
        tmp_path / "b.npz",
        "--json",
        "--orientation-a",
        "in_out",
        "--orientation-b",
        "out_in",
    )
    assert mixed.returncode == 0, mixed.stderr
    assert json.loads(mixed.stdout)["distances"] == [0.0, 0.0]


def test_canonical_is_the_default_and_auto_says_what_ran(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    result = run("distance", root / "net0" / "init", root / "net1" / "init", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["solver"] == "canonical"
    assert data["solvers"] == ["canonical", "canonical"]
    auto = run(
        "distance", root / "net0" / "init", root / "net1" / "init", "--json", "--solver", "auto"
    )
    assert json.loads(auto.stdout)["solvers"] == ["dense", "dense"]  # most pairs share inputs
    # Layer 0 is the same optimum under both.
    assert json.loads(auto.stdout)["distances"][0] == pytest.approx(data["distances"][0], abs=1e-12)
    refused = run(
        "distance", root / "net0" / "init", root / "net1" / "init", "--memory-budget", "0"
    )
    assert "over the memory budget of 0 bytes" in one_line_error(refused, 1)


def test_help_has_examples() -> None:
    top = run("--help")
    assert top.returncode == 0 and "Example:" in top.stdout
    for command in ("figure4", "matrix", "distance", "evolution"):
        sub = run(command, "--help")
        assert sub.returncode == 0 and "Example: nnstd " + command in sub.stdout


# ---- output files: checked before computing, written whole or not at all -------------------

FAULT_TIMEOUT = 120  # seconds a fault-injection child may take
# Runs nnstd.cli.main on each command line (JSON on argv[1]) and prints what it left: the exit
# code, stderr, the folder's files and their bytes (hex). With "--patch-fsync", every fsync
# fails with ENOSPC: a full disk as it shows on NFS, quotas and delayed allocation.
FULL_DISK_CHILD = r"""
import contextlib, errno, io, json, os, sys
commands, folder = json.loads(sys.argv[1]), sys.argv[2]
if "--patch-fsync" in sys.argv:
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.fsync = full
else:  # fill the (small) disk the folder is on
    filler = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(filler, b"\0" * 4096)
    os.close(filler)
from nnstd.cli import main
outcomes = []
for argv in commands:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    outcomes.append({"code": code, "stderr": err.getvalue()})
files = {
    name: open(os.path.join(folder, name), "rb").read().hex()
    for name in sorted(os.listdir(folder)) if name != "filler"
}
print(json.dumps({"outcomes": outcomes, "files": files}))
"""


def full_disk_fault() -> tuple[list[str], str]:
    """How this machine can fill a disk: a 64 KiB tmpfs mounted in a private mount namespace
    (root with `unshare`), else failing fsync calls; and why, when it is the fallback."""
    import os
    import shutil

    if os.geteuid() != 0:
        return [], "not root: cannot mount a small tmpfs"
    if shutil.which("unshare") is None:
        return [], "no unshare command to mount a tmpfs privately"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        timeout=FAULT_TIMEOUT,
        check=False,
    )
    if probe.returncode != 0:
        return [], f"unshare --mount failed: {probe.stderr.decode(errors='replace').strip()}"
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c"], ""


def test_a_full_disk_keeps_the_previous_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_topo(tmp_path / "topo")
    disk = tmp_path / "disk"
    disk.mkdir()
    previous = {"m.csv": b"network,a\na,0\n", "m.npy": b"old npy", "m.png": PNG_MAGIC + b"old"}
    base = ["matrix", "--topo-root", str(root), "--epoch", "init", "-q"]
    commands = [
        [*base, "--save", str(disk / "m.csv")],
        [*base, "--save", str(disk / "m.npy")],
        [*base, "--out", str(disk / "m.png")],
    ]
    prefix, fallback = full_disk_fault()
    child = [sys.executable, "-c", FULL_DISK_CHILD, json.dumps(commands), str(disk)]
    if prefix:
        import shlex

        seed = " && ".join(
            f"printf %s {shlex.quote(data.hex())} | xxd -r -p > {shlex.quote(str(disk / name))}"
            for name, data in previous.items()
        )
        script = (
            f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(disk))} && {seed} && "
            + shlex.join(child)
        )
        argv = [*prefix, script]
    else:
        for name, data in previous.items():
            (disk / name).write_bytes(data)
        argv = [*child, "--patch-fsync"]
        with capsys.disabled():
            print(f"\n[full disk simulated by failing fsync: {fallback}]")
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=FAULT_TIMEOUT, check=False
    )
    if prefix and result.returncode != 0 and "mount" in result.stderr:
        pytest.fail(f"could not mount a tmpfs although unshare works: {result.stderr}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    for command, outcome in zip(commands, report["outcomes"], strict=True):
        assert outcome["code"] == 1, (command, outcome)
        lines = outcome["stderr"].strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in outcome["stderr"], outcome
        assert command[-1] in lines[0] and "No space left on device" in lines[0], lines
        assert "the previous file is kept" in lines[0], lines
    # The previous files are there, whole; no temporary file is left behind.
    assert report["files"] == {name: data.hex() for name, data in previous.items()}


# Runs nnstd.cli.main (argv as JSON) with os.access answering "no" for writes: a read-only
# folder, for root, who may write anywhere, on a machine where no read-only mount can be made.
READ_ONLY_CHILD = r"""
import json, os, sys
real_access = os.access
os.access = lambda path, mode, **kw: False if mode & os.W_OK else real_access(path, mode, **kw)
from nnstd.cli import main
sys.exit(main(json.loads(sys.argv[1])))
"""


def test_a_read_only_folder_is_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import shlex

    root = tiny_topo(tmp_path / "topo")
    (root / "net1" / "init" / "weight_l1.npz").write_bytes(b"broken")  # computing would fail
    folder = tmp_path / "ro"
    folder.mkdir()
    command = ["matrix", "--topo-root", str(root), "--epoch", "init", "--save", f"{folder}/m.csv"]
    prefix, fallback = full_disk_fault()
    if prefix:  # a read-only tmpfs in a private mount namespace
        cli = shlex.join([sys.executable, "-m", "nnstd.cli", *command])
        argv = [*prefix, f"mount -t tmpfs -o ro,size=4k tmpfs {shlex.quote(str(folder))} && {cli}"]
    elif os.geteuid() != 0:  # permissions hold for everyone but root
        folder.chmod(0o555)
        argv = [sys.executable, "-m", "nnstd.cli", *command]
    else:
        argv = [sys.executable, "-c", READ_ONLY_CHILD, json.dumps(command)]
        with capsys.disabled():
            print(f"\n[read-only folder simulated by os.access: {fallback}]")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=FAULT_TIMEOUT)
    line = one_line_error(result, 1)
    assert f"{folder}/m.csv: cannot write it: no permission to write in {folder}" in line
    assert "broken" not in line


def test_a_special_file_is_written_in_place_and_its_errors_said(tmp_path: Path) -> None:
    import os
    import stat

    if not Path("/dev/full").exists():
        pytest.fail("this test needs /dev/full (a device whose writes fail with ENOSPC)")
    root = tiny_topo(tmp_path / "topo")
    (tmp_path / "full.csv").symlink_to("/dev/full")
    result = run("matrix", "--topo-root", root, "--epoch", "init", "--save", tmp_path / "full.csv")
    line = one_line_error(result, 1)
    assert "full.csv" in line and "No space left on device" in line
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written into, never replaced
    assert (tmp_path / "full.csv").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.csv", "topo"]
    # /dev/stdout is a link that only opening follows (to a pipe here): the table comes out.
    (tmp_path / "out.csv").symlink_to("/dev/stdout")
    shown = run(
        "matrix", "--topo-root", root, "--epoch", "init", "-q", "--save", tmp_path / "out.csv"
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "network,net0,net1,net2"


def test_outputs_replace_files_whole_keeping_their_permissions(tmp_path: Path) -> None:
    import os
    import stat

    root = tiny_topo(tmp_path / "topo")
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.csv").write_text("old")
    os.chmod(out / "m.csv", 0o640)
    link = out / "link.npy"
    link.symlink_to("m.npy")
    args = ["--topo-root", root, "--epoch", "init"]
    result = run("matrix", *args, "--save", out / "m.csv")
    assert result.returncode == 0, result.stderr
    assert run("matrix", *args, "--save", link).returncode == 0
    table = (out / "m.csv").read_text().splitlines()
    assert table[0] == "network,net0,net1,net2" and len(table) == 4
    assert stat.S_IMODE((out / "m.csv").stat().st_mode) == 0o640
    assert link.is_symlink() and np.load(out / "m.npy").shape == (3, 3)  # through the link
    assert sorted(p.name for p in out.iterdir()) == ["link.npy", "m.csv", "m.npy"]


def test_every_output_creates_its_parent_folders(tmp_path: Path) -> None:
    root = tiny_topo(tmp_path / "topo")
    args = ["--topo-root", root, "--epoch", "init", "-q"]
    saved = run(
        "matrix", *args, "--save", tmp_path / "a" / "b" / "m.csv", "--out", tmp_path / "c" / "m.png"
    )
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "a" / "b" / "m.csv").is_file() and (tmp_path / "c" / "m.png").is_file()
    fig = run(
        "figure4", *args, "--out", tmp_path / "d" / "f.png", "--save-matrices", tmp_path / "e" / "f"
    )
    assert fig.returncode == 0, fig.stderr
    assert (tmp_path / "d" / "f.png").is_file() and (tmp_path / "e" / "f" / "init.csv").is_file()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["matrix", "--save", "{tmp}/folder.csv"], "{tmp}/folder.csv: is a folder"),
        (["matrix", "--out", "{tmp}/plain/m.png"], "{tmp}/plain is not a folder"),
        (["matrix", "--save", "{tmp}/plain/deeper/m.npy"], "{tmp}/plain is not a folder"),
        (["figure4", "--save-matrices", "{tmp}/plain"], "{tmp}/plain is not a folder"),
        (["cluster", "--out", "{tmp}/same.png", "--mds", "{tmp}/same.png"], "same file"),
        (["evolution", "--out", "{tmp}/folder.csv"], "extension"),
        (["convergence", "--out", "{tmp}/plain/c.png"], "{tmp}/plain is not a folder"),
    ],
)
def test_output_paths_are_checked_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], message: str
) -> None:
    root = tiny_topo(tmp_path / "topo", epochs=("init", "epoch_000"))
    # A broken network: computing would fail on it, so the error shows what was checked first.
    (root / "net1" / "init" / "weight_l1.npz").write_bytes(b"broken")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "plain").write_text("a file")
    fill = {"tmp": tmp_path}
    args = [a.format(**fill) for a in command]
    result = run_here(*args, "--topo-root", root, "--epoch", "init", capsys=capsys)
    line = one_line_error(result, 2 if message == "extension" else 1)
    assert message.format(**fill) in line
    assert "broken" not in line and "weight_l1" not in line


def test_a_shard_refuses_outputs_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_topo(tmp_path / "topo")
    store = tmp_path / "store"
    for output in (["--save", str(tmp_path / "m.npy")], ["--out", str(tmp_path / "m.png")]):
        result = run_here(
            "matrix",
            "--topo-root",
            root,
            "--epoch",
            "init",
            "--store",
            store,
            "--shard",
            "0/3",
            *output,
            capsys=capsys,
        )
        line = one_line_error(result, 2)
        assert "--shard" in line and output[0] in line and "without --shard" in line
    assert not store.exists() and not (tmp_path / "m.npy").exists()


@pytest.mark.parametrize(
    ("snapshots", "message"),
    [(["999"], "--snapshots 999"), (["0", "1"], "--snapshots 1"), (["-1"], "--snapshots -1")],
)
def test_generate_refuses_snapshots_it_would_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], snapshots: list[str], message: str
) -> None:
    out = tmp_path / "gen"
    result = run_here(
        "generate", "--out", out, "--epochs", "1", "--snapshots", *snapshots, capsys=capsys
    )
    line = one_line_error(result, 2)
    assert message in line and "--epochs 1" in line
    assert not out.exists()


def test_generate_says_which_default_snapshots_it_leaves_out(tmp_path: Path) -> None:
    tiny = ["--widths", "784", "12", "10", "--networks", "1", "--epochs", "11"]
    result = run("generate", "--out", tmp_path / "gen", *tiny, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        "nnstd: note: saving snapshots 0, 10 of the paper's; 20, 30, 40, 50, 100, 150, 190 are "
        "past --epochs 11"
    )
    assert sorted(p.name for p in (tmp_path / "gen" / "w0").iterdir() if p.is_dir()) == [
        "epoch_000",
        "epoch_010",
        "init",
    ]


# ---- the shell: paths starting with '-', closed pipes ---------------------------------------


def test_a_path_starting_with_a_dash_gets_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    for name in ("-x.npz", "b.npz"):
        np.savez(tmp_path / name, rng.random((5, 4)) < 0.5)
    for args in (["-x.npz", "b.npz"], ["b.npz", "-x.npz"]):
        line = one_line_error(run_here("distance", *args, capsys=capsys), 2)
        assert "use -- before paths starting with '-', or ./-x.npz" in line, line
    for args in (["--", "-x.npz", "b.npz"], ["./-x.npz", "b.npz"]):
        result = run_here("distance", "--json", *args, capsys=capsys)
        assert result.returncode == 0, result.stderr
    # Options and negative numbers get no hint.
    plain = one_line_error(run_here("distance", "b.npz", capsys=capsys), 2)
    assert "paths starting with" not in plain


@pytest.mark.parametrize("command", ["matrix", "distance"])
def test_a_closed_output_pipe_ends_quietly(tmp_path: Path, command: str) -> None:
    import os

    root = tiny_topo(tmp_path / "topo")
    if command == "matrix":
        words = ["matrix", "--topo-root", str(root), "--epoch", "init"]
    else:
        words = ["distance", str(root / "net0" / "init"), str(root / "net1" / "init")]
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -1` does once it has its line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "nnstd.cli", *words],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=FAULT_TIMEOUT,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1 and result.stderr == "", result.stderr
