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
