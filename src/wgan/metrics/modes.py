"""Mode-coverage metrics for Gaussian-mixture toy data (VEEGAN / PacGAN protocol).

Protocol (Srivastava et al. 2017, "VEEGAN: Reducing Mode Collapse in GANs using Implicit
Variational Learning", arXiv 1705.07761, §5.1; Lin et al. 2018, "PacGAN: The power of two
samples in generative adversarial networks", arXiv 1712.04086, §5): draw 2,500 samples from
the generator; a sample is *high quality* if it lies within 3 standard deviations of its
nearest mode centre; a mode is *captured* if it is the nearest mode of at least one
high-quality sample. The reported numbers are the count of captured modes, the fraction of
high-quality samples and, following PacGAN, the KL divergence between the histogram of the
high-quality samples over the modes and the uniform distribution over the modes.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from wgan.errors import WganError
from wgan.metrics.wasserstein import as_points

__all__ = ["mode_metrics"]


def _positive_finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WganError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise WganError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def mode_metrics(samples: Any, modes: Any, sigma: float, threshold: float = 3.0) -> dict:
    """Captured modes, high-quality fraction and KL to uniform (VEEGAN / PacGAN protocol).

    With ``d_i = min_k ‖s_i − μ_k‖₂`` and ``k_i = argmin_k ‖s_i − μ_k‖₂``:

    * sample i is high quality (HQ) iff ``d_i ≤ threshold · sigma``;
    * ``c_k = #{i HQ : k_i = k}``; mode k is captured iff ``c_k ≥ 1``;
    * ``p_k = c_k / Σ_k c_k`` and ``kl_to_uniform = KL(p ‖ U_M) = Σ_k p_k log(p_k M)``
      (natural log, 0 log 0 = 0; it is 0 for a perfectly balanced histogram and log M when
      all HQ samples fall on one mode). It is ``None`` when there is no HQ sample.

    The protocol of VEEGAN (arXiv 1705.07761) and PacGAN (arXiv 1712.04086) uses 2,500
    samples and ``threshold = 3``.

    Args:
        samples: ``(N, 2)`` generated points (torch tensor or numpy array; any dimension d
            works as long as ``modes`` has the same).
        modes: ``(M, d)`` mode centres.
        sigma: per-coordinate std of each mode (finite, > 0).
        threshold: HQ radius in units of ``sigma`` (finite, > 0).

    Returns:
        ``{"modes_captured": int, "n_modes": int, "high_quality_fraction": float,
        "kl_to_uniform": float | None}``.

    Raises:
        WganError: no samples, no modes, samples and modes of different dimensions, non-finite
            points, or a ``sigma`` / ``threshold`` that is not a finite positive number.
    """
    sigma = _positive_finite("sigma", sigma)
    threshold = _positive_finite("threshold", threshold)
    s = as_points(samples, "samples")  # (N, d)
    mu = as_points(modes, "modes")  # (M, d)
    if mu.shape[0] == 0:
        raise WganError("mode_metrics needs at least one mode")
    if s.shape[1] != mu.shape[1]:
        raise WganError(f"samples have dimension {s.shape[1]} but modes have {mu.shape[1]}")
    n, n_modes = s.shape[0], mu.shape[0]
    if n == 0:
        # No sample is not "no mode captured": a high-quality fraction of 0/0 has no value.
        raise WganError("mode_metrics needs at least one sample, got 0")

    # Squared distances via ‖s‖² − 2 s·μ + ‖μ‖², in chunks to bound memory at ~chunk·M floats.
    nearest = np.empty(n, dtype=np.int64)  # (N,)
    dmin = np.empty(n, dtype=np.float64)  # (N,)
    mu_sq = (mu * mu).sum(axis=1)  # (M,)
    chunk = max(1, 4_000_000 // n_modes)
    for start in range(0, n, chunk):
        blk = s[start : start + chunk]  # (B, d)
        d2 = (blk * blk).sum(axis=1)[:, None] - 2.0 * blk @ mu.T + mu_sq[None, :]  # (B, M)
        k = np.argmin(d2, axis=1)  # (B,)
        nearest[start : start + chunk] = k
        # Recompute the nearest distance directly (no cancellation error near a mode).
        dmin[start : start + chunk] = np.linalg.norm(blk - mu[k], axis=1)

    hq = dmin <= threshold * float(sigma)  # (N,)
    counts = np.bincount(nearest[hq], minlength=n_modes)  # (M,)
    n_hq = int(counts.sum())
    if n_hq == 0:
        kl = None
    else:
        p = counts[counts > 0] / n_hq
        kl = float(np.sum(p * np.log(p * n_modes)))
        kl = max(kl, 0.0)  # KL >= 0; clip rounding error below 0
    return {
        "modes_captured": int((counts > 0).sum()),
        "n_modes": int(n_modes),
        "high_quality_fraction": n_hq / n,
        "kl_to_uniform": kl,
    }
