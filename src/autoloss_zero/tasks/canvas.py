"""Canvases composed from real silhouettes, with exact labels for every dense task.

Each canvas (``size`` x ``size``, one grey channel) holds 1 to 3 silhouettes drawn from
one split of a source (``animals`` or ``digits``), each rescaled, possibly flipped, and
pasted at a random place over a smooth noisy background; later objects occlude earlier
ones. Labels are exact by construction:

- ``semantic``: (n, H, W) int64, 0 = background, class + 1 for object pixels;
- per instance (flat arrays with ``inst_image`` = the canvas index): ``inst_label``
  (class, 0-based), ``inst_mask`` (visible pixels), ``inst_box`` (x0, y0, x1, y1) in
  pixels with x1/y1 exclusive, ``inst_keypoints`` (5, 2) as (x, y): the left-, right-,
  top- and bottom-most visible pixels and the centroid of the visible mask.

Generation is deterministic in (source, split, count, size, objects, seed) and cached as
``.npz`` under :func:`~autoloss_zero.tasks.data.cache_dir` (no pickles).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import cache_dir, source_images, split_indices

KEYPOINT_NAMES = ("left", "right", "top", "bottom", "center")
VERSION = 1


@dataclass
class Canvases:
    images: np.ndarray  # (n, 1, H, W) float32 in [0, 1]
    semantic: np.ndarray  # (n, H, W) int64
    inst_image: np.ndarray  # (m,) int64
    inst_label: np.ndarray  # (m,) int64, 0-based class
    inst_mask: np.ndarray  # (m, H, W) bool
    inst_box: np.ndarray  # (m, 4) float32 x0, y0, x1, y1 (exclusive)
    inst_keypoints: np.ndarray  # (m, 5, 2) float32 x, y
    num_classes: int  # object classes, background excluded

    def __len__(self) -> int:
        return len(self.images)

    def instances_of(self, i: int) -> np.ndarray:
        return np.flatnonzero(self.inst_image == i)


def _smooth_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = torch.from_numpy(rng.random((1, 1, 8, 8), dtype=np.float32))
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return fine[0, 0].numpy()


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(img.astype(np.float32))[None, None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[
        0, 0
    ].numpy()


def keypoints_of(mask: np.ndarray) -> np.ndarray:
    """Extreme points and centroid (x, y) of a non-empty boolean mask."""
    ys, xs = np.nonzero(mask)
    pts = []
    for sel in (xs.argmin(), xs.argmax(), ys.argmin(), ys.argmax()):
        pts.append((xs[sel], ys[sel]))
    pts.append((xs.mean(), ys.mean()))
    return np.asarray(pts, dtype=np.float32)


def _generate(source, split, count, size, objects, seed, min_scale, max_scale):
    imgs, labels = source_images(source)
    pool = split_indices(labels, split)
    rng = np.random.default_rng([seed, 104729, ["train", "val", "test"].index(split)])
    images = np.zeros((count, 1, size, size), np.float32)
    semantic = np.zeros((count, size, size), np.int64)
    rows = []
    for i in range(count):
        bg = 0.25 * _smooth_noise(rng, size) + 0.05
        canvas = bg.copy()
        owner = -np.ones((size, size), np.int64)
        placed = []
        for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
            j = int(pool[rng.integers(len(pool))])
            src = imgs[j].astype(np.float32) / 255.0
            mask0 = src > 0.25
            if mask0.sum() < 4:
                continue
            ys, xs = np.nonzero(mask0)
            crop = src[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            longest = int(rng.integers(int(min_scale * size), int(max_scale * size) + 1))
            sc = longest / max(crop.shape)
            h, w = max(2, round(crop.shape[0] * sc)), max(2, round(crop.shape[1] * sc))
            obj = _resize(crop, h, w)
            if rng.random() < 0.5:
                obj = obj[:, ::-1]
            m = obj > 0.35
            y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            contrast = 0.55 + 0.4 * rng.random()
            region = canvas[y0 : y0 + h, x0 : x0 + w]
            region[m] = np.clip(0.15 + contrast * obj[m], 0, 1)
            owner[y0 : y0 + h, x0 : x0 + w][m] = len(placed)
            placed.append(int(labels[j]))
        canvas += rng.normal(0, 0.04, canvas.shape).astype(np.float32)
        images[i, 0] = np.round(np.clip(canvas, 0, 1) * 255) / 255  # exactly what is cached
        for k, lab in enumerate(placed):
            vis = owner == k
            if vis.sum() < 12:
                continue
            semantic[i][vis] = lab + 1
            ys, xs = np.nonzero(vis)
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            rows.append((i, lab, vis, box, keypoints_of(vis)))
    m = len(rows)
    return Canvases(
        images=images,
        semantic=semantic,
        inst_image=np.array([r[0] for r in rows], np.int64),
        inst_label=np.array([r[1] for r in rows], np.int64),
        inst_mask=np.stack([r[2] for r in rows]) if m else np.zeros((0, size, size), bool),
        inst_box=np.stack([r[3] for r in rows]) if m else np.zeros((0, 4), np.float32),
        inst_keypoints=np.stack([r[4] for r in rows]) if m else np.zeros((0, 5, 2), np.float32),
        num_classes=int(labels.max()) + 1,
    )


def compose(
    source: str = "animals",
    split: str = "train",
    count: int = 1000,
    size: int = 64,
    objects: tuple[int, int] = (1, 3),
    seed: int = 0,
    min_scale: float = 0.3,
    max_scale: float = 0.6,
) -> Canvases:
    """Canvases of one split (cached): see the module docstring."""
    params = dict(version=VERSION, source=source, split=split, count=count, size=size,
                  objects=list(objects), seed=seed, min_scale=min_scale, max_scale=max_scale)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"canvas-{source}-{split}-{digest}.npz"
    if path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is regenerated
    data = _generate(source, split, count, size, tuple(objects), seed, min_scale, max_scale)
    _save(path, data)
    return data


def _save(path: Path, data: Canvases) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        images=(data.images * 255).round().astype(np.uint8),
        semantic=data.semantic.astype(np.uint8),
        inst_image=data.inst_image,
        inst_label=data.inst_label,
        inst_mask=np.packbits(data.inst_mask, axis=-1),
        inst_box=data.inst_box,
        inst_keypoints=data.inst_keypoints,
        num_classes=np.array(data.num_classes),
        size=np.array(data.images.shape[-1]),
    )
    os.replace(tmp, path)


def _load(path: Path) -> Canvases:
    with np.load(path, allow_pickle=False) as z:
        size = int(z["size"])
        return Canvases(
            images=z["images"].astype(np.float32) / 255.0,
            semantic=z["semantic"].astype(np.int64),
            inst_image=z["inst_image"],
            inst_label=z["inst_label"],
            inst_mask=np.unpackbits(z["inst_mask"], axis=-1, count=size).astype(bool),
            inst_box=z["inst_box"],
            inst_keypoints=z["inst_keypoints"],
            num_classes=int(z["num_classes"]),
        )
