"""The region-term benchmark (issue 13.1) reads the region-level subtrees out of a real
study file: which terms the searches generated, how often, and whether a trained loss
held them."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from autoloss_zero.expr.ops import get_operators
from autoloss_zero.expr.tree import node_text as _text
from autoloss_zero.expr.tree import parse
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Candidate, Study

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
CE = "Neg(Log(Mul(y, yhat)))"


@pytest.fixture
def region_terms(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("region_terms")


def test_region_terms_are_the_largest_subtrees_with_yhat_only_below_region_operators(region_terms):
    ops = get_operators()
    node = parse(f"Add({CE}, Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(y))))").node
    found = [_text(n) for n in region_terms.region_subtrees(node, ops)]
    # the whole term: its every yhat is below a region operator (Mean_nhw(y) alone holds
    # no prediction, CE holds a yhat outside one)
    assert found == ["Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(y)))"]
    mixed = parse("Mul(Log(Mean_nhw(Mul(yhat, y))), yhat)").node
    assert [_text(n) for n in region_terms.region_subtrees(mixed, ops)] == [
        "Log(Mean_nhw(Mul(yhat, y)))"]
    assert region_terms.region_subtrees(parse("Mean_nhw(y)").node, ops) == []
    assert region_terms.region_subtrees(parse(CE).node, ops) == []


def test_collect_counts_terms_by_normal_form_across_a_study(region_terms, tmp_path):
    path = tmp_path / "s.db"
    s = Study(path, meta={"task": "segmentation", "metric": "miou",
                         "config": SearchConfig().to_dict()})
    rows = [  # Mul(y, yhat) and Mul(yhat, y) are one term (Mul commutes)
        ("rejected", None, "Mean_nhw(Mul(y, yhat))"),
        ("evaluated", 0.3, f"Add({CE}, Mean_nhw(Mul(yhat, y)))"),
        ("evaluated", 0.4, f"Mul({CE}, Mean_nhw(Mul(y, yhat)))"),
        ("evaluated", 0.2, f"Add({CE}, Mean_nhw(Add(y, yhat)))"),
        ("rejected", None, "Mean_nhw(y)"),
    ]
    s.insert([Candidate(id=i, step=i, formula=f, normal=f, status=st, score=sc)
              for i, (st, sc, f) in enumerate(rows, start=1)])
    s.close()
    terms, n = region_terms.collect([path], get_operators())
    assert n == 5
    assert [(t["term"], t["generated"], t["trained"], t["best"]) for t in terms] == [
        ("Mean_nhw(Mul(y, yhat))", 3, 2, 0.4), ("Mean_nhw(Add(y, yhat))", 1, 1, 0.2)]


def _stat(mean, std):
    return {"mean": mean, "std": std}


def test_report_marks_only_the_sums_and_retrainings_beyond_ce(region_terms):
    term = "Mean_nhw(Mul(y, yhat))"
    win, tie = f"Add({CE}, {term})", f"Add({CE}, Neg({term}))"
    rep = {"command": "c", "machine": "m", "date": "d", "studies": ["s.db"],
           "candidates_read": 3, "distinct_terms": 1, "tried": 1, "sample_seed": 0,
           "metric": "miou", "confirm_seeds": 4, "ce": _stat(0.36, 0.01),
           "terms": [{"term": term, "generated": 3, "trained": 1, "best": 0.2}],
           "sums": [
               {"term": term, "sign": "+", "formula": win, "accepted": True, "reason": None,
                "proxy1": 0.40, "proxy": _stat(0.39, 0.01), "beats_ce": True},
               {"term": term, "sign": "-", "formula": tie, "accepted": True, "reason": None,
                "proxy1": 0.37, "proxy": _stat(0.365, 0.01), "beats_ce": False}],
           "retrained": {"metrics": ["miou", "bf1"], "seeds": 3, "losses": [
               {"loss": "ce", "metrics": {"miou": _stat(0.52, 0.005), "bf1": _stat(0.37, 0.01)},
                "failed": []},
               {"loss": win, "metrics": {"miou": _stat(0.54, 0.005), "bf1": _stat(0.375, 0.01)},
                "failed": []}]}}
    text = region_terms.render(rep)
    assert "above CE by more than one standard deviation of either with 4 seeds: 1." in text
    assert "**39.0 ± 1.0**" in text and "**36.5" not in text
    row = next(line for line in text.splitlines() if line.startswith(f"| `{win}` |"))
    assert row == f"| `{win}` | **54.0 ± 0.5** | 37.5 ± 1.0 |"  # bf1 within the spread
