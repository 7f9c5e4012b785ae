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


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_links_to_the_definition_name_existing_sections() -> None:
    anchors = heading_anchors(ROOT / "docs" / "definition.md")
    assert {"neuron-distance", "scipy-tie-rules", "solver-guarantees", "weaknesses"} <= anchors
    sources = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    sources += [*(ROOT / "python").rglob("*.py"), *(ROOT / "rust").rglob("*.rs")]
    cited = {
        (path.name, anchor)
        for path in sources
        for anchor in re.findall(r"definition\.md#([\w-]+)", path.read_text(encoding="utf-8"))
    }
    assert cited, "nothing cites docs/definition.md"
    assert {(name, a) for name, a in cited if a not in anchors} == set()
