"""The ``autoloss-zero`` command line.

Every command has ``--help``. Bad input (usage errors included) exits 2 with a one-line
message on stderr and no traceback; set ``AUTOLOSS_ZERO_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .errors import USER_ERRORS
from .textutil import clip, one_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="AutoLoss-Zero: search loss functions from scratch for generic tasks.",
)


class Engine(StrEnum):
    local = "local"
    dask = "dask"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class Format(StrEnum):
    python = "python"
    latex = "latex"
    json = "json"


def _console():
    """Rich's console for tables: at a terminal, as wide as it is; printed to a pipe or a
    file (where rich assumes 80 columns and cuts cells), wide enough for every cell."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=10_000)


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2))


def _overrides(seed: int | None, fix: list[str] | None = None) -> dict:
    """The config keys the user set on the command line (the rest is resolved from the
    study, the --config file and the defaults: ``search/resolve.py``)."""
    out: dict = {}
    if seed is not None:
        out["seed"] = seed
    if fix:
        out["fixed"] = _fixed(fix)
    return out
def _finite(value: float | None) -> float | None:
    """Typer callback: float options must be finite (``nan`` passes every comparison)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value


MAX_SEED = 2**63 - 1
MAX_PROCESSES = 1024
"""Most local processes one command starts (a typo like --workers 100000 is refused)."""
TRUST_HELP = ("Allow importing the task and operator modules the study names (they run "
              "code): only for a study you trust.")


def _check_device(device: Device) -> None:
    """A one-line error for ``--device cuda`` without CUDA (before any work starts)."""
    if device == Device.cuda:
        from .search.engines import cuda_devices

        cuda_devices()


def _fixed(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        branch, sep, loss = item.partition("=")
        if not sep or not branch.strip() or not loss.strip():
            raise typer.BadParameter(f"expected BRANCH=LOSS, got {clip(item)}", param_hint="--fix")
        out[branch.strip()] = loss.strip()
    return out


# ---------------------------------------------------------------------------


@app.command()
def tasks(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """List the built-in tasks: metrics, loss branches (with their leaves), baselines."""
    from .tasks import BUILTIN, task_class

    rows = []
    for name in BUILTIN:
        cls = task_class(name)
        rows.append({
            "task": name, "metrics": list(cls.metrics),
            "branches": {b.name: list(b.leaves) for b in cls.branches},
            "baselines": list(cls.baselines), "variants": ["default", *cls.variants],
        })
    if as_json:
        _echo_json(rows)
        return
    from rich.table import Table

    table = Table("task", "metrics", "branches (leaves)", "baselines", "variants")
    for r in rows:
        branches = "\n".join(f"{b} ({', '.join(v)})" for b, v in r["branches"].items())
        table.add_row(r["task"], " ".join(r["metrics"]), branches, " ".join(r["baselines"]),
                      " ".join(r["variants"]))
    _console().print(table)


@app.command()
def check(
    formula: Annotated[str, typer.Argument(help="A loss in the text form, e.g. "
                                                "'Neg(Mul(y, Log(yhat)))'.")],
    task: Annotated[str, typer.Option(help="Task id or package.module:Class.")],
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's first).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=MAX_SEED,
        help="Master seed: the screening samples of a search with this seed (default: "
             "the config's, else 0).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config (screening settings).")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Screen one loss with the loss-rejection protocol: g, verdict, fingerprint."""
    from .search.rejection import Screener
    from .search.resolve import resolve_config
    from .tasks import get_task

    _check_device(device)
    cfg = resolve_config(None, config, _overrides(seed)).config
    t = get_task(task, **cfg.task_options)
    metric = t.check_metric(metric or t.metrics[0])
    loss = t.as_task_loss(formula, operators=cfg.operator_set())
    screener = Screener.from_config(t, metric, cfg, device.value)
    res = screener.screen(loss, optimize=True)
    # the search's per-branch test too (multi-branch tasks with perfect outputs)
    branches = ({name: screener.screen_branch(loss, name) for name in loss.names}
                if screener.per_branch else {})
    failed = next((b for b in branches.values() if not b.accepted), None)
    accepted = res.accepted and failed is None
    reason = res.reason or (failed.reason if failed is not None else "")
    out = {
        "formula": str(loss), "task": task, "metric": metric, "score": res.g,
        "accepted": accepted, "fingerprint": res.fingerprint,
        "reason": reason or None, "eta": cfg.screening.eta,
        "samples": cfg.screening.samples, "steps": cfg.screening.steps,
        "seconds": round(res.seconds + sum(b.seconds for b in branches.values()), 4),
    }
    if branches:
        out["branch_eta"] = cfg.screening.branch_eta
        out["branches"] = {name: {"accepted": b.accepted, "closed": b.g,
                                  "reason": b.reason or None} for name, b in branches.items()}
    if as_json:
        _echo_json(out)
        return
    g = "n/a" if res.g is None else f"{res.g:+.4f}"
    verdict = "accepted" if accepted else "rejected"
    typer.echo(f"{verdict}: g = {g} (eta = {cfg.screening.eta}) {reason}".rstrip())
    for name, b in branches.items():
        closed = "n/a" if b.g is None else f"{b.g:+.3f}"
        typer.echo(f"  branch {name}: closes {closed} of the gap to perfect outputs "
                   f"(branch_eta = {cfg.screening.branch_eta}): {b.verdict}")
    typer.echo(f"fingerprint: {res.fingerprint}")


@app.command()
def search(
    task: Annotated[str, typer.Option(help="Task id or package.module:Class.")],
    budget: Annotated[int, typer.Option(min=0, help="Compute to spend in total, in "
                                        "proxy-training equivalents (see below).")],
    study: Annotated[Path, typer.Option(help="Study file (SQLite); an existing one resumes.")],
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's first).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=MAX_SEED,
                                             help="Master seed (default 0).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=MAX_PROCESSES,
                                                help="Workers (default: cores).")] = None,
    engine: Annotated[Engine, typer.Option(help="Where trainings run.")] = Engine.local,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    fix: Annotated[list[str] | None, typer.Option(
        help="Keep a branch fixed: BRANCH=LOSS (a baseline id or a formula).")] = None,
    time_limit: Annotated[float | None, typer.Option(
        min=0, callback=_finite,
        help="Stop making candidates after this many seconds (resume later).")] = None,
    trust_study: Annotated[bool, typer.Option("--trust-study", help=TRUST_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
):
    """Run a search, or resume the one stored in --study.

    --budget is compute in proxy-training equivalents: each proxy training counts 1, a
    promotion to a fidelity rung its steps x batch size over the proxy's."""
    from .progress import SearchProgress
    from .search.driver import search as run_search

    with SearchProgress(enabled=not quiet) as progress:
        reader = run_search(task, metric, budget, study, config, overrides=_overrides(seed, fix),
                            workers=workers, engine=engine.value, scheduler=scheduler,
                            device=device.value, progress=progress, time_limit=time_limit,
                            trust_study=trust_study)
    with reader:
        _print_leaderboard(reader, top=5)


def _print_leaderboard(reader, top: int) -> None:
    from rich.table import Table

    from .search.status import Status

    meta = reader.meta()
    counts = reader.counts()
    board = reader.leaderboard(top)
    ranking = reader.ranking()
    confirmed = ranking == "confirmed"
    columns = ["rank", f"{meta['metric']} (proxy)", "n"]
    if confirmed:
        columns += ["confirmed (full, val)", "seeds"]
    table = Table(*columns, "id", "formula",
                  title=f"{meta['task']} / {meta['metric']}: {reader.started()} proxy trainings, "
                        f"{reader.spent():g} proxy-training equivalents spent, "
                        f"{counts[Status.REJECTED]} rejected, {counts[Status.DUPLICATE]} "
                        "duplicates; "
                        f"ranked by {'confirmed' if confirmed else 'proxy'} scores")
    for i, c in enumerate(board, 1):
        cells = [str(i), f"{c.score:.4f}", str(c.evaluations or 1)]
        if confirmed:
            cells += ["-" if c.confirmed is None else f"{c.confirmed:.4f}",
                      str(c.confirmed_seeds or "-")]
        table.add_row(*cells, str(c.id), c.formula)
    _console().print(table)


@app.command()
def show(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    top: Annotated[int, typer.Option(min=1, help="How many losses.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Show a study's leaderboard (works while the search runs)."""
    from .search.study import StudyReader

    with StudyReader(study) as r:
        if not as_json:
            _print_leaderboard(r, top)
            return
        meta = r.meta()
        rungs: dict[str, int] = {}
        for e in r.evaluations():
            key = f"{e.kind} {e.schedule}" + (f" rung {e.rung}" if e.kind == "rung" else "")
            rungs[key] = rungs.get(key, 0) + 1
        _echo_json({
            "task": meta["task"], "metric": meta["metric"], "evaluations": r.started(),
            "spent": r.spent(), "budget": meta.get("budget"),
            "budget_unit": "proxy-training equivalents", "counts": r.counts(),
            "trainings_beyond_the_proxy": rungs, "ranking": r.ranking(),
            "losses": [
                {"rank": i, "formula": c.formula, "score": c.score, "id": c.id,
                 "proxy_trainings": c.evaluations or 1, "confirmed": c.confirmed,
                 "confirmed_seeds": c.confirmed_seeds, "metrics": c.metrics,
                 "parent": c.parent, "mutation": c.mutation}
                for i, c in enumerate(r.leaderboard(top), 1)
            ],
        })


@app.command()
def confirm(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    top: Annotated[int, typer.Option(min=1, max=10_000,
                                     help="How many losses of the ranking.")] = 3,
    seeds: Annotated[int, typer.Option(min=1, max=10_000,
                                       help="Full-schedule trainings per loss.")] = 2,
    max_seeds: Annotated[int, typer.Option(
        min=0, max=10_000, help="Racing: more trainings, up to this many, for the losses "
        "within a standard error of the leader (0: off).")] = 0,
    workers: Annotated[int | None, typer.Option(min=1, max=MAX_PROCESSES,
                                                help="Workers (default: cores).")] = None,
    engine: Annotated[Engine, typer.Option(help="Where trainings run.")] = Engine.local,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address.")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    trust_study: Annotated[bool, typer.Option("--trust-study", help=TRUST_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Re-train the top losses with the full schedule, scored on the validation split.

    From then on the study is ranked by these scores (show, export, load_loss and
    compare study:PATH#K use that ranking). Resumable; trainings already made count."""
    from .search.driver import confirm as run_confirm

    def progress(done, total):
        if not as_json:
            typer.echo(f"[{done}/{total}] confirmation trainings", err=True)

    if max_seeds and max_seeds < seeds:
        raise typer.BadParameter(f"must be 0 (no racing) or >= --seeds ({seeds})",
                                 param_hint="--max-seeds")
    with run_confirm(study, top, seeds, max_seeds=max_seeds, workers=workers,
                     engine=engine.value, scheduler=scheduler, device=device.value,
                     progress=progress, trust_study=trust_study) as r:
        if not as_json:
            _print_leaderboard(r, top)
            return
        _echo_json({"ranking": r.ranking(), "losses": [
            {"rank": i, "formula": c.formula, "score": c.score, "confirmed": c.confirmed,
             "confirmed_seeds": c.confirmed_seeds, "id": c.id}
            for i, c in enumerate(r.leaderboard(top), 1)]})


@app.command()
def export(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.python,
    rank: Annotated[int, typer.Option(min=1, help="Which loss (1 = best).")] = 1,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (default: stdout).")]
    = None,
    trust_study: Annotated[bool, typer.Option("--trust-study", help=TRUST_HELP)] = False,
):
    """Export a found loss: standalone PyTorch source, LaTeX, or JSON."""
    from .export import export_text
    from .paths import check_output

    if output is not None:
        check_output(output, [], studies=[study])
    text = export_text(study, format.value, rank, trust=trust_study, hint="--trust-study")
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@app.command()
def plot(
    studies: Annotated[list[Path], typer.Argument(help="Study files (one curve each).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file.")],
    top: Annotated[int, typer.Option(min=1, help="Mean of the top-K scores.")] = 5,
):
    """Plot search progress: mean of the top-5 population scores vs evaluations."""
    from .paths import check_output
    from .report import plot_studies

    check_output(output, [], studies=studies)

    typer.echo(f"wrote {plot_studies(studies, output, top)}")


@app.command()
def report(
    studies: Annotated[list[Path], typer.Argument(help="Study files.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Markdown file.")],
    top: Annotated[int, typer.Option(min=1, help="Losses per leaderboard.")] = 10,
):
    """Write a Markdown report: plot, counts, time per stage, leaderboards with LaTeX."""
    from .paths import check_output
    from .report import write_report

    check_output(output, [], studies=studies)
    if output.exists() and not output.is_file():  # e.g. /dev/null: its .png would be beside it
        raise typer.BadParameter(f"{output} is not a regular file", param_hint="-o")
    check_output(output.with_suffix(".png"), [], option="-o (its .png plot)", studies=studies)

    typer.echo(f"wrote {write_report(studies, output, top)}")


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks of the search machinery.")
app.add_typer(bench_app, name="bench")


@bench_app.command("rejection")
def bench_rejection(
    task: Annotated[str, typer.Option(help="Task id or package.module:Class.")],
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's first).")] = None,
    seconds: Annotated[float, typer.Option(min=1, callback=_finite,
                                           help="Seconds for each protocol.")] = 30.0,
    processes: Annotated[int | None, typer.Option(min=1, max=MAX_PROCESSES,
                                                  help="Screening processes "
                                                  "(default: one per core).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config (screening settings).")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Candidates screened per minute: ours vs a naive per-sample loop, in one run."""
    from .bench import bench_rejection as run_bench
    from .search.resolve import resolve_config

    cfg = resolve_config(None, config).config
    res = run_bench(task, metric, seconds, processes, cfg, device=device.value)
    if as_json:
        _echo_json(res)
        return
    typer.echo(f"{res['task']}/{res['metric']}: {res['candidates_per_min']:.0f} candidates/min "
               f"(naive {res['naive_candidates_per_min']:.0f}/min, "
               f"{res['speedup']:.1f}x) with {res['processes']} process(es), "
               f"B={res['samples']}, {res['steps']} steps")
    typer.echo(f"short-cuts settle {100 * res['shortcut_share']:.0f}%, "
               f"{res['fully_optimized_per_min']:.0f} fully optimized/min, "
               f"{100 * res['acceptance_rate']:.1f}% accepted")
    for f, v in res["reference_verdicts"].items():
        mark = "ok" if v["ok"] else "WRONG"
        typer.echo(f"  {mark}: {v['expected']} loss {f} -> "
                   f"{'accepted' if v['accepted'] else 'rejected'}")


class Schedule(StrEnum):
    full = "full"
    proxy = "proxy"


@app.command()
def compare(
    task: Annotated[str, typer.Option(help="Task id or package.module:Class.")],
    loss: Annotated[list[str], typer.Option(
        help="A baseline id, a formula, study:PATH#K, or a per-branch mix "
             "'BRANCH=LOSS; BRANCH=LOSS; ...' (each LOSS a branch baseline id or a formula; "
             "every branch once). Repeat the option.")],
    seeds: Annotated[int, typer.Option(min=1, max=10_000, help="Seeds per loss.")] = 3,
    variant: Annotated[str | None, typer.Option(help="Transfer variant of the task.")] = None,
    schedule: Annotated[Schedule, typer.Option(help="Training schedule.")] = Schedule.full,
    workers: Annotated[int | None, typer.Option(min=1, max=MAX_PROCESSES,
                                                help="Parallel trainings.")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    results: Annotated[Path | None, typer.Option(
        help="JSON-lines file of finished runs: reused on the next call (resume).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="TOML config: its [task_options] are passed to the task.")] = None,
    trust_study: Annotated[bool, typer.Option("--trust-study", help=TRUST_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Re-train with each loss over seeds; every metric of the task, mean and std."""
    from .compare import compare as run_compare
    from .paths import check_output
    from .search.config import SearchConfig

    _check_device(device)
    cfg = SearchConfig.from_toml(config) if config else SearchConfig()
    options = cfg.task_options if config else {}
    if results is not None:
        studies = [spec[len("study:"):].partition("#")[0] for spec in loss
                   if spec.strip().startswith("study:")]
        check_output(results, [config] if config else [], option="--results",
                     studies=[s.strip() for s in studies])

    def progress(done, total, rec):
        if not as_json:
            m = ", ".join(f"{k} {v:.4f}" for k, v in rec["metrics"].items())
            typer.echo(f"[{done}/{total}] {rec['loss']} seed {rec['seed']}: "
                       f"{rec['status']} {m}", err=True)

    res = run_compare(task, loss, seeds, variant, schedule.value, workers, device.value,
                      results, progress=progress, task_options=options,
                      operator_modules=cfg.operator_modules, trust_study=trust_study)
    if as_json:
        _echo_json(res.to_dict())
        return
    from rich.table import Table

    split = "test" if res.schedule == "full" else "validation"
    table = Table("loss", *res.metrics, title=f"{res.task} ({res.variant}, {res.schedule} "
                  f"schedule, {res.seeds} seeds): mean ± std on the {split} split")
    for row in res.summary():
        cells = []
        for m in res.metrics:
            st = row["metrics"][m]
            cells.append("-" if st["mean"] is None else f"{st['mean']:.4f} ± {st['std']:.4f}")
        table.add_row(row["loss"], *cells)
    _console().print(table)
    for row in res.summary():
        for f in row["failed"]:
            typer.echo(f"{row['loss']}: {f}", err=True)


@app.command()
def calibrate(
    task: Annotated[str, typer.Option(help="Task id or package.module:Class.")],
    metric: Annotated[str | None, typer.Option(
        help="Headline metric (default: the task's first); every metric is reported.")] = None,
    loss: Annotated[list[str] | None, typer.Option(
        help="A baseline id, a formula, or study:PATH#K (repeat; default: the task's "
             "baselines and reference losses).")] = None,
    proxy: Annotated[list[str] | None, typer.Option(
        help="A proxy option override KEY=VALUE, e.g. proxy_steps=600 (repeat: together "
             "they make one candidate proxy; more candidates as [[proxy]] tables in "
             "--config).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="TOML: [task_options] (the base) and [[proxy]] tables (name + overrides).")]
    = None,
    seeds: Annotated[int, typer.Option(min=1, max=10_000, help="Seeds per proxy training.")] = 2,
    full_seeds: Annotated[int | None, typer.Option(
        min=1, max=10_000, help="Seeds per full-schedule training (default: --seeds).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=MAX_PROCESSES,
                                                help="Parallel trainings.")] = None,
    results: Annotated[Path | None, typer.Option(
        help="JSON-lines file of finished runs: reused on the next call (resume).")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write a Markdown report.")] = None,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Proxy vs full schedule: rank agreement (Kendall tau, Spearman) and noise per metric."""
    from .calibrate import Proxy, load_config, markdown, parse_overrides
    from .calibrate import calibrate as run_calibrate
    from .paths import check_output

    studies = [s[len("study:"):].partition("#")[0] for s in loss or []
               if s.strip().startswith("study:")]
    inputs = [config] if config else []
    if results is not None:
        check_output(results, inputs, option="--results", studies=studies)
    if report is not None:
        check_output(report, inputs + ([results] if results else []), option="--report",
                     studies=studies)
    cfg, proxies = load_config(config)
    overrides = parse_overrides(proxy)
    if overrides:
        proxies.append(Proxy("--proxy", overrides))

    def progress(done, total, rec):
        if not as_json:
            m = ", ".join(f"{k} {v:.4f}" for k, v in rec["metrics"].items())
            typer.echo(f"[{done}/{total}] {rec['loss']} seed {rec['seed']}: "
                       f"{rec['status']} {m}", err=True)

    res = run_calibrate(task, metric, loss, proxies, seeds, full_seeds, workers, results,
                        cfg.task_options, device.value, progress).to_dict()
    if report is not None:
        report.write_text(markdown(res, "autoloss-zero " + " ".join(sys.argv[1:])))
    if as_json:
        _echo_json(res)
        return
    from rich.table import Table

    table = Table("proxy", "s/proxy", *(f"{m} tau" for m in res["metrics"]), "noise",
                  title=f"{res['task']}: proxy vs full schedule over {len(res['losses'])} "
                        f"losses (noise: seed spread / spread between losses, "
                        f"{res['metric']})")
    for p in res["proxies"]:
        taus = ["-" if a["kendall_tau"] is None else f"{a['kendall_tau']:+.2f}"
                for a in p["metrics"].values()]
        noise = p["metrics"][res["metric"]]["noise"]
        sec = "-" if p["seconds_per_proxy"] is None else f"{p['seconds_per_proxy']:.1f}"
        table.add_row(p["name"], sec, *taus, "-" if noise is None else f"{noise:.2f}")
    _console().print(table)


# ---------------------------------------------------------------------------


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """An exception class of click, vendored by recent typer or installed on its own."""
    out = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            out.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            pass
    return tuple(out)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit code 2 for bad input."""
    debug = bool(os.environ.get("AUTOLOSS_ZERO_DEBUG"))
    try:
        code = app(args=argv, prog_name="autoloss-zero", standalone_mode=False)
    except _click_errors("NoArgsIsHelpError") as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except _click_errors("UsageError") as exc:
        if debug:
            raise
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        typer.echo(one_line(f"error: {exc.format_message()}{hint}"), err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted (the study keeps everything finished; run again to resume)",
                   err=True)
        sys.exit(130)
    except USER_ERRORS as exc:
        if debug:
            raise
        typer.echo(one_line(f"error: {exc}"), err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback, for anything else
        if debug:
            raise
        msg = one_line(f"internal error: {type(exc).__name__}: {exc}")
        typer.echo(msg + " (set AUTOLOSS_ZERO_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
