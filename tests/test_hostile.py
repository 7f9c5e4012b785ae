"""Hostile and unusual inputs, each loaded in a child process with a memory limit.

A segmentation fault, an abort or a hang in a child shows as a failed test (with the case that
caused it), not as a crashed test run. Every refusal must be a one-line `TopologyError`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nnstd
import numpy as np
import pytest
import scipy.sparse as sp

MEMORY_LIMIT = 3 << 30  # address space of a child: far below what the hostile files declare
TORCH_MEMORY_LIMIT = 5 << 30  # importing torch maps about 3 GB of libraries
CHILD_TIMEOUT = 120

# Runs the cases given as JSON on stdin and prints one JSON line per case; a crash stops it
# after the "start" line of the case that caused it.
CHILD = r"""
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np, scipy.sparse as sp, nnstd

def peak_kb():
    # VmHWM: the peak of this process's own memory. ru_maxrss is not: it survives exec, so it
    # starts at the peak of the pytest process that spawned this child.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def layer_from(spec):
    fmt, shape, parts = spec["format"], tuple(spec["shape"]), spec["parts"]
    arrays = {k: np.load(v) for k, v in parts.items()}
    if fmt == "coo":
        m = sp.coo_array((np.ones(1), ([0], [0])), shape=(1, 1))
        m.coords, m.data = (arrays["row"], arrays["col"]), arrays["data"]
    else:
        cls = sp.csr_array if fmt == "csr" else sp.csc_array
        m = cls((np.ones(1), [0], [0, 1]), shape=(1, 1))
        m.indices, m.indptr, m.data = arrays["indices"], arrays["indptr"], arrays["data"]
    m._shape = shape  # as hostile as a hand-made matrix can be: nothing checked yet
    return m

for case in json.load(sys.stdin):
    print(json.dumps({"start": case["label"]}), flush=True)
    try:
        if "path" in case:
            net = nnstd.load_network(case["path"], **case.get("kwargs", {}))
        else:
            net = nnstd.Network([layer_from(case["layer"])], **case.get("kwargs", {}))
        out = {"outcome": "loaded", "shapes": net.shapes, "connections": net.connections}
        if case.get("pattern"):
            out["indices"] = [net.layer(0).indices.tolist(), net.layer(0).indptr.tolist()]
    except nnstd.TopologyError as exc:
        out = {"outcome": "refused", "message": str(exc)}
    except BaseException as exc:
        out = {"outcome": "other", "message": f"{type(exc).__name__}: {exc}"}
    out["label"] = case["label"]
    out["peak_kb"] = peak_kb()
    print(json.dumps(out), flush=True)
"""


def run_cases(cases: list[dict[str, Any]], limit: int = MEMORY_LIMIT) -> dict[str, dict[str, Any]]:
    """Runs the cases in one child; fails naming the case if the child dies."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(limit)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    outcomes = {line["label"]: line for line in lines if "outcome" in line}
    started = [line["start"] for line in lines if "start" in line]
    assert result.returncode == 0, (
        f"child died with status {result.returncode} in case {started[-1] if started else None}:"
        f" {result.stderr[-2000:]}"
    )
    assert len(outcomes) == len(cases)
    return outcomes


def assert_refused(outcome: dict[str, Any], match: str) -> None:
    import re

    assert outcome["outcome"] == "refused", outcome
    assert "\n" not in outcome["message"] and "\x1b" not in outcome["message"], outcome
    assert re.search(match, outcome["message"]), outcome


# Building hostile files without allocating what they declare ---------------------------------


def npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return path


def sparse_npz(path: Path, fmt: str, shape: object, **parts: object) -> Path:
    """A ``scipy.sparse.save_npz``-style file holding exactly the given arrays."""
    np.savez(path, format=np.array(fmt.encode()), shape=np.asarray(shape), **parts)  # type: ignore[arg-type]
    return path


def paper_like(seed: int = 0) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    return sp.csr_array(rng.random((9, 6)) * (rng.random((9, 6)) < 0.4))


def hostile_sparse_files(root: Path) -> Iterator[tuple[str, Path, str]]:
    """(label, file, expected message) of crafted scipy.sparse files."""
    ind = np.array([0, 2, 1, 3], dtype=np.int32)
    ptr = np.array([0, 2, 4], dtype=np.int32)
    data = np.ones(4)
    crafted = {
        "csc negative row": ("csc", (4, 2), [0, -2, 1, 3], ptr, "out of range"),
        "csc row out of range": ("csc", (4, 2), [0, 2, 1, 4000], ptr, "out of range"),
        "csc indptr past data": ("csc", (4, 2), ind, [0, 2, 90], "past the 4 entries"),
        "csc indptr decreasing": ("csc", (4, 2), ind, [0, 3, 2, 4][:3], "never decrease"),
        "csr indptr not from 0": ("csr", (2, 4), ind, [1, 2, 4], "start at 0"),
        "csr float indices": ("csr", (2, 4), ind.astype(float), ptr, "integers"),
        "csr short indptr": ("csr", (3, 4), ind, ptr, "expected 4"),
        "csr 3-D shape": ("csr", (2, 4, 1), ind, ptr, "2-D shape"),
        "csr negative shape": ("csr", (-2, 4), ind, ptr, "negative shape"),
        "csr float shape": ("csr", np.array([2.0, 4.0]), ind, ptr, "shape must be"),
        "csr 2e9 neurons": ("csr", (5, 2 * 10**9), ind, ptr, "memory budget"),
        "csr 2**40 inputs": ("csr", (2**40, 4), ind, ptr, "limit of 4294967295"),
    }
    for label, (fmt, shape, indices, indptr, message) in crafted.items():
        file = sparse_npz(
            root / f"{label}.npz",
            fmt,
            shape,
            indices=np.asarray(indices),
            indptr=np.asarray(indptr),
            data=data,
        )
        yield label, file, message
    coo = {
        "coo row out of range": ([0, 7], [0, 1], "out of range"),
        "coo negative col": ([0, 1], [0, -1], "out of range"),
        "coo lengths differ": ([0, 1, 1], [0, 1], "entries, expected 2"),
    }
    for label, (row, col, message) in coo.items():
        file = sparse_npz(
            root / f"{label}.npz",
            "coo",
            (3, 3),
            row=np.array(row),
            col=np.array(col),
            data=np.ones(2),
        )
        yield label, file, message
    weird = {
        "bsr format": ("bsr", "unsupported sparse format"),
        "string data": ("csr", "numeric"),
        "datetime data": ("csr", "numeric"),
        "void data": ("csr", "numeric"),
    }
    values = {
        "string data": np.array(["a", "b", "c", "d"]),
        "datetime data": np.arange(4).astype("datetime64[s]"),
        "void data": np.zeros(4, dtype="V4"),
    }
    for label, (fmt, message) in weird.items():
        file = sparse_npz(
            root / f"{label}.npz",
            fmt,
            (2, 4),
            indices=ind,
            indptr=ptr,
            data=values.get(label, data),
        )
        yield label, file, message
    # Declared sizes far beyond the budget, in files of a few hundred bytes.
    huge = {"format": npy_bytes(np.array(b"coo")), "shape": npy_bytes(np.array([10**6, 10**6]))}
    for part in ("row", "col", "data"):
        huge[part] = npy_header((3 * 10**8,), "<i8")  # 7.2 GB declared, no data
    yield "coo declaring 3e8 entries", write_zip(root / "coo3e8.npz", huge), "truncated|budget"
    dense = {"arr_0": npy_header((46_000, 46_000), "<f8")}
    yield "46k x 46k dense", write_zip(root / "dense46k.npz", dense), "memory budget"
    inflating = {"arr_0": npy_header((2**62,), "<f8")}
    yield "2**62 declared", write_zip(root / "inflate.npz", inflating), "memory budget"


def test_hostile_sparse_and_archive_files_are_refused_in_one_line(tmp_path: Path) -> None:
    cases = [
        {"label": label, "path": str(file)} for label, file, _ in hostile_sparse_files(tmp_path)
    ]
    expected = {label: message for label, _, message in hostile_sparse_files(tmp_path)}
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, np.array([{"a": 1}], dtype=object))
    renamed = tmp_path / "renamed.npz"
    np.save(tmp_path / "one.npy", np.eye(3))
    (tmp_path / "one.npy").rename(renamed)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"just text, not an archive")
    pickle_file = tmp_path / "pickle.npz"
    pickle_file.write_bytes(b"\x80\x04\x95 a pickle")
    extra = {
        "object array": (pickled, "pickled \\(object\\)"),
        "npy renamed npz": (renamed, "single \\.npy array"),
        "not a zip": (garbage, "not a zip file"),
        "pickle named npz": (pickle_file, "pickle, which nnstd never loads"),
    }
    cases += [{"label": label, "path": str(file)} for label, (file, _) in extra.items()]
    expected.update({label: message for label, (_, message) in extra.items()})
    outcomes = run_cases(cases)
    for label, message in expected.items():
        assert_refused(outcomes[label], message)
    big = outcomes["46k x 46k dense"]["peak_kb"]
    assert big < 1 << 20  # refused before allocating: the child stayed under 1 GiB


def test_real_inflation_is_checked_against_the_budget(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "ones.npz", np.ones((3000, 3000), dtype=bool))  # 9 MB
    assert (tmp_path / "ones.npz").stat().st_size < 100_000
    with pytest.raises(nnstd.TopologyError, match="more than the memory budget of 1,000,000"):
        nnstd.load_network(tmp_path / "ones.npz", memory_budget=10**6)
    with pytest.warns(UserWarning, match="100% dense"):  # and said once
        assert nnstd.load_network(tmp_path / "ones.npz").connections == [9_000_000]


def test_paper_folders_refuse_odd_names_at_once(tmp_path: Path) -> None:
    layer = paper_like()
    folders = {}
    for label, names in {
        "huge number": ["weight_l0.npz", "weight_l99999999999999999999.npz"],
        "duplicate": ["weight_l0.npz", "weight_l1.npz", "weight_l01.npz"],
        "non-ascii digit": ["weight_l\u0663.npz"],
    }.items():
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir()
        for name in names:
            sp.save_npz(folder / name, layer)
        folders[label] = folder
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "weight_l0.npz")
    os.mkfifo(tmp_path / "fifo.npz")
    cases = [{"label": label, "path": str(folder)} for label, folder in folders.items()]
    cases += [
        {"label": "fifo in folder", "path": str(fifo)},
        {"label": "fifo file", "path": str(tmp_path / "fifo.npz")},
    ]
    outcomes = run_cases(cases)
    assert_refused(outcomes["huge number"], "weight_l1.npz is missing")
    assert_refused(outcomes["duplicate"], "two files for layer 1: weight_l01.npz and weight_l1.npz")
    assert_refused(outcomes["non-ascii digit"], "no weight_l0.npz")
    assert_refused(outcomes["fifo in folder"], "not a regular file")
    assert_refused(outcomes["fifo file"], "not a regular file")


def test_in_memory_matrices_are_checked_before_scipy_indexes_them(tmp_path: Path) -> None:
    def layer(label: str, fmt: str, shape: tuple[int, int], **parts: Any) -> dict[str, Any]:
        files = {}
        for name, values in parts.items():
            files[name] = str(tmp_path / f"{label}-{name}.npy")
            np.save(files[name], np.asarray(values))
        return {"label": label, "layer": {"format": fmt, "shape": shape, "parts": files}}

    ones = np.ones(2)
    cases = [
        layer("index 10**6", "csr", (2, 3), indices=[0, 10**6], indptr=[0, 1, 2], data=ones),
        layer("negative index", "csc", (3, 2), indices=[-1, 0], indptr=[0, 1, 2], data=ones),
        layer("indptr past data", "csr", (2, 3), indices=[0, 1], indptr=[0, 1, 9], data=ones),
        layer("indptr decreasing", "csr", (2, 3), indices=[0, 1], indptr=[0, 2, 1], data=ones),
        layer("coo out of range", "coo", (2, 3), row=[0, 2], col=[0, 0], data=ones),
        layer("coo 2e9 wide", "coo", (2, 2 * 10**9), row=[0, 1], col=[0, 0], data=ones),
        layer("duplicates cancel", "coo", (2, 2), row=[0, 0], col=[1, 1], data=[1.0, -1.0]),
    ]
    outcomes = run_cases(cases)
    for label in ("index 10**6", "negative index", "coo out of range"):
        assert_refused(outcomes[label], "out of range")
    assert_refused(outcomes["indptr past data"], "past the 2 entries")
    assert_refused(outcomes["indptr decreasing"], "never decrease")
    assert_refused(outcomes["coo 2e9 wide"], "memory budget")
    assert outcomes["duplicates cancel"]["connections"] == [0]  # summed as SciPy does
    no_shape = sp.csr_array((np.ones(1), np.array([10**6]), np.array([0, 1])))
    assert nnstd.Network([no_shape]).shapes == [(1, 10**6 + 1)]  # inferred shape: in range


# Structured fuzzing: mutate the index arrays and declared shapes of a valid file. SciPy's full
# check is the oracle: what it rejects must be refused, what it accepts must load as SciPy reads
# it (never a silently different topology).

INTERESTING = [
    -(2**63),
    -(2**31),
    -2,
    -1,
    0,
    1,
    2,
    3,
    5,
    6,
    8,
    9,
    10,
    2**31 - 1,
    2**31,
    2**32,
    2**62,
]


def mutations(rng: np.random.Generator, count: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    base = paper_like(1)
    coo = base.tocoo()
    for n in range(count):
        fmt = ["csr", "csc", "coo"][n % 3]
        m = base if fmt == "csr" else base.tocsc() if fmt == "csc" else coo
        parts: dict[str, np.ndarray] = (
            {"row": coo.row.astype(np.int64), "col": coo.col.astype(np.int64)}
            if fmt == "coo"
            else {"indices": m.indices.astype(np.int64), "indptr": m.indptr.astype(np.int64)}
        )
        parts["data"] = m.data.copy()
        parts["shape"] = np.array(m.shape, dtype=np.int64)
        name = str(rng.choice(sorted(parts)))
        array = parts[name]
        how = rng.integers(5)
        if how == 0 and len(array):  # one value set to an interesting number
            array = array.astype(np.int64) if name != "data" else array
            array[rng.integers(len(array))] = rng.choice(INTERESTING) if name != "data" else 0
        elif how == 1 and len(array) > 1:  # two values swapped
            i, j = rng.choice(len(array), 2, replace=False)
            array[[i, j]] = array[[j, i]]
        elif how == 2:  # one value off by a little
            array = array.astype(np.int64) if name != "data" else array
            array[rng.integers(len(array))] += rng.choice([-1, 1])
        elif how == 3:  # shorter or longer
            array = array[:-1] if rng.random() < 0.5 else np.append(array, array[-1:])
        else:  # another dtype
            array = array.astype(rng.choice([np.int8, np.uint64, np.float64, np.int32]))
        parts[name] = array
        yield f"{fmt}-{n}-{name}-{how}", {"format": np.array(fmt.encode()), **parts}


def scipy_reading(parts: dict[str, np.ndarray]) -> tuple[list[int], list[int]] | None:
    """How SciPy reads the parts after its full check (indices, indptr of the canonical CSC
    pattern), or None if it rejects them."""
    fmt = parts["format"].item().decode()
    try:
        shape = tuple(int(n) for n in parts["shape"])
        if len(shape) != 2 or min(shape) < 0 or max(shape) > 2**31:
            return None
        if not all(
            np.issubdtype(parts[k].dtype, np.integer) for k in parts if k not in ("format", "data")
        ):
            return None
        if fmt == "coo":
            if len(parts["row"]) != len(parts["col"]) or len(parts["row"]) != len(parts["data"]):
                return None
            r, c = parts["row"], parts["col"]
            if len(r) and (
                r.min() < 0 or c.min() < 0 or r.max() >= shape[0] or c.max() >= shape[1]
            ):
                return None
            m = sp.coo_array((parts["data"], (r, c)), shape=shape).tocsc()
        else:
            ptr = parts["indptr"]
            if len(ptr) == 0 or ptr[0] != 0 or np.any(ptr[1:] < ptr[:-1]):
                return None  # SciPy's check takes differences, which can overflow and pass
            cls = sp.csr_array if fmt == "csr" else sp.csc_array
            m = cls((parts["data"], parts["indices"], parts["indptr"]), shape=shape)
            m.check_format(full_check=True)
            m = m.tocsc()
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        return m.indices.tolist(), m.indptr.tolist()
    except Exception:  # SciPy's own refusals
        return None


def test_structured_fuzzing_matches_scipys_full_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(20261126)
    cases, oracle = [], {}
    for label, parts in mutations(rng, 600):
        file = tmp_path / f"{label}.npz"
        np.savez(file, **parts)
        cases.append({"label": label, "path": str(file), "pattern": True})
        oracle[label] = scipy_reading(parts)
    outcomes = run_cases(cases)
    loaded = refused = 0
    for label, expected in oracle.items():
        outcome = outcomes[label]
        assert outcome["outcome"] in ("loaded", "refused"), outcome
        if outcome["outcome"] == "refused":
            refused += 1
            assert "\n" not in outcome["message"]
        else:
            loaded += 1
            assert expected is not None, f"{label}: loaded what SciPy's full check rejects"
            assert outcome["indices"] == list(expected), f"{label}: loaded a different topology"
    assert loaded > 50 and refused > 200  # both kinds of mutation really happened


# Half precision, bfloat16 and sparse tensors load; what has no meaning is refused ------------


def test_half_precision_npz_and_safetensors_load(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    w = (rng.random((6, 4)) * (rng.random((6, 4)) < 0.5)).astype(np.float16)
    np.savez(tmp_path / "half.npz", w)
    assert nnstd.load_network(tmp_path / "half.npz").connections == [int(np.count_nonzero(w))]
    save_file({"fc.weight": np.ascontiguousarray(w.T)}, str(tmp_path / "half.safetensors"))
    half = nnstd.load_network(tmp_path / "half.safetensors")
    assert nnstd.distance(half, nnstd.Network([w.astype(np.float64)])).value == 0.0
    bf16 = (w.astype(np.float32).T.view(np.uint32) >> 16).astype(np.uint16)  # exact for these
    header = json.dumps({"fc.weight": {"dtype": "BF16", "shape": [4, 6], "data_offsets": [0, 48]}})
    raw = len(header).to_bytes(8, "little") + header.encode() + bf16.tobytes()
    (tmp_path / "bf16.safetensors").write_bytes(raw)
    bf = nnstd.load_network(tmp_path / "bf16.safetensors")
    assert nnstd.distance(bf, half).value == 0.0


def test_hostile_safetensors_headers_are_refused(tmp_path: Path) -> None:
    def write(name: str, header: object, data: bytes = b"") -> Path:
        text = json.dumps(header).encode()
        (tmp_path / name).write_bytes(len(text).to_bytes(8, "little") + text + data)
        return tmp_path / name

    cases = {
        "huge shape": (
            write(
                "a.safetensors",
                {"w": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 4 * 10**18]}},
            ),
            "do not fit",
        ),
        "offsets past end": (
            write(
                "b.safetensors",
                {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
                b"\0" * 8,
            ),
            "do not fit",
        ),
        "string dtype": (
            write(
                "c.safetensors",
                {"w": {"dtype": "STR", "shape": [1], "data_offsets": [0, 1]}},
                b"\0",
            ),
            "unsupported dtype",
        ),
        "not an object": (write("d.safetensors", [1, 2]), "not a JSON object"),
        "negative shape": (
            write("e.safetensors", {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}),
            "malformed",
        ),
    }
    for label, (file, message) in cases.items():
        with pytest.raises(nnstd.TopologyError, match=message) as info:
            nnstd.load_network(file)
        assert "\n" not in str(info.value), label


TORCH_CHILD = r"""
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np, torch, nnstd
root = sys.argv[2]
rng = np.random.default_rng(5)
w = torch.tensor(rng.random((4, 6)) * (rng.random((4, 6)) < 0.5), dtype=torch.float32)
reference = nnstd.Network.from_torch({"fc.weight": w.numpy()})
results = {}
def attempt(label, state, load=True):
    try:
        if load:
            torch.save(state, f"{root}/{label}.pt")
            net = nnstd.load_network(f"{root}/{label}.pt")
        else:
            net = nnstd.Network.from_torch(state)
        results[label] = ["loaded", nnstd.distance(net, reference).value]
    except nnstd.TopologyError as exc:
        results[label] = ["refused", str(exc)]
    except BaseException as exc:
        results[label] = ["other", f"{type(exc).__name__}: {exc}"]
attempt("float16", {"fc.weight": w.half()})
attempt("bfloat16", {"fc.weight": w.bfloat16()})
attempt("sparse coo", {"fc.weight": w.to_sparse_coo()})
attempt("sparse csr", {"fc.weight": w.to_sparse_csr()})
attempt("sparse csc", {"fc.weight": w.to_sparse_csc()})
attempt("module sparse coo", {"fc.weight": w.to_sparse_coo()}, load=False)
attempt("quantized", {"fc.weight": torch.quantize_per_tensor(w, 0.1, 0, torch.qint8)}, load=False)
attempt("meta", {"fc.weight": torch.empty(4, 6, device="meta")}, load=False)
bad = torch.sparse_coo_tensor(torch.tensor([[0, 3], [0, 9]]), torch.ones(2), (4, 6),
                              check_invariants=False)
attempt("coo out of range", {"fc.weight": bad}, load=False)
class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))
attempt("evil pickle", {"fc.weight": Evil()})
print(json.dumps(results))
"""


def test_torch_dtypes_and_sparse_tensors(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = subprocess.run(
        [sys.executable, "-c", TORCH_CHILD, str(TORCH_MEMORY_LIMIT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(result.stdout.splitlines()[-1])
    for label in (
        "float16",
        "bfloat16",
        "sparse coo",
        "sparse csr",
        "sparse csc",
        "module sparse coo",
    ):
        assert results[label] == ["loaded", 0.0], (label, results[label])
    expected = {
        "quantized": "quantized tensor.*dequantize",
        "meta": "meta tensor",
        "coo out of range": "out of range",
        "evil pickle": "refused to unpickle",
    }
    import re

    for label, message in expected.items():
        outcome, text = results[label]
        assert outcome == "refused" and re.search(message, text), (label, results[label])
        assert "\n" not in text and "\x1b" not in text


# The paper's lone layer file, the arguments, and fork ----------------------------------------


def test_a_zip_end_record_zipfile_cannot_check_is_a_topology_error(tmp_path: Path) -> None:
    """zipfile.is_zipfile raises (instead of answering False) on a zip64 locator declaring
    several disks; hypothesis found it with one flipped byte of a PyTorch checkpoint."""
    import struct

    import nnstd

    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, 0, 2)  # zip64 locator: 2 disks
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0, 0, 0, 0, 0)
    path = tmp_path / "spanning.pt"
    path.write_bytes(locator + end)
    with pytest.raises(nnstd.TopologyError, match="not a readable PyTorch checkpoint"):
        nnstd.load_network(path)


def test_lone_paper_layer_file_gives_the_folders_value(bundled_topo: Path) -> None:
    from oracle import paper_layers, scipy_distance

    a, b = bundled_topo / "w0" / "epoch_000", bundled_topo / "w1" / "epoch_000"
    folder_value = nnstd.distance(a, b).layers[0]
    expected, _ = scipy_distance(paper_layers(str(a))[:1], paper_layers(str(b))[:1])
    assert folder_value == pytest.approx(expected[0], abs=1e-12)
    assert nnstd.distance(a / "weight_l0.npz", b / "weight_l0.npz").value == folder_value
    with pytest.raises(nnstd.TopologyError, match=f"pass the folder {a}"):
        nnstd.load_network(a / "weight_l1.npz")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnstd.cli",
            "distance",
            str(a / "weight_l0.npz"),
            str(b / "weight_l0.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert cli.returncode == 0 and f"{folder_value:.6f}" in cli.stdout, cli.stderr


@pytest.mark.parametrize("bad", [-1, 0.5, float("nan"), float("inf"), 2**64, "1e9", True])
def test_memory_budget_refusals_are_one_value_error(bad: object) -> None:
    net = nnstd.Network([np.eye(3)])
    for call in (
        lambda: nnstd.distance(net, net, memory_budget=bad),  # type: ignore[arg-type]
        lambda: nnstd.pairwise([net, net], memory_budget=bad),  # type: ignore[arg-type]
        lambda: nnstd.Network([np.eye(3)], memory_budget=bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="memory_budget must be") as info:
            call()
        assert not isinstance(info.value, nnstd.TopologyError) and "\n" not in str(info.value)


def test_memory_budget_accepts_whole_numbers_of_bytes() -> None:
    net = nnstd.Network([np.eye(3)])
    for good in (10**9, 1e9, np.int64(2**40), 2**64 - 1):
        assert nnstd.distance(net, net, memory_budget=good).value == 0.0  # type: ignore[arg-type]
    with pytest.raises(nnstd.TopologyError, match="over the memory budget of 0 bytes"):
        nnstd.distance(net, net, memory_budget=0)  # nothing fits


@pytest.mark.parametrize("bad", [-1, 257, 2**63, 2**64, 2.0, True, "4"])
def test_thread_counts_are_bounded(bad: object) -> None:
    net = nnstd.Network([np.eye(3)])
    with pytest.raises(ValueError, match="threads must be a whole number from 1 to 256"):
        nnstd.pairwise([net, net], threads=bad)  # type: ignore[arg-type]
    assert nnstd.pairwise([net, net], threads=np.int64(3))[0, 1, 0] == 0.0
    for binding in (  # the binding reads threads by the same rule
        lambda: nnstd._core.pairwise([net._topology], threads=bad),
        lambda: nnstd._core.pairs([net._topology], np.zeros((1, 2), np.int64), threads=bad),
    ):
        with pytest.raises(ValueError, match="threads must be a whole number from 1 to 256"):
            binding()


FORK_CHILD = r"""
import multiprocessing, sys, warnings
import numpy as np, nnstd
warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process: the point
rng = np.random.default_rng(0)
nets = [nnstd.Network([rng.random((30, 20)) < 0.3, rng.random((20, 10)) < 0.3]) for _ in range(5)]

def work(threads):
    return nnstd.pairwise(nets, threads=threads), nnstd.distance(nets[0], nets[1]).layers

if __name__ == "__main__":
    parent = work(None)  # starts the global thread pool in the parent
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for threads in (None, 1, 3):
            child = pool.apply_async(work, (threads,)).get(timeout=60)
            assert all(np.array_equal(c, p) for c, p in zip(child, parent)), threads
    print("fork ok")
"""


def test_work_after_fork_gives_the_same_result(tmp_path: Path) -> None:
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=CHILD_TIMEOUT
    )
    assert result.returncode == 0 and "fork ok" in result.stdout, result.stderr[-2000:]
