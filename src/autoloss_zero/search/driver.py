"""Running a search and a confirmation: the top level of the package's search.

It reads like a table of contents::

    search()
      resolve_config()       the stored config on resume, else the given one, else defaults
      CandidateMaker         operators and fixed branches: bad options fail before any write
      check_same_search()    a resumed study must hold the same task, metric and config
      _open_study()          create the study (its metadata), or take it over to resume
      Evolution.load()       rebuild population, equivalence index, counters from the study
      create_engine()        worker processes or a Dask cluster
      _main_loop()           keep every slot busy: produce a child, submit, collect results
      _confirm()             optionally, the top losses re-trained with the full schedule
      (finally)              close the engine and the study

The evolution itself (its steps, screening, rungs) is in ``evolution.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import StudyError
from ..tasks import get_task, task_id
from ..tasks.base import Task
from .candidates import CandidateMaker
from .config import SearchConfig
from .engines import Engine, create_engine, cuda_devices
from .evolution import Evolution
from .resolve import ResolvedConfig, check_same_search, resolve_config, with_task_choices
from .study import Candidate, Evaluation, Study, StudyReader
from .torch_settings import driver_torch
from .validate import check_formulas
from .worker import make_job


def _open_study(path: Path, task: Task, metric: str, resolved: ResolvedConfig,
                budget: int) -> Study:
    """The study, locked for writing: created with its metadata (in the transaction that
    creates its tables), or resumed (checked again under the lock, in case it changed
    since the config was resolved)."""
    config = resolved.config
    study = Study(path, meta={
        "schema": 1, "task": task_id(task), "task_config": task.config, "metric": metric,
        "config": config.to_dict(), "operators": list(config.operators),
        "created": time.time(), "budget": budget,
    })
    try:
        if study.is_new:
            return study
        if resolved.meta is None:
            raise StudyError(f"{path} was created by another search meanwhile")
        check_same_search(path, study.meta(), task_id(task), task.config, metric,
                          resolved.given)
        study.set_meta({"budget": budget})
        return study
    except BaseException:
        study.close()
        raise


def _main_loop(evo: Evolution, engine: Engine, budget: int, rerun: list[Candidate],
               job_args: dict, progress=None, time_limit: float | None = None,
               ahead: int = 0) -> bool:
    """Keep every worker busy: promotions first (fidelity rungs), else a new candidate,
    while the budget (proxy-training equivalents) lasts; collect results as they come.
    Returns True when the budget is spent and every training finished (not timed out)."""
    t_start = time.perf_counter()
    base_wall = evo.stats.wall_s

    def submit(row: Candidate) -> None:
        engine.submit(make_job(row.id, formula=row.formula, seed=row.seed, **job_args))

    def out_of_time() -> bool:
        return time_limit is not None and time.perf_counter() - t_start > time_limit

    evo.stats.extra["slots"] = engine.slots
    for row in rerun:
        submit(row)
    finished = False
    while True:
        if out_of_time():
            break  # trainings in flight stay 'running' in the study: resume re-runs them
        while engine.pending < engine.slots + ahead and not out_of_time():
            ev = evo.promote(budget)
            if ev is not None:
                engine.submit(evaluation_job(evo, ev, job_args))
                continue
            if evo.spent + 1 > budget + 1e-9:
                break
            row = evo.produce()
            if row is not None:
                submit(row)
            if progress:
                progress(evo, budget)
        if engine.pending == 0:
            finished = not out_of_time()
            break
        for result in engine.wait(timeout=0.5):
            evo.complete(result)
        evo.stats.wall_s = base_wall + time.perf_counter() - t_start
        if progress:
            progress(evo, budget)
    evo.stats.wall_s = base_wall + time.perf_counter() - t_start
    evo.study.set_meta({"stats": evo.stats.__dict__})
    return finished


def _job_args(evo: Evolution, device: str, schedule: str) -> dict:
    """What every worker job of this search carries besides its formula and seed."""
    config = evo.config
    return dict(
        task=task_id(evo.task), task_options=evo.task.config, metric=evo.metric,
        operators=list(config.operators), operator_modules=list(config.operator_modules),
        fixed=evo.fixed_baselines, device=device, schedule=schedule,
        stop_on_invalid=config.evaluation.stop_on_invalid, timeout=config.evaluation.timeout,
    )


def evaluation_job(evo: Evolution, e: Evaluation, job_args: dict) -> dict:
    """The worker job of an evaluation row (its id negated, apart from candidates')."""
    args = dict(job_args, schedule=e.schedule, split=e.split,
                timeout=job_args.get("timeout", 0.0) * max(1.0, e.cost))
    return make_job(-e.id, formula=evo.formula[e.candidate], seed=e.seed, **args)


def _run_evaluations(evo: Evolution, engine: Engine, rows: list[Evaluation], job_args: dict,
                     progress=None) -> None:
    """Train evaluation rows (a confirmation) to the end."""
    for e in rows:
        engine.submit(evaluation_job(evo, e, job_args))
    done = 0
    while engine.pending:
        for result in engine.wait(timeout=0.5):
            evo.complete(result)
            done += 1
            if progress:
                progress(done, len(rows))


def search(
    task: str | Task,
    metric: str | None = None,
    budget: int = 20,
    study: str | Path | None = None,
    config: SearchConfig | str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    workers: int | None = None,
    engine: str | Engine = "local",
    scheduler: str | None = None,
    device: str = "cpu",
    progress=None,
    time_limit: float | None = None,
    trust_study: bool = False,
) -> StudyReader:
    """Run (or resume) a search and return the study, opened read-only.

    ``task``: a built-in id, ``package.module:Class``, or a Task instance.
    ``budget``: compute, in proxy-training equivalents: every proxy training started
    (evaluated, invalid and failed all count) is 1; a promotion to a fidelity rung costs
    its steps x batch size over the proxy's (see ``Task.schedule_cost``).
    ``study``: the SQLite file (a temporary one if None); an existing file resumes.
    ``config``: a :class:`SearchConfig` or a TOML file; ``overrides``: top-level config
    keys set on top of it (e.g. ``{"seed": 3}``). On resume the stored config wins, and
    a given one that differs is refused with the difference; a new study takes the given
    config, else the defaults (see ``resolve.py``).
    ``progress``: a callable ``(evolution, budget)`` called as the search advances.
    ``time_limit``: seconds after which no new candidate is made and the search returns
    (trainings still running are re-run when the search is resumed).
    ``trust_study``: resuming with ``config=None`` uses the stored config; operator modules
    it names are imported only if already imported here, or with ``trust_study=True``.

    The calling process screens with one torch thread and subnormal floats flushed to
    zero (``torch_settings.driver_torch``); both are restored at the end.
    """
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if study is None:
        study = Path(tempfile.mkdtemp(prefix="autoloss-zero-")) / "study.db"
    path = Path(study)
    resolved = resolve_config(path, config, overrides)
    config = resolved.config
    if resolved.meta is not None and resolved.given is None:
        from ..trust import check_operator_modules

        # resuming with the stored config: its operator modules are code the caller did
        # not name
        check_operator_modules(path, config.operator_modules, trust_study,
                               hint="--trust-study (trust_study=True)")
    if device == "cuda":
        cuda_devices()  # a clear error before the study is created
    if isinstance(task, str):
        options = config.task_options
        if resolved.meta is not None:
            # resuming: the task's options as stored, whatever today's defaults; a given
            # config must give the same effective options (check_same_search)
            options = (resolved.given.task_options if resolved.given is not None
                       else resolved.meta.get("task_config") or options)
        task = get_task(task, **options)
    metric = task.check_metric(metric or task.metrics[0])
    config = resolved.config = with_task_choices(config, task, resolved.meta is not None)
    maker = CandidateMaker.from_config(task, config)  # bad options fail before any write
    if resolved.meta is not None:  # so does a study that holds another search
        check_same_search(path, resolved.meta, task_id(task), task.config, metric,
                          resolved.given)
        with StudyReader(path) as r:  # or a formula that no longer reads back
            check_formulas(r, maker.parse_loss)
    db = _open_study(path, task, metric, resolved, budget)
    own_engine = not isinstance(engine, Engine)
    try:
        with driver_torch():
            evo = Evolution(task, metric, db, config, device, maker)
            rerun = evo.load()
            job_args = _job_args(evo, device, "proxy")
            if own_engine:
                engine = create_engine(engine, workers, scheduler, config.evaluation.retries,
                                       device)
            try:
                finished = _main_loop(evo, engine, budget, rerun, job_args, progress, time_limit,
                                      config.evaluation.ahead)
                if config.confirm.top and finished:
                    _confirm(evo, engine, job_args, config.confirm.top, config.confirm.seeds,
                             max_seeds=config.confirm.max_seeds)
            finally:
                if own_engine:
                    engine.close()
    finally:
        db.close()
    return StudyReader(path)


def _confirm(evo: Evolution, engine: Engine, job_args: dict, top: int, seeds: int,
             progress=None, max_seeds: int = 0) -> None:
    """Until the ``top`` losses of the ranking each have ``seeds`` full trainings: a loss
    whose mean falls below another's under its new trainings lets that one into the top,
    which is then confirmed too (else a single lucky full training could rank first).
    Then, with ``max_seeds``, racing (``racing.py``) while the leader is not separated."""
    rows = [e for e in evo.running_evals.values() if e.kind == "confirm"]
    rows += evo.confirmation(top, seeds)
    tried: set[tuple[int, int]] = set()
    while True:
        while rows:
            _run_evaluations(evo, engine, rows, job_args, progress)
            tried |= {(e.candidate, e.seed) for e in rows}
            rows = evo.confirmation(top, seeds, tried)  # a failed training is not run again
        rows = evo.racing(top, max_seeds, tried) if max_seeds > seeds else []
        if not rows:
            return


def confirm(
    study: str | Path,
    top: int = 3,
    seeds: int = 2,
    *,
    max_seeds: int = 0,
    workers: int | None = None,
    engine: str | Engine = "local",
    scheduler: str | None = None,
    device: str = "cpu",
    progress=None,
    trust_study: bool = False,
) -> StudyReader:
    """Re-train the ``top`` losses of a study with the task's full schedule until each has
    ``seeds`` trainings, scored on the validation split (the test split stays for
    reporting); repeated while the ranking changes, so that the final top ``top`` all have
    ``seeds`` trainings. From then on every reader ranks the study by these scores (confirmed
    losses first). ``max_seeds`` (0: off): racing, more trainings up to that many for the
    losses within a standard error of the leader (``racing.py``). Resumable: trainings in
    flight when it stopped are re-run.
    ``trust_study``: a study of a user task, or with user operator modules, imports that
    code only with ``trust_study=True`` (or when it is already imported here)."""
    if top < 1 or seeds < 1:
        raise ValueError("top and seeds must be >= 1")
    if max_seeds and max_seeds < seeds:
        raise ValueError("max_seeds must be 0 (no racing) or >= seeds")
    path = Path(study)
    resolved = resolve_config(path)
    if resolved.meta is None:
        raise StudyError(f"no study at {path}")
    meta, config = resolved.meta, resolved.config
    from ..trust import check_operator_modules, check_task

    hint = "--trust-study (trust_study=True)"
    check_task(path, meta["task"], trust_study, hint=hint)
    check_operator_modules(path, config.operator_modules, trust_study, hint=hint)
    if device == "cuda":
        cuda_devices()
    task = get_task(meta["task"], **(meta.get("task_config") or config.task_options))
    metric = task.check_metric(meta["metric"])
    db = Study(path)
    try:
        with driver_torch():
            evo = Evolution(task, metric, db, config, device)
            evo.load()
            job_args = _job_args(evo, device, "full")
            own_engine = not isinstance(engine, Engine)
            if own_engine:
                engine = create_engine(engine, workers, scheduler, config.evaluation.retries,
                                       device)
            try:
                _confirm(evo, engine, job_args, top, seeds, progress, max_seeds)
            finally:
                if own_engine:
                    engine.close()
    finally:
        db.close()
    return StudyReader(path)
