"""Semantic segmentation metrics on integer label maps: the paper's six.

Inputs are label maps (N, H, W) (torch tensors or numpy arrays; one (H, W) map is one
image) with labels in ``[0, num_classes)``; there is no ignore label. All scores are
floats in [0, 1], higher is better.

Region metrics come from the confusion matrix ``conf[target, pred]`` (pixel counts,
a batched ``bincount``; tests check it against torchmetrics). Means over classes run
over the classes that appear in the target *or* the prediction, as torchmetrics'
macro averages do: a class predicted but absent from the target scores 0, a class
absent from both is skipped.

- ``miou``: mean per-class IoU;
- ``fwiou``: IoU weighted by each class's share of target pixels;
- ``gacc``: global pixel accuracy;
- ``macc``: mean per-class accuracy (recall).

Boundary metrics, with a width ``d`` in pixels (``boundary_width``, default 2 at 64x64,
i.e. about 3% of the image side, as boundary metrics on VOC use a few pixels at 512):

- ``biou`` (Kohli et al. 2009, the trimap): ``miou`` restricted to the pixels within
  Chebyshev distance ``d`` of a pixel of another ground-truth class (the band where
  the (2d+1)x(2d+1) window holds more than one label), accumulated over the dataset;
- ``bf1`` (Csurka et al. 2013): per image and per class, the class's boundary pixels
  (pixels of the class with an 8-neighbour outside it; the image border is no
  boundary) in the prediction and the ground truth are matched with a tolerance of
  ``d`` pixels (Chebyshev distance: a max-filter dilation by a (2d+1)^2 square):
  precision = matched predicted / predicted boundary pixels, recall = matched
  ground-truth / ground-truth boundary pixels, F1 of the two. A class present (by
  pixels) in the ground truth or the prediction of an image gets an F1 there (0 if
  only one side has a boundary, 1 if neither has one). The dataset score is the mean
  over classes of each class's mean F1 over the images where it is present: per
  class, not class-agnostic (a class-agnostic boundary F1 scored ~0.96 for
  everything and separated nothing).

A score with nothing to average (an empty trimap band, e.g. an image of one class) is 1:
there is nothing to get wrong.

``SegmentationMeter`` streams a split chunk by chunk with exactly the numbers of one
``segmentation_metrics`` call on everything; ``per_image`` scores each image of a stack
separately and cheaply (the rejection protocol's metric).
"""

from __future__ import annotations

from typing import Any

import torch

METRICS = ("miou", "fwiou", "gacc", "macc", "biou", "bf1")
_CHUNK = 256  # images per internal step of the meter (bounds temporary memory)


def as_label_maps(x: Any) -> torch.Tensor:
    """An int64 (N, H, W) tensor from a tensor or array ((H, W): one image)."""
    t = torch.as_tensor(x)
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3:
        raise ValueError(f"expected label maps (N, H, W), got shape {tuple(t.shape)}")
    return t.long()


def window_filter(x: torch.Tensor, width: int, op) -> torch.Tensor:
    """``op`` (``torch.maximum``, ``torch.minimum``, ``torch.bitwise_or``: a binary op
    taking ``out=``) over the (2 width + 1)^2 window of each pixel of the last two dims;
    pixels outside the image are skipped (never win). Separable shifts: several times
    faster than ``max_pool2d`` with stride 1 on CPU."""
    for dim in (-1, -2):
        src, x = x, x.clone()
        n = x.shape[dim]
        for s in range(1, min(width, n - 1) + 1):
            ahead, behind = x.narrow(dim, s, n - s), x.narrow(dim, 0, n - s)
            op(ahead, src.narrow(dim, 0, n - s), out=ahead)
            op(behind, src.narrow(dim, s, n - s), out=behind)
    return x


def trimap_band(target: torch.Tensor, width: int) -> torch.Tensor:
    """(N, H, W) bool: pixels within Chebyshev distance ``width`` of another label."""
    return window_filter(target, width, torch.maximum) != window_filter(
        target, width, torch.minimum
    )


def _bincount_rows(idx: torch.Tensor, bins: int, mask: torch.Tensor | None) -> torch.Tensor:
    """Counts of the values of each row of ``idx`` (N, M) in [0, bins): (N, bins) int64.
    With ``mask`` (N, M) bool only its entries count (the others go to one spare bin)."""
    n = idx.shape[0]
    idx = idx + torch.arange(n, device=idx.device).unsqueeze(1) * bins
    if mask is not None:
        idx = torch.where(mask, idx, n * bins)
    counts = torch.bincount(idx.reshape(-1), minlength=n * bins + 1)
    return counts[: n * bins].reshape(n, bins)


def class_counts(
    labels: torch.Tensor, num_classes: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Pixels of each class in each image (only those of ``mask``): (N, C) int64."""
    n = labels.shape[0]
    m = None if mask is None else mask.reshape(n, -1)
    return _bincount_rows(labels.reshape(n, -1), num_classes, m)


def confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-image confusion matrices (N, C, C), ``conf[n, target, pred]``, int64.

    With ``mask`` (N, H, W) bool, only its pixels count.
    """
    n, c = target.shape[0], num_classes
    m = None if mask is None else mask.reshape(n, -1)
    return _bincount_rows((target * c + pred).reshape(n, -1), c * c, m).reshape(n, c, c)


_BITS = 62  # classes per int64 bit map


def _class_bits(labels: torch.Tensor, edge: torch.Tensor, lo: int, num_classes: int):
    """int64 map: bit ``label - lo`` set on ``edge`` pixels of classes lo..lo+61, else 0."""
    if num_classes > _BITS:
        edge = edge & (labels >= lo) & (labels < lo + _BITS)
        labels = (labels - lo).clamp(0, _BITS - 1)
    one = torch.ones((), dtype=torch.int64, device=labels.device)
    return (one << labels).masked_fill_(~edge, 0)


def matched_boundary(
    labels: torch.Tensor, edge: torch.Tensor, other: torch.Tensor, other_edge: torch.Tensor,
    num_classes: int, width: int,
) -> torch.Tensor:
    """(N, H, W) bool: boundary pixels of ``labels`` within Chebyshev distance ``width``
    of a boundary pixel of the same class in ``other``.

    Each class is one bit of an int64 map (62 classes per pass), so the dilation is a
    bitwise-or filter over label-sized maps instead of one map per class.
    """
    hit = torch.zeros_like(edge)
    for lo in range(0, num_classes, _BITS):
        reach = window_filter(_class_bits(other, other_edge, lo, num_classes), width,
                              torch.bitwise_or)
        hit |= (_class_bits(labels, edge, lo, num_classes) & reach) != 0
    return hit


def region_scores(conf: torch.Tensor) -> dict[str, torch.Tensor]:
    """``miou fwiou gacc macc`` from confusion matrices (..., C, C): tensors (...)."""
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    gt = conf.sum(-1)
    pr = conf.sum(-2)
    union = gt + pr - tp
    total = gt.sum(-1)
    iou = tp / union.clamp(min=1)
    present = (union > 0).double()
    n_present = present.sum(-1).clamp(min=1)
    empty = total == 0
    one = torch.ones_like(total)
    macc = (tp / gt.clamp(min=1) * present).sum(-1) / n_present
    return {
        "miou": torch.where(empty, one, (iou * present).sum(-1) / n_present),
        "fwiou": torch.where(empty, one, (gt * iou).sum(-1) / total.clamp(min=1)),
        "gacc": torch.where(empty, one, tp.sum(-1) / total.clamp(min=1)),
        "macc": torch.where(empty, one, macc),
    }


def boundary_f1(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, width: int
) -> torch.Tensor:
    """Per-image, per-class boundary F1 (N, C) float64, NaN where the class is absent."""
    c = num_classes
    pe, te = trimap_band(pred, 1), trimap_band(target, 1)  # inner boundaries (module doc)
    # Pixel state: 0 interior, 1 unmatched boundary, 2 matched boundary; count per class.
    p_state = pe.long() + matched_boundary(pred, pe, target, te, c, width).long()
    t_state = te.long() + matched_boundary(target, te, pred, pe, c, width).long()
    pc = class_counts(pred * 3 + p_state, 3 * c).reshape(-1, c, 3).double()
    tc = class_counts(target * 3 + t_state, 3 * c).reshape(-1, c, 3).double()
    n_pred, hit_pred, in_pred = pc[..., 1:].sum(-1), pc[..., 2], pc.sum(-1)
    n_gt, hit_gt, in_gt = tc[..., 1:].sum(-1), tc[..., 2], tc.sum(-1)
    precision = hit_pred / n_pred.clamp(min=1)
    recall = hit_gt / n_gt.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    f1 = torch.where((n_pred == 0) & (n_gt == 0), torch.ones_like(f1), f1)
    present = (in_pred > 0) | (in_gt > 0)
    return torch.where(present, f1, torch.full_like(f1, float("nan")))


def per_image(
    pred: Any, target: Any, num_classes: int, metric: str, boundary_width: int = 2
) -> torch.Tensor:
    """One metric for each image of (S, H, W) label maps: a float64 tensor (S,).

    Vectorized over images (batched bincount confusion matrices, pooling for
    boundaries); the same value as :func:`segmentation_metrics` on each image alone.
    """
    pred, target = as_label_maps(pred), as_label_maps(target)
    if metric in ("miou", "fwiou", "gacc", "macc"):
        return region_scores(confusion(pred, target, num_classes))[metric]
    if metric == "biou":
        band = trimap_band(target, boundary_width)
        return region_scores(confusion(pred, target, num_classes, band))["miou"]
    if metric == "bf1":
        f1 = boundary_f1(pred, target, num_classes, boundary_width)
        return f1.nan_to_num(0.0).sum(-1) / (~f1.isnan()).sum(-1).clamp(min=1)
    raise ValueError(f"unknown segmentation metric {metric!r} (known: {', '.join(METRICS)})")


class SegmentationMeter:
    """Accumulates a split chunk by chunk; :meth:`compute` equals one call on everything.

    Holds two (C, C) confusion matrices (all pixels, trimap band) and the per-image,
    per-class boundary F1 rows (N x C floats).
    """

    def __init__(self, num_classes: int, boundary_width: int = 2):
        if num_classes < 1 or boundary_width < 1:
            raise ValueError("num_classes and boundary_width must be >= 1")
        self.num_classes = int(num_classes)
        self.boundary_width = int(boundary_width)
        self.conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self.band_conf = torch.zeros_like(self.conf)
        self._f1: list[torch.Tensor] = []

    def update(self, pred: Any, target: Any) -> None:
        pred, target = as_label_maps(pred), as_label_maps(target)
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        c, d = self.num_classes, self.boundary_width
        for t in (pred, target):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= c):
                raise ValueError(f"labels must lie in [0, {c})")
        for i in range(0, len(target), _CHUNK):
            p, t = pred[i : i + _CHUNK], target[i : i + _CHUNK]
            self.conf += confusion(p, t, c).sum(0).cpu()
            self.band_conf += confusion(p, t, c, trimap_band(t, d)).sum(0).cpu()
            self._f1.append(boundary_f1(p, t, c, d).cpu())

    def compute(self) -> dict[str, float]:
        out = {k: float(v) for k, v in region_scores(self.conf).items()}
        out["biou"] = float(region_scores(self.band_conf)["miou"])
        if self._f1:
            per_class = torch.cat(self._f1).nanmean(0)  # NaN: a class never present
            seen = ~per_class.isnan()
            out["bf1"] = float(per_class[seen].mean()) if bool(seen.any()) else 1.0
        else:
            out["bf1"] = 1.0
        return out


def segmentation_metrics(
    pred: Any, target: Any, num_classes: int, boundary_width: int = 2
) -> dict[str, float]:
    """``miou fwiou gacc macc biou bf1`` of label maps (N, H, W), dataset-level."""
    meter = SegmentationMeter(num_classes, boundary_width)
    meter.update(pred, target)
    return meter.compute()
