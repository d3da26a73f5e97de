"""The paper's Table 7 in miniature: random search vs AutoLoss-Zero, same evaluations.

Four searches with the same budget (proxy trainings) and seed ("rejected before training"
counts what the screening or the equivalence check's gradient test turned away):

- random search, nothing filtered (every random loss is trained);
- random search with only the gradient-equivalence check on, whose gradient computation
  drops losses that cannot train at all (no dependence on the prediction, NaN/Inf or zero
  gradient) and reuses the scores of equivalent ones;
- random search with the rejection protocol (random losses that pass screening);
- AutoLoss-Zero (evolution + rejection + equivalence check).

The best loss of each is then re-trained with the full schedule over seeds, next to
cross-entropy. Both stages resume (study files and a JSON-lines file of runs).

    python benchmarks/table7_random_search.py --task segmentation --metric miou --budget 40 \
        --runs results/segmentation.runs.jsonl

Also draws the paper's Figure 4 for the four searches (mean of the top-5 proxy scores vs
evaluations) next to the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.report import plot_studies
from autoloss_zero.search.config import SearchConfig

VARIANTS = [
    ("random-pure", "Random search", dict(strategy="random", screening=False, eq=False)),
    ("random", "Random search + equivalence check",
     dict(strategy="random", screening=False, eq=True)),
    ("random-rejection", "Random search + rejection + equivalence",
     dict(strategy="random", screening=True, eq=True)),
    ("autoloss-zero", "AutoLoss-Zero", dict(strategy="evolution", screening=True, eq=True)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="segmentation")
    ap.add_argument("--metric", default="miou")
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", default="ce")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--config", default=None, help="TOML search config shared by the four")
    ap.add_argument("--runs", default=None, help="JSON-lines file of finished re-trainings "
                    "shared with other scripts (baselines are trained once)")
    ap.add_argument("--out", default=None, help="results stem: writes STEM.md/.json/.png "
                    "and the studies in STEM/ (default: "
                    "benchmarks/results/table7-TASK-METRIC)")
    args = ap.parse_args()
    stem = Path(args.out) if args.out else (Path(__file__).parent / "results"
                                             / f"table7-{args.task}-{args.metric}")
    stem.mkdir(parents=True, exist_ok=True)
    base = SearchConfig.from_toml(args.config) if args.config else SearchConfig()
    base.seed = args.seed
    searches = {}
    for key, label, flags in VARIANTS:
        cfg = SearchConfig.from_dict(base.to_dict())
        cfg.strategy = flags["strategy"]
        cfg.screening.enabled = flags["screening"]
        cfg.equivalence.enabled = flags["eq"]
        study = stem / f"{key}.db"
        with az.search(args.task, args.metric, args.budget, study, cfg,
                       workers=args.workers) as r:
            board = r.leaderboard(1)
            searches[key] = {"label": label, "study": str(study), "evaluations": r.started(),
                             "counts": r.counts(),
                             "best_formula": board[0].formula if board else None,
                             "best_proxy_score": board[0].score if board else None}
    losses = [args.baseline] + [f"study:{s['study']}#1" for s in searches.values()
                                if s["best_formula"]]
    res = compare(args.task, losses, args.seeds, None, "full", args.workers,
                  results=Path(args.runs) if args.runs else stem / "runs.jsonl",
                  task_options=base.task_options or None)
    summary = {row["loss"]: row for row in res.summary()}
    rows = [{"label": f"{args.baseline} (handcrafted)", "formula": args.baseline,
             "retrained": summary[args.baseline]["metrics"]}]
    for s in searches.values():
        ref = f"study:{s['study']}#1"
        rows.append({"label": s["label"], "formula": s["best_formula"],
                     "proxy": s["best_proxy_score"], "evaluations": s["evaluations"],
                     "retrained": summary[ref]["metrics"] if ref in summary else None})
    figure = stem.with_suffix(".png")
    plot_studies([s["study"] for s in searches.values()], figure)
    out = {**provenance(), "task": args.task, "metric": args.metric, "budget": args.budget,
           "seeds": args.seeds, "config": args.config, "rows": rows, "searches": searches}
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2))
    m = args.metric
    lines = [f"Table 7 in miniature: {args.task}/{m}, {args.budget} proxy trainings per "
             f"search, best loss re-trained (full schedule, {args.seeds} seeds, test split; "
             f"{out['date']}, {out['machine']}).", "", f"Command: `{out['command']}`", "",
             f"| search | best loss | proxy {m} | re-trained {m} (mean ± std) |",
             "|---|---|---|---|"]
    for r in rows:
        st = (r["retrained"] or {}).get(m) or {}
        cell = "-" if st.get("mean") is None else f"{st['mean']:.4f} ± {st['std']:.4f}"
        proxy = "" if r.get("proxy") is None else f"{r['proxy']:.4f}"
        lines.append(f"| {r['label']} | `{r['formula']}` | {proxy} | {cell} |")
    lines += ["", "Screening and evaluation counts per search:", ""]
    for s in searches.values():
        c = s["counts"]
        lines.append(f"- {s['label']}: {s['evaluations']} proxy trainings, {c['rejected']} "
                     f"rejected before training, {c['duplicate']} duplicates, {c['invalid']} "
                     f"invalid (NaN/inf during training), {c['failed']} failed")
    lines += ["", f"Figure 4 for these searches: `{figure.name}`."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
