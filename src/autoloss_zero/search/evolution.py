"""Regularized evolution of loss functions (paper Section 3.2), steady-state and asynchronous:
the :class:`Evolution` state of one search (population, equivalence index, counters) and
its steps; ``driver.py`` runs it (``search()``, ``confirm()``).

One evolution **step** produces one candidate that passes screening. Step k draws all its
random choices from a generator derived from (master seed, k), so a serial search is
reproducible and a resumed one continues exactly where it stopped. A step either starts
a proxy training (budget += 1), or ends as a duplicate of a known candidate (its score is
reused and it joins the population), or waits for an equivalent candidate in flight.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Set
from dataclasses import dataclass, field

import numpy as np

from ..errors import SearchError, describe
from ..expr.tree import Expr, Loss
from ..tasks.base import Task
from .candidates import CandidateMaker
from .config import SearchConfig
from .equivalence import EquivalenceIndex
from .fidelity import Rung, best_to_promote, compare_key, mean, rungs_of
from .racing import contenders
from .rejection import FIT_FAILED, Screener, ScreenResult
from .seeds import derive_seed, stream
from .status import Status
from .study import Candidate, Evaluation, Study

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
    group: int
    """The candidate whose evaluations give this member's score: itself, the loss it
    duplicates, or the loss it re-evaluates (a copy)."""


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


def training_seed(config: SearchConfig, step: int) -> int:
    """The proxy-training seed of evolution step ``step`` (one seed for every candidate
    with ``evaluation.common_seed``)."""
    if config.evaluation.common_seed:
        return derive_seed(config.seed, "train common")
    return derive_seed(config.seed, "train", step)


def _fit_failed_row(row: Candidate) -> bool:
    return row.status == Status.REJECTED and (row.reason or "").startswith(FIT_FAILED)


def _fingerprinted(row: Candidate) -> bool:
    """Whether ``row``'s gradient fingerprint goes into the equivalence index: a loss
    that passed screening and was trained (or is training), or one that passed g and
    failed the fit test (an equivalent one is rejected without a test), not a loss
    already settled as equivalent to another."""
    return (row.fingerprint is not None and not row.duplicate_of
            and (row.status.is_started() or _fit_failed_row(row)))


class Evolution:
    """The evolution state and its two operations: ``produce`` and ``complete``.

    Scores belong to **groups**: a loss evaluated by a proxy training starts a group; a
    loss found equivalent to it (same normal form, or same gradient fingerprint among
    losses that passed screening) joins it without training, and a copy re-evaluated with
    a fresh seed (``mutation.copy_mode = "reevaluate"``) adds an evaluation to it. A
    group's score is the mean of its evaluations' scores, so every member of a group
    is ranked by the same, increasingly precise, number.
    """

    def __init__(self, task: Task, metric: str, study: Study, config: SearchConfig,
                 device: str = "cpu", maker: CandidateMaker | None = None):
        self.task, self.metric, self.study, self.config = task, metric, study, config
        self.device = device
        self.maker = maker or CandidateMaker.from_config(task, config)
        self.ops = self.maker.ops
        self.fixed_formulas: dict[str, Expr] = self.maker.fixed_formulas
        self.fixed_baselines: dict[str, str] = self.maker.fixed_baselines
        self.population: deque[Member] = deque(maxlen=config.population.size)
        self.index = EquivalenceIndex()
        self.status: dict[int, Status] = {}
        self.score: dict[int, float | None] = {}
        self.root: dict[int, int] = {}
        self.formula: dict[int, str] = {}
        self.evals: dict[int, list[float | None]] = {}
        self.rows: dict[int, Candidate] = {}  # running and waiting rows
        self.waiting: dict[int, list[int]] = {}
        self.losses: dict[int, Loss] = {}
        self.next_step = 0
        self.next_id = 1
        self.join_seq = 0
        self.initial = 0
        self.started = 0
        self.tries = 0
        self.fit_tries = 0
        self.settled = 0
        self.stats = Stats()
        self.best: tuple[float, str] | None = None
        self.last_error: str | None = None
        self._screener: Screener | None = None
        self.branch_verdicts: dict[tuple[str, str], ScreenResult] = {}
        self.region_cache: dict[int, bool] = {}
        # fidelity rungs and confirmation (see fidelity.py)
        self.rungs: list[Rung] = rungs_of(config.fidelity)
        self.full: dict[int, list[float | None]] = {}
        self.promoted: dict[int, set[int]] = {r.index: set() for r in self.rungs}
        self.running_evals: dict[int, Evaluation] = {}
        self.queue: deque[Evaluation] = deque()
        self.rung_cost = 0.0
        self.next_eval_id = 1
        self.unit = task.schedule_cost("proxy")
        self.error_streak = 0
        self.first_failures: list[str] | None = []  # None once a training did not fail

    # -- helpers ----------------------------------------------------------------
    @property
    def screener(self) -> Screener:
        if self._screener is None:
            self._screener = Screener.from_config(self.task, self.metric, self.config,
                                                  self.device)
        return self._screener

    def parse_loss(self, formula: str) -> Loss:
        return self.maker.parse_loss(formula)

    def group_score(self, group: int) -> float | None:
        """The mean score of a group's proxy trainings (None: none evaluated, the worst)."""
        return mean(self.evals.get(group, ()))

    @property
    def spent(self) -> float:
        """Compute started, in proxy-training equivalents (the budget's unit)."""
        return self.started + self.rung_cost

    def _join(self, row: Candidate) -> None:
        self.join_seq += 1
        row.joined = self.join_seq
        loss = self.losses.pop(row.id, None) or self.parse_loss(row.formula)
        self.population.append(Member(row.id, loss, self.root.get(row.id, row.id)))

    def remember(self, row: Candidate) -> None:
        """Put a settled row into the equivalence index (when the check is on): its normal
        form always, its gradient fingerprint where :func:`_fingerprinted` says so."""
        if self.config.equivalence.enabled:
            self.index.add(row.id, row.normal, None)
            if _fingerprinted(row):
                self.index.add(row.id, None, row.fingerprint)

    def _note(self, row: Candidate) -> None:
        self.status[row.id] = row.status
        self.score[row.id] = row.score
        self.root[row.id] = row.duplicate_of or row.id
        self.formula[row.id] = row.formula
        if row.status.is_scored():
            group = self.root[row.id]
            self.evals.setdefault(group, []).append(row.score)
            score = self.group_score(group)
            if score is not None and (self.best is None or score > self.best[0]):
                self.best = (score, self.formula[group])

    # -- resume -------------------------------------------------------------------
    def load(self) -> list[Candidate]:
        """Rebuild the state from the study; return the rows to (re-)run."""
        rows = self.study.candidates()
        joined = []
        for row in rows:
            self._note(row)
            self.remember(row)
            if row.status.is_in_flight():
                self.rows[row.id] = row
            if row.status == Status.WAITING:
                self.waiting.setdefault(row.duplicate_of, []).append(row.id)
            if row.joined is not None:
                joined.append(row)
            if row.status != Status.REJECTED and row.parent is None:
                self.initial += 1
            self.stats.screened += row.g is not None or row.fingerprint is not None
            self.stats.rejected += row.status == Status.REJECTED
            self.stats.duplicates += row.status in (Status.DUPLICATE, Status.WAITING)
        for row in sorted(joined, key=lambda r: r.joined):
            self.join_seq = row.joined
            self.population.append(Member(row.id, self.parse_loss(row.formula),
                                          self.root[row.id]))
        self.started = sum(1 for r in rows if r.status.is_started())
        saved = self.study.meta().get("stats") or {}
        for name in ("screen_s", "driver_s", "wall_s", "shortcuts"):
            setattr(self.stats, name, saved.get(name, 0))
        self.stats.extra.update(saved.get("extra") or {})
        self.next_step = max((r.step for r in rows), default=-1) + 1
        self.next_id = self.study.next_id()
        for e in self.study.evaluations():
            self.next_eval_id = max(self.next_eval_id, e.id + 1)
            if e.kind == "rung":
                self.promoted.setdefault(e.rung, set()).add(e.candidate)
                self.rung_cost += e.cost
            if e.status == Status.RUNNING:
                self.running_evals[e.id] = e
                if e.kind == "rung":
                    self.queue.append(e)  # re-run on resume
            else:
                self._note_evaluation(e)
        return [r for r in rows if r.status == Status.RUNNING]

    def _note_evaluation(self, e: Evaluation) -> None:
        if e.status.is_scored():
            target = self.full if e.schedule == "full" else self.evals
            target.setdefault(e.candidate, []).append(e.score)

    # -- producing a child ------------------------------------------------------------
    def _region_tournament(self, rng: np.random.Generator, parent: Member) -> Member | None:
        """The tournament winner among the members with a region-level term, outside the
        parent's group (None: there is none)."""
        pool = [m for m in self.population
                if m.group != parent.group and self._has_region(m)]
        return self._tournament(rng, pool) if pool else None

    def _kind_without_region(self, rng: np.random.Generator) -> tuple[str, Member | None]:
        """The step's kind drawn as if ``region_sum`` were 0, and its second parent."""
        kind = self.maker.draw_kind(rng, region=False)
        return kind, (self._tournament(rng) if kind == "recombine" else None)

    def _has_region(self, member: Member) -> bool:
        if member.id not in self.region_cache:
            self.region_cache[member.id] = bool(self.maker.region_branches(member.loss))
        return self.region_cache[member.id]

    def _tournament(self, rng: np.random.Generator, pop=None) -> Member:
        pop = self.population if pop is None else pop
        k = max(2, math.ceil(self.config.population.tournament * len(pop)))
        if len(pop) <= k:
            picks = range(len(pop))
        else:
            picks = sorted(rng.choice(len(pop), size=k, replace=False).tolist())
        best = None
        for i in picks:
            m = pop[i]
            if best is None or self._beats(m, best):
                best = m
        return best

    def _beats(self, a: Member, b: Member) -> bool:
        """Whether ``a`` wins a duel with ``b``, compared at the highest fidelity both
        reached: full-schedule means if both have them, else proxy means."""
        fa, fb = mean(self.full.get(a.group, ())), mean(self.full.get(b.group, ()))
        pa, pb = self.group_score(a.group), self.group_score(b.group)
        return compare_key(pa, fa, fb is not None) > compare_key(pb, fb, fa is not None)

    def _reuse(self, row: Candidate, other: int, how: str) -> bool:
        """Settle ``row`` as equivalent to ``other``: rejected like it (normal form only),
        a duplicate with its group's score, or waiting for it. False: ``other`` failed
        (a crash is no verdict on the loss), so ``row`` goes on."""
        root = self.root.get(other, other)
        status = self.status[root]
        if status == Status.FAILED:
            return False
        row.duplicate_of = root
        if status == Status.REJECTED:
            row.status, row.reason = Status.REJECTED, f"same {how} as #{root}"
        elif status.is_in_flight():
            row.status, row.reason = Status.WAITING, f"same {how} as #{root} (in flight)"
        else:
            row.status, row.score = Status.DUPLICATE, self.group_score(root)
            row.reason = f"same {how} as #{root}"
        return True

    def _classify(self, loss: Loss, row: Candidate) -> None:
        """The paper's order: the normal form (an exact identity, free), then the rejection
        protocol, then the gradient fingerprint among losses that passed it."""
        eq = self.config.equivalence.enabled
        if eq:
            hit = self.index.by_normal_form(row.normal)
            if hit is not None and self._reuse(row, hit, "normal form"):
                return
        if self.config.screening.enabled or eq:
            screener = self.screener  # a task that cannot make screening samples: stop here
            try:  # with the equivalence check, the fit test comes after the fingerprint
                res = screener.screen(loss, optimize=self.config.screening.enabled,
                                      fit=not eq)
            except Exception as exc:  # noqa: BLE001 - task or user-operator code may raise
                row.status, row.reason = Status.REJECTED, f"screening raised {describe(exc)}"
                self._screening_error(row.reason)
                return
            self.stats.screened += 1
            self.stats.screen_s += res.seconds
            self.stats.shortcuts += res.shortcut
            row.g, row.fingerprint = res.g, res.fingerprint
            row.screen_s = (row.screen_s or 0.0) + res.seconds
            if not res.accepted:
                row.status, row.reason = Status.REJECTED, res.reason
                return
            self.error_streak = 0
            if eq and row.fingerprint is not None:
                hit = self.index.by_gradient(row.fingerprint)
                if hit is not None and self._reuse(row, hit, "gradient fingerprint"):
                    if row.status == Status.REJECTED:  # only a fit test fails after g
                        row.reason = FIT_FAILED + row.reason
                    return
            if eq and screener.fit_steps:
                fit = screener.fit_test(loss)
                self.stats.screen_s += fit.seconds
                row.screen_s += fit.seconds
                if not fit.accepted:
                    row.status, row.reason = Status.REJECTED, fit.reason
                    return
        row.status = Status.RUNNING

    def _screen_branches(self, loss: Loss, row: Candidate) -> dict[str, Expr]:
        """The per-branch test (``screening.per_branch``, beyond the paper): every searched
        branch screened alone (a verdict per distinct branch, kept for the search); the
        row is rejected at the first that fails. Returns the branches that passed, which an
        initial member keeps while its other branches are redrawn (one branch's failure
        does not cost the others: 37 of 40,000 random detection losses passed the paper's
        test, none with four working branches)."""
        if not self.config.screening.enabled or not self.config.screening.per_branch:
            return {}
        try:
            if not self.screener.per_branch:
                return {}
            passed: dict[str, Expr] = {}
            for name, expr in loss.branches:
                if name in self.fixed_formulas:
                    continue
                res = self.branch_verdicts.get((name, expr.key))
                if res is None:
                    res = self.screener.screen_branch(loss, name)
                    self.branch_verdicts[(name, expr.key)] = res
                    self.stats.screened += 1
                    self.stats.screen_s += res.seconds
                    self.stats.shortcuts += res.shortcut
                    row.screen_s = (row.screen_s or 0.0) + res.seconds
                if not res.accepted:
                    row.status, row.reason = Status.REJECTED, res.reason
                    return passed
                passed[name] = expr
            return passed
        except Exception as exc:  # noqa: BLE001 - task or user-operator code may raise
            row.status, row.reason = Status.REJECTED, f"screening raised {describe(exc)}"
            self._screening_error(row.reason)
            return {}

    def _fit_failed(self, max_tries: int) -> None:
        """A candidate passed g and failed the fit test: g is passable (the count of
        screening failures starts again), and a fit test no candidate passes is stopped
        after ``max_tries // 50`` such failures in a row (each costs a short training;
        pose's random losses that pass g pass it about 1 time in 14)."""
        self.tries = 0
        self.fit_tries += 1
        limit = max(1, max_tries // 50)
        if self.fit_tries >= limit:
            raise SearchError(
                f"no candidate passed the fit test in {limit} tries in a row of candidates "
                "that passed g (lower screening.fit_eta, or set screening.fit_steps = 0)")

    def _copy(self, parent: Member, row: Candidate) -> None:
        """The paper's copy. ``reuse``: the child joins with its parent's score, untrained.
        ``reevaluate``: the parent's loss is trained again with a fresh seed and the
        result adds to its group's mean (a lucky proxy score is re-measured, not spread)."""
        group = parent.group
        if self.config.mutation.copy_mode == "reevaluate":
            row.status, row.duplicate_of = Status.RUNNING, group
            row.reason = f"re-evaluation of #{group}"
            return
        if not self._reuse(row, group, "loss (a copy)"):
            row.status = Status.RUNNING  # the parent's group failed to train: train the copy

    def produce(self) -> Candidate | None:
        """One evolution step: returns the candidate to train, or None if it was settled
        (a duplicate or a candidate waiting for an equivalent one in flight).

        The offspring kind (copy, re-initialization, mutations) is drawn once per step;
        candidates of that kind are drawn until one passes screening (a region sum, one
        fixed child, gets one try; then the step draws its kind as without)."""
        t0 = time.perf_counter()
        k = self.next_step
        rng = stream(self.config.seed, "step", k)
        initial = (self.config.strategy == "random" or not self.population
                   or self.initial < self.config.population.initial)
        parent = None if initial else self._tournament(rng)
        kind = "init" if parent is None else self.maker.draw_kind(rng)
        other, term = None, None  # term: (branch, node) of a region sum by term
        if kind == "region_sum":
            if self.config.mutation.region_pick == "term":
                picked = self.maker.region_term(
                    rng, [(m, m.loss) for m in self.population if m.group != parent.group],
                    parent.loss)
                if picked is not None:
                    other, term = picked[0], picked[1:]
            else:
                other = self._region_tournament(rng, parent)
            if other is None:  # no region-level member: the step draws as without
                kind, other = self._kind_without_region(rng)
        elif kind == "recombine":
            other = self._tournament(rng)
        rows: list[Candidate] = []
        max_tries = self.config.screening.max_tries
        keep: dict[str, Expr] = {}  # initial members: branches that passed the per-branch test
        while True:
            if self.tries >= max_tries:
                last = f"; last error: {self.last_error}" if self.last_error else ""
                raise SearchError(
                    f"no candidate passed screening in {max_tries} tries in a row "
                    f"(raise screening.max_tries or lower screening.eta){last}"
                )
            self.tries += 1
            if parent is None:
                loss, label = self.maker.random(rng, keep)
            else:
                if term is not None:
                    loss, label = self.maker.term_sum(parent.loss, *term)
                else:
                    loss, label = self.maker.child(rng, parent.loss, kind,
                                                   None if other is None else other.loss)
                if other is not None:
                    label += f" with #{other.id}"
            row = Candidate(id=self.next_id, step=k, formula=str(loss), normal=loss.key,
                            status=Status.RUNNING,  # until the copy rule or screening says
                            parent=None if parent is None else parent.id,
                            mutation=label)
            self.next_id += 1
            if kind == "copy":
                self._copy(parent, row)
            else:
                passed = self._screen_branches(loss, row)
                if row.status != Status.REJECTED:
                    self._classify(loss, row)
                    if row.status == Status.REJECTED:
                        passed = {}  # each branch works alone, the whole loss does not
                if parent is None:
                    keep = passed
            rows.append(row)
            self.remember(row)
            self._note(row)
            if row.status == Status.REJECTED:
                self.stats.rejected += 1
                if _fit_failed_row(row):
                    self._fit_failed(max_tries)
                if kind == "region_sum":  # one try (the sum is fixed); then as without
                    kind, other = self._kind_without_region(rng)
                    term = None
                continue
            break
        self.tries = self.fit_tries = 0  # a candidate passed: failures in a row start again
        self.settled = 0 if row.status == Status.RUNNING else self.settled + 1
        if self.settled >= max_tries:
            self.study.insert(rows, {"stats": self.stats.__dict__})
            self.next_step = k + 1
            raise SearchError(
                f"the search produced only duplicates of losses already known in {max_tries} "
                "steps in a row: it has converged (raise screening.max_tries, or make "
                "offspring travel further: mutation.reinit, mutation.mutations)")
        if parent is None:
            self.initial += 1
        self.next_step = k + 1
        if row.status == Status.RUNNING:
            row.seed = training_seed(self.config, k)
            self.rows[row.id] = row
            self.losses[row.id] = loss
            self.started += 1
        elif row.status == Status.WAITING:
            self.stats.duplicates += 1
            self.rows[row.id] = row
            self.losses[row.id] = loss
            self.waiting.setdefault(row.duplicate_of, []).append(row.id)
        else:  # duplicate: joins the population with its group's score
            self.stats.duplicates += 1
            self.losses[row.id] = loss
            row.finished = time.time()
            self._join(row)
        self.stats.driver_s += time.perf_counter() - t0
        self.study.insert(rows, {"stats": self.stats.__dict__})
        return row if row.status == Status.RUNNING else None

    # -- a result comes back ------------------------------------------------------------
    def complete(self, result: dict) -> Candidate | Evaluation:
        if result["id"] < 0:
            return self._complete_evaluation(result)
        t0 = time.perf_counter()
        row = self.rows.pop(result["id"])
        row.status = Status(result["status"])
        row.score = result.get("score")
        row.metrics = result.get("metrics")
        row.reason = result.get("reason") or row.reason
        row.train_s = result.get("train_s")
        row.worker = result.get("worker")
        row.finished = time.time()
        self._note(row)
        self._join(row)
        changed = [row]
        group = self.root[row.id]
        for wid in self.waiting.pop(row.id, []):
            w = self.rows.pop(wid)
            w.status, w.score, w.finished = Status.DUPLICATE, self.group_score(group), time.time()
            w.reason = (w.reason or "").replace(" (in flight)", "")
            if row.status == Status.FAILED:
                w.reason += ", whose training failed"
            self._note(w)
            self._join(w)
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


    # -- fidelity rungs ------------------------------------------------------------------
    def _started(self, group: int, schedule: str) -> int:
        """Trainings of ``group`` on ``schedule``, finished or in flight."""
        running = sum(1 for e in self.running_evals.values()
                      if e.candidate == group and e.schedule == schedule)
        if schedule == "full":
            return len(self.full.get(group, ())) + running
        rows = sum(1 for r in self.rows.values()
                   if r.status == Status.RUNNING and self.root.get(r.id) == group)
        return len(self.evals.get(group, ())) + rows + running

    def _completed(self, rung: Rung) -> dict[int, float | None]:
        """Groups that completed ``rung``, with their score there."""
        if rung.index == 0:
            groups = [g for g, v in self.evals.items() if v]
        else:
            busy = {e.candidate for e in self.running_evals.values() if e.rung == rung.index}
            groups = [g for g in self.promoted[rung.index] if g not in busy]
        scores = self.full if rung.schedule == "full" else self.evals
        return {g: mean(scores.get(g, ())) for g in groups}

    def _new_evaluations(self, group: int, schedule: str, seeds: int, kind: str,
                         rung: int) -> list[Evaluation]:
        """Rows for the trainings that bring ``group`` to ``seeds`` trainings of
        ``schedule`` (the j-th training of a group on a schedule has its own seed)."""
        have = self._started(group, schedule)
        cost = self.task.schedule_cost(schedule) / self.unit
        rows = []
        for j in range(have, seeds):
            rows.append(Evaluation(
                id=self.next_eval_id, candidate=group, kind=kind, rung=rung,
                schedule=schedule, split="val", seed=derive_seed(self.config.seed, schedule,
                                                                group, j),
                cost=cost, status=Status.RUNNING))
            self.next_eval_id += 1
        return rows

    def promote(self, budget: float) -> Evaluation | None:
        """The next promotion training to run within ``budget``, or None (ASHA: from the
        highest rung down, the best loss in the top fraction of the rung below)."""
        if self.queue:
            return self.queue.popleft()
        for rung in reversed(self.rungs[1:]):
            done = self._completed(self.rungs[rung.index - 1])
            while True:
                group = best_to_promote(done, self.promoted[rung.index], rung.top)
                if group is None:
                    break
                rows = self._new_evaluations(group, rung.schedule, rung.seeds, "rung",
                                             rung.index)
                if self.spent + sum(e.cost for e in rows) > budget + 1e-9:
                    self.next_eval_id -= len(rows)
                    break  # not within the budget: the rung waits (the search may end)
                self.promoted[rung.index].add(group)
                if not rows:  # copies already gave it these trainings
                    continue
                for e in rows:
                    self.running_evals[e.id] = e
                    self.rung_cost += e.cost
                self.study.put_evaluations(rows)
                self.queue.extend(rows)
                return self.queue.popleft()
        return None

    def confirmation(self, top: int, seeds: int,
                     tried: Set[tuple[int, int]] = frozenset()) -> list[Evaluation]:
        """Rows that bring the ``top`` losses of the study's ranking to ``seeds``
        full-schedule trainings on the validation split (the ones already made count),
        leaving out the (loss, seed) trainings in ``tried`` (ones that failed)."""
        rows = []
        for c in self.study.leaderboard(top):
            rows += [e for e in self._new_evaluations(c.id, "full", seeds, "confirm", -1)
                     if (e.candidate, e.seed) not in tried]
        return self._start_confirmation(rows)

    def _start_confirmation(self, rows: list[Evaluation]) -> list[Evaluation]:
        """Confirmation rows in flight, and in the study."""
        for e in rows:
            self.running_evals[e.id] = e
        if rows:
            self.study.put_evaluations(rows)
        return rows

    def racing(self, top: int, max_seeds: int,
               tried: Set[tuple[int, int]] = frozenset()) -> list[Evaluation]:
        """One more full-schedule training for the leader of the ``top`` losses and for
        each one within a standard error of it (``racing.contenders``), up to
        ``max_seeds`` each, leaving out the trainings in ``tried``; empty when the leader
        is separated or no contender can get more."""
        ids = {c.id for c in self.study.leaderboard(top) if c.confirmed is not None}
        scores: dict[int, list[float]] = {}
        for e in self.study.evaluations("WHERE schedule = 'full' AND status = ? "
                                        "AND score IS NOT NULL", [Status.EVALUATED]):
            if e.candidate in ids:
                scores.setdefault(e.candidate, []).append(e.score)
        rows = []
        for group in contenders(scores):
            n = self._started(group, "full")
            if n < max_seeds:
                rows += [e for e in self._new_evaluations(group, "full", n + 1, "confirm", -1)
                         if (e.candidate, e.seed) not in tried]
        return self._start_confirmation(rows)

    def _complete_evaluation(self, result: dict) -> Evaluation:
        e = self.running_evals.pop(-result["id"])
        e.status = Status(result["status"])
        e.score = result.get("score")
        e.metrics = result.get("metrics")
        e.reason = result.get("reason")
        e.train_s = result.get("train_s")
        e.worker = result.get("worker")
        e.finished = time.time()
        self._note_evaluation(e)
        self.study.put_evaluations([e])
        return e
