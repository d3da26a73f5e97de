"""Box utilities: areas, IoU/GIoU, the i/u/e areas of the search space, delta coding.

Boxes are (x0, y0, x1, y1) in pixels with x1/y1 exclusive (width = x1 - x0), as the
canvases give them and as COCO measures them. Every function works on any leading
dims (``...``) and is differentiable where it makes sense.
"""

from __future__ import annotations

import math

import torch

BBOX_CLIP = math.log(1000.0 / 16)
"""Largest log-scale change a delta may apply (as in Faster R-CNN), against overflow."""

DELTA_WEIGHTS_RPN = (1.0, 1.0, 1.0, 1.0)
DELTA_WEIGHTS_RCNN = (10.0, 10.0, 5.0, 5.0)


def area(b: torch.Tensor) -> torch.Tensor:
    """Area of boxes (..., 4) -> (...); degenerate boxes have area 0."""
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (..., N, 4) with every box of ``b`` (..., M, 4): (..., N, M)."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[..., :, None] + area(b)[..., None, :] - inter
    return inter / union.clamp(min=1e-9)


def iue(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Intersection, union and smallest-enclosing-box areas of matched box pairs (..., 4),
    each divided by the ground-truth area (the search space's ``i, u, e`` leaves)."""
    lt = torch.maximum(pred[..., :2], gt[..., :2])
    rb = torch.minimum(pred[..., 2:], gt[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    a_gt = area(gt).clamp(min=1e-6)
    union = area(pred) + a_gt - inter
    elt = torch.minimum(pred[..., :2], gt[..., :2])
    erb = torch.maximum(pred[..., 2:], gt[..., 2:])
    ewh = (erb - elt).clamp(min=0)
    enclose = ewh[..., 0] * ewh[..., 1]
    return inter / a_gt, union / a_gt, enclose / a_gt


def iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of matched box pairs (..., 4) -> (...)."""
    i, u, _ = iue(pred, gt)
    return i / u.clamp(min=1e-9)


def giou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Generalized IoU (Rezatofighi et al. 2019) of matched box pairs: IoU - (E - U) / E."""
    i, u, e = iue(pred, gt)
    return i / u.clamp(min=1e-9) - (e - u) / e.clamp(min=1e-9)


def encode(boxes: torch.Tensor, ref: torch.Tensor, weights=DELTA_WEIGHTS_RPN) -> torch.Tensor:
    """Deltas (dx, dy, dw, dh) that move reference boxes ``ref`` onto ``boxes``."""
    wx, wy, ww, wh = weights
    rw, rh = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    rx, ry = ref[..., 0] + 0.5 * rw, ref[..., 1] + 0.5 * rh
    bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    bx, by = boxes[..., 0] + 0.5 * bw, boxes[..., 1] + 0.5 * bh
    dw, dh = ww * torch.log(bw / rw), wh * torch.log(bh / rh)
    return torch.stack((wx * (bx - rx) / rw, wy * (by - ry) / rh, dw, dh), dim=-1)


def decode(deltas: torch.Tensor, ref: torch.Tensor, weights=DELTA_WEIGHTS_RPN) -> torch.Tensor:
    """Boxes from deltas (..., 4) applied to reference boxes (..., 4); log-scales clamped."""
    wx, wy, ww, wh = weights
    rw, rh = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    rx, ry = ref[..., 0] + 0.5 * rw, ref[..., 1] + 0.5 * rh
    cx = rx + deltas[..., 0] / wx * rw
    cy = ry + deltas[..., 1] / wy * rh
    w = rw * torch.exp((deltas[..., 2] / ww).clamp(max=BBOX_CLIP))
    h = rh * torch.exp((deltas[..., 3] / wh).clamp(max=BBOX_CLIP))
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def clip(boxes: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Boxes clipped to an image of ``size`` (H, W) pixels (or a square side)."""
    h, w = (size, size) if isinstance(size, int) else size
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)
