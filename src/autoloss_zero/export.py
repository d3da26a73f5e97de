"""Taking found losses out of a study: a module, standalone source, LaTeX, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import StudyError
from .expr.ops import get_operators, import_operator_modules
from .expr.symbolic import to_latex, to_python
from .expr.tree import Expr, Loss, parse
from .search.config import SearchConfig
from .search.study import Candidate, StudyReader
from .tasks import get_task
from .tasks.base import RawLoss, Task


class StudyLoss:
    """One ranked loss of a study with everything needed to rebuild it."""

    def __init__(self, path: str | Path, rank: int = 1):
        if rank < 1:
            raise StudyError(f"rank must be >= 1, got {rank}")
        with StudyReader(path) as r:
            self.meta = r.meta()
            board = r.leaderboard(rank)
        if len(board) < rank:
            raise StudyError(f"{path} has {len(board)} evaluated loss(es), no rank {rank}")
        self.candidate: Candidate = board[rank - 1]
        self.rank = rank
        self.config = SearchConfig.from_dict(self.meta["config"])
        import_operator_modules(self.config.operator_modules)
        self.operators = get_operators(self.meta.get("operators") or self.config.operators)
        self._task: Task | None = None

    @property
    def task(self) -> Task:
        if self._task is None:
            self._task = get_task(self.meta["task"], **self.meta.get("task_config", {}))
        return self._task

    @property
    def fixed_baselines(self) -> dict[str, str]:
        task = self.task
        out = {}
        for branch, text in self.config.fixed.items():
            try:
                parse(text, leaves=task.leaf_spec()[branch], operators=self.operators)
            except ValueError:
                out[branch] = text
        return out

    @property
    def loss(self) -> Loss:
        fixed = self.fixed_baselines
        leaves = {b: v for b, v in self.task.leaf_spec().items() if b not in fixed}
        loss = parse(self.candidate.formula, leaves=leaves, operators=self.operators)
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


def load_loss(study: str | Path, rank: int = 1) -> RawLoss:
    """The study's rank-``rank`` loss as an ``nn.Module`` over the task's raw outputs and
    targets (e.g. logits and integer labels), branch transforms included."""
    return StudyLoss(study, rank).module()


def export_text(study: str | Path, fmt: str, rank: int = 1) -> str:
    """The rank-``rank`` loss as ``python`` (standalone, torch only), ``latex`` or ``json``."""
    sl = StudyLoss(study, rank)
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
        header = (
            f"Loss function found by autoloss-zero (rank {rank} of {Path(study).name}).\n\n"
            f"Task: {sl.meta['task']}, metric: {sl.meta['metric']} = {c.score:.4f} "
            f"(proxy training)\nFormula: {c.formula}"
        )
        transform = sl.task.export_transform()
        if transform is None:
            header += ("\n\nThis task's branch inputs depend on its model internals (e.g. "
                       "anchors and proposals), so\nforward() takes the leaf tensors: "
                       "{branch: {leaf: tensor}}; see the task's branch_inputs().")
        return to_python(sl.loss, sl.operators, header=header, transform=transform)
    raise ValueError(f"unknown export format {fmt!r} (python, latex or json)")
