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

from .expr.ops import DEFAULT_NAMES
from .search.engines import Engine, create_engine
from .search.worker import import_operator_modules, make_job
from .tasks import get_task, task_id
from .tasks.base import Task, TaskError
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


def resolve(task: Task, spec: str, operator_modules=(), trust: bool = False) -> LossSpec:
    """A baseline id, ``study:PATH#K``, or a formula in the text form.

    A study is read without importing code it names: its task must be ``task`` (named by
    the user), and its operator modules must be in ``operator_modules`` (from a config the
    user passed) unless ``trust``."""
    spec = spec.strip()
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
    loss = task.as_task_loss(spec)  # raises ValueError with the position if malformed
    return LossSpec(spec, formula=str(loss))


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
            ok = [r for r in row["runs"] if r["status"] == "evaluated"]
            stats = {}
            for m in self.metrics:
                vals = [r["metrics"][m] for r in ok if r["metrics"].get(m) is not None]
                stats[m] = {
                    "mean": statistics.fmean(vals) if vals else None,
                    "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0 if vals else None,
                    "values": vals,
                }
            failed = [f"seed {r['seed']}: {r['status']} ({r.get('reason')})"
                      for r in row["runs"] if r["status"] != "evaluated"]
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


def _run_key(task: Task, schedule: str, spec: LossSpec, seed: int) -> str:
    return json.dumps([task_id(task), task.config, schedule, spec.key, seed], sort_keys=True)


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
    operator_modules=(),
    trust_study: bool = False,
) -> Comparison:
    """Train every loss with ``seeds`` seeds and collect every metric (mean, std).

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
    done: dict[str, dict] = {}
    if results is not None and Path(results).exists():
        for line in Path(results).read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["key"]] = rec
    jobs, runs = [], {}
    for i, spec in enumerate(specs):
        for seed in range(seeds):
            key = _run_key(t, schedule, spec, seed)
            runs[(i, seed)] = done.get(key)
            if runs[(i, seed)] is None:
                job = make_job(len(jobs), task_id(t), t.config, spec.formula or "",
                               t.metrics[0], seed, operators=spec.operators,
                               operator_modules=spec.operator_modules, fixed=spec.fixed,
                               device=device, schedule=schedule, baseline=spec.baseline)
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
