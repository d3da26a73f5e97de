"""Does anything in the paper's search space beat CE on segmentation? A panel of losses
written by hand in the search space's own operators, re-trained like a searched loss.

Issue 13.1's searches end on cross-entropy. Before spending more budget on search, this
asks whether the space holds better losses at all, and what it takes to reach them: each
panel loss is a formula over the paper's 14 operators (class-balanced cross-entropy,
cross-entropy plus a region term, boundary-weighted cross-entropy, ...), screened with
the search's own rejection protocol and config (would the search keep it?), and
re-trained with the full schedule over seeds on the test split beside CE and Lovász,
every metric of Table 2. Size and depth say how far each is from a random initial tree.
A panel loss that wins here is picked on the test split: it shows that such a loss
exists, not that it would win a fresh comparison. Writes ``<out>.md`` and ``<out>.json``;
resumes from the shared runs file.

    python benchmarks/segmentation_panel.py --config benchmarks/configs/table2-segmentation.toml \
        --runs results/segmentation.runs.jsonl --out results/segmentation-panel
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener

CE = "Neg(Log(Mul(y, yhat)))"
# (label, formula, what it is); y one-hot, yhat softmax probabilities; the loss is the
# mean of the expression over pixels and classes (Eq. 2); Mean_nhw averages over the
# batch and the pixels, per class, so Mean_nhw(y) is each class's pixel share.
PANEL = [
    ("ce (in the space)", CE, "cross-entropy as the searches write it"),
    ("cb-ce sqrt", f"Mul({CE}, Inv(Sqrt(Mean_nhw(y))))",
     "class-balanced CE, weight 1/sqrt(class share)"),
    ("cb-ce", f"Mul({CE}, Inv(Mean_nhw(y)))", "class-balanced CE, weight 1/(class share)"),
    ("ce + dice", f"Add({CE}, Neg(Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(Add(y, yhat))))))",
     "CE plus a soft Dice term per class (batch level)"),
    ("ce + log dice",
     f"Add({CE}, Neg(Log(Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(Add(y, yhat)))))))",
     "CE plus -log of the soft Dice ratio per class"),
    ("ce + jaccard",
     f"Add({CE}, Neg(Mul(Mean_nhw(Mul(y, yhat)), "
     "Inv(Mean_nhw(Add(Add(y, yhat), Neg(Mul(y, yhat))))))))",
     "CE plus a soft Jaccard term per class"),
    ("boundary ce", f"Mul({CE}, Add(1, Add(MaxPool3x3(y), Neg(MinPool3x3(y)))))",
     "CE with weight 2 on pixels within one pixel of a class boundary"),
    ("log-mean ce", "Log(Mean_nhw(Add(Log(Mul(Inv(yhat), Abs(Sqrt(y)))), 1)))",
     "the fit test's region-level rank-1 (issue 18, s1; 0.527 +- 0.003 mIoU there)"),
    ("ce + soft recall",
     f"Add({CE}, Neg(Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(y)))))",
     "CE minus the soft recall per class (added 2026-12-04: which region terms a region "
     "sum should join to CE)"),
    ("ce + inverse recall", f"Add({CE}, Mul(Mean_nhw(y), Inv(Mean_nhw(Mul(y, yhat)))))",
     "CE plus the inverse soft recall per class, the shape of the ratio variant's best "
     "region members (added 2026-12-04)"),
]
BASELINES = ["ce", "lovasz"]


def screen(screeners: dict, loss) -> dict:
    """The search's screening verdict on ``loss`` for each target metric."""
    out = {}
    for metric, screener in screeners.items():
        res = screener.screen(loss, optimize=True)
        out[metric] = {"accepted": res.accepted, "g": res.g, "reason": res.reason or None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="TOML search config (screening, task)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--proxy-seeds", type=int, default=4,
                    help="proxy trainings per panel loss (the config's proxy, validation "
                    "split, as the search scores it); 0: none")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--runs", required=True, help="JSON-lines file of finished trainings")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = SearchConfig.from_toml(args.config) if args.config else SearchConfig()
    task = az.get_task("segmentation", **cfg.task_options)
    screeners = {m: Screener.from_config(task, m, cfg) for m in task.metrics}
    rows = []
    for label, formula, what in PANEL:
        loss = task.as_task_loss(formula)
        rows.append({"label": label, "formula": formula, "what": what,
                     "size": loss.size, "depth": loss.depth,
                     "screening": screen(screeners, loss)})
    res = compare("segmentation", [*BASELINES, *(r["formula"] for r in rows)], args.seeds,
                  None, "full", args.workers, results=args.runs,
                  task_options=cfg.task_options).to_dict()
    trained = res["losses"]
    base = {b: trained[i]["metrics"] for i, b in enumerate(BASELINES)}
    for row, t in zip(rows, trained[len(BASELINES):]):
        row["metrics"], row["failed"] = t["metrics"], t["failed"]
        row["beats_ce"] = {m: beats(t["metrics"][m], base["ce"][m]) for m in res["metrics"]}
    if args.proxy_seeds:
        proxy = compare("segmentation", [r["formula"] for r in rows], args.proxy_seeds, None,
                        "proxy", args.workers, results=args.runs,
                        task_options=cfg.task_options).to_dict()["losses"]
        for row, t in zip(rows, proxy):
            row["proxy"] = t["metrics"]
    report = {**provenance(), "seeds": args.seeds, "proxy_seeds": args.proxy_seeds,
              "split": "test", "schedule": "full",
              "metrics": res["metrics"], "baselines": base, "panel": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(report))
    print(out.with_suffix(".md").read_text())


def beats(a: dict, ce: dict) -> bool | None:
    """Above CE by more than one standard deviation of either."""
    if a["mean"] is None or ce["mean"] is None:
        return None
    return a["mean"] - ce["mean"] > max(a["std"], ce["std"])


def cell(s: dict, mark: bool | None) -> str:
    if s["mean"] is None:
        return "-"
    text = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
    return f"**{text}**" if mark else text


def render(rep: dict) -> str:
    metrics = rep["metrics"]
    lines = ["# Segmentation: losses in the search space written by hand, against CE", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}; date {rep['date']}.",
             "", f"Full schedule, {rep['seeds']} seeds, test split, % mean ± std; **bold**: "
             "above CE by more than one standard deviation of either. Screening: the "
             "search's rejection protocol with the same config, per target metric "
             "(accepted everywhere unless said). These losses were picked by hand and are "
             "scored on the test split: a win shows the space holds such a loss, not that "
             "it would win a fresh comparison.", "",
             "| loss | size / depth | " + " | ".join(metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for b, stats in rep["baselines"].items():
        lines.append(f"| {b} (handcrafted) | | "
                     + " | ".join(cell(stats[m], False) for m in metrics) + " |")
    for row in rep["panel"]:
        lines.append(f"| {row['label']} | {row['size']} / {row['depth']} | "
                     + " | ".join(cell(row["metrics"][m], row["beats_ce"][m])
                                  for m in metrics) + " |")
    if rep.get("proxy_seeds"):
        ce = rep["panel"][0]["proxy"]
        lines += ["", f"What the search sees: the config's proxy, {rep['proxy_seeds']} "
                  "seeds, validation split (% mean ± std; the search ranks by this before "
                  "its rungs); the place among the panel losses in brackets; **bold**: "
                  "above CE in the space.", "",
                  "| loss | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for row in rep["panel"]:
            cells = []
            for m in metrics:
                place = 1 + sum(r["proxy"][m]["mean"] is not None and row["proxy"][m]["mean"]
                                is not None and r["proxy"][m]["mean"] > row["proxy"][m]["mean"]
                                for r in rep["panel"])
                above = (row is not rep["panel"][0] and row["proxy"][m]["mean"] is not None
                         and row["proxy"][m]["mean"] > ce[m]["mean"])
                cells.append(f"{cell(row['proxy'][m], above)} ({place})")
            lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Formulas:", ""]
    for row in rep["panel"]:
        rejected = [m for m, s in row["screening"].items() if not s["accepted"]]
        note = f" Rejected by screening for: {', '.join(rejected)}." if rejected else ""
        failed = f" Failed: {'; '.join(row['failed'])}." if row["failed"] else ""
        lines.append(f"- {row['label']}: `{row['formula']}` ({row['what']}).{note}{failed}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
