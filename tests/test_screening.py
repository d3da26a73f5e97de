"""The loss-rejection protocol and the gradient-equivalence check on real tasks."""

from __future__ import annotations

import pytest

import autoloss_zero as az
from autoloss_zero.search.config import ScreeningConfig
from autoloss_zero.search.equivalence import fingerprint
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.status import Verdict
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
    assert good.verdict == Verdict.ACCEPTED and good.g > 0.5
    bad = screen(screener, f"Neg({CE})")
    assert bad.verdict == Verdict.REJECTED and bad.g < 0
    mse = screen(screener, "Square(Add(yhat, Neg(y)))")
    assert mse.verdict == Verdict.ACCEPTED


def test_shortcuts(screener):
    no_pred = screen(screener, "Log(y)")
    assert no_pred.verdict == Verdict.REJECTED and no_pred.shortcut
    assert "depend on the prediction" in no_pred.reason
    no_target = screen(screener, "Square(yhat)")
    assert no_target.verdict == Verdict.REJECTED and "depend on the target" in no_target.reason
    const = screen(screener, "Mul(Mean_c(yhat), y)")  # softmax sums to 1: constant in logits
    assert const.verdict == Verdict.REJECTED and const.shortcut and "zero gradient" in const.reason
    nan = screen(screener, "Add(Exp(Exp(Inv(yhat))), Neg(Exp(Exp(Inv(Mul(y, yhat))))))")
    assert nan.verdict == Verdict.REJECTED and nan.shortcut and "NaN/Inf loss" in nan.reason
    overflow = screen(screener, "Exp(Exp(Exp(Inv(Mul(yhat, y)))))")
    assert overflow.verdict == Verdict.REJECTED and "NaN/Inf" in overflow.reason


def test_equivalent_forms_share_a_fingerprint(screener):
    a = screen(screener, CE, optimize=False).fingerprint
    for text in ["Neg(Mul(Log(yhat), y))", "Mul(y, Neg(Log(yhat)))", "Mul(Neg(y), Log(yhat))",
                 "Neg(Neg(Neg(Mul(y, Log(yhat)))))",
                 "Add(Neg(Mul(y, Log(yhat))), Mul(y, Add(1, Neg(1))))"]:
        assert screen(screener, text, optimize=False).fingerprint == a, text
    scaled = screen(screener, f"Add({CE}, {CE})", optimize=False).fingerprint
    squared = screen(screener, f"Square({CE})", optimize=False).fingerprint
    assert scaled != a and squared != a


def test_a_loss_and_its_negation_never_share_a_fingerprint(screener):
    """The fingerprint is sign-aware: cross-entropy and anti-cross-entropy have equal
    gradient norms, but opposite directional derivatives."""
    ce = screen(screener, CE, optimize=False).fingerprint
    anti = screen(screener, "Mul(y, Log(yhat))", optimize=False).fingerprint
    norms_ce, dirs_ce = ce.split("|")
    norms_anti, dirs_anti = anti.split("|")
    assert norms_ce == norms_anti  # the old, sign-blind key collided
    assert ce != anti
    first_ce, first_anti = float(dirs_ce.split(",")[0]), float(dirs_anti.split(",")[0])
    assert first_ce == -first_anti != 0


def test_accepted_fingerprints_include_the_end_of_the_optimization(screener):
    res = screen(screener, CE)
    assert res.verdict == Verdict.ACCEPTED and res.fingerprint.count("|") == 2
    same = screen(screener, "Add(Mul(Neg(y), Log(yhat)), Mean_c(yhat))")  # + a constant
    assert same.verdict == Verdict.ACCEPTED and same.fingerprint == res.fingerprint
    rejected = screen(screener, f"Neg({CE})")
    assert rejected.verdict == Verdict.REJECTED and rejected.fingerprint.count("|") == 1


def test_zero_gradient_test_is_relative(screener):
    """A loss scaled down by 1e-9 keeps a real (tiny) gradient that Adam follows: it is
    screened like the unscaled loss. A constant in the logits is rejected."""
    tiny = screen(screener, f"Mul({CE}, Exp(Neg(Exp(Exp(Add(1, 1))))))")  # e^-e^e^2 ~ 1e-710?
    # e^(-e^(e^2)) underflows to 0 in float32: this one has a truly zero gradient
    assert tiny.verdict == Verdict.REJECTED and "zero gradient" in tiny.reason
    small = screen(screener, f"Mul({CE}, Exp(Neg(Exp(Add(1, Add(1, 1))))))")  # x e^-20
    assert small.verdict == Verdict.ACCEPTED, small.reason
    const = screen(screener, "Mul(Mean_c(yhat), y)")
    assert const.verdict == Verdict.REJECTED and "zero gradient" in const.reason


def test_fingerprint_rounding():
    assert fingerprint([0.123456, 1234.5, 0.0], 2) == "1.2e-01,1.2e+03,0.0e+00"
    assert fingerprint([0.125], 3) == "1.25e-01"


def test_check_on_a_user_task(examples_on_path):
    task = get_task("diabetes_task:DiabetesTask")
    s = Screener(task, "r2", ScreeningConfig(), seed=1)
    assert screen(s, "Square(Add(yhat, Neg(y)))").verdict == Verdict.ACCEPTED
    assert screen(s, "Neg(Square(Add(yhat, Neg(y))))").verdict == Verdict.REJECTED
    assert screen(s, "Square(yhat)").verdict == Verdict.REJECTED


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
            assert (res.verdict == Verdict.ACCEPTED) == (kind == "good"), (kind, text, res.reason)
