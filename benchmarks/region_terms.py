"""Would any region term the searches generated help cross-entropy? (issue 13.1)

CE + soft Dice beats CE on 5 of the 6 segmentation metrics (``segmentation_panel.py``),
yet no search from scratch ends on a sum of CE and a region term, with or without region
sums. Two causes are possible: the generator never makes a helpful region term, or it makes
some and the search never joins one to CE (region sums pick the joined term by its own
member's score). This tells them apart: every distinct region term (a largest subtree
whose every ``yhat`` lies below a region operator, over both ``y`` and ``yhat``, e.g.
``Neg(Ratio_nhw(Mul(y, yhat), yhat))``) in the given studies' candidates, or a seeded
random sample of ``--limit`` of them (an estimate of the share that helps), is joined to
CE as ``Add(CE, r)`` and ``Add(CE, Neg(r))``, screened with the search's own rejection
protocol, and trained with the config's proxy on the validation split (one seed, as the
search scores); CE and the best ``--confirm`` sums get ``--confirm-seeds`` seeds. A sum
above CE by more than one standard deviation of either is a region term the search could
have used; those are re-trained with the full schedule on the test split beside CE. For
each term it also says whether the studies ever trained a loss holding it, and the best
score of one. Writes ``<out>.md`` and ``<out>.json``; resumes from the shared runs file.

    PYTHONPATH=benchmarks python benchmarks/region_terms.py \
        --config benchmarks/configs/explore-ratio.toml \
        --studies results/exploration-segmentation/ratio-*.db --limit 24 --workers 2 \
        --runs results/segmentation.runs.jsonl --out results/region-terms
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from provenance import provenance
from segmentation_panel import beats, cell

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.expr.mutate import region_terms
from autoloss_zero.expr.ops import OperatorSet
from autoloss_zero.expr.tree import Node, node_text, normal_key, parse
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.study import StudyReader

CE = "Neg(Log(Mul(y, yhat)))"
METRIC = "miou"


def region_subtrees(node: Node, ops: OperatorSet) -> list[Node]:
    """The region terms of a one-branch segmentation loss (prediction ``yhat``)."""
    return region_terms(node, ops, ("yhat",), ("y",))


def collect(studies: list[Path], ops: OperatorSet) -> tuple[list[dict], int]:
    """Distinct region terms (by normal form) over the studies' candidates, with how often
    each was generated, how many trained losses held it and the best score of one."""
    terms: dict[str, dict] = {}
    count: Counter = Counter()
    n = 0
    for path in studies:
        with StudyReader(path) as st:
            for c in st.candidates():
                try:
                    node = parse(c.formula, operators=ops).node
                except ValueError:
                    continue
                n += 1
                seen = set()
                for sub in region_subtrees(node, ops):
                    key = normal_key(sub)
                    if key in seen:
                        continue
                    seen.add(key)
                    count[key] += 1
                    t = terms.setdefault(key, {"term": node_text(sub), "trained": 0,
                                               "best": None})
                    if c.score is not None:
                        t["trained"] += 1
                        t["best"] = c.score if t["best"] is None else max(t["best"], c.score)
    rows = [{**terms[k], "generated": count[k]} for k in terms]
    rows.sort(key=lambda r: (-r["generated"], len(r["term"]), r["term"]))
    return rows, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="TOML search config of the studies")
    ap.add_argument("--studies", nargs="+", required=True, help="study files to read")
    ap.add_argument("--limit", type=int, default=20,
                    help="terms to try, a random sample of the distinct terms")
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--confirm", type=int, default=4, help="best sums given more seeds")
    ap.add_argument("--confirm-seeds", type=int, default=4)
    ap.add_argument("--retrain-seeds", type=int, default=3,
                    help="full-schedule trainings (test split) of each confirmed winner and "
                    "CE; 0: none")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--runs", required=True, help="JSON-lines file of finished trainings")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = SearchConfig.from_toml(args.config)
    ops = cfg.operator_set()
    task = az.get_task("segmentation", **cfg.task_options)
    terms, generated = collect([Path(s) for s in args.studies], ops)
    screener = Screener.from_config(task, METRIC, cfg)
    sums, keys = [], set()
    order = np.random.default_rng(args.sample_seed).permutation(len(terms))
    tried = [terms[i] for i in sorted(order[:args.limit])]
    for t in tried:
        for sign, formula in (("+", f"Add({CE}, {t['term']})"),
                              ("-", f"Add({CE}, Neg({t['term']}))")):
            loss = task.as_task_loss(formula, operators=ops)
            key = normal_key(loss.branches[0][1].node)
            if key in keys:
                continue
            keys.add(key)
            res = screener.screen(loss, optimize=True)
            sums.append({"term": t["term"], "sign": sign, "formula": formula,
                         "accepted": res.accepted, "reason": res.reason or None})
    accepted = [s for s in sums if s["accepted"]]

    def proxy(formulas: list[str], seeds: int) -> list[dict]:
        res = compare("segmentation", formulas, seeds, None, "proxy", args.workers,
                      results=args.runs, task_options=cfg.task_options,
                      operator_modules=cfg.operator_modules).to_dict()
        return [t["metrics"][METRIC] for t in res["losses"]]

    for s, m in zip(accepted, proxy([s["formula"] for s in accepted], 1)):
        s["proxy1"] = m["mean"]
    ranked = sorted((s for s in accepted if s["proxy1"] is not None),
                    key=lambda s: -s["proxy1"])
    best = ranked[:args.confirm]
    stats = proxy([CE, *(s["formula"] for s in best)], args.confirm_seeds)
    ce = stats[0]
    for s, m in zip(best, stats[1:]):
        s["proxy"] = m
        s["beats_ce"] = bool(beats(m, ce))
    winners = [s for s in best if s["beats_ce"]]
    retrained = None
    if args.retrain_seeds and winners:
        res = compare("segmentation", ["ce", *(s["formula"] for s in winners)],
                      args.retrain_seeds, None, "full", args.workers, results=args.runs,
                      task_options=cfg.task_options,
                      operator_modules=cfg.operator_modules).to_dict()
        retrained = {"metrics": res["metrics"], "seeds": args.retrain_seeds,
                     "losses": [{"loss": "ce" if i == 0 else winners[i - 1]["formula"],
                                 "metrics": t["metrics"], "failed": t["failed"]}
                                for i, t in enumerate(res["losses"])]}
    report = {**provenance(), "metric": METRIC, "studies": args.studies,
              "candidates_read": generated, "distinct_terms": len(terms),
              "tried": len(tried), "sample_seed": args.sample_seed,
              "confirm_seeds": args.confirm_seeds, "ce": ce, "terms": tried, "sums": sums,
              "retrained": retrained}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(report))
    print(out.with_suffix(".md").read_text())


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render(rep: dict) -> str:
    ce = rep["ce"]
    sums = rep["sums"]
    accepted = [s for s in sums if s["accepted"]]
    above1 = [s for s in accepted if s.get("proxy1") is not None and s["proxy1"] > ce["mean"]]
    wins = [s for s in sums if s.get("beats_ce")]
    terms = {t["term"]: t for t in rep["terms"]}
    lines = ["# Segmentation: region terms the searches generated, joined to CE", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}; date {rep['date']}.",
             "", f"Studies: {', '.join(f'`{s}`' for s in rep['studies'])} "
             f"({rep['candidates_read']} candidates, {rep['distinct_terms']} distinct region "
             f"terms; a random sample of {rep['tried']} tried, seed {rep['sample_seed']}; "
             "generated: candidates holding the term, inherited ones included). Each term r "
             "is joined to CE "
             f"as Add(CE, r) and Add(CE, Neg(r)), screened with the search's rejection "
             f"protocol for {rep['metric']}, and trained with the config's proxy (validation "
             f"split, % {rep['metric']}). CE: {_pct(ce['mean'])} ± {_pct(ce['std'])} over "
             f"{rep['confirm_seeds']} seeds.", "",
             f"- Sums screened: {len(sums)}; accepted: {len(accepted)}; above CE's mean "
             f"with one seed: {len(above1)}; above CE by more than one standard deviation "
             f"of either with {rep['confirm_seeds']} seeds: {len(wins)}.", "",
             "| term r | sign | generated | trained in the studies (best) | screening | "
             f"proxy, 1 seed | proxy, {rep['confirm_seeds']} seeds |",
             "|---|---|---|---|---|---|---|"]
    for s in sums:
        t = terms[s["term"]]
        held = f"{t['trained']} ({_pct(t['best'])})" if t["trained"] else "0"
        screen = "accepted" if s["accepted"] else f"rejected: {s['reason']}"
        conf = cell(s["proxy"], s["beats_ce"]) if s.get("proxy") else "-"
        lines.append(f"| `{s['term']}` | {s['sign']} | {t['generated']} | {held} | {screen} "
                     f"| {_pct(s.get('proxy1'))} | {conf} |")
    rt = rep.get("retrained")
    if rt:
        ce_full = rt["losses"][0]["metrics"]
        lines += ["", f"Re-trained: CE and the sums above CE with {rep['confirm_seeds']} seeds, "
                  f"full schedule, {rt['seeds']} seeds, test split (% mean ± std; **bold**: "
                  "above CE by more than one standard deviation of either).", "",
                  "| loss | " + " | ".join(rt["metrics"]) + " |",
                  "|---|" + "---|" * len(rt["metrics"])]
        for row in rt["losses"]:
            cells = [cell(row["metrics"][m], row is not rt["losses"][0]
                          and beats(row["metrics"][m], ce_full[m])) for m in rt["metrics"]]
            label = "ce (handcrafted)" if row["loss"] == "ce" else f"`{row['loss']}`"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
