"""Screening (Eq. 3) on the detection tasks with plain Adam on the raw outputs.

Shows that known-good losses raise the per-sample metric and bad ones lower it, and
times ``sample_metric`` and one screening step. Run:

    PYTHONPATH=src python benchmarks/detection_screening.py [--task instance-segmentation]
"""

from __future__ import annotations

import argparse
import time

import torch

from autoloss_zero.expr.compile import CompiledLoss
from autoloss_zero.expr.tree import parse
from autoloss_zero.tasks import get_task
from autoloss_zero.tasks.base import tree_map

CE = "Neg(Mul(y, Log(yhat)))"
GIOU = "Add(Add(1, Neg(Mul(i, Inv(u)))), Mul(Add(e, Neg(u)), Inv(e)))"
IOU_UP = "Mul(i, Inv(u))"  # minimizing it drives IoU down
L2_BOX = "Square(Add(u, Neg(i)))"  # (U - I) / G: zero exactly at a perfect box

CANDIDATES = {
    "ce+giou": {"cls": CE, "reg": GIOU, "mask": CE},
    "ce+(1-iou)": {"cls": CE, "reg": "Add(1, Neg(Mul(i, Inv(u))))", "mask": CE},
    "ce+(u-i)^2": {"cls": CE, "reg": L2_BOX, "mask": CE},
    "ce+iou (bad reg)": {"cls": CE, "reg": IOU_UP, "mask": CE},
    "-ce+giou (bad cls)": {"cls": f"Neg({CE})", "reg": GIOU, "mask": f"Neg({CE})"},
    "-ce+iou (all bad)": {"cls": f"Neg({CE})", "reg": IOU_UP, "mask": f"Neg({CE})"},
    "giou only": {"cls": "1", "reg": GIOU, "mask": "1"},
    "iou only (bad)": {"cls": "1", "reg": IOU_UP, "mask": "1"},
    "ce only": {"cls": CE, "reg": "1", "mask": CE},
    "-ce only (bad)": {"cls": f"Neg({CE})", "reg": "1", "mask": f"Neg({CE})"},
}


def formula(task, parts: dict[str, str]) -> str:
    kinds = {"cls_rpn": "cls", "cls_rcnn": "cls", "reg_rpn": "reg", "reg_rcnn": "reg",
             "mask": "mask"}
    return "; ".join(f"{b}: {parts[kinds[b]]}" for b in task.branch_names)


def screen(task, batch, loss_text: str, metric: str, steps: int, lr: float):
    """Mean metric gain of Eq. (3) and the seconds per Adam step."""
    compiled = CompiledLoss(parse(loss_text, leaves=task.leaf_spec()))
    raw = tree_map(lambda t: t.detach().clone().requires_grad_(True), batch.raw)
    before = task.sample_metric(raw, batch.target, metric)
    opt = torch.optim.Adam(list(raw.values()), lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = compiled.per_sample(task.branch_inputs(raw, batch.target)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / steps
    after = task.sample_metric(raw, batch.target, metric)
    return float((after - before).mean()), per_step, before, after


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="detection")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = get_task(args.task)
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        batch = task.screening_batch(args.samples, seed)
        print(f"seed {seed}: screening batch in {time.perf_counter() - t0:.2f} s")
        for metric in task.metrics:
            t0 = time.perf_counter()
            for _ in range(10):
                task.sample_metric(batch.raw, batch.target, metric)
            cost = (time.perf_counter() - t0) / 10
            print(f"  {metric}: sample_metric {1000 * cost:.1f} ms per call")
            for name, parts in CANDIDATES.items():
                g, step, _, after = screen(task, batch, formula(task, parts), metric,
                                           args.steps, args.lr)
                print(f"    {name:20s} gain {g:+.4f}  ({1000 * step:.1f} ms/step)")


if __name__ == "__main__":
    main()
