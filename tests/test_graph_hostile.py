"""Hostile input on the graph routes (issue 20): each case found by a sweep of spec files,
state dicts and modules gets a `nnstd.TopologyError` naming the file or model, the group or
tensor and the problem, never a panic, an abort, a hang, a MemoryError from a declared size or
a silently different number. Cases that could abort or hang run in a child with a time limit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nnstd
import nnstd.torch
import numpy as np
import pytest
from nnstd.torch import Spec

torch = pytest.importorskip("torch")

# A residual block with a head: the input stream x is read by up and head, written by down.
BLOCK: dict[str, Any] = {
    "groups": [
        {
            "name": "x",
            "size": 4,
            "kind": "input",
            "writers": ["down.weight"],
            "readers": ["up.weight", "head.weight"],
            "followers": ["down.bias"],
        },
        {
            "name": "up",
            "size": 8,
            "writers": ["up.weight"],
            "readers": ["down.weight"],
            "followers": ["up.bias"],
        },
        {
            "name": "head",
            "size": 3,
            "kind": "output",
            "writers": ["head.weight"],
            "followers": ["head.bias"],
        },
    ]
}


def block_state(seed: int = 0) -> dict[str, Any]:
    """The block's state dict with random 50%-sparse weights."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {"up": (8, 4), "down": (4, 8), "head": (3, 4)}
    state = {}
    for name, shape in shapes.items():
        weight = torch.randn(*shape, generator=generator, dtype=torch.float64)
        state[f"{name}.weight"] = weight * (torch.rand(*shape, generator=generator) < 0.5)
        state[f"{name}.bias"] = torch.zeros(shape[0], dtype=torch.float64)
    return state


def edited(group: str, **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BLOCK)
    next(g for g in spec["groups"] if g["name"] == group).update(changes)
    return spec


def write(tmp_path: Path, spec: Any) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (edited("up", size=True), "group 'up': 'size' must be a positive integer, got True"),
        (edited("up", heads=True), "group 'up': 'heads' must be a positive integer, got True"),
        (
            edited("up", writers=[{"tensor": "up.weight", "offset": False}]),
            "group 'up': offset must be",
        ),
        (
            edited("up", readers=[{"tensor": "down.weight", "block": True}]),
            "group 'up': offset must be",
        ),
        ({**BLOCK, "gropus": []}, "unknown keys ['gropus']"),
        (edited("up", followers=["up.bias", "up.bias"]), "up.bias: groups 'up' and 'up'"),
        (edited("head", followers=["head.bias", "up.bias"]), "up.bias: groups 'head' and 'up'"),
    ],
)
def test_spec_files_that_are_almost_right_are_refused(
    tmp_path: Path, spec: Any, message: str
) -> None:
    # Booleans are not sizes (JSON true would be read as 1 unit), a misspelt top-level key is
    # not ignored, and a follower holds one value per unit of one group.
    path = write(tmp_path, spec)
    with pytest.raises(nnstd.TopologyError, match=str(path)) as caught:
        Spec.load(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("kind", ["hidden", "output"])
def test_a_group_no_layer_writes_is_refused(tmp_path: Path, kind: str) -> None:
    # Its units would be matched arbitrarily, and the layers reading it compared through that.
    spec = copy.deepcopy(BLOCK)
    spec["groups"].insert(1, {"name": "ghost", "size": 2, "kind": kind})
    path = write(tmp_path, spec)
    with pytest.raises(nnstd.TopologyError, match=str(path)) as caught:
        Spec.load(path)
    assert "group 'ghost'" in str(caught.value) and "no layer writes" in str(caught.value)


def test_absurd_sizes_of_an_unwritten_group_are_refused_before_allocation(
    tmp_path: Path,
) -> None:
    # Such a group's size is checked against no tensor: it aborted the process (10**12), hung
    # (fixed outputs), or raised an internal error (2**63) or an OverflowError (2**64).
    for size in (10**12, 2**63, 2**64):
        spec = copy.deepcopy(BLOCK)
        spec["groups"].append({"name": "ghost", "size": size, "kind": "output"})
        write(tmp_path, spec).rename(tmp_path / f"{size}.json")
    code = f"""
        import nnstd, nnstd.torch, torch
        from nnstd.torch import Spec
        state = {{f"{{n}}.weight": torch.ones(*s) for n, s in
                  (("up", (8, 4)), ("down", (4, 8)), ("head", (3, 4)))}}
        state.update({{f"{{n}}.bias": torch.ones(s) for n, s in
                       (("up", 8), ("down", 4), ("head", 3))}})
        for size in (10**12, 2**63, 2**64):
            for outputs in ("free", "fixed"):
                try:
                    spec = Spec.load({str(tmp_path)!r} + f"/{{size}}.json")
                    net = nnstd.torch.to_network(state, spec=spec, outputs=outputs)
                    print("accepted", nnstd.distance(net, net, solver="auto").layers)
                except nnstd.TopologyError as exc:
                    print("refused", exc)
    """
    child = run_child(code)
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    assert len(lines) == 6, child.stdout
    assert all(line.startswith("refused") and "'ghost'" in line for line in lines), lines


def test_the_core_refuses_a_group_no_writer_touches() -> None:
    # The binding's own check, below the spec's: a group of 10**12 units no layer reads or
    # writes is refused before anything the size of the group is allocated.
    code = """
        import numpy as np
        from nnstd import _core
        layer = (3, 2, np.array([0, 1, 2], np.int64), np.array([0, 1], np.int64), 1)
        for ghost in ((10**12, "output", 1, None), (10**12, "input", 1, None)):
            groups = [(3, "input", 1, None), ghost, (2, "output", 1, None)]
            try:
                _core.Topology.graph(groups, [(2, [(0, 1)], layer)], True)
                print("accepted")
            except ValueError as exc:
                print("refused", type(exc).__name__, exc)
    """
    child = run_child(code)
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    assert lines and all(line.startswith("refused TopologyError") for line in lines), lines
    assert all("group 1" in line for line in lines), lines


def test_a_mask_of_another_shape_than_its_weight_is_refused() -> None:
    # torch's pruning stores weight_orig and weight_mask of one shape; a mask of another shape
    # was read through a reshape (accepted silently) or checked in place of the weight.
    for mask in (torch.ones(8, 4, 1), torch.ones(2, 16), torch.ones(8, 2)):
        for mask_first in (False, True):
            state = block_state()
            weight = state.pop("up.weight")
            pair = {"up.weight_mask": mask, "up.weight_orig": weight}
            state.update(pair if mask_first else dict(reversed(pair.items())))
            with pytest.raises(nnstd.TopologyError, match="^blk: ") as caught:
                nnstd.torch.to_network(state, spec=BLOCK, name="blk")
            message = str(caught.value)
            assert "up.weight_mask" in message and "up.weight_orig" in message, message


def test_a_value_that_is_not_a_tensor_is_not_a_tensor_of_the_model() -> None:
    # A list under a writer's name passed the shape checks, then raised a KeyError.
    state = block_state()
    state["up.weight"] = state["up.weight"].tolist()
    with pytest.raises(nnstd.TopologyError, match="^blk: .*up.weight, not a tensor"):
        nnstd.torch.to_network(state, spec=BLOCK, name="blk")


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_tensors_give_the_dense_tensors_numbers(layout: str) -> None:
    # They raised an IndexError; the oracle is the same weights stored dense.
    dense = [block_state(seed) for seed in (1, 2)]
    sparse = []
    for state in dense:
        state = dict(state)
        weight = state["up.weight"]
        state["up.weight"] = weight.to_sparse() if layout == "coo" else weight.to_sparse_csr()
        sparse.append(state)
    expected = nnstd.distance(
        *[nnstd.torch.to_network(s, spec=BLOCK) for s in dense], solver="auto"
    )
    got = nnstd.distance(*[nnstd.torch.to_network(s, spec=BLOCK) for s in sparse], solver="auto")
    np.testing.assert_array_equal(got.layers, expected.layers)
    assert expected.layers.max() > 0  # the case is not trivially zero


class Residual(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)

    def forward(self, x: Any) -> Any:
        return x + self.down(torch.relu(self.up(x)))


@pytest.mark.parametrize(
    "inputs", [torch.zeros(2, 5), torch.tensor(1.0), "not a tensor"], ids=["shape", "0-d", "str"]
)
def test_example_inputs_the_model_cannot_take_are_named(inputs: Any) -> None:
    # The model's own RuntimeError/TypeError came out bare, from inside the tracer.
    with pytest.raises(nnstd.TopologyError, match="^Residual: .*example_inputs") as caught:
        nnstd.torch.to_network(Residual(), example_inputs=inputs)
    assert caught.value.__cause__ is not None  # the model's own error stays attached


class ReturnsNothing(Residual):
    def forward(self, x: Any) -> Any:
        self.last = x + self.down(torch.relu(self.up(x)))


def test_a_forward_that_returns_no_tensor_is_named() -> None:
    # Was "group 'x': no layer reads or writes it": the cause is the forward's return value.
    with pytest.raises(nnstd.TopologyError, match="^ReturnsNothing: .*returns no tensor"):
        nnstd.torch.to_network(ReturnsNothing(), example_inputs=torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"size": "8"}, "group 'up': 'size' must be a positive integer, got '8'"),
        ({"size": -3}, "group 'up': 'size' must be a positive integer, got -3"),
        ({"size": True}, "group 'up': 'size' must be a positive integer, got True"),
        ({"kind": "middle"}, "group 'up': 'kind' must be one of"),
        ({"heads": 2.0}, "group 'up': 'heads' must be a positive integer, got 2.0"),
        ({"writers": (nnstd.torch.Slot("up.weight", 0, -2),)}, "group 'up': offset must be"),
        ({"writers": (nnstd.torch.Slot("up.weight", 0, 0, 0),)}, "group 'up': offset must be"),
    ],
)
def test_a_spec_built_in_python_is_checked_as_a_written_one(
    group: dict[str, Any], message: str
) -> None:
    # Spec(groups) skipped the checks Spec.from_dict makes: a TypeError, a message from the
    # core about a "0 x 8" layer, or a block of 0 accepted.
    groups = list(Spec.from_dict(BLOCK, "blk").groups)
    up = next(k for k, g in enumerate(groups) if g.name == "up")
    groups[up] = dataclasses.replace(groups[up], **group)
    with pytest.raises(nnstd.TopologyError, match="^blk: ") as caught:
        nnstd.torch.to_network(block_state(), spec=Spec(tuple(groups), "blk"))
    assert message in str(caught.value)
