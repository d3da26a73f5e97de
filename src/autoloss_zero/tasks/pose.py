"""Keypoint estimation on single-object crops, SimpleBaseline-style (Xiao et al. 2018).

Data: 32x32 canvases composed with exactly one silhouette each
(:func:`~autoloss_zero.tasks.canvas.compose` with ``objects=(1, 1)``, objects 16 to
28 px long), with K = 5 exact keypoints ``left right top bottom center``. Targets are a
dict: ``heatmap`` (N, K, 16, 16) Gaussians (sigma ``heatmap_sigma`` = 1 heatmap px) at
half the crop resolution, ``keypoints`` (N, K, 2) in pixels, ``area`` (mask area) and
``size`` (longest box side). Heatmap pixel j covers input pixels 2j and 2j + 1, so input
x maps to heatmap u = (x - 0.5) / 2.

Network: a small strided conv encoder (to 4x4) and two stride-2 deconvolutions back to
16x16, a 1x1 conv to K heatmaps, trained with Adam at a constant rate (a cosine decay
cut the proxy AP from ~0.35 to ~0.12: heatmap regression needs its full rate).
Decoding: argmax per heatmap plus a quarter-pixel offset towards the higher
neighbour; the object score is the mean of the K maxima.
Leaves of the one branch ``loss``: ``yhat`` = the raw heatmaps, ``y`` = the target
heatmaps, (N, K, h, w) each (no transform). Metrics: ``ap`` (COCO keypoint AP by OKS)
and ``pck`` (see :mod:`autoloss_zero.metrics.keypoints`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .. import baselines as bl
from ..errors import TaskError
from ..metrics.keypoints import keypoint_ap, pck, per_sample_ap
from .base import Branch, SupervisedTask
from .canvas import KEYPOINT_NAMES, compose
from .layers import conv_bn, deconv_bn
from .options import Rule, choice, integer, multiple_of, number

STRIDE = 2  # input pixels per heatmap pixel


class PoseNet(nn.Module):
    """Encoder 32 -> 16 -> 8 -> 4, deconvolutions 4 -> 8 -> 16, K heatmaps."""

    def __init__(self, in_ch: int, keypoints: int, width: int = 16, depth: int = 1):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            conv_bn(in_ch, w), conv_bn(w, 2 * w, stride=2), conv_bn(2 * w, 4 * w, stride=2),
            conv_bn(4 * w, 8 * w, stride=2), *[conv_bn(8 * w, 8 * w) for _ in range(depth - 1)],
        )
        self.decoder = nn.Sequential(deconv_bn(8 * w, 2 * w), deconv_bn(2 * w, 2 * w))
        self.head = nn.Conv2d(2 * w, keypoints, 1)

    def forward(self, x):
        return self.head(self.decoder(self.encoder(x)))


def gaussian_heatmaps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(..., K, size, size) Gaussians at input-pixel points (..., K, 2) (x, y)."""
    u = (points - (STRIDE - 1) / 2) / STRIDE  # heatmap coordinates
    grid = torch.arange(size, dtype=torch.float32)
    gx = torch.exp(-((grid - u[..., 0:1]) ** 2) / (2 * sigma**2))  # (..., K, W)
    gy = torch.exp(-((grid - u[..., 1:2]) ** 2) / (2 * sigma**2))  # (..., K, H)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def decode(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (..., K, 2) in input pixels and scores (...) from heatmaps (..., K, h, w):
    argmax plus a quarter pixel towards the higher neighbour (SimpleBaseline)."""
    hm = heatmaps.detach().float()
    h, w = hm.shape[-2:]
    flat = hm.flatten(-2)
    best, idx = flat.max(-1)
    ys, xs = idx // w, idx % w
    pts = torch.stack([xs, ys], -1).float()
    for axis, (pos, n, step) in enumerate(((xs, w, 1), (ys, h, w))):
        inside = (pos > 0) & (pos < n - 1)
        lo = flat.gather(-1, (idx - step).clamp(0, h * w - 1).unsqueeze(-1)).squeeze(-1)
        hi = flat.gather(-1, (idx + step).clamp(0, h * w - 1).unsqueeze(-1)).squeeze(-1)
        pts[..., axis] += 0.25 * torch.sign(hi - lo) * inside
    return pts * STRIDE + (STRIDE - 1) / 2, best.mean(-1)


class PoseTask(SupervisedTask):
    name: ClassVar[str] = "pose"
    metrics: ClassVar[tuple[str, ...]] = ("ap", "pck")
    branches: ClassVar[tuple[Branch, ...]] = (Branch("loss"),)
    baselines: ClassVar[tuple[str, ...]] = ("mse",)
    defaults: ClassVar[dict[str, Any]] = {
        **SupervisedTask.defaults,
        "source": "animals",
        "crop": 32,
        "width": 16,
        "depth": 1,
        "heatmap_sigma": 1.0,
        "train_items": 2000,
        "val_items": 200,
        "test_items": 500,
        "data_seed": 0,
        # Chosen with autoloss-zero calibrate over 9 losses (2026-12-01,
        # results/pose-calibration.md): 600 steps rank them like the full schedule with
        # Kendall tau 0.67 (AP) and 0.70 (PCK), 300 steps with 0.44 and 0.48; ~19 s.
        "proxy_steps": 600,
        "full_steps": 2000,
        "batch_size": 32,
        "lr": 2e-3,
        "sample_size": 1,
        "eval_batch": 250,
    }
    references: ClassVar[dict[str, tuple[str, ...]]] = {
        "good": ("Square(Add(yhat, Neg(y)))",),
        "bad": ("Neg(Square(Add(yhat, Neg(y))))", "Square(y)"),
    }
    # Screening's fit test (benchmarks/README.md, "The fit test"): on heatmaps, g
    # (Adam on raw outputs, each pixel free) accepts losses a network cannot train with.
    screening_fit_steps: ClassVar[int] = 200
    option_rules: ClassVar[dict[str, Rule]] = {
        "source": choice("animals", "digits"), "crop": multiple_of(8, 16, 256),
        "width": integer(1, 1024), "depth": integer(1, 32),
        "heatmap_sigma": number(hi=100.0, positive=True),
        "train_items": integer(1, 10**6), "val_items": integer(1, 10**6),
        "test_items": integer(1, 10**6), "data_seed": integer(0, 2**32 - 1),
    }
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "large": {"width": 32, "depth": 2},
        "digits": {"source": "digits"},
    }

    num_keypoints = len(KEYPOINT_NAMES)

    def load_split(self, split: str):
        crop = int(self.config["crop"])
        c = compose(
            self.config["source"], split, count=int(self.config[f"{split}_items"]), size=crop,
            objects=(1, 1), seed=int(self.config["data_seed"]), min_scale=0.5, max_scale=0.9,
        )
        # canvases whose one object survived (enough visible pixels): one instance each
        keep = c.inst_image
        boxes = torch.from_numpy(c.inst_box)
        points = torch.from_numpy(np.ascontiguousarray(c.inst_keypoints))
        sigma = float(self.config["heatmap_sigma"])
        target = {
            "heatmap": gaussian_heatmaps(points, crop // STRIDE, sigma),
            "keypoints": points,
            "area": torch.from_numpy(c.inst_mask.sum(axis=(1, 2)).astype(np.float32)),
            "size": (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values,
        }
        return torch.from_numpy(c.images[keep]), target

    def build_model(self) -> nn.Module:
        return PoseNet(1, self.num_keypoints, int(self.config["width"]), int(self.config["depth"]))

    def branch_inputs(self, raw, target):
        y = target["heatmap"] if isinstance(target, dict) else target
        return {"loss": {"yhat": raw, "y": y}}

    def sample_metric(self, raw, target, metric):
        """Per sample: the metric of its crop (the mean over its crops if
        ``sample_size`` > 1); raw (S, k, K, h, w), target tensors with leading (S, k)."""
        self.check_metric(metric)
        pts, _ = decode(raw)
        if metric == "ap":
            scores = per_sample_ap(pts, target["keypoints"], target["area"])
        else:
            scores = pck(pts, target["keypoints"], target["size"])
        return scores.mean(dim=1)

    def split_metrics(self, batches):
        parts: dict[str, list[torch.Tensor]] = {"pts": [], "score": [], "gt": [], "area": [],
                                                "size": []}
        for raw, target in batches:
            pts, score = decode(raw)
            for key, value in (("pts", pts), ("score", score), ("gt", target["keypoints"]),
                               ("area", target["area"]), ("size", target["size"])):
                parts[key].append(value.cpu())
        p = {k: torch.cat(v) for k, v in parts.items()}
        return {
            "ap": keypoint_ap(p["pts"], p["score"], p["gt"], p["area"]),
            "pck": float(pck(p["pts"], p["gt"], p["size"]).mean()),
        }

    def baseline(self, name: str):
        if name == "mse":
            return lambda raw, target: bl.mse(raw, self.branch_inputs(raw, target)["loss"]["y"])
        raise TaskError(f"task {self.name} has no baseline {name!r} (known: mse)")

    def export_transform(self):
        return (
            "heatmaps, target_heatmaps",
            '''def branch_inputs(heatmaps, target_heatmaps):
    """Raw predicted heatmaps and target heatmaps, (N, K, h, w) each, unchanged."""
    return {"loss": {"yhat": heatmaps, "y": target_heatmaps}}''',
        )
