"""Image classification on real offline images (animal silhouettes or sklearn digits).

Leaves: ``yhat`` = softmax probabilities (N, C), ``y`` = one-hot targets (N, C). A
screening sample is a mini-batch of ``sample_size`` (32) images, so that accuracy moves
in small steps. Proxy training: a small conv net for ``proxy_steps`` Adam steps, scored
on the validation split; ``full`` trains longer and scores the held-out test split.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TaskError
from .base import Branch, SupervisedTask
from .data import source_images, split_indices
from .options import Rule, choice, integer


class SmallConvNet(nn.Module):
    def __init__(self, in_ch: int, classes: int, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x):
        return self.head(self.features(x))


def softmax_onehot(logits: torch.Tensor, labels: torch.Tensor, dim: int):
    """Leaves of a classification branch: probabilities and one-hot targets."""
    yhat = torch.softmax(logits, dim=dim)
    y = F.one_hot(labels, logits.shape[dim]).to(logits.dtype)
    if dim != -1 and dim != logits.dim() - 1:
        y = y.movedim(-1, dim)
    return yhat, y


class ClassificationTask(SupervisedTask):
    name: ClassVar[str] = "classification"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    branches: ClassVar[tuple[Branch, ...]] = (Branch("loss"),)
    baselines: ClassVar[tuple[str, ...]] = ("ce", "focal", "ls-ce")
    """``ls-ce``: cross-entropy with label smoothing 0.1 (Szegedy et al. 2016), the common
    strong baseline."""
    defaults: ClassVar[dict[str, Any]] = {
        **SupervisedTask.defaults,
        "source": "animals",
        "width": 16,
        "train_items": 4000,
        "proxy_steps": 150,
        "full_steps": 1500,
        "batch_size": 64,
        "lr": 2e-3,
        "sample_size": 32,
    }
    references: ClassVar[dict[str, tuple[str, ...]]] = {
        "good": ("Neg(Mul(y, Log(yhat)))", "Square(Add(yhat, Neg(y)))"),
        "bad": ("Mul(y, Log(yhat))", "Log(y)", "Mean_c(yhat)"),
    }
    option_rules: ClassVar[dict[str, Rule]] = {
        "source": choice("animals", "digits"), "width": integer(1, 1024),
        "train_items": integer(0, 10**7),
    }
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "large": {"width": 32},
        "digits": {"source": "digits", "train_items": 0},
    }

    def load_split(self, split: str):
        x, y = source_images(self.config["source"])
        idx = split_indices(y, split)
        limit = int(self.config["train_items"])
        if split == "train" and limit > 0:
            idx = idx[np.random.default_rng(3).permutation(len(idx))[:limit]]
            idx.sort()
        xs = torch.from_numpy(np.ascontiguousarray(x[idx])).float().div_(255.0).unsqueeze(1)
        return xs, torch.from_numpy(y[idx].copy())

    @property
    def num_classes(self) -> int:
        return 10

    def build_model(self) -> nn.Module:
        return SmallConvNet(1, self.num_classes, int(self.config["width"]))

    def branch_inputs(self, raw, target):
        yhat, y = softmax_onehot(raw, target, dim=-1)
        return {"loss": {"yhat": yhat, "y": y}}

    def sample_metric(self, raw, target, metric):
        self.check_metric(metric)
        return (raw.argmax(-1) == target).float().mean(dim=-1)

    def split_metrics(self, batches):
        correct = total = 0
        for raw, target in batches:
            correct += int((raw.argmax(-1) == target).sum())
            total += int(target.numel())
        return {"accuracy": correct / max(total, 1)}

    def baseline(self, name: str):
        if name == "ce":
            return lambda raw, target: F.cross_entropy(raw, target)
        if name == "focal":
            from kornia.losses import focal_loss

            return lambda raw, target: focal_loss(
                raw, target, alpha=0.25, gamma=2.0, reduction="mean"
            )
        if name == "ls-ce":
            return lambda raw, target: F.cross_entropy(raw, target, label_smoothing=0.1)
        raise TaskError(f"task {self.name} has no baseline {name!r} (known: "
                        f"{', '.join(self.baselines)})")

    def export_transform(self):
        return (
            "logits, labels",
            '''def branch_inputs(logits, labels):
    """Softmax probabilities and one-hot targets, (N, C) each."""
    yhat = torch.softmax(logits, dim=-1)
    y = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return {"loss": {"yhat": yhat, "y": y}}''',
        )
