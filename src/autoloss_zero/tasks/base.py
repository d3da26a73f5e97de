"""The Task protocol: everything the search engine needs from a task.

A task gives:

- its loss **branches**, each with its leaf names (``yhat, y, 1`` by default) and which
  leaves depend on the raw predictions;
- ``branch_inputs(raw, target)``: the branch transforms from the network's raw
  outputs (logits, box deltas) and targets (labels) to the leaf tensors, e.g. softmax
  probabilities and one-hot targets. They must work with or without a leading sample
  dimension: the rejection protocol stacks B samples in front;
- ``screening_batch(samples, seed, device)``: B samples of raw predictions of a
  randomly initialized network and their targets, each with a leading dim B;
- ``sample_metric(raw, target, metric)``: the metric of each of the B samples;
- ``train(loss_fn, ...)``: training with ``loss_fn(raw, target) -> scalar`` and the
  final metrics (all of them, higher is better), stopping with :class:`InvalidLoss` at
  the first NaN/Inf loss value when asked to.

:class:`SupervisedTask` implements screening and training for the common case of a
model, tensors of inputs and targets, and mini-batch Adam; a user task then only says
how to load data, build the model and compute its metrics (see ``examples/``).
Tasks are rebuilt on workers from their import path and JSON config, never pickled.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import TaskError
from ..expr.compile import CompiledLoss
from ..expr.tree import DEFAULT_LEAVES, Expr, Loss, as_loss
from ..textutil import show
from .options import Rule, check_options, choice, integer, number, optional

LossFn = Callable[[Any, Any], torch.Tensor]
"""A loss over the task's raw outputs and targets, returning a scalar tensor."""


class InvalidLoss(Exception):
    """Training stopped at a NaN or Inf loss value (the paper's early stop)."""

    def __init__(self, step: int):
        super().__init__(f"loss value is NaN/Inf at training step {step}")
        self.step = step


SCHEDULES = ("proxy", "full")
"""``proxy``: the short training that scores candidates during the search; ``full``: the
task's whole schedule (re-training, confirmation, comparisons)."""
SPLITS = ("val", "test")
PROXY = "proxy_"
ADDED_LATER: dict[str, Any] = {
    "proxy_batch_size": None, "proxy_lr": None, "proxy_lr_schedule": None,
    "proxy_width": None, "proxy_train_items": None, "proxy_average": 1,
}
"""Options added after runs were first recorded (2026-12), with the values that reproduce
the runs made before them (the proxy as the full schedule, one evaluation): a results file
written then is read with these, whatever today's defaults (see ``compare.read_runs``)."""


def canonical_options(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every ``proxy_<key>`` override that equals ``<key>`` written as None
    (it changes nothing): the same training has one identity however it was configured
    (e.g. ``proxy_batch_size = 16`` with ``batch_size = 16``, and no override)."""
    out = dict(config)
    for key, value in config.items():
        base = key[len(PROXY):]
        if key.startswith(PROXY) and base in config and value is not None \
                and value == config[base]:
            out[key] = None
    return out


def check_schedule(schedule: str) -> str:
    if schedule not in SCHEDULES:
        raise TaskError(f"unknown schedule {schedule!r} (proxy or full)")
    return schedule


def default_split(schedule: str) -> str:
    """Where a schedule is scored by default: proxy on validation, full on test."""
    return "val" if check_schedule(schedule) == "proxy" else "test"


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise TaskError(f"unknown split {split!r} (val or test)")
    return split


@dataclass(frozen=True)
class Branch:
    """One loss branch: its name, leaf set, the leaves that depend on predictions, and
    the leaves that carry its targets (a loss must use one of each to be screened; a
    branch whose leaves mix both, like the box leaves ``i, u, e``, declares none)."""

    name: str = "loss"
    leaves: tuple[str, ...] = DEFAULT_LEAVES
    prediction_leaves: tuple[str, ...] = ("yhat",)
    target_leaves: tuple[str, ...] = ("y",)


@dataclass
class ScreeningBatch:
    """B samples for the rejection protocol: raw predictions and targets, leading dim B.
    ``items``: the network inputs and targets of the same samples, one item per row
    (B x items per sample), for the fit test of screening; None where the task has none."""

    raw: Any
    target: Any
    items: tuple[Any, Any] | None = None


def tree_map(fn: Callable, obj: Any) -> Any:
    """Apply ``fn`` to every tensor in a tensor / dict / list / tuple structure."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return {k: tree_map(fn, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tree_map(fn, v) for v in obj)
    return obj


def tensors_of(obj: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    tree_map(lambda t: out.append(t), obj)
    return out


class Task(ABC):
    """A task the search can optimize a loss for. Subclass and fill in the abstract parts."""

    name: ClassVar[str] = "task"
    metrics: ClassVar[tuple[str, ...]] = ()
    """Metric ids, higher is better; the first is the default."""
    branches: ClassVar[tuple[Branch, ...]] = (Branch(),)
    baselines: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    """Config keys with their default values (JSON types only)."""
    variants: ClassVar[dict[str, dict[str, Any]]] = {}
    """Named transfer variants: config overrides used by ``compare --variant``."""
    references: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Known ``good`` and ``bad`` losses (formulas) that screening should accept/reject."""
    screening_fit_steps: ClassVar[int] = 0
    """Steps of the fit test of screening where ``screening.fit_steps`` is left to the
    task (0: no fit test; see :meth:`fit_outputs`)."""
    option_rules: ClassVar[dict[str, Rule]] = {}
    """Range checks of options, ``{key: rule}`` (see ``tasks/options.py``), merged with
    those of the base classes; every option is also checked against its default's type."""

    def __init__(self, **config: Any):
        unknown = set(config) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            shown = ", ".join(sorted(show(k, 40) for k in unknown)[:5])
            raise TaskError(f"task {self.name}: unknown option(s) {shown} (known: {known})")
        self.config: dict[str, Any] = {**self.defaults, **config}
        check_options(self)  # types and ranges, one clear line naming the bad key

    # -- description --------------------------------------------------------
    @property
    def branch_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.branches)

    def leaf_spec(self) -> dict[str, tuple[str, ...]]:
        return {b.name: b.leaves for b in self.branches}

    def check_metric(self, metric: str) -> str:
        if metric not in self.metrics:
            raise TaskError(
                f"unknown metric {show(metric)} for task {self.name} "
                f"(known: {', '.join(self.metrics)})"
            )
        return metric

    def with_variant(self, variant: str | None) -> Task:
        """A new task with the variant's config overrides (``None``/``default``: a copy)."""
        if variant in (None, "default"):
            return type(self)(**self.config)
        if variant not in self.variants:
            known = ", ".join(["default", *self.variants])
            raise TaskError(f"unknown variant {show(variant)} for task {self.name} "
                            f"(known: {known})")
        return type(self)(**{**self.config, **self.variants[variant]})

    # -- schedules ------------------------------------------------------------
    proxy_only: ClassVar[tuple[str, ...]] = ()
    """Options that only the proxy (validation) trainings read, e.g. the size of the
    validation split: they are left out of a full-schedule run's identity."""

    def schedule_options(self, schedule: str) -> dict[str, Any]:
        """The options one schedule trains with: for ``proxy``, every ``proxy_<key>`` that
        is set (not None) overrides ``<key>`` (e.g. ``proxy_batch_size``, ``proxy_lr``);
        the ``full`` schedule ignores every ``proxy_*`` option."""
        check_schedule(schedule)
        cfg = dict(self.config)
        if schedule == "proxy":
            for key, value in self.config.items():
                base = key[len(PROXY):]
                if key.startswith(PROXY) and value is not None and base in cfg:
                    cfg[base] = value
        return cfg

    def schedule_cost(self, schedule: str) -> float:
        """The relative compute of one training on ``schedule``: training steps times the
        batch size of that schedule (a task may override it). The search counts its
        budget in proxy-training equivalents: ``schedule_cost(s) / schedule_cost("proxy")``."""
        cfg = self.schedule_options(schedule)
        steps = cfg.get(f"{schedule}_steps")
        if steps is None:
            return 1.0
        return float(steps) * float(cfg.get("batch_size") or 1)

    def run_identity(self, schedule: str, split: str | None = None) -> dict[str, Any]:
        """The options that can change the outcome of a training on ``schedule`` scored on
        ``split``: the key under which finished runs are reused. A full-schedule run on the
        test split does not depend on ``proxy_*`` options nor on ``proxy_only`` ones."""
        check_schedule(schedule)
        split = split or default_split(schedule)
        if schedule == "proxy" or split != "test":
            return canonical_options(self.config)
        return {k: v for k, v in self.config.items()
                if not k.startswith(PROXY) and k not in self.proxy_only}

    def depends_on_prediction(self, loss: Loss) -> bool:
        """Whether any branch uses a leaf that depends on the raw predictions."""
        spec = {b.name: set(b.prediction_leaves) for b in self.branches}
        return any(e.leaves & spec.get(n, set()) for n, e in loss.branches)

    def dependency_problem(self, loss: Loss) -> str | None:
        """Why ``loss`` cannot train this task's predictions, or None: every branch must
        use a leaf that depends on its own predictions and, where the branch has target
        leaves, one of them (a branch that ignores its labels would pass screening on the
        strength of the other branches)."""
        spec = {b.name: b for b in self.branches}
        for name, expr in loss.branches:
            b = spec.get(name)
            if b is None:
                continue
            where = f" (branch {name})" if len(self.branches) > 1 else ""
            if not expr.leaves & set(b.prediction_leaves):
                return f"does not depend on the prediction{where}"
            targets = set(b.target_leaves) & set(b.leaves)
            if targets and not expr.leaves & targets:
                return f"does not depend on the target{where}"
        return None

    # -- losses ---------------------------------------------------------------
    def as_task_loss(self, formula: str | Expr | Loss, fixed: Mapping[str, str] = (),
                     operators=None) -> Loss:
        """Parse/validate a formula against this task's branches (bare EXPR: one branch).

        Branches named in ``fixed`` (kept fixed to a baseline by id) may be absent.
        """
        from ..expr.tree import parse

        if isinstance(formula, str):
            leaves = {b: v for b, v in self.leaf_spec().items() if b not in fixed}
            loss = parse(formula, leaves=leaves, operators=operators)
        else:
            loss = formula
        loss = as_loss(loss)
        if len(self.branches) == 1 and loss.names == ("loss",):
            loss = Loss([(self.branches[0].name, loss.branches[0][1])])
        wanted = [n for n in self.branch_names if n not in fixed]
        if set(loss.names) != set(wanted):
            raise TaskError(
                f"task {self.name} expects branches {', '.join(wanted)}, "
                f"the loss has {', '.join(loss.names)}"
            )
        return Loss([(n, loss[n]) for n in wanted])

    def loss_function(self, loss: str | Expr | Loss, operators=None,
                      fixed: Mapping[str, str] = ()) -> RawLoss:
        """The searched loss as a module over this task's raw outputs and targets.

        ``fixed`` maps branches kept fixed to a handcrafted loss, by baseline id.
        """
        fixed = dict(fixed)
        baselines = {b: self.branch_baseline(b, name) for b, name in fixed.items()}
        if isinstance(loss, str) and not loss.strip() and set(fixed) == set(self.branch_names):
            return RawLoss(self, None, operators, baselines)  # every branch handcrafted
        return RawLoss(self, self.as_task_loss(loss, fixed, operators), operators, baselines)

    def baseline(self, name: str) -> LossFn:
        """A handcrafted loss by id (see ``baselines``), over raw outputs and targets."""
        raise TaskError(f"task {self.name} has no baseline {name!r}")

    def branch_baseline(self, branch: str, name: str) -> LossFn:
        """A handcrafted loss for one branch (for ``--fix BRANCH=ID``)."""
        raise TaskError(f"task {self.name} has no baseline {name!r} for branch {branch!r}")

    def export_transform(self) -> tuple[str, str] | None:
        """``(signature, source)`` of ``branch_inputs`` for the standalone export."""
        return None

    # -- screening -------------------------------------------------------------
    @abstractmethod
    def screening_batch(self, samples: int, seed: int, device: str = "cpu") -> ScreeningBatch:
        """B samples of raw predictions of a randomly initialized network, with targets."""

    @abstractmethod
    def branch_inputs(self, raw: Any, target: Any) -> dict[str, dict[str, torch.Tensor]]:
        """Branch transforms: ``{branch: {leaf: tensor}}`` from raw outputs and targets."""

    @abstractmethod
    def sample_metric(self, raw: Any, target: Any, metric: str) -> torch.Tensor:
        """The metric of each sample (leading dim S): a float tensor of shape (S,)."""

    def perfect_raw(self, raw: Any, target: Any) -> Any | None:
        """Raw outputs shaped like ``raw`` that realize ``target`` (what a perfect network
        would output), or None when the task has none. Multi-branch tasks that give them get
        the per-branch test of screening: each branch, optimized alone while the others
        output their targets, must improve the metric (``screening.per_branch``)."""
        return None

    def fit_outputs(self, loss_fn: LossFn | None, batch: ScreeningBatch, steps: int,
                    lr: float, seed: int) -> Any | None:
        """The fit test's training: a freshly initialized network (seeded by ``seed``)
        trained with ``loss_fn`` on the screening items alone for ``steps`` Adam steps at
        ``lr`` (0 steps: the untrained network, ``loss_fn`` unused); its raw outputs on
        those items, shaped like ``batch.raw``. None where the task cannot (no items).
        Raises :class:`InvalidLoss` at a NaN/Inf loss value."""
        return None

    # -- training -------------------------------------------------------------
    @abstractmethod
    def train(
        self,
        loss_fn: LossFn,
        *,
        seed: int,
        device: str = "cpu",
        schedule: str = "proxy",
        stop_on_invalid: bool = True,
        deadline: float | None = None,
        split: str | None = None,
    ) -> dict[str, float]:
        """Train with ``loss_fn`` and return every metric, scored on ``split`` (default:
        ``proxy`` on the validation split, ``full`` on the held-out test split; the search
        confirms its finalists with the full schedule on the validation split). Raise
        :class:`InvalidLoss` at the first NaN/Inf loss value when ``stop_on_invalid``.
        ``split`` is passed only when it differs from the schedule's default, so a task
        whose ``train`` has no ``split`` argument still runs proxies and comparisons."""


class RawLoss(nn.Module):
    """A found loss over a task's raw outputs and targets (branch transforms included).

    ``fixed`` adds branches kept fixed to handcrafted losses (``{branch: LossFn}``).
    """

    def __init__(self, task: Task, loss: Loss | None, operators=None,
                 fixed: Mapping[str, LossFn] | None = None):
        super().__init__()
        self.task = task
        self.loss = loss
        self.compiled = None if loss is None else CompiledLoss(loss, operators)
        self.fixed = dict(fixed or {})
        if loss is None and not self.fixed:
            raise ValueError("a loss needs at least one branch")

    def extra_repr(self) -> str:
        extra = "; ".join(f"{b}: <{fn}>" for b, fn in self.fixed.items())
        return "; ".join(x for x in (str(self.loss or ""), extra) if x)

    def forward(self, raw: Any, target: Any) -> torch.Tensor:
        value = None
        if self.compiled is not None:
            inputs = self.task.branch_inputs(raw, target)
            value = self.compiled({n: inputs[n] for n in self.loss.names})
        for fn in self.fixed.values():
            part = fn(raw, target)
            value = part if value is None else value + part
        return value


# ---------------------------------------------------------------------------


def take(obj: Any, idx) -> Any:
    """Index the leading dim of every tensor in a structure."""
    return tree_map(lambda t: t[idx], obj)


def batch_indices(seed: int, n: int, batch_size: int, steps: int) -> Iterator[torch.Tensor]:
    """Mini-batch indices for ``steps`` steps: epochs of a seeded permutation of n items."""
    rng = np.random.default_rng([seed, 11])
    order, pos = rng.permutation(n), 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        yield torch.as_tensor(order[pos : pos + batch_size])
        pos += batch_size


def finite_or_nan(metrics: Mapping[str, float]) -> dict[str, float]:
    """Every metric as a float, NaN where it is not finite: what ``train`` returns."""
    return {k: (float(v) if math.isfinite(float(v)) else float("nan")) for k, v in metrics.items()}


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, step: int,
                   stop_on_invalid: bool = True, deadline: float | None = None) -> None:
    """One guarded update: :class:`InvalidLoss` at a NaN/Inf loss (when asked), then
    backward and step, then ``TimeoutError`` past the ``time.monotonic()`` deadline."""
    if stop_on_invalid and not bool(torch.isfinite(loss)):
        raise InvalidLoss(step)
    opt.zero_grad(set_to_none=True)
    if loss.requires_grad:  # a loss constant in the parameters trains nothing, for as long
        loss.backward()
    opt.step()
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"training passed its deadline at step {step}")


@contextmanager
def seeded(seed: int):
    """A context in which torch's global RNG (used by nn.Module init) is seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _fold(obj: Any, samples: int) -> Any:
    """Items (N, ...) as samples (samples, N // samples, ...)."""
    return tree_map(lambda t: t.reshape(samples, t.shape[0] // samples, *t.shape[1:]), obj)


class SupervisedTask(Task):
    """Mini-batch training of a model on tensors: the common case.

    Subclasses give ``load_split``, ``build_model`` and ``split_metrics``; optionally
    ``predict`` (default ``model(x)``). Config keys: ``proxy_steps``, ``full_steps``,
    ``batch_size``, ``lr``, ``lr_schedule`` (``constant`` or ``cosine``: annealed to 0
    over the run, which makes short runs far less noisy at their end point),
    ``sample_size`` (items per screening sample: one image for dense tasks, a mini-batch
    for classification), ``eval_batch``. The proxy can differ from the full schedule in
    more than its length: ``proxy_batch_size``, ``proxy_lr``, ``proxy_lr_schedule``,
    ``proxy_width`` (``build_model`` sees it as ``width``), ``proxy_train_items`` (the
    first N training items), and ``proxy_average`` (the score is the mean of that many
    evaluations spread over the last tenth of the run: less noise, more evaluation time).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "proxy_steps": 200,
        "full_steps": 1000,
        "batch_size": 32,
        "lr": 1e-3,
        "lr_schedule": "constant",
        "weight_decay": 0.0,
        "sample_size": 1,
        "eval_batch": 256,
        # Proxy-only overrides (None: as the full schedule), see ``schedule_options``.
        "proxy_batch_size": None,
        "proxy_lr": None,
        "proxy_lr_schedule": None,
        "proxy_width": None,
        "proxy_train_items": None,
        "proxy_average": 1,
    }
    proxy_only: ClassVar[tuple[str, ...]] = ("val_items",)
    option_rules: ClassVar[dict[str, Rule]] = {
        "proxy_steps": integer(1, 10**7), "full_steps": integer(1, 10**7),
        "batch_size": integer(1, 10**5), "lr": number(hi=10.0, positive=True),
        "lr_schedule": choice("constant", "cosine"), "weight_decay": number(0.0, 10.0),
        "sample_size": integer(1, 10**5), "eval_batch": integer(1, 10**6),
        "proxy_batch_size": optional(integer(1, 10**5)),
        "proxy_lr": optional(number(hi=10.0, positive=True)),
        "proxy_lr_schedule": optional(choice("constant", "cosine")),
        "proxy_width": optional(integer(1, 1024)),
        "proxy_train_items": optional(integer(1, 10**6)),
        "proxy_average": integer(1, 1000),
    }

    def __init__(self, **config: Any):
        super().__init__(**config)
        self._splits: dict[tuple, tuple[torch.Tensor, Any]] = {}

    # -- to implement --------------------------------------------------------
    @abstractmethod
    def load_split(self, split: str) -> tuple[torch.Tensor, Any]:
        """(inputs, targets) of ``train``, ``val`` or ``test``: leading dim = items."""

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialized model (torch's RNG is seeded by the caller)."""

    @abstractmethod
    def split_metrics(self, batches: Iterator[tuple[Any, Any]]) -> dict[str, float]:
        """Every metric over a whole split, from an iterator of (raw, target) chunks."""

    def predict(self, model: nn.Module, x: torch.Tensor) -> Any:
        return model(x)

    # -- implemented -------------------------------------------------------------
    def split(self, name: str) -> tuple[torch.Tensor, Any]:
        """A split as the current options make it (inside :meth:`train`, the schedule's:
        e.g. segmentation's ``proxy_size`` renders the proxy's canvases smaller)."""
        key = (name, self.config.get("size"), self.config.get("crop"))
        if key not in self._splits:
            self._splits[key] = self.load_split(name)
        return self._splits[key]

    def screening_batch(self, samples: int, seed: int, device: str = "cpu") -> ScreeningBatch:
        x, target = self.split("train")
        k = int(self.config["sample_size"])
        n = len(x)
        if samples * k > n:
            raise TaskError(f"task {self.name}: {samples} x {k} screening items > {n} available")
        rng = np.random.default_rng([seed, 7])
        idx = torch.as_tensor(rng.choice(n, size=samples * k, replace=False))
        with seeded(seed):
            model = self.build_model().to(device)
        model.eval()
        with torch.no_grad():
            raw = self.predict(model, x[idx].to(device))
        tgt = tree_map(lambda t: t.to(device), take(target, idx))

        return ScreeningBatch(_fold(raw, samples), _fold(tgt, samples),
                              items=(x[idx].to(device), tgt))

    def fit_outputs(self, loss_fn, batch, steps, lr, seed):
        if batch.items is None:
            return None
        x, tgt = batch.items
        samples = len(tensors_of(batch.raw)[0])
        with seeded(seed):
            model = self.build_model().to(x.device)
        model.train()  # batch statistics, in training and in the outputs returned
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for step in range(steps):
            optimizer_step(opt, loss_fn(self.predict(model, x), tgt), step)
        with torch.no_grad():
            return _fold(self.predict(model, x), samples)

    def _iterate(self, model, split, device) -> Iterator[tuple[Any, Any]]:
        x, target = self.split(split)
        step = int(self.config["eval_batch"])
        with torch.no_grad():
            for i in range(0, len(x), step):
                raw = self.predict(model, x[i : i + step].to(device))
                yield raw, tree_map(lambda t: t.to(device), take(target, slice(i, i + step)))

    @contextmanager
    def _options(self, cfg: dict[str, Any]):
        """``self.config`` is ``cfg`` inside (``build_model`` reads it)."""
        saved, self.config = self.config, cfg
        try:
            yield
        finally:
            self.config = saved

    def train(
        self,
        loss_fn: LossFn,
        *,
        seed: int,
        device: str = "cpu",
        schedule: str = "proxy",
        stop_on_invalid: bool = True,
        deadline: float | None = None,
        split: str | None = None,
    ) -> dict[str, float]:
        cfg = self.schedule_options(schedule)
        with self._options(cfg):  # the schedule's options, data included
            return self._train(loss_fn, cfg, seed=seed, device=device, schedule=schedule,
                               stop_on_invalid=stop_on_invalid, deadline=deadline,
                               split=split)

    def _train(self, loss_fn, cfg, *, seed, device, schedule, stop_on_invalid, deadline,
               split) -> dict[str, float]:
        split = check_split(split or default_split(schedule))
        steps = int(cfg[f"{schedule}_steps"])
        bs = int(cfg["batch_size"])
        x, target = self.split("train")
        if schedule == "proxy" and cfg.get("proxy_train_items") is not None:
            n = int(cfg["proxy_train_items"])
            x, target = x[:n], take(target, slice(0, n))
        with seeded(seed):
            model = self.build_model().to(device)
        opt = torch.optim.Adam(
            model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]),
        )
        if cfg["lr_schedule"] not in ("constant", "cosine"):
            raise TaskError(f"unknown lr_schedule {cfg['lr_schedule']!r}")
        cosine = cfg["lr_schedule"] == "cosine"
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
        average = max(1, int(cfg.get("proxy_average") or 1)) if schedule == "proxy" else 1
        every = max(1, steps // (10 * max(1, average - 1))) if average > 1 else 0
        checkpoints = {steps - 1 - j * every for j in range(average)} if average > 1 else set()
        scores: list[dict[str, float]] = []
        model.train()
        for step, idx in enumerate(batch_indices(seed, len(x), bs, steps)):
            raw = self.predict(model, x[idx].to(device))
            tgt = tree_map(lambda t: t.to(device), take(target, idx))
            optimizer_step(opt, loss_fn(raw, tgt), step, stop_on_invalid, deadline)
            if sched is not None:
                sched.step()
            if step in checkpoints and step != steps - 1:
                model.eval()
                scores.append(self.split_metrics(self._iterate(model, split, device)))
                model.train()
        model.eval()
        scores.append(self.split_metrics(self._iterate(model, split, device)))
        return finite_or_nan({k: sum(float(s[k]) for s in scores) / len(scores)
                              for k in scores[-1]})
