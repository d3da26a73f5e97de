"""The classification task's baselines against their definitions written out."""

from __future__ import annotations

import pytest
import torch

from autoloss_zero.tasks import get_task


def test_label_smoothing_ce_is_its_definition():
    task = get_task("classification")
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 10, dtype=torch.float64), torch.tensor([0, 3, 9, 3, 1, 2])
    logp = torch.log_softmax(logits, dim=1)
    eps = 0.1
    # smoothed target: 1 - eps + eps/K on the label, eps/K elsewhere
    want = -((1 - eps) * logp[torch.arange(6), labels] + eps * logp.mean(dim=1)).mean()
    assert float(task.baseline("ls-ce")(logits, labels)) == pytest.approx(float(want), rel=1e-12)
    assert float(task.baseline("ce")(logits, labels)) == pytest.approx(
        float(-logp[torch.arange(6), labels].mean()), rel=1e-12)
    assert "ls-ce" in task.baselines
