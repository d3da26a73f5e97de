"""Where proxy trainings run: local worker processes (default) or a Dask cluster.

An engine takes JSON-able jobs (see ``worker.make_job``) and hands back result dicts;
the search stays asynchronous: whenever a slot frees up, the driver produces a new
child. Faults never hang the search or lose a finished result: a worker that dies has
its job re-run (``retries`` times, then ``failed``); a job past its timeout is killed
and ``failed``; an exception in task code is a ``failed`` result from the worker itself.

Screening (rejection protocol, fingerprints) runs in the driver process: it costs
milliseconds per candidate against seconds per proxy training, needs the B screening
samples only once, and keeps the equivalence index in one place.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from .status import Status


class Engine(ABC):
    """Runs jobs; ``slots`` of them at a time."""

    slots: int = 1

    @abstractmethod
    def submit(self, job: dict[str, Any]) -> None:
        """Queue one job (it runs as soon as a slot is free)."""

    @abstractmethod
    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Results finished so far, waiting up to ``timeout`` seconds for the first."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Jobs submitted and not yet returned."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _failed(job: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"id": job["id"], "status": Status.FAILED, "score": None, "reason": reason,
            "train_s": None, "worker": None}


class _Proc:
    """One worker process speaking JSON lines over two pipes (no pickles, no __main__)."""

    def __init__(self, threads: int, gpu: str | None = None):
        job_r, self._job_w = os.pipe()
        self._res_r, res_w = os.pipe()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu  # one GPU per worker
        quiet = not os.environ.get("AUTOLOSS_ZERO_DEBUG")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autoloss_zero.search.worker", str(job_r), str(res_w),
             str(threads), str(os.getpid())],
            pass_fds=(job_r, res_w), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else None,
        )
        os.close(job_r)
        os.close(res_w)
        self.out = os.fdopen(self._job_w, "w", buffering=1)
        self.inp = os.fdopen(self._res_r, "r")
        self.job: dict[str, Any] | None = None
        self.started = 0.0

    def fileno(self) -> int:
        return self.inp.fileno()

    def send(self, job: dict[str, Any]) -> None:
        self.out.write(json.dumps(job) + "\n")
        self.out.flush()

    def recv(self) -> dict[str, Any] | None:
        line = self.inp.readline()
        return json.loads(line) if line else None

    def kill(self) -> None:
        for f in (self.out, self.inp):
            try:
                f.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


class LocalEngine(Engine):
    """``workers`` local processes, one job each at a time (default: one per core, or one
    per GPU when ``gpus`` lists device ids: worker i sees only GPU ``gpus[i % len]``)."""

    def __init__(self, workers: int | None = None, threads: int = 1, retries: int = 2,
                 gpus: list[str] | None = None):
        self.slots = workers or (len(gpus) if gpus else None) or os.cpu_count() or 1
        self.threads = threads
        self.retries = retries
        self.gpus = gpus
        self._procs = [_Proc(threads, self._gpu(i)) for i in range(self.slots)]
        self._queue: deque[dict[str, Any]] = deque()

    def _gpu(self, i: int) -> str | None:
        return self.gpus[i % len(self.gpus)] if self.gpus else None

    @property
    def pending(self) -> int:
        return len(self._queue) + sum(p.job is not None for p in self._procs)

    def submit(self, job: dict[str, Any]) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for i, p in enumerate(self._procs):
            if not self._queue:
                return
            if p.job is None:
                job = self._queue.popleft()
                try:
                    p.send(job)
                except (BrokenPipeError, OSError):  # died while idle: replace, retry
                    self._queue.appendleft(job)
                    p.kill()
                    self._procs[i] = p = _Proc(self.threads, self._gpu(i))
                    p.send(self._queue.popleft())
                p.job, p.started = job, time.monotonic()

    def _replace(self, p: _Proc) -> None:
        p.kill()
        i = self._procs.index(p)
        self._procs[i] = _Proc(self.threads, self._gpu(i))

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        busy = [p for p in self._procs if p.job is not None]
        if not busy:
            return []
        limit = min((p.started + p.job["timeout"] for p in busy if p.job["timeout"] > 0),
                    default=None)
        if limit is not None:
            timeout = max(0.0, min(timeout, limit - time.monotonic()))
        ready, _, _ = select.select(busy, [], [], timeout)
        results = []
        now = time.monotonic()
        for p in busy:
            job = p.job
            if p in ready:
                try:
                    res = p.recv()
                except (OSError, ValueError):
                    res = None
                if res is not None:
                    results.append(res)
                    p.job = None
                    continue
                # EOF: the worker died
                p.job = None
                self._replace(p)
                job["attempt"] = job.get("attempt", 0) + 1
                if job["attempt"] > self.retries:
                    results.append(_failed(job, f"worker died {job['attempt']} times"))
                else:
                    self._queue.appendleft(job)
            elif job["timeout"] > 0 and now - p.started > job["timeout"]:
                p.job = None
                self._replace(p)
                results.append(_failed(job, f"timed out after {job['timeout']:g} s"))
        self._dispatch()
        return results

    def close(self) -> None:
        for p in self._procs:
            try:
                p.out.close()  # EOF: an idle worker exits
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for p in self._procs:
            try:
                p.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            p.kill()
        self._procs = []


def cuda_devices() -> list[str]:
    """The ids of the CUDA devices here; a one-line error when there are none."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    return [str(i) for i in range(torch.cuda.device_count())]


def create_engine(kind: str = "local", workers: int | None = None, scheduler: str | None = None,
                  retries: int = 2, device: str = "cpu") -> Engine:
    if kind == "local":
        if scheduler:
            raise ValueError("--scheduler goes with --engine dask")
        gpus = cuda_devices() if device == "cuda" else None
        return LocalEngine(workers, retries=retries, gpus=gpus)
    if kind == "dask":
        from .dask_engine import DaskEngine

        return DaskEngine(scheduler=scheduler, workers=workers, retries=retries)
    raise ValueError(f"unknown engine {kind!r} (local or dask)")
