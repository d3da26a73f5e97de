"""Keypoint metrics and the pose task at tiny sizes."""

import numpy as np
import pytest
import torch

from autoloss_zero import parse
from autoloss_zero.metrics.keypoints import keypoint_ap, oks, pck, per_sample_ap
from autoloss_zero.tasks import InvalidLoss, get_task
from autoloss_zero.tasks.pose import decode, gaussian_heatmaps

TINY = dict(train_items=24, val_items=6, test_items=6, width=4, proxy_steps=3, full_steps=4,
            batch_size=4, eval_batch=4)


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="module")
def task():
    return get_task("pose", **TINY)


def _case(n=8, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rng.uniform(4, 28, (n, 5, 2)))
    pred = gt + torch.from_numpy(rng.normal(0, noise, gt.shape))
    area = torch.from_numpy(rng.uniform(100, 300, n))
    return pred, gt, area


def test_keypoint_ap_is_one_for_perfect_predictions():
    _, gt, area = _case()
    assert keypoint_ap(gt, torch.rand(len(gt)), gt, area) == pytest.approx(1.0)
    assert torch.all(per_sample_ap(gt, gt, area) == 1.0)
    assert torch.all(pck(gt, gt, torch.full((len(gt),), 20.0)) == 1.0)


@pytest.mark.parametrize("noise", [0.5, 1.5, 3.0])
def test_per_sample_ap_equals_faster_coco_eval_on_each_image(noise):
    pred, gt, area = _case(noise=noise, seed=int(noise * 10))
    fast = per_sample_ap(pred, gt, area)
    for i in range(len(gt)):
        one = keypoint_ap(pred[i : i + 1], torch.ones(1), gt[i : i + 1], area[i : i + 1])
        assert float(fast[i]) == pytest.approx(one, abs=1e-9)


def test_dataset_ap_ranks_detections_by_score():
    pred, gt, area = _case(noise=1.5)
    quality = oks(pred, gt, area)
    good_first = keypoint_ap(pred, quality, gt, area)
    bad_first = keypoint_ap(pred, -quality, gt, area)
    assert 0.0 < bad_first < good_first < 1.0


def test_non_finite_scores_do_not_break_the_evaluator():
    pred, gt, area = _case(n=3, noise=0.0)
    scores = torch.tensor([float("nan"), float("inf"), -float("inf")])
    assert keypoint_ap(pred, scores, gt, area) == pytest.approx(1.0)


def test_pck_threshold():
    gt = torch.zeros(1, 5, 2)
    pred = torch.tensor([[[0.0, 1.9], [2.1, 0.0], [0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]])
    assert float(pck(pred, gt, torch.tensor([20.0]))[0]) == pytest.approx(3 / 5)


def test_decoding_recovers_heatmap_centres():
    pts = torch.tensor([[[3.0, 7.0], [20.0, 4.0], [11.5, 30.0], [0.0, 0.0], [31.0, 16.0]]])
    hm = gaussian_heatmaps(pts, 16, 1.0)
    assert hm.shape == (1, 5, 16, 16)
    found, score = decode(hm)
    assert (found - pts).abs().max() <= 0.5 and score.shape == (1,)


def test_splits_have_heatmaps_keypoints_and_sizes(task):
    x, target = task.split("train")
    n = len(x)
    assert x.shape == (n, 1, 32, 32) and 20 <= n <= 24
    assert target["heatmap"].shape == (n, 5, 16, 16)
    assert target["keypoints"].shape == (n, 5, 2)
    assert target["area"].shape == target["size"].shape == (n,)
    found, _ = decode(target["heatmap"])
    assert float(per_sample_ap(found, target["keypoints"], target["area"]).mean()) > 0.95


def test_screening_batch_and_sample_metrics(task):
    batch = task.screening_batch(5, seed=0)
    assert batch.raw.shape == (5, 1, 5, 16, 16)
    assert batch.target["heatmap"].shape == (5, 1, 5, 16, 16)
    assert batch.target["keypoints"].shape == (5, 1, 5, 2)
    leaves = task.branch_inputs(batch.raw, batch.target)["loss"]
    assert leaves["yhat"].shape == leaves["y"].shape == (5, 1, 5, 16, 16)
    for metric in task.metrics:
        assert task.sample_metric(batch.raw, batch.target, metric).shape == (5,)
        perfect = task.sample_metric(batch.target["heatmap"], batch.target, metric)
        assert torch.all(perfect > 0.95)


def test_trains_with_mse_and_with_a_searched_formula(task):
    for fn in (task.baseline("mse"), task.loss_function(parse("Neg(Mul(y, Log(yhat)))"))):
        out = task.train(fn, seed=0)
        assert set(out) == {"ap", "pck"} and all(0.0 <= v <= 1.0 for v in out.values())


def test_the_formula_for_mse_equals_mse_times_k(task):
    raw, target = torch.randn(2, 5, 16, 16), torch.rand(2, 5, 16, 16)
    formula = task.loss_function(parse("Square(Add(yhat, Neg(y)))"))(raw, target)
    assert float(formula) == pytest.approx(5 * float(task.baseline("mse")(raw, target)), rel=1e-5)


def test_a_nan_loss_stops_training(task):
    with pytest.raises(InvalidLoss):
        task.train(lambda raw, target: raw.sum() * float("nan"), seed=0)
    with pytest.raises(InvalidLoss):
        task.train(task.loss_function(parse("Mul(yhat, Exp(Inv(y)))")), seed=0)
