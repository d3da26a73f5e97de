"""Hostile input and untrusted studies (issue 15): no data loss, no code injection, exit 2.

Studies here are real SQLite files written by the real writer (``Study``); commands run
through the real entry point, in this process (``cli.main``, for speed) or as real
processes where process behaviour matters (parent death, a few smoke checks).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import autoloss_zero as az
from autoloss_zero.cli import main
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import Candidate, Study, StudyError, StudyReader
from conftest import ROOT, load_module, tiny_config

CE = "Neg(Mul(y, Log(yhat)))"


# ---------------------------------------------------------------------------
# helpers


def run_cli(*args, cwd=None) -> tuple[int, str, str]:
    """``autoloss-zero ARGS`` through the console entry point, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def one_line_error(result, code=2) -> str:
    rc, _, err = result
    assert rc == code, result
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_study(path, *, task="classification", metric="accuracy", formula=CE, score=0.5,
               config: SearchConfig | None = None, meta: dict | None = None) -> Path:
    """A small complete study, written by the real writer (no training needed)."""
    cfg = config or tiny_config()
    task_config = (az.get_task(task, **cfg.task_options).config
                   if task in ("classification",) else {})
    values = {"schema": 1, "task": task, "task_config": task_config, "metric": metric,
              "config": cfg.to_dict(), "operators": list(cfg.operators), "created": 0.0,
              "budget": 1}
    values.update(meta or {})
    s = Study(path, meta=values)
    s.insert([
        Candidate(id=1, step=0, formula="y", normal="y", status="rejected",
                  reason="does not depend on the prediction"),
        Candidate(id=2, step=1, formula=formula, normal=formula, status="evaluated",
                  score=score, metrics={metric: score}, seed=7, joined=1, finished=1.0),
    ])
    s.close()
    return Path(path)


def set_meta(path, key, value) -> None:
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    con.commit()
    con.close()


def sql(path, statement, *args) -> None:
    con = sqlite3.connect(path)
    con.execute(statement, args)
    con.commit()
    con.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------
# data loss


def test_every_command_refuses_to_write_over_its_input(tmp_path):
    study = make_study(tmp_path / "s.db")
    png_study = make_study(tmp_path / "r.png")  # report -o r.md would write r.png
    other = make_study(tmp_path / "other.db")  # not an input, but a study all the same
    config = tmp_path / "c.toml"
    config.write_text("[task_options]\nproxy_steps = 5\n")
    before = snapshot(tmp_path)
    cases = [
        ("export", study, "-o", study),
        ("export", study, "--format", "json", "-o", f"{study}-wal"),
        ("export", study, "--format", "latex", "-o", tmp_path / "." / "s.db"),
        ("report", study, "-o", study),
        ("report", png_study, "-o", tmp_path / "r.md"),
        ("plot", study, "-o", study),
        ("plot", study, png_study, "-o", png_study),
        ("export", study, "-o", other),
        ("plot", study, "-o", other),
        ("report", study, "-o", other),
        ("compare", "--task", "classification", "--loss", f"study:{study}#1",
         "--results", study),
        ("compare", "--task", "classification", "--loss", "ce", "--config", config,
         "--results", config),
        ("calibrate", "--task", "classification", "--loss", "ce", "--config", config,
         "--results", config),
        ("calibrate", "--task", "classification", "--loss", "ce",
         "--results", tmp_path / "runs.jsonl", "--report", tmp_path / "runs.jsonl"),
        ("calibrate", "--task", "classification", "--loss", f"study:{study}#1",
         "--report", study),
    ]
    for args in cases:
        line = one_line_error(run_cli(*args))
        assert "refusing to write over it" in line, (args, line)
    assert snapshot(tmp_path) == before  # nothing written, nothing touched
    # a search never writes over a file that is not a study: its --config, say
    line = one_line_error(run_cli("search", "--task", "classification", "--budget", 1,
                                  "--study", config, "--config", config))
    assert "not an autoloss-zero study" in line
    assert snapshot(tmp_path) == before


def test_a_study_that_fails_validation_is_left_byte_for_byte_untouched(tmp_path):
    study = make_study(tmp_path / "s.db")
    # one flipped byte in a stored formula: not UTF-8 any more
    sql(study, "UPDATE candidates SET formula = CAST(X'4E656728FF7929' AS TEXT) WHERE id = 2")
    before = study.read_bytes()
    for args in (("search", "--task", "classification", "--budget", 5, "--study", study,
                  "--quiet"), ("show", study), ("export", study)):
        line = one_line_error(run_cli(*args))
        assert "corrupt study" in line and "UTF-8" in line
    assert study.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.db"]  # no -wal / -shm left either
    # valid UTF-8, but a formula that does not parse: the search refuses before writing
    sql(study, "UPDATE candidates SET formula = 'Neg(Mul(y, Lg(yhat)))' WHERE id = 2")
    before = study.read_bytes()
    line = one_line_error(run_cli("search", "--task", "classification", "--budget", 5,
                                  "--study", study, "--quiet"))
    assert "row 2: its formula does not parse" in line
    assert study.read_bytes() == before


@pytest.mark.parametrize("damage, words", [
    ("no tables", "no meta or candidates table"),
    ("no config", "no config in its metadata"),
    ("no task", "no task in its metadata"),
    ("meta not JSON", "meta 'metric' is not JSON"),
    ("score is text", "score is text"),
    ("unknown status", "unknown status"),
    ("bad config", "stored config is invalid"),
])
def test_damaged_studies_are_one_line_errors_everywhere(tmp_path, damage, words):
    study = tmp_path / "s.db"
    if damage == "no tables":  # what kill -9 right after creating the file could leave
        con = sqlite3.connect(study)
        con.execute(f"PRAGMA application_id={0x414C5A30}")
        con.execute("PRAGMA user_version=1")
        con.commit()
        con.close()
    else:
        make_study(study)
        statement = {
            "no config": "DELETE FROM meta WHERE key = 'config'",
            "no task": "DELETE FROM meta WHERE key = 'task'",
            "meta not JSON": "UPDATE meta SET value = 'accuracy' WHERE key = 'metric'",
            "score is text": "UPDATE candidates SET score = 'high' WHERE id = 2",
            "unknown status": "UPDATE candidates SET status = 'great' WHERE id = 2",
            "bad config": "UPDATE meta SET value = '{\"seed\": -1}' WHERE key = 'config'",
        }[damage]
        sql(study, statement)
    before = study.read_bytes()
    for args in (("show", study), ("show", study, "--json"), ("export", study),
                 ("plot", study, "-o", tmp_path / "p.png"),
                 ("report", study, "-o", tmp_path / "r.md"),
                 ("search", "--task", "classification", "--budget", 1, "--study", study)):
        assert words in one_line_error(run_cli(*args)), args
    assert study.read_bytes() == before
    with pytest.raises(StudyError, match=words):
        az.load_loss(study)


def test_a_new_study_gets_its_metadata_in_the_creating_transaction(tmp_path):
    path = tmp_path / "s.db"
    with pytest.raises(TypeError):  # the metadata cannot be written: nothing is
        Study(path, meta={"task": "classification", "bad": object()})
    assert not path.exists() or path.stat().st_size == 0
    make_study(path)  # the empty file left by the failed attempt is a new study
    with StudyReader(path) as r:
        assert r.meta()["task"] == "classification"


def test_special_files_are_not_studies(tmp_path):
    for args in (("search", "--task", "classification", "--budget", 1, "--study", "/dev/null"),
                 ("show", "/dev/null"), ("show", tmp_path)):
        line = one_line_error(run_cli(*args))
        assert "not a regular file" in line or "directory" in line


# ---------------------------------------------------------------------------
# code injection through generated source: one test per field


PAYLOAD = '"""\nimport os; os.system("touch PWNED")\n"""'
"""Code that creates ./PWNED if it ever runs (tests run in their tmp_path)."""


def assert_inert(source: str, marker: Path, tmp_path: Path):
    """The module has only a docstring, imports, assignments, functions and the class, and
    importing it runs nothing else."""
    tree = ast.parse(source)
    kinds = [type(n).__name__ for n in tree.body]
    assert kinds[0] == "Expr" and isinstance(tree.body[0].value, ast.Constant)
    assert set(kinds[1:]) <= {"Import", "ImportFrom", "Assign", "FunctionDef", "ClassDef"}
    path = tmp_path / "exported_loss.py"
    path.write_text(source)
    mod = load_module(path)
    assert not marker.exists()
    return mod


@pytest.mark.parametrize("field", ["study file name", "meta metric", "meta task",
                                   "stored formula", "stored score", "fixed branch",
                                   "meta operators", "operator_modules", "task_config"])
def test_export_python_cannot_run_code_from_a_study(tmp_path, field, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    payload = PAYLOAD
    name = f"s{payload}.db" if field == "study file name" else "s.db"
    study = make_study(tmp_path / name)
    if field == "meta metric":
        set_meta(study, "metric", f"accuracy{payload}")
    elif field == "meta task":
        set_meta(study, "task", payload)
    elif field == "stored formula":
        sql(study, "UPDATE candidates SET formula = ? WHERE id = 2", payload)
    elif field == "stored score":
        sql(study, "UPDATE candidates SET score = ? WHERE id = 2", payload)
    elif field in ("fixed branch", "operator_modules"):
        cfg = tiny_config()
        if field == "fixed branch":
            cfg.fixed = {"loss": payload}
            set_meta(study, "config", cfg.to_dict())
        else:
            set_meta(study, "config", {**cfg.to_dict(), "operator_modules": [payload]})
    elif field == "meta operators":
        set_meta(study, "operators", ["Neg", "Mul", "Log", payload])
    elif field == "task_config":
        set_meta(study, "task_config", {payload: 1})
    out = tmp_path / "loss.py"
    for trust in ([], ["--trust-study"]):
        rc, _, err = run_cli("export", study, "--format", "python", "-o", out, *trust)
        if field in ("study file name", "meta metric"):
            assert rc == 0, err
            mod = assert_inert(out.read_text(), marker, tmp_path)
            assert payload in mod.__doc__  # shown as text, verbatim
            logits, labels = torch.randn(4, 10), torch.randint(0, 10, (4,))
            assert torch.isfinite(mod.SearchedLoss()(logits, labels))
        else:
            one_line_error((rc, "", err))
            assert not out.exists()
        for fmt in ("json", "latex"):  # never code, but never a traceback either
            assert run_cli("export", study, "--format", fmt, *trust)[0] in (0, 2)
    assert not marker.exists()


def test_to_python_escapes_or_refuses_every_field(tmp_path, monkeypatch):
    from autoloss_zero.expr.symbolic import to_python
    from autoloss_zero.expr.tree import Expr, Loss

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    payload = PAYLOAD
    e = az.parse(CE)
    # header: any text, shown verbatim in the docstring (backslashes, NUL, quotes included)
    header = payload + ' \\ \x00 \u2028 """ \'\'\' end\\'
    mod = assert_inert(to_python(e, header=header), marker, tmp_path)
    assert mod.__doc__.startswith(header)
    for bad in (dict(class_name=f"X{payload}"), dict(class_name="class"),
                dict(class_name="")):
        with pytest.raises(ValueError, match="class_name"):
            to_python(e, **bad)
    with pytest.raises(ValueError, match="not a valid name"):  # a leaf built without parse
        to_python(Expr(("Neg", f"y{payload}")))
    with pytest.raises(ValueError, match="bad branch name"):
        Loss([(f"b{payload}", e)])
    with pytest.raises(ValueError, match="not in the operator set"):
        to_python(Expr((f"Neg{payload}", "y")))
    assert not marker.exists()


def test_reading_a_study_imports_no_code_it_names(tmp_path):
    marker = tmp_path / "IMPORTED"
    for mod in ("evilmod", "evilops"):
        (tmp_path / f"{mod}.py").write_text(
            f"open({str(marker)!r}, 'a').write({mod!r})\n"
            "from autoloss_zero.tasks.classification import ClassificationTask\n"
            "class EvilTask(ClassificationTask):\n    pass\n")
    study = make_study(tmp_path / "s.db")
    set_meta(study, "task", "evilmod:EvilTask")
    ops = make_study(tmp_path / "o.db")
    set_meta(ops, "config", {**tiny_config().to_dict(), "operator_modules": ["evilops"]})
    commands = [
        ("show", study), ("show", study, "--json"), ("plot", study, ops, "-o", "p.png"),
        ("report", study, ops, "-o", "r.md"), ("export", study, "--format", "latex"),
        ("export", study, "--format", "json"),
    ]
    for args in commands:  # the study's own folder is the working folder
        rc, _, err = run_cli(*args, cwd=tmp_path)
        assert rc == 0, (args, err)
    for args, words in [
        (("export", study, "--format", "python"), "user task 'evilmod:EvilTask'"),
        (("export", ops, "--format", "python"), "module(s) 'evilops'"),
        (("export", ops, "--format", "json"), "module(s) 'evilops'"),
        (("compare", "--task", "classification", "--loss", f"study:{study}#1"),
         "not 'classification'"),
        (("compare", "--task", "classification", "--loss", f"study:{ops}#1"),
         "module(s) 'evilops'"),
        (("search", "--task", "classification", "--budget", 3, "--study", ops, "--quiet"),
         "module(s) 'evilops'"),
    ]:
        line = one_line_error(run_cli(*args, cwd=tmp_path))
        assert words in line and ("--trust-study" in line or "not 'classification'" in line)
    assert not marker.exists()
    assert "evilmod" not in sys.modules and "evilops" not in sys.modules
    with pytest.raises(StudyError, match="trust=True"):
        az.load_loss(study)
    assert not marker.exists()


def test_report_escapes_markdown_from_a_study(tmp_path):
    study = make_study(tmp_path / "s.db")
    set_meta(study, "metric", "acc\n# <script>alert(1)</script> [x](http://e)")
    rc, _, err = run_cli("report", study, "-o", tmp_path / "r.md")
    assert rc == 0, err
    text = (tmp_path / "r.md").read_text()
    assert "<script>" not in text and "](http" not in text and "\n# <" not in text


# ---------------------------------------------------------------------------
# paths


NAMES = ["run#1.db", "q?x=1&mode=rw.db", "p%41.db", "with space.db", "ünï cødé-名.db",
         "a#b?c%2Fd e.db"]


@pytest.mark.parametrize("name", NAMES)
def test_study_paths_with_uri_characters(tmp_path, name):
    study = make_study(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == [name]
    with StudyReader(study) as r:
        assert r.meta()["task"] == "classification" and len(r.candidates()) == 2
    rc, out, err = run_cli("show", study, "--json")
    assert rc == 0, err and json.loads(out)["losses"][0]["formula"] == CE
    assert run_cli("export", study, "--format", "latex")[0] == 0
    assert sorted(os.listdir(tmp_path)) == [name]  # nothing left beside it (e.g. "run")


def test_search_and_resume_on_a_path_with_uri_characters(tmp_path):
    torch.set_flush_denormal(False)  # the caller's mode (an earlier test may have changed it)
    study = tmp_path / "run#1 ?%41é.db"
    az.search("classification", "accuracy", 1, study, tiny_config(), workers=1).close()
    with az.search("classification", "accuracy", 2, study, workers=1) as r:
        assert r.started() == 2
    assert sorted(os.listdir(tmp_path)) == [study.name]
    tiny = 5e-324  # the search flushed subnormals while it ran, and restored the caller's mode
    assert tiny * 1.0 != 0.0


# ---------------------------------------------------------------------------
# exit 2, one line, for bad input


@pytest.mark.parametrize("toml, args, words", [
    ("[screening]\neta = nan", ["check", "y"], "screening.eta: expected a finite number"),
    ("[screening]\nlr = inf", ["check", "y"], "screening.lr: expected a finite number"),
    ("[evaluation]\ntimeout = nan", ["check", "y"], "evaluation.timeout"),
    ("operators = [1, 2]", ["check", "y"], "operators: expected a list of names"),
    ('operator_modules = ["nope"]', ["check", "y"], "cannot import 'nope'"),
    ('operator_modules = ["..x"]', ["check", "y"], "not a module name"),
    ("seed = 100000000000000000000000", ["check", "y"], "seed"),
    ("[mutation]\ndepth = 40", ["check", "y"], "mutation.depth must be in 0..8"),
    ("[task_options]\nwidth = 0", ["check", "y"], "option width = 0: must be in 1..1024"),
    ('[task_options]\nproxy_steps = "x"', ["search", "--budget", 1, "--study", "{tmp}/x.db"],
     "option proxy_steps = 'x': expected an integer"),
    ("[task_options]\nproxy_steps = -5", ["compare", "--loss", "ce"],
     "option proxy_steps = -5: must be in"),
    ("[task_options]\nlr = nan", ["compare", "--loss", "ce"], "task_options.lr"),
])
def test_bad_configs_are_one_line_errors(tmp_path, toml, args, words):
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    args = [str(a).format(tmp=tmp_path) for a in args]
    line = one_line_error(run_cli(*args, "--task", "classification", "--config", config))
    assert words in line
    assert not (tmp_path / "x.db").exists()  # refused before the study was created


def _full_tree(depth: int) -> str:
    return "y" if depth == 0 else f"Add({_full_tree(depth - 1)}, {_full_tree(depth - 1)})"


@pytest.mark.parametrize("args, words", [
    (["check", "Neg(" * 600 + "y" + ")" * 600, "--task", "classification"],
     "deeper than 100 operators"),
    (["check", _full_tree(10), "--task", "classification"], "more than 1000 nodes"),
    (["check", "y", "--task", "autoloss_zero.tasks.base:Task"], "abstract task class"),
    (["check", "y", "--task", "..evil:Task"], "expected package.module:ClassName"),
    (["check", "y", "--task", "os:system"], "not a Task subclass"),
    (["search", "--task", "classification", "--budget", 1, "--study", "s.db", "--seed", -1],
     "--seed"),
    (["search", "--task", "classification", "--budget", 1, "--study", "s.db",
      "--time-limit", "nan"], "--time-limit"),
    (["search", "--task", "classification", "--budget", 1, "--study", "s.db",
      "--workers", 100000], "--workers"),
    (["compare", "--task", "classification", "--loss", "ce", "--seeds", 10**9], "--seeds"),
    (["bench", "rejection", "--task", "classification", "--seconds", "nan"], "--seconds"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, words):
    assert words in one_line_error(run_cli(*args, cwd=tmp_path))
    assert not (tmp_path / "s.db").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_before_any_work(tmp_path):
    for args in (["check", CE, "--task", "classification", "--device", "cuda"],
                 ["compare", "--task", "classification", "--loss", "ce", "--device", "cuda"],
                 ["search", "--task", "classification", "--budget", 1, "--study", "s.db",
                  "--device", "cuda"]):
        assert "no CUDA device" in one_line_error(run_cli(*args, cwd=tmp_path))
    assert os.listdir(tmp_path) == []


def test_echoed_input_is_clipped():
    big = CE + " " + "x" * 100_000
    line = one_line_error(run_cli("check", big, "--task", "classification"))
    assert "position 23" in line and len(line) < 800
    line = one_line_error(run_cli("check", "y", "--task", "p" * 100_000 + ":X"))
    assert len(line) < 800


def test_parse_argument_types():
    for kwargs in (dict(leaves=5), dict(operators=5), dict(leaves=[1, 2]), dict(leaves="yhat"),
                   dict(operators=[1, 2]), dict(leaves={"loss": 3})):
        with pytest.raises(TypeError):
            az.parse("y", **kwargs)
    with pytest.raises(ValueError, match="bad leaf name"):
        az.parse("y", leaves=["Y h"])


def test_tasks_validate_their_options_when_built(examples_on_path):
    for name, options, words in [
        ("classification", {"proxy_steps": "x"}, "option proxy_steps = 'x': expected an integer"),
        ("classification", {"width": 0}, "option width = 0"),
        ("classification", {"lr": -1.0}, "option lr = -1.0: must be > 0"),
        ("segmentation", {"size": 63}, "multiple of 8"),
        ("detection", {"objects": [3, 1]}, "option objects = [3, 1]"),
        ("pose", {"heatmap_sigma": float("nan")}, "option heatmap_sigma = nan"),
        ("diabetes_task:DiabetesTask", {"batch_size": 0}, "option batch_size = 0"),
    ]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            az.get_task(name, **options)


def test_a_search_whose_first_trainings_fail_alike_stops_with_the_reason(tmp_path,
                                                                         tests_on_path):
    line = one_line_error(run_cli("search", "--task", "user_tasks:FailingTask", "--budget", 20,
                                  "--study", tmp_path / "f.db", "--workers", 1, "--quiet",
                                  "--config", _tiny_toml(tmp_path)))
    assert "proxy trainings all failed: RuntimeError: user code broke on purpose" in line
    line = one_line_error(run_cli("compare", "--task", "user_tasks:FailingTask", "--loss", "ce",
                                  "--seeds", 2, "--workers", 1, "--schedule", "proxy", "--json",
                                  "--config", _tiny_toml(tmp_path)))
    assert "every training failed (2 of 2: RuntimeError: user code broke on purpose)" in line


def _tiny_toml(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text("[population]\ninitial = 3\n[task_options]\nproxy_steps = 5\n"
                    "train_items = 200\neval_batch = 1000\n")
    return path


def test_real_processes_exit_2_with_one_line(tmp_path):
    """The same contract through the installed entry point, as a real process."""
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "autoloss_zero", *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)

    study = make_study(tmp_path / "s.db")
    for args, words in [(("export", study, "-o", study), "refusing to write over it"),
                        (("check", "Neg(" * 600 + "y" + ")" * 600, "--task", "classification"),
                         "deeper than 100")]:
        out = cli(*args)
        assert out.returncode == 2 and words in out.stderr and len(out.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------
# workers and their parent


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_workers_exit_when_their_driver_is_killed(tmp_path, tests_on_path, monkeypatch):
    mark = tmp_path / "training"
    monkeypatch.setenv("AUTOLOSS_ZERO_TEST_MARK", str(mark))
    study = tmp_path / "s.db"
    script = tmp_path / "drive.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import autoloss_zero as az
        from conftest import tiny_config
        az.search("user_tasks:MarkingSlowTask", "accuracy", 1, {str(study)!r},
                  tiny_config(), workers=1)
    """))
    driver = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not mark.exists() and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.1)
        assert mark.exists(), "the worker never started training"
        worker = int(mark.read_text())
        assert worker in _children(driver.pid) and _alive(worker)
        with StudyReader(study) as r:
            rows = [(c.id, c.status) for c in r.candidates()]
        assert ("running" in {s for _, s in rows})
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 30  # the training itself would sleep for 600 s
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
        with StudyReader(study) as r:  # the worker wrote nothing: the job stays running
            assert [(c.id, c.status) for c in r.candidates()] == rows
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


def test_jobs_carry_no_study_path():
    from autoloss_zero.search.worker import make_job

    job = make_job(1, "classification", {}, CE, "accuracy", 0, operators=["Neg"])
    assert not any("study" in str(k) or ".db" in str(v) for k, v in job.items())
