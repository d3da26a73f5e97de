"""The paper's Table 4 in miniature, from the JSON that ``detection_table4.sh`` writes.

One row per loss: which loss each of the four branches uses (a handcrafted id or "searched"),
then box mAP and mAP50 (full schedule, mean ± std over seeds, test split):

    python benchmarks/table4.py results/detection-table4.json > results/detection-table4.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoloss_zero.compare import mix_parts

BRANCHES = ("cls_rpn", "reg_rpn", "cls_rcnn", "reg_rcnn")
# the branch losses of the task's whole-loss baselines ("ce+l1": CE for both classifiers,
# L1 for both box branches)
WHOLE = {"ce+l1": ("ce", "l1"), "ce+iou": ("ce", "iou"), "ce+giou": ("ce", "giou")}


def branch_losses(loss: str) -> tuple[dict, dict]:
    """Each branch's loss as shown (an id or "searched") and the searched formulas."""
    if loss in WHOLE:
        cls, reg = WHOLE[loss]
        return {"cls_rpn": cls, "reg_rpn": reg, "cls_rcnn": cls, "reg_rcnn": reg}, {}
    shown, formulas = {}, {}
    for branch, value in mix_parts(loss) or ():
        if "(" in value:
            shown[branch], formulas[branch] = "searched", value
        else:
            shown[branch] = value
    return shown, formulas


def cell(stats) -> str:
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="the JSON of detection_table4.sh")
    rep = json.loads(ap.parse_args().report.read_text())
    lines = ["Detection (the built-in canvases, a small two-stage detector), re-trained with the "
             f"full schedule; % mean ± std over {rep['seeds']} seeds on the held-out test split. "
             "\"searched\": the branch loss of the R-CNN-head search (the RPN fixed to CE + L1, "
             "`benchmarks/configs/detection-fixed-rpn.toml`, results/detection-map-fixed-rpn.md), "
             "a labelled experiment, not a search from scratch.", "",
             "| " + " | ".join(BRANCHES) + " | mAP | mAP50 |", "|---" * (len(BRANCHES) + 2) + "|"]
    found = {}
    for row in rep["losses"]:
        shown, formulas = branch_losses(row["loss"])
        found.update(formulas)
        lines.append("| " + " | ".join(shown.get(b, "?") for b in BRANCHES) + " | "
                     + cell(row["metrics"]["map"]) + " | " + cell(row["metrics"]["map50"]) + " |")
    lines += ["", "Searched branch losses:", ""]
    lines += [f"- {b}: `{f}`" for b, f in found.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
