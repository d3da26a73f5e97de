"""How often one evolution step from cross-entropy makes a class-weighted CE (issue 13.1).

The segmentation searches reach the class-balanced CE (CE / sqrt(class share), above CE
on mIoU and mAcc) only through a chain: CE, then a ``weight`` mutation that multiplies it
by a target-only region weight that up-weights rare classes. This measures the last link
without training anything: from CE as the tournament winner, N evolution steps of each
mutation config (the step's kind drawn as the search draws it; a step whose children fail
screening draws again, as the search does), and each screened child classified by its
gradient with respect to the logits on one real batch of the task's training masks:

- ``CE-equivalent``: a positive multiple of CE's gradient (a duplicate of CE),
- ``rare classes up`` / ``frequent classes up``: CE's gradient times a positive weight
  that is constant within each class and differs across classes (a class-weighted CE),
  ranked against the class shares (Spearman rho < 0 / > 0),
- ``other``: anything else (another loss, or negative weights).

    python benchmarks/weight_reach.py --steps 2000 --out results/weight-reach.json
    python benchmarks/weight_reach.py --report results/weight-reach.json  # the .md again

``--studies DB...`` classifies instead every trained loss of finished segmentation
studies (the reach measured in real searches), with its rank on the study's leaderboard:

    python benchmarks/weight_reach.py --studies results/exploration-segmentation/*.db \
        --out results/weight-reach-studies.md
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import autoloss_zero as az
from autoloss_zero.expr.compile import CompiledLoss
from autoloss_zero.search.candidates import CandidateMaker
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener

CE = "Neg(Log(Mul(y, yhat)))"
CONFIGS = {  # name: config file (None: the paper's defaults with the Table 2 proxy)
    "paper": "benchmarks/configs/table2-segmentation.toml",
    "weight": "benchmarks/configs/explore-weight.toml",
    "weight-inv": "benchmarks/configs/explore-weight-inv.toml",
    "weight-inv-root": "benchmarks/configs/explore-weight-inv-root.toml",
    "weight-pow": "benchmarks/configs/explore-weight-pow.toml",
}
KINDS = ("CE-equivalent", "rare classes up", "frequent classes up", "other")


def batch(task, n: int = 16, seed: int = 0):
    """Logits (requiring grad) and one-hot targets for ``n`` training masks."""
    _, target = task.split("train")
    rng = np.random.default_rng(seed)
    tgt = target[torch.as_tensor(rng.choice(len(target), size=n, replace=False))]
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn((n, task.num_classes, *tgt.shape[-2:]), generator=gen,
                         dtype=torch.float64)
    return logits, tgt


def logit_grad(loss, logits, tgt, task) -> torch.Tensor:
    z = logits.clone().requires_grad_(True)
    inputs = task.branch_inputs(z, tgt)
    value = CompiledLoss(loss)(inputs)
    (g,) = torch.autograd.grad(value, z)
    return g


def reference(maker, task, logits, tgt) -> tuple[torch.Tensor, np.ndarray]:
    """CE's logit gradient on the batch and each class's share of its pixels."""
    g_ce = logit_grad(maker.parse_loss(CE), logits, tgt, task)
    return g_ce, np.array([float((tgt == c).float().mean()) for c in range(task.num_classes)])


def ratio(g: torch.Tensor, g_ce: torch.Tensor) -> torch.Tensor:
    """Per pixel, the factor that best maps CE's logit gradient onto ``g`` (N, H, W)."""
    return (g * g_ce).sum(dim=1) / (g_ce * g_ce).sum(dim=1).clamp_min(1e-30)


def class_weights(r: torch.Tensor, tgt: torch.Tensor,
                  num_classes: int) -> tuple[list[int], np.ndarray]:
    """The classes present in the label map ``tgt`` and each one's mean of the per-pixel
    ratio ``r``."""
    present = [c for c in range(num_classes) if (tgt == c).any()]
    return present, np.array([float(r[tgt == c].mean()) for c in present])


def weight_exponent(g: torch.Tensor, g_ce: torch.Tensor, tgt: torch.Tensor,
                    shares: np.ndarray) -> float:
    """For a class-weighted CE: the slope of log(class weight) against log(class share),
    i.e. ``a`` in weight ~ share^a (class-balanced CE: -0.5, inverse frequency: -1)."""
    present, w = class_weights(ratio(g, g_ce), tgt, g.shape[1])
    return float(np.polyfit(np.log(shares[present]), np.log(w), 1)[0])


def kind_of(g: torch.Tensor, g_ce: torch.Tensor, tgt: torch.Tensor, shares: np.ndarray,
            tol: float = 1e-4) -> str:
    """Classify a child's logit gradient against CE's (both (N, C, H, W))."""
    if not torch.isfinite(g).all():
        return "other"
    r = ratio(g, g_ce)
    resid = (g - r[:, None] * g_ce).norm() / g.norm().clamp_min(1e-30)
    if resid > tol or (r <= 0).any():
        return "other"
    present, per_class = class_weights(r, tgt, g.shape[1])
    spread = max(float((r[tgt == c].std() / r[tgt == c].mean()).nan_to_num())
                 for c in present)
    if spread > tol:
        return "other"  # a per-pixel weight, not a per-class one
    if per_class.max() / per_class.min() - 1 < tol:
        return "CE-equivalent"
    s = shares[present]
    rho = np.corrcoef(np.argsort(np.argsort(per_class)), np.argsort(np.argsort(s)))[0, 1]
    return "rare classes up" if rho < 0 else "frequent classes up"


def measure(name: str, path: str, steps: int, seed: int, task, logits, tgt,
            init: bool = False) -> dict:
    """``init``: every step a re-initialization (a fresh random loss, screened), the
    first link of the chain (how often the search finds CE itself)."""
    cfg = SearchConfig.from_toml(path)
    maker = CandidateMaker.from_config(task, cfg)
    screener = Screener.from_config(task, "miou", cfg, "cpu")
    parent = maker.parse_loss(CE)
    g_ce, shares = reference(maker, task, logits, tgt)
    counts = dict.fromkeys(("copy", "reinit", *KINDS), 0)
    examples: dict[str, list[str]] = {k: [] for k in KINDS}
    tries = rejected = 0
    exponents: list[float] = []
    t0 = time.perf_counter()
    for step in range(steps):
        rng = np.random.default_rng([seed, step])
        kind = "init" if init else maker.draw_kind(rng)
        if kind in ("copy", "reinit"):
            counts[kind] += 1  # a copy is CE again; a re-initialization does not use CE
            continue
        for _ in range(cfg.screening.max_tries):
            child = maker.random(rng)[0] if init else maker.child(rng, parent, kind)[0]
            tries += 1
            if screener.screen(child, optimize=True, fit=False).accepted:
                break
            rejected += 1
        else:
            counts["other"] += 1
            continue
        g = logit_grad(child, logits, tgt, task)
        k = kind_of(g, g_ce, tgt, shares)
        counts[k] += 1
        if k == "rare classes up":
            exponents.append(weight_exponent(g, g_ce, tgt, shares))
        if len(examples[k]) < 5 and k != "other":
            examples[k].append(str(child))
    return {"config": name + (" (re-initializations)" if init else ""), "file": path,
            "steps": steps, "counts": counts,
            "share": {k: counts[k] / steps for k in counts},
            "children_tried": tries, "children_rejected": rejected,
            "examples": examples, "rare_exponents": exponents,
            "seconds": time.perf_counter() - t0}


def study_rows(paths: list[str], task, logits, tgt) -> list[dict]:
    """Per study: its trained losses (leaderboard rows) by kind, and the best one that
    up-weights rare classes with its rank (the leaderboard's: confirmed first)."""
    from autoloss_zero.search.study import StudyReader

    maker = CandidateMaker.from_config(task, SearchConfig())
    g_ce, shares = reference(maker, task, logits, tgt)
    rows = []
    for path in paths:
        with StudyReader(path) as reader:
            board = reader.leaderboard()
        counts = dict.fromkeys(KINDS, 0)
        best, exponents = None, []
        for rank, c in enumerate(board, 1):
            try:
                g = logit_grad(maker.parse_loss(c.formula), logits, tgt, task)
                k = kind_of(g, g_ce, tgt, shares)
            except (ValueError, RuntimeError):
                k = "other"
            counts[k] += 1
            if k == "rare classes up":
                exponents.append((rank, weight_exponent(g, g_ce, tgt, shares)))
                if best is None:
                    best = {"rank": rank, "formula": c.formula, "proxy": c.score,
                            "confirmed": c.confirmed}
        rows.append({"study": path, "trained": len(board), "counts": counts,
                     "best_rare": best, "rare_exponents": exponents})
    return rows


def studies_markdown(rows: list[dict], command: str) -> str:
    lines = ["# Class-weighted CEs among the trained losses of segmentation studies (issue 13.1)",
             "", f"Command: `{command}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M')}; each "
             "distinct trained loss (leaderboard row) classified by its logit gradient on 16 "
             "training masks (benchmarks/weight_reach.py).", "",
             "| study | trained | CE-equivalent | rare classes up | frequent classes up | "
             "rare-up exponents a (weight ~ share^a; rank: a) | "
             "best rare-up loss: rank (proxy; confirmed) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        c, b = r["counts"], r["best_rare"]
        best = "-" if b is None else (
            f"{b['rank']} ({b['proxy']:.3f}; "
            f"{'-' if b['confirmed'] is None else format(b['confirmed'], '.3f')}) `{b['formula']}`")
        exps = ", ".join(f"{rank}: {a:.2f}" for rank, a in r["rare_exponents"]) or "-"
        lines.append(f"| {r['study']} | {r['trained']} | {c['CE-equivalent']} | "
                     f"{c['rare classes up']} | {c['frequent classes up']} | {exps} | {best} |")
    return "\n".join(lines) + "\n"


def markdown(data: dict) -> str:
    lines = [
        "# One evolution step from cross-entropy: how often a class-weighted CE (issue 13.1)",
        "", f"Command: `{data['command']}`  ", f"Date: {data['date']}; parent `{data['parent']}`"
        " as the tournament winner of every step; children screened as in the search; "
        "kinds by the logit gradient on 16 training masks (benchmarks/weight_reach.py).", "",
        "| config | steps | copy | re-init | CE-equivalent | rare classes up | "
        "frequent classes up | other | children rejected / tried |",
        "|---|---|---|---|---|---|---|---|---|"]
    later = [f"{r['config']}: {r['measured']}" for r in data["rows"] if "measured" in r]
    if later:  # a row measured alone later and merged (the command reproduces all rows)
        lines[3] += "  \nRows measured later, alone: " + "; ".join(later) + "."
    for r in data["rows"]:
        c, n = r["counts"], r["steps"]
        cells = " | ".join(f"{c[k]} ({100 * c[k] / n:.1f}%)" for k in ("copy", "reinit", *KINDS))
        lines.append(f"| {r['config']} (`{r['file']}`) | {n} | {cells} | "
                     f"{r['children_rejected']} / {r['children_tried']} |")
    lines += ["", "Children that up-weight rare classes, by their weight exponent a "
              "(weight ~ share^a, the slope of log class weight against log class share; "
              "the class-balanced CE has -0.5, inverse-frequency weighting -1):", "",
              "| config | rare classes up | a in [-0.75, -0.25] | a in (-1.25, -0.75) | "
              "other a | median a |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        a = np.array(r.get("rare_exponents", []))
        if not len(a):
            continue
        near = int(((a >= -0.75) & (a <= -0.25)).sum())
        inv = int(((a > -1.25) & (a < -0.75)).sum())
        lines.append(f"| {r['config']} | {len(a)} | {near} | {inv} | {len(a) - near - inv} | "
                     f"{float(np.median(a)):.2f} |")
    lines += ["", "Examples of children that up-weight rare classes:", ""]
    for r in data["rows"]:
        for f in r["examples"]["rare classes up"][:3]:
            lines.append(f"- {r['config']}: `{f}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", action="append", metavar="NAME=FILE",
                    help="configs to measure (default: paper, weight, weight-inv, "
                    "weight-inv-root, weight-pow)")
    ap.add_argument("--init", action="store_true",
                    help="also measure re-initializations (how often a random loss is CE)")
    ap.add_argument("--out", default="results/weight-reach.json")
    ap.add_argument("--studies", nargs="+", metavar="DB",
                    help="classify the trained losses of these studies (writes --out as .md)")
    ap.add_argument("--report", metavar="JSON", help="only write the .md of a JSON made before")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.studies:
        task = az.get_task("segmentation")
        logits, tgt = batch(task, seed=args.seed)
        command = "python benchmarks/weight_reach.py --studies " + " ".join(args.studies) + \
            f" --out {args.out}"
        Path(args.out).write_text(studies_markdown(study_rows(args.studies, task, logits, tgt),
                                                  command))
        return
    if args.report:
        Path(args.report).with_suffix(".md").write_text(
            markdown(json.loads(Path(args.report).read_text())))
        return
    configs = dict(c.split("=", 1) for c in args.config) if args.config else CONFIGS
    task = az.get_task("segmentation")
    logits, tgt = batch(task, seed=args.seed)
    rows = []
    jobs = [(name, path, False) for name, path in configs.items()]
    if args.init:  # re-initializations draw from the paper's operators in every config
        jobs.append((next(iter(configs)), next(iter(configs.values())), True))
    for name, path, init in jobs:
        rows.append(measure(name, path, args.steps, args.seed, task, logits, tgt, init))
        r = rows[-1]
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in r["counts"].items()), flush=True)
    chosen = "".join(f" --config {c}" for c in args.config or ())
    data = {"command": "python benchmarks/weight_reach.py --steps "
                       f"{args.steps} --seed {args.seed}{' --init' * args.init}{chosen} "
                       f"--out {args.out}",
            "date": time.strftime("%Y-%m-%d %H:%M"), "parent": CE, "rows": rows}
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    Path(args.out).with_suffix(".md").write_text(markdown(data))


if __name__ == "__main__":
    main()
