"""Issue 18: exploration beyond single-parent mutation, measured against the paper's operators.

Each ``--variant NAME=CONFIG.toml`` is searched with every ``--seeds`` master seed, all at
the same budget in proxy-training equivalents. ``--stages`` raises the budget step by step
(every variant and seed reaches a stage before any goes on), so that a run stopped at any
point leaves comparisons at equal budget; every search resumes from its study
(``OUT/NAME-sSEED.db``). Then each study's rank-1 loss is re-trained with the full schedule
(``--retrain-seeds`` seeds, test split) beside the baselines, unless ``--no-retrain``.

The report (``OUT.md``, ``OUT.json``, ``OUT.png``) gives, per search: the budget spent, the
best proxy score and when it was found, the share of joined members that contain a
region-level term (an aggregate ``Mean_nhw`` over a subtree holding both a prediction and a
target leaf), the rank-1 loss and its re-trained score; and the best proxy score over
proxy-training equivalents (a Figure-4-style plot). ``--report-only`` writes it from the
studies as they are.

    python benchmarks/exploration.py --task segmentation --metric miou \\
        --variant paper=benchmarks/configs/explore-paper.toml \\
        --variant both=benchmarks/configs/explore-both.toml \\
        --seeds 0 1 --stages 50 100 150 --baseline ce --out results/exploration-segmentation
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from provenance import provenance

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.expr.mutate import has_region_term as region_term
from autoloss_zero.expr.ops import all_operators
from autoloss_zero.progress import SearchProgress
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import StudyReader


def has_region_term(formula: str, task) -> bool:
    """Whether some branch holds a region-level term (``mutate.has_region_term``; the
    formula may use any registered operator: a variant's config registered it)."""
    ops = all_operators()
    loss = task.as_task_loss(formula, operators=ops)
    spec = {b.name: b for b in task.branches}
    return any(region_term(expr.node, ops, spec[name].prediction_leaves,
                           spec[name].target_leaves) for name, expr in loss.branches)


def offspring_kind(label: str) -> str:
    """init, copy, reinit, crossover, sum, region_sum, graft (a mutation with a graft),
    weight (a mutation with a weight) or mutate."""
    label = label.split(" with #")[0].split(":")[-1]
    if label in ("init", "copy", "reinit", "crossover", "sum", "region_sum"):
        return label
    return "graft" if "graft" in label else "weight" if "weight" in label else "mutate"


def study_facts(path: Path, task, dead: float) -> dict:
    with StudyReader(path) as r:
        cands = r.candidates()
        done = sorted((c for c in cands if c.status == "evaluated"),
                      key=lambda c: (c.finished or 0.0, c.id))
        curve, best, best_at = [], None, None
        for i, c in enumerate(done, 1):
            if c.score is not None and (best is None or c.score > best):
                best, best_at = c.score, i
            curve.append(best)
        joined = [c for c in r.candidates("WHERE joined IS NOT NULL")]
        region = sum(has_region_term(c.formula, task) for c in joined)
        top = r.leaderboard(1)
        kinds: dict[str, int] = {}
        for c in cands:
            if c.mutation and c.status != "rejected":
                kind = offspring_kind(c.mutation)
                kinds[kind] = kinds.get(kind, 0) + 1
        stats = r.meta().get("stats") or {}
        screen_s = sum(c.screen_s or 0.0 for c in cands)
        score = {c.id: c.score for c in cands if c.status in ("evaluated",
                                                                         "duplicate")}

        def made_by(kind: str) -> dict:
            """The trained children of one offspring kind: count, best, above parent."""
            kids = [c for c in done if c.mutation and offspring_kind(c.mutation) == kind]
            return {"trained": len(kids),
                    "best": max((c.score for c in kids if c.score is not None),
                                default=None),
                    "above_parent": sum(c.score is not None and c.parent in score
                                        and score[c.parent] is not None
                                        and c.score > score[c.parent] for c in kids)}
        return {"evaluations": len(done), "spent": r.spent(), "best_proxy": best,
                "best_at": best_at,
                "below_dead": sum(c.score is None or c.score < dead for c in done),
                "screen_s": screen_s, "wall_s": stats.get("wall_s"),
                "curve": curve, "joined": len(joined), "joined_with_region_term": region,
                "rank1": top[0].formula if top else None,
                "rank1_score": top[0].score if top else None, "offspring": kinds,
                "region_sums": made_by("region_sum"), "weighted": made_by("weight")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="segmentation")
    ap.add_argument("--metric", default="miou")
    ap.add_argument("--variant", action="append", required=True, help="NAME=CONFIG.toml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--stages", type=int, nargs="+", default=[50, 100, 150])
    ap.add_argument("--baseline", action="append", default=[])
    ap.add_argument("--retrain-seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", default=None, help="JSON-lines runs file of the re-trainings")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dead", type=float, default=0.1,
                    help="a proxy score below this counts as a training spent on a loss "
                         "that barely trains")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="search only these variants (the others' studies are reported as "
                    "they stand); repeatable")
    ap.add_argument("--no-retrain", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = [v.partition("=")[::2] for v in args.variant]
    unknown = set(args.only) - {name for name, _ in variants}
    if unknown:
        ap.error(f"--only: no variant {', '.join(sorted(unknown))}")
    configs = {name: SearchConfig.from_toml(path) for name, path in variants}
    for cfg in configs.values():
        cfg.operator_set()  # registers a variant's own operators (for --report-only too)
    studies = {(name, s): out / f"{name}-s{s}.db" for name, _ in variants for s in args.seeds}
    if not args.report_only:
        for stage in args.stages:
            for s in args.seeds:
                for name, _ in variants:
                    if args.only and name not in args.only:
                        continue
                    cfg = SearchConfig.from_dict({**configs[name].to_dict(), "seed": s})
                    with SearchProgress() as progress:
                        az.search(args.task, args.metric, stage, studies[(name, s)], cfg,
                                  workers=args.workers, progress=progress).close()
    rows = []
    for (name, s), path in studies.items():
        if not path.exists():
            continue
        task = az.get_task(args.task, **configs[name].task_options)
        rows.append({"variant": name, "seed": s, "config": dict(variants)[name],
                     "study": str(path), **study_facts(path, task, args.dead)})
    baselines: dict = {}
    if rows and not args.no_retrain and not args.report_only:
        losses = [*args.baseline, *[f"study:{r['study']}#1" for r in rows]]
        runs = args.runs or str(out / "runs.jsonl")
        modules = sorted({m for c in configs.values() for m in c.operator_modules})
        res = compare(args.task, losses, args.retrain_seeds, None, "full", args.workers,
                      results=runs, operator_modules=modules)
        table = {r["loss"]: r["metrics"][args.metric] for r in res.summary()}
        for r in rows:
            st = table[f"study:{r['study']}#1"]
            r["retrained"] = {"mean": st["mean"], "std": st["std"], "values": st["values"]}
        baselines = {b: {k: table[b][k] for k in ("mean", "std", "values")}
                     for b in args.baseline}
    report = {**provenance(), "task": args.task, "metric": args.metric, "stages": args.stages,
              "dead_below": args.dead, "searches": rows, "baselines": baselines}
    report["variants"] = variant_summary(report)
    for suffix, text in ((".json", json.dumps(report, indent=1) + "\n"),
                         (".md", render(report))):
        target = Path(f"{out}{suffix}")
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    plot(report, Path(f"{out}.png"))
    print(render(report))


def render(rep: dict) -> str:
    m = rep["metric"]
    lines = [f"# {rep['task']} / {m}: exploration beyond the paper's offspring operators", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}; date {rep['date']}.",
             "", "Budget in proxy-training equivalents; region term: a joined member holding "
             "a region operator (`Mean_nhw`, `Ratio_nhw`) over both a prediction and a "
             "target leaf. Re-trained: the study's "
             "rank-1 loss, full schedule, test split. Below "
             f"{rep.get('dead_below', 0.1)}: proxy trainings that scored below it (spent on "
             "losses that barely train). Screening: the driver's seconds (g, fingerprints, "
             "fit tests), not counted in the budget; wall: the search's own clock, summed "
             "over its sessions.", ""]
    final = rep["stages"][-1]
    unfinished = [f"{r['variant']} seed {r['seed']} ({r['evaluations']})"
                  for r in rep["searches"] if _spent(r) < final - 1e-9]
    if unfinished or not rep["searches"]:
        lines += [f"**In progress** (every search goes to {final} equivalents; the numbers "
                  "below are partial and move): " + (", ".join(unfinished) or "none started")
                  + ".", ""]
    lines += [f"| variant | seed | evaluated / spent | best proxy {m} (at) | below "
              f"{rep.get('dead_below', 0.1)} | screening / wall (min) | joined with a region "
              f"term | rank-1 loss | re-trained {m} (test) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rep["searches"]:
        best = "-" if r["best_proxy"] is None else f"{r['best_proxy']:.4f} ({r['best_at']})"
        rt = r.get("retrained")
        rts = "-" if not rt else f"{rt['mean']:.4f} ± {rt['std']:.4f}"
        share = f"{r['joined_with_region_term']} / {r['joined']}"
        wall = "-" if not r.get("wall_s") else f"{r['wall_s'] / 60:.0f}"
        clock = f"{r.get('screen_s', 0.0) / 60:.1f} / {wall}"
        lines.append(f"| {r['variant']} | {r['seed']} | {r['evaluations']} / "
                     f"{_spent(r):g} | {best} "
                     f"| {r.get('below_dead', '-')} | {clock} | {share} "
                     f"| `{r['rank1']}` | {rts} |")
    for b, st in rep["baselines"].items():
        lines.append(f"| {b} (handcrafted) | | | | | | | `{b}` "
                     f"| {st['mean']:.4f} ± {st['std']:.4f} |")
    sums = [r for r in rep["searches"] if (r.get("region_sums") or {}).get("trained")]
    if sums:
        lines += ["", "Region sums (`Add(a, r)`; r a region-level member that won a "
                  "tournament, or with `region_pick = \"term\"` one region term, "
                  "either sign) trained: "
                  + "; ".join(f"{r['variant']} seed {r['seed']} {r['region_sums']['trained']}"
                              f" (best {_num(r['region_sums']['best'])}, "
                              f"{r['region_sums']['above_parent']} above their parent a)"
                              for r in sums) + "."]
    weighted = [r for r in rep["searches"] if (r.get("weighted") or {}).get("trained")]
    if weighted:
        lines += ["", "Weighted children (a mutation `weight`: part of the parent times a "
                  "target-only region weight) trained: "
                  + "; ".join(f"{r['variant']} seed {r['seed']} {r['weighted']['trained']}"
                              f" (best {_num(r['weighted']['best'])}, "
                              f"{r['weighted']['above_parent']} above their parent)"
                              for r in weighted) + "."]
    lines += ["", *variant_table(rep)]
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _spent(r: dict) -> float:
    """The budget a search spent (failed trainings count), else its evaluations."""
    return r.get("spent") or r["evaluations"]


def _mean_sd(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _cell(ms: tuple[float, float] | None, n: int) -> str:
    if ms is None:
        return "-"
    return f"{ms[0]:.4f} ± {ms[1]:.4f}" if n > 1 else f"{ms[0]:.4f}"


def variant_summary(rep: dict) -> dict[str, dict]:
    """Per variant: the best proxy score at each stage every seed reached (mean, sd over
    seeds), proxy trainings below the dead line, the rank-1 re-trained (mean over seeds of
    each seed's mean), and against the first variant (the paper's operators) at the last
    stage all reached: "beyond the seed spread" when the intervals mean ± sd do not meet."""
    by: dict[str, list] = {}
    for r in rep["searches"]:
        by.setdefault(r["variant"], []).append(r)
    out: dict[str, dict] = {}
    for name, rs in by.items():
        stages = {}
        for stage in rep["stages"]:
            if all(_spent(r) >= stage - 1e-9 for r in rs):
                bests = [r["curve"][min(stage, len(r["curve"])) - 1] for r in rs]
                stages[stage] = _mean_sd([b for b in bests if b is not None])
        rt = [r["retrained"]["mean"] for r in rs if r.get("retrained")]
        out[name] = {"seeds": len(rs), "stages": stages, "retrained": _mean_sd(rt),
                     "retrained_n": len(rt),
                     "below_dead": sum(r.get("below_dead", 0) for r in rs),
                     "trainings": sum(r["evaluations"] for r in rs)}
    names = list(out)
    if names:
        ref = out[names[0]]
        for name in names[1:]:
            v = out[name]
            if v["retrained"] and ref["retrained"] and min(v["retrained_n"],
                                                           ref["retrained_n"]) > 1:
                v["retrained_vs_first"] = _spread_verdict(v["retrained"], ref["retrained"])
            common = [s for s in v["stages"] if s in ref["stages"]]
            if not common or not v["stages"][common[-1]] or not ref["stages"][common[-1]]:
                continue
            v["vs_first"] = (common[-1], _spread_verdict(v["stages"][common[-1]],
                                                         ref["stages"][common[-1]]))
    return out


def _spread_verdict(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Compare two mean ± sd: beyond the spread only where the intervals do not meet."""
    (m, sd), (mr, sdr) = a, b
    return ("beyond the seed spread, higher" if m - sd > mr + sdr
            else "beyond the seed spread, lower" if m + sd < mr - sdr
            else "within the seed spread")


def decision(rep: dict, summary: dict | None = None) -> str:
    """The rule of issue 18 in words: an option becomes a default only where it beats the
    first variant (the paper's operators) beyond the seed spread, on the best proxy score
    at the last stage and on the rank-1 re-trained score alike. ``summary``: the report's
    variant_summary where the caller has it."""
    summary = summary or variant_summary(rep)
    first = next(iter(summary), None)
    if first is None:
        return ""
    done = all(_spent(r) >= rep["stages"][-1] - 1e-9 for r in rep["searches"])
    winners = [n for n, v in summary.items()
               if v.get("vs_first", (0, ""))[1] == "beyond the seed spread, higher"
               and v.get("retrained_vs_first") == "beyond the seed spread, higher"]
    if any(v["seeds"] < 2 for v in summary.values()):
        return "Decision: none (a verdict needs at least 2 search seeds per variant)."
    if not done or any(v["retrained_n"] < 2 for v in summary.values()):
        return "Decision: pending (not every search has reached its budget and been re-trained)."
    if winners:
        return ("Decision: beyond the seed spread of `" + first + "` on both the proxy and "
                "the re-trained score: " + ", ".join(f"`{w}`" for w in winners) + ".")
    return (f"Decision: no option beats `{first}` beyond the seed spread on both the proxy "
            f"and the re-trained score; `{first}` stays the default.")


def variant_table(rep: dict) -> list[str]:
    m = rep["metric"]
    summary = variant_summary(rep)  # from the searches, so a report re-renders from its JSON
    first = next(iter(summary), None)
    lines = ["Per variant (mean ± sd over search seeds; best proxy at each stage every seed "
             f"reached; the verdict compares with `{first}` at the last stage both reached):",
             "", "| variant | seeds | " + " | ".join(f"best proxy at {s}" for s in rep["stages"])
             + f" | below {rep.get('dead_below', 0.1)} | rank-1 re-trained {m} | vs {first} "
             f"(proxy) | vs {first} (re-trained) |",
             "|---|---|" + "---|" * len(rep["stages"]) + "---|---|---|---|"]
    for name, v in summary.items():
        cells = [_cell(v["stages"].get(s), v["seeds"]) for s in rep["stages"]]
        verdict = "" if "vs_first" not in v else f"{v['vs_first'][1]} (at {v['vs_first'][0]})"
        lines.append(f"| {name} | {v['seeds']} | " + " | ".join(cells)
                     + f" | {v['below_dead']} / {v['trainings']} | "
                     f"{_cell(v['retrained'], v['retrained_n'])} | {verdict} | "
                     f"{v.get('retrained_vs_first', '')} |")
    lines += ["", "Re-trained: the mean over search seeds of each rank-1's mean over its "
              "re-training seeds; its sd is across search seeds.", "", decision(rep, summary)]
    return lines


def plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    colors: dict[str, str] = {}
    for r in rep["searches"]:
        c = colors.setdefault(r["variant"], f"C{len(colors)}")
        xs = [i + 1 for i, y in enumerate(r["curve"]) if y is not None]
        ys = [y for y in r["curve"] if y is not None]
        ax.plot(xs, ys, color=c, linestyle=["-", "--", ":", "-."][r["seed"] % 4],
                label=f"{r['variant']} seed {r['seed']}")
    ax.set_xlabel("proxy trainings")
    ax.set_ylabel(f"best proxy {rep['metric']} so far")
    ax.set_title(f"{rep['task']}: the paper's operators vs exploration options")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


if __name__ == "__main__":
    main()
