"""Statuses and verdicts: one enum each, stored as the strings every study file holds."""

from __future__ import annotations

import sqlite3

from autoloss_zero.search.status import STARTED, Status, Verdict
from autoloss_zero.search.study import Candidate, Study, StudyReader

STORED = ["rejected", "duplicate", "waiting", "running", "evaluated", "invalid", "failed"]
"""The strings of the ``status`` column since the first schema (studies of any version)."""


def test_the_values_are_the_stored_strings():
    assert [s.value for s in Status] == STORED
    assert [v.value for v in Verdict] == ["accepted", "rejected"]
    assert STARTED == (Status.RUNNING, Status.EVALUATED, Status.INVALID, Status.FAILED)


def test_the_facts_of_each_status():
    assert {s for s in Status if s.is_finished()} == {"evaluated", "invalid", "failed"}
    assert {s for s in Status if s.is_scored()} == {"evaluated", "invalid"}
    assert {s for s in Status if s.is_in_flight()} == {"running", "waiting"}


def test_rows_are_written_as_strings_and_read_as_statuses(tmp_path):
    path = tmp_path / "s.db"
    s = Study(path, meta={"task": "classification", "metric": "accuracy", "config": {}})
    s.insert([Candidate(id=i, step=i, formula="y", normal="y", status=st)
              for i, st in enumerate(Status, 1)])
    s.close()
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT status FROM candidates ORDER BY id")] == STORED
    con.close()
    with StudyReader(path) as r:
        rows = r.candidates()
        assert all(type(c.status) is Status for c in rows)
        assert [c.status for c in rows] == STORED
        assert r.started() == len(STARTED)
        assert r.counts() == dict.fromkeys(STORED, 1)
