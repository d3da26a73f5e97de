"""Keypoint metrics for one object per image: COCO keypoint AP by OKS, and PCK.

Keypoints are (N, K, 2) as (x, y) in input pixels, all visible; one ground-truth object
and one predicted object (with a confidence score) per image.

- OKS (COCO): ``mean_k exp(-d_k^2 / (2 * area * (2 sigma_k)^2))``, ``area`` = the
  object's mask area in pixels. Sigmas for the five canvas keypoints ``left right top
  bottom center`` (:data:`KEYPOINT_SIGMAS`): 0.089 for the four extreme points (COCO's
  knee/ankle value: an extreme point is ill-defined along a flat edge, where the label
  takes the first extreme pixel in raster order) and 0.062 for the centroid (COCO's
  wrist value: well defined). For a typical 32x32 crop object (area ~175 px^2) an
  error of 1 px then gives a per-keypoint OKS of ~0.91 (extremes) / ~0.83 (center).
- AP (:func:`keypoint_ap`): COCO's keypoint AP over OKS thresholds 0.50:0.95, by
  faster-coco-eval (the numbers of pycocotools), detections ranked by their scores.
  For one image alone it is the mean over thresholds t of ``[OKS >= t]``
  (:func:`per_sample_ap`, pure torch, for the rejection protocol).
- PCK (:func:`pck`): the fraction of keypoints within ``alpha`` (0.1) times the
  object's longest box side of the ground truth (2-3 px for a 20-30 px object).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

KEYPOINT_SIGMAS = (0.089, 0.089, 0.089, 0.089, 0.062)
PCK_ALPHA = 0.1
OKS_THRESHOLDS = torch.linspace(0.5, 0.95, 10, dtype=torch.float64)


def _t(x: Any) -> torch.Tensor:
    return torch.as_tensor(x).double()


def oks(pred: Any, gt: Any, area: Any, sigmas=KEYPOINT_SIGMAS) -> torch.Tensor:
    """Object keypoint similarity of each image (N,) (COCO's formula)."""
    pred, gt, area = _t(pred), _t(gt), _t(area)
    var = (2 * torch.as_tensor(sigmas, dtype=torch.float64)) ** 2
    d2 = ((pred - gt) ** 2).sum(-1)
    e = d2 / var / (area.unsqueeze(-1) + np.spacing(1)) / 2
    return torch.exp(-e).mean(-1)


def per_sample_ap(pred: Any, gt: Any, area: Any, sigmas=KEYPOINT_SIGMAS) -> torch.Tensor:
    """COCO AP of each image alone (one object): mean over t of ``[OKS >= t]`` (N,)."""
    o = oks(pred, gt, area, sigmas)
    return (o.unsqueeze(-1) >= OKS_THRESHOLDS).double().mean(-1)


def pck(pred: Any, gt: Any, size: Any, alpha: float = PCK_ALPHA) -> torch.Tensor:
    """Fraction of keypoints within ``alpha * size`` of the ground truth, per image (N,);
    ``size`` is the object's longest box side in pixels."""
    pred, gt, size = _t(pred), _t(gt), _t(size)
    dist = ((pred - gt) ** 2).sum(-1).sqrt()
    return (dist <= alpha * size.unsqueeze(-1)).double().mean(-1)


def keypoint_ap(
    pred: Any, scores: Any, gt: Any, area: Any, sigmas=KEYPOINT_SIGMAS
) -> float:
    """COCO keypoint AP (OKS 0.50:0.95) of one predicted and one ground-truth object per
    image, by faster-coco-eval; detections are ranked by ``scores``."""
    from faster_coco_eval import COCO, COCOeval_faster

    pred, gt, area = _t(pred).numpy(), _t(gt).numpy(), _t(area).numpy()
    # a diverged network's NaN/Inf scores rank last/first instead of failing the evaluator
    scores = _t(scores).nan_to_num(nan=-1e30, posinf=1e30, neginf=-1e30).numpy()
    n, k = gt.shape[:2]
    if n == 0:
        return float("nan")

    def flat(points):
        return np.concatenate([points, np.full((k, 1), 2.0)], axis=1).reshape(-1).tolist()

    images, anns, dets = [], [], []
    for i in range(n):
        x0, y0 = gt[i].min(0)
        x1, y1 = gt[i].max(0)
        images.append({"id": i + 1, "width": 1, "height": 1})
        anns.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
            "area": float(area[i]), "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            "keypoints": flat(gt[i]), "num_keypoints": k,
        })
        dets.append({"image_id": i + 1, "category_id": 1, "keypoints": flat(pred[i]),
                     "score": float(scores[i])})
    coco_gt = COCO({"images": images, "annotations": anns,
                    "categories": [{"id": 1, "name": "object"}]})
    ev = COCOeval_faster(coco_gt, coco_gt.loadRes(dets), iouType="keypoints",
                         kpt_oks_sigmas=list(sigmas), print_function=lambda *a: None)
    ev.run()
    return float(ev.stats[0])
