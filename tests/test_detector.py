"""The detector's building blocks against direct reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autoloss_zero.metrics.detection import coco_ap, image_ap, thresholds_of
from autoloss_zero.tasks.detector.anchors import make_anchors
from autoloss_zero.tasks.detector.boxes import (
    DELTA_WEIGHTS_RCNN,
    decode,
    encode,
    giou,
    iou,
    iue,
    pairwise_iou,
)
from autoloss_zero.tasks.detector.nms import batched_nms, nms
from autoloss_zero.tasks.detector.pipeline import paste_masks
from autoloss_zero.tasks.detector.roi_align import roi_align, roi_align_grid_sample
from autoloss_zero.tasks.detector.sampling import sample_fixed
from conftest import examples

torch.set_num_threads(1)


def random_boxes(rng: np.random.Generator, n: int, size: float = 64.0) -> torch.Tensor:
    xy = rng.uniform(-4, size - 4, (n, 2))
    wh = rng.uniform(1, 30, (n, 2))
    return torch.tensor(np.concatenate((xy, xy + wh), 1), dtype=torch.float64)


def py_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


# -- boxes ---------------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(st.integers(0, 10_000))
def test_iou_giou_against_python(seed):
    rng = np.random.default_rng(seed)
    a, b = random_boxes(rng, 5), random_boxes(rng, 4)
    m = pairwise_iou(a, b)
    for i in range(5):
        for j in range(4):
            ref = py_iou(a[i].tolist(), b[j].tolist())
            assert m[i, j].item() == pytest.approx(ref, abs=1e-12)
    pairs = iou(a[:4], b)
    assert torch.allclose(pairs, m[torch.arange(4), torch.arange(4)])
    for k in range(4):
        p, g = a[k].tolist(), b[k].tolist()
        ex = (max(p[2], g[2]) - min(p[0], g[0])) * (max(p[3], g[3]) - min(p[1], g[1]))
        un = (p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1])
        un -= py_iou(p, g) * un / (1 + py_iou(p, g))  # union = (A + B) / (1 + IoU)
        ref = py_iou(p, g) - (ex - un) / ex
        assert giou(a[k], b[k]).item() == pytest.approx(ref, abs=1e-9)


def test_iue_are_normalized_areas():
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[5.0, 0.0, 15.0, 5.0]])  # area 50, intersection 25, union 125
    i, u, e = iue(pred, gt)
    assert (i.item(), u.item(), e.item()) == (0.5, 2.5, 3.0)  # enclosing 15 x 10 = 150
    assert giou(pred, gt).item() == pytest.approx(0.2 - (150 - 125) / 150)


@settings(max_examples=examples(30))
@given(st.integers(0, 10_000), st.sampled_from([(1.0, 1.0, 1.0, 1.0), DELTA_WEIGHTS_RCNN]))
def test_encode_decode_round_trip(seed, weights):
    rng = np.random.default_rng(seed)
    ref, boxes = random_boxes(rng, 6), random_boxes(rng, 6)
    d = encode(boxes, ref, weights)
    assert torch.allclose(decode(d, ref, weights), boxes, atol=1e-9)
    assert torch.allclose(encode(ref, ref, weights), torch.zeros(6, 4, dtype=torch.float64))


def test_anchors_layout():
    a = make_anchors(4, 8, (16.0, 32.0), (0.5, 1.0, 2.0))
    assert a.shape == (4 * 4 * 6, 4)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert torch.allclose(w * h, torch.tensor([256.0, 1024.0] * 3 * 16))
    assert torch.allclose(((a[:6, :2] + a[:6, 2:]) / 2), torch.full((6, 2), 4.0))
    assert torch.allclose(((a[6:12, :2] + a[6:12, 2:]) / 2), torch.tensor([[12.0, 4.0]] * 6))


# -- NMS -----------------------------------------------------------------------------


def brute_nms(boxes, scores, t):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    keep = []
    for i in order:
        if all(py_iou(boxes[i], boxes[j]) <= t for j in keep):
            keep.append(i)
    return keep


@settings(max_examples=examples(40))
@given(st.integers(0, 10_000), st.integers(0, 40), st.sampled_from([0.3, 0.5, 0.7]))
def test_nms_matches_brute_force(seed, n, t):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n).float()
    scores = torch.tensor(rng.integers(0, 8, n) / 8.0, dtype=torch.float32)  # with ties
    got = nms(boxes, scores, t).tolist()
    assert got == brute_nms(boxes.tolist(), scores.tolist(), t)


@settings(max_examples=examples(30))
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_batched_nms_is_nms_per_group(seed, n):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n).float()
    scores = torch.tensor(rng.random(n), dtype=torch.float32)
    groups = torch.tensor(rng.integers(0, 3, n))
    got = set(batched_nms(boxes, scores, groups, 0.5).tolist())
    ref = set()
    for g in range(3):
        idx = [i for i in range(n) if groups[i] == g]
        kept = brute_nms(boxes[idx].tolist(), scores[idx].tolist(), 0.5)
        ref |= {idx[k] for k in kept}
    assert got == ref


# -- RoIAlign ------------------------------------------------------------------------


def direct_roi_align(f, rois, out, scale, sampling):
    """Bilinear samples averaged per bin, one point at a time (border clamping)."""
    n, c, h, w = f.shape
    r = rois.shape[1]
    res = torch.zeros(n, r, c, out, out, dtype=f.dtype)

    def bil(img, y, x):
        y, x = min(max(y, 0.0), h - 1.0), min(max(x, 0.0), w - 1.0)
        y0, x0 = int(math.floor(y)), int(math.floor(x))
        y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        ly, lx = y - y0, x - x0
        return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
                + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])

    for i in range(n):
        for k in range(r):
            x0, y0, x1, y1 = (float(v) * scale for v in rois[i, k])
            x0, y0, x1, y1 = x0 - 0.5, y0 - 0.5, x1 - 0.5, y1 - 0.5
            bw, bh = (x1 - x0) / out, (y1 - y0) / out
            for a in range(out):
                for b in range(out):
                    acc = torch.zeros(c, dtype=f.dtype)
                    for sa in range(sampling):
                        for sb in range(sampling):
                            yy = y0 + a * bh + (sa + 0.5) * bh / sampling
                            xx = x0 + b * bw + (sb + 0.5) * bw / sampling
                            acc += bil(f[i], yy, xx)
                    res[i, k, :, a, b] = acc / sampling**2
    return res


@pytest.mark.parametrize("impl", [roi_align, roi_align_grid_sample])
def test_roi_align_against_direct_bilinear(impl):
    rng = np.random.default_rng(0)
    f = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    rois = torch.stack([random_boxes(rng, 4, size=32.0) for _ in range(2)])
    rois[0, 0] = torch.tensor([-6.0, -6.0, 40.0, 38.0], dtype=torch.float64)  # beyond borders
    ref = direct_roi_align(f, rois, 3, 0.25, 2)
    got = impl(f, rois, 3, 0.25, 2)
    assert got.shape == (2, 4, 3, 3, 3)
    assert torch.allclose(got, ref, atol=1e-10)


def test_roi_align_implementations_agree_with_gradients():
    rng = np.random.default_rng(1)
    f = torch.randn(3, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    rois = torch.stack([random_boxes(rng, 5) for _ in range(3)])
    a = roi_align(f, rois, 7, 0.25)
    ga = torch.autograd.grad(a.sin().sum(), f)[0]
    b = roi_align_grid_sample(f, rois, 7, 0.25)
    gb = torch.autograd.grad(b.sin().sum(), f)[0]
    assert torch.allclose(a, b, atol=1e-10) and torch.allclose(ga, gb, atol=1e-10)


def test_paste_masks_fills_the_box():
    probs = torch.ones(1, 14, 14)
    out = paste_masks(probs, torch.tensor([[10.0, 20.0, 30.0, 25.0]]), 64)[0]
    assert out.sum().item() == pytest.approx(20 * 5)
    assert out[20:25, 10:30].min().item() == pytest.approx(1.0)
    ramp = torch.linspace(0, 1, 14).repeat(14, 1)[None]  # increasing along x
    grid = paste_masks(ramp, torch.tensor([[0.0, 0.0, 64.0, 64.0]]), 64)[0]
    ref = torch.nn.functional.grid_sample(
        ramp[None], torch.stack(torch.meshgrid(*(torch.arange(64) * 2 / 64 - 1 + 1 / 64,) * 2,
                                               indexing="xy"), -1)[None],
        padding_mode="border", align_corners=False)[0, 0]
    assert torch.allclose(grid, ref, atol=1e-6)


def test_sample_fixed_positives_first_with_repeats():
    eligible = torch.zeros(2, 10, dtype=torch.bool)
    eligible[0, [1, 4]] = True
    eligible[1] = True
    idx = sample_fixed(eligible, 6, torch.Generator().manual_seed(0))
    assert set(idx[0].tolist()) == {1, 4} and sorted(idx[0].tolist()).count(1) == 3
    assert len(set(idx[1].tolist())) == 6


# -- per-image AP --------------------------------------------------------------------


def random_image(rng, classes=3, max_dets=15):
    g = int(rng.integers(1, 4))
    gt_boxes = random_boxes(rng, g)
    gt_labels = rng.integers(0, classes, g)
    d = int(rng.integers(0, max_dets + 1))
    jitter = torch.tensor(rng.normal(0, 3, (d, 4)))
    src = gt_boxes[torch.as_tensor(rng.integers(0, g, d))] + jitter
    rand = random_boxes(rng, d)
    pick = torch.as_tensor(rng.random(d) < 0.6)[:, None]
    det_boxes = torch.where(pick, src, rand)
    det_boxes[:, 2:] = torch.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 0.5)
    det_labels = np.where(rng.random(d) < 0.7, gt_labels[rng.integers(0, g, d)],
                          rng.integers(0, classes, d))
    scores = rng.random(d)
    return gt_boxes, gt_labels, det_boxes, det_labels, scores


def batch_ap(images, metric):
    s = len(images)
    dmax = max(1, max(len(im[4]) for im in images))
    gmax = max(len(im[1]) for im in images)
    iou_m = np.zeros((s, dmax, gmax))
    scores, dl = np.zeros((s, dmax)), -np.ones((s, dmax), np.int64)
    gl = -np.ones((s, gmax), np.int64)
    for i, (gb, glab, db, dlab, sc) in enumerate(images):
        iou_m[i, : len(sc), : len(glab)] = pairwise_iou(db, gb).numpy()
        scores[i, : len(sc)], dl[i, : len(sc)], gl[i, : len(glab)] = sc, dlab, glab
    return image_ap(iou_m, scores, dl, gl, thresholds_of(metric))


@settings(max_examples=examples(30))
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(0, 40))
def test_image_ap_matches_faster_coco_eval(seed, classes, max_dets):
    rng = np.random.default_rng(seed)
    images = [random_image(rng, classes, max_dets) for _ in range(4)]
    got = {m: batch_ap(images, m) for m in ("map", "map50")}
    for i, (gb, glab, db, dlab, sc) in enumerate(images):
        ref = coco_ap([{"boxes": gb.numpy(), "labels": glab}],
                      [{"boxes": db.numpy(), "scores": sc, "labels": dlab}], classes)
        assert got["map"][i] == pytest.approx(ref["map"], abs=1e-9)
        assert got["map50"][i] == pytest.approx(ref["map50"], abs=1e-9)


def test_image_ap_keeps_100_detections_per_class_like_coco():
    rng = np.random.default_rng(5)
    gb, glab = random_boxes(rng, 2), np.array([0, 0])
    db = torch.cat((random_boxes(rng, 120), gb))  # two hits after 120 misses
    sc = np.concatenate((np.linspace(1.0, 0.5, 120), [0.4, 0.3]))
    dl = np.zeros(122, np.int64)
    ref = coco_ap([{"boxes": gb.numpy(), "labels": glab}],
                  [{"boxes": db.numpy(), "scores": sc, "labels": dl}], 1)
    got = batch_ap([(gb, glab, db, dl, sc)], "map50")[0]
    assert got == pytest.approx(ref["map50"], abs=1e-9)


def test_image_ap_perfect_and_empty():
    gb = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 30.0]], dtype=torch.float64)
    glab = np.array([0, 1])
    assert batch_ap([(gb, glab, gb, glab, np.array([0.9, 0.8]))], "map")[0] == pytest.approx(1.0)
    empty = (gb, glab, gb[:0], glab[:0], np.zeros(0))
    assert batch_ap([empty], "map")[0] == 0.0


def test_image_ap_with_duplicated_detections_like_screening():
    rng = np.random.default_rng(11)
    for _ in range(10):
        gb, glab, db, dl, sc = random_image(rng, 2, 12)
        rep = np.concatenate((np.arange(len(sc)), rng.integers(0, max(1, len(sc)), 6)))
        rep = rep[rep < len(sc)]
        image = (gb, glab, db[torch.as_tensor(rep)], dl[rep], sc[rep])
        ref = coco_ap([{"boxes": gb.numpy(), "labels": glab}],
                      [{"boxes": image[2].numpy(), "scores": image[4], "labels": image[3]}], 2)
        assert batch_ap([image], "map")[0] == pytest.approx(ref["map"], abs=1e-9)


def test_coco_ap_segm_on_hand_drawn_masks():
    """The dataset-level mask AP (``coco_ap`` with ``segm``) on masks whose IoUs are known:
    class 0's detection covers 62 of its GT's 100 pixels and nothing else (IoU 0.62: a
    match at thresholds 0.50, 0.55, 0.60, AP 3/10), class 1's is exact (AP 1)."""
    gt = np.zeros((2, 40, 40), bool)
    gt[0, 10:20, 10:20] = True
    gt[1, 25:35, 5:30] = True
    det = gt.copy()
    det[0, 10:20, 10:13] = False  # 30 pixels off
    det[0, 10:18, 13] = False  # 8 more: 62 left
    assert det[0].sum() == 62 and (det[0] & gt[0]).sum() == 62
    boxes = np.array([[10, 10, 20, 20], [5, 25, 30, 35]], float)
    labels = np.array([0, 1])
    got = coco_ap([{"boxes": boxes, "labels": labels, "masks": gt}],
                  [{"boxes": boxes, "scores": np.array([0.9, 0.8]), "labels": labels,
                    "masks": det}], 2, "segm")
    assert got["map"] == pytest.approx((0.3 + 1.0) / 2)
    assert got["map50"] == pytest.approx(1.0)
