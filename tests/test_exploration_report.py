"""The exploration benchmark's verdicts (issue 18): an option is called a winner only where
it beats the paper's operators beyond the seed spread on the proxy and on re-training."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def exploration(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("exploration")


def search(variant, seed, curve, retrained):
    return {"variant": variant, "seed": seed, "evaluations": len(curve), "curve": curve,
            "retrained": None if retrained is None else {"mean": retrained},
            "below_dead": 0}


def report(exploration, rows):
    rep = {"metric": "miou", "stages": [2, 4], "searches": rows, "baselines": {}}
    rep["variants"] = exploration.variant_summary(rep)
    return rep


def test_a_clear_winner_on_proxy_and_retraining_is_named(exploration):
    rep = report(exploration, [
        search("paper", 0, [0.1, 0.2, 0.3, 0.30], 0.50),
        search("paper", 1, [0.1, 0.2, 0.3, 0.31], 0.51),
        search("graft", 0, [0.2, 0.3, 0.4, 0.45], 0.60),
        search("graft", 1, [0.2, 0.3, 0.4, 0.46], 0.61)])
    v = rep["variants"]["graft"]
    assert v["vs_first"] == (4, "beyond the seed spread, higher")
    assert v["retrained_vs_first"] == "beyond the seed spread, higher"
    assert "`graft`" in exploration.decision(rep)
    assert "`graft`" in "\n".join(exploration.variant_table(rep))


def test_a_proxy_lead_that_retraining_does_not_confirm_is_no_winner(exploration):
    rep = report(exploration, [
        search("paper", 0, [0.1, 0.2, 0.3, 0.30], 0.50),
        search("paper", 1, [0.1, 0.2, 0.3, 0.31], 0.52),
        search("fit", 0, [0.2, 0.3, 0.4, 0.45], 0.49),
        search("fit", 1, [0.2, 0.3, 0.4, 0.46], 0.53)])
    v = rep["variants"]["fit"]
    assert v["vs_first"][1] == "beyond the seed spread, higher"
    assert v["retrained_vs_first"] == "within the seed spread"
    assert "stays the default" in exploration.decision(rep)


def test_the_decision_waits_for_budgets_and_retraining(exploration):
    rep = report(exploration, [
        search("paper", 0, [0.1, 0.2, 0.3, 0.30], 0.50),
        search("paper", 1, [0.1, 0.2, 0.3], None),
        search("fit", 0, [0.2, 0.3, 0.4, 0.45], 0.60),
        search("fit", 1, [0.2, 0.3, 0.4, 0.46], 0.61)])
    assert exploration.decision(rep).startswith("Decision: pending")


def test_one_search_seed_gives_no_verdict(exploration):
    rep = report(exploration, [
        search("paper", 0, [0.1, 0.2, 0.3, 0.30], 0.50),
        search("fit", 0, [0.2, 0.3, 0.4, 0.45], 0.60)])
    assert "at least 2 search seeds" in exploration.decision(rep)


def test_the_report_re_renders_from_its_json(exploration):
    """The stored JSON turns stage keys into strings and tuples into lists; the report made
    from it must still carry the per-stage columns and the verdicts."""
    import json

    rep = report(exploration, [
        search("paper", 0, [0.1, 0.2, 0.3, 0.30], 0.50),
        search("paper", 1, [0.1, 0.2, 0.3, 0.31], 0.51),
        search("graft", 0, [0.2, 0.3, 0.4, 0.45], 0.60),
        search("graft", 1, [0.2, 0.3, 0.4, 0.46], 0.61)])
    rep.update(task="segmentation", command="x", machine="m", date="d")
    for r in rep["searches"]:
        r.update(best_proxy=max(r["curve"]), best_at=len(r["curve"]), rank1="Neg(y)",
                 joined=0, joined_with_region_term=0)
        r["retrained"]["std"] = 0.01
    live = exploration.render(rep)
    assert "0.4550 ± 0.0071" in live
    assert exploration.render(json.loads(json.dumps(rep))) == live


def test_study_facts_count_weighted_children_of_a_real_search(exploration, tmp_path):
    """The report counts the children a ``weight`` mutation made (trained, best, above
    their parent) from a real study file."""
    import autoloss_zero as az
    from conftest import tiny_config

    cfg = tiny_config(2)
    cfg.mutation.weights = {"insert": 1.0, "weight": 3.0}
    cfg.mutation.reinit = 0.0
    path = tmp_path / "w.db"
    with az.search("classification", "accuracy", 10, path, cfg, workers=1):
        pass
    facts = exploration.study_facts(path, az.get_task("classification"), 0.0)
    assert facts["evaluations"] >= 10
    assert facts["offspring"].get("weight", 0) >= 1
    w = facts["weighted"]
    assert 1 <= w["trained"] <= facts["evaluations"]
    assert 0 <= w["above_parent"] <= w["trained"]
    assert exploration.offspring_kind("insert+weight with #3") == "weight"
    assert exploration.offspring_kind("graft+weight") == "graft"
