"""Searching several loss branches at once on detection, and fixing some of them."""

from __future__ import annotations

import json

import pytest

import autoloss_zero as az
from autoloss_zero.search.study import STARTED
from conftest import cli, tiny_config

CE = "Neg(Mul(y, Log(yhat)))"
GIOU = "Add(Add(1, Neg(Mul(i, Inv(u)))), Mul(Add(e, Neg(u)), Inv(e)))"
SHRINK = "Mul(i, Inv(u))"  # minimizing IoU drives the boxes away from the objects
TINY = {"train_items": 64, "val_items": 16, "proxy_steps": 3, "warmup_steps": 1,
        "batch_size": 4, "eval_batch": 16}


def check(formula, metric="map"):
    out = cli("check", formula, "--task", "detection", "--metric", metric, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_check_accepts_ce_giou_and_rejects_iou_shrinking_losses():
    good = check(f"cls_rpn: {CE}; reg_rpn: {GIOU}; cls_rcnn: {CE}; reg_rcnn: {GIOU}")
    assert good["accepted"] and good["score"] > 0.3
    bad = check(f"cls_rpn: {CE}; reg_rpn: {SHRINK}; cls_rcnn: {CE}; reg_rcnn: {SHRINK}")
    assert not bad["accepted"] and bad["score"] < 0.1


def test_search_over_all_four_branches(tmp_path):
    cfg = tiny_config()
    cfg.population.initial = 2
    cfg.task_options = dict(TINY)
    with az.search("detection", "map", 3, tmp_path / "d.db", cfg, workers=1) as r:
        rows = [c for c in r.candidates() if c.status in STARTED]
        assert len(rows) == 3 and r.counts()["failed"] == 0
        loss = az.parse(rows[0].formula, leaves=az.get_task("detection").leaf_spec())
        assert loss.names == ("cls_rpn", "reg_rpn", "cls_rcnn", "reg_rcnn")
        assert set(rows[0].metrics) == {"map", "map50"}


def test_fixed_branches_never_change(tmp_path):
    cfg = tiny_config()
    cfg.population.initial = 2
    cfg.task_options = dict(TINY)
    cfg.fixed = {"cls_rpn": "ce", "reg_rpn": "l1", "cls_rcnn": CE}
    with az.search("detection", "map", 3, tmp_path / "f.db", cfg, workers=1) as r:
        rows = [c for c in r.candidates() if c.status != "rejected"]
        task = az.get_task("detection")
        leaves = {b: v for b, v in task.leaf_spec().items() if b in ("cls_rcnn", "reg_rcnn")}
        for c in rows:
            loss = az.parse(c.formula, leaves=leaves)
            assert loss.names == ("cls_rcnn", "reg_rcnn")
            assert str(loss["cls_rcnn"]) == CE
        assert r.counts()["failed"] == 0
    module = az.load_loss(tmp_path / "f.db")
    assert set(module.fixed) == {"cls_rpn", "reg_rpn"}
    cfg.fixed = {"reg_rpn": "l2"}
    with pytest.raises(ValueError, match="no baseline 'l2' for branch 'reg_rpn'"):
        az.search("detection", "map", 1, tmp_path / "g.db", cfg, workers=1)
    assert not (tmp_path / "g.db").exists()  # nothing written for a bad option
