"""Keypoint metrics and the pose task at tiny sizes."""

import math

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


# COCO's per-keypoint sigmas (Ronchi & Perona 2017, pycocotools): ankle 0.089 for the four
# extreme points, wrist 0.062 for the centre (docs of autoloss_zero.metrics.keypoints).
COCO_SIGMAS = [0.089, 0.089, 0.089, 0.089, 0.062]


def test_oks_equals_hand_computed_values():
    # OKS = mean_k exp(-d_k^2 / (2 * area * (2 sigma_k)^2)), every keypoint visible.
    gt = torch.zeros(2, 5, 2, dtype=torch.float64)
    pred = gt.clone()
    pred[0, 0] = torch.tensor([3.0, 4.0])  # left point 5 px off: d^2 = 25
    pred[0, 4] = torch.tensor([1.0, 0.0])  # centre 1 px off
    pred[1, 2] = torch.tensor([0.0, -2.0])  # top point 2 px off, a larger object
    area = torch.tensor([200.0, 350.0], dtype=torch.float64)
    want = [
        (math.exp(-25 / (2 * 200 * 0.178**2)) + 3 + math.exp(-1 / (2 * 200 * 0.124**2))) / 5,
        (4 + math.exp(-4 / (2 * 350 * 0.178**2))) / 5,
    ]
    assert oks(pred, gt, area).tolist() == pytest.approx(want, abs=1e-12)
    # the module docstring's example: 1 px off, area 175 -> 0.91 (extreme), 0.83 (centre)
    one = torch.zeros(1, 5, 2, dtype=torch.float64)
    off = one.clone()
    off[0, :, 0] = 1.0
    per_kp = torch.tensor([math.exp(-1 / (2 * 175 * (2 * s) ** 2)) for s in COCO_SIGMAS])
    assert per_kp[0] == pytest.approx(0.9138, abs=1e-4)
    assert per_kp[4] == pytest.approx(0.8304, abs=1e-4)
    assert float(oks(off, one, torch.tensor([175.0]))[0]) == pytest.approx(float(per_kp.mean()))


def _coco_oks(pred, gt, area):
    """faster-coco-eval's own OKS (COCOeval.computeOks) for one object per image."""
    from faster_coco_eval import COCO, COCOeval_faster

    images, anns, dets = [], [], []
    for i in range(len(gt)):
        g = np.concatenate([gt[i], np.full((5, 1), 2.0)], 1).reshape(-1).tolist()
        p = np.concatenate([pred[i], np.full((5, 1), 2.0)], 1).reshape(-1).tolist()
        x0, y0 = gt[i].min(0)
        x1, y1 = gt[i].max(0)
        images.append({"id": i + 1, "width": 64, "height": 64})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                     "area": float(area[i]), "keypoints": g, "num_keypoints": 5,
                     "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
        dets.append({"image_id": i + 1, "category_id": 1, "keypoints": p, "score": 1.0})
    coco = COCO({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "o"}]},
                print_function=lambda *a, **k: None)
    ev = COCOeval_faster(coco, coco.loadRes(dets), iouType="keypoints",
                         kpt_oks_sigmas=COCO_SIGMAS, print_function=lambda *a, **k: None)
    ev.evaluate()
    return np.array([float(np.asarray(ev.ious[i + 1, 1]).reshape(-1)[0])
                     for i in range(len(gt))])


@pytest.mark.parametrize("noise", [0.5, 2.0, 5.0])
def test_oks_equals_faster_coco_eval(noise):
    pred, gt, area = _case(n=12, noise=noise, seed=int(noise * 7))
    ref = _coco_oks(pred.numpy(), gt.numpy(), area.numpy())
    assert oks(pred, gt, area).numpy() == pytest.approx(ref, abs=1e-12)
    assert 0.0 < ref.min() < ref.max() < 1.0


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
