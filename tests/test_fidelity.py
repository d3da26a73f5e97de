"""Fidelity rungs (ASHA promotions inside the search) and confirmation by re-training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import autoloss_zero as az
from autoloss_zero.search.fidelity import best_to_promote, compare_key
from autoloss_zero.search.study import StudyError, StudyReader
from conftest import ROOT, tiny_config


def rung_config():
    cfg = tiny_config()
    cfg.task_options["full_steps"] = 10  # a full training costs 10 / 5 = 2 equivalents
    cfg.fidelity.rungs = [{"schedule": "proxy", "seeds": 2, "top": 0.5},
                          {"schedule": "full", "seeds": 1, "top": 0.5}]
    return cfg


def evaluations_key(reader):
    return [(e.id, e.candidate, e.kind, e.rung, e.schedule, e.split, e.seed, e.cost,
             e.status, e.score) for e in reader.evaluations()]


def test_asha_rule():
    done = {1: 0.5, 2: 0.9, 3: 0.1, 4: None}
    assert best_to_promote(done, set(), 0.5) == 2  # top floor(4 * 0.5) = 2: ids 2, 1
    assert best_to_promote(done, {2}, 0.5) == 1
    assert best_to_promote(done, {1, 2}, 0.5) is None
    assert best_to_promote({1: 0.5}, set(), 0.5) is None  # floor(0.5) = 0: not yet
    # a duel at the highest fidelity both reached
    assert compare_key(0.9, 0.2, other_has_full=True) == 0.2
    assert compare_key(0.9, 0.2, other_has_full=False) == 0.9


@pytest.mark.timeout(240)
def test_rungs_promote_within_the_budget_and_are_reproducible(tmp_path):
    with az.search("classification", "accuracy", 16, tmp_path / "a.db", rung_config(),
                   workers=1) as a:
        evals = a.evaluations()
        assert a.spent() <= 16 and a.spent() == a.started() + sum(e.cost for e in evals)
        by_rung = {}
        for e in evals:
            by_rung.setdefault(e.rung, set()).add(e.candidate)
        assert by_rung.get(1) and by_rung.get(2)
        assert by_rung[2] <= by_rung[1] | {c.id for c in a.candidates()}
        assert all(e.split == "val" and e.status == "evaluated" for e in evals)
        assert {e.cost for e in evals if e.schedule == "full"} == {2.0}
        # the leaderboard averages a loss's proxy trainings and ranks confirmed ones first
        board = a.leaderboard()
        assert a.ranking() == "confirmed" and board[0].confirmed is not None
        promoted = next(c for c in board if c.id in by_rung[1])
        assert promoted.evaluations >= 2
        ref = evaluations_key(a)
    with az.search("classification", "accuracy", 16, tmp_path / "b.db", rung_config(),
                   workers=1) as b:
        assert evaluations_key(b) == ref


def test_show_json_reports_rungs_and_budget_unit(tmp_path):
    path = tmp_path / "s.db"
    az.search("classification", "accuracy", 16, path, rung_config(), workers=1).close()
    out = subprocess.run([sys.executable, "-m", "autoloss_zero", "show", str(path), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["budget_unit"] == "proxy-training equivalents" and data["spent"] <= 16
    assert data["ranking"] == "confirmed"
    assert any(k.startswith("rung full") for k in data["trainings_beyond_the_proxy"])
    assert "confirmed" in data["losses"][0]


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import autoloss_zero as az
    from test_fidelity import rung_config
    az.search("classification", "accuracy", {budget}, sys.argv[1], rung_config(), workers=1)
""")


@pytest.mark.timeout(300)
def test_kill_9_during_promotions_then_resume(tmp_path):
    """Killed while rung trainings run: resuming loses nothing finished, repeats nothing
    finished, and ends as a search that ran through."""
    budget = 16
    with az.search("classification", "accuracy", budget, tmp_path / "ref.db", rung_config(),
                   workers=1) as ref:
        reference = evaluations_key(ref)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), budget=budget))
    study = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, str(script), str(study)], start_new_session=True)
    deadline, before = time.time() + 90, None
    while time.time() < deadline:
        time.sleep(0.1)
        if not (study.exists() and study.stat().st_size):
            continue
        try:
            with StudyReader(study) as r:
                evals = r.evaluations()
        except StudyError:
            continue
        if any(e.status == "running" for e in evals) and any(
                e.status == "evaluated" for e in evals):
            before = {e.id: e.score for e in evals if e.status == "evaluated"}
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert before, "no moment with a rung training running after one had finished (90 s)"
    with az.search("classification", "accuracy", budget, study, rung_config(),
                   workers=1) as r:
        after = {e.id: e for e in r.evaluations()}
        assert all(after[i].score == s for i, s in before.items())
        assert evaluations_key(r) == reference


def test_confirm_ranks_by_full_schedule_scores(tmp_path):
    cfg = tiny_config()
    cfg.task_options["full_steps"] = 10
    path = tmp_path / "c.db"
    az.search("classification", "accuracy", 6, path, cfg, workers=1).close()
    with StudyReader(path) as r:
        assert r.ranking() == "proxy"
        proxy_top = [c.id for c in r.leaderboard(2)]
    out = subprocess.run([sys.executable, "-m", "autoloss_zero", "confirm", str(path), "--top",
                          "2", "--seeds", "2", "--workers", "2", "--json"],
                         capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ranking"] == "confirmed"
    confirmed = [c for c in data["losses"] if c["confirmed"] is not None]
    assert {c["id"] for c in confirmed} == set(proxy_top)
    assert all(c["confirmed_seeds"] == 2 for c in confirmed)
    assert confirmed[0]["confirmed"] >= confirmed[1]["confirmed"]
    with StudyReader(path) as r:
        evals = r.evaluations()
        assert len(evals) == 4 and {e.kind for e in evals} == {"confirm"}
        assert {e.split for e in evals} == {"val"} and len({e.seed for e in evals}) == 4
        best = r.leaderboard(1)[0]
    # every reader uses the confirmed ranking
    assert str(az.load_loss(path).loss) == best.formula
    again = az.confirm(path, top=2, seeds=2, workers=1)  # nothing left to train
    with again:
        assert len(again.evaluations()) == 4


def test_confirm_follows_the_ranking_until_its_top_is_confirmed(tmp_path):
    """Two losses carry one lucky full training each (as a fidelity rung can leave them):
    confirming the first pulls its mean down, so the second leads with one training until
    it is confirmed too; the final rank 1 has the seeds asked for."""
    from autoloss_zero.search.seeds import derive_seed
    from autoloss_zero.search.status import Status
    from autoloss_zero.search.study import Evaluation, Study

    cfg = tiny_config()
    cfg.task_options["full_steps"] = 10
    path = tmp_path / "lucky.db"
    az.search("classification", "accuracy", 6, path, cfg, workers=1).close()
    with StudyReader(path) as r:
        a, b = [c.id for c in r.leaderboard(2)]
    db = Study(path)
    try:
        db.put_evaluations([
            Evaluation(id=i, candidate=c, kind="rung", rung=2, schedule="full", split="val",
                       seed=derive_seed(cfg.seed, "full", c, 0), cost=2.0,
                       status=Status.EVALUATED, score=s, finished=time.time())
            for i, (c, s) in enumerate([(a, 0.999), (b, 0.998)], 1)])
    finally:
        db.close()
    with az.confirm(path, top=1, seeds=2, workers=1) as r:
        best = r.leaderboard(1)[0]
        trained = {e.candidate for e in r.evaluations() if e.kind == "confirm"}
    assert best.confirmed_seeds == 2
    assert trained == {a, b}  # a real tiny training scores far below 0.99: b led after a's


@pytest.mark.parametrize("bad", [
    {"schedule": "full", "seeds": 1, "top": 0.0},
    {"schedule": "proxy", "seeds": 1, "top": 0.5},
    {"schedule": "gpu", "seeds": 2, "top": 0.5},
    {"seeds": 2, "top": 0.5, "extra": 1},
])
def test_bad_rungs_are_refused(bad):
    with pytest.raises(ValueError, match="fidelity.rungs"):
        az.SearchConfig.from_dict({"fidelity": {"rungs": [bad]}})


def test_racing_contenders_rule():
    from autoloss_zero.search.racing import contenders

    assert contenders({}) == [] and contenders({1: [0.5, 0.6]}) == []
    # separated by more than a standard error of the difference: nothing to race
    assert contenders({1: [0.80, 0.81, 0.82], 2: [0.70, 0.71, 0.72]}) == []
    # the mAcc case (2026-12-02): 0.004 apart with sds 0.007 and 0.027
    assert contenders({982: [0.6494, 0.6476, 0.6598], 1178: [0.6725, 0.6195, 0.6528],
                       1719: [0.60, 0.61, 0.60]}) == [982, 1178]
    # one score has no spread to go by: it races
    assert contenders({1: [0.9, 0.91], 2: [0.1]}) == [1, 2]
    # equal means: ties break by id, like the leaderboard
    assert contenders({5: [0.5, 0.6], 3: [0.6, 0.5]}) == [3, 5]


def _put_full(path, cfg, scores):
    """Full-schedule validation trainings written into a study, as confirmation makes them."""
    from autoloss_zero.search.seeds import derive_seed
    from autoloss_zero.search.status import Status
    from autoloss_zero.search.study import Evaluation, Study

    db = Study(path)
    try:
        rows, i = [], 1
        for c, values in scores.items():
            for j, s in enumerate(values):
                rows.append(Evaluation(
                    id=i, candidate=c, kind="confirm", rung=-1, schedule="full", split="val",
                    seed=derive_seed(cfg.seed, "full", c, j), cost=2.0,
                    status=Status.EVALUATED, score=s, finished=time.time()))
                i += 1
        db.put_evaluations(rows)
    finally:
        db.close()


def _small_study(path, k):
    """A 6-equivalent search whose full trainings cost 2; its config, path and top-k ids."""
    cfg = tiny_config()
    cfg.task_options["full_steps"] = 10
    az.search("classification", "accuracy", 6, path, cfg, workers=1).close()
    with StudyReader(path) as r:
        return cfg, path, [x.id for x in r.leaderboard(k)]


@pytest.mark.timeout(240)
def test_racing_trains_the_close_losses_up_to_max_seeds(tmp_path):
    cfg, path, (a, b, c) = _small_study(tmp_path / "race.db", 3)
    # a and b within noise of each other; c far below (real tiny trainings score below a
    # and b's means too, so c stays out of the race whatever they add)
    _put_full(path, cfg, {a: [0.96, 0.99], b: [0.97, 0.975], c: [0.001, 0.002]})
    with az.confirm(path, top=3, seeds=2, max_seeds=3, workers=1) as r:
        n = {}
        for e in r.evaluations():
            n[e.candidate] = n.get(e.candidate, 0) + 1
        board = r.leaderboard(3)
    assert n == {a: 3, b: 3, c: 2}
    assert {x.id: x.confirmed_seeds for x in board} == {a: 3, b: 3, c: 2}
    with az.confirm(path, top=3, seeds=2, max_seeds=3, workers=1) as again:
        assert len(again.evaluations()) == 8  # resumed: at max_seeds, nothing more


@pytest.mark.timeout(240)
def test_racing_leaves_a_separated_leader_alone(tmp_path):
    cfg, path, (a, b) = _small_study(tmp_path / "apart.db", 2)
    _put_full(path, cfg, {a: [0.90, 0.91], b: [0.50, 0.51]})
    with az.confirm(path, top=2, seeds=2, max_seeds=5, workers=1) as r:
        assert len(r.evaluations()) == 4


def test_max_seeds_below_seeds_is_refused(tmp_path):
    with pytest.raises(ValueError, match="max_seeds"):
        az.SearchConfig.from_dict({"confirm": {"top": 2, "seeds": 3, "max_seeds": 2}})
    out = subprocess.run([sys.executable, "-m", "autoloss_zero", "confirm",
                          str(tmp_path / "none.db"), "--seeds", "3", "--max-seeds", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--max-seeds" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.timeout(240)
def test_a_search_races_its_confirmation_to_the_end(tmp_path):
    """``[confirm] max_seeds`` in a search's config: when it ends, the top is separated
    or every loss still within noise of the leader has max_seeds trainings."""
    from autoloss_zero.search.racing import contenders

    cfg = tiny_config()
    cfg.task_options["full_steps"] = 10
    cfg.confirm.top, cfg.confirm.seeds, cfg.confirm.max_seeds = 2, 1, 3
    with az.search("classification", "accuracy", 6, tmp_path / "s.db", cfg, workers=1) as r:
        ids = [c.id for c in r.leaderboard(2)]
        scores = {}
        for e in r.evaluations():
            assert e.kind == "confirm" and e.schedule == "full"
            scores.setdefault(e.candidate, []).append(e.score)
    assert set(ids) <= set(scores) and all(len(v) <= 3 for v in scores.values())
    top = {i: scores[i] for i in ids}
    assert all(len(top[i]) == 3 for i in contenders(top))
    assert max(len(v) for v in top.values()) >= 2  # one training each is never separated
