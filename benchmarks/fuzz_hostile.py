"""The long hostile-input fuzz run (issue 15), outside CI.

Drives the checks of ``tests/test_fuzz.py`` with plain numpy-random inputs (cheaper to
draw than hypothesis' strategies, so that 100,000+ formulas fit in an hour on a shared
machine):

- formulas: token soup, random trees, mutated trees, multi-branch texts, chains around
  the depth limit, full trees around the size limit, long nesting strings. Every text
  ``parse`` accepts must work with every method (text, depth, size, normal form, LaTeX,
  sympy, ``to_module``, the standalone source computing the same values); every other
  text must be a one-line ``ValueError``;
- command lines: a template per command, randomly edited with options and hostile values
  (NaN, huge numbers, 300-character strings, deep formulas, special files, damaged and
  foreign studies, URI characters); commands that would train get a poison argument. Each
  must exit 0 or 2 (2 for every poisoned one) with one line on stderr, and leave every
  study byte-for-byte as it was;
- damaged studies: random bytes of a real study changed; ``show``, ``export`` and
  ``search --budget 0`` exit 0 or 2, and a refused study is left untouched.

    nice -n 10 python benchmarks/fuzz_hostile.py --formulas 100000 --cli 500 --damaged 100 \\
        --out benchmarks/results/fuzz-hostile.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_fuzz as tf  # noqa: E402 - the checks of the test suite
from autoloss_zero.expr.tree import MAX_DEPTH, Expr  # noqa: E402


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def random_node(rng, depth: int):
    if depth == 0 or rng.random() < 0.2:
        return pick(rng, tf.LEAVES)
    if rng.random() < 0.75:
        return (pick(rng, tf.UNARY), random_node(rng, depth - 1))
    return (pick(rng, tf.BINARY), random_node(rng, depth - 1), random_node(rng, depth - 1))


def deep_chain(rng):
    node = pick(rng, tf.LEAVES)
    for _ in range(int(rng.integers(MAX_DEPTH - 3, MAX_DEPTH + 4))):
        if rng.random() < 0.1:
            leaf = pick(rng, tf.LEAVES)
            op = pick(rng, tf.BINARY)
            node = (op, node, leaf) if rng.random() < 0.5 else (op, leaf, node)
        else:
            node = (pick(rng, tf.UNARY), node)
    return node


def wide_tree(rng):
    depth = int(rng.integers(8, 10))
    ops = [pick(rng, tf.BINARY + tf.UNARY) for _ in range(depth)]

    def grow(d):
        if d == 0:
            return pick(rng, tf.LEAVES)
        if ops[d - 1] in tf.UNARY:
            return (ops[d - 1], grow(d - 1))
        return (ops[d - 1], grow(d - 1), grow(d - 1))

    return grow(depth)


def formula(rng) -> tuple[str, str]:
    kind = pick(rng, ["soup", "tree", "mutated", "branches", "deep", "wide", "nesting"])
    if kind == "soup":
        return kind, "".join(pick(rng, tf.TOKENS) for _ in range(int(rng.integers(0, 40))))
    if kind == "deep":
        return kind, str(Expr(deep_chain(rng)))
    if kind == "wide":
        return kind, str(Expr(wide_tree(rng)))
    if kind == "nesting":
        prefix = pick(rng, ["Neg(", "Add(y, ", "Mul(1, ", "Log(Abs("])
        n = int(rng.integers(90, 5000))
        return kind, prefix * n + "yhat" + ")" * (n * prefix.count("("))
    text = str(Expr(random_node(rng, int(rng.integers(0, 12)))))
    if kind == "tree":
        return kind, text
    if kind == "branches":
        names = [pick(rng, ["loss", "a", "b", "cls_rpn", "x1", "Bad", ""])
                 for _ in range(int(rng.integers(1, 4)))]
        return kind, "; ".join(f"{n}: {Expr(random_node(rng, 4))}" for n in names)
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(0, len(text) + 1))
        token = pick(rng, tf.TOKENS)
        edit = pick(rng, ["insert", "delete", "replace"])
        text = tf.edit_text(text, i, edit, token)
    return kind, text


def command_line(rng) -> tuple[str, list[str], bool]:
    name = pick(rng, sorted(tf.TEMPLATES))
    argv = list(tf.TEMPLATES[name])
    for _ in range(int(rng.integers(0, 5))):
        edit = pick(rng, ["append", "replace", "delete"])
        token = pick(rng, tf.OPTIONS + tf.VALUE_POOL)
        if edit == "append":
            argv += [token] if token not in tf.OPTIONS else [token, pick(rng, tf.VALUE_POOL)]
        elif edit == "replace" and len(argv) > 1:
            argv[int(rng.integers(1, len(argv)))] = token
        elif edit == "delete" and len(argv) > 1:
            del argv[int(rng.integers(1, len(argv)))]
    poisoned = name in tf.POISON
    if poisoned:
        argv += pick(rng, tf.POISON[name])
    if name == "check" and "cuda" not in argv:
        argv = [a if a != "segmentation" else "classification" for a in argv]
    return name, argv, poisoned


def damaged(rng, counts) -> None:
    from test_hostile import make_study

    with tempfile.TemporaryDirectory(prefix="alz-fuzz-") as tmp:
        study = make_study(Path(tmp) / "s.db")
        data = bytearray(study.read_bytes())
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        study.write_bytes(bytes(data))
        command = pick(rng, [["show", str(study), "--json"],
                             ["export", str(study), "--format", "json"],
                             ["search", "--task", "classification", "--budget", "0",
                              "--workers", "1", "--quiet", "--study", str(study)]])
        rc, _, err = tf.run_cli(command, tmp)
        tf.check_damaged_run(command[0], rc, err, study, bytes(data))
        counts[f"damaged_{command[0]}_exit_{rc}"] += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formulas", type=int, default=100_000)
    ap.add_argument("--cli", type=int, default=500)
    ap.add_argument("--damaged", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    counts: collections.Counter = collections.Counter()
    failures: list[dict] = []
    t0 = time.time()

    def fail(what, case):
        failures.append({"what": what, "case": repr(case)[:2000],
                         "error": traceback.format_exc(limit=3)[-2000:]})
        counts[f"{what}_FAILED"] += 1

    for i in range(args.formulas):
        kind, text = formula(rng)
        try:
            outcome = tf.check_formula(text)
            counts["formulas"] += 1
            counts[f"formulas_{outcome}"] += 1
            counts[f"formulas_{kind}_{outcome}"] += 1
        except Exception:  # noqa: BLE001 - recorded, the run goes on
            fail("formula", text)
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1} formulas, {time.time() - t0:.0f} s", flush=True)
    print(f"{args.formulas} formulas, {time.time() - t0:.0f} s", flush=True)
    for _ in range(args.cli):
        name, argv, poisoned = command_line(rng)
        try:
            rc = tf.check_command(argv, poisoned)
            counts["cli"] += 1
            counts[f"cli_exit_{rc}"] += 1
            counts[f"cli_{name}_exit_{rc}"] += 1
        except Exception:  # noqa: BLE001
            fail("cli", argv)
    print(f"{args.cli} command lines, {time.time() - t0:.0f} s", flush=True)
    for _ in range(args.damaged):
        try:
            damaged(rng, counts)
            counts["damaged"] += 1
        except Exception:  # noqa: BLE001
            fail("damaged", "")
    result = {"seed": args.seed, "seconds": round(time.time() - t0),
              "date": time.strftime("%Y-%m-%d %H:%M"), "counts": dict(sorted(counts.items())),
              "failures": failures[:50]}
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
