"""The loss-rejection protocol (paper Eq. 3), with cheap short-cuts first.

Given B samples of raw predictions of a randomly initialized network and their
targets, a candidate loss is minimized directly over the raw predictions (Adam, through
the task's branch transforms) and the task metric of each sample is compared before
and after: g = mean gain. The candidate is rejected when g < eta.

Before any optimization, obvious cases are settled (the short-cuts): a loss that uses
no leaf depending on the predictions, a NaN/Inf loss or gradient, an all-zero gradient.
The first backward pass also gives the gradient fingerprint of the equivalence check;
``lookup`` may settle the candidate there (a duplicate) before the optimization.

All B samples are stacked on a leading dim and optimized in one graph: each sample's
loss depends on its own predictions only, so one backward pass over the sum gives every
sample's gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..expr.compile import CompiledLoss
from ..expr.tree import Loss
from ..tasks.base import ScreeningBatch, Task, tensors_of, tree_map
from .config import ScreeningConfig
from .equivalence import fingerprint

ACCEPTED = "accepted"
REJECTED = "rejected"
SETTLED = "settled"  # decided by ``lookup`` (equivalence) before optimization
ZERO_GRAD = 1e-7
"""Gradient norms below this on every sample count as zero (float32 rounding noise: e.g.
the mean over classes of softmax probabilities is 1/C exactly, yet its float32 gradient
is ~1e-9)."""


@dataclass
class ScreenResult:
    verdict: str
    reason: str = ""
    g: float | None = None
    fingerprint: str | None = None
    shortcut: bool = False
    seconds: float = 0.0
    settled: object = None


class Screener:
    """Screens candidate losses of one task and metric on B fixed samples."""

    def __init__(
        self,
        task: Task,
        metric: str,
        config: ScreeningConfig,
        seed: int,
        device: str = "cpu",
        operators=None,
        digits: int = 2,
        batch: ScreeningBatch | None = None,
    ):
        self.task = task
        self.metric = task.check_metric(metric)
        self.config = config
        self.operators = operators
        self.digits = digits
        self.batch = batch or task.screening_batch(config.samples, seed, device)
        self.raw0 = tree_map(lambda t: t.detach().float(), self.batch.raw)
        self.target = self.batch.target
        with torch.no_grad():
            self.before = task.sample_metric(self.raw0, self.target, self.metric).float()

    # -- the protocol ------------------------------------------------------------
    def _loss_and_grads(self, compiled: CompiledLoss, raw, leaves):
        per = compiled.per_sample(self.task.branch_inputs(raw, self.target))
        total = per.sum()
        if not bool(torch.isfinite(total)):
            return None, None
        grads = torch.autograd.grad(total, leaves, allow_unused=True)
        return total, [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]

    def _norms(self, grads) -> torch.Tensor:
        sq = None
        for g in grads:
            s = g.reshape(g.shape[0], -1).double().pow(2).sum(dim=1)
            sq = s if sq is None else sq + s
        return sq.sqrt()

    def screen(
        self,
        loss: Loss,
        lookup: Callable[[str], object | None] | None = None,
        optimize: bool | None = None,
    ) -> ScreenResult:
        """Screen one loss. ``lookup(fingerprint)`` returning non-None settles it early.

        ``optimize=False`` stops after the fingerprint (equivalence check without the
        rejection protocol, for ablations); the default follows ``config.enabled``.
        """
        t0 = time.perf_counter()
        res = self._screen(loss, lookup, self.config.enabled if optimize is None else optimize)
        res.seconds = time.perf_counter() - t0
        return res

    def _screen(self, loss, lookup, optimize) -> ScreenResult:
        if not self.task.depends_on_prediction(loss):
            return ScreenResult(REJECTED, "does not depend on the prediction", shortcut=True)
        compiled = CompiledLoss(loss, self.operators)
        raw = tree_map(lambda t: t.clone().requires_grad_(True), self.raw0)
        leaves = tensors_of(raw)
        total, grads = self._loss_and_grads(compiled, raw, leaves)
        if total is None:
            return ScreenResult(REJECTED, "NaN/Inf loss", shortcut=True)
        norms = self._norms(grads)
        if not bool(torch.isfinite(norms).all()):
            return ScreenResult(REJECTED, "NaN/Inf gradient", shortcut=True)
        if float(norms.max()) < ZERO_GRAD:
            return ScreenResult(REJECTED, "zero gradient", shortcut=True)
        fp = fingerprint(norms.tolist(), self.digits)
        if lookup is not None:
            hit = lookup(fp)
            if hit is not None:
                return ScreenResult(SETTLED, "same gradient fingerprint", fingerprint=fp,
                                    settled=hit)
        if not optimize:
            return ScreenResult(ACCEPTED, "not screened", fingerprint=fp)
        opt = torch.optim.Adam(leaves, lr=self.config.lr)
        for step in range(self.config.steps):
            if step > 0:
                total, grads = self._loss_and_grads(compiled, raw, leaves)
                if total is None or not all(bool(torch.isfinite(g).all()) for g in grads):
                    return ScreenResult(REJECTED, f"NaN/Inf during optimization (step {step})",
                                        fingerprint=fp)
            for x, g in zip(leaves, grads):
                x.grad = g
            opt.step()
        with torch.no_grad():
            after = self.task.sample_metric(raw, self.target, self.metric).float()
        g = float((after - self.before).mean())
        if g != g:  # NaN metric after optimization
            return ScreenResult(REJECTED, "NaN metric after optimization", fingerprint=fp)
        if g < self.config.eta:
            return ScreenResult(REJECTED, f"g = {g:.3f} < eta", g=g, fingerprint=fp)
        return ScreenResult(ACCEPTED, "", g=g, fingerprint=fp)
