"""Detection and instance-segmentation AP: dataset-level (faster-coco-eval) and per image.

- :func:`coco_ap` scores a whole split with faster-coco-eval (the same numbers as
  pycocotools): COCO mAP@[.5:.95] (``map``) and AP50 (``map50``), boxes or masks.
- :func:`image_ap` is a fast, vectorized per-image AP with COCO's exact rules (greedy
  matching by decreasing score, best unmatched GT at IoU >= t, at most 100 detections
  per class, 101-point interpolated precision, mean over the classes present in the
  image and the IoU thresholds), used by the rejection protocol hundreds of times per
  minute. ``tests/test_detector.py`` checks it against faster-coco-eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
REC_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def thresholds_of(metric: str) -> np.ndarray:
    """IoU thresholds of ``map`` (0.5:0.05:0.95) or ``map50`` (0.5)."""
    if metric == "map50":
        return IOU_THRESHOLDS[:1]
    if metric == "map":
        return IOU_THRESHOLDS
    raise ValueError(f"unknown AP metric {metric!r} (map or map50)")


@lru_cache(maxsize=16)
def _recall_table(gmax: int) -> np.ndarray:
    """(gmax + 1, gmax + 1): row n, column j = how many of COCO's 101 recall thresholds r
    fall in ((j-1)/n, j/n] (r <= j/n exactly as COCO's ``searchsorted`` compares)."""
    table = np.zeros((gmax + 1, gmax + 1))
    for n in range(1, gmax + 1):
        upto = np.array([(REC_THRESHOLDS <= j / n).sum() for j in range(n + 1)])
        table[n, : n + 1] = np.diff(upto, prepend=0)
    return table


def image_ap(
    iou: np.ndarray, scores: np.ndarray, det_labels: np.ndarray, gt_labels: np.ndarray,
    thresholds: np.ndarray = IOU_THRESHOLDS, max_dets: int = 100,
) -> np.ndarray:
    """Per-image COCO AP of S images at once.

    ``iou`` (S, D, G): IoU of every detection with every GT of its image; ``scores``
    (S, D); ``det_labels`` (S, D) int, -1 = no detection; ``gt_labels`` (S, G) int, -1 =
    padding. Returns (S,) float64: the mean over IoU thresholds and over the classes
    with ground truth in the image (0 for an image without ground truth).

    Only classes with ground truth count (as in COCO, per image), so each class is
    represented by its first GT slot and the arrays stay (S, T, D, G). Greedy matching
    runs G rounds, each finding for every (image, threshold) the next detection, in
    score order, that has an unmatched GT at IoU >= t: detections in between are false
    positives, exactly as in COCO's one-detection-at-a-time loop.
    """
    s_, _, g_ = iou.shape
    order = np.argsort(-scores, axis=1, kind="stable")
    dl = np.take_along_axis(det_labels, order, axis=1)
    gvalid = gt_labels >= 0
    same_gg = (gt_labels[:, :, None] == gt_labels[:, None, :]) & gvalid[:, :, None]
    rep = (same_gg.argmax(1) == np.arange(g_)) & gvalid  # first GT slot of each class
    npig = np.where(rep, same_gg.sum(1), 0)  # (S, G) GT count of the class of a rep slot
    same = (dl[:, :, None] == gt_labels[:, None, :]) & gvalid[:, None, :]  # (S, D, G)
    onehot = same & rep[:, None, :]
    onehot &= np.cumsum(onehot, axis=1) <= max_dets
    kept = onehot.any(-1)
    # only kept detections of classes present matter: move them to the front, in order
    front = np.argsort(~kept, axis=1, kind="stable")[:, : max(1, int(kept.sum(1).max()))]
    order = np.take_along_axis(order, front, axis=1)
    kept = np.take_along_axis(kept, front, axis=1)
    onehot = np.take_along_axis(onehot, front[..., None], axis=1)
    same = np.take_along_axis(same, front[..., None], axis=1)
    d_ = front.shape[1]
    x = np.where(same & kept[..., None], np.take_along_axis(iou, order[..., None], axis=1), -1.0)
    thr = np.minimum(thresholds, 1 - 1e-10)
    t_ = len(thr)
    ok = x[:, None] >= thr[None, :, None, None]  # (S, T, D, G)
    matched = np.zeros((s_, t_, g_), bool)
    tp = np.zeros((s_, t_, d_), bool)
    last = np.full((s_, t_), -1)
    after = np.arange(d_)
    for _ in range(g_):
        avail = ok & ~matched[:, :, None, :] & (after > last[..., None])[..., None]
        any_g = avail.any(-1)  # (S, T, D)
        has = any_g.any(-1)
        if not has.any():
            break
        d = any_g.argmax(-1)  # the next detection that finds an unmatched GT
        xd = np.where(np.take_along_axis(avail, d[..., None, None], 2)[:, :, 0],
                      np.take_along_axis(x[:, None], d[..., None, None], 2)[:, :, 0], -np.inf)
        g = g_ - 1 - xd[..., ::-1].argmax(-1)  # its best unmatched GT; ties -> the last
        matched |= (np.arange(g_) == g[..., None]) & has[..., None]
        tp |= (after == d[..., None]) & has[..., None]
        last = np.where(has, d, last)
    tpk = tp[..., None] & onehot[:, None]  # (S, T, D, G)
    fpk = ~tp[..., None] & onehot[:, None]
    tpc = np.cumsum(tpk, axis=2)
    pr = tpc / (tpc + np.cumsum(fpk, axis=2) + np.spacing(1))
    # COCO's 101-point AP: recall threshold r takes the best precision at recall >= r;
    # recall only takes the values j / n, so AP = sum_j bins[n, j] * best_j / 101
    gmax = int(npig.max(initial=0))
    weights = _recall_table(max(gmax, 1))[npig]  # (S, G, gmax + 1)
    ap = np.zeros((s_, t_, g_))
    for j in range(1, gmax + 1):
        best = np.where(tpc >= j, pr, 0.0).max(axis=2, initial=0.0)  # (S, T, G)
        w = weights[..., j] + (weights[..., 0] if j == 1 else 0)
        ap += w[:, None, :] * best
    ap /= len(REC_THRESHOLDS)
    count = rep.sum(1)
    return np.where(count > 0, ap.mean(1).sum(1) / np.maximum(count, 1), 0.0)


APInputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(iou (S, D, G), scores (S, D), det_labels (S, D), gt_labels (S, G)) for :func:`image_ap`."""


def box_ap_inputs(iou: torch.Tensor, scores, det_labels, gt_labels) -> APInputs:
    """:func:`image_ap` inputs from torch tensors: ``iou`` (S, D, G) of every detection
    with every GT box (the caller's box geometry: metrics take numbers, not boxes),
    ``scores`` (S, D) and labels."""
    return (iou.detach().double().cpu().numpy(), scores.detach().double().cpu().numpy(),
            det_labels.cpu().numpy(), gt_labels.cpu().numpy())


def per_class_ap_inputs(iou: torch.Tensor, probs: torch.Tensor, gt_labels) -> APInputs:
    """:func:`image_ap` inputs of RoIs (S, R) scored as Faster R-CNN does before NMS: one
    detection per RoI and object class, scored by that class's probability. ``iou``
    (S, R, G) of each RoI's (decoded) box or mask with the GT; ``probs`` (S, R, K+1),
    class 0 = background."""
    n, r, k1 = probs.shape
    k = k1 - 1
    with torch.no_grad():
        ious = iou.repeat_interleave(k, dim=1).double().cpu().numpy()  # (S, R*K, G)
        scores = probs[..., 1:].reshape(n, r * k).double().cpu().numpy()
    return ious, scores, np.tile(np.arange(k), (n, r)), gt_labels.cpu().numpy()


def image_ap_many(parts: Sequence[APInputs], thresholds: np.ndarray) -> list[np.ndarray]:
    """:func:`image_ap` of several groups of images (one call each: padding them to common
    sizes for a single call measured slower)."""
    return [image_ap(*p, thresholds) for p in parts]


# ---------------------------------------------------------------------------
# Dataset level: faster-coco-eval


def _xywh(b) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in b)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_ap(
    gts: Sequence[dict], dets: Sequence[dict], num_classes: int, iou_type: str = "bbox"
) -> dict[str, float]:
    """COCO ``map`` and ``map50`` of a split with faster-coco-eval.

    ``gts[i]``: ``boxes`` (G, 4) x0 y0 x1 y1, ``labels`` (G,) 0-based, and for
    ``iou_type="segm"`` ``masks`` (G, H, W) bool; ``dets[i]``: ``boxes``, ``scores``,
    ``labels`` and (segm) ``masks``, numpy arrays. Images are numbered by position.
    """
    from faster_coco_eval import COCO, COCOeval_faster
    from faster_coco_eval.core import mask as mask_utils

    def rle(m: np.ndarray) -> dict:
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return r

    images, anns, results = [], [], []
    for i, (g, d) in enumerate(zip(gts, dets, strict=True)):
        h = w = 0
        if iou_type == "segm":
            h, w = g["masks"].shape[-2:]
        images.append({"id": i + 1, "width": int(w), "height": int(h)})
        for k in range(len(g["labels"])):
            a = {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(g["labels"][k]) + 1,
                 "bbox": _xywh(g["boxes"][k]), "iscrowd": 0}
            if iou_type == "segm":
                a["segmentation"] = rle(g["masks"][k])
                a["area"] = float(g["masks"][k].sum())
            else:
                a["area"] = a["bbox"][2] * a["bbox"][3]
            anns.append(a)
        for k in range(len(d["scores"])):
            r = {"image_id": i + 1, "category_id": int(d["labels"][k]) + 1,
                 "score": float(d["scores"][k])}
            if iou_type == "segm":
                r["segmentation"] = rle(d["masks"][k])
            else:
                r["bbox"] = _xywh(d["boxes"][k])
            results.append(r)
    cats = [{"id": c + 1, "name": str(c)} for c in range(num_classes)]
    quiet = {"print_function": lambda *a, **k: None}
    gt = COCO({"images": images, "annotations": anns, "categories": cats}, **quiet)
    dt = gt.loadRes(results)
    ev = COCOeval_faster(gt, dt, iouType=iou_type, **quiet)
    ev.run()
    stats = [max(0.0, float(v)) for v in ev.stats[:2]]
    return {"map": stats[0], "map50": stats[1]}
