"""The layers import downward only (errors <- expr <- metrics, tasks, search <- CLI).

Every import statement of a module counts, those inside functions too (a lazy import is
still a dependency)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import autoloss_zero

PACKAGE = Path(autoloss_zero.__file__).parent


def imported(path: Path) -> set[str]:
    """Every module (absolute name) that the file at ``path`` imports, anywhere in it."""
    parts = ["autoloss_zero", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    package = parts if path.name == "__init__.py" else parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            out.add(".".join([*base, *([node.module] if node.module else [])]))
    return out


def imports_of(layer: str) -> dict[str, set[str]]:
    files = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() \
        else sorted((PACKAGE / layer).rglob("*.py"))
    return {str(f.relative_to(PACKAGE)): {m for m in imported(f)
                                          if m.startswith("autoloss_zero")} for f in files}


def reaching(layer: str, *above: str) -> dict[str, set[str]]:
    """The imports of ``layer`` that reach into the ``above`` layers."""
    prefixes = tuple(f"autoloss_zero.{a}" for a in above)
    found = {f: {m for m in ms if m.startswith(prefixes)} for f, ms in imports_of(layer).items()}
    return {f: ms for f, ms in found.items() if ms}


def test_the_errors_import_nothing():
    assert imports_of("errors") == {"errors.py": set()}
    code = "import sys, autoloss_zero.errors; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120).stdout.split()
    assert "torch" not in loaded and "numpy" not in loaded


def test_metrics_are_plain_functions():
    assert reaching("metrics", "tasks", "search", "expr") == {}


def test_the_search_space_knows_no_tasks_nor_search():
    assert reaching("expr", "tasks", "search", "metrics") == {}
