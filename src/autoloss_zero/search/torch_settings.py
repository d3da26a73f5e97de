"""Torch settings of the search's processes: the driver, worker processes, Dask workers
and benchmark processes alike."""

from __future__ import annotations


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
