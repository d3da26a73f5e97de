"""Errors live in one import-free module; every user error is one line, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autoloss_zero import errors


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())


def test_importing_the_errors_imports_neither_torch_nor_the_search():
    loaded = _modules_after("import autoloss_zero.errors")
    assert "torch" not in loaded and "numpy" not in loaded
    assert not {m for m in loaded if m.startswith("autoloss_zero.") and m not in {
        "autoloss_zero.errors", "autoloss_zero.search"}}


@pytest.mark.parametrize("cls", [errors.ConfigError, errors.TaskError, errors.StudyError,
                                 errors.SearchError, errors.DataError])
def test_every_error_is_a_user_error(cls):
    assert issubclass(cls, errors.USER_ERRORS)


def test_one_line():
    assert errors.one_line(ValueError("a\nb")) == "ValueError: a b"
    assert len(errors.one_line(RuntimeError("x" * 1000), limit=50)) == 50
