"""Greedy non-maximum suppression in pure PyTorch (+ a small numpy loop).

The IoU matrix of the score-sorted boxes is computed at once in torch; the greedy pass
over it is a numpy loop over the boxes, so a few hundred boxes take well under a
millisecond. ``batched_nms`` suppresses only within groups (e.g. classes), one group at
a time, so that the IoU matrices stay small.
"""

from __future__ import annotations

import numpy as np
import torch

from .boxes import pairwise_iou


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices (int64, by decreasing score) of the boxes kept by greedy NMS.

    A box is suppressed when its IoU with a higher-scoring kept box is > ``iou_threshold``.
    Ties in score keep the original order (stable sort).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    over = (pairwise_iou(b, b) > iou_threshold).cpu().numpy()
    n = len(order)
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS applied independently within each group id (int tensor, same length as boxes);
    the kept indices come by decreasing score (stable)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = []
    for g in torch.unique(groups):
        idx = torch.nonzero(groups == g).squeeze(1)
        kept.append(idx[nms(boxes[idx], scores[idx], iou_threshold)])
    keep = torch.cat(kept)
    keep = keep.sort().values  # original order, so that the stable sort breaks ties by it
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
