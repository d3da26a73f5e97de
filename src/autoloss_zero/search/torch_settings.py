"""Torch settings of the search's processes: the driver, worker processes, Dask workers
and benchmark processes alike."""

from __future__ import annotations

from contextlib import contextmanager


def configure_torch(threads: int = 1) -> None:
    """``threads`` torch threads, and subnormal floats flushed to zero (random losses
    produce them, e.g. ``Exp`` of large negative values, and CPU arithmetic on subnormals
    was measured 7x slower here)."""
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def flush_denormal_enabled() -> bool:
    """Whether subnormal floats are flushed to zero in this thread (torch has no getter)."""
    import torch

    return torch.tensor([5e-324], dtype=torch.float64).mul(1.0).item() == 0.0


@contextmanager
def driver_torch():
    """The search driver's settings (one thread: it screens one small graph at a time and
    the workers use the cores; subnormals flushed) for the duration, then the caller's
    thread count and flush mode (Python's floats too) as they were."""
    import torch

    threads, flush = torch.get_num_threads(), flush_denormal_enabled()
    configure_torch(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)
