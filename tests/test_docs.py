"""The code in README.md and docs/ runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_readme_first_example_runs_as_written_from_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block = python_blocks(ROOT / "README.md")[0]
    assert "nnstd.distance" in block and "shared" not in block  # what a fresh clone has
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert np.asarray(namespace["m"]).shape == (3, 3, 4)
    d = namespace["d"]
    assert 0 < d.value < 1  # type: ignore[attr-defined]


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


def test_relative_links_in_the_readme_and_docs_name_existing_files_and_headings() -> None:
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and anchor not in heading_anchors(path)):
                broken.append(f"{page.name}: {target}")
    assert broken == []


def test_the_readme_starts_with_its_two_commands_and_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160
    head = "\n".join(lines[:60])
    assert "pip install . && nnstd figure4" in head
    assert 'pip install ".[test]" && python -m pytest' in head


def test_help_points_to_a_definition_that_exists_and_submodules_need_no_import() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "nnstd.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    (path,) = re.findall(r"^Definition: (.+definition\.md)$", out, re.M)  # on one line, whole
    assert Path(path).is_file()
    code = "import nnstd; print(nnstd.topology_set.bundled_topo_root().is_dir())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "True", run.stderr
