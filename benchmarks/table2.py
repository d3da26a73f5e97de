"""The paper's Table 2 in miniature, assembled from the segmentation results files.

Rows: the handcrafted baselines, then for each target metric the best searched loss;
columns: all six metrics (re-trained, full schedule, mean ± std over seeds, test split).
The target metric of each searched loss is underlined, as in the paper. Run after the
``search_and_compare.py`` segmentation runs (see run_all.sh):

    python benchmarks/table2.py > results/segmentation-table2.md
    python benchmarks/table2.py --results results/table2 > results/table2/segmentation-table2.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoloss_zero import get_operators, get_task, parse
from autoloss_zero.expr.symbolic import to_latex

METRICS = ("miou", "fwiou", "gacc", "macc", "biou", "bf1")
ROOT = Path(__file__).resolve().parents[1] / "results"


def cell(stats, underline=False):
    if not stats or stats.get("mean") is None:
        return "-"
    text = f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"
    return f"<u>{text}</u>" if underline else text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT,
                    help="the folder of the segmentation-METRIC.json files")
    root = ap.parse_args().results
    baselines, searched = {}, []
    for metric in METRICS:
        path = root / f"segmentation-{metric}.json"
        if not path.exists():
            continue
        rep = json.loads(path.read_text())
        rows = rep["compare"]["default"]["losses"]
        for row in rows:
            if row["loss"].startswith("study:"):
                if row["loss"].endswith("#1"):
                    when = f"{rep['evaluations']} proxy trainings, {rep['date']}"
                    searched.append((metric, row, when))
            else:
                baselines.setdefault(row["loss"], row)
    lines = ["Segmentation (64x64 animal-silhouette canvases, small encoder-decoder), re-trained "
             "with the full schedule; % mean ± std over 3 seeds on the held-out test split. "
             "Searched losses: the rank-1 loss of a search for the metric underlined.", "",
             "| loss | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for name, row in baselines.items():
        lines.append(f"| {name} | " + " | ".join(cell(row["metrics"].get(m)) for m in METRICS)
                     + " |")
    for metric, row, _ in searched:
        lines.append(f"| searched for {metric} | " + " | ".join(
            cell(row["metrics"].get(m), m == metric) for m in METRICS) + " |")
    lines += ["", "Formulas of the searched losses (as in the paper's Appendix B; the loss is "
              "the mean of the expression over pixels and classes, Eq. 2):", ""]
    leaves, ops = get_task("segmentation").leaf_spec()["loss"], get_operators()
    for metric, row, date in searched:
        tex = to_latex(parse(row["formula"], leaves=leaves, operators=ops), ops)
        lines.append(f"- {metric} ({date}): `{row['formula']}`  ")
        lines.append(f"  $\\mathcal{{L}}_{{\\mathrm{{{metric}}}}} = {tex}$")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
