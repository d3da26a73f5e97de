"""The loss-rejection protocol (paper Eq. 3), with cheap short-cuts first, and the
gradient fingerprint of the equivalence check.

Given B samples of raw predictions of a randomly initialized network and their
targets, a candidate loss is minimized directly over the raw predictions (Adam, through
the task's branch transforms) and the task metric of each sample is compared before
and after: g = mean gain. The candidate is rejected when g < eta.

Before any optimization, obvious cases are settled (the short-cuts): a branch that uses
no leaf depending on its predictions (or, where the branch has one, no target leaf), a
NaN/Inf loss or gradient, a gradient that is zero (relative: the float64 gradient is
below float32 rounding noise, see :func:`_is_zero`).

The **fit test** (beyond the paper, ``screening.fit_steps``; pose by default): a
candidate that passed g also trains a freshly initialized network of the task on the B
samples alone, and must raise the metric there by ``fit_eta``. Raw outputs are free per
element; a network's are not, and on heatmaps g accepted losses that train to nothing.

The **fingerprint** (paper Section 3.2; see :mod:`.equivalence`) is taken per branch:
the B gradient norms at the initial predictions, the B directional derivatives along a
fixed random direction there (signed, so that L and -L never collide), and, when the
protocol ran, the B gradient norms at the end of the candidate's own optimization
(where predictions are far from uniform and losses differ most; equivalent losses,
which differ by a constant, follow the same Adam path and meet there again). The search
consults it only for candidates that passed the protocol (the paper's order), before
their fit test: a loss equivalent to one that passed or failed the fit test gets its
verdict without paying for the test again.

All B samples are stacked on a leading dim and optimized in one graph: each sample's
loss depends on its own predictions only, so one backward pass over the sum gives every
sample's gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..expr.compile import CompiledLoss
from ..expr.tree import Loss
from ..tasks.base import InvalidLoss, RawLoss, ScreeningBatch, Task, tensors_of, tree_map
from .config import ScreeningConfig, SearchConfig
from .equivalence import fingerprint
from .seeds import derive_seed
from .status import Verdict

ZERO_RATIO = 1e-3
"""A gradient counts as zero when its float64 norm is below this fraction of its float32
norm on every sample: what float32 shows is then rounding noise (e.g. the mean over
classes of softmax probabilities is 1/C exactly, yet its float32 gradient is ~1e-9). The
test is relative, as Adam is: a loss scaled by 1e-8 keeps its (tiny, real) gradient."""


_UNSET = object()

BRANCH_NOISE = (0.5, 1.0, 2.0, 4.0)
"""Stds of the noise added to a branch's own outputs where the network's leave too small a
gap to the perfect metric (``screening.branch_min_gap``)."""

FIT_FAILED = "fit test: "
"""How the reason of a rejection by the fit test begins (the search counts those apart)."""


@dataclass
class ScreenResult:
    verdict: Verdict
    reason: str = ""
    g: float | None = None
    fingerprint: str | None = None
    shortcut: bool = False
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.verdict == Verdict.ACCEPTED


def _timed(fn, *args) -> ScreenResult:
    t0 = time.perf_counter()
    res = fn(*args)
    res.seconds = time.perf_counter() - t0
    return res


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
        self.seed = seed
        self.batch = batch or task.screening_batch(config.samples, seed, device)
        self.raw0 = tree_map(lambda t: t.detach().float(), self.batch.raw)
        self.target = self.batch.target
        gen = torch.Generator().manual_seed(derive_seed(seed, "fingerprint direction"))
        self.direction = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.device)
                          for t in tensors_of(self.raw0)]
        with torch.no_grad():
            self.before = task.sample_metric(self.raw0, self.target, self.metric).float()
        # steps of the fit test (0: none): the config's, else the task's choice; 0 where
        # the task cannot train on its screening samples
        steps = task.screening_fit_steps if config.fit_steps is None else config.fit_steps
        self.fit_steps = steps if config.enabled and self.batch.items is not None else 0
        self._fit_before = _UNSET  # the untrained fit network's metric, made on first use
        self._perfect_raw = _UNSET  # made on first use (:meth:`_perfect`)
        self._perfect_top: torch.Tensor | None = None
        self._starts: dict = {}  # per branch: its test's starting outputs (_branch_starts)

    @classmethod
    def from_config(cls, task: Task, metric: str, config: SearchConfig,
                    device: str = "cpu") -> Screener:
        """The screener of a search: its settings, operators and equivalence digits, and
        samples drawn from a stream of the master seed of their own."""
        return cls(task, metric, config.screening, derive_seed(config.seed, "screening"),
                   device, config.operator_set(), config.equivalence.digits)

    # -- pieces -------------------------------------------------------------------
    def _branch_values(self, compiled: CompiledLoss, raw) -> list[tuple[str, torch.Tensor]]:
        inputs = self.task.branch_inputs(raw, self.target)
        return [(name, part.per_sample(inputs[name])) for name, part in compiled.parts]

    def _grads(self, value: torch.Tensor, leaves, retain: bool = False) -> list[torch.Tensor]:
        grads = torch.autograd.grad(value, leaves, allow_unused=True, retain_graph=retain)
        return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]

    @staticmethod
    def _norms(grads) -> torch.Tensor:
        sq = None
        for g in grads:
            s = g.reshape(g.shape[0], -1).double().pow(2).sum(dim=1)
            sq = s if sq is None else sq + s
        return sq.sqrt()

    def _directional(self, grads) -> torch.Tensor:
        out = None
        for g, v in zip(grads, self.direction):
            d = (g.double() * v).reshape(g.shape[0], -1).sum(dim=1)
            out = d if out is None else out + d
        return out

    def _initial(self, compiled: CompiledLoss, dtype: torch.dtype):
        """Per branch at the initial predictions: (name, values, grads)."""
        raw = tree_map(lambda t: t.to(dtype).clone().requires_grad_(True), self.raw0)
        leaves = tensors_of(raw)
        parts = self._branch_values(compiled, raw)
        out = []
        for i, (name, per) in enumerate(parts):
            if not bool(torch.isfinite(per).all()):
                return None
            out.append((name, per, self._grads(per.sum(), leaves, retain=i < len(parts) - 1)))
        return out

    def _is_zero(self, compiled: CompiledLoss, norms32: torch.Tensor) -> bool:
        if float(norms32.max()) == 0.0:
            return True
        try:
            parts = self._initial(compiled, torch.float64)
        except (RuntimeError, TypeError):  # a task transform that cannot run in float64
            return bool(float(norms32.max()) < 1e-7)
        if parts is None:
            return False
        norms64 = sum(self._norms(g) for _, _, g in parts)
        return bool((norms64 <= ZERO_RATIO * norms32).all())

    def _fp(self, values) -> str:
        return fingerprint(values, self.digits)

    # -- the protocol ------------------------------------------------------------
    def screen(self, loss: Loss, optimize: bool | None = None, fit: bool = True) -> ScreenResult:
        """Screen one loss. ``optimize=False`` stops after the short-cuts and the
        initial-point fingerprint (the equivalence check without the rejection protocol,
        for ablations); the default follows ``config.enabled``. ``fit=False`` leaves out
        the fit test (the search runs it apart, :meth:`fit_test`, once the fingerprint
        showed the loss is new)."""
        return _timed(self._screen, loss,
                      self.config.enabled if optimize is None else optimize, fit)

    def _screen(self, loss: Loss, optimize: bool, fit: bool = True) -> ScreenResult:
        problem = self.task.dependency_problem(loss)
        if problem:
            return ScreenResult(Verdict.REJECTED, problem, shortcut=True)
        compiled = CompiledLoss(loss, self.operators)
        parts = self._initial(compiled, torch.float32)
        if parts is None:
            return ScreenResult(Verdict.REJECTED, "NaN/Inf loss", shortcut=True)
        multi = len(parts) > 1
        head = []
        total_norm = None
        for name, _, grads in parts:
            norms = self._norms(grads)
            if not bool(torch.isfinite(norms).all()):
                return ScreenResult(Verdict.REJECTED, "NaN/Inf gradient", shortcut=True)
            if multi and self._is_zero(CompiledLoss(Loss([(name, loss[name])]),
                                                    self.operators), norms):
                return ScreenResult(Verdict.REJECTED, f"zero gradient in branch {name}",
                                    shortcut=True)
            total_norm = norms if total_norm is None else total_norm + norms
            head.append((name, norms.tolist(), self._directional(grads).tolist()))
        if not multi and self._is_zero(compiled, total_norm):
            return ScreenResult(Verdict.REJECTED, "zero gradient", shortcut=True)
        if not optimize:
            return ScreenResult(Verdict.ACCEPTED, "not screened",
                                fingerprint=self._join(head, None))
        return self._optimize(compiled, head, fit)

    def _join(self, head, tail) -> str:
        out = []
        for i, (name, norms, directional) in enumerate(head):
            text = f"{self._fp(norms)}|{self._fp(directional)}"
            if tail is not None:
                text += f"|{self._fp(tail[i])}"
            out.append(f"{name}:{text}" if len(head) > 1 else text)
        return ";".join(out)

    def _minimize(self, compiled: CompiledLoss, raw, leaves) -> int | None:
        """The protocol's Adam on ``leaves`` (tensors of ``raw``), in place; the step at
        which the loss or its gradient was not finite, else None."""
        opt = torch.optim.Adam(leaves, lr=self.config.lr)
        for step in range(self.config.steps):
            total = compiled.per_sample(self.task.branch_inputs(raw, self.target)).sum()
            if not bool(torch.isfinite(total)):
                return step
            grads = self._grads(total, leaves)
            if not all(bool(torch.isfinite(g).all()) for g in grads):
                return step
            for x, g in zip(leaves, grads):
                x.grad = g
            opt.step()
        return None

    def _optimize(self, compiled: CompiledLoss, head, fit: bool) -> ScreenResult:
        raw = tree_map(lambda t: t.clone().requires_grad_(True), self.raw0)
        partial = self._join(head, None)
        bad = self._minimize(compiled, raw, tensors_of(raw))
        if bad is not None:
            return ScreenResult(Verdict.REJECTED, f"NaN/Inf during optimization (step {bad})",
                                fingerprint=partial)
        with torch.no_grad():
            after = self.task.sample_metric(raw, self.target, self.metric).float()
        g = float((after - self.before).mean())
        if g != g:  # NaN metric after optimization
            return ScreenResult(Verdict.REJECTED, "NaN metric after optimization",
                                fingerprint=partial)
        if g < self.config.eta:
            return ScreenResult(Verdict.REJECTED, f"g = {g:.3f} < eta", g=g, fingerprint=partial)
        tail = self._end_norms(compiled, raw)
        fp = partial if tail is None else self._join(head, tail)
        failed = self._fit_test(compiled.loss) if fit else ""
        if failed:
            return ScreenResult(Verdict.REJECTED, failed, g=g, fingerprint=fp)
        return ScreenResult(Verdict.ACCEPTED, "", g=g, fingerprint=fp)

    # -- the fit test (beyond the paper) ------------------------------------------------
    def _fit_metric(self, loss: Loss | None, steps: int) -> torch.Tensor | None:
        """The per-sample metric of the fit test's network after ``steps`` steps with
        ``loss`` (:meth:`Task.fit_outputs`); None where the task cannot train on its
        screening samples."""
        fn = None if loss is None else RawLoss(self.task, loss, self.operators)
        raw = self.task.fit_outputs(fn, self.batch, steps, self.config.fit_lr, self.seed)
        if raw is None:
            return None
        with torch.no_grad():
            return self.task.sample_metric(raw, self.target, self.metric).float()

    def fit_gain(self, loss: Loss) -> float:
        """The fit test's metric gain: a fresh network trained with ``loss`` on the
        screening samples alone, against the same network untrained (measured once);
        NaN at a NaN/Inf loss value."""
        if self._fit_before is _UNSET:
            self._fit_before = self._fit_metric(None, 0)
        try:
            after = self._fit_metric(loss, self.fit_steps)
        except InvalidLoss:
            return float("nan")
        if after is None or self._fit_before is None:
            return float("nan")
        return float((after - self._fit_before).mean())

    def fit_test(self, loss: Loss) -> ScreenResult:
        """The fit test alone (accepted where there is none), timed."""
        return _timed(self._fit_verdict, loss)

    def _fit_verdict(self, loss: Loss) -> ScreenResult:
        failed = self._fit_test(loss)
        return ScreenResult(Verdict.REJECTED if failed else Verdict.ACCEPTED, failed)

    def _fit_test(self, loss: Loss) -> str:
        """The reason the loss fails the fit test, or "" (passed, or no fit test)."""
        if not self.fit_steps:
            return ""
        gain = self.fit_gain(loss)
        if gain != gain:
            return FIT_FAILED + "NaN/Inf loss"
        if gain < self.config.fit_eta:
            return FIT_FAILED + f"gain {gain:.3f} < fit_eta"
        return ""

    # -- the per-branch test (beyond the paper) -------------------------------------------
    @property
    def per_branch(self) -> bool:
        """Whether candidates' branches are also screened one by one: on in the config, a
        task of several branches, and perfect outputs the task can give."""
        return (self.config.enabled and self.config.per_branch and len(self.task.branches) > 1
                and self._perfect() is not None)

    def _perfect(self):
        """The task's perfect raw outputs for the screening samples (None if it has none)
        and their metric, made once."""
        if self._perfect_raw is _UNSET:
            with torch.no_grad():
                perfect = self.task.perfect_raw(self.raw0, self.target)
                if perfect is not None:
                    perfect = tree_map(lambda t: t.detach().float(), perfect)
                    self._perfect_top = self.task.sample_metric(
                        perfect, self.target, self.metric).float()
            self._perfect_raw = perfect
        return self._perfect_raw

    def screen_branch(self, loss: Loss, name: str) -> ScreenResult:
        """Screen branch ``name`` of ``loss`` alone: the raw outputs it trains start where
        the network's do (moved by noise where that leaves less than ``branch_min_gap``,
        :meth:`_branch_starts`), every other output is perfect (:meth:`Task.perfect_raw`);
        the branch is minimized alone (the protocol's Adam) and must close at least
        ``branch_eta`` of the metric's gap to the perfect outputs (``g`` is that fraction)."""
        return _timed(self._screen_branch, Loss([(name, loss[name])]))

    def _screen_branch(self, loss: Loss) -> ScreenResult:
        name = loss.names[0]
        problem = self.task.dependency_problem(loss)
        if problem:
            return ScreenResult(Verdict.REJECTED, problem, shortcut=True)
        compiled = CompiledLoss(loss, self.operators)
        parts = self._initial(compiled, torch.float32)
        if parts is None:
            return ScreenResult(Verdict.REJECTED, f"NaN/Inf loss in branch {name}", shortcut=True)
        grads = parts[0][2]
        norms = self._norms(grads)
        if not bool(torch.isfinite(norms).all()):
            return ScreenResult(Verdict.REJECTED, f"NaN/Inf gradient in branch {name}",
                                shortcut=True)
        if self._is_zero(compiled, norms):
            return ScreenResult(Verdict.REJECTED, f"zero gradient in branch {name}",
                                shortcut=True)
        owned = [bool(g.abs().max() > 0) for g in grads]
        starts = self._branch_starts(name, owned)
        closed = []
        for raw, before, gap in starts:
            after = self._branch_minimized(compiled, raw, owned)
            if isinstance(after, int):
                return ScreenResult(Verdict.REJECTED, "NaN/Inf during optimization of "
                                    f"branch {name} (step {after})")
            if gap <= 1e-6:  # the outputs are as good as perfect already: no verdict here
                continue
            closed.append(float((after - before).mean()) / gap)
        if not closed:
            return ScreenResult(Verdict.ACCEPTED, "", g=None)
        g = min(closed)
        if not g >= self.config.branch_eta:  # NaN fails too
            return ScreenResult(Verdict.REJECTED, f"branch {name} closes {g:.3f} of the "
                                f"gap to perfect outputs < branch_eta", g=g)
        if len(starts) > 1 and self.config.branch_hold:  # a start moved by noise
            lost = self._branch_loss_from_perfect(compiled, owned)
            if lost is not None and not lost <= self.config.branch_hold:
                return ScreenResult(Verdict.REJECTED, f"branch {name} minimized from perfect "
                                    f"outputs loses {lost:.3f} of the metric > branch_hold",
                                    g=g)
        return ScreenResult(Verdict.ACCEPTED, "", g=g)

    def _branch_loss_from_perfect(self, compiled: CompiledLoss, owned: list[bool]):
        """How much of the metric the branch loses when minimized from the perfect outputs
        (None where the loss is not finite there: saturated logits, not a verdict)."""
        raw = tree_map(lambda t: t.clone().requires_grad_(True), self._perfect())
        after = self._branch_minimized(compiled, raw, owned)
        if isinstance(after, int):
            return None
        return float((self._perfect_top - after).mean())

    def _branch_minimized(self, compiled: CompiledLoss, raw, owned: list[bool]):
        """The metric after the protocol's Adam on the branch's own outputs (in place), or
        the step at which the loss or its gradient was not finite."""
        bad = self._minimize(compiled, raw, [x for x, own in zip(tensors_of(raw), owned) if own])
        if bad is not None:
            return bad
        with torch.no_grad():
            return self.task.sample_metric(raw, self.target, self.metric).float()

    def _branch_starts(self, name: str, owned: list[bool]) -> list:
        """Where a branch's test starts, each as (raw outputs to optimize, their metric, gap
        to the perfect metric): its own outputs (``owned``) at the network's, every other
        output perfect; and, if that leaves less than ``branch_min_gap``, also its own
        outputs plus Gaussian noise (the first std of :data:`BRANCH_NOISE` that opens the
        gap, else the largest). The branch must close ``branch_eta`` from each, and where a
        start was moved, hold the perfect outputs (``branch_hold``). The starts depend on
        the branch only, not on its loss: made once per branch, fresh copies returned."""
        key = (name, tuple(owned))
        if key not in self._starts:
            self._starts[key] = self._make_branch_starts(name, owned)
        return [(self._as_raw(tensors, grad=True), before, gap)
                for tensors, before, gap in self._starts[key]]

    def _as_raw(self, tensors: list, grad: bool = False):
        """``tensors`` (in :func:`tensors_of` order) in the structure of the raw outputs;
        with ``grad``, fresh copies that require grad."""
        it = iter(tensors)
        if grad:
            return tree_map(lambda _: next(it).clone().requires_grad_(True), self.raw0)
        return tree_map(lambda _: next(it), self.raw0)

    def _make_branch_starts(self, name: str, owned: list[bool]) -> list:
        """:meth:`_branch_starts`' starts as (output tensors, metric, gap)."""
        perfect = tensors_of(self._perfect())
        network = tensors_of(self.raw0)

        def start(std: float, noise=None):
            tensors = [(r + std * z if std else r) if own else q
                       for r, q, z, own in zip(network, perfect, noise or network, owned)]
            with torch.no_grad():
                before = self.task.sample_metric(self._as_raw(tensors), self.target,
                                                 self.metric).float()
            return tensors, before, float((self._perfect_top - before).mean())

        first = start(0.0)
        if not first[2] < self.config.branch_min_gap:
            return [first]
        gen = torch.Generator().manual_seed(derive_seed(self.seed, f"branch start {name}"))
        noise = [torch.randn(t.shape, generator=gen).to(t) for t in network]
        for std in BRANCH_NOISE:
            moved = start(std, noise)
            if not moved[2] < self.config.branch_min_gap:
                break
        return [first, moved]

    def _end_norms(self, compiled: CompiledLoss, raw) -> list[list[float]] | None:
        """Per-branch gradient norms at the end of the optimization (None if not finite)."""
        end = tree_map(lambda t: t.detach().clone().requires_grad_(True), raw)
        leaves = tensors_of(end)
        parts = self._branch_values(compiled, end)
        out = []
        for i, (_, per) in enumerate(parts):
            if not bool(torch.isfinite(per).all()):
                return None
            norms = self._norms(self._grads(per.sum(), leaves, retain=i < len(parts) - 1))
            if not bool(torch.isfinite(norms).all()):
                return None
            out.append(norms.tolist())
        return out

