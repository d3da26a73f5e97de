"""Network building blocks shared by the built-in tasks' models."""

from __future__ import annotations

from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 conv, BatchNorm, ReLU (padding keeps the size at stride 1)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def deconv_bn(cin: int, cout: int) -> nn.Sequential:
    """4x4 stride-2 transposed conv (doubles the size), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )
