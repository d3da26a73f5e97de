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

import autoloss_zero as az
from autoloss_zero.search.engines import LocalEngine
from autoloss_zero.search.study import STARTED, StudyReader
from conftest import tiny_config


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


def _kill_when(study, n, kill):
    def watch():
        deadline = time.time() + 120
        while time.time() < deadline and _finished(study) < n:
            time.sleep(0.1)
        kill()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_local_engine_survives_a_killed_worker(tmp_path):
    study = tmp_path / "s.db"
    budget = 8
    engine = LocalEngine(2)
    killed = []

    def kill():
        for p in engine._procs:
            if p.job is not None:
                killed.append(p.job["id"])
                p.process.kill()
                return

    watcher = _kill_when(study, 2, kill)
    try:
        with az.search("classification", "accuracy", budget, study, tiny_config(),
                       engine=engine) as r:
            _check_exactly_once(r, budget)
            assert r.counts()["failed"] == 0  # the killed job was re-run, not lost
    finally:
        engine.close()
    watcher.join()
    assert killed, "no worker was busy when the watcher fired"


def test_timeouts_are_recorded(tmp_path, tests_on_path):
    from autoloss_zero.search.evolution import SearchError

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


def test_dask_cluster_survives_a_killed_worker(tmp_path):
    dask = _dask_bin()
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
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

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        study = tmp_path / "d.db"
        budget = 8
        victims = []

        def kill():  # a worker that is serving us, and its nanny, for good
            with StudyReader(study) as r:
                pid = int([c.worker for c in r.candidates() if c.worker][-1].split(":")[1])
            group = os.getpgid(pid)
            victims.append(next(p for p in workers if p.pid == group))
            os.killpg(group, signal.SIGKILL)

        watcher = _kill_when(study, 2, kill)
        with az.search("classification", "accuracy", budget, study, tiny_config(),
                       engine="dask", scheduler=address) as r:
            _check_exactly_once(r, budget)
            assert r.counts()["failed"] == 0
            hosts = {c.worker for c in r.candidates() if c.worker}
            assert len(hosts) >= 2  # both workers served before one died
        watcher.join()
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
