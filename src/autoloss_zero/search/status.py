"""Where a candidate stands (:class:`Status`, Optuna's ``TrialState`` is the model) and
what screening said of it (:class:`Verdict`), each declared once.

The values are the strings stored in the study's SQLite file since its first schema, so
studies written by any version read as they are.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The status of a candidate (a row of ``candidates``) or of an evaluation (a row of
    ``evaluations``, which is only ever running, evaluated, invalid or failed)."""

    REJECTED = "rejected"
    """Screening rejected it, or it has the normal form of a rejected loss."""
    DUPLICATE = "duplicate"
    """Equivalent to a loss already trained (or a copy of one): its score is reused."""
    WAITING = "waiting"
    """Equivalent to a loss still in training: it waits for that score."""
    RUNNING = "running"
    """In training (or to be re-run on resume)."""
    EVALUATED = "evaluated"
    """Trained, with a score."""
    INVALID = "invalid"
    """Trained until its loss became NaN/Inf (or its metric NaN): the worst score."""
    FAILED = "failed"
    """The training raised, timed out or lost its worker: no verdict on the loss."""

    def is_started(self) -> bool:
        """A training was started: counts against the budget."""
        return self in _STARTED

    def is_finished(self) -> bool:
        """A training was started and has ended."""
        return self in _FINISHED

    def is_scored(self) -> bool:
        """A training gave this loss its score (None for an invalid one: the worst)."""
        return self in _SCORED

    def is_in_flight(self) -> bool:
        """Its outcome is still to come: in training, or waiting for an equivalent one."""
        return self in _IN_FLIGHT


_FINISHED = frozenset({Status.EVALUATED, Status.INVALID, Status.FAILED})
_STARTED = _FINISHED | {Status.RUNNING}
_SCORED = frozenset({Status.EVALUATED, Status.INVALID})
_IN_FLIGHT = frozenset({Status.RUNNING, Status.WAITING})

STARTED: tuple[Status, ...] = tuple(s for s in Status if s.is_started())
"""The statuses that count against the budget, for queries (``status IN (...)``)."""


class Verdict(StrEnum):
    """What the rejection protocol (and its short-cuts) said of a loss."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
