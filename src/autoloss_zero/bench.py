"""``autoloss-zero bench rejection``: throughput of the loss-rejection protocol.

A stream of candidates is produced as the search produces them (random initialization
until K have passed, then offspring of a parent drawn from those that passed) and
screened at the given settings (B samples, steps, learning rate). Side by side, in the
same run and on the same kind of stream, a **naive** protocol screens candidates one
sample at a time, always running the full optimization (no batching of the B samples,
no short-cuts). Both run in ``processes`` worker processes (default: one per core), and
the rates are summed.
"""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import torch

from .expr.compile import CompiledLoss
from .expr.ops import DEFAULT_NAMES
from .expr.random import below
from .search.candidates import CandidateMaker
from .search.config import ScreeningConfig, SearchConfig
from .search.engines import cuda_devices
from .search.rejection import Screener
from .search.torch_settings import configure_torch
from .tasks import get_task
from .tasks.base import Task, tensors_of, tree_map


def candidate_stream(task: Task, config: SearchConfig, seed: int):
    """Yield losses as the search makes them: random ones until K have passed, then
    offspring of a parent drawn from those that passed. Send whether each one passed."""
    maker = CandidateMaker.from_config(task, config)  # the search's: fixed branches too
    rng = np.random.default_rng([seed, 99])
    pool: list = []
    while True:
        if len(pool) < config.population.initial:
            loss, _ = maker.random(rng)
        else:
            parent, kind = pool[below(rng, len(pool))], maker.draw_kind(rng)
            term = None
            if kind == "region_sum" and config.mutation.region_pick == "term":
                term = maker.region_term(rng, [(None, x) for x in pool], parent)
                if term is None:  # no region term: as the search, draw as without
                    kind = maker.draw_kind(rng, region=False)
            if term is not None:
                loss, _ = maker.term_sum(parent, *term[1:])
            else:
                other = pool[below(rng, len(pool))] if kind in ("recombine", "region_sum") \
                    else None
                loss, _ = maker.child(rng, parent, kind, other)
        if (yield loss):
            pool.append(loss)
            if len(pool) > config.population.size:
                pool.pop(0)


def _naive_screen(task: Task, metric: str, cfg: ScreeningConfig, raw0, target, before,
                  loss, operators=None) -> bool:
    """The protocol written plainly: each sample alone, always the full optimization."""
    compiled = CompiledLoss(loss, operators)
    gains = []
    for b in range(cfg.samples):
        raw = tree_map(lambda t, b=b: t[b : b + 1].clone().requires_grad_(True), raw0)
        tgt = tree_map(lambda t, b=b: t[b : b + 1], target)
        opt = torch.optim.Adam(tensors_of(raw), lr=cfg.lr)
        for _ in range(cfg.steps):
            opt.zero_grad()
            value = compiled.per_sample(task.branch_inputs(raw, tgt)).sum()
            if value.requires_grad:
                value.backward()
            opt.step()
        with torch.no_grad():
            gains.append(float(task.sample_metric(raw, tgt, metric)[0]) - float(before[b]))
    g = float(np.mean(gains))
    return g == g and g >= cfg.eta


def _worker(task_name: str, options: dict, metric: str, cfg_dict: dict, seconds: float,
            naive: bool, seed: int, threads: int, device: str) -> dict[str, Any]:
    configure_torch(threads)
    task = get_task(task_name, **options)
    config = SearchConfig.from_dict(cfg_dict)
    screener = Screener.from_config(task, metric, config, device)
    stream = candidate_stream(task, config, seed)
    loss = next(stream)
    n = accepted = shortcuts = optimized = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if naive:
            ok = _naive_screen(task, metric, config.screening, screener.raw0, screener.target,
                               screener.before, loss, screener.operators)
            optimized += 1
        else:
            res = screener.screen(loss)
            ok = res.accepted
            shortcuts += res.shortcut
            optimized += res.g is not None
        n += 1
        accepted += ok
        loss = stream.send(ok)
    elapsed = time.perf_counter() - t0
    return {"candidates": n, "accepted": accepted, "shortcuts": shortcuts,
            "optimized": optimized, "seconds": elapsed}


def reference_verdicts(task: Task, metric: str, config: SearchConfig,
                       device: str = "cpu") -> dict[str, Any]:
    """The verdicts on the task's known-good and known-bad losses, screened as the search
    screens. They are written with the paper's operators, which are added to the config's
    set for them (a custom set changes what can be compiled, not a verdict)."""
    names = list(dict.fromkeys([*config.operators, *DEFAULT_NAMES]))
    config = SearchConfig.from_dict({**config.to_dict(), "operators": names})
    screener = Screener.from_config(task, metric, config, device)
    out = {}
    for kind, formulas in task.references.items():
        for f in formulas:
            res = screener.screen(task.as_task_loss(f))
            out[f] = {"expected": kind, "accepted": res.accepted, "g": res.g,
                      "ok": res.accepted == (kind == "good")}
    return out


def bench_rejection(task_name: str, metric: str | None = None, seconds: float = 30.0,
                    processes: int | None = None, config: SearchConfig | None = None,
                    threads: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Candidates screened per minute by the protocol and by a naive loop, one after the
    other in the same run. ``device="cuda"`` screens on the GPU (one process by default:
    the processes share the device)."""
    if device == "cuda":
        cuda_devices()  # a one-line error when there is none
    config = config or SearchConfig()
    task = get_task(task_name, **config.task_options)
    metric = task.check_metric(metric or task.metrics[0])
    processes = processes or ((os.cpu_count() or 1) if device == "cpu" else 1)
    batch = Screener.from_config(task, metric, config).batch
    shapes = [tuple(t.shape) for t in tensors_of(batch.raw)]
    results = {}
    ctx = get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        for naive in (False, True):
            futs = [pool.submit(_worker, task_name, config.task_options, metric,
                                config.to_dict(), seconds, naive, 1000 + i, threads, device)
                    for i in range(processes)]
            parts = [f.result() for f in futs]
            results["naive" if naive else "ours"] = {
                k: sum(p[k] for p in parts) for k in parts[0]
            } | {"seconds": max(p["seconds"] for p in parts)}
    ours, naive = results["ours"], results["naive"]
    per_min = 60 * ours["candidates"] / ours["seconds"]
    naive_per_min = 60 * naive["candidates"] / naive["seconds"]
    s = config.screening
    return {
        "task": task_name, "metric": metric, "candidates_per_min": per_min,
        "naive_candidates_per_min": naive_per_min, "speedup": per_min / naive_per_min,
        "samples": s.samples, "steps": s.steps, "lr": s.lr, "eta": s.eta,
        "operators": list(config.operators), "digits": config.equivalence.digits,
        "resolution": shapes, "processes": processes, "threads_per_process": threads,
        "shortcut_share": ours["shortcuts"] / max(ours["candidates"], 1),
        "fully_optimized_per_min": 60 * ours["optimized"] / ours["seconds"],
        "acceptance_rate": ours["accepted"] / max(ours["candidates"], 1),
        "candidates": ours["candidates"], "naive_candidates": naive["candidates"],
        "seconds_each": seconds,
        "reference_verdicts": reference_verdicts(task, metric, config, device),
        "device": device if device == "cpu" else torch.cuda.get_device_name(device),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
    }
