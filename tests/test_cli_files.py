"""`nnstd convergence`, `matrix` and `cluster` on checkpoint files (.pt, .safetensors, .npz),
folders and globs, with `--tensors` as `load_network`'s `layers=` (issue 20, item 6)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp
from nnstd.analysis import consecutive_distances
from oracle import scipy_distance

WIDTHS = (14, 10, 10, 4)
SNAPSHOTS = 12  # enough for names epoch_2 and epoch_10 (natural and text order differ)


def run_masks(seed: int) -> list[list[np.ndarray]]:
    """A run's masks per snapshot, (neurons, inputs) as PyTorch stores them; each snapshot
    moves a few connections of the one before."""
    rng = np.random.default_rng(seed)
    masks = [(rng.random((n_out, n_in)) < 0.3) for n_in, n_out in itertools.pairwise(WIDTHS)]
    run = []
    for _ in range(SNAPSHOTS):
        masks = [m ^ (rng.random(m.shape) < 0.08) for m in masks]
        run.append([m.astype(np.float32) for m in masks])
    return run


def save_pt(folder: Path, run: list[list[np.ndarray]], extra: bool = False) -> list[Path]:
    """``epoch_<e>.pt`` state dicts of masked weights (``net.<2k>.weight`` and its mask); with
    ``extra``, a 2-D ``head.weight`` after them that ``--tensors`` leaves out. Skips the test,
    saying why, where torch is not installed (CI's wheel venv)."""
    torch = pytest.importorskip("torch", reason="writing .pt checkpoints needs torch")

    folder.mkdir(parents=True)
    paths = []
    for e, masks in enumerate(run):
        state = {}
        for k, m in enumerate(masks):
            weight = np.where(m > 0, np.random.default_rng(e).standard_normal(m.shape), 0.0)
            state[f"net.{2 * k}.weight"] = torch.tensor(weight, dtype=torch.float32)
            state[f"net.{2 * k}.weight_mask"] = torch.tensor(m)
        if extra:
            state["head.weight"] = torch.ones(3, WIDTHS[-1])
        paths.append(folder / f"epoch_{e}.pt")
        torch.save(state, paths[-1])
    return paths


def oracle_layers(masks: list[np.ndarray]) -> list[np.ndarray]:
    """The masks as (inputs, neurons), the oracle's orientation."""
    return [m.T for m in masks]


def run_cli(capsys: pytest.CaptureFixture[str], *words: object) -> tuple[int, str, str]:
    from nnstd.cli import main

    capsys.readouterr()
    code = main([str(w) for w in words])
    out, err = capsys.readouterr()
    return code, out, err


def test_convergence_on_pt_checkpoints_equals_the_oracle_in_natural_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_masks(1)
    paths = save_pt(tmp_path / "run", run)
    shell_order = sorted(str(p) for p in paths)  # as a shell expands epoch_*: 0, 1, 10, 11, 2
    assert shell_order[2].endswith("epoch_10.pt")
    code, out, err = run_cli(capsys, "convergence", *shell_order, "--json", "--solver", "paper")
    assert code == 0, err
    got = json.loads(out)
    assert got["snapshots"] == [f"epoch_{e}" for e in range(SNAPSHOTS)]
    assert got["networks"] == ["run"]
    values = np.array(got["consecutive"])
    assert values.shape == (1, SNAPSHOTS - 1)
    for i in range(SNAPSHOTS - 1):  # the later snapshot as A
        expected, _ = scipy_distance(oracle_layers(run[i + 1]), oracle_layers(run[i]))
        assert values[0, i] == pytest.approx(expected[0], abs=1e-12)
    # The same values from a quoted glob, one thread, and --layer 2 --cumulative as a mean.
    glob = str(tmp_path / "run" / "epoch_*.pt")
    code, out, err = run_cli(
        capsys, "convergence", glob, "--json", "--threads", "1", "--layer", "2", "--cumulative"
    )
    assert code == 0, err
    cumulative = np.array(json.loads(out)["consecutive"])
    nets = [nnstd.load_network(p) for p in paths]
    for i in range(SNAPSHOTS - 1):
        d = nnstd.distance(nets[i + 1], nets[i])
        assert cumulative[0, i] == pytest.approx(d.layers.mean(), abs=1e-12)


def test_matrix_of_safetensors_and_npz_files_equals_pairwise_and_scipy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.numpy import save_file

    masks = [run_masks(seed)[-1] for seed in range(4)]
    files = []
    for k, layers in enumerate(masks):  # two of each format, named by stem
        if k % 2:
            files.append(tmp_path / f"m{k}.safetensors")
            save_file({f"l{j}.weight": w for j, w in enumerate(layers)}, str(files[-1]))
        else:
            files.append(tmp_path / f"m{k}.npz")
            np.savez(files[-1], **{f"l{j}": w.T for j, w in enumerate(layers)})
    save = tmp_path / "m.npy"
    code, _, err = run_cli(capsys, "matrix", *files, "--save", save, "--solver", "paper")
    assert code == 0, err
    got = np.load(save)
    expected = nnstd.pairwise([nnstd.load_network(f) for f in files], solver="paper")[:, :, 0]
    np.testing.assert_array_equal(got, expected)
    for i in range(4):
        for j in range(i):  # the higher index as A
            d, _ = scipy_distance(oracle_layers(masks[i]), oracle_layers(masks[j]))
            assert got[i, j] == pytest.approx(d[0], abs=1e-12)
    stored = tmp_path / "stored.npy"
    store = ["--store", tmp_path / "store", "--save", stored, "--solver", "paper"]
    code, _, err = run_cli(capsys, "matrix", *files, *store)
    assert code == 0, err
    np.testing.assert_array_equal(np.load(stored), got)
    code, out, err = run_cli(capsys, "matrix", *files, "--layer", "1")
    assert code == 0, err
    assert out.splitlines()[1].split() == ["m0", "m1", "m2", "m3"]
    code, _, err = run_cli(capsys, "cluster", *files, "--out", tmp_path / "c.png", "-q")
    assert code == 0, err
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_tensors_choose_the_layers_as_load_network_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = save_pt(tmp_path / "run", run_masks(2)[:3], extra=True)
    pattern = r"net\.[0-9]+\.weight_mask"
    code, out, err = run_cli(capsys, "convergence", *paths, "--tensors", pattern, "--json")
    assert code == 0, err
    nets = [nnstd.load_network(p, layers=[pattern]) for p in paths]
    assert nets[0].depth == len(WIDTHS) - 1
    expected = [nnstd.distance(nets[i + 1], nets[i]).layers[0] for i in range(2)]
    assert json.loads(out)["consecutive"] == [expected]
    code, out, err = run_cli(capsys, "distance", paths[1], paths[0], "--tensors", pattern, "--json")
    assert code == 0, err
    assert json.loads(out)["distances"] == nnstd.distance(nets[1], nets[0]).layers.tolist()


def test_consecutive_distances_read_paths_on_any_threads_with_progress(tmp_path: Path) -> None:
    runs = [run_masks(seed)[:4] for seed in (3, 4)]
    folders = []
    for r, run in enumerate(runs):  # the paper's layout: weight_l<k>.npz with a bias row
        folders.append([])
        for e, layers in enumerate(run):
            folder = tmp_path / f"w{r}" / f"epoch_{e:03d}"
            folder.mkdir(parents=True)
            for k, m in enumerate(oracle_layers(layers)):
                with_bias = np.vstack([m, np.ones((1, m.shape[1]))])
                sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(with_bias))
            folders[-1].append(folder)
    seen: list[tuple[int, int]] = []
    parallel = consecutive_distances(folders, progress=lambda d, t: seen.append((d, t)))
    one = consecutive_distances(folders, threads=1)
    np.testing.assert_array_equal(parallel, one)
    assert parallel.shape == (2, 3, len(WIDTHS) - 1)
    assert seen[-1] == (6, 6)
    for r in range(len(runs)):
        for i in range(3):
            d = nnstd.distance(folders[r][i + 1], folders[r][i])
            np.testing.assert_array_equal(parallel[r, i], d.layers)


@pytest.mark.parametrize(
    ("words", "code", "message"),
    [
        (["convergence", "{run}/epoch_*.pt", "--epoch", "3"], 2, "two ways to choose"),
        (["convergence", "{run}/none_*.pt"], 1, "no file or folder matches"),
        (["matrix", "{run}/epoch_0.pt", "{run}/./epoch_0.pt"], 1, "named twice"),
        (["matrix", "{tmp}", "--tensors", "x"], 2, "--tensors picks tensors"),
        (["convergence", "{run}/epoch_0.pt"], 1, "at least two checkpoints"),
        (["matrix", "{run}/epoch_*.pt", "--tensors", "nothing"], 1, "no tensor matches"),
    ],
)
def test_file_arguments_refused_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    words: list[str],
    code: int,
    message: str,
) -> None:
    save_pt(tmp_path / "run", run_masks(5)[:2])
    filled = [w.format(run=tmp_path / "run", tmp=tmp_path) for w in words]
    got, _, err = run_cli(capsys, *filled)
    assert got == code and message in err and len(err.strip().splitlines()) == 1, err


def test_keep_order_takes_the_files_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = save_pt(tmp_path / "run", run_masks(6)[:3])
    reversed_paths = paths[::-1]
    code, out, err = run_cli(capsys, "convergence", *reversed_paths, "--keep-order", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["snapshots"] == ["epoch_2", "epoch_1", "epoch_0"]
    nets = [nnstd.load_network(p) for p in reversed_paths]
    assert got["consecutive"][0][0] == nnstd.distance(nets[1], nets[0]).layers[0]
