"""Screening's fit test (``screening.fit_steps``, beyond the paper): a fresh network of the
task trained with the candidate on the screening samples must raise the metric."""

import json
import math
import sqlite3

import pytest

import autoloss_zero as az
from autoloss_zero.errors import ConfigError, SearchError
from autoloss_zero.search.config import ScreeningConfig, SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.status import Verdict
from autoloss_zero.tasks import get_task
from conftest import tiny_config, train_in_process

pytestmark = pytest.mark.usefixtures("isolated_cache")

SMALL_POSE = dict(train_items=40, val_items=6, test_items=6)
INV = "Mean_nhw(Inv(Add(y, yhat)))"  # g = 1 on raw heatmaps; a network trains to nothing


@pytest.fixture(scope="module")
def pose():
    return get_task("pose", **SMALL_POSE)


def _screen(task, text, **config):
    s = Screener(task, "ap", ScreeningConfig(**config), seed=0)
    return s, s.screen(task.as_task_loss(az.parse(text)))


def test_pose_runs_the_fit_test_by_default_and_it_rejects_what_g_accepts(pose):
    s, res = _screen(pose, INV)
    assert s.fit_steps == pose.screening_fit_steps == 200
    assert res.g is not None and res.g >= s.config.eta  # the paper's test accepts it
    assert res.verdict == Verdict.REJECTED and res.reason.startswith("fit test: gain"), res.reason
    _, off = _screen(pose, INV, fit_steps=0)
    assert off.verdict == Verdict.ACCEPTED  # the fit test is what rejected it
    s, mse = _screen(pose, "Square(Add(yhat, Neg(y)))")
    assert mse.verdict == Verdict.ACCEPTED, mse.reason
    assert s.fit_gain(pose.as_task_loss(az.parse("Square(Add(yhat, Neg(y)))"))) >= 0.3


def test_the_fit_gain_is_nan_for_a_loss_that_turns_nan(pose):
    s = Screener(pose, "ap", ScreeningConfig(), seed=0)
    assert math.isnan(s.fit_gain(pose.as_task_loss(az.parse("Mul(yhat, Exp(Inv(y)))"))))


def test_fit_steps_left_to_the_task_or_set_by_the_config():
    task = get_task("classification", train_items=300)
    assert Screener(task, "accuracy", ScreeningConfig(), seed=0).fit_steps == 0
    s = Screener(task, "accuracy", ScreeningConfig(fit_steps=3), seed=0)
    assert s.fit_steps == 3
    loss = task.as_task_loss(az.parse("Neg(Mul(y, Log(yhat)))"))
    assert -1.0 <= s.fit_gain(loss) <= 1.0
    assert Screener(task, "accuracy", ScreeningConfig(fit_steps=3, enabled=False),
                    seed=0).fit_steps == 0


@pytest.mark.parametrize("table", [{"fit_steps": -1}, {"fit_steps": True},
                                   {"fit_steps": 1.5}, {"fit_lr": 0.0},
                                   {"fit_lr": float("nan")}, {"fit_eta": float("nan")}])
def test_bad_fit_options_are_one_line_errors(table):
    with pytest.raises(ConfigError, match="screening.fit_"):
        SearchConfig.from_dict({"screening": table})


def test_studies_made_before_the_fit_test_resume_without_it():
    stored = SearchConfig().to_dict()
    del stored["screening"]["fit_steps"]
    assert SearchConfig.from_stored(stored).screening.fit_steps == 0
    assert SearchConfig.from_dict(stored).screening.fit_steps is None  # a new config


def test_a_study_keeps_the_fit_steps_its_task_chose_when_it_was_made(tmp_path, monkeypatch):
    from autoloss_zero.tasks.classification import ClassificationTask

    cfg = tiny_config(0, eta=-1e6, fit_eta=2.0, max_tries=100)  # a fit test fails them all
    assert cfg.screening.fit_steps is None  # the task's choice: 0 for classification
    with az.search("classification", "accuracy", 2, tmp_path / "c.db", cfg, workers=1) as r:
        assert r.meta()["config"]["screening"]["fit_steps"] == 0  # stored resolved
    # a later release turns the task's fit test on: the study resumes (same config) without it
    monkeypatch.setattr(ClassificationTask, "screening_fit_steps", 2)
    with az.search("classification", "accuracy", 4, tmp_path / "c.db", cfg, workers=1) as r:
        assert r.counts()["evaluated"] == 4
    # while a new study with that config does run it (and nothing passes)
    with pytest.raises(SearchError, match="passed the fit test in"):
        az.search("classification", "accuracy", 2, tmp_path / "new.db", cfg, workers=1)
    with az.search("classification", "accuracy", 4, tmp_path / "c.db", None, workers=1) as r:
        assert r.meta()["config"]["screening"]["fit_steps"] == 0  # stored config, no TOML
    # a study made before choices were stored (None stored) keeps the value of that time
    with sqlite3.connect(tmp_path / "c.db") as con:
        (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        stored = json.loads(text)
        stored["screening"]["fit_steps"] = None
        con.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(stored),))
    con.close()
    with az.search("classification", "accuracy", 6, tmp_path / "c.db", cfg, workers=1) as r:
        assert r.counts()["evaluated"] == 6


def test_a_fit_test_nothing_passes_stops_the_search_with_a_clear_error(tmp_path):
    cfg = tiny_config(0, eta=-1e6, fit_steps=2, fit_eta=2.0, max_tries=100)  # no gain is 2
    cfg.task_options = {**SMALL_POSE, "proxy_steps": 2}
    with pytest.raises(SearchError, match="fit test in 2 tries"):
        az.search("pose", "ap", 2, tmp_path / "p.db", cfg, workers=1)


def test_the_fingerprint_is_consulted_before_the_fit_test(tmp_path):
    """A loss gradient-equivalent to one that failed the fit test is rejected, and one
    equivalent to a loss that passed it is a duplicate, without a second fit test."""
    from autoloss_zero.search.evolution import Evolution
    from autoloss_zero.search.study import Candidate, Study

    cfg = SearchConfig(seed=0)
    cfg.task_options = dict(SMALL_POSE)
    task = get_task("pose", **SMALL_POSE)
    study = Study(tmp_path / "f.db")
    study.set_meta({"schema": 1, "task": "pose", "metric": "ap", "config": cfg.to_dict()})
    evo = Evolution(task, "ap", study, cfg)
    tests = []
    fit_gain = evo.screener.fit_gain  # counts the fit trainings, then runs them
    evo.screener.fit_gain = lambda loss: tests.append(str(loss)) or fit_gain(loss)

    def classify(formula):
        loss = evo.parse_loss(formula)
        row = Candidate(id=evo.next_id, step=evo.next_id, formula=str(loss),
                        normal=loss.key, status="")
        evo.next_id += 1
        evo._classify(loss, row)
        evo.remember(row)
        evo._note(row)
        return row

    try:
        inv = classify(INV)
        assert inv.status == "rejected" and inv.reason.startswith("fit test: gain")
        same = classify(f"Add({INV}, Mean_nhw(y))")  # a target-only term: same gradient
        assert same.status == "rejected" and same.duplicate_of == inv.id
        assert same.reason == f"fit test: same gradient fingerprint as #{inv.id}"
        mse = classify("Square(Add(yhat, Neg(y)))")
        assert mse.status == "running", mse.reason
        twin = classify("Add(Square(Add(yhat, Neg(y))), Mean_nhw(y))")
        assert twin.status == "waiting" and twin.duplicate_of == mse.id
        assert len(tests) == 2  # INV and MSE: their equivalents were not tested again
        # with the equivalence check off, every loss that passes g takes the fit test
        evo.config.equivalence.enabled = False
        assert classify(f"Add({INV}, Mean_nhw(y))").reason.startswith("fit test: gain")
        assert len(tests) == 3
    finally:
        study.close()


def test_fit_test_verdicts_settled_by_fingerprint_are_rebuilt_on_resume(tmp_path):
    """The equivalence index a resumed search rebuilds from the study holds the same
    fingerprints as the live one, those of losses that failed the fit test included."""
    from autoloss_zero.search.evolution import Evolution
    from autoloss_zero.search.study import Study

    cfg = tiny_config(0, fit_steps=5, fit_eta=0.1)  # CE gains 0.125 here, anti-CE 0
    path = tmp_path / "r.db"
    az.search("classification", "accuracy", 1, path, cfg, workers=1).close()
    task = az.get_task("classification", **cfg.task_options)
    study = Study(path)
    try:
        live = Evolution(task, "accuracy", study, cfg)
        live.load()
        for _ in range(5):
            row = live.produce()
            if row is not None:
                train_in_process(live, row, cfg)
        reasons = [c.reason or "" for c in study.candidates()]
        assert any(x.startswith("fit test: gain") for x in reasons)
        assert any(x.startswith("fit test: same gradient fingerprint as #") for x in reasons)
        resumed = Evolution(task, "accuracy", study, cfg)
        resumed.load()
        assert resumed.index.by_fingerprint == live.index.by_fingerprint
        failed = {c.id for c in study.candidates() if (c.reason or "").startswith("fit test: g")}
        assert failed & set(resumed.index.by_fingerprint.values())
    finally:
        study.close()
