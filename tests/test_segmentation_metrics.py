"""Segmentation metrics: hand-computed values, references, streaming, per-image."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from autoloss_zero.metrics import SegmentationMeter, per_image, segmentation_metrics
from autoloss_zero.metrics.segmentation import METRICS, boundary_f1, confusion
from conftest import examples

TARGET = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 2, 0]]])
PRED = torch.tensor([[[0, 1, 1, 1], [0, 1, 3, 1], [2, 2, 0, 0]]])


def test_region_metrics_equal_a_hand_computed_confusion_matrix():
    # conf[target, pred]; class 3 is predicted once but absent, class 4 absent from both.
    expected = torch.tensor([
        [3, 1, 0, 0, 0],
        [0, 4, 0, 1, 0],
        [1, 0, 2, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ])
    assert torch.equal(confusion(PRED, TARGET, 5)[0], expected)
    m = segmentation_metrics(PRED, TARGET, num_classes=5)
    iou = [3 / 5, 4 / 6, 2 / 3, 0.0]  # classes 0..3 (3: predicted only)
    assert m["miou"] == pytest.approx(sum(iou) / 4)
    assert m["fwiou"] == pytest.approx((4 * iou[0] + 5 * iou[1] + 3 * iou[2]) / 12)
    assert m["gacc"] == pytest.approx(9 / 12)
    assert m["macc"] == pytest.approx((3 / 4 + 4 / 5 + 2 / 3 + 0) / 4)


def test_region_metrics_match_torchmetrics():
    rng = np.random.default_rng(0)
    t = torch.from_numpy(rng.integers(0, 6, (3, 16, 16)))
    p = torch.from_numpy(rng.integers(0, 7, (3, 16, 16)))
    m = segmentation_metrics(p, t, num_classes=8)
    assert m["miou"] == pytest.approx(float(MulticlassJaccardIndex(8, average="macro")(p, t)))
    assert m["macc"] == pytest.approx(float(MulticlassAccuracy(8, average="macro")(p, t)))
    assert m["gacc"] == pytest.approx(float(MulticlassAccuracy(8, average="micro")(p, t)))


label_maps = st.integers(0, 2**32 - 1).map(
    lambda seed: torch.from_numpy(np.random.default_rng(seed).integers(0, 4, (3, 12, 12)))
)


@settings(max_examples=examples(25))
@given(label_maps)
def test_a_perfect_prediction_scores_one_everywhere(target):
    m = segmentation_metrics(target, target, num_classes=4)
    assert m == {k: 1.0 for k in METRICS}
    for k in METRICS:
        assert torch.all(per_image(target, target, 4, k) == 1.0)


def _square(shift: int) -> torch.Tensor:
    img = torch.zeros(1, 48, 48, dtype=torch.long)
    img[0, 12 + shift : 36 + shift, 12 + shift : 36 + shift] = 1
    return img


def test_boundary_metrics_fall_as_the_boundary_moves_away():
    target = _square(0)
    scores = {s: segmentation_metrics(_square(s), target, 2) for s in (0, 1, 2, 4)}
    biou = [scores[s]["biou"] for s in (0, 1, 2, 4)]
    bf1 = [scores[s]["bf1"] for s in (0, 1, 2, 4)]
    assert biou[0] == 1.0 and all(a > b for a, b in zip(biou, biou[1:], strict=False))
    # BF1 tolerates d = 2 px (Chebyshev): a diagonal shift of 1 or 2 px is still matched.
    assert bf1[0] == bf1[1] == bf1[2] == 1.0 and bf1[3] < 0.5
    bf1_d1 = [segmentation_metrics(_square(s), target, 2, boundary_width=1)["bf1"]
              for s in (0, 1, 2, 4)]
    assert bf1_d1[0] == bf1_d1[1] == 1.0 and bf1_d1[1] > bf1_d1[2] >= bf1_d1[3]


def test_boundary_f1_is_per_class():
    # Right boundaries, wrong class: a class-agnostic boundary F1 would score 1.
    target = _square(0)
    pred = target * 2
    assert segmentation_metrics(pred, target, 3)["bf1"] < 0.5


def _reference_f1(pred, target, num_classes, width):
    """Naive per-image, per-class boundary F1 with max-pooling on one-hot masks."""
    out = torch.full((len(pred), num_classes), float("nan"), dtype=torch.float64)
    for i in range(len(pred)):
        for c in range(num_classes):
            pm = (pred[i] == c).float()[None, None]
            tm = (target[i] == c).float()[None, None]
            if pm.sum() + tm.sum() == 0:
                continue
            pb = (pm + F.max_pool2d(-pm, 3, 1, 1)) > 0  # mask minus its erosion
            tb = (tm + F.max_pool2d(-tm, 3, 1, 1)) > 0
            npb, ntb = int(pb.sum()), int(tb.sum())
            if npb == 0 and ntb == 0:
                out[i, c] = 1.0
                continue

            def dil(b):
                return F.max_pool2d(b.float(), 2 * width + 1, 1, width) > 0

            p = int((pb & dil(tb)).sum()) / max(npb, 1)
            r = int((tb & dil(pb)).sum()) / max(ntb, 1)
            out[i, c] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return out


@settings(max_examples=examples(20))
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 70]), st.integers(1, 3))
def test_boundary_f1_matches_a_naive_reference(seed, classes, width):
    rng = np.random.default_rng(seed)
    # blocky maps: random labels on a coarse grid, upsampled, so boundaries are contours
    def blocky():
        coarse = torch.from_numpy(rng.integers(0, classes, (2, 1, 4, 4))).float()
        return F.interpolate(coarse, size=(16, 16), mode="nearest")[:, 0].long()

    pred, target = blocky(), blocky()
    fast = boundary_f1(pred, target, classes, width)
    ref = _reference_f1(pred, target, classes, width)
    assert torch.allclose(fast.nan_to_num(-1.0), ref.nan_to_num(-1.0))


def test_the_streaming_meter_equals_one_call():
    rng = np.random.default_rng(1)
    target = torch.from_numpy(rng.integers(0, 5, (300, 8, 8)))
    pred = torch.where(torch.from_numpy(rng.random((300, 8, 8)) < 0.7), target, 0)
    whole = segmentation_metrics(pred, target, 5)
    meter = SegmentationMeter(5)
    for lo, hi in [(0, 7), (7, 100), (100, 299), (299, 300)]:
        meter.update(pred[lo:hi].numpy(), target[lo:hi])  # numpy accepted too
    assert meter.compute() == whole
    assert all(0.0 <= v <= 1.0 for v in whole.values())


@settings(max_examples=examples(20))
@given(label_maps, st.integers(0, 2**32 - 1))
def test_per_image_metrics_agree_with_the_dataset_level_function(target, seed):
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.integers(0, 5, target.shape))
    pred = torch.where(torch.from_numpy(rng.random(target.shape) < 0.3), noise, target)
    for metric in METRICS:
        fast = per_image(pred, target, 5, metric)
        assert fast.shape == (3,)
        for i in range(3):
            one = segmentation_metrics(pred[i], target[i], 5)[metric]
            assert float(fast[i]) == pytest.approx(one, abs=1e-12)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="labels"):
        segmentation_metrics(PRED, TARGET, num_classes=3)
    with pytest.raises(ValueError, match="differ"):
        segmentation_metrics(PRED[:, :2], TARGET, num_classes=5)
    with pytest.raises(ValueError, match="unknown"):
        per_image(PRED, TARGET, 5, "dice")


# -- brute-force references: FWIoU and the trimap boundary IoU -------------------------


def _brute_region(pred, target, num_classes, keep=None):
    """Per-class IoU and target pixel counts by explicit loops over pixels (numpy)."""
    p, t = np.asarray(pred).reshape(-1), np.asarray(target).reshape(-1)
    if keep is not None:
        k = np.asarray(keep).reshape(-1)
        p, t = p[k], t[k]
    ious, counts = {}, {}
    for c in range(num_classes):
        inter = sum(1 for a, b in zip(p, t) if a == c and b == c)
        union = sum(1 for a, b in zip(p, t) if a == c or b == c)
        if union:
            ious[c] = inter / union
            counts[c] = sum(1 for b in t if b == c)
    return ious, counts, len(t)


def _brute_fwiou(pred, target, num_classes):
    """FWIoU (Long et al. 2015): sum over classes of (target pixels of c / all pixels) *
    IoU_c."""
    ious, counts, total = _brute_region(pred, target, num_classes)
    return sum(counts[c] / total * ious[c] for c in ious)


def _brute_band(target, d):
    """The trimap band: pixels with a pixel of another target label within Chebyshev
    distance d (pixels outside the image do not exist), by looking at every neighbour."""
    t = np.asarray(target)
    n, h, w = t.shape
    band = np.zeros(t.shape, bool)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for yy in range(max(0, y - d), min(h, y + d + 1)):
                    for xx in range(max(0, x - d), min(w, x + d + 1)):
                        if t[i, yy, xx] != t[i, y, x]:
                            band[i, y, x] = True
    return band


def _brute_biou(pred, target, num_classes, d):
    """mIoU over the trimap band pixels of the whole set (1 when the band is empty)."""
    band = _brute_band(target, d)
    if not band.any():
        return 1.0
    ious, _, _ = _brute_region(pred, target, num_classes, keep=band)
    return sum(ious.values()) / len(ious)


def _maps(seed, n, h, w, classes, block):
    """Label maps with regions (random labels on a coarse grid, upsampled) and some
    isolated wrong pixels, so bands have corners, thin parts and image borders."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (n, -(-h // block), -(-w // block)))
    maps = coarse.repeat(block, 1).repeat(block, 2)[:, :h, :w]
    noise = rng.random(maps.shape) < 0.05
    return np.where(noise, rng.integers(0, classes, maps.shape), maps)


@settings(max_examples=examples(30))
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.sampled_from([2, 3, 5]))
def test_fwiou_and_biou_match_brute_force(seed, d, classes):
    target = _maps(seed, 2, 11, 14, classes, 3)  # not square: catches swapped H and W
    pred = np.where(np.random.default_rng(seed + 1).random(target.shape) < 0.25,
                    _maps(seed + 2, 2, 11, 14, classes, 4), target)
    m = segmentation_metrics(torch.from_numpy(pred), torch.from_numpy(target), classes,
                             boundary_width=d)
    assert m["fwiou"] == pytest.approx(_brute_fwiou(pred, target, classes), abs=1e-12)
    assert m["biou"] == pytest.approx(_brute_biou(pred, target, classes, d), abs=1e-12)
    per = per_image(pred, target, classes, "biou", boundary_width=d)
    for i in range(len(target)):
        assert float(per[i]) == pytest.approx(
            _brute_biou(pred[i : i + 1], target[i : i + 1], classes, d), abs=1e-12)


def test_biou_on_a_hand_drawn_map():
    # target: left 3 columns class 0, right 3 columns class 1 (6x6); d = 1: the band is
    # columns 2 and 3 (12 pixels). The prediction moves the edge one column right, so on
    # the band class 0 gets column 3 too: IoU_0 = 6/12, IoU_1 = 0/6 -> BIoU = 0.25.
    target = torch.zeros(1, 6, 6, dtype=torch.long)
    target[0, :, 3:] = 1
    pred = torch.zeros_like(target)
    pred[0, :, 4:] = 1
    m = segmentation_metrics(pred, target, 2, boundary_width=1)
    assert m["biou"] == pytest.approx(0.25)
    # d = 2: band = columns 1..4 (24 px); class 0 predicted on columns 1..3 (18 px), of
    # which 12 are class 0: IoU_0 = 12/18; class 1 on column 4 (6 px) of its 12: 6/12.
    assert segmentation_metrics(pred, target, 2, boundary_width=2)["biou"] == pytest.approx(
        (12 / 18 + 6 / 12) / 2)
    # FWIoU by hand: IoU_0 = 18/24, IoU_1 = 12/18, each class half of the pixels
    assert m["fwiou"] == pytest.approx(0.5 * 18 / 24 + 0.5 * 12 / 18)
