"""Device-side clocks of :mod:`wgan.scale.bench`: CUDA events on a GPU, ``time.perf_counter`` on the
CPU.

The host synchronises with the device only at the end of a timed call, so queued kernels overlap
with Python as they do in training (which reads statistics back every ``log_every`` steps).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

__all__ = ["synchronize", "time_ms"]


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA only; the CPU runs synchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], None], device: torch.device) -> float:
    """Milliseconds ``fn`` takes on ``device``: CUDA events on a GPU, perf_counter on the CPU.

    The host waits for the device only once, after ``fn`` (on CUDA the end event is
    synchronised), so queued kernels overlap with Python as they do in training.
    """
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - t0) * 1e3
