"""Every exception that means bad input or an unusable file, declared here and nowhere
else: the CLI reports each in one line with exit code 2.

This module imports nothing from the package (nor torch): any layer may raise these
errors without importing another, and ``import autoloss_zero.errors`` stays cheap.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad config file or value."""


class TaskError(ValueError):
    """A bad task name, metric, variant or option."""


class StudyError(RuntimeError):
    """A study file that cannot be used: foreign, corrupt, locked, or mismatched."""


class SearchError(RuntimeError):
    """The search cannot go on (e.g. no candidate passes screening)."""


class DataError(RuntimeError):
    """A data file is missing, changed, or not what it should be."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # malformed formulas, unknown tasks/metrics/options, bad config (subclasses)
    StudyError,  # foreign, corrupt, locked or mismatched study files
    SearchError,  # the search cannot go on
    DataError,  # missing or changed data files
    OSError,  # unreadable / unwritable paths
)


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters (for study rows and
    results, where a whole traceback does not belong)."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
