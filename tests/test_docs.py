"""The code in README.md and docs/ runs as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_readme_first_example_runs_as_written_from_an_empty_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    block = python_blocks(ROOT / "README.md")[0]
    assert "nnstd.distance" in block and "shared" not in block  # what a fresh clone has
    monkeypatch.chdir(tmp_path)
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


# Worked examples: every block runs, and prints what the lines under it say ---------------------


def expected_output(lines: list[str], after: int) -> list[str] | None:
    """The ``# `` lines right under line ``after`` (1-based) of a block, as output lines."""
    out = []
    for line in lines[after:]:
        if line != "#" and not line.startswith("# "):
            break
        out.append(line[2:])
    return out or None


def matches(printed: str, said: list[str]) -> bool:
    """Whether ``printed`` is what the docs say: ``...`` stands for the rest of a line, a line
    of ``...`` alone for the rest of the output."""
    pattern = ""
    for line in said:
        if line == "...":
            pattern += r"(?:.*\n?)*"
        else:
            pattern += ".*".join(map(re.escape, line.split("..."))) + r"\n"
    return re.fullmatch(pattern, printed) is not None


def shown(value: object) -> str:
    """A value as the docs show it under a bare expression (a tuple without its brackets)."""
    if isinstance(value, tuple):
        return ", ".join(map(repr, value)) + "\n"
    return repr(value) + "\n"


def run_and_compare(block: str, name: str, namespace: dict[str, object]) -> int:
    """Runs ``block`` statement by statement; each statement that prints (or a bare
    expression) must print what the comment lines under it say. The number of checks."""
    import contextlib
    import io

    lines = block.splitlines()
    checked = 0
    for node in ast.parse(block).body:
        code = ast.Module(body=[node], type_ignores=[])
        buffer = io.StringIO()
        is_expression = isinstance(node, ast.Expr) and not (
            isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "print"
        )
        with contextlib.redirect_stdout(buffer):
            if is_expression:
                value = eval(compile(ast.Expression(node.value), name, "eval"), namespace)
                print(shown(value), end="")
            else:
                exec(compile(code, name, "exec"), namespace)
        printed = buffer.getvalue()
        said = expected_output(lines, node.end_lineno or 0)
        if not printed or (is_expression and said is None):
            continue  # a bare call whose value the docs do not show
        assert said is not None, f"{name}: line {node.lineno} prints {printed!r}, not shown"
        assert matches(printed, said), f"{name}: line {node.lineno} printed\n{printed}"
        checked += 1
    return checked


def test_the_graph_examples_run_and_print_what_they_say() -> None:
    pytest.importorskip("torch")
    namespace: dict[str, object] = {}
    blocks = python_blocks(ROOT / "docs" / "graphs.md")
    checks = [run_and_compare(b, "docs/graphs.md", namespace) for b in blocks]
    assert len(blocks) >= 5 and all(checks), checks  # every block shows some output


def test_the_definition_worked_example_runs_and_prints_what_it_says() -> None:
    pytest.importorskip("torch")
    (block,) = [b for b in python_blocks(ROOT / "docs" / "definition.md") if "class Block" in b]
    assert run_and_compare(block, "docs/definition.md", {}) == 2  # the spec, the distances


def test_the_output_checker_catches_a_wrong_line() -> None:
    with pytest.raises(AssertionError, match="printed"):
        run_and_compare("print(1 + 1)\n# 3\n", "example", {})
    with pytest.raises(AssertionError, match="not shown"):
        run_and_compare("print('a')\nx = 1\n", "example", {})
    assert run_and_compare("print('abc')\n# a...\n(1, 'b')\n# 1, 'b'\n", "example", {}) == 2
