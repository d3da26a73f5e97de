"""Searches end to end: real training in worker processes, a real SQLite study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import autoloss_zero as az
from autoloss_zero.search.study import StudyError, StudyReader
from conftest import ROOT, Deadline, cli, np_loss, rows_key, tiny_config


def run(path, budget=6, seed=0, **kw):
    return az.search("classification", "accuracy", budget, path, tiny_config(seed), workers=1,
                     **kw)


def test_serial_search_is_reproducible(tmp_path):
    with run(tmp_path / "a.db") as a, run(tmp_path / "b.db") as b:
        assert a.started() == 6 == b.started()
        assert rows_key(a) == rows_key(b)
        board = a.leaderboard()
        assert board and board[0].score >= board[-1].score
        counts = a.counts()
        assert counts["rejected"] > 0
        assert counts["running"] == 0 and counts["waiting"] == 0
    with run(tmp_path / "c.db", seed=1) as c, StudyReader(tmp_path / "a.db") as a:
        assert rows_key(c) != rows_key(a)


def test_common_seed_trains_every_candidate_with_one_seed(tmp_path):
    cfg = tiny_config()
    cfg.evaluation.common_seed = True
    with az.search("classification", "accuracy", 4, tmp_path / "c.db", cfg, workers=1) as r:
        seeds = {c.seed for c in r.candidates() if c.status in ("evaluated", "invalid")}
    assert len(seeds) == 1
    with run(tmp_path / "d.db", budget=4) as r:  # default: one seed per training
        assert len({c.seed for c in r.candidates() if c.status == "evaluated"}) > 1


def test_budget_extends_and_config_mismatch_is_refused(tmp_path, examples_on_path):
    path = tmp_path / "s.db"
    run(path, budget=3).close()
    with run(path, budget=5) as r:  # resume with a larger budget
        assert r.started() == 5
    with pytest.raises(StudyError, match="seed"):
        run(path, budget=6, seed=9)
    other = tiny_config()
    other.screening.eta = 0.5
    with pytest.raises(StudyError, match=r"screening\.eta: 0\.1 \(stored\) != 0\.5"):
        az.search("classification", "accuracy", 6, path, other, workers=1)
    with pytest.raises(StudyError, match="metric: accuracy .stored. != r2"):
        az.search(az.get_task("diabetes_task:DiabetesTask"), "r2", 6, path)
    with StudyReader(path) as r:
        assert r.started() == 5  # the refused runs wrote nothing


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import autoloss_zero as az
    from conftest import tiny_config
    az.search("classification", "accuracy", {budget}, sys.argv[1], tiny_config(0), workers=1)
""")


def _script(tmp_path, budget):
    path = tmp_path / "run.py"
    path.write_text(SCRIPT.format(tests=str(ROOT / "tests"), budget=budget))
    return path


def _finished(study) -> int:
    """Evaluated + invalid candidates of a study being written (0 before it exists)."""
    if not (study.exists() and study.stat().st_size):
        return 0
    try:
        with StudyReader(study) as r:
            counts = r.counts()
    except StudyError:  # created but not initialized yet
        return 0
    return counts["evaluated"] + counts["invalid"]


def test_kill_9_then_resume_gives_the_same_leaderboard(tmp_path):
    budget = 8
    with run(tmp_path / "ref.db", budget=budget) as ref:
        reference = rows_key(ref)
    study = tmp_path / "killed.db"
    script = _script(tmp_path, budget)
    deadline = Deadline()
    kills = 0
    for wait_for in (2, 5):
        proc = subprocess.Popen([sys.executable, str(script), str(study)],
                                start_new_session=True)
        try:
            deadline.wait_for(f"{wait_for} finished evaluations in {study.name} before kill -9",
                              lambda n=wait_for: _finished(study) >= n)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, at once
            proc.wait()
        kills += 1
        with StudyReader(study) as r:
            before = {c.id: c.score for c in r.candidates() if c.status == "evaluated"}
            assert len(before) >= wait_for
    with run(study, budget=budget) as r:
        after = {c.id: c.score for c in r.candidates() if c.status == "evaluated"}
        assert all(after[i] == s for i, s in before.items())  # nothing finished was lost
        assert r.started() == budget
        assert rows_key(r) == reference
    assert kills == 2


def test_user_task_by_import_path(tmp_path, examples_on_path):
    cfg = tiny_config()
    cfg.task_options = {"proxy_steps": 20}
    with az.search("diabetes_task:DiabetesTask", "r2", 4, tmp_path / "d.db", cfg,
                   workers=1) as r:
        meta = r.meta()
        assert meta["task"] == "diabetes_task:DiabetesTask"
        assert r.started() == 4
        best = r.leaderboard(1)[0]
        assert set(best.metrics) == {"r2", "neg_mae"}
    module = az.load_loss(tmp_path / "d.db")
    pred, target = torch.randn(8, 1, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    # the example's transforms are the identity: the formula's value on (pred, target)
    want = np_loss(az.parse(best.formula), {"yhat": pred.numpy(), "y": target.numpy()})
    assert float(module(pred, target)) == pytest.approx(want, rel=1e-9, nan_ok=True)


def test_failing_task_is_recorded_and_the_search_stops_with_the_reason(tmp_path,
                                                                      tests_on_path):
    from autoloss_zero.errors import SearchError
    from autoloss_zero.search.evolution import SAME_FAILURES

    cfg = tiny_config()
    with pytest.raises(SearchError, match=f"first {SAME_FAILURES} proxy trainings all failed: "
                                          "RuntimeError: user code broke on purpose"):
        az.search("user_tasks:FailingTask", "accuracy", 10, tmp_path / "f.db", cfg, workers=1)
    with StudyReader(tmp_path / "f.db") as r:  # the failures are recorded
        failed = [c for c in r.candidates() if c.status == "failed"]
        assert len(failed) == SAME_FAILURES
        assert {c.reason for c in failed} == {"RuntimeError: user code broke on purpose"}


def test_invalid_loss_stops_training(tmp_path):
    task = az.get_task("classification", train_items=200, proxy_steps=50)
    fn = task.loss_function("Log(Neg(Abs(Add(yhat, Neg(yhat)))))")  # log(0+eps) * ... finite
    assert fn(torch.randn(4, 10), torch.randint(0, 10, (4,))).isfinite()
    from autoloss_zero.tasks.base import InvalidLoss

    with pytest.raises(InvalidLoss):
        task.train(lambda raw, t: raw.sum() * float("nan"), seed=0)
    res = task.train(lambda raw, t: raw.sum() * float("nan"), seed=0, stop_on_invalid=False)
    assert set(res) == {"accuracy"}


def test_show_json_while_running(tmp_path):
    """A reader sees a search in progress. The budget is far more than the search can
    train before the test's deadline, so the process being alive after the read is no race:
    it proves the search was running while we read."""
    study = tmp_path / "live.db"
    budget = 10_000
    proc = subprocess.Popen([sys.executable, str(_script(tmp_path, budget)), str(study)],
                            start_new_session=True)
    deadline = Deadline()

    def read():
        out = cli("show", study, "--json", timeout=max(1.0, deadline.left()))
        if out.returncode == 0:
            data = json.loads(out.stdout)
            if data["evaluations"] >= 1 and data["losses"]:
                return data
        return None

    try:
        seen = deadline.wait_for("'show --json' to list an evaluated loss", read, poll=0.3)
        assert seen["task"] == "classification"
        assert {"rank", "formula", "score"} <= set(seen["losses"][0])
        assert 1 <= seen["evaluations"] < budget
        assert proc.poll() is None, "the search ended while it should still be running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_random_strategy_and_time_limit(tmp_path):
    """``time_limit`` stops a search whose budget it could never finish. How fast it stops
    is not asserted here (speed belongs in benchmarks/): a search that ignored the limit
    would run into pytest-timeout instead."""
    cfg = tiny_config()
    cfg.strategy = "random"
    with az.search("classification", "accuracy", 5, tmp_path / "r.db", cfg, workers=1) as r:
        rows = [c for c in r.candidates() if c.status != "rejected"]
        assert rows and all(c.parent is None and c.mutation == "init" for c in rows)
    with az.search("classification", "accuracy", 10_000, tmp_path / "t.db", tiny_config(),
                   workers=1, time_limit=4) as r:
        assert 0 < r.started() < 10_000


def test_operator_subsets_and_user_operators(tmp_path, tests_on_path):
    cfg = tiny_config()
    cfg.operators = ["Add", "Mul", "Neg", "Log", "Cube"]
    cfg.operator_modules = ["user_ops"]
    with az.search("classification", "accuracy", 4, tmp_path / "o.db", cfg, workers=1) as r:
        assert r.meta()["operators"] == cfg.operators
        used = set()
        for c in r.candidates():
            used |= az.parse(c.formula, operators=cfg.operators).operators
        assert used <= set(cfg.operators) and "Cube" in used
        assert r.counts()["failed"] == 0  # workers rebuilt the operator set
        best = az.parse(r.leaderboard(1)[0].formula, operators=cfg.operators)
    module = az.load_loss(tmp_path / "o.db")
    logits, labels = torch.randn(4, 10, dtype=torch.float64), torch.tensor([0, 3, 9, 3])
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)  # softmax
    want = np_loss(best, {"yhat": p, "y": np.eye(10)[labels.numpy()]},
                   extra_ops={"Cube": lambda x: x**3})
    assert float(module(logits, labels)) == pytest.approx(want, rel=1e-9, nan_ok=True)


def test_screening_errors_are_recorded_and_stop_clearly(tmp_path, tests_on_path):
    from autoloss_zero.errors import SearchError

    cfg = tiny_config()
    cfg.screening.max_tries = 2000  # the same error 20 times stops it far earlier (most
    # random candidates are rejected before the task is asked: no prediction or no target)
    with pytest.raises(SearchError, match="no candidate passed screening: 20 tries failed "
                                          "the same way: screening raised KeyError"):
        az.search("user_tasks:BrokenScreeningTask", "accuracy", 2, tmp_path / "b.db", cfg,
                  workers=1)
    cfg.screening.max_tries = 100  # fewer errors than the streak: the old message, same cause
    with pytest.raises(SearchError, match="no candidate passed screening in 100 tries.*"
                                          "screening raised KeyError"):
        az.search("user_tasks:BrokenScreeningTask", "accuracy", 2, tmp_path / "c.db", cfg,
                  workers=1)
