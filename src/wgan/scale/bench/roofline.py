"""The CPU matmul roofline of :mod:`wgan.scale.bench`: the best sustained rate of ``torch.mm``.

:func:`matmul_roofline` times ``(m x k) @ (k x n)`` products back to back in short windows and
returns the best window's GFLOP/s; :func:`roofline_shape` picks the shape for a config (the
critic's hidden layer ``(B x H) @ (H x H)`` for MLPs, a fixed reference for image nets). The
benchmark turns the rate into ``roofline_iters_per_s = roofline_flops_per_s / flops_per_iter``.
"""

from __future__ import annotations

import torch

from wgan.config import Config
from wgan.errors import WganError
from wgan.scale.bench.timing import synchronize, time_ms

__all__ = ["ROOFLINE_IMAGE_SHAPE", "matmul_roofline", "roofline_shape"]

ROOFLINE_IMAGE_SHAPE = (256, 512, 512)  # a CPU reference for the image presets


def matmul_roofline(
    m: int,
    k: int,
    n: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seconds: float = 1.0,
    windows: int = 5,
) -> float:
    """Best sustained GFLOP/s of ``torch.mm`` on ``(m x k) @ (k x n)`` (``2 m k n`` FLOPs each).

    The time budget is split into ``windows`` windows; in each, products are run back to back
    into a preallocated output for about ``seconds / windows`` seconds and the window's mean
    rate is taken; the result is the best window (sustained, not a single lucky call). Uses all
    the threads torch is set to (``torch.get_num_threads()``).
    """
    if min(m, k, n) < 1:
        raise WganError(f"matmul_roofline needs positive sizes, got {m}x{k} @ {k}x{n}")
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(m, k, generator=g, device=device).to(dtype)  # (m, k)
    b = torch.randn(k, n, generator=g, device=device).to(dtype)  # (k, n)
    out = torch.empty(m, n, device=device, dtype=dtype)  # (m, n)
    flops = 2.0 * m * k * n
    torch.mm(a, b, out=out)  # warm-up: library init, caches
    synchronize(device)
    window = max(seconds, 1e-3) / max(1, windows)
    best = 0.0
    for _ in range(max(1, windows)):
        calls, elapsed_ms = 0, 0.0
        batch = 1
        while elapsed_ms < window * 1e3:

            def run(batch: int = batch) -> None:
                for _ in range(batch):
                    torch.mm(a, b, out=out)

            elapsed_ms += time_ms(run, device)
            calls += batch
            batch = min(batch * 2, 64)  # amortise the clock and the sync over more calls
        best = max(best, flops * calls / (elapsed_ms * 1e-3))
    return best / 1e9


def roofline_shape(cfg: Config) -> tuple[int, int, int]:
    """(m, k, n) of the roofline matmul: the critic's hidden layer (B x H) @ (H x H) for MLPs."""
    if cfg.critic.arch == "mlp":
        return (cfg.data.batch_size, cfg.critic.hidden, cfg.critic.hidden)
    return ROOFLINE_IMAGE_SHAPE
