"""Plots and reports of studies (the paper's Figure 4, leaderboards, time per stage)."""

from __future__ import annotations

import math
import re
import time
from collections import deque
from pathlib import Path

from .expr.ops import get_operators
from .expr.symbolic import to_latex
from .expr.tree import formula_leaves, parse
from .search.config import SearchConfig
from .search.status import STARTED, Status
from .search.study import StudyReader
from .textutil import md_code, md_text, one_line


def top_k_curve(reader: StudyReader, k: int = 5) -> tuple[list[int], list[float]]:
    """Mean of the top-k scores in the population after each finished evaluation.

    The population is replayed from the study: members join in order (``joined``) and
    only the most recent P are kept, as during the search.
    """
    size = SearchConfig.from_stored(reader.meta()["config"]).population.size
    rows = [c for c in reader.candidates("WHERE joined IS NOT NULL")]
    rows.sort(key=lambda c: c.joined)
    pop: deque = deque(maxlen=size)
    xs, ys, done = [], [], 0
    for c in rows:
        pop.append(c.score)
        if c.status.is_started():
            done += 1
            scores = sorted((s for s in pop if s is not None and math.isfinite(s)),
                            reverse=True)[:k]
            if scores:
                xs.append(done)
                ys.append(sum(scores) / len(scores))
    return xs, ys


def _label(reader: StudyReader, path: Path) -> str:
    meta = reader.meta()
    return one_line(f"{path.stem} ({meta['task']}/{meta['metric']})", 120)


def plot_studies(paths: list[str | Path], out: str | Path, k: int = 5) -> Path:
    """One PNG: mean of the top-k population scores vs evaluations, one curve per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    metrics = set()
    for p in paths:
        with StudyReader(p) as r:
            xs, ys = top_k_curve(r, k)
            metrics.add(r.meta()["metric"])
            ax.plot(xs, ys, marker="." if len(xs) < 60 else None, label=_label(r, Path(p)))
    ax.set_xlabel("evaluations (proxy trainings)")
    ax.set_ylabel(f"mean of top-{k} {'/'.join(sorted(metrics))}")
    ax.set_title("Search progress (population top-%d)" % k)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _seconds(x: float | None) -> str:
    if not x:
        return "0 s"
    return f"{x:.1f} s" if x < 120 else f"{x / 60:.1f} min"


def study_section(path: Path, top: int = 10) -> list[str]:
    with StudyReader(path) as r:
        meta = r.meta()
        counts = r.counts()
        rows = r.candidates()
        board = r.leaderboard(top)
        try:  # user operators are known only if their module is already imported
            ops = get_operators(meta.get("operators"))
        except ValueError:
            ops = None
        stats = meta.get("stats", {})
    train_s = sum(c.train_s or 0 for c in rows)
    screen_s = sum(c.screen_s or 0 for c in rows)
    screened = sum(1 for c in rows if c.g is not None or c.fingerprint is not None)
    shortcut = sum(1 for c in rows if c.status == Status.REJECTED and c.fingerprint is None
                   and c.duplicate_of is None)
    started = sum(counts[s] for s in STARTED)
    metric = md_text(meta["metric"], 80)
    lines = [
        f"## {md_text(path.name, 200)}: {md_text(meta['task'], 120)} / {metric}", "",
        f"Created {time.strftime('%Y-%m-%d %H:%M', time.localtime(meta.get('created', 0)))}; "
        f"budget {meta.get('budget')}; seed {meta['config']['seed']}.", "",
        "| candidates | screened | rejected | short-cut | duplicates | trainings | evaluated "
        "| invalid (NaN/Inf) | failed |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {len(rows)} | {screened} | {counts[Status.REJECTED]} | {shortcut} | "
        f"{counts[Status.DUPLICATE] + counts[Status.WAITING]} | {started} | "
        f"{counts[Status.EVALUATED]} | {counts[Status.INVALID]} | {counts[Status.FAILED]} |",
        "",
        "Time per stage: screening " + _seconds(screen_s)
        + f", proxy training {_seconds(train_s)} (summed over workers)"
        + f", driver {_seconds(stats.get('driver_s'))}, wall {_seconds(stats.get('wall_s'))}.",
        "", f"| rank | {metric} | formula | LaTeX |", "|---|---|---|---|",
    ]
    spec = _leaf_spec(meta)
    for i, c in enumerate(board, 1):
        tex = ""
        if ops is not None:
            try:
                leaves = spec or formula_leaves(c.formula, ops)
                tex = to_latex(parse(c.formula, leaves=leaves, operators=ops), ops)
            except ValueError:
                pass
        lines.append(f"| {i} | {c.score:.4f} | {md_code(c.formula)} | ${tex}$ |")
    return lines


def _leaf_spec(meta: dict):
    """The task's leaves by branch, or None (then read from each formula): a report
    imports no code a study names (see ``trust.py``)."""
    from .tasks import get_task
    from .trust import already_imported, builtin_task

    if not (builtin_task(meta["task"]) or already_imported(meta["task"])):
        return None
    try:
        task = get_task(meta["task"], **meta.get("task_config", {}))
    except ValueError:
        return None
    fixed = meta["config"].get("fixed", {})
    spec = {b: v for b, v in task.leaf_spec().items()
            if b not in fixed or _is_formula(fixed[b], v)}
    return spec if len(spec) > 1 else next(iter(spec.values()))


def _is_formula(text: str, leaves) -> bool:
    try:
        parse(text, leaves=leaves)
        return True
    except ValueError:
        return False


def _md_link(name: str) -> str:
    """A relative link target: plain names as they are, others in <...> with <, > quoted."""
    if re.fullmatch(r"[\w.-]+", name):
        return name
    return "<" + name.replace("<", "%3C").replace(">", "%3E").replace("\n", "%0A") + ">"


def write_report(paths: list[str | Path], out: str | Path, top: int = 10) -> Path:
    """Markdown: a plot of the search(es) and, per study, counts, time and leaderboard."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    plot_studies(paths, png)
    lines = ["# autoloss-zero report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} from "
             + ", ".join(md_code(p, 300) for p in paths) + ".", "",
             f"![search progress]({_md_link(png.name)})", "",
             "Curve: the mean of the top-5 scores in the population after each proxy "
             "training (the paper's Figure 4).", ""]
    for p in paths:
        lines += study_section(Path(p), top) + [""]
    out.write_text("\n".join(lines))
    return out
