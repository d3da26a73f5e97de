"""Anchor boxes on one feature level: ``len(sizes) * len(ratios)`` per feature cell."""

from __future__ import annotations

import torch


def make_anchors(
    feature_size: int, stride: int, sizes: tuple[float, ...], ratios: tuple[float, ...]
) -> torch.Tensor:
    """Anchors (h * w * A, 4) ordered (y, x, anchor), centred on the cells of a square
    ``feature_size`` map of ``stride`` pixels; ratio = height / width, area = size^2."""
    base = []
    for r in ratios:
        for s in sizes:
            w, h = s / r**0.5, s * r**0.5
            base.append((-w / 2, -h / 2, w / 2, h / 2))
    base_t = torch.tensor(base, dtype=torch.float32)  # (A, 4)
    c = (torch.arange(feature_size, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    centers = torch.stack((cx, cy, cx, cy), dim=-1).reshape(-1, 1, 4)
    return (centers + base_t[None]).reshape(-1, 4)
