"""Study files: foreign and corrupt files are never modified; one writer; readers anytime."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Candidate, Study, StudyError, StudyReader


def _make(path):
    s = Study(path, meta={"task": "classification", "metric": "accuracy",
                          "config": SearchConfig().to_dict()})
    s.insert([Candidate(id=1, step=0, formula="y", normal="y", status="rejected"),
              Candidate(id=2, step=0, formula="Log(yhat)", normal="Log(yhat)",
                        status="evaluated", score=0.5, metrics={"accuracy": 0.5})])
    return s


def test_round_trip(tmp_path):
    s = _make(tmp_path / "s.db")
    s.close()
    with StudyReader(tmp_path / "s.db") as r:
        assert r.meta()["task"] == "classification"
        assert [c.status for c in r.candidates()] == ["rejected", "evaluated"]
        assert r.leaderboard()[0].metrics == {"accuracy": 0.5}
        assert r.started() == 1


@pytest.mark.parametrize("kind", ["text", "sqlite", "truncated"])
def test_foreign_and_corrupt_files_are_left_untouched(tmp_path, kind):
    path = tmp_path / "x.db"
    if kind == "text":
        path.write_text("name,score\nce,1\n" * 20)
    elif kind == "sqlite":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t(a)")
        con.execute("INSERT INTO t VALUES (1)")
        con.commit()
        con.close()
    else:
        _make(path).close()
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\x00garbage" * 200)
    before = path.read_bytes()
    with pytest.raises(StudyError, match="left untouched|corrupt|not an autoloss"):
        Study(path)
    with pytest.raises(StudyError):
        StudyReader(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "x.db-wal").exists()


def test_directory_and_missing_reader(tmp_path):
    with pytest.raises(StudyError, match="directory"):
        Study(tmp_path)
    with pytest.raises(StudyError, match="no study"):
        StudyReader(tmp_path / "none.db")


def test_second_writer_is_refused_and_lock_dies_with_process(tmp_path):
    path = tmp_path / "s.db"
    s = _make(path)
    with pytest.raises(StudyError, match="in use by another search"):
        Study(path)
    code = textwrap.dedent(f"""
        from autoloss_zero.search.study import Study, StudyError
        try:
            Study({str(path)!r})
        except StudyError as e:
            print("refused:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "refused:" in out.stdout
    with StudyReader(path) as r:  # readers work while the writer holds the file
        assert len(r.candidates()) == 2
    s.close()
    Study(path).close()  # the lock is gone with its holder
    # a writer killed hard releases the lock too
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from autoloss_zero.search.study import Study
        s = Study({str(path)!r}); print("held", flush=True); time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StudyError):
        Study(path)
    holder.kill()
    holder.wait()
    Study(path).close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    _make(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version=99")
    con.commit()
    con.close()
    with pytest.raises(StudyError, match="schema version 99"):
        Study(path)
