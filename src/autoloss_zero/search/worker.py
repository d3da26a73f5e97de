"""What runs on a worker: one proxy training of one candidate, from a JSON-able job.

A job carries only what is needed (task id and options, formula, operator names,
metric, seed, device, schedule): the task is rebuilt from its import path and cached
per process, never unpickled from the study. Every outcome is a result dict: an
exception in user task code becomes a ``failed`` result with its message, a NaN/Inf
loss an ``invalid`` one.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

from ..errors import describe
from ..expr.ops import get_operators
from ..tasks import get_task
from ..tasks.base import InvalidLoss, Task
from .status import Status
from .torch_settings import configure_torch

_TASKS: dict[str, Task] = {}


def make_job(
    cand_id: int,
    task: str,
    task_options: dict,
    formula: str,
    metric: str,
    seed: int,
    *,
    operators: list[str],
    operator_modules: list[str] = (),
    fixed: dict[str, str] | None = None,
    device: str = "cpu",
    schedule: str = "proxy",
    stop_on_invalid: bool = True,
    timeout: float = 0.0,
    baseline: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """A JSON-able job. ``baseline`` (a baseline id) replaces ``formula`` when given;
    ``split`` (None: the schedule's default) is where the training is scored."""
    return {
        "id": cand_id, "task": task, "task_options": dict(task_options), "formula": formula,
        "baseline": baseline,
        "metric": metric, "seed": int(seed), "operators": list(operators),
        "operator_modules": list(operator_modules), "fixed": dict(fixed or {}),
        "device": device, "schedule": schedule, "stop_on_invalid": bool(stop_on_invalid),
        "timeout": float(timeout), "attempt": 0, "split": split,
    }


def cached_task(name: str, options: dict) -> Task:
    key = name + json.dumps(options, sort_keys=True)
    task = _TASKS.get(key)
    if task is None:
        task = _TASKS[key] = get_task(name, **options)
    return task


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one candidate; never raises (the outcome is in the result's ``status``)."""
    t0 = time.perf_counter()
    result: dict[str, Any] = {"id": job["id"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        ops = get_operators(job["operators"], job.get("operator_modules", ()))
        task = cached_task(job["task"], job["task_options"])
        if job.get("baseline"):
            fn = task.baseline(job["baseline"])
        else:
            fn = task.loss_function(job["formula"], ops, job.get("fixed", {}))
        deadline = time.monotonic() + job["timeout"] if job.get("timeout") else None
        extra = {"split": job["split"]} if job.get("split") else {}
        metrics = task.train(
            fn, seed=job["seed"], device=job["device"], schedule=job["schedule"],
            stop_on_invalid=job["stop_on_invalid"], deadline=deadline, **extra,
        )
        score = metrics.get(job["metric"])
        result["metrics"] = metrics
        if score is None or score != score:
            result.update(status=Status.INVALID, score=None, reason="metric is NaN")
        else:
            result.update(status=Status.EVALUATED, score=float(score), reason=None)
    except InvalidLoss as exc:
        result.update(status=Status.INVALID, score=None, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - user task code may raise anything
        result.update(status=Status.FAILED, score=None, reason=describe(exc))
    result["train_s"] = time.perf_counter() - t0
    return result


def watch_parent(parent: int, interval: float = 0.2) -> threading.Thread:
    """Exit this process as soon as ``parent`` is no longer its parent (the driver died,
    e.g. ``kill -9``): a training in progress is abandoned at once instead of running to
    its end. The worker never holds the study (jobs carry no path), so it loses nothing."""
    def run():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(3)

    thread = threading.Thread(target=run, name="autoloss-zero-parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> None:
    """Worker process loop: JSON jobs in on one fd, JSON results out on another; exits
    when the jobs pipe closes or the parent process (pid in ``argv[3]``) is gone."""
    job_fd, res_fd, threads = int(argv[0]), int(argv[1]), int(argv[2])
    watch_parent(int(argv[3]) if len(argv) > 3 else os.getppid())
    configure_torch(threads)
    with os.fdopen(job_fd, "r") as jobs, os.fdopen(res_fd, "w", buffering=1) as results:
        for line in jobs:
            results.write(json.dumps(run_job(json.loads(line))) + "\n")
            results.flush()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
