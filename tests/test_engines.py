"""Engines under faults: real worker processes and a real Dask cluster on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import autoloss_zero as az
from autoloss_zero.search.engines import LocalEngine
from autoloss_zero.search.study import STARTED, StudyReader
from conftest import Deadline, tiny_config


def _finished(study: Path) -> int:
    try:
        with StudyReader(study) as r:
            c = r.counts()
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    return c["evaluated"] + c["invalid"] + c["failed"]


def _check_exactly_once(reader, budget):
    rows = reader.candidates()
    started = [c for c in rows if c.status in STARTED]
    assert len(started) == budget
    assert all(c.status != "running" for c in started)
    assert len({c.id for c in started}) == budget
    assert all(c.worker for c in started if c.status == "evaluated")


def _kill_when(study, n, kill, deadline: Deadline, budget: int):
    """A thread that, once ``n`` evaluations have finished, calls ``kill()`` until it
    returns True (it found a victim, e.g. a busy worker). Its ``errors`` list says why it
    did not (the test asserts it is empty: a thread cannot fail a test)."""
    errors: list[str] = []

    def watch():
        while _finished(study) < n:
            if deadline.expired():
                errors.append(f"gave up after {deadline.seconds:g} s waiting for {n} finished "
                              f"evaluations in {study.name} before killing a worker")
                return
            time.sleep(0.1)
        try:
            while not kill():
                if _finished(study) >= budget or deadline.expired():
                    errors.append("no worker was busy between the 2nd and the last evaluation")
                    return
                time.sleep(0.02)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(f"kill failed: {exc!r}")

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t.errors = errors
    return t


USER_TASK = "diabetes_task:DiabetesTask"


def _config():
    """The diabetes example task with 400 proxy steps (~0.3 s a training): its R^2 is a
    continuous score that differs from seed to seed, so a re-run with another seed or
    another state would show (the tiny classification proxy scores 0.1 for most seeds),
    and a training lasts long enough for the watcher to find a busy worker."""
    cfg = tiny_config()
    cfg.task_options = {"proxy_steps": 400}
    return cfg


def _scores_equal_uninterrupted_trainings(reader, cfg):
    """Each evaluated candidate's score equals an uninterrupted proxy training of the same
    formula with the same seed, here in this process (as a worker runs it: one thread,
    subnormals flushed), whether its first worker was killed or not. Returns the ids."""
    task = az.get_task(USER_TASK, **cfg.task_options)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    checked = []
    for c in reader.candidates():
        if c.status == "evaluated":
            again = task.train(task.loss_function(c.formula), seed=c.seed)
            assert again["r2"] == c.score, (c.id, c.formula, c.seed)
            checked.append(c.id)
    return checked


def test_local_engine_survives_a_killed_worker(tmp_path, examples_on_path):
    """Kill -9 a busy worker: its job is re-run, every candidate is trained exactly once,
    and the scores (the killed job's included) equal uninterrupted trainings."""
    study = tmp_path / "s.db"
    budget = 8
    cfg = _config()
    engine = LocalEngine(2)
    killed = []

    def kill():
        for p in engine._procs:
            if p.job is not None:
                killed.append(p.job["id"])
                p.process.kill()
                return True
        return False

    deadline = Deadline()
    watcher = _kill_when(study, 2, kill, deadline, budget)
    try:
        with az.search(USER_TASK, "r2", budget, study, cfg, engine=engine) as r:
            watcher.join(deadline.left())
            assert not watcher.errors, watcher.errors
            assert killed, "no worker was busy when the watcher fired"
            _check_exactly_once(r, budget)
            assert r.counts()["failed"] == 0  # the killed job was re-run, not lost
            [rerun] = [c for c in r.candidates() if c.id == killed[0]]
            assert rerun.status in ("evaluated", "invalid")
            checked = _scores_equal_uninterrupted_trainings(r, cfg)
            assert rerun.status == "invalid" or rerun.id in checked
    finally:
        engine.close()


def test_timeouts_are_recorded(tmp_path, tests_on_path):
    from autoloss_zero.errors import SearchError

    cfg = tiny_config()
    cfg.evaluation.timeout = 1.0
    # the first three trainings all time out: that is the search's result (issue 15)
    with pytest.raises(SearchError, match="first 3 proxy trainings all failed: timed out"):
        az.search("user_tasks:SlowTask", "accuracy", 3, tmp_path / "t.db", cfg, workers=2)
    with StudyReader(tmp_path / "t.db") as r:
        rows = [c for c in r.candidates() if c.status in STARTED]
        assert len(rows) == 3
        assert {c.status for c in rows} == {"failed"}
        assert all("timed out after 1 s" in c.reason for c in rows)


def _dask_bin():
    exe = shutil.which("dask", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("the dask command is missing from the environment")
    return exe


def test_dask_cluster_survives_a_killed_worker(tmp_path, examples_on_path):
    dask = _dask_bin()
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    deadline = Deadline()
    try:
        deadline.wait_for("the dask scheduler to write its scheduler file", sched_file.exists)
        import json

        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers",
                                     "1", "--no-dashboard", "--host", "127.0.0.1"],
                                    env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
                   for _ in range(2)]
        procs += workers
        from distributed import Client

        with Client(address, timeout=f"{deadline.left():.0f}s") as client:
            try:
                client.wait_for_workers(2, timeout=deadline.left())
            except TimeoutError:
                pytest.fail("gave up waiting for 2 dask workers to connect to the scheduler")
        study = tmp_path / "d.db"
        budget = 8
        victims = []

        def kill():  # a worker that is serving us, and its nanny, for good
            with StudyReader(study) as r:
                pid = int([c.worker for c in r.candidates() if c.worker][-1].split(":")[1])
            group = os.getpgid(pid)
            victims.append(next(p for p in workers if p.pid == group))
            os.killpg(group, signal.SIGKILL)
            return True

        cfg = _config()
        watcher = _kill_when(study, 2, kill, deadline, budget)
        with az.search(USER_TASK, "r2", budget, study, cfg, engine="dask",
                       scheduler=address) as r:
            watcher.join(deadline.left())
            assert not watcher.errors, watcher.errors
            _check_exactly_once(r, budget)
            assert r.counts()["failed"] == 0
            hosts = {c.worker for c in r.candidates() if c.worker}
            assert len(hosts) >= 2  # both workers served before one died
            assert _scores_equal_uninterrupted_trainings(r, cfg)
        assert victims and victims[0].poll() is not None
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def test_local_dask_cluster_has_no_malloc_trim_threshold():
    from autoloss_zero.search.dask_engine import DaskEngine

    engine = DaskEngine(workers=1)
    try:
        env = engine.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert list(env.values()) == [None]
        hosts = engine.client.run(lambda: 1)
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in hosts)
    finally:
        engine.close()
