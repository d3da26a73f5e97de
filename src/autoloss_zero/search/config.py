"""One nested config object for a search, loadable from TOML and saved in the study.

Every default is the paper's where the paper gives one (K=20, T=5%, P=2500, B=5, D=3,
copy 10%, re-init 50%, two uniform mutations); the screening optimizer, its steps,
learning rate and threshold eta are ours, chosen by measurement (see README).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..expr.mutate import MutationConfig
from ..expr.ops import DEFAULT_NAMES, OperatorSet, get_operators


@dataclass
class PopulationConfig:
    initial: int = 20
    """K: random losses that start the search."""
    size: int = 2500
    """P: only the most recent P losses are kept (ageing)."""
    tournament: float = 0.05
    """T: tournament size = max(2, ceil(T * population))."""

    def __post_init__(self):
        if self.initial < 1 or self.size < 1:
            raise ConfigError("population.initial and population.size must be >= 1")
        if not 0.0 < self.tournament <= 1.0:
            raise ConfigError("population.tournament must be in (0, 1]")


@dataclass
class ScreeningConfig:
    """The loss-rejection protocol (Eq. 3) and its short-cuts."""

    enabled: bool = True
    samples: int = 5
    """B: screening samples (one image for dense tasks, one mini-batch for classification)."""
    steps: int = 10
    """Adam steps on the raw predictions (10 at lr 0.2 gave the verdicts of 20 at lr 0.1 on
    99.8-100% of candidates of three tasks, at half the cost)."""
    lr: float = 0.2
    """Adam learning rate on the raw predictions."""
    eta: float = 0.1
    """Reject when the mean metric gain g < eta (in metric units, metrics in [0, 1]).
    Measured (benchmarks/README.md): candidates with g < 0.1 trained no better than chance."""
    max_tries: int = 10000
    """Give up (a clear error) after this many candidates in a row fail to pass."""
    per_branch: bool = True
    """Beyond the paper, for multi-branch tasks that give perfect outputs (detection,
    instance segmentation): each branch is also screened alone, optimized while the other
    branches output their targets, and must close at least ``branch_eta`` of the metric's
    gap to those perfect outputs; a branch that fails is redrawn on its own. The paper's
    single g over the whole loss accepted 37 of 40,000 random detection losses, every one
    with a dead or harmful branch and every one training to 0 mAP (benchmarks/README.md,
    "Screening multi-branch losses branch by branch"). Off in studies made before it."""
    branch_eta: float = 0.05
    """The fraction of the gap to the perfect outputs a branch must close (see
    ``per_branch``). Measured on detection: CE 0.75 / 0.97 (cls_rpn / cls_rcnn), GIoU 0.15 /
    0.80 (reg_rpn / reg_rcnn), IoU 0.25 / 0.76; branches of the accepted random losses
    0.01 or less."""
    branch_min_gap: float = 0.1
    """The smallest gap to the perfect outputs a branch is tested across (metric units).
    Where the network's outputs leave a smaller one (detection's R-CNN boxes: a random
    network's deltas are ~0 and the frozen RoIs hold the ground-truth boxes, so its box AP
    starts at or near perfect: gaps 0-0.16 over six seeds, every other branch 0.13 or
    more), the branch's own outputs also start from them plus Gaussian noise of std 0.5, 1,
    2, 4 (the first that opens the gap; a generator of the screening seed), and the branch
    must hold the perfect outputs (``branch_hold``). With the old rule (0 here) a gap below
    1e-6 gave no verdict and every branch passed: a search whose screening samples had that
    (detection seed 1: the R-CNN box gap was 0) accepted any box loss, degenerate ones
    included (``-i``, ``e`` alone). Off in studies made before it."""
    branch_hold: float = 0.1
    """Where a branch's start was moved by noise (``branch_min_gap``), it must also hold
    the perfect outputs: minimized from them (every output perfect), it may lose at most
    this much of the metric (metric units; 0: no such test; a loss not finite there gives
    no verdict). Degenerate box losses (``-i``: grow the box without bound; ``e`` alone:
    shrink it into the object) can close the gap from a noisy start for a few steps (with
    one noise draw and instance seed 1's samples, ``-i`` closed 0.17 of it) but lose
    0.17-0.25 AP from perfect R-CNN boxes, where IoU, GIoU and e/i lose nothing (detection
    seeds 0-3, instance seed 1; benchmarks/README.md, "Per-branch screening's blind spot").
    Off in studies made before it."""

    fit_steps: int | None = None
    """Beyond the paper, the fit test: a candidate that passed g is used to train a
    freshly initialized network of the task (the proxy's model) on the B screening samples
    alone, Adam at ``fit_lr`` for this many steps, and the metric gain on those samples
    must reach ``fit_eta``. It sees what optimizing raw outputs cannot: a network shares
    its weights across outputs. None: the task's choice (``Task.screening_fit_steps``:
    200 for pose, 0 elsewhere), stored resolved in a new study so that a later change of
    the task's choice leaves the study as it ran; 0: off (the paper). Measured on pose
    (benchmarks/README.md, "The fit test"): of 38 proxy-trained losses, g kept 13 of the
    29 that train to 0 AP (some at g = 1.0) and the fit test none (gains 0.12 or less),
    while keeping 7 of the 9 that train (gains 0.44-1.00). Off in studies made before it."""
    fit_lr: float = 5e-3
    """Adam learning rate of the fit test."""
    fit_eta: float = 0.3
    """The metric gain the fit test asks for (metric units, as eta)."""

    def __post_init__(self):
        if self.samples < 1 or self.steps < 1 or self.max_tries < 1:
            raise ConfigError("screening.samples, .steps and .max_tries must be >= 1")
        if self.fit_steps is not None and (not isinstance(self.fit_steps, int)
                                           or isinstance(self.fit_steps, bool)
                                           or not 0 <= self.fit_steps <= 10**6):
            raise ConfigError("screening.fit_steps must be an integer in 0..1000000, "
                              f"got {self.fit_steps!r}")
        if not 0 < self.fit_lr <= 10:  # nan fails too
            raise ConfigError(f"screening.fit_lr must be in (0, 10], got {self.fit_lr!r}")
        if not -1e6 <= self.fit_eta <= 1e6:
            raise ConfigError(f"screening.fit_eta must be a finite number, got {self.fit_eta!r}")
        if self.lr <= 0:
            raise ConfigError("screening.lr must be > 0")
        if not -1e6 <= self.eta <= 1e6:  # finite: nan would accept every candidate
            raise ConfigError(f"screening.eta must be a finite number, got {self.eta!r}")
        if not -1e6 <= self.branch_eta <= 1e6:
            raise ConfigError("screening.branch_eta must be a finite number, "
                              f"got {self.branch_eta!r}")
        if not 0 <= self.branch_hold <= 1:  # nan fails too
            raise ConfigError("screening.branch_hold must be in [0, 1], "
                              f"got {self.branch_hold!r}")
        if not 0 <= self.branch_min_gap <= 1:  # nan fails too
            raise ConfigError("screening.branch_min_gap must be in [0, 1], "
                              f"got {self.branch_min_gap!r}")


@dataclass
class EquivalenceConfig:
    """Duplicate detection: the normal form (free), then the gradient fingerprint (cheap)."""

    enabled: bool = True
    digits: int = 2
    """Significant digits of each gradient norm in the fingerprint."""

    def __post_init__(self):
        if not 1 <= self.digits <= 8:
            raise ConfigError("equivalence.digits must be in 1..8")


@dataclass
class EvaluationConfig:
    stop_on_invalid: bool = True
    """Stop proxy training at the first NaN/Inf loss value (the candidate scores worst)."""
    timeout: float = 0.0
    """Seconds one proxy training may take before it is killed and marked failed (0: none)."""
    retries: int = 2
    """Re-runs of an evaluation whose worker died before it is marked failed."""
    ahead: int = 1
    """Candidates made ahead of a free worker, so that workers never wait for the driver
    to screen the next one (the child is then made before the latest result is in, as
    with any asynchronous evolution)."""
    common_seed: bool = False
    """Train every candidate with the same seed (derived from the master seed): same
    initial weights and batch order, so proxy scores differ only by the loss (common
    random numbers). Off: each proxy training draws its own seed, as the paper implies;
    then seed-to-seed noise adds to every score (segmentation's 300-step proxy: CE
    scored 0.19-0.24 mIoU depending on the seed)."""

    def __post_init__(self):
        if not (self.timeout >= 0 and self.retries >= 0 and self.ahead >= 0):  # nan too
            raise ConfigError("evaluation.timeout, .retries and .ahead must be >= 0")


RUNG_KEYS = {"schedule", "seeds", "top"}


@dataclass
class FidelityConfig:
    """Multi-fidelity evaluation: rungs above the proxy (rung 0, one proxy training).

    Each rung is a table ``{schedule = "proxy" | "full", seeds = N, top = F}``: a loss
    that sits in the top fraction F of the losses that completed the rung below is
    promoted (the ASHA rule, asynchronously, as workers free up) and trained until it has
    N trainings of that schedule (``proxy``: more seeds of the proxy, its score the mean
    of them all; ``full``: the task's full schedule, scored on the validation split).
    Empty (the default): every loss gets one proxy training, as in the paper."""

    rungs: list = field(default_factory=list)

    def __post_init__(self):
        seeds = {"proxy": 1, "full": 0}
        for i, rung in enumerate(self.rungs, 1):
            if not isinstance(rung, dict) or set(rung) - RUNG_KEYS:
                raise ConfigError(f"fidelity.rungs[{i}]: a table with keys "
                                  f"{', '.join(sorted(RUNG_KEYS))}")
            schedule = rung.get("schedule", "proxy")
            n, top = rung.get("seeds"), rung.get("top")
            if schedule not in ("proxy", "full"):
                raise ConfigError(f"fidelity.rungs[{i}].schedule must be 'proxy' or 'full'")
            if not isinstance(n, int) or isinstance(n, bool) or n <= seeds[schedule]:
                raise ConfigError(f"fidelity.rungs[{i}].seeds must be an integer above the "
                                  f"rung below ({seeds[schedule]} {schedule} trainings)")
            if not isinstance(top, (int, float)) or isinstance(top, bool) \
                    or not 0.0 < float(top) <= 1.0:
                raise ConfigError(f"fidelity.rungs[{i}].top must be in (0, 1]")
            if schedule == "proxy" and seeds["full"]:
                raise ConfigError(f"fidelity.rungs[{i}]: proxy rungs come before full ones")
            seeds[schedule] = n
            rung.setdefault("schedule", schedule)


@dataclass
class ConfirmConfig:
    """Confirmation at the end of a search: the top losses re-trained with the full
    schedule over several seeds, scored on the validation split, ranked by that."""

    top: int = 0
    """How many losses (0: no confirmation; ``autoloss-zero confirm`` does it later)."""
    seeds: int = 2
    """Full-schedule trainings per confirmed loss (ones made by fidelity rungs count)."""
    max_seeds: int = 0
    """Racing (0: off): after ``seeds``, the leader and every confirmed loss of the top
    whose mean is within one standard error of the difference of the leader's get one
    more training each, again and again, up to ``max_seeds`` trainings per loss (see
    ``racing.py``)."""

    def __post_init__(self):
        if self.top < 0 or self.seeds < 1:
            raise ConfigError("confirm.top must be >= 0 and confirm.seeds >= 1")
        if self.max_seeds and self.max_seeds < self.seeds:
            raise ConfigError(f"confirm.max_seeds ({self.max_seeds}) must be 0 (no racing) "
                              f"or >= confirm.seeds ({self.seeds})")


ADDED_LATER: dict[tuple[str, str], Any] = {
    ("confirm", "max_seeds"): 0,  # 2026-12-02; no racing before
    ("screening", "per_branch"): False,  # 2026-12-01; screening was whole-loss before
    ("screening", "fit_steps"): 0,  # 2026-12-01 (later); no fit test before
    ("screening", "branch_hold"): 0.0,  # 2026-12-04 (later); no test from perfect outputs
    ("screening", "branch_min_gap"): 0.0,  # 2026-12-04; branches tested from the network's
                                           # outputs only
}
"""Config fields added after studies were made, with the value those studies ran with."""


@dataclass
class SearchConfig:
    seed: int = 0
    """The master seed: every random choice of the search derives from it."""
    population: PopulationConfig = field(default_factory=PopulationConfig)
    mutation: MutationConfig = field(default_factory=MutationConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    equivalence: EquivalenceConfig = field(default_factory=EquivalenceConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    operators: list = field(default_factory=lambda: list(DEFAULT_NAMES))
    """Names of the operators searched over."""
    operator_modules: list = field(default_factory=list)
    """Modules imported (on every worker) to register user operators first."""
    strategy: str = "evolution"
    """``evolution`` (the paper) or ``random``: every candidate is a fresh random loss
    (random search, a baseline of the paper's Table 7; screening still applies)."""
    offspring_branches: str = "one"
    """Multi-branch losses: ``one`` searched branch (drawn uniformly) or ``all`` mutate."""
    fixed: dict = field(default_factory=dict)
    """Branches kept fixed: ``{branch: formula or baseline id}``."""
    task_options: dict = field(default_factory=dict)
    """Options passed to the task's constructor."""

    def __post_init__(self):
        _check_search_fields(self)
        if self.strategy not in ("evolution", "random"):
            raise ConfigError("strategy must be 'evolution' or 'random'")
        if self.offspring_branches not in ("one", "all"):
            raise ConfigError("offspring_branches must be 'one' or 'all'")
        if not self.operators:
            raise ConfigError("operators must not be empty")

    def operator_set(self) -> OperatorSet:
        """The operators searched over, after importing ``operator_modules`` (which
        register the user operators among them)."""
        return get_operators(self.operators, self.operator_modules)

    # -- (de)serialization ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        return _build(cls, data, "")

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> SearchConfig:
        """The config stored in a study: a field added after the study was made takes the
        value that reproduces how the study ran (:data:`ADDED_LATER`), not today's
        default."""
        if not isinstance(data, dict):
            return cls.from_dict(data)  # the one-line error
        data = dict(data)
        for (section, key), old in ADDED_LATER.items():
            table = data.get(section)
            if isinstance(table, dict) and key not in table:
                data[section] = {**table, key: old}
        return cls.from_dict(data)

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchConfig:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        return cls.from_dict(data)


def _build(cls, data: Any, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in [{prefix.rstrip('.')}]" if prefix else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(_short_key(k) for k in unknown[:5])}{where} "
            f"(known: {', '.join(fields)})"
        )
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.")
            continue
        kwargs[name] = _coerce(value, default, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def _coerce(value, default, name):
    _check_number(value, name)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {_short(value)}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is None or isinstance(value, type(default)):
        if isinstance(default, int) and isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {_short(value)}")
        return value
    raise ConfigError(f"{name}: expected {type(default).__name__}, got {_short(value)}")


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two config dicts (``key: stored -> given``)."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict) and key not in ("fixed", "task_options",
                                                                          "weights"):
            out += config_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {json.dumps(va)} (stored) != {json.dumps(vb)} (given)")
    return out


# ---------------------------------------------------------------------------
# Value checks shared by every section (hostile or careless configs fail here, clearly)

MAX_SEED = 2**63 - 1
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _short_key(key: str) -> str:
    return key if len(key) <= 60 else _short(key)


def _short(value) -> str:
    from ..textutil import show

    return show(value, 60)


def _check_number(value, name: str) -> None:
    """Every number of a config is finite and fits in 64 bits (``nan`` is no threshold)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SEED:
        raise ConfigError(f"{name}: {_short(value)} is out of range")


def _check_search_fields(cfg) -> None:
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or \
            not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed: expected an integer in 0..2**63-1, got {_short(cfg.seed)}")
    for name in ("operators", "operator_modules"):
        value = getattr(cfg, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of names, got {_short(value)}")
    bad = [m for m in cfg.operator_modules if not _MODULE_NAME.match(m)]
    if bad:
        raise ConfigError(f"operator_modules: {_short(bad[0])} is not a module name")
    if not isinstance(cfg.fixed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in cfg.fixed.items()):
        raise ConfigError(f"fixed: expected {{branch: formula or baseline id}}, got "
                          f"{_short(cfg.fixed)}")
    if not isinstance(cfg.task_options, dict):
        raise ConfigError(f"task_options: expected a table, got {_short(cfg.task_options)}")
    for key, value in cfg.task_options.items():
        _check_number(value, f"task_options.{key}")
