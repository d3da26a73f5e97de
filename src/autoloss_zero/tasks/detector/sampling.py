"""Matching boxes to ground truth and fixed-size, positives-first sampling.

Every image contributes exactly ``count`` anchors (or RoIs), the first ``positives`` of
them positive, so that per-image tensors stack (the rejection protocol's sample dim).
When an image has fewer eligible boxes than slots, its eligible boxes are repeated in
random order (sampling with replacement). Ground truth is padded per image: boxes
(n, G, 4), labels (n, G) with -1 for padding.
"""

from __future__ import annotations

import torch

from .boxes import pairwise_iou
from .roi_align import roi_align


def match(boxes: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor):
    """IoU (n, M, G) with padded GT set to -1, and the best IoU / GT index per box (n, M)."""
    iou = pairwise_iou(boxes, gt_boxes).masked_fill(~gt_valid[:, None, :], -1.0)
    best, idx = iou.max(dim=2)
    return iou, best, idx


def sample_fixed(eligible: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Indices (n, count) of eligible entries of each row of ``eligible`` (n, M), drawn
    without replacement while they last, then repeated cyclically. A row without any
    eligible entry gives arbitrary indices: callers guarantee at least one."""
    n, m = eligible.shape
    keys = torch.rand(n, m, generator=generator, device=eligible.device)
    keys = torch.where(eligible, keys, keys - 2.0)
    k = min(count, m)
    order = keys.topk(k, dim=1).indices  # eligible first, in random order
    avail = eligible.sum(dim=1).clamp(min=1, max=k)
    slot = torch.arange(count, device=eligible.device)[None, :] % avail[:, None]
    return order.gather(1, slot)


def label_anchors(
    anchors: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor,
    pos_iou: float = 0.7, neg_iou: float = 0.3,
):
    """RPN labels of all anchors: (positive, negative) masks (n, A) and matched GT (n, A).

    Positive: IoU >= ``pos_iou`` with some GT, or the best anchor(s) of a GT (so that
    every GT has one); negative: best IoU < ``neg_iou`` and not positive.
    """
    n = gt_boxes.shape[0]
    iou, best, idx = match(anchors.expand(n, -1, -1), gt_boxes, gt_valid)
    gt_best = iou.max(dim=1, keepdim=True).values  # (n, 1, G)
    low_quality = ((iou == gt_best) & (gt_best > 0) & gt_valid[:, None, :]).any(dim=2)
    pos = (best >= pos_iou) | low_quality
    neg = (best < neg_iou) & ~pos
    return pos, neg, idx


def sample_anchors(pos, neg, count: int, positives: int, generator: torch.Generator):
    """Indices (n, count) of sampled anchors: ``positives`` positive, then negatives."""
    return torch.cat(
        (sample_fixed(pos, positives, generator), sample_fixed(neg, count - positives, generator)),
        dim=1,
    )


def sample_rois(
    candidates: torch.Tensor, valid: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor,
    fallback: torch.Tensor, count: int, positives: int, generator: torch.Generator,
    fg_iou: float = 0.5,
):
    """Sample RoIs among candidate boxes (n, M, 4) (proposals + GT): ``positives`` with
    IoU >= ``fg_iou`` first, then negatives. ``fallback`` (F, 4) boxes serve as negatives
    for an image whose candidates have none. Returns (rois (n, count, 4), matched GT index
    (n, count))."""
    n = candidates.shape[0]
    cand = torch.cat((candidates, fallback.expand(n, -1, -1)), dim=1)
    ok = torch.cat((valid, valid.new_zeros(n, fallback.shape[0])), dim=1)
    _, best, idx = match(cand, gt_boxes, gt_valid)
    pos = ok & (best >= fg_iou)
    neg = ok & (best < fg_iou)
    no_neg = ~neg.any(dim=1, keepdim=True)
    neg[:, candidates.shape[1]:] = no_neg & (best[:, candidates.shape[1]:] < fg_iou)
    sel = torch.cat(
        (sample_fixed(pos, positives, generator), sample_fixed(neg, count - positives, generator)),
        dim=1,
    )
    rois = cand.gather(1, sel[..., None].expand(-1, -1, 4))
    return rois, idx.gather(1, sel)


def gather_gt(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per-box GT values: ``values`` (n, G, ...) picked by ``idx`` (n, M) -> (n, M, ...)."""
    extra = values.shape[2:]
    flat_idx = idx.reshape(idx.shape + (1,) * len(extra)).expand(*idx.shape, *extra)
    return values.gather(1, flat_idx)


def mask_targets(gt_masks: torch.Tensor, idx: torch.Tensor, rois: torch.Tensor, size: int):
    """Binary mask targets (n, R, size, size) (float) of the matched GT masks inside RoIs."""
    n, r = idx.shape
    m = gather_gt(gt_masks.float(), idx).reshape(n * r, 1, *gt_masks.shape[-2:])
    crops = roi_align(m, rois.reshape(n * r, 1, 4), size, 1.0, sampling=2)
    return (crops.reshape(n, r, size, size) >= 0.5).float()
