"""Would screening's fit test have saved proxy trainings in finished searches?

The panel is every distinct loss proxy-trained in the given studies (their scores are the
proxy's, with the study's own task options). For each loss, the screener of the study's
task (default screening samples) trains a fresh network on the screening samples alone
for each ``--steps`` count (``screening.fit_lr``) and records the metric gain there (the
fit test's gain, :meth:`Screener.fit_gain`). The summary says, per steps and threshold,
how many proxy trainings the fit test would have rejected, how many of them went to
losses that barely train (proxy score below ``--dead``), and which of the study's best
losses it would have lost. Resumable (rows already measured are kept). Example:

    python benchmarks/fit_test_studies.py --task segmentation --metric miou \\
        --studies results/exploration-segmentation/*.db --dead 0.1 \\
        --out benchmarks/results/fit-test-segmentation-miou.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from provenance import provenance
from scipy.stats import spearmanr

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.study import StudyReader

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def panel(studies: list[Path]) -> tuple[dict, list[dict]]:
    """The task options of the studies (one set) and their distinct evaluated losses,
    each with its best proxy score over the studies."""
    options, losses = None, {}
    for path in studies:
        with StudyReader(path) as reader:
            cfg = reader.meta()["config"]
            opts = cfg.get("task_options") or {}
            if options is not None and opts != options:
                raise SystemExit(f"{path}: other task options than the first study")
            options = opts
            for c in reader.candidates("WHERE status = 'evaluated'"):
                if c.score is None:
                    continue
                row = losses.setdefault(c.formula, {"formula": c.formula, "proxy": c.score,
                                                    "study": path.name})
                row["proxy"] = max(row["proxy"], c.score)
    return options or {}, sorted(losses.values(), key=lambda r: -r["proxy"])


def summarize(rows: list[dict], steps: list[int], dead: float, top: int) -> dict:
    best = {r["formula"] for r in rows[:top]}
    out = {}
    for n in steps:
        key = str(n)
        gains = [r["fit"][key] for r in rows]
        valid = [(r["proxy"], g) for r, g in zip(rows, gains) if g is not None]
        per = {"spearman_rho": float(spearmanr(*zip(*valid)).statistic) if valid else None}
        for eta in THRESHOLDS:
            cut = [r for r in rows if r["fit"][key] is None or r["fit"][key] < eta]
            per[f"fit_eta {eta}"] = {
                "rejected": len(cut),
                "rejected_dead": sum(r["proxy"] < dead for r in cut),
                "dead_total": sum(r["proxy"] < dead for r in rows),
                "rejected_top": sorted(r["formula"] for r in cut if r["formula"] in best),
                "best_rejected_proxy": max((r["proxy"] for r in cut), default=None),
            }
        out[key] = per
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--studies", nargs="+", type=Path, required=True)
    ap.add_argument("--steps", nargs="+", type=int, default=[60, 200])
    ap.add_argument("--dead", type=float, default=0.1,
                    help="a proxy score below this counts as a loss that barely trains")
    ap.add_argument("--top", type=int, default=10, help="the best losses to watch")
    ap.add_argument("--exclude", type=Path, action="append", default=[],
                    help="a results file of this script whose losses are left out "
                         "(a held-out panel)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    options, rows = panel(args.studies)
    seen = {r["formula"] for p in args.exclude for r in json.loads(p.read_text())["rows"]}
    rows = [r for r in rows if r["formula"] not in seen]
    task = az.get_task(args.task, **options)
    done = {}
    if args.out.exists():
        done = {r["formula"]: r for r in json.loads(args.out.read_text())["rows"]}
    screeners = {n: Screener.from_config(task, args.metric, SearchConfig.from_dict(
        {"screening": {"fit_steps": n}})) for n in args.steps}

    def write():
        args.out.write_text(json.dumps({
            **provenance(), "task": args.task, "metric": args.metric, "task_options": options,
            "studies": [str(p) for p in args.studies],
            "excluded": [str(p) for p in args.exclude], "fit_lr": SearchConfig().screening.fit_lr,
            "dead_below": args.dead, "losses": len(rows),
            "summary": summarize([r for r in rows if "fit" in r], args.steps, args.dead,
                                 args.top),
            "rows": rows}, indent=2) + "\n")

    for i, row in enumerate(rows):
        old = done.get(row["formula"], {}).get("fit", {})
        row["fit"] = {}
        for n, screener in screeners.items():
            gain = old.get(str(n))
            if str(n) not in old:
                g = screener.fit_gain(task.as_task_loss(az.parse(row["formula"])))
                gain = None if g != g else g
            row["fit"][str(n)] = gain
        print(f"{i + 1}/{len(rows)} proxy {row['proxy']:.3f} fit {row['fit']} "
              f"{row['formula']}", flush=True)
        if (i + 1) % 5 == 0:
            write()
    write()
    print(json.dumps(json.loads(args.out.read_text())["summary"], indent=1))


if __name__ == "__main__":
    main()
