"""Searching several loss branches at once on detection, and fixing some of them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import autoloss_zero as az
from autoloss_zero.errors import ConfigError
from autoloss_zero.search.study import STARTED
from autoloss_zero.tasks.base import tree_map
from conftest import cli, load_module, np_loss, one_line_error, tiny_config

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


def _one_batch(task):
    """Raw outputs and targets of two real images as the training step gives them (the
    screening batch's sample dim merged into the image dim)."""
    batch = task.screening_batch(2, seed=0)

    def merge(t):
        t = t.flatten(0, 1)
        return t.double() if t.is_floating_point() else t

    return tuple(tree_map(merge, x) for x in (batch.raw, batch.target))


def _encode(boxes, ref):
    """Faster R-CNN's regression targets with unit weights (the RPN's), written out."""
    rw, rh = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    dx = (boxes[..., 0] + bw / 2 - ref[..., 0] - rw / 2) / rw
    dy = (boxes[..., 1] + bh / 2 - ref[..., 1] - rh / 2) / rh
    return torch.stack((dx, dy, torch.log(bw / rw), torch.log(bh / rh)), -1)


def test_fixed_branches_never_change(tmp_path):
    """Fixed branches stay as given in every candidate; ``load_loss`` of the study, called on
    real outputs, is the sum of the fixed baselines (binary CE on the objectness logits, L1
    on the RPN deltas, computed here from their definitions) and the searched formula
    (evaluated by conftest's numpy interpreter); the standalone Python export is refused
    with the reason, since baseline branches need the task's internals."""
    cfg = tiny_config()
    cfg.population.initial = 2
    cfg.task_options = dict(TINY)
    cfg.fixed = {"cls_rpn": "ce", "reg_rpn": "l1", "cls_rcnn": CE}
    study = tmp_path / "f.db"
    with az.search("detection", "map", 3, study, cfg, workers=1) as r:
        rows = [c for c in r.candidates() if c.status != "rejected"]
        task = az.get_task("detection", **TINY)
        leaves = {b: v for b, v in task.leaf_spec().items() if b in ("cls_rcnn", "reg_rcnn")}
        for c in rows:
            loss = az.parse(c.formula, leaves=leaves)
            assert loss.names == ("cls_rcnn", "reg_rcnn")
            assert str(loss["cls_rcnn"]) == CE
        assert r.counts()["failed"] == 0
        best = az.parse(r.leaderboard(1)[0].formula, leaves=leaves)
    module = az.load_loss(study)
    assert set(module.fixed) == {"cls_rpn", "reg_rpn"}
    raw, target = _one_batch(task)
    p = target["rpn_gt"].shape[-2]
    ce_rpn = F.binary_cross_entropy_with_logits(raw["rpn_logits"], target["rpn_labels"].double())
    l1_rpn = (raw["rpn_deltas"][:, :p] - _encode(target["rpn_gt"], target["anchors"][:, :p]))
    inputs = task.branch_inputs(raw, target)
    searched = sum(np_loss(best[b], {k: v.numpy() for k, v in inputs[b].items()})
                   for b in ("cls_rcnn", "reg_rcnn"))
    want = float(ce_rpn) + float(l1_rpn.abs().mean()) + searched
    assert float(module(raw, target)) == pytest.approx(want, rel=1e-6)
    line = one_line_error(cli("export", study, "--format", "python"))
    assert "cls_rpn, reg_rpn" in line and "cannot be exported standalone" in line
    cfg.fixed = {"reg_rpn": "l2"}
    with pytest.raises(ValueError, match="no baseline 'l2' for branch 'reg_rpn'"):
        az.search("detection", "map", 1, tmp_path / "g.db", cfg, workers=1)
    assert not (tmp_path / "g.db").exists()  # nothing written for a bad option


def test_python_export_with_branches_fixed_to_formulas(tmp_path):
    """Branches fixed to formulas (not baselines) export standalone: the file's module,
    given the task's leaves, equals ``load_loss`` on the raw outputs and the numpy
    interpreter's value of the whole four-branch formula."""
    cfg = tiny_config()
    cfg.population.initial = 2
    cfg.task_options = dict(TINY)
    cfg.fixed = {"cls_rpn": CE, "reg_rpn": GIOU}
    study = tmp_path / "x.db"
    az.search("detection", "map", 2, study, cfg, workers=1).close()
    py = tmp_path / "loss.py"
    out = cli("export", study, "--format", "python", "-o", py)
    assert out.returncode == 0, out.stderr
    exported = load_module(py).SearchedLoss()
    task = az.get_task("detection", **TINY)
    formula = json.loads(cli("export", study, "--format", "json").stdout)["formula"]
    loss = az.parse(formula, leaves=task.leaf_spec())
    assert str(loss["cls_rpn"]) == CE and str(loss["reg_rpn"]) == GIOU
    raw, target = _one_batch(task)
    inputs = task.branch_inputs(raw, target)
    want = sum(np_loss(loss[b], {k: v.numpy() for k, v in inputs[b].items()})
               for b in loss.names)
    assert float(exported(inputs)) == pytest.approx(want, rel=1e-6)
    assert float(az.load_loss(study)(raw, target)) == pytest.approx(want, rel=1e-6)


def test_compare_takes_per_branch_mixes():
    """The paper's Table 4 rows mix handcrafted and searched branches: a baseline id or a
    formula per branch, every branch once."""
    from autoloss_zero.compare import compare
    from autoloss_zero.tasks.base import TaskError

    mix = f"cls_rpn=ce; reg_rpn=l1; cls_rcnn={CE}; reg_rcnn=giou"
    res = compare("detection", [mix, "cls_rpn=ce; reg_rpn=l1; cls_rcnn=ce; reg_rcnn=giou"],
                  seeds=1, schedule="proxy", workers=1, task_options=dict(TINY))
    rows = res.summary()
    assert [r["runs"] for r in rows] == [1, 1] and not rows[0]["failed"] and not rows[1]["failed"]
    assert rows[0]["formula"] == f"cls_rcnn: {CE}" and rows[1]["formula"] == ""
    task = az.get_task("detection", **TINY)
    with pytest.raises(TaskError, match="no loss for branch"):
        compare(task, ["cls_rpn=ce; reg_rpn=l1"], seeds=1, schedule="proxy")


# -- screening branch by branch (screening.per_branch) -----------------------------------
# Found by the paper's whole-loss test on random detection losses (g 0.33 >= eta): a
# working cls_rcnn beside a dead cls_rpn and box branches that shrink the boxes; it
# trained to 0 mAP (benchmarks/results/screening-validity-detection-map.json).
DEAD_RPN = ("cls_rpn: Add(Neg(Add(y, y)), Log(Neg(yhat))); reg_rpn: Exp(Square(Log(e))); "
            "cls_rcnn: Mul(MinPool3x3(Tanh(y)), Mul(Neg(yhat), MaxPool3x3(yhat))); "
            "reg_rcnn: Square(Sqrt(Tanh(u)))")


def _screener(task, metric="map", **screening):
    from autoloss_zero.search.config import SearchConfig
    from autoloss_zero.search.rejection import Screener
    return Screener.from_config(task, metric, SearchConfig.from_dict({"screening": screening}))


@pytest.mark.parametrize("name", ["detection", "instance-segmentation"])
def test_perfect_outputs_score_high_and_keep_shapes(name):
    """Not 1: several positive anchors / RoIs match each object, and the screening metric
    scores them before NMS, so all but one count as duplicates."""
    task = az.get_task(name, **TINY)
    batch = task.screening_batch(3, seed=0)
    perfect = task.perfect_raw(batch.raw, batch.target)
    assert {k: v.shape for k, v in perfect.items()} == {k: v.shape for k, v in batch.raw.items()}
    before = task.sample_metric(batch.raw, batch.target, "map")
    after = task.sample_metric(perfect, batch.target, "map")
    assert float(after.min()) > 0.75 and float(after.mean()) > float(before.mean()) + 0.5


def test_each_branch_is_screened_alone_with_the_others_perfect():
    """CE and GIoU branches each close a good part of the gap to the perfect outputs; the
    paper's whole-loss test accepts DEAD_RPN, the per-branch test rejects its cls_rpn and
    its box branches and keeps its working cls_rcnn; an anti-loss branch is rejected."""
    task = az.get_task("detection", **TINY)
    scr = _screener(task)
    assert scr.per_branch
    good = task.as_task_loss(f"cls_rpn: {CE}; reg_rpn: {GIOU}; cls_rcnn: {CE}; reg_rcnn: {GIOU}")
    for b in good.names:
        res = scr.screen_branch(good, b)
        assert res.accepted and res.g > 0.1, (b, res)
    dead = task.as_task_loss(DEAD_RPN)
    assert scr.screen(dead).accepted  # the whole-loss g alone does not see it
    verdicts = {b: scr.screen_branch(dead, b) for b in dead.names}
    assert verdicts["cls_rcnn"].accepted
    for b in ("cls_rpn", "reg_rpn", "reg_rcnn"):
        assert not verdicts[b].accepted and "of the gap to perfect outputs" in verdicts[b].reason
    anti = good.replace("cls_rcnn", az.parse(f"Neg({CE})"))
    assert not scr.screen_branch(anti, "cls_rcnn").accepted
    assert not _screener(task, per_branch=False).per_branch
    # one branch: no per-branch test
    assert not _screener(az.get_task("classification"), "accuracy").per_branch


def test_a_branch_whose_network_outputs_are_already_perfect_is_still_tested():
    """Detection seed 1's screening samples gave the R-CNN box branch a gap of 0 (the
    network's deltas ~0, the frozen RoIs holding the ground-truth boxes): every box loss
    passed untested. Made here by giving the network's R-CNN deltas their perfect values:
    a branch is then tested from a start moved by noise, where degenerate box losses
    (growing the intersection without bound, shrinking the enclosing box) fail and the
    IoU losses pass; with branch_min_gap = 0 (studies made before it) there is no verdict."""
    task = az.get_task("detection", **TINY)
    scr, old = _screener(task), _screener(task, branch_min_gap=0.0)
    gen = torch.Generator().manual_seed(0)
    for s in (scr, old):  # perfect up to 1e-4 (as a random network's ~0 deltas on GT RoIs)
        d = s._perfect()["rcnn_deltas"]
        s.raw0 = {**s.raw0, "rcnn_deltas": d + 1e-4 * torch.randn(d.shape, generator=gen)}
    head = f"cls_rpn: {CE}; reg_rpn: {GIOU}; cls_rcnn: {CE}; reg_rcnn: "
    for box in (GIOU, "Add(1, Neg(Mul(i, Inv(u))))", "Mul(e, Inv(i))"):
        res = scr.screen_branch(task.as_task_loss(head + box), "reg_rcnn")
        assert res.accepted and res.g > 0.3, (box, res)
    for box in ("Neg(i)", "Inv(i)", "Square(Tanh(e))", "Square(u)"):
        loss = task.as_task_loss(head + box)
        res = scr.screen_branch(loss, "reg_rcnn")
        assert not res.accepted and "of the gap to perfect outputs" in res.reason, (box, res)
        untested = old.screen_branch(loss, "reg_rcnn")
        assert untested.accepted and untested.g is None
    with pytest.raises(ConfigError, match="branch_min_gap"):
        _screener(task, branch_min_gap=-0.1)


def test_a_branch_must_hold_the_perfect_outputs():
    """From boxes smaller than their objects (and from a start moved by noise, asked for
    here by a high branch_min_gap), growing the intersection without bound (``Neg(i)``,
    ``Inv(i)``) closes part of the gap in the protocol's steps; minimized from perfect
    boxes it moves them away, so branch_hold rejects it, while GIoU keeps them."""
    task = az.get_task("detection", **TINY)
    head = f"cls_rpn: {CE}; reg_rpn: {GIOU}; cls_rcnn: {CE}; reg_rcnn: "
    verdicts = {}
    for hold in (0.0, 0.1):
        scr = _screener(task, branch_min_gap=0.8, branch_hold=hold)
        deltas = scr._perfect()["rcnn_deltas"].clone()
        deltas[..., 2:] -= 2  # every box smaller than its object, same centre
        scr.raw0 = {**scr.raw0, "rcnn_deltas": deltas}
        for box in (GIOU, "Neg(i)", "Inv(i)"):
            verdicts[hold, box] = scr.screen_branch(task.as_task_loss(head + box), "reg_rcnn")
    assert all(v.accepted and v.g > 0.1 for (hold, _), v in verdicts.items() if hold == 0.0)
    assert verdicts[0.1, GIOU].accepted
    for box in ("Neg(i)", "Inv(i)"):
        assert not verdicts[0.1, box].accepted
        assert "minimized from perfect outputs loses" in verdicts[0.1, box].reason


def test_search_from_scratch_keeps_only_losses_whose_every_branch_works(tmp_path):
    """Every candidate a detection search trains passed the per-branch test (recomputed
    here on the search's own samples); rejected draws name the failing branch."""
    cfg = tiny_config()
    cfg.population.initial = 3
    cfg.task_options = dict(TINY)
    with az.search("detection", "map", 3, tmp_path / "b.db", cfg, workers=1) as r:
        started = [c for c in r.candidates() if c.status in STARTED]
        reasons = [c.reason for c in r.candidates() if c.status == "rejected"]
    assert len(started) == 3
    assert any("of the gap to perfect outputs" in (x or "") for x in reasons)
    task = az.get_task("detection", **TINY)
    from autoloss_zero.search.rejection import Screener
    scr = Screener.from_config(task, "map", cfg)
    for c in started:
        loss = task.as_task_loss(c.formula)
        assert all(scr.screen_branch(loss, b).accepted for b in loss.names), c.formula


def test_studies_made_before_the_per_branch_test_resume_without_it():
    from autoloss_zero.search.config import SearchConfig
    stored = SearchConfig().to_dict()
    del stored["screening"]["per_branch"]
    del stored["screening"]["branch_min_gap"]  # nor the noisy start (2026-12-04)
    del stored["screening"]["branch_hold"]  # nor the test from perfect outputs
    old = SearchConfig.from_stored(stored).screening
    assert old.per_branch is False and old.branch_min_gap == 0.0 and old.branch_hold == 0.0
    new = SearchConfig.from_dict(stored).screening  # a new config
    assert new.per_branch is True and new.branch_min_gap == 0.1 and new.branch_hold == 0.1
    with pytest.raises(ValueError, match="branch_eta: expected a finite number"):
        SearchConfig.from_dict({"screening": {"branch_eta": float("nan")}})


def test_check_reports_each_branch_as_the_search_screens_it():
    good = check(f"cls_rpn: {CE}; reg_rpn: {GIOU}; cls_rcnn: {CE}; reg_rcnn: {GIOU}")
    assert good["accepted"] and set(good["branches"]) == {"cls_rpn", "reg_rpn", "cls_rcnn",
                                                          "reg_rcnn"}
    assert all(b["accepted"] and b["closed"] > good["branch_eta"]
               for b in good["branches"].values())
    dead = check(DEAD_RPN)
    assert dead["score"] >= dead["eta"] and not dead["accepted"]  # g alone would accept
    assert dead["branches"]["cls_rcnn"]["accepted"]
    assert not dead["branches"]["cls_rpn"]["accepted"]
    assert dead["reason"].startswith("branch cls_rpn closes")


def test_an_old_study_resumes_with_the_same_config_file_after_the_upgrade(tmp_path):
    """A study whose stored config predates screening.per_branch resumes with the TOML it
    was made with (per_branch then at today's default) and keeps running without the
    test; a config that asks for something else is refused, naming the field."""
    import sqlite3

    from autoloss_zero.errors import StudyError
    from autoloss_zero.search.resolve import check_same_search, resolve_config
    cfg = tiny_config()
    study = tmp_path / "old.db"
    az.search("classification", "accuracy", 1, study, cfg, workers=1).close()
    with sqlite3.connect(study) as con:  # make it look like a study of the old version
        (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        old = json.loads(text)
        del old["screening"]["per_branch"]
        con.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(old),))
    res = resolve_config(study, cfg)
    assert res.config.screening.per_branch is False
    task = az.get_task("classification", **cfg.task_options)
    check_same_search(study, res.meta, "classification", task.config, "accuracy", cfg)
    cfg.screening.branch_eta = 0.2  # a change, not a new default: still compared
    with pytest.raises(StudyError, match="branch_eta"):
        check_same_search(study, res.meta, "classification", task.config, "accuracy", cfg)
    cfg.screening.branch_eta = 0.05
    with az.search("classification", "accuracy", 2, study, cfg, workers=1) as r:
        assert r.counts()["evaluated"] == 2


def test_branch_recombination_takes_one_whole_branch_from_the_second_parent():
    """``recombination = {branch = 1}``: a child is its first parent with one searched
    branch replaced by that branch of the second parent; fixed branches stay fixed."""
    from autoloss_zero.search.candidates import CandidateMaker
    from autoloss_zero.search.config import SearchConfig

    task = az.get_task("detection", **TINY)
    cfg = SearchConfig.from_dict({"mutation": {"recombine": 1.0,
                                               "recombination": {"branch": 1.0}},
                                  "fixed": {"reg_rpn": "l1"}})
    maker = CandidateMaker.from_config(task, cfg)
    rng = np.random.default_rng(0)
    a, _ = maker.random(rng)
    b, _ = maker.random(rng)
    searched = ("cls_rpn", "cls_rcnn", "reg_rcnn")
    assert a.names == b.names == searched
    taken = set()
    for _ in range(30):
        child, label = maker.child(rng, a, "recombine", b)
        branch, how = label.split(":")
        assert how == "branch" and branch in searched
        taken.add(branch)
        for name in searched:
            want = b[name] if name == branch else a[name]
            assert str(child[name]) == str(want)
    assert taken == set(searched)


def test_branch_recombination_in_a_detection_search(tmp_path):
    cfg = tiny_config()
    cfg.population.initial = 3
    cfg.task_options = dict(TINY)
    cfg.mutation.recombine = 0.5
    cfg.mutation.recombination = {"branch": 1.0}
    with az.search("detection", "map", 7, tmp_path / "r.db", cfg, workers=1) as r:
        rows = {c.id: c for c in r.candidates()}
    made = [c for c in rows.values() if ":branch with #" in (c.mutation or "")]
    assert made
    spec = az.get_task("detection").leaf_spec()
    for c in made:
        branch = c.mutation.split(":")[0]
        other = rows[int(c.mutation.rsplit("#", 1)[1])]
        child, parent = (az.parse(x.formula, leaves=spec) for x in (c, rows[c.parent]))
        second = az.parse(other.formula, leaves=spec)
        assert str(child[branch]) == str(second[branch])
        assert all(str(child[n]) == str(parent[n]) for n in child.names if n != branch)
