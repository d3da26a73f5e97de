"""The command line, run as a real process."""

from __future__ import annotations

import json

import pytest
import torch

import autoloss_zero as az
from conftest import cli, load_module, one_line_error

TINY_TOML = """
seed = 0
[population]
initial = 3
[task_options]
proxy_steps = 5
train_items = 200
eval_batch = 1000
"""


@pytest.mark.parametrize("args, words", [
    (["check", "Foo(y)", "--task", "classification"], "unknown operator 'Foo'"),
    (["check", "Log(", "--task", "classification"], "position 4"),
    (["check", "y", "--task", "nope"], "unknown task 'nope'"),
    (["check", "y", "--task", "classification", "--metric", "miou"], "unknown metric 'miou'"),
    (["check", "y", "--task", "no.such.module:Task"], "cannot import task module"),
    (["search", "--task", "classification", "--budget", "2"], "Missing option '--study'"),
    (["search", "--task", "classification", "--budget", "x", "--study", "s.db"], "--budget"),
    (["search", "--task", "classification", "--budget", "2", "--study", "s.db",
      "--fix", "nobranch"], "BRANCH=LOSS"),
    (["search", "--task", "classification", "--budget", "2", "--study", "s.db",
      "--engine", "spark"], "--engine"),
    (["show", "missing.db"], "no study"),
    (["export", "missing.db", "--format", "pdf"], "--format"),
    (["export", "missing.db", "--format", "latex"], "no study"),
    (["plot", "missing.db", "-o", "p.png"], "no study"),
    (["plot", "-o", "p.png"], "Missing argument"),
    (["plot", "missing.db"], "Missing option '-o'"),
    (["report", "missing.db", "-o", "r.md"], "no study"),
    (["report", "-o", "r.md"], "Missing argument"),
    (["frobnicate"], "No such command"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    line = one_line_error(cli(*args, cwd=tmp_path))
    assert words in line
    assert not any(tmp_path.iterdir())  # nothing written (no study, plot or report)


def test_bad_config_and_foreign_study(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[screening]\nsteps = 'many'\n")
    line = one_line_error(cli("search", "--task", "classification", "--budget", "1",
                              "--study", tmp_path / "s.db", "--config", bad))
    assert "screening.steps" in line
    bad.write_text("[screening]\nstepz = 3\n")
    assert "unknown config key(s) stepz" in one_line_error(
        cli("check", "y", "--task", "classification", "--config", bad))
    foreign = tmp_path / "notes.db"
    foreign.write_text("my precious notes\n" * 10)
    before = foreign.read_bytes()
    line = one_line_error(cli("search", "--task", "classification", "--budget", "1",
                              "--study", foreign))
    assert "not an autoloss-zero study" in line
    for args in (["plot", foreign, "-o", tmp_path / "p.png"],
                 ["report", foreign, "-o", tmp_path / "r.md"],
                 ["export", foreign, "--format", "json"]):
        assert "not an autoloss-zero study" in one_line_error(cli(*args))
    assert foreign.read_bytes() == before
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "r.md").exists()


def test_check_json():
    out = cli("check", "Neg(Mul(y, Log(yhat)))", "--task", "classification", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["accepted"] is True and data["score"] > 0.5
    # B = 5 gradient norms | 5 directional derivatives | 5 norms after the optimization
    assert [len(part.split(",")) for part in data["fingerprint"].split("|")] == [5, 5, 5]
    out = cli("check", "Mul(y, Log(yhat))", "--task", "classification", "--json")
    assert json.loads(out.stdout)["accepted"] is False


def test_tasks_json():
    out = cli("tasks", "--json")
    rows = {r["task"]: r for r in json.loads(out.stdout)}
    assert rows["classification"]["metrics"] == ["accuracy"]
    assert rows["classification"]["branches"] == {"loss": ["yhat", "y", "1"]}


def test_search_show_export_and_resume(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML)
    study = tmp_path / "s.db"
    out = cli("search", "--task", "classification", "--budget", 4, "--study", study,
              "--config", cfg, "--workers", 1, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "classification / accuracy" in out.stdout
    data = json.loads(cli("show", study, "--json").stdout)
    assert data["task"] == "classification" and data["metric"] == "accuracy"
    assert data["evaluations"] == 4
    assert data["losses"][0]["rank"] == 1 and data["losses"][0]["formula"]
    # resume with a larger budget; a different seed is refused with the difference
    out = cli("search", "--task", "classification", "--budget", 5, "--study", study,
              "--workers", 1, "--quiet")
    assert out.returncode == 0, out.stderr
    assert json.loads(cli("show", study, "--json").stdout)["evaluations"] == 5
    line = one_line_error(cli("search", "--task", "classification", "--budget", 6,
                              "--study", study, "--seed", 7, "--quiet"))
    assert "seed: 0 (stored) != 7 (given)" in line
    # exports
    py = tmp_path / "loss.py"
    assert cli("export", study, "--format", "python", "-o", py).returncode == 0
    mod = load_module(py)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    exported = mod.SearchedLoss()(logits, labels)
    torch.testing.assert_close(exported, az.load_loss(study)(logits, labels))
    # LaTeX: the rank-1 formula's (to_latex's exact strings are tests/test_expr.py's)
    tex = cli("export", study, "--format", "latex").stdout
    assert tex == az.parse(data["losses"][0]["formula"]).latex() + "\n"
    js = json.loads(cli("export", study, "--format", "json", "--rank", 1).stdout)
    assert js["formula"] == data["losses"][0]["formula"] and js["latex"] + "\n" == tex
    line = one_line_error(cli("export", study, "--rank", 99))
    assert "no rank 99" in line
    assert "--format" in one_line_error(cli("export", study, "--format", "docx"))


def test_compare_json_and_resume(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML.replace("proxy_steps = 5", "proxy_steps = 5\nfull_steps = 8"))
    runs = tmp_path / "runs.jsonl"
    args = ["compare", "--task", "classification", "--loss", "ce", "--loss",
            "Neg(Mul(y, Log(yhat)))", "--seeds", 2, "--config", cfg, "--results", runs,
            "--workers", 2, "--json"]
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["seeds"] == 2 and data["metrics"] == ["accuracy"]
    rows = {r["loss"]: r for r in data["losses"]}
    assert len(rows["ce"]["metrics"]["accuracy"]["values"]) == 2
    assert len(runs.read_text().splitlines()) == 4
    again = cli(*args)  # every run is reused from the results file
    assert json.loads(again.stdout)["losses"] == data["losses"]
    assert len(runs.read_text().splitlines()) == 4
    line = one_line_error(cli("compare", "--task", "classification", "--loss", "Foo(y)"))
    assert "unknown operator 'Foo'" in line


def test_check_and_compare_read_formulas_with_the_config_s_user_operators(tmp_path,
                                                                         tests_on_path):
    ops = tmp_path / "ops.toml"
    ops.write_text(TINY_TOML.replace("seed = 0", 'seed = 0\noperators = ["Add", "Mul", "Neg", '
                                     '"Log", "Cube"]\noperator_modules = ["user_ops"]')
                   .replace("proxy_steps = 5", "proxy_steps = 5\nfull_steps = 8"))
    cube = "Neg(Mul(y, Log(Cube(yhat))))"  # 3 x cross-entropy
    out = cli("check", cube, "--task", "classification", "--config", ops, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accepted"] is True
    assert "unknown operator 'Cube'" in one_line_error(
        cli("check", cube, "--task", "classification"))
    # an operator outside the config's set is refused as the search would never make it
    assert "unknown operator 'Exp'" in one_line_error(
        cli("check", "Neg(Mul(y, Exp(yhat)))", "--task", "classification", "--config", ops))
    runs = tmp_path / "runs.jsonl"
    plain = tmp_path / "plain.toml"
    plain.write_text(TINY_TOML.replace("proxy_steps = 5", "proxy_steps = 5\nfull_steps = 8"))
    args = ["compare", "--task", "classification", "--loss", "Neg(Mul(y, Log(yhat)))",
            "--seeds", 1, "--results", runs, "--json"]
    assert cli(*args, "--config", plain).returncode == 0
    out = cli(*args, "--loss", cube, "--config", ops)
    assert out.returncode == 0, out.stderr
    rows = {r["loss"]: r for r in json.loads(out.stdout)["losses"]}
    assert len(rows[cube]["metrics"]["accuracy"]["values"]) == 1, rows[cube]["failed"]
    # the plain formula kept its key under the config with user operators: reused, not re-run
    assert len(runs.read_text().splitlines()) == 2


def test_plot_and_report(tmp_path):
    from conftest import tiny_config

    a, b = tmp_path / "a.db", tmp_path / "b.db"
    az.search("classification", "accuracy", 4, a, tiny_config(0), workers=1).close()
    az.search("classification", "accuracy", 4, b, tiny_config(1), workers=1).close()
    png = tmp_path / "out" / "progress.png"
    assert cli("plot", a, b, "-o", png).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    md = tmp_path / "out" / "report.md"
    out = cli("report", a, b, "-o", md)
    assert out.returncode == 0, out.stderr
    text = md.read_text()
    assert "![search progress](report.png)" in text and (tmp_path / "out" / "report.png").exists()
    assert text.count("| rank | accuracy | formula | LaTeX |") == 2
    assert "Time per stage: screening" in text and "| candidates | screened |" in text
    from autoloss_zero.report import top_k_curve
    from autoloss_zero.search.study import StudyReader

    with StudyReader(a) as r:
        xs, ys = top_k_curve(r)
    assert xs == list(range(1, len(xs) + 1)) and len(xs) == 4


@pytest.mark.timeout(240)
def test_bench_rejection_json():
    out = cli("bench", "rejection", "--task", "classification", "--seconds", 2,
              "--processes", 1, "--device", "cpu", "--json", timeout=200)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["device"] == "cpu" and res["processes"] == 1
    assert res["candidates"] > 0 and res["naive_candidates"] > 0
    assert res["candidates_per_min"] > 0 and res["speedup"] > 0
    assert 0.0 <= res["acceptance_rate"] <= 1.0
    # CE is accepted and the known-bad references are rejected
    assert res["reference_verdicts"] and all(v["ok"] for v in res["reference_verdicts"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_rejection_without_cuda_is_one_line():
    out = cli("bench", "rejection", "--task", "classification", "--seconds", 1,
              "--device", "cuda")
    assert "no CUDA device" in one_line_error(out)
