"""Exceptions that mean bad input or an unusable file: reported in one line, exit code 2."""

from __future__ import annotations

from .search.evolution import SearchError
from .search.study import StudyError
from .tasks.data import DataError

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # malformed formulas, unknown tasks/metrics/options, bad config (subclasses)
    StudyError,  # foreign, corrupt, locked or mismatched study files
    SearchError,  # the search cannot go on
    DataError,  # missing or changed data files
    OSError,  # unreadable / unwritable paths
)
