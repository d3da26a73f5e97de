"""Errors live in one module (tests/test_layering.py: it imports nothing); every user
error is one line, exit code 2."""

from __future__ import annotations

import pytest

from autoloss_zero import errors


@pytest.mark.parametrize("cls", [errors.ConfigError, errors.TaskError, errors.StudyError,
                                 errors.SearchError, errors.DataError])
def test_every_error_is_a_user_error(cls):
    assert issubclass(cls, errors.USER_ERRORS)


def test_one_line():
    assert errors.describe(ValueError("a\nb")) == "ValueError: a b"
    assert len(errors.describe(RuntimeError("x" * 1000), limit=50)) == 50
