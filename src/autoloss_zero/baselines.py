"""Handcrafted baseline losses over a task's raw outputs and targets.

Dense classification losses take logits (N, C, H, W) and integer label maps (N, H, W),
like ``nn.CrossEntropyLoss``; kornia provides Dice, focal and SSIM.
Each is a plain function ``loss(logits, labels) -> scalar``; the ones with settings
are built by a factory. Tasks map their baseline ids to these (``task.baseline(id)``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .metrics.segmentation import class_counts, trimap_band

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pixel-averaged cross-entropy."""
    return F.cross_entropy(logits, labels)


def median_frequency_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Median frequency balancing (Eigen & Fergus 2015): ``median(f) / f_c``, where
    ``f_c`` is the share of pixels of class c among the pixels of the images that
    contain c. Classes absent from ``labels`` get weight 1."""
    counts = class_counts(labels, num_classes)
    pixels = (counts > 0).double().sum(0) * labels[0].numel()
    present = pixels > 0
    freq = counts.double().sum(0)[present] / pixels[present]
    weights = torch.ones(num_classes, dtype=torch.float64)
    weights[present] = freq.median() / freq
    return weights.float()


def weighted_cross_entropy(weights: torch.Tensor) -> LossFn:
    """Class-weighted cross-entropy (WCE), normalized by the summed pixel weights."""

    def wce(logits, labels):
        return F.cross_entropy(logits, labels, weight=weights.to(logits))

    return wce


def dice(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """kornia's multi-class Dice loss on softmax probabilities, averaged over classes
    (``average="macro"``; the micro average is dominated by the background)."""
    from kornia.losses import dice_loss

    return dice_loss(logits, labels, average="macro")


def lovasz(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax (Berman et al. 2018) as in the authors' reference code's defaults:
    pixels of the whole batch together, mean over the classes *present* in the labels.

    kornia's ``lovasz_softmax_loss`` also averages over absent classes (each pushing its
    largest probability down); with 10 mostly absent object classes it collapsed to
    all-background here (mIoU 0.08 at the proxy schedule).
    """
    c = logits.shape[1]
    probs = torch.softmax(logits, dim=1).movedim(1, 0).reshape(c, -1)  # (C, pixels)
    fg = F.one_hot(labels.reshape(-1), c).T.to(probs.dtype)
    present = fg.sum(1) > 0
    fg, probs = fg[present], probs[present]
    errors, order = (fg - probs).abs().sort(dim=1, descending=True)
    fg_sorted = fg.gather(1, order)
    total = fg_sorted.sum(1, keepdim=True)
    jaccard = 1.0 - (total - fg_sorted.cumsum(1)) / (total + (1.0 - fg_sorted).cumsum(1))
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return (errors * grad).sum(1).mean()


def focal(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """kornia's focal loss (Lin et al. 2017), alpha 0.25, gamma 2, mean over pixels."""
    from kornia.losses import focal_loss

    return focal_loss(logits, labels, alpha=0.25, gamma=2.0, reduction="mean")


def boundary_weights(labels: torch.Tensor, reach: int = 4, strength: float = 2.0):
    """Pixel weights ``1 + strength * phi`` (N, H, W), ``phi`` = 1 on ground-truth
    boundaries falling linearly to 0 at Chebyshev distance ``reach``: an inverted,
    truncated distance map to the nearest pixel of another class."""
    phi = sum(trimap_band(labels, k).float() for k in range(1, reach + 1)) / reach
    return 1.0 + strength * phi


def distance_weighted_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """DPCE, in the spirit of Caliva et al. 2019 (distance-map penalized CE): the pixel
    cross-entropy weighted by :func:`boundary_weights` (reach 4 px, strength 2), so
    errors near object boundaries cost up to 3x more."""
    with torch.no_grad():
        w = boundary_weights(labels)
    return (F.cross_entropy(logits, labels, reduction="none") * w).mean()


def ssim_ce(logits: torch.Tensor, labels: torch.Tensor, window: int = 7) -> torch.Tensor:
    """CE + (1 - SSIM) between softmax probabilities and one-hot targets, as in the
    hybrid loss of BASNet (Qin et al. 2019, whose IoU term is left out); kornia's SSIM
    with a 7x7 Gaussian window (BASNet uses 11x11 at 4x our 64x64 resolution)."""
    from kornia.losses import ssim_loss

    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    # kornia's ssim_loss is (1 - SSIM) / 2
    return F.cross_entropy(logits, labels) + 2.0 * ssim_loss(probs, onehot, window)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (heatmap regression)."""
    return F.mse_loss(pred, target)
