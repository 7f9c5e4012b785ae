"""The code in README.md and docs/ runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_readme_quick_example_runs(paper_topo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = python_blocks(ROOT / "README.md")[0]
    assert "nnstd.distance" in block
    monkeypatch.chdir(ROOT)
    block = block.replace('"../shared/paper-topo', f'"{os.fspath(paper_topo)}')
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert np.asarray(namespace["m"]).shape == (3, 3, 2)


def test_conv_worked_example_runs_and_prints_what_it_says() -> None:
    (block,) = [b for b in python_blocks(ROOT / "docs" / "inputs.md") if "conv1" in b]
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/inputs.md", "exec"), namespace)
    import nnstd

    a, b, c = (namespace[k] for k in "abc")
    assert np.all(nnstd.distance(a, b).layers == 0.0)  # type: ignore[arg-type]
    np.testing.assert_allclose(nnstd.distance(a, c).layers, [1 / 3, 0.0])  # type: ignore[arg-type]
