"""A compact two-stage detector (Faster/Mask R-CNN in miniature) for 64x64 canvases.

- backbone: four conv-BN-ReLU stages (strides 1, 2, 4, 8) and a two-level top-down
  merge, giving one stride-4 feature map (16x16 for a 64x64 image);
- RPN: a 3x3 conv, then per anchor one objectness logit and 4 box deltas;
- RoI box head: RoIAlign 7x7 on a channel-reduced map, two FC layers, (K+1)-way class
  logits (0 = background) and class-agnostic box deltas;
- mask head (optional): RoIAlign 7x7, two 3x3 convs, 2x transposed convs and one
  class-agnostic logit per pixel of a ``mask_size`` mask (28: 7x7 upsampled twice).

The module only maps tensors to tensors; sampling, matching and decoding live in
``sampling.py`` / ``pipeline.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import conv_bn
from .anchors import make_anchors
from .roi_align import roi_align


@dataclass(frozen=True)
class DetectorConfig:
    """Sizes of the detector (the defaults are tuned for 64x64 canvases)."""

    num_classes: int = 10
    image_size: int = 64
    width: int = 16
    channels: int = 64
    head_channels: int = 32
    fc: int = 128
    stride: int = 4
    anchor_sizes: tuple[float, ...] = (16.0, 22.0, 30.0, 40.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    pool: int = 7
    mask: bool = False
    mask_size: int = 14

    @property
    def feature_size(self) -> int:
        return self.image_size // self.stride

    @property
    def anchors_per_cell(self) -> int:
        return len(self.anchor_sizes) * len(self.anchor_ratios)


class Backbone(nn.Module):
    """Stride-4 features (n, channels, H/4, W/4) from one grey channel."""

    def __init__(self, width: int, channels: int):
        super().__init__()
        w = width
        self.stem = conv_bn(1, w)
        self.c2 = nn.Sequential(conv_bn(w, 2 * w, 2), conv_bn(2 * w, 2 * w))
        self.c3 = nn.Sequential(conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w))
        self.c4 = nn.Sequential(conv_bn(4 * w, 6 * w, 2), conv_bn(6 * w, 6 * w))
        self.lat3 = nn.Conv2d(4 * w, channels, 1)
        self.lat4 = nn.Conv2d(6 * w, channels, 1)
        self.smooth = conv_bn(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c3 = self.c3(self.c2(self.stem(x)))
        c4 = self.c4(c3)
        p = self.lat3(c3) + F.interpolate(self.lat4(c4), scale_factor=2.0, mode="nearest")
        return self.smooth(p)


class RPNHead(nn.Module):
    """Objectness logits (n, h*w*A) and deltas (n, h*w*A, 4), ordered (y, x, anchor)."""

    def __init__(self, channels: int, anchors: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.obj = nn.Conv2d(channels, anchors, 1)
        self.delta = nn.Conv2d(channels, 4 * anchors, 1)
        for m in (self.obj, self.delta):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.conv(p)
        n = p.shape[0]
        obj = self.obj(t).permute(0, 2, 3, 1).reshape(n, -1)
        delta = self.delta(t).permute(0, 2, 3, 1).reshape(n, -1, 4)
        return obj, delta


class BoxHead(nn.Module):
    """(K+1)-way logits (n, R, K+1) and class-agnostic deltas (n, R, 4) of RoIs (n, R, 4)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.pool, self.scale = cfg.pool, 1.0 / cfg.stride
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(cfg.head_channels * cfg.pool**2, cfg.fc), nn.ReLU(inplace=True),
            nn.Linear(cfg.fc, cfg.fc), nn.ReLU(inplace=True),
        )
        self.cls = nn.Linear(cfg.fc, cfg.num_classes + 1)
        self.delta = nn.Linear(cfg.fc, 4)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.delta.weight, std=0.001)
        nn.init.zeros_(self.cls.bias)
        nn.init.zeros_(self.delta.bias)

    def forward(self, f: torch.Tensor, rois: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, r = rois.shape[:2]
        x = roi_align(f, rois, self.pool, self.scale).reshape(n * r, -1)
        h = self.fc(x)
        return self.cls(h).reshape(n, r, -1), self.delta(h).reshape(n, r, 4)


class MaskHead(nn.Module):
    """Class-agnostic mask logits (n, R, M, M) of RoIs (n, R, 4), M = mask_size = 7 * 2^k:
    RoIAlign 7x7, two 3x3 convs, then k 2x transposed convs (channels halved after the
    first, to keep the large ones cheap)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        c = cfg.head_channels
        self.pool, self.scale, self.size = 7, 1.0 / cfg.stride, cfg.mask_size
        ups = (cfg.mask_size // 7).bit_length() - 1
        if ups < 1 or 7 * 2**ups != cfg.mask_size:
            raise ValueError(f"mask_size must be 7 * 2^k with k >= 1, got {cfg.mask_size}")
        layers: list[nn.Module] = [
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
        ]
        cin = c
        for k in range(ups):
            cout = c if k == 0 else max(8, cin // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 2, stride=2), nn.ReLU(inplace=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.logit = nn.Conv2d(cin, 1, 1)

    def forward(self, f: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        n, r = rois.shape[:2]
        x = roi_align(f, rois, self.pool, self.scale).reshape(n * r, f.shape[1], self.pool, -1)
        out = self.logit(self.convs(x))
        return out.reshape(n, r, self.size, self.size)


class Detector(nn.Module):
    """The whole network; ``anchors`` is a (h*w*A, 4) buffer in image pixels."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg.width, cfg.channels)
        self.rpn = RPNHead(cfg.channels, cfg.anchors_per_cell)
        self.reduce = nn.Sequential(nn.Conv2d(cfg.channels, cfg.head_channels, 1), nn.ReLU())
        self.box_head = BoxHead(cfg)
        self.mask_head = MaskHead(cfg) if cfg.mask else None
        anchors = make_anchors(cfg.feature_size, cfg.stride, cfg.anchor_sizes, cfg.anchor_ratios)
        self.register_buffer("anchors", anchors, persistent=False)

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RPN features, reduced RoI-head features)."""
        p = self.backbone(images)
        return p, self.reduce(p)
