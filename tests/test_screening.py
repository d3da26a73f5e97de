"""The loss-rejection protocol and the gradient-equivalence check on real tasks."""

from __future__ import annotations

import pytest

import autoloss_zero as az
from autoloss_zero.search.config import ScreeningConfig
from autoloss_zero.search.equivalence import fingerprint
from autoloss_zero.search.rejection import ACCEPTED, REJECTED, SETTLED, Screener
from autoloss_zero.tasks import get_task

CE = "Neg(Mul(y, Log(yhat)))"


@pytest.fixture(scope="module")
def screener():
    task = get_task("classification", train_items=300)
    return Screener(task, "accuracy", ScreeningConfig(), seed=0)


def screen(s, text, **kw):
    return s.screen(s.task.as_task_loss(text), **kw)


def test_accepts_cross_entropy_rejects_its_negation(screener):
    good = screen(screener, CE)
    assert good.verdict == ACCEPTED and good.g > 0.5
    bad = screen(screener, f"Neg({CE})")
    assert bad.verdict == REJECTED and bad.g < 0
    mse = screen(screener, "Square(Add(yhat, Neg(y)))")
    assert mse.verdict == ACCEPTED


def test_shortcuts(screener):
    no_pred = screen(screener, "Log(y)")
    assert no_pred.verdict == REJECTED and no_pred.shortcut
    assert "depend on the prediction" in no_pred.reason
    const = screen(screener, "Mean_c(yhat)")  # softmax sums to 1: constant in the logits
    assert const.verdict == REJECTED and const.shortcut and "zero gradient" in const.reason
    nan = screen(screener, "Add(Exp(Exp(Inv(yhat))), Neg(Exp(Exp(Inv(yhat)))))")  # inf - inf
    assert nan.verdict == REJECTED and nan.shortcut and "NaN/Inf loss" in nan.reason
    overflow = screen(screener, "Exp(Exp(Exp(Inv(Mul(yhat, y)))))")
    assert overflow.verdict == REJECTED and "NaN/Inf" in overflow.reason


def test_equivalent_forms_share_a_fingerprint(screener):
    a = screen(screener, CE, optimize=False).fingerprint
    for text in ["Neg(Mul(Log(yhat), y))", "Mul(y, Neg(Log(yhat)))", "Mul(Neg(y), Log(yhat))",
                 "Neg(Neg(Neg(Mul(y, Log(yhat)))))",
                 "Add(Neg(Mul(y, Log(yhat))), Mul(y, Add(1, Neg(1))))"]:
        assert screen(screener, text, optimize=False).fingerprint == a, text
    scaled = screen(screener, f"Add({CE}, {CE})", optimize=False).fingerprint
    squared = screen(screener, f"Square({CE})", optimize=False).fingerprint
    assert scaled != a and squared != a


def test_lookup_settles_before_optimization(screener):
    fp = screen(screener, CE, optimize=False).fingerprint
    seen = {fp: 42}
    res = screen(screener, "Mul(y, Neg(Log(yhat)))", lookup=seen.get)
    assert res.verdict == SETTLED and res.settled == 42 and res.g is None


def test_fingerprint_rounding():
    assert fingerprint([0.123456, 1234.5, 0.0], 2) == "1.2e-01,1.2e+03,0.0e+00"
    assert fingerprint([0.125], 3) == "1.25e-01"


def test_check_on_a_user_task(examples_on_path):
    task = get_task("diabetes_task:DiabetesTask")
    s = Screener(task, "r2", ScreeningConfig(), seed=1)
    assert screen(s, "Square(Add(yhat, Neg(y)))").verdict == ACCEPTED
    assert screen(s, "Neg(Square(Add(yhat, Neg(y))))").verdict == REJECTED
    assert screen(s, "Square(yhat)").verdict == REJECTED


def test_screening_is_deterministic():
    task = get_task("classification", train_items=300)
    a = Screener(task, "accuracy", ScreeningConfig(), seed=3)
    b = Screener(task, "accuracy", ScreeningConfig(), seed=3)
    loss = az.parse("Tanh(Add(Mul(y, 1), Exp(yhat)))")
    ra, rb = a.screen(task.as_task_loss(loss)), b.screen(task.as_task_loss(loss))
    assert (ra.g, ra.fingerprint, ra.verdict) == (rb.g, rb.fingerprint, rb.verdict)


@pytest.mark.parametrize("name, metric", [
    *[("segmentation", m) for m in ("miou", "fwiou", "gacc", "macc", "biou", "bf1")],
    ("pose", "ap"), ("pose", "pck"),
])
def test_dense_tasks_accept_their_good_references_and_reject_the_bad(name, metric):
    """The real Screener on each dense task's real screening images, for every metric:
    the task's known-good losses (``references["good"]``: CE, squared error) are accepted,
    the known-bad ones (an unlearning CE, losses without the prediction, a constant)
    rejected. Only verdicts are asserted: g and fingerprints are the protocol's business."""
    task = get_task(name)
    assert task.references["good"] and task.references["bad"]
    s = Screener(task, metric, ScreeningConfig(), seed=0)
    for kind, formulas in task.references.items():
        for text in formulas:
            res = screen(s, text)
            assert (res.verdict == ACCEPTED) == (kind == "good"), (kind, text, res.reason)
