"""The Dask engine: proxy trainings on a Dask cluster (SLURM, PBS, Kubernetes, a LocalCluster).

``DaskEngine(scheduler="tcp://host:8786")`` joins an existing cluster; without an address
it starts a ``LocalCluster`` of worker processes on 127.0.0.1 (one thread each). Jobs and
results are plain JSON-able dicts; the task is rebuilt on the worker from its import
path (the module must be importable there).

Faults: a worker that dies takes its task with it; Dask re-runs it elsewhere up to
``distributed.scheduler.allowed-failures`` times, then we re-submit it ourselves up to
``retries`` times before recording ``failed``. A job past its timeout stops itself: the
worker's training loop checks a deadline every step. If the scheduler is unreachable
for ``lost_after`` seconds the search stops with a clear error (the study keeps the
running candidates, which are re-run on resume).

Speed: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in worker environments, which
made torch training 2.5x slower here; the LocalCluster is started without it, and every
worker also resets glibc's trim threshold (``mallopt``) before its first job, which
covers clusters started elsewhere.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import SearchError
from .engines import Engine, _failed
from .torch_settings import configure_torch
from .worker import run_job

_TRIM_FIXED = False


def _fix_malloc_trim() -> None:
    """Undo a tiny MALLOC_TRIM_THRESHOLD_ (glibc only; a no-op elsewhere)."""
    global _TRIM_FIXED
    if _TRIM_FIXED:
        return
    _TRIM_FIXED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold = -1
        libc.mallopt(m_trim_threshold, 128 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


def run_job_on_dask(job: dict[str, Any]) -> dict[str, Any]:
    _fix_malloc_trim()
    configure_torch(1)
    return run_job(job)


class DaskEngine(Engine):
    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 retries: int = 2, lost_after: float = 60.0):
        import dask
        from distributed import Client, LocalCluster

        self.retries = retries
        self.lost_after = lost_after
        self._cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout="30s")
        else:
            import os

            with dask.config.set({"distributed.nanny.pre-spawn-environ": {
                "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1,
            }}):
                self._cluster = LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                    processes=True, host="127.0.0.1", dashboard_address=None,
                )
            self.client = Client(self._cluster)
        self._futures: dict[Any, dict[str, Any]] = {}
        self._lost_since: float | None = None

    @property
    def slots(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a lost scheduler: count one slot, wait() reports
            return 1

    @property
    def pending(self) -> int:
        return len(self._futures)

    def submit(self, job: dict[str, Any]) -> None:
        key = f"autoloss-zero-{job['id']}-{job.get('attempt', 0)}-{time.time_ns()}"
        fut = self.client.submit(run_job_on_dask, job, key=key, pure=False)
        self._futures[fut] = job

    def _resubmit_or_fail(self, job, reason, results) -> None:
        job["attempt"] = job.get("attempt", 0) + 1
        if job["attempt"] > self.retries:
            results.append(_failed(job, reason))
        else:
            self.submit(job)

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        from distributed import wait as dask_wait

        if not self._futures:
            return []
        try:
            dask_wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass
        except OSError as exc:  # the scheduler connection broke
            self._check_lost(str(exc))
            return []
        results: list[dict[str, Any]] = []
        for fut in [f for f in self._futures if f.done() or f.status == "lost"]:
            job = self._futures.pop(fut)
            if fut.status == "finished":
                try:
                    results.append(fut.result(timeout=30))
                except Exception as exc:  # noqa: BLE001 - a result lost in transfer
                    self._resubmit_or_fail(job, f"result lost: {exc}", results)
            elif fut.status == "error":
                exc = fut.exception(timeout=30)
                self._resubmit_or_fail(job, f"worker failed: {type(exc).__name__}: {exc}",
                                       results)
            else:  # cancelled or lost (scheduler restart, connection drop)
                self._resubmit_or_fail(job, f"task {fut.status}", results)
        self._check_lost("no connection")
        return results

    def _check_lost(self, why: str) -> None:
        if self.client.status in ("running", "connecting") and self.client.scheduler_info():
            self._lost_since = None
            return
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
        elif now - self._lost_since > self.lost_after:
            raise SearchError(f"lost the Dask scheduler for {self.lost_after:g} s ({why}); "
                              "run the same command again to resume")

    def close(self) -> None:
        for fut in list(self._futures):
            fut.cancel()
        self._futures.clear()
        try:
            self.client.close(timeout=10)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=10)
