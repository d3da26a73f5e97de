"""Shared helpers: tiny, real configurations (real training, real SQLite, real processes)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from autoloss_zero.search.config import SearchConfig

torch.set_num_threads(1)

# -- Hypothesis profiles ----------------------------------------------------------------
# "ci" (the default, what `pytest` and CI run): bounded example counts and derandomized, so
# a run is fast and every run tests the same examples; no example database, so nothing a
# previous run left in .hypothesis/ changes what is tested; a failure prints its blob.
# "long" (HYPOTHESIS_PROFILE=long python -m pytest ...): 20x the examples from a fresh random
# seed each run (a failure prints the @reproduce_failure blob), for exploring outside CI.
CI_EXAMPLES = 100
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                          deadline=None, print_blob=True)
settings.register_profile("long", max_examples=20 * CI_EXAMPLES, derandomize=False,
                          deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(ci: int) -> int:
    """A test's example count: ``ci`` under the ci profile, scaled like the profile's
    ``max_examples`` under the others (20x under "long")."""
    return max(1, ci * settings.default.max_examples // CI_EXAMPLES)


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


# -- inner deadlines ----------------------------------------------------------------------
# pytest-timeout ends any test after 120 s (pyproject.toml) with a bare stack dump. Every wait
# inside a test has a shorter deadline of its own, so that a slow or stuck run fails with a
# message saying what it was waiting for.
INNER_TIMEOUT = 90.0


class Deadline:
    """One deadline shared by every wait of a test (the waits together stay under it)."""

    def __init__(self, seconds: float = INNER_TIMEOUT):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def wait_for(self, what: str, predicate, poll: float = 0.2):
        """Poll ``predicate`` until it returns something truthy (returned); fail the test
        with ``what`` when the deadline passes first."""
        while True:
            value = predicate()
            if value:
                return value
            if self.expired():
                pytest.fail(f"gave up after {self.seconds:g} s waiting for {what}")
            time.sleep(poll)


def cli(*args, cwd=None, timeout: float = INNER_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``autoloss-zero ARGS`` as a real process; fail clearly if it outlives ``timeout``."""
    cmd = [sys.executable, "-m", "autoloss_zero", *map(str, args)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"'autoloss-zero {' '.join(map(str, args))}' still running after "
                    f"{timeout:.0f} s (killed)")


def one_line_error(out: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one-line message of a CLI run that failed as bad input should (exit 2, no
    traceback)."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def tiny_config(seed: int = 0, **screening) -> SearchConfig:
    """Classification with a few training steps on 200 images: each evaluation < 1 s."""
    cfg = SearchConfig(seed=seed)
    cfg.population.initial = 3
    cfg.task_options = {"proxy_steps": 5, "train_items": 200, "eval_batch": 1000}
    for key, value in screening.items():
        setattr(cfg.screening, key, value)
    return cfg


@pytest.fixture
def examples_on_path(monkeypatch):
    """Make examples/ importable here and in worker processes."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXAMPLES), *sys.path]))
    return EXAMPLES


def train_in_process(evo, row, cfg) -> None:
    """Train a produced classification candidate for real, in this process, and hand the
    result to the evolution (tests that drive ``Evolution`` step by step)."""
    from autoloss_zero.search.worker import make_job, run_job

    evo.complete(run_job(make_job(row.id, "classification", evo.task.config, row.formula,
                                  "accuracy", row.seed, operators=list(cfg.operators))))


def rows_key(reader):
    """Everything deterministic about a study's candidates (no timings, no worker ids)."""
    return [
        (c.id, c.step, c.formula, c.normal, c.status, c.score, c.fingerprint, c.g, c.parent,
         c.mutation, c.seed, c.duplicate_of, c.joined)
        for c in reader.candidates()
    ]


@pytest.fixture
def tests_on_path(monkeypatch):
    """Make tests/user_tasks.py importable here and in worker processes."""
    here = str(ROOT / "tests")
    monkeypatch.syspath_prepend(here)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, *sys.path]))
    return here


@pytest.fixture(scope="module")
def isolated_cache(tmp_path_factory):
    """A fresh dataset cache for one test module (generated data is not shared)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOLOSS_ZERO_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


# -- an independent interpreter of the search space ------------------------------------
# DESIGN.md's semantics (Table 1, eps = 1e-12, Eq. (2)) in plain numpy, written from the
# spec and sharing nothing with expr/compile.py: the reference value of a formula.
NP_EPS = 1e-12


def _np_pool(x, reduce, fill):
    """3x3 window, stride 1, padding 1 that never wins; (N, C) inputs have H = W = 1."""
    if x.ndim < 4:
        return x
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], constant_values=fill)
    h, w = x.shape[-2:]
    windows = [pad[..., i : i + h, j : j + w] for i in range(3) for j in range(3)]
    return reduce(np.stack(windows), axis=0)


def _np_mean(x, axes):
    return np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape)


NP_OPS = {
    "Add": lambda a, b: a + b,
    "Mul": lambda a, b: a * b,
    "Neg": lambda x: -x,
    "Abs": np.abs,
    "Inv": lambda x: 1.0 / (x + NP_EPS),
    "Log": lambda x: np.sign(x) * np.log(np.abs(x) + NP_EPS),
    "Exp": np.exp,
    "Tanh": np.tanh,
    "Square": lambda x: x * x,
    "Sqrt": lambda x: np.sign(x) * np.sqrt(np.abs(x) + NP_EPS),
    "Mean_nhw": lambda x: _np_mean(x, (0, *range(2, x.ndim))),
    "Mean_c": lambda x: _np_mean(x, 1),
    "MaxPool3x3": lambda x: _np_pool(x, np.max, -np.inf),
    "MinPool3x3": lambda x: _np_pool(x, np.min, np.inf),
}


def np_loss(expr, env: dict, extra_ops: dict | None = None) -> float:
    """Eq. (2) of a parsed expression over numpy leaves (N, C[, H, W]): the sum of its
    output over every element, divided by N * H * W."""
    ops = {**NP_OPS, **(extra_ops or {})}
    env = {k: np.asarray(v, dtype=np.float64) for k, v in env.items()}
    shape = np.broadcast_shapes(*(v.shape for v in env.values()))

    def ev(node):
        if isinstance(node, str):
            return np.ones(shape) if node == "1" else np.broadcast_to(env[node], shape)
        return ops[node[0]](*(ev(child) for child in node[1:]))

    with np.errstate(all="ignore"):
        out = ev(expr.node)
        return float(out.sum() / (shape[0] * int(np.prod(shape[2:], dtype=np.int64))))


def load_module(path, name="exported_loss"):
    """Import a generated Python file (an exported loss)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
