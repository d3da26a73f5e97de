"""Taking found losses out of a study: a module, standalone source, LaTeX, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import StudyError
from .expr.ops import get_operators, import_operator_modules
from .expr.symbolic import to_latex, to_python
from .expr.tree import Expr, Loss, as_loss, formula_leaves, parse
from .search.config import SearchConfig
from .search.study import Candidate, StudyReader
from .tasks import get_task, task_class, task_id
from .tasks.base import RawLoss, Task
from .textutil import clip
from .trust import already_imported, builtin_task, check_operator_modules, check_task


class StudyLoss:
    """One ranked loss of a study with everything needed to rebuild it.

    Reading a study imports no code it names (see :mod:`autoloss_zero.trust`): the
    formula, its LaTeX and JSON need no task code. The task itself (for the module, the
    standalone source, fixed baselines) is built only when it is built in, when its module
    is already imported, when the caller names it (``task``: an id, an import path, or a
    Task), or with ``trust=True``.
    """

    def __init__(self, path: str | Path, rank: int = 1, *, task: str | Task | None = None,
                 trust: bool = False, operator_modules: Iterable[str] = (),
                 hint: str = "trust=True"):
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise StudyError(f"rank must be an integer >= 1, got {rank!r:.40}")
        self.path = Path(path)
        with StudyReader(path) as r:
            self.meta = r.meta()
            board = r.leaderboard(rank)
        if len(board) < rank:
            raise StudyError(f"{path} has {len(board)} evaluated loss(es), no rank {rank}")
        self.candidate: Candidate = board[rank - 1]
        self.rank = rank
        self.trust = trust
        self.hint = hint
        self.config = SearchConfig.from_stored(self.meta["config"])
        check_operator_modules(self.path, self.config.operator_modules, trust,
                               operator_modules, hint)
        import_operator_modules(self.config.operator_modules)
        self.operators = get_operators(self.meta.get("operators") or self.config.operators)
        self._task: Task | None = None
        self._named = False
        if isinstance(task, Task):
            self._check_same_task(task_id(task))
            self._task = task
        elif task is not None:
            self._check_same_task(task_id(task_class(task)) if builtin_task(task) else task)
            self._named = True

    def _check_same_task(self, given: str) -> None:
        if given != self.meta["task"]:
            raise StudyError(f"{self.path} is a study of task {clip(self.meta['task'], 80)}, "
                             f"not {clip(given, 80)}")

    @property
    def task(self) -> Task:
        if self._task is None:
            check_task(self.path, self.meta["task"], self.trust or self._named, self.hint)
            self._task = get_task(self.meta["task"], **self.meta.get("task_config", {}))
        return self._task

    @property
    def task_available(self) -> bool:
        """Whether the task can be built without importing code the study names."""
        name = self.meta["task"]
        return (self._task is not None or self._named or self.trust or builtin_task(name)
                or already_imported(name))

    @property
    def fixed_baselines(self) -> dict[str, str]:
        if not self.task_available:  # fixed formulas are part of every stored formula
            names = set(self._loose_loss().names)
            return {b: t for b, t in self.config.fixed.items() if b not in names}
        task = self.task
        out = {}
        for branch, text in self.config.fixed.items():
            try:
                parse(text, leaves=task.leaf_spec()[branch], operators=self.operators)
            except (ValueError, KeyError):
                out[branch] = text
        return out

    def _loose_loss(self) -> Loss:
        formula = self.candidate.formula
        try:
            loss = parse(formula, leaves=formula_leaves(formula, self.operators),
                         operators=self.operators)
        except ValueError as exc:
            raise StudyError(f"{self.path}: the stored formula does not parse ({exc})") from None
        return as_loss(loss)

    @property
    def loss(self) -> Loss:
        if not self.task_available:
            return self._loose_loss()
        fixed = self.fixed_baselines
        leaves = {b: v for b, v in self.task.leaf_spec().items() if b not in fixed}
        try:
            loss = parse(self.candidate.formula, leaves=leaves, operators=self.operators)
        except ValueError as exc:
            raise StudyError(f"{self.path}: the stored formula does not parse ({exc})") from None
        if isinstance(loss, Expr):
            loss = Loss([(next(iter(leaves)), loss)])
        return loss

    def module(self) -> RawLoss:
        return self.task.loss_function(self.loss, self.operators, self.fixed_baselines)

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "rank": self.rank, "id": c.id, "formula": c.formula, "score": c.score,
            "metric": self.meta["metric"], "task": self.meta["task"],
            "latex": to_latex(self.loss, self.operators), "metrics": c.metrics,
            "fixed": self.config.fixed, "operators": list(self.operators.names),
        }


def load_loss(study: str | Path, rank: int = 1, *, task: str | Task | None = None,
              trust: bool = False) -> RawLoss:
    """The study's rank-``rank`` loss as an ``nn.Module`` over the task's raw outputs and
    targets (e.g. logits and integer labels), branch transforms included.

    A study of a user task needs that task's code: import its module first, name it
    (``task="package.module:Class"`` or a Task), or pass ``trust=True`` to let the study's
    own task name be imported (only for a study you trust).
    """
    return StudyLoss(study, rank, task=task, trust=trust).module()


def export_text(study: str | Path, fmt: str, rank: int = 1, *, trust: bool = False,
                hint: str = "trust=True") -> str:
    """The rank-``rank`` loss as ``python`` (standalone, torch only), ``latex`` or ``json``.

    ``latex`` and ``json`` import no code; ``python`` needs the study's task, which for a
    user task takes ``trust=True`` (see :func:`load_loss`)."""
    if fmt not in ("python", "latex", "json"):
        raise ValueError(f"unknown export format {clip(fmt, 40)} (python, latex or json)")
    sl = StudyLoss(study, rank, trust=trust, hint=hint)
    if fmt == "json":
        return json.dumps(sl.to_dict(), indent=2) + "\n"
    if fmt == "latex":
        return to_latex(sl.loss, sl.operators) + "\n"
    if fmt == "python":
        if sl.fixed_baselines:
            raise StudyError(
                "branches fixed to handcrafted baselines "
                f"({', '.join(sl.fixed_baselines)}) cannot be exported standalone; use load_loss"
            )
        c = sl.candidate
        # Every field here comes from the study file (or its name): to_python escapes the
        # whole header (and the formula is parsed before it is used as code).
        header = (
            f"Loss function found by autoloss-zero (rank {rank} of {Path(study).name}).\n\n"
            f"Task: {sl.meta['task']}, metric: {sl.meta['metric']} = {float(c.score):.4f} "
            f"(proxy training)\nFormula: {c.formula}"
        )
        transform = sl.task.export_transform()
        if transform is None:
            header += ("\n\nThis task's branch inputs depend on its model internals (e.g. "
                       "anchors and proposals), so\nforward() takes the leaf tensors: "
                       "{branch: {leaf: tensor}}; see the task's branch_inputs().")
        return to_python(sl.loss, sl.operators, header=header, transform=transform)
    raise ValueError(f"unknown export format {fmt!r} (python, latex or json)")
