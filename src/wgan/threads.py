"""How many CPU threads torch uses, set for a block of work and restored after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (0: unchanged), restoring the setting afterwards.

    Small networks (toy MLPs, the small text model) gain little from a second thread, and on a
    loaded machine a second thread mostly waits for a core (``benchmarks/RESULTS.md``: the
    ``text-wgan-gp`` run, in its width-32 version, is 17 % faster on 2 threads than on 1 on an
    idle 2-core machine, and 8x slower while one other process runs).
    """
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["torch_threads"]
