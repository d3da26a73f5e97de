"""benchmarks/weight_reach.py (issue 13.1): its gradient classifier tells a class-weighted
CE from CE, from the opposite weighting and from other losses, on real masks."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import autoloss_zero as az
from autoloss_zero.search.candidates import CandidateMaker
from autoloss_zero.search.config import SearchConfig

pytestmark = pytest.mark.timeout(120)
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def gradients(monkeypatch, formula):
    """The benchmark module, a loss's and CE's logit gradients on 8 real masks, the masks
    and the class shares."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    reach = importlib.import_module("weight_reach")
    task = az.get_task("segmentation")
    logits, tgt = reach.batch(task, n=8)
    maker = CandidateMaker.from_config(task, SearchConfig())
    g_ce, shares = reach.reference(maker, task, logits, tgt)
    g = reach.logit_grad(maker.parse_loss(formula), logits, tgt, task)
    return reach, g, g_ce, tgt, shares


@pytest.mark.parametrize("formula, kind", [
    ("Mul(Neg(Log(Mul(Mul(Inv(Mean_nhw(Mean_c(y))), y), yhat))), Inv(Sqrt(Mean_nhw(y))))",
     "rare classes up"),  # the class-balanced CE a search found (weight under Log: a constant)
    ("Mul(Inv(Mean_nhw(y)), Neg(Log(Mul(y, yhat))))", "rare classes up"),
    ("Mul(Neg(Log(Mul(y, yhat))), Mean_nhw(y))", "frequent classes up"),
    ("Neg(Log(Mul(Mul(Sqrt(Mean_nhw(Mean_c(y))), y), Sqrt(yhat))))", "CE-equivalent"),
    ("Square(Log(Mul(y, yhat)))", "other"),  # a per-pixel weight, not a per-class one
    ("Mul(Neg(Log(Mul(y, yhat))), Neg(Mean_nhw(y)))", "other"),  # negative weights
])
def test_classifier(monkeypatch, formula, kind):
    reach, g, g_ce, tgt, shares = gradients(monkeypatch, formula)
    assert reach.kind_of(g, g_ce, tgt, shares) == kind


@pytest.mark.parametrize("formula, exponent", [
    ("Mul(Neg(Log(Mul(Mul(Inv(Mean_nhw(Mean_c(y))), y), yhat))), Inv(Sqrt(Mean_nhw(y))))",
     -0.5),  # class-balanced CE
    ("Mul(Inv(Mean_nhw(y)), Neg(Log(Mul(y, yhat))))", -1.0),  # inverse frequency
    ("Mul(Neg(Log(Mul(y, yhat))), Mean_nhw(y))", 1.0),
])
def test_weight_exponent(monkeypatch, formula, exponent):
    reach, g, g_ce, tgt, shares = gradients(monkeypatch, formula)
    assert reach.weight_exponent(g, g_ce, tgt, shares) == pytest.approx(exponent, abs=0.02)
