"""The Table 4 report (benchmarks/table4.py): each row names every branch's loss, a
whole-loss baseline split into its branches and a per-branch mix read branch by branch."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def table4(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("table4")


def test_branch_losses(table4):
    shown, formulas = table4.branch_losses("ce+giou")
    assert shown == {"cls_rpn": "ce", "reg_rpn": "giou", "cls_rcnn": "ce", "reg_rcnn": "giou"}
    assert formulas == {}
    shown, formulas = table4.branch_losses(
        "cls_rpn=ce; reg_rpn=l1; cls_rcnn=Sqrt(Inv(yhat)); reg_rcnn=giou")
    assert shown == {"cls_rpn": "ce", "reg_rpn": "l1", "cls_rcnn": "searched", "reg_rcnn": "giou"}
    assert formulas == {"cls_rcnn": "Sqrt(Inv(yhat))"}


def test_report(table4, tmp_path, monkeypatch, capsys):
    stats = {"mean": 0.5, "std": 0.01, "values": [0.49, 0.51]}
    rep = {"seeds": 2, "losses": [
        {"loss": "ce+l1", "metrics": {"map": stats, "map50": stats}},
        {"loss": "cls_rpn=ce; reg_rpn=l1; cls_rcnn=ce; reg_rcnn=Neg(i)",
         "metrics": {"map": {**stats, "mean": 0.25}, "map50": stats}}]}
    path = tmp_path / "t4.json"
    path.write_text(json.dumps(rep))
    monkeypatch.setattr("sys.argv", ["table4.py", str(path)])
    table4.main()
    out = capsys.readouterr().out
    assert "| ce | l1 | ce | l1 | 50.0 ± 1.0 | 50.0 ± 1.0 |" in out
    assert "| ce | l1 | ce | searched | 25.0 ± 1.0 | 50.0 ± 1.0 |" in out
    assert "- reg_rcnn: `Neg(i)`" in out
