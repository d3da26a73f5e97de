"""Hand-written R-CNN box losses through today's per-branch test, per screening seed.

Working box losses (IoU, GIoU, e/i, u/i) and degenerate ones (functions of one area only:
grow the box without bound, shrink it into the object, ...) are screened on the
``reg_rcnn`` branch (CE and IoU on the other branches) with the screening samples of
master seeds 0-3 (detection) and 0-1 (instance segmentation). Writes a markdown table.

    python benchmarks/branch_gap_panel.py --out results/branch-gap-panel.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from provenance import provenance

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener

BOXES = {
    "IoU loss": "Add(1, Neg(Mul(i, Inv(u))))",
    "GIoU loss": "Add(Add(1, Neg(Mul(i, Inv(u)))), Mul(Add(e, Neg(u)), Inv(e)))",
    "e/i": "Mul(e, Inv(i))", "u/i": "Mul(u, Inv(i))",
    "-i": "Neg(i)", "1/i": "Inv(i)", "-log i": "Neg(Log(i))", "tanh(e)²": "Square(Tanh(e))",
    "e^(-2e)": "Square(Exp(Neg(e)))", "u²": "Square(u)", "maxpool(sqrt(log e))":
    "MaxPool3x3(Sqrt(Log(e)))",
}
TASKS = (("detection", (0, 1, 2, 3), ""),
         ("instance-segmentation", (0, 1), "; mask: Neg(Log(Mul(y, yhat)))"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    prov = provenance()
    lines = ["# Hand-written R-CNN box losses through the per-branch test", "",
             f"Command: `{prov['command']}`  ", f"Machine: {prov['machine']}; date "
             f"{prov['date']}.", "",
             "Today's defaults (branch_min_gap 0.1, branch_hold 0.1) and the rule before "
             "2026-12-04 (both 0): accepted (closed fraction of the gap) or rejected, with "
             "each seed's screening samples; `-` = accepted without a verdict (no gap).", "",
             "| task | seed | rule | " + " | ".join(BOXES) + " |",
             "|---|---|---|" + "---|" * len(BOXES)]
    for name, seeds, extra in TASKS:
        task = az.get_task(name)
        head = ("cls_rpn: Neg(Log(Mul(y, yhat))); reg_rpn: Add(1, Neg(Mul(i, Inv(u)))); "
                f"cls_rcnn: Neg(Log(Mul(y, yhat))){extra}; reg_rcnn: ")
        for seed in seeds:
            for rule, screening in (("today", {}), ("before", {"branch_min_gap": 0.0,
                                                              "branch_hold": 0.0})):
                scr = Screener.from_config(task, "map", SearchConfig.from_dict(
                    {"seed": seed, "screening": screening}))
                cells = []
                for formula in BOXES.values():
                    r = scr.screen_branch(task.as_task_loss(head + formula), "reg_rcnn")
                    g = "-" if r.g is None else f"{r.g:.2f}"
                    cells.append(f"ok ({g})" if r.accepted else f"**rejected** ({g})")
                lines.append(f"| {name} | {seed} | {rule} | " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
