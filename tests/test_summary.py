"""results/summary.json (issue 13): the labelled confirmations written by
``autoloss-zero compare --json`` enter it on the metric their study searched."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Study

pytestmark = pytest.mark.timeout(60)
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def summary(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("summary")


def row(loss, means, formula=None):
    return {"loss": loss, "formula": formula,
            "metrics": {m: {"mean": v, "std": 0.01, "values": [v - 0.01, v, v + 0.01]}
                        for m, v in means.items()}}


def test_compare_json_enters_on_its_study_metric(summary, tmp_path, monkeypatch):
    study = tmp_path / "s.db"
    Study(study, meta={"task": "segmentation", "metric": "macc",
                       "config": SearchConfig().to_dict()}).close()
    (tmp_path / "c.json").write_text(json.dumps({
        "task": "segmentation", "variant": "default", "schedule": "full", "seeds": 3,
        "metrics": ["miou", "macc"],
        "losses": [row("ce", {"miou": 0.52, "macc": 0.66}),
                   row(f"study:{study}#1", {"miou": 0.50, "macc": 0.70}, "Neg(Log(yhat))"),
                   row(f"study:{tmp_path / 'gone.db'}#1", {"miou": 0.1, "macc": 0.1})]}))
    (tmp_path / "other.json").write_text(json.dumps({"losses": []}))  # foreign: skipped
    out = tmp_path / "summary.json"
    monkeypatch.setattr("sys.argv", ["summary.py", "--results", str(tmp_path),
                                     "--out", str(out)])
    summary.main()
    (e,) = json.loads(out.read_text())["entries"]  # the missing study's row is left out
    assert e["metric"] == "macc" and e["formula"] == "Neg(Log(yhat))"
    assert e["searched"] == {"mean": 0.70, "std": 0.01, "seeds": 3}
    assert e["baselines"] == {"ce": {"mean": 0.66, "std": 0.01, "seeds": 3}}
    assert e["setting"].startswith("labelled:") and e["link"].endswith("README.md")
