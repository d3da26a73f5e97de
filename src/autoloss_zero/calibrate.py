"""Proxy calibration: does the short proxy training rank losses like the full schedule?

A search can only be as good as its proxy: it picks the loss that wins the proxy. This
trains a panel of losses (baselines, the task's reference losses, formulas, losses of
studies) with one or more candidate proxies (task options overridden, e.g.
``proxy_steps``, ``proxy_batch_size``) and with the task's full schedule, over seeds, and
reports per metric:

- ``kendall_tau`` and ``spearman``: rank agreement between the proxy's and the full
  schedule's means over the panel;
- ``noise``: the mean seed spread (std) of a loss's proxy scores divided by the spread
  (std) of the proxy means between losses: below 1, one proxy training tells losses
  apart; near or above 1, the search mostly ranks seeds;
- ``proxy_best_full_rank``: where the proxy's best loss stands in the full ranking (1 is
  the full schedule's best);
- ``seconds_per_proxy``: the mean wall time of one proxy training (on a loaded machine
  this is an upper bound).

Runs go through :func:`~autoloss_zero.compare.compare` and its JSON-lines results file,
so a calibration resumes where it stopped and shares finished runs (full-schedule runs
do not depend on ``proxy_*`` options and are trained once for every candidate proxy).
"""

from __future__ import annotations

import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare import compare
from .errors import ConfigError, TaskError
from .search.config import SearchConfig
from .search.status import Status
from .tasks import get_task
from .tasks.base import Task


@dataclass
class Proxy:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def parse_value(text: str) -> Any:
    """A ``--proxy KEY=VALUE`` value: a TOML value (number, boolean, quoted string), else
    the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--proxy: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def load_config(path: str | Path | None) -> tuple[SearchConfig, list[Proxy]]:
    """A search config TOML (its ``[task_options]`` are the base options) that may also
    list candidate proxies as ``[[proxy]]`` tables (``name`` and option overrides)."""
    if path is None:
        return SearchConfig(), []
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    tables = data.pop("proxy", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"config file {path}: 'proxy' must be an array of tables")
    proxies = []
    for i, table in enumerate(tables, 1):
        table = dict(table)
        name = str(table.pop("name", f"proxy {i}"))
        proxies.append(Proxy(name, table))
    return SearchConfig.from_dict(data), proxies


def default_panel(task: Task) -> list[str]:
    """The task's baselines and its known-good reference losses."""
    out = list(task.baselines)
    for formula in task.references.get("good", ()):
        if formula not in out:
            out.append(formula)
    return out


def _mean(xs):
    return statistics.fmean(xs) if xs else None


def agreement(proxy_rows: list[dict], full_rows: list[dict], metric: str) -> dict[str, Any]:
    """Rank agreement and noise of one proxy's table against the full table, one metric."""
    from scipy.stats import kendalltau, spearmanr

    full = {r["loss"]: r["metrics"][metric] for r in full_rows}
    pairs, spreads, means = [], [], []
    for r in proxy_rows:
        p, f = r["metrics"][metric], full.get(r["loss"])
        if p["mean"] is None or f is None or f["mean"] is None:
            continue
        pairs.append((r["loss"], p["mean"], f["mean"]))
        means.append(p["mean"])
        if len(p["values"]) > 1:
            spreads.append(statistics.pstdev(p["values"]))
    out: dict[str, Any] = {"losses": len(pairs), "kendall_tau": None, "spearman": None,
                           "noise": None, "proxy_best_full_rank": None}
    if len(pairs) >= 3:
        xs, ys = [p[1] for p in pairs], [p[2] for p in pairs]
        tau, rho = kendalltau(xs, ys).statistic, spearmanr(xs, ys).statistic
        out["kendall_tau"] = None if tau != tau else float(tau)
        out["spearman"] = None if rho != rho else float(rho)
        between = statistics.pstdev(means)
        if spreads and between > 0:
            out["noise"] = statistics.fmean(spreads) / between
        best = max(pairs, key=lambda p: p[1])
        out["proxy_best"] = best[0]
        out["proxy_best_full_rank"] = 1 + sum(1 for p in pairs if p[2] > best[2])
    return out


@dataclass
class Calibration:
    task: str
    metric: str
    metrics: tuple
    losses: list[str]
    seeds: int
    full_seeds: int
    proxies: list[dict]
    full: list[dict]

    def to_dict(self) -> dict[str, Any]:
        first = self.proxies[0]
        return {
            "task": self.task, "metric": self.metric, "losses": self.losses,
            "seeds": self.seeds, "full_seeds": self.full_seeds,
            # the first (or only) proxy at the top level, every proxy under "proxies"
            "metrics": first["metrics"], "seconds_per_proxy": first["seconds_per_proxy"],
            "proxies": self.proxies, "full": self.full,
        }


def calibrate(
    task: str | Task,
    metric: str | None = None,
    losses: list[str] | None = None,
    proxies: list[Proxy] | None = None,
    seeds: int = 2,
    full_seeds: int | None = None,
    workers: int | None = None,
    results: str | Path | None = None,
    task_options: dict | None = None,
    device: str = "cpu",
    progress=None,
) -> Calibration:
    """Train the panel with every proxy and with the full schedule; compare rankings."""
    base = get_task(task, **(task_options or {})) if isinstance(task, str) else task
    metric = base.check_metric(metric or base.metrics[0])
    panel = list(losses) if losses else default_panel(base)
    if len(panel) < 3:
        raise TaskError("calibration needs at least 3 losses to rank (give --loss)")
    proxies = list(proxies or [Proxy("task default")])
    full_seeds = full_seeds or seeds
    options = dict(base.config)
    full = compare(base, panel, full_seeds, None, "full", workers, device, results,
                   progress=progress)
    full_rows = full.summary()
    out = []
    for proxy in proxies:
        try:
            t = type(base)(**{**options, **proxy.options})
        except TypeError as exc:
            raise TaskError(f"proxy {proxy.name!r}: {exc}") from None
        res = compare(t, panel, seeds, None, "proxy", workers, device, results,
                      progress=progress)
        rows = res.summary()
        times = [run.get("train_s") for row in res.rows for run in row["runs"]
                 if run.get("status") == Status.EVALUATED and run.get("train_s")]
        out.append({
            "name": proxy.name, "options": proxy.options,
            "seconds_per_proxy": _mean(times),
            "metrics": {m: agreement(rows, full_rows, m) for m in base.metrics},
            "means": {r["loss"]: {m: r["metrics"][m]["mean"] for m in base.metrics}
                      for r in rows},
            "stds": {r["loss"]: {m: r["metrics"][m]["std"] for m in base.metrics}
                     for r in rows},
        })
    full_table = [{"loss": r["loss"], "formula": r["formula"],
                   "means": {m: r["metrics"][m]["mean"] for m in base.metrics},
                   "stds": {m: r["metrics"][m]["std"] for m in base.metrics}}
                  for r in full_rows]
    return Calibration(full.task, metric, base.metrics, panel, seeds, full_seeds, out,
                       full_table)


def markdown(cal: dict[str, Any], command: str = "", when: str = "") -> str:
    """A calibration (``to_dict()``) as a Markdown report: the frontier, then the tables."""
    lines = [f"# {cal['task']}: proxy calibration", ""]
    if command:
        lines.append(f"Command: `{command}`  ")
    if when:
        lines.append(f"{when}  ")
    lines += [f"Panel: {len(cal['losses'])} losses; proxies {cal['seeds']} seeds (validation "
              f"split), full schedule {cal['full_seeds']} seeds (test split).", "",
              "## Frontier: fidelity against cost", "",
              "| proxy | options | s / proxy | " + " | ".join(
                  f"{m} tau" for m in cal["proxies"][0]["metrics"]) + " | noise "
              f"({cal['metric']}) |", "|---|---|---|" + "---|" * (
                  len(cal["proxies"][0]["metrics"]) + 1)]
    for p in cal["proxies"]:
        taus = []
        for a in p["metrics"].values():
            taus.append("-" if a["kendall_tau"] is None else f"{a['kendall_tau']:.2f}")
        noise = p["metrics"][cal["metric"]]["noise"]
        opts = ", ".join(f"{k}={v}" for k, v in p["options"].items()) or "(task default)"
        sec = "-" if p["seconds_per_proxy"] is None else f"{p['seconds_per_proxy']:.1f}"
        lines.append(f"| {p['name']} | {opts} | {sec} | " + " | ".join(taus) +
                     f" | {'-' if noise is None else f'{noise:.2f}'} |")
    for m in cal["proxies"][0]["metrics"]:
        lines += ["", f"## {m}", "", "| loss | full | " + " | ".join(
            p["name"] for p in cal["proxies"]) + " |", "|---|---|" + "---|" * len(cal["proxies"])]
        for row in sorted(cal["full"], key=lambda r: -(r["means"][m] or -1)):
            full = row["means"][m]
            cells = [f"{full:.4f} ± {row['stds'][m]:.4f}" if full is not None else "-"]
            for p in cal["proxies"]:
                mean, std = p["means"][row["loss"]][m], p["stds"][row["loss"]][m]
                cells.append("-" if mean is None else f"{mean:.4f} ± {std:.4f}")
            lines.append(f"| `{row['loss']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
