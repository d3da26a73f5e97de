"""Shared helpers: tiny, real configurations (real training, real SQLite, real processes)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from autoloss_zero.search.config import SearchConfig

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


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


def load_module(path, name="exported_loss"):
    """Import a generated Python file (an exported loss)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
