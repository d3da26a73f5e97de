"""The initial-signal report (issue 13): which initial members of a study train at all,
when the first signal came, and the K that makes one likely."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Candidate, Study

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def sig(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("initial_signal")


def _study(path, scores, parents, seed=0):
    cfg = SearchConfig().to_dict()
    cfg["seed"] = seed
    s = Study(path, meta={"task": "classification", "metric": "accuracy", "config": cfg})
    rows = [Candidate(id=1, step=0, formula="y", normal="y", status="rejected")]
    for i, (score, parent) in enumerate(zip(scores, parents), 2):
        rows.append(Candidate(id=i, step=i, formula=f"f{i}", normal=f"f{i}",
                              status="evaluated", score=score, parent=parent))
    s.insert(rows)
    s.close()
    return path


def test_initial_members_first_signal_and_pooling(sig, tmp_path):
    a = _study(tmp_path / "a.db", [0.0, 0.2, 0.001, 0.5], [None, None, 3, 3])
    b = _study(tmp_path / "b.db", [0.0, 0.0, 0.0, 0.3], [None, None, 2, 4], seed=1)
    ra, rb = sig.study_row(a, 0.01), sig.study_row(b, 0.01)
    assert (ra["initial_trained"], ra["initial_with_signal"], ra["first_signal_at"]) == (2, 1, 2)
    assert (rb["initial_with_signal"], rb["first_signal_at"], rb["best"]) == (0, 4, 0.3)
    pooled = sig.pooled([ra, rb])
    assert (pooled["with_signal"], pooled["trained"], pooled["p"]) == (1, 4, 0.25)
    assert pooled["none_in_20"] == pytest.approx(0.75 ** 20)
    # the smallest K with a 95% chance of at least one member with a signal
    k = pooled["K_for_95"]
    assert 1 - 0.75 ** k >= 0.95 > 1 - 0.75 ** (k - 1)
    lo, hi = pooled["p_95"]
    assert 0 < lo < 0.25 < hi < 1
    assert sig.k_needed(0.0, 0.9) is None


def test_cli_writes_both_files(sig, tmp_path, monkeypatch, capsys):
    a = _study(tmp_path / "a.db", [0.0, 0.2], [None, None])
    out = tmp_path / "rep"
    monkeypatch.setattr("sys.argv", ["initial_signal.py", str(a), "--out", str(out)])
    sig.main()
    assert "1 / 2" in out.with_suffix(".md").read_text()
    assert '"with_signal": 1' in out.with_suffix(".json").read_text()
