"""The segmentation task at tiny sizes: data, leaves, screening, training, baselines."""

import math

import pytest
import torch

from autoloss_zero import parse
from autoloss_zero.tasks import InvalidLoss, get_task
from autoloss_zero.tasks.segmentation import NUM_CLASSES, SegmentationTask
from conftest import load_module

TINY = dict(train_items=24, val_items=6, test_items=6, width=8, proxy_steps=3, full_steps=4,
            batch_size=4, eval_batch=4)


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="module")
def task():
    return get_task("segmentation", **TINY)


def _check_metrics(out):
    assert set(out) == set(SegmentationTask.metrics)
    assert all(0.0 <= v <= 1.0 for v in out.values()), out


def test_splits_are_canvases_with_label_maps(task):
    x, y = task.split("train")
    assert x.shape == (24, 1, 64, 64) and x.dtype == torch.float32
    assert y.shape == (24, 64, 64) and y.dtype == torch.int64
    assert 0 <= int(y.min()) and int(y.max()) < NUM_CLASSES and (y > 0).any()
    assert task.build_model()(x[:2]).shape == (2, NUM_CLASSES, 64, 64)


def test_branch_inputs_for_batches_and_screening_samples(task):
    for shape in [(2,), (3, 1)]:
        raw = torch.randn(*shape, NUM_CLASSES, 8, 8)
        labels = torch.randint(0, NUM_CLASSES, (*shape, 8, 8))
        leaves = task.branch_inputs(raw, labels)["loss"]
        assert leaves["yhat"].shape == leaves["y"].shape == raw.shape
        assert torch.allclose(leaves["yhat"].sum(-3), torch.ones(()))
        assert torch.equal(leaves["y"].argmax(-3), labels)


def test_screening_batch_and_sample_metrics(task):
    batch = task.screening_batch(5, seed=0)
    assert batch.raw.shape == (5, 1, NUM_CLASSES, 64, 64)
    assert batch.target.shape == (5, 1, 64, 64)
    for metric in task.metrics:
        values = task.sample_metric(batch.raw, batch.target, metric)
        assert values.shape == (5,) and bool(((values >= 0) & (values <= 1)).all())
    perfect = torch.nn.functional.one_hot(batch.target, NUM_CLASSES).movedim(-1, -3) * 10.0
    assert torch.all(task.sample_metric(perfect, batch.target, "bf1") == 1.0)


def test_trains_with_a_baseline_and_with_a_searched_formula(task):
    _check_metrics(task.train(task.baseline("ce"), seed=0))
    fn = task.loss_function(parse("Neg(Mul(y, Log(yhat)))"))
    _check_metrics(task.train(fn, seed=0, schedule="full"))


def test_the_formula_for_cross_entropy_equals_ce(task):
    raw = torch.randn(2, NUM_CLASSES, 8, 8, requires_grad=True)
    labels = torch.randint(0, NUM_CLASSES, (2, 8, 8))
    formula = task.loss_function(parse("Neg(Mul(y, Log(yhat)))"))(raw, labels)
    ce = task.baseline("ce")(raw, labels)
    assert float(formula.detach()) == pytest.approx(float(ce.detach()), rel=1e-5)
    (g_formula,) = torch.autograd.grad(formula, raw)
    (g_ce,) = torch.autograd.grad(ce, raw)
    assert torch.allclose(g_formula, g_ce, rtol=1e-4, atol=1e-7)


def test_every_baseline_gives_a_finite_loss_with_gradients(task):
    x, y = task.split("train")
    for name in task.baselines:
        raw = torch.randn(3, NUM_CLASSES, 64, 64, requires_grad=True)
        loss = task.baseline(name)(raw, y[:3])
        loss.backward()
        assert loss.dim() == 0 and math.isfinite(float(loss.detach())), name
        assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="no baseline"):
        task.baseline("nope")


def test_class_weights_favour_the_rare_classes(task):
    from autoloss_zero.baselines import median_frequency_weights

    w = median_frequency_weights(task.split("train")[1], NUM_CLASSES)
    assert w.shape == (NUM_CLASSES,) and bool(torch.isfinite(w).all())
    assert float(w[0]) < float(w[1:].min())  # background is the most frequent class


def test_an_unknown_lr_schedule_is_refused(task):
    with pytest.raises(ValueError, match="lr_schedule"):
        get_task("segmentation", **{**TINY, "lr_schedule": "step"}).train(
            task.baseline("ce"), seed=0
        )


def test_an_infinite_loss_stops_training(task):
    fn = task.loss_function(parse("Mul(yhat, Exp(Inv(y)))"))  # Inv(0) = 1e12, exp overflows
    with pytest.raises(InvalidLoss) as err:
        task.train(fn, seed=0)
    assert err.value.step == 0


def test_the_exported_transform_equals_branch_inputs(task, tmp_path):
    signature, source = task.export_transform()
    assert signature == "logits, labels"
    path = tmp_path / "transform.py"
    path.write_text("import torch\nimport torch.nn.functional as F\n\n\n" + source + "\n")
    module = load_module(path, "transform")
    raw = torch.randn(2, NUM_CLASSES, 8, 8)
    labels = torch.randint(0, NUM_CLASSES, (2, 8, 8))
    ours = task.branch_inputs(raw, labels)["loss"]
    theirs = module.branch_inputs(raw, labels)["loss"]
    assert all(torch.equal(ours[k], theirs[k]) for k in ("yhat", "y"))


def test_variants(task):
    large = task.with_variant("large")
    assert sum(p.numel() for p in large.build_model().parameters()) > 3 * sum(
        p.numel() for p in task.build_model().parameters()
    )
    digits = task.with_variant("digits")
    x, y = digits.split("val")
    assert x.shape == (6, 1, 64, 64) and int(y.max()) < NUM_CLASSES
    assert not torch.equal(x, task.split("val")[0])


def test_lovasz_equals_kornia_when_every_class_is_present():
    from kornia.losses import lovasz_softmax_loss

    from autoloss_zero.baselines import lovasz

    logits = torch.randn(1, 4, 8, 8)
    labels = torch.arange(64).reshape(1, 8, 8) % 4
    expected = float(lovasz_softmax_loss(logits, labels))
    assert float(lovasz(logits, labels)) == pytest.approx(expected)


def test_proxy_size_renders_the_proxy_canvases_smaller():
    """``proxy_size``: the proxy trains and is scored on canvases rendered at that size
    (a quarter of the pixels at half the size, and a quarter of the cost per step); the
    full schedule and its run identity on the test split do not see it."""
    base = dict(train_items=32, val_items=8, test_items=8, proxy_steps=2, full_steps=1,
                eval_batch=8)
    small = get_task("segmentation", proxy_size=32, **base)
    plain = get_task("segmentation", **base)
    seen = []
    real = type(small).predict

    def spy(self, model, x):
        seen.append(tuple(x.shape[-2:]))
        return real(self, model, x)

    type(small).predict = spy
    try:
        small.train(small.baseline("ce"), seed=0, schedule="proxy")
        proxy_shapes = set(seen)
        seen.clear()
        small.train(small.baseline("ce"), seed=0, schedule="full")
    finally:
        type(small).predict = real
    assert proxy_shapes == {(32, 32)} and set(seen) == {(64, 64)}
    assert small.split("train")[0].shape[-2:] == (64, 64)  # outside train: the task's size
    assert small.schedule_cost("proxy") == plain.schedule_cost("proxy") / 4
    assert small.schedule_cost("full") == plain.schedule_cost("full")
    assert small.run_identity("full") == plain.run_identity("full")
    assert small.run_identity("proxy") != plain.run_identity("proxy")
    with pytest.raises(ValueError, match="proxy_size"):
        get_task("segmentation", proxy_size=30)
