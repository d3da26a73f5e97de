"""Study files: foreign and corrupt files are never modified; one writer; readers anytime."""

from __future__ import annotations

import select
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Candidate, Study, StudyError, StudyReader
from conftest import INNER_TIMEOUT


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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=INNER_TIMEOUT / 3)
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
    ready, _, _ = select.select([holder.stdout], [], [], INNER_TIMEOUT / 3)
    if not ready:
        holder.kill()
        pytest.fail("gave up waiting for the holder process to take the study's lock")
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


def test_version_1_files_are_read_as_they_are_and_upgraded_by_a_writer(tmp_path):
    """A study written before the evaluations table existed (schema 1): readers see no
    evaluations and the proxy ranking; the first writer adds the table in place."""
    path = tmp_path / "v1.db"
    _make(path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE evaluations")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    with StudyReader(path) as r:
        assert r.evaluations() == [] and r.ranking() == "proxy" and r.spent() == 1
        assert r.leaderboard()[0].formula == "Log(yhat)"
    Study(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 0
    con.close()


def test_runs_recorded_before_new_task_options_are_reused(tmp_path):
    """A results file written before the task had its proxy_* options (they default to the
    old behaviour): its runs are found under today's keys, full-schedule runs for every
    proxy setting."""
    import json

    from autoloss_zero.compare import LossSpec, _run_key, read_runs
    from autoloss_zero.tasks import get_task

    task = get_task("classification", proxy_steps=7)
    old_options = {k: v for k, v in task.config.items() if not k.startswith("proxy_")}
    old_options["proxy_steps"] = 7
    spec = LossSpec("ce", baseline="ce")
    runs = tmp_path / "runs.jsonl"
    lines = []
    for schedule in ("proxy", "full"):
        key = json.dumps(["classification", old_options, schedule, spec.key, 0], sort_keys=True)
        lines.append(json.dumps({"key": key, "schedule": schedule}))
    runs.write_text("\n".join(lines) + "\n")
    done = read_runs(runs, task)
    assert done[_run_key(task, "proxy", spec, 0)]["schedule"] == "proxy"
    other = get_task("classification", proxy_steps=50, proxy_batch_size=8)
    assert done[_run_key(other, "full", spec, 0)]["schedule"] == "full"
    assert _run_key(other, "proxy", spec, 0) not in read_runs(runs, other)
