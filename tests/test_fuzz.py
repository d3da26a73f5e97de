"""Fuzz tests (issue 15): formulas, configs, damaged studies and command lines.

Bounded for CI. ``AUTOLOSS_ZERO_FUZZ=N`` multiplies every ``max_examples`` by N for a
longer run outside CI, and ``AUTOLOSS_ZERO_FUZZ_REPORT=FILE`` writes the counts there
(see ``benchmarks/README.md``, "Hostile input").

- Every formula text ``parse`` accepts works with every method (text, depth, size,
  normal form, LaTeX, sympy, ``to_module``, the standalone source, which computes the
  same values); any other text is a one-line ``ValueError``.
- Every command line built around bad input exits 2 with one line on stderr (never 1,
  never a traceback), and no study given to it changes by a byte.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import io
import json
import math
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoloss_zero.cli import main
from autoloss_zero.expr.ops import DEFAULT_NAMES, DEFAULT_OPERATORS
from autoloss_zero.expr.symbolic import to_python
from autoloss_zero.expr.tree import MAX_DEPTH, MAX_SIZE, Expr, Loss, as_loss, parse
from autoloss_zero.search.config import SearchConfig
from conftest import tiny_config

SCALE = int(os.environ.get("AUTOLOSS_ZERO_FUZZ", "1"))
COUNTS: collections.Counter = collections.Counter()


def examples(n: int):
    return settings(max_examples=n * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("AUTOLOSS_ZERO_FUZZ_REPORT")
    if path:
        old = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        for k, v in COUNTS.items():
            old[k] = old.get(k, 0) + v
        Path(path).write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------
# formulas

LEAVES = ("yhat", "y", "1")
UNARY = [n for n in DEFAULT_NAMES if DEFAULT_OPERATORS.arity[n] == 1]
BINARY = [n for n in DEFAULT_NAMES if DEFAULT_OPERATORS.arity[n] == 2]
TOKENS = [*DEFAULT_NAMES, *LEAVES, "(", ")", ", ", ",", " ", "  ", "\t", "\n", ";", ":",
          "loss", "a", "b", "x", "Y", "2", "1.0", "0", "Foo", "neg", "é", "名", "\x00",
          "\u2028", '"', "'", "\\", "#", "(((", ")))", "Neg(" * 50, ")" * 50, "y" * 30]


def nodes(max_leaves: int = 60):
    leaf = st.sampled_from(LEAVES)

    def extend(children):
        return st.one_of(
            st.builds(lambda op, c: (op, c), st.sampled_from(UNARY), children),
            st.builds(lambda op, a, b: (op, a, b), st.sampled_from(BINARY), children, children),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


@st.composite
def deep_chains(draw):
    """Chains of unary operators (with the odd binary one) around the depth limit."""
    depth = draw(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3))
    node = draw(st.sampled_from(LEAVES))
    for _ in range(depth):
        if draw(st.integers(0, 9)) == 0:
            op, leaf = draw(st.sampled_from(BINARY)), draw(st.sampled_from(LEAVES))
            node = (op, node, leaf) if draw(st.booleans()) else (op, leaf, node)
        else:
            node = (draw(st.sampled_from(UNARY)), node)
    return node


@st.composite
def wide_trees(draw):
    """Full binary trees of Add/Mul around the size limit (depth 9: 1023 nodes)."""
    depth = draw(st.integers(8, 9))
    ops = draw(st.lists(st.sampled_from(BINARY + UNARY), min_size=depth, max_size=depth))

    def grow(d):
        if d == 0:
            return draw(st.sampled_from(LEAVES))
        op = ops[d - 1]
        if op in UNARY:
            return (op, grow(d - 1))
        return (op, grow(d - 1), grow(d - 1))

    return grow(depth)


def render(node) -> str:
    return Expr(node).__str__()


@st.composite
def texts(draw):
    kind = draw(st.sampled_from(["soup", "tree", "mutated", "branches", "deep", "wide"]))
    COUNTS[f"formulas_{kind}"] += 1
    if kind == "soup":
        return "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=40)))
    if kind == "deep":
        return render(draw(deep_chains()))
    if kind == "wide":
        return render(draw(wide_trees()))
    text = render(draw(nodes()))
    if kind == "tree":
        return text
    if kind == "branches":
        names = draw(st.lists(st.sampled_from(["loss", "a", "b", "cls_rpn", "x1", "Bad", ""]),
                              min_size=1, max_size=3))
        return "; ".join(f"{n}: {render(draw(nodes(8)))}" for n in names)
    # mutated: a few random edits of a valid text
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        token = draw(st.sampled_from(TOKENS))
        text = edit_text(text, i, edit, token)
    return text


def _inputs(loss: Loss, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    return {name: {"yhat": torch.rand(2, 3, generator=gen, dtype=dtype),
                   "y": torch.rand(2, 3, generator=gen, dtype=dtype)}
            for name in loss.names}


def check_formula(text: str) -> str:
    """Parse ``text``; if accepted, exercise every method. Returns 'accepted'/'refused'."""
    try:
        x = parse(text)
    except ValueError as exc:
        msg = str(exc)
        assert "\n" not in msg and len(msg) < 1200, msg[:300]
        return "refused"
    loss = as_loss(x)
    canonical = str(x)
    assert as_loss(parse(canonical)) == loss and str(parse(canonical)) == canonical
    for _, e in loss.branches:
        assert 0 <= e.depth <= MAX_DEPTH and 1 <= e.size <= MAX_SIZE
        assert e.leaves <= set(LEAVES) and e.operators <= set(DEFAULT_NAMES)
        assert parse(e.key) is not None and e.normal_form().size <= e.size * 2
        hash(e)
    assert x.latex()
    assert str(x.sympy())
    source = to_python(x)
    namespace: dict = {}
    exec(compile(source, "<exported>", "exec"), namespace)  # our own output, not user text
    inputs = _inputs(loss)
    expected = loss.to_module()(inputs)
    module = namespace["SearchedLoss"]()
    if len(loss.branches) == 1:  # forward(yhat, y), whatever the branch is called
        got = module(inputs[loss.names[0]]["yhat"], inputs[loss.names[0]]["y"])
    else:
        got = module(inputs)
    assert bool(torch.isfinite(got)) == bool(torch.isfinite(expected))
    if bool(torch.isfinite(expected)):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)
    return "accepted"


@pytest.mark.timeout(120 * SCALE)
@examples(150)
@given(texts())
def test_fuzz_formulas(text):
    COUNTS["formulas"] += 1
    COUNTS[f"formulas_{check_formula(text)}"] += 1


@pytest.mark.timeout(120 * SCALE)
@examples(30)
@given(st.sampled_from(["Neg(", "Add(y, ", "Mul(1, ", "Log(Abs("]), st.integers(90, 5000))
def test_fuzz_nesting(prefix, n):
    COUNTS["formulas"] += 1
    closing = ")" * (n * prefix.count("("))
    outcome = check_formula(prefix * n + "yhat" + closing)
    COUNTS[f"formulas_{outcome}"] += 1
    assert (outcome == "accepted") == (n <= MAX_DEPTH // max(1, prefix.count("(")))


# ---------------------------------------------------------------------------
# configs

SENSIBLE = st.one_of(
    st.integers(0, 30), st.floats(0.0, 1.0, allow_subnormal=False),
    st.sampled_from(["evolution", "random", "one", "all", "Neg", "x.y"]),
    st.lists(st.sampled_from(["Add", "Neg", "Log", "Nope"]), min_size=1, max_size=3))
VALUES = st.one_of(SENSIBLE, SENSIBLE, st.none(), st.booleans(), st.integers(-2**70, 2**70),
                   st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
                   st.text(max_size=20),
                   st.lists(st.integers(-3, 3), max_size=3),
                   st.dictionaries(st.text(max_size=5), st.integers(0, 3), max_size=2))
KEYS = {
    "": ["seed", "operators", "operator_modules", "strategy", "offspring_branches", "fixed",
         "task_options", "nope"],
    "population": ["initial", "size", "tournament"],
    "mutation": ["copy", "reinit", "mutations", "weights", "depth", "max_size"],
    "screening": ["enabled", "samples", "steps", "lr", "eta", "max_tries"],
    "equivalence": ["enabled", "digits"],
    "evaluation": ["stop_on_invalid", "timeout", "retries", "ahead", "common_seed"],
}


@st.composite
def config_dicts(draw):
    out: dict = {}
    for section, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))
        target = out if not section else out.setdefault(section, {})
        for key in chosen:
            target[key] = draw(VALUES)
    return out


@pytest.mark.timeout(120 * SCALE)
@examples(200)
@given(config_dicts())
def test_fuzz_configs(data):
    COUNTS["configs"] += 1
    try:
        cfg = SearchConfig.from_dict(data)
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        COUNTS["configs_refused"] += 1
        return
    COUNTS["configs_accepted"] += 1
    s = cfg.screening
    assert math.isfinite(s.eta) and math.isfinite(s.lr) and s.lr > 0
    assert math.isfinite(cfg.evaluation.timeout) and cfg.evaluation.timeout >= 0
    assert 0 <= cfg.seed < 2**63 and all(isinstance(o, str) for o in cfg.operators)
    assert SearchConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


# ---------------------------------------------------------------------------
# command lines and damaged studies


_TEMPLATE: list[Path] = []


def make_files(folder: Path) -> dict[str, Path]:
    """A good study, damaged ones, configs and other inputs, in a fresh folder (copies of
    one set made once per process)."""
    if not _TEMPLATE:
        _TEMPLATE.append(Path(tempfile.mkdtemp(prefix="alz-fuzz-template-")))
        atexit.register(shutil.rmtree, _TEMPLATE[0], True)
        _make_files(_TEMPLATE[0])
    shutil.copytree(_TEMPLATE[0], folder, dirs_exist_ok=True)
    return _paths(folder)


def _paths(folder: Path) -> dict[str, Path]:
    return {"good": folder / "good.db", "dir": folder / "adir", "missing": folder / "missing.db",
            "foreign": folder / "notes.db", "badcfg": folder / "bad.toml",
            "goodcfg": folder / "good.toml", "hashed": folder / "run#1 ?%41.db",
            "user": folder / "user.db", "corrupt": folder / "corrupt.db"}


def _make_files(folder: Path) -> dict[str, Path]:
    from test_hostile import make_study, set_meta

    f = {"good": make_study(folder / "good.db"), "dir": folder / "adir",
         "missing": folder / "missing.db", "foreign": folder / "notes.db",
         "badcfg": folder / "bad.toml", "goodcfg": folder / "good.toml",
         "hashed": make_study(folder / "run#1 ?%41.db"),
         "user": make_study(folder / "user.db"), "corrupt": make_study(folder / "corrupt.db")}
    f["dir"].mkdir()
    f["foreign"].write_text("precious notes\n" * 20)
    f["badcfg"].write_text("[screening]\neta = nan\n")
    f["goodcfg"].write_text("[population]\ninitial = 3\n[task_options]\nproxy_steps = 5\n"
                            "train_items = 200\neval_batch = 1000\n")
    set_meta(f["user"], "task", "evilmod:EvilTask")
    con = sqlite3.connect(f["corrupt"])
    con.execute("UPDATE candidates SET formula = CAST(X'4E656728FF7929' AS TEXT) WHERE id = 2")
    con.commit()
    con.close()
    (folder / "evilmod.py").write_text("raise SystemExit('evilmod was imported')\n")
    return f


FILES = ["good", "dir", "missing", "foreign", "badcfg", "goodcfg", "hashed", "user", "corrupt"]
STUDIES = ["good", "hashed", "user", "corrupt", "foreign"]
VALUE_POOL = [
    "classification", "segmentation", "nope", "a:b", "..x:Y", "os:system", "evilmod:EvilTask",
    "autoloss_zero.tasks.base:Task", "accuracy", "miou", "-1", "0", "1", "2", "nan", "inf",
    "1e400", "99999999999999999999999", "x" * 300, "", "é", "Neg(", "Neg(" * 300 + "y",
    "y", "Neg(Mul(y, Log(yhat)))", "Foo(y)", "loss=ce", "=", "loss=Foo(", "cuda", "cpu",
    "dask", "spark", "python", "latex", "json", "full", "proxy", "large", "/dev/null",
    "study:{good}#1", "study:{good}#x", "study:{missing}#1", "study:{user}#1",
    "{good}", "{hashed}", "{user}", "{corrupt}", "{foreign}", "{dir}", "{missing}",
    "{badcfg}", "{goodcfg}", "out.md", "out.png", "out.py", "{good}-wal",
]
OPTIONS = ["--task", "--metric", "--budget", "--study", "--seed", "--workers", "--engine",
           "--scheduler", "--config", "--device", "--fix", "--time-limit", "--quiet", "--json",
           "--top", "--format", "--rank", "-o", "--output", "--loss", "--seeds", "--variant",
           "--schedule", "--results", "--seconds", "--processes", "--trust-study", "--bogus"]
TEMPLATES = {
    "check": ["check", "Neg(Mul(y, Log(yhat)))", "--task", "classification"],
    "show": ["show", "{good}"],
    "export": ["export", "{good}"],
    "plot": ["plot", "{good}", "-o", "p.png"],
    "report": ["report", "{good}", "-o", "r.md"],
    "tasks": ["tasks"],
    "search": ["search", "--task", "classification", "--budget", "1", "--study", "s.db"],
    "compare": ["compare", "--task", "classification", "--loss", "ce"],
    "bench": ["bench", "rejection", "--task", "classification"],
}
POISON = {  # appended last: these commands would otherwise train (slow), so they must fail
    "search": [["--task", "nope"], ["--study", "{foreign}"], ["--config", "{badcfg}"],
               ["--budget", "-1"], ["--study", "{corrupt}"], ["--fix", "nobranch=ce"],
               ["--study", "{user}"]],
    "compare": [["--loss", "Foo(y)"], ["--task", "nope"], ["--seeds", "0"],
                ["--variant", "nope"], ["--config", "{badcfg}"], ["--loss", "study:{user}#1"],
                ["--loss", "study:{good}#1", "--results", "{good}"]],
    "bench": [["--task", "nope"], ["--seconds", "0"], ["--config", "{badcfg}"],
              ["--metric", "nope"]],
}


@st.composite
def command_lines(draw):
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    argv = list(TEMPLATES[name])
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(["append", "replace", "delete"]))
        token = draw(st.sampled_from(OPTIONS + VALUE_POOL))
        if edit == "append":
            argv += [token] if token not in OPTIONS else [token, draw(st.sampled_from(VALUE_POOL))]
        elif edit == "replace" and len(argv) > 1:
            argv[draw(st.integers(1, len(argv) - 1))] = token
        elif edit == "delete" and len(argv) > 1:
            del argv[draw(st.integers(1, len(argv) - 1))]
    poisoned = name in POISON
    if poisoned:
        argv += draw(st.sampled_from(POISON[name]))
    if name == "check" and "cuda" not in argv:  # keep checks fast: one small task
        argv = [a if a not in ("segmentation",) else "classification" for a in argv]
    return name, argv, poisoned


def edit_text(text: str, i: int, edit: str, token: str) -> str:
    """``text`` with ``token`` inserted at ``i``, the character at ``i`` deleted, or the
    text from ``i`` replaced by ``token``."""
    if edit == "insert":
        return text[:i] + token + text[i:]
    if edit == "delete":
        return text[:i] + text[i + 1:]
    return text[:i] + token + text[i + len(token):]


def check_damaged_run(command: str, rc: int, err: str, study, data: bytes) -> None:
    """A command on a damaged study: exit 0 or 2, never a traceback; a refusal is one line
    and leaves the study byte-for-byte as it was; commands other than search never write."""
    assert rc in (0, 2) and "Traceback" not in err and "internal error" not in err, err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert study.read_bytes() == data
    if command != "search":
        assert study.read_bytes() == data


def run_cli(argv, cwd) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            contextlib.chdir(cwd):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def check_command(argv_template: list[str], poisoned: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="alz-fuzz-") as tmp:
        folder = Path(tmp)
        files = make_files(folder)
        before = {k: files[k].read_bytes() for k in STUDIES}
        argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv_template]
        rc, out, err = run_cli(argv, folder)
        if rc == 2 and not err.strip():  # a command group without a command: its help
            assert "Usage" in out
        elif rc == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        assert rc in (0, 2), (argv, rc, err)
        if poisoned and "--help" not in argv:
            assert rc == 2, (argv, out[-500:], err)
        for k in STUDIES:
            assert files[k].read_bytes() == before[k], (argv, k)
        assert not (folder / "PWNED").exists()
    return rc


@pytest.mark.timeout(600 * SCALE)
@examples(40)
@given(command_lines())
def test_fuzz_command_lines(case):
    name, argv, poisoned = case
    rc = check_command(argv, poisoned)
    COUNTS["cli"] += 1
    COUNTS[f"cli_exit_{rc}"] += 1
    COUNTS[f"cli_{name}"] += 1


@pytest.mark.timeout(600 * SCALE)
@examples(8)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                max_size=4),
       st.sampled_from([["show", "--json"], ["export", "--format", "json"],
                        ["search", "--task", "classification", "--budget", "0", "--workers",
                         "1", "--quiet"]]))
def test_fuzz_damaged_studies(flips, command):
    """Random bytes of a real study changed: every command exits 0 or 2 in one line, and a
    study that was refused is left byte-for-byte as it was."""
    COUNTS["damaged_studies"] += 1
    with tempfile.TemporaryDirectory(prefix="alz-fuzz-") as tmp:
        from test_hostile import make_study

        study = make_study(Path(tmp) / "s.db", config=tiny_config())
        data = bytearray(study.read_bytes())
        for offset, value in flips:
            data[offset % len(data)] = value
        study.write_bytes(bytes(data))
        argv = command[:1] + ([str(study)] if command[0] != "search" else []) + command[1:]
        if command[0] == "search":
            argv += ["--study", str(study)]
        rc, _, err = run_cli(argv, tmp)
        check_damaged_run(command[0], rc, err, study, bytes(data))
        COUNTS[f"damaged_exit_{rc}"] += 1
        shutil.rmtree(tmp, ignore_errors=True)
