"""Regularized evolution of loss functions (paper Section 3.2), steady-state and asynchronous.

The top level reads like a table of contents::

    search()
      _open_study()          create, or resume and check the stored config
      Evolution.load()       rebuild population, equivalence index, counters from the study
      create_engine()        worker processes or a Dask cluster
      _main_loop()           keep every slot busy: produce a child, submit, collect results
      _tear_down()           close the engine and the study

One evolution **step** produces one candidate that passes screening. Step k draws all its
random choices from a generator derived from (master seed, k), so a serial search is
reproducible and a resumed one continues exactly where it stopped. A step either starts
a proxy training (budget += 1), or ends as a duplicate of a known candidate (its score is
reused and it joins the population), or waits for an equivalent candidate in flight.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..expr.ops import get_operators
from ..expr.tree import Expr, Loss, parse
from ..tasks import get_task, task_id
from ..tasks.base import Task, TaskError
from .candidates import CandidateMaker
from .config import SearchConfig, config_diff
from .engines import Engine, create_engine, cuda_devices
from .equivalence import EquivalenceIndex
from .rejection import ACCEPTED, REJECTED, SETTLED, Screener
from .study import STARTED, Candidate, Study, StudyError, StudyReader
from .validate import check_formulas
from .worker import configure_torch, import_operator_modules, make_job, one_line


class SearchError(RuntimeError):
    """The search cannot go on (e.g. no candidate passes screening)."""


DONE = ("evaluated", "invalid", "failed", "duplicate")
"""Statuses whose score is known (None = the worst score)."""
SAME_FAILURES = 3
"""The search stops when its first this many trainings (of this run) all fail for the same
reason: a broken task or bad options, not a loss, is then the cause."""
SAME_SCREENING_ERRORS = 20
"""The search stops when screening raises the same error for this many candidates with no
candidate passing in between (a task or operator that cannot screen anything), instead
of trying ``screening.max_tries`` times."""


@dataclass
class Member:
    id: int
    loss: Loss
    score: float | None


@dataclass
class Stats:
    screened: int = 0
    rejected: int = 0
    shortcuts: int = 0
    duplicates: int = 0
    screen_s: float = 0.0
    driver_s: float = 0.0
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class Evolution:
    """The evolution state and its two operations: ``produce`` and ``complete``."""

    def __init__(self, task: Task, metric: str, study: Study, config: SearchConfig,
                 device: str = "cpu"):
        self.task, self.metric, self.study, self.config = task, metric, study, config
        self.device = device
        import_operator_modules(config.operator_modules)
        self.ops = get_operators(config.operators)
        fixed = dict(config.fixed)
        unknown = set(fixed) - set(task.branch_names)
        if unknown:
            raise TaskError(f"--fix: task {task.name} has no branch {', '.join(sorted(unknown))}")
        self.fixed_formulas: dict[str, Expr] = {}
        self.fixed_baselines: dict[str, str] = {}
        for branch, text in fixed.items():
            leaves = task.leaf_spec()[branch]
            try:
                self.fixed_formulas[branch] = parse(text, leaves=leaves, operators=self.ops)
            except ValueError:
                task.branch_baseline(branch, text)  # raises TaskError if unknown
                self.fixed_baselines[branch] = text
        self.maker = CandidateMaker(task, self.ops, config.mutation, config.offspring_branches,
                                    self.fixed_formulas, self.fixed_baselines)
        if not self.maker.searched:
            raise TaskError("every branch is fixed: nothing to search")
        self.population: deque[Member] = deque(maxlen=config.population.size)
        self.index = EquivalenceIndex()
        self.status: dict[int, str] = {}
        self.score: dict[int, float | None] = {}
        self.root: dict[int, int] = {}
        self.rows: dict[int, Candidate] = {}  # running and waiting rows
        self.waiting: dict[int, list[int]] = {}
        self.losses: dict[int, Loss] = {}
        self.next_step = 0
        self.next_id = 1
        self.join_seq = 0
        self.initial = 0
        self.started = 0
        self.tries = 0
        self.stats = Stats()
        self.best: Candidate | None = None
        self.last_error: str | None = None
        self._screener: Screener | None = None
        self.error_streak = 0
        self.first_failures: list[str] | None = []  # None once a training did not fail

    # -- helpers ----------------------------------------------------------------
    @property
    def screener(self) -> Screener:
        if self._screener is None:
            cfg = self.config
            self._screener = Screener(self.task, self.metric, cfg.screening, cfg.seed,
                                      self.device, self.ops, cfg.equivalence.digits)
        return self._screener

    def parse_loss(self, formula: str) -> Loss:
        leaves = {b.name: b.leaves for b in self.task.branches
                  if b.name not in self.fixed_baselines}
        loss = parse(formula, leaves=leaves, operators=self.ops)
        if isinstance(loss, Expr):
            loss = Loss([(next(iter(leaves)), loss)])
        return loss

    def _join(self, row: Candidate) -> None:
        self.join_seq += 1
        row.joined = self.join_seq
        self.population.append(Member(row.id, self.losses.pop(row.id, None)
                                      or self.parse_loss(row.formula), row.score))

    def _note(self, row: Candidate) -> None:
        self.status[row.id] = row.status
        self.score[row.id] = row.score
        self.root[row.id] = row.duplicate_of or row.id
        if row.status == "evaluated" and row.score is not None and (
            self.best is None or row.score > self.best.score
        ):
            self.best = row

    # -- resume -------------------------------------------------------------------
    def load(self) -> list[Candidate]:
        """Rebuild the state from the study; return the rows to (re-)run."""
        rows = self.study.candidates()
        joined = []
        for row in rows:
            self._note(row)
            if self.config.equivalence.enabled:
                self.index.add(row.id, row.normal, row.fingerprint)
            if row.status in ("running", "waiting"):
                self.rows[row.id] = row
            if row.status == "waiting":
                self.waiting.setdefault(row.duplicate_of, []).append(row.id)
            if row.joined is not None:
                joined.append(row)
            if row.status != "rejected" and row.parent is None:
                self.initial += 1
            self.stats.screened += row.g is not None or row.fingerprint is not None
            self.stats.rejected += row.status == "rejected"
            self.stats.duplicates += row.status in ("duplicate", "waiting")
        for row in sorted(joined, key=lambda r: r.joined):
            self.join_seq = row.joined
            self.population.append(Member(row.id, self.parse_loss(row.formula), row.score))
        self.started = sum(1 for r in rows if r.status in STARTED)
        saved = self.study.meta().get("stats") or {}
        for name in ("screen_s", "driver_s", "wall_s", "shortcuts"):
            setattr(self.stats, name, saved.get(name, 0))
        self.stats.extra.update(saved.get("extra") or {})
        self.next_step = max((r.step for r in rows), default=-1) + 1
        self.next_id = self.study.next_id()
        return [r for r in rows if r.status == "running"]

    # -- producing a child ------------------------------------------------------------
    def _tournament(self, rng: np.random.Generator) -> Member:
        pop = self.population
        k = max(2, math.ceil(self.config.population.tournament * len(pop)))
        if len(pop) <= k:
            picks = range(len(pop))
        else:
            picks = sorted(rng.choice(len(pop), size=k, replace=False).tolist())
        best = None
        for i in picks:
            m = pop[i]
            s = -math.inf if m.score is None else m.score
            if best is None or s > best[0]:
                best = (s, m)
        return best[1]

    def _reuse(self, row: Candidate, other: int, how: str) -> None:
        root = self.root.get(other, other)
        status = self.status[root]
        row.duplicate_of = root
        if status == "rejected":
            row.status, row.reason = "rejected", f"same {how} as #{root}"
        elif status in ("running", "waiting"):
            row.status, row.reason = "waiting", f"same {how} as #{root} (in flight)"
        else:
            row.status, row.score = "duplicate", self.score[root]
            row.reason = f"same {how} as #{root}"

    def _classify(self, loss: Loss, row: Candidate) -> None:
        eq = self.config.equivalence.enabled
        if eq:
            hit = self.index.by_normal_form(row.normal)
            if hit is not None:
                self._reuse(row, hit, "normal form")
                return
        if not (self.config.screening.enabled or eq):
            row.status = "running"
            return
        lookup = self.index.by_gradient if eq else None
        try:
            res = self.screener.screen(loss, lookup)
        except Exception as exc:  # noqa: BLE001 - task or user-operator code may raise
            row.status, row.reason = "rejected", f"screening raised {one_line(exc)}"
            self._screening_error(row.reason)
            return
        if res.verdict != REJECTED:
            self.error_streak = 0
        self.stats.screened += 1
        self.stats.screen_s += res.seconds
        self.stats.shortcuts += res.shortcut
        row.g, row.fingerprint, row.screen_s = res.g, res.fingerprint, res.seconds
        if res.verdict == SETTLED:
            self._reuse(row, res.settled, "gradient fingerprint")
        elif res.verdict == REJECTED:
            row.status, row.reason = "rejected", res.reason
        else:
            assert res.verdict == ACCEPTED
            row.status = "running"

    def produce(self) -> Candidate | None:
        """One evolution step: returns the candidate to train, or None if it was settled
        (a duplicate or a candidate waiting for an equivalent one in flight)."""
        t0 = time.perf_counter()
        k = self.next_step
        rng = np.random.default_rng([self.config.seed, k])
        initial = (self.config.strategy == "random" or not self.population
                   or self.initial < self.config.population.initial)
        parent = None if initial else self._tournament(rng)
        rows: list[Candidate] = []
        max_tries = self.config.screening.max_tries
        while True:
            if self.tries >= max_tries:
                last = f"; last error: {self.last_error}" if self.last_error else ""
                raise SearchError(
                    f"no candidate passed screening in {max_tries} tries in a row "
                    f"(raise screening.max_tries or lower screening.eta){last}"
                )
            self.tries += 1
            loss, label = self.maker.random(rng) if parent is None else self.maker.child(
                rng, parent.loss)
            row = Candidate(id=self.next_id, step=k, formula=str(loss), normal=loss.key,
                            status="", parent=None if parent is None else parent.id,
                            mutation=label)
            self.next_id += 1
            self._classify(loss, row)
            rows.append(row)
            if self.config.equivalence.enabled:
                self.index.add(row.id, row.normal, row.fingerprint)
            self._note(row)
            if row.status == "rejected":
                self.stats.rejected += 1
                continue
            break
        if parent is None:
            self.initial += 1
        self.next_step = k + 1
        if row.status == "running":
            row.seed = (derive_seed(self.config.seed, 0, 2)
                        if self.config.evaluation.common_seed
                        else derive_seed(self.config.seed, k, 1))
            self.rows[row.id] = row
            self.losses[row.id] = loss
            self.started += 1
            self.tries = 0
        elif row.status == "waiting":
            self.stats.duplicates += 1
            self.rows[row.id] = row
            self.losses[row.id] = loss
            self.waiting.setdefault(row.duplicate_of, []).append(row.id)
        else:  # duplicate: joins the population with the reused score
            self.stats.duplicates += 1
            self.losses[row.id] = loss
            row.finished = time.time()
            self._join(row)
        self.stats.driver_s += time.perf_counter() - t0
        self.study.insert(rows, {"stats": self.stats.__dict__})
        return row if row.status == "running" else None

    # -- a result comes back ------------------------------------------------------------
    def complete(self, result: dict) -> Candidate:
        t0 = time.perf_counter()
        row = self.rows.pop(result["id"])
        row.status = result["status"]
        row.score = result.get("score")
        row.metrics = result.get("metrics")
        row.reason = result.get("reason")
        row.train_s = result.get("train_s")
        row.worker = result.get("worker")
        row.finished = time.time()
        self._join(row)
        self._note(row)
        changed = [row]
        for wid in self.waiting.pop(row.id, []):
            w = self.rows.pop(wid)
            w.status, w.score, w.finished = "duplicate", row.score, time.time()
            w.reason = (w.reason or "").replace(" (in flight)", "")
            self._join(w)
            self._note(w)
            changed.append(w)
        self.stats.driver_s += time.perf_counter() - t0
        self.study.update(changed, {"stats": self.stats.__dict__})
        self._check_first_failures(row)
        return row

    # -- stopping early with the real cause ------------------------------------------
    def _screening_error(self, reason: str) -> None:
        self.error_streak = self.error_streak + 1 if reason == self.last_error else 1
        self.last_error = reason
        if self.error_streak >= SAME_SCREENING_ERRORS:
            raise SearchError(f"no candidate passed screening: {self.error_streak} tries "
                              f"failed the same way: {reason}")

    def _check_first_failures(self, row: Candidate) -> None:
        if self.first_failures is None:
            return
        if row.status != "failed":
            self.first_failures = None
            return
        self.first_failures.append(row.reason or "")
        if len(self.first_failures) >= SAME_FAILURES and len(set(self.first_failures)) == 1:
            raise SearchError(
                f"the first {len(self.first_failures)} proxy trainings all failed: "
                f"{row.reason} (kept in the study as failed; fix the cause and run again "
                "to resume)"
            )


# ---------------------------------------------------------------------------
# The top level


def _check_same_search(path: Path, meta: dict, task: Task, metric: str,
                       config: SearchConfig | None) -> None:
    """StudyError naming every difference between the stored search and the given one."""
    tid = task_id(task)
    problems = []
    if meta.get("task") != tid:
        problems.append(f"task: {meta.get('task')} (stored) != {tid} (given)")
    if meta.get("metric") != metric:
        problems.append(f"metric: {meta.get('metric')} (stored) != {metric} (given)")
    stored = SearchConfig.from_dict(meta["config"])
    if config is not None:
        problems += config_diff(stored.to_dict(), config.to_dict())
    if meta.get("task_config") != task.config:
        problems += config_diff(meta.get("task_config") or {}, task.config, "task.")
    if problems:
        raise StudyError(f"{path} holds a different search: " + "; ".join(problems))


def _open_study(path: Path, task: Task, metric: str, config: SearchConfig | None,
                budget: int) -> tuple[Study, SearchConfig]:
    tid = task_id(task)
    new = config or SearchConfig()
    # A new study gets its metadata in the transaction that creates its tables.
    study = Study(path, meta={
        "schema": 1, "task": tid, "task_config": task.config, "metric": metric,
        "config": new.to_dict(), "operators": list(new.operators),
        "created": time.time(), "budget": budget,
    })
    try:
        if study.is_new:
            return study, new
        meta = study.meta()
        stored = SearchConfig.from_dict(meta["config"])
        _check_same_search(path, meta, task, metric, config)
        study.set_meta({"budget": budget})
        return study, stored
    except BaseException:
        study.close()
        raise


def _main_loop(evo: Evolution, engine: Engine, budget: int, rerun: list[Candidate],
               job_args: dict, progress=None, time_limit: float | None = None,
               ahead: int = 0) -> None:
    t_start = time.perf_counter()
    base_wall = evo.stats.wall_s

    def submit(row: Candidate) -> None:
        engine.submit(make_job(row.id, formula=row.formula, seed=row.seed, **job_args))

    def out_of_time() -> bool:
        return time_limit is not None and time.perf_counter() - t_start > time_limit

    evo.stats.extra["slots"] = engine.slots
    for row in rerun:
        submit(row)
    while True:
        if out_of_time():
            break  # trainings in flight stay 'running' in the study: resume re-runs them
        while (engine.pending < engine.slots + ahead and evo.started < budget
               and not out_of_time()):
            row = evo.produce()
            if row is not None:
                submit(row)
            if progress:
                progress(evo, budget)
        if engine.pending == 0:
            break
        for result in engine.wait(timeout=0.5):
            evo.complete(result)
        evo.stats.wall_s = base_wall + time.perf_counter() - t_start
        if progress:
            progress(evo, budget)
    evo.stats.wall_s = base_wall + time.perf_counter() - t_start
    evo.study.set_meta({"stats": evo.stats.__dict__})


def search(
    task: str | Task,
    metric: str | None = None,
    budget: int = 20,
    study: str | Path | None = None,
    config: SearchConfig | None = None,
    *,
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
    ``budget``: proxy trainings started (evaluated, invalid and failed all count).
    ``study``: the SQLite file (a temporary one if None); an existing file resumes.
    ``config``: a :class:`SearchConfig` (None: the stored one on resume, else defaults).
    ``progress``: a callable ``(evolution, budget)`` called as the search advances.
    ``time_limit``: seconds after which no new candidate is made and the search returns
    (trainings still running are re-run when the search is resumed).
    ``trust_study``: resuming with ``config=None`` uses the stored config; operator modules
    it names are imported only if already imported here, or with ``trust_study=True``.

    The calling process screens with one torch thread and subnormal floats flushed to
    zero (see ``worker.configure_torch``); both are restored at the end.
    """
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if study is None:
        study = Path(tempfile.mkdtemp(prefix="autoloss-zero-")) / "study.db"
    path = Path(study)
    stored = None
    if path.exists() and path.stat().st_size:
        with StudyReader(path) as r:
            stored = SearchConfig.from_dict(r.meta()["config"])
    if config is not None:  # values set after construction are checked too
        SearchConfig.from_dict(config.to_dict())
    elif stored is not None:
        from ..trust import check_operator_modules

        check_operator_modules(path, stored.operator_modules, trust_study, hint="trust_study=True")
    if device == "cuda":
        cuda_devices()  # a clear error before the study is created
    effective = config or stored or SearchConfig()
    if isinstance(task, str):
        task = get_task(task, **effective.task_options)
    metric = task.check_metric(metric or task.metrics[0])
    evo = Evolution(task, metric, None, effective, device)  # bad options fail before any write
    if stored is not None:  # a study that does not fit is refused before any write to it
        with StudyReader(path) as r:
            _check_same_search(path, r.meta(), task, metric, config)
            check_formulas(r, evo.parse_loss)
    db, config = _open_study(path, task, metric, config, budget)
    evo.study = db
    own_engine = not isinstance(engine, Engine)
    from .worker import flush_denormal_enabled

    threads, flush = torch.get_num_threads(), flush_denormal_enabled()
    configure_torch(1)  # the driver screens one small graph at a time; workers use the cores
    try:
        rerun = evo.load()
        job_args = dict(
            task=task_id(task), task_options=task.config, metric=metric,
            operators=list(config.operators), operator_modules=list(config.operator_modules),
            fixed=evo.fixed_baselines, device=device, schedule="proxy",
            stop_on_invalid=config.evaluation.stop_on_invalid,
            timeout=config.evaluation.timeout,
        )
        if own_engine:
            engine = create_engine(engine, workers, scheduler, config.evaluation.retries, device)
        try:
            _main_loop(evo, engine, budget, rerun, job_args, progress, time_limit,
                       config.evaluation.ahead)
        finally:
            if own_engine:
                engine.close()
    finally:
        db.close()
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)  # the caller's floats (Python's too) as they were
    return StudyReader(path)
