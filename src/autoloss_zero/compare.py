"""Re-training comparisons (the paper's Tables 2-6 in spirit).

Each loss — a baseline id, a formula, or ``study:PATH#K`` (the rank-K loss of a study)
— is trained with the task's ``full`` schedule (or ``proxy``) over several seeds, and
every metric of the task is reported as mean and standard deviation, evaluated on the
held-out test split. Trainings run in parallel on the local engine (one per core), and
each finished one can be appended to a JSON-lines results file so that an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TaskError
from .expr.ops import DEFAULT_NAMES, all_operators, import_operator_modules
from .search.engines import Engine, create_engine
from .search.status import Status
from .search.worker import make_job
from .tasks import get_task, task_id
from .tasks.base import ADDED_LATER, PROXY, Task, canonical_options, default_split
from .textutil import clip


@dataclass
class LossSpec:
    label: str
    formula: str | None = None
    baseline: str | None = None
    fixed: dict = field(default_factory=dict)
    operators: list = field(default_factory=lambda: list(DEFAULT_NAMES))
    operator_modules: list = field(default_factory=list)
    """Modules that register user operators (not part of ``key``: results files stay valid)."""

    @property
    def key(self) -> str:
        return json.dumps([self.formula, self.baseline, self.fixed, self.operators])


def mix_parts(spec: str) -> list[tuple[str, str]] | None:
    """The ``(branch, loss)`` pairs of a per-branch mix written ``BRANCH=LOSS; ...``, in
    order and unchecked; None if ``spec`` is not written that way."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts or not all("=" in p and ":" not in p.partition("=")[0] for p in parts):
        return None
    return [tuple(x.strip() for x in p.partition("=")[::2]) for p in parts]


def mix(task: Task, spec: str, operator_modules=()) -> LossSpec | None:
    """A per-branch mix ``BRANCH=LOSS; BRANCH=LOSS; ...`` (every branch of a multi-branch
    task once, each LOSS a branch baseline id or a formula over that branch's leaves), e.g.
    ``cls_rpn=ce; reg_rpn=l1; cls_rcnn=ce; reg_rcnn=giou`` (the paper's Table 4 rows);
    None if ``spec`` is not written that way."""
    parts = mix_parts(spec)
    if len(task.branches) < 2 or parts is None:
        return None
    fixed, formulas = {}, []
    for branch, loss in parts:
        if branch not in task.branch_names:
            raise TaskError(f"task {task.name} has no branch {clip(branch, 40)} "
                            f"(branches: {', '.join(task.branch_names)})")
        if branch in fixed or any(f.startswith(f"{branch}: ") for f in formulas):
            raise TaskError(f"branch {clip(branch, 40)} given twice in {clip(spec)}")
        try:
            task.branch_baseline(branch, loss)
            fixed[branch] = loss
        except TaskError:
            formulas.append(f"{branch}: {loss}")
    missing = [b for b in task.branch_names if b not in fixed
               and not any(f.startswith(f"{b}: ") for f in formulas)]
    if missing:
        raise TaskError(f"the mix {clip(spec)} gives no loss for branch(es) {', '.join(missing)}")
    if not formulas:
        return LossSpec(spec, formula="", fixed=fixed)
    return _formula_spec(task, spec, "; ".join(formulas), operator_modules, fixed)


def _formula_spec(task: Task, label: str, formula: str, operator_modules=(),
                  fixed: dict | None = None) -> LossSpec:
    """A formula (validated against ``task``; raises with the position if malformed) that
    may use the operators registered by ``operator_modules``; the spec names the paper's
    operators and those of the users' it uses (a formula without them keys as before)."""
    ops = all_operators(operator_modules) if operator_modules else None
    loss = task.as_task_loss(formula, fixed or {}, operators=ops)
    used = set().union(*(e.operators for _, e in loss.branches))
    extra = [n for n in (ops.names if ops else ()) if n in used and n not in DEFAULT_NAMES]
    return LossSpec(label, formula=str(loss), fixed=dict(fixed or {}),
                    operators=[*DEFAULT_NAMES, *extra],
                    operator_modules=list(operator_modules) if extra else [])


def resolve(task: Task, spec: str, operator_modules=(), trust: bool = False) -> LossSpec:
    """A baseline id, ``study:PATH#K``, a per-branch mix (:func:`mix`), or a formula.

    A study is read without importing code it names: its task must be ``task`` (named by
    the user), and its operator modules must be in ``operator_modules`` (from a config the
    user passed) unless ``trust``."""
    spec = spec.strip()
    mixed = mix(task, spec, operator_modules)
    if mixed is not None:
        return mixed
    if spec in task.baselines:
        task.baseline(spec)  # raises for an unknown id
        return LossSpec(spec, baseline=spec)
    if spec.startswith("study:"):
        from .export import StudyLoss

        path, _, rank = spec[len("study:"):].partition("#")
        try:
            k = int(rank or 1)
        except ValueError:
            raise TaskError(f"bad study reference {clip(spec)}: use study:PATH#K") from None
        sl = StudyLoss(path, k, task=task, trust=trust, operator_modules=operator_modules,
                       hint="--trust-study")
        return LossSpec(spec, formula=str(sl.loss), fixed=sl.fixed_baselines,
                        operators=list(sl.operators.names),
                        operator_modules=list(sl.config.operator_modules))
    return _formula_spec(task, spec, spec, operator_modules)


@dataclass
class Comparison:
    task: str
    variant: str
    schedule: str
    seeds: int
    metrics: tuple
    rows: list  # [{"loss", "formula", "runs": [{"seed", "metrics", "status", ...}]}]

    def summary(self) -> list[dict[str, Any]]:
        out = []
        for row in self.rows:
            ok = [r for r in row["runs"] if r["status"] == Status.EVALUATED]
            stats = {}
            for m in self.metrics:
                vals = [r["metrics"][m] for r in ok if r["metrics"].get(m) is not None]
                stats[m] = {
                    "mean": statistics.fmean(vals) if vals else None,
                    "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0 if vals else None,
                    "values": vals,
                }
            failed = [f"seed {r['seed']}: {r['status']} ({r.get('reason')})"
                      for r in row["runs"] if r["status"] != Status.EVALUATED]
            out.append({"loss": row["loss"], "formula": row.get("formula"), "metrics": stats,
                        "runs": len(row["runs"]), "failed": failed})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "variant": self.variant, "schedule": self.schedule,
                "seeds": self.seeds, "metrics": list(self.metrics), "losses": self.summary()}


def _check_not_all_failed(rows: list[dict]) -> None:
    """TaskError when every training failed (an exception, not a NaN loss): the cause is
    the task or its options, and a table of failures would hide it."""
    reasons = [r.get("reason") or "unknown" for row in rows for r in row["runs"]]
    if reasons and all(r["status"] == "failed" for row in rows for r in row["runs"]):
        common = max(set(reasons), key=reasons.count)
        raise TaskError(f"every training failed ({reasons.count(common)} of {len(reasons)}: "
                        f"{common})")



def _run_key(task: Task, schedule: str, spec: LossSpec, seed: int,
             split: str | None = None) -> str:
    """What identifies a finished run in a results file: the task and the options that can
    change the run (:meth:`Task.run_identity`), schedule, loss, seed, and the split when it
    is not the schedule's default."""
    parts = [task_id(task), task.run_identity(schedule, split), schedule, spec.key, seed]
    if split not in (None, default_split(schedule)):
        parts.append(split)
    return json.dumps(parts, sort_keys=True)


def read_runs(path: str | Path | None, task: Task) -> dict[str, dict]:
    """Finished runs of a JSON-lines results file by key. Keys written before the task
    had some of today's options (which default to the old behaviour) or before the full
    schedule ignored ``proxy_*`` options are re-keyed, so those runs are reused."""
    done: dict[str, dict] = {}
    if path is None or not Path(path).exists():
        return done
    tid = task_id(task)
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        key = rec["key"]
        parts = json.loads(key)
        if len(parts) >= 5 and parts[0] == tid and isinstance(parts[1], dict):
            missing = {k: ADDED_LATER.get(k, v) for k, v in task.defaults.items()}
            options = {**{k: v for k, v in missing.items() if k not in parts[1]},
                       **parts[1]}
            if parts[2] == "full" and (len(parts) == 5 or parts[5] == "test"):
                options = {k: v for k, v in options.items()
                           if not k.startswith(PROXY) and k not in task.proxy_only}
            parts[1] = canonical_options(options)
            key = json.dumps(parts, sort_keys=True)
        done[key] = rec
    return done


def compare(
    task: str | Task,
    losses: list[str],
    seeds: int = 3,
    variant: str | None = None,
    schedule: str = "full",
    workers: int | None = None,
    device: str = "cpu",
    results: str | Path | None = None,
    engine: Engine | None = None,
    progress=None,
    task_options: dict | None = None,
    split: str | None = None,
    operator_modules=(),
    trust_study: bool = False,
) -> Comparison:
    """Train every loss with ``seeds`` seeds and collect every metric (mean, std), scored
    on ``split`` (default: the schedule's own, see :func:`~.tasks.base.default_split`).

    ``operator_modules``: modules of user operators the caller allows (from its config);
    ``trust_study``: let ``study:`` losses import the operator modules they name."""
    if seeds < 1:
        raise ValueError("seeds must be >= 1")
    if not losses:
        raise ValueError("give at least one loss to compare")
    base = get_task(task, **(task_options or {})) if isinstance(task, str) else task
    t = base.with_variant(variant)
    import_operator_modules(operator_modules)
    specs = [resolve(t, s, operator_modules, trust_study) for s in losses]
    done = read_runs(results, t)
    jobs, runs = [], {}
    for i, spec in enumerate(specs):
        for seed in range(seeds):
            key = _run_key(t, schedule, spec, seed, split)
            runs[(i, seed)] = done.get(key)
            if runs[(i, seed)] is None:
                job = make_job(len(jobs), task_id(t), t.config, spec.formula or "",
                               t.metrics[0], seed, operators=spec.operators,
                               operator_modules=spec.operator_modules, fixed=spec.fixed,
                               device=device, schedule=schedule, baseline=spec.baseline,
                               split=split)
                jobs.append((i, seed, key, job))
    if jobs:
        own = engine is None
        engine = engine or create_engine("local", min(workers or 2, len(jobs)))
        try:
            by_id = {job["id"]: (i, seed, key) for i, seed, key, job in jobs}
            for *_, job in jobs:
                engine.submit(job)
            finished = 0
            while engine.pending:
                for res in engine.wait(1.0):
                    i, seed, key = by_id[res["id"]]
                    rec = {"key": key, "loss": specs[i].label, "seed": seed,
                           "status": res["status"], "metrics": res.get("metrics") or {},
                           "reason": res.get("reason"), "train_s": res.get("train_s"),
                           "date": time.strftime("%Y-%m-%d %H:%M")}
                    runs[(i, seed)] = rec
                    if results is not None:
                        with open(results, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                    finished += 1
                    if progress:
                        progress(finished, len(jobs), rec)
        finally:
            if own:
                engine.close()
    rows = [{"loss": spec.label, "formula": spec.formula,
             "runs": [dict(runs[(i, s)], seed=s) for s in range(seeds)]}
            for i, spec in enumerate(specs)]
    _check_not_all_failed(rows)
    return Comparison(task_id(t), variant or "default", schedule, seeds, t.metrics, rows)
