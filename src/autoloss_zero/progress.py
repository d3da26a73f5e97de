"""A live progress bar for searches (rich): evaluations, screening counts, the best loss."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column


class SearchProgress:
    """Use as ``with SearchProgress() as p: search(..., progress=p)``."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]evaluations"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[line]}",
                       table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=console or Console(stderr=True),
            transient=False,
            expand=True,
            disable=not enabled,
        )
        self._task = None
        self._last = 0.0

    def __enter__(self):
        # The bar starts with the first progress report: an error found before the search
        # starts (bad options, a bad study) stays a one-line message.
        self._started = False
        return self

    def __exit__(self, *exc):
        if getattr(self, "_started", False):
            self._progress.__exit__(*exc)

    def __call__(self, evo, budget: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._task is not None and now - self._last < 0.2:
            return
        self._last = now
        s = evo.stats
        best = evo.best
        best_text = "-" if best is None else f"{best[0]:.4f} {best[1]}"
        line = (f"screened {s.screened} rejected {s.rejected} duplicates {s.duplicates}"
                f" | best {best_text}")
        done = sum(1 for st in evo.status.values() if st.is_finished())
        if not getattr(self, "_started", True):
            self._progress.__enter__()
            self._started = True
        if self._task is None:
            self._task = self._progress.add_task("search", total=budget, line=line)
        self._progress.update(self._task, completed=min(done, budget), total=budget, line=line)
