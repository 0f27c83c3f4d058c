"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019).

Kynkäänniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved Precision and Recall Metric for
Assessing Generative Models", arXiv 1904.06991, §2. Each feature set approximates its manifold
by the union of balls centred on its points, the radius of a point being the distance to its
k-th nearest neighbour within its own set (itself excluded):

    f(φ, Φ) = 1 if ‖φ − φ'‖₂ ≤ NN_k(φ', Φ) for some φ' ∈ Φ, else 0,
    precision = mean_{φ_g ∈ Φ_g} f(φ_g, Φ_r),   recall = mean_{φ_r ∈ Φ_r} f(φ_r, Φ_g).

Precision is the fraction of generated samples that fall on the real manifold (quality);
recall the fraction of real samples that fall on the generated manifold (coverage). The paper
uses k = 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wgan.errors import WganError
from wgan.metrics.wasserstein import as_float_array

__all__ = ["precision_recall"]

# Pairwise-distance blocks hold at most this many float64 entries (~128 MiB).
_BLOCK_ENTRIES = 1 << 24


def _as_features(a: Any, name: str) -> torch.Tensor:
    t = torch.from_numpy(np.require(as_float_array(a, name), requirements=["W"]))
    if t.ndim != 2:
        raise WganError(f"{name} must have shape (n, d), got shape {tuple(t.shape)}")
    if t.shape[1] == 0:
        raise WganError(f"{name} has no feature dimensions: shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise WganError(f"{name} contains non-finite values (nan or inf)")
    return t


def _chunk(n_cols: int) -> int:
    return max(1, _BLOCK_ENTRIES // max(n_cols, 1))


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of x (N, d) to its k-th nearest neighbour in x, itself excluded."""
    n = x.shape[0]
    radii = torch.empty(n, dtype=torch.float64)  # (N,)
    for i in range(0, n, _chunk(n)):
        d = torch.cdist(x[i : i + _chunk(n)], x)  # (B, N)
        # The k+1 smallest include the point itself (distance 0): index k is the k-th neighbour.
        radii[i : i + _chunk(n)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _inside(query: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(Q,) bool: is query point q within radii[j] of some centres[j]?"""
    n = centres.shape[0]
    out = torch.empty(query.shape[0], dtype=torch.bool)
    step = _chunk(n)
    for i in range(0, query.shape[0], step):
        d = torch.cdist(query[i : i + step], centres)  # (B, N)
        out[i : i + step] = (d <= radii[None, :]).any(dim=1)
    return out


def precision_recall(real_features: Any, fake_features: Any, k: int = 3) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN radii.

    Distances are Euclidean in float64 (``torch.cdist``), computed in blocks of at most
    2²⁴ entries, so memory stays bounded for tens of thousands of samples.

    Args:
        real_features: ``(N, d)`` features of real samples (torch tensor or numpy array).
        fake_features: ``(M, d)`` features of generated samples.
        k: neighbour rank of the radii (the paper's default is 3); needs N, M > k.

    Returns:
        ``{"precision": float, "recall": float}``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise WganError(f"precision_recall: k must be a positive int, got {k!r}")
    real = _as_features(real_features, "real_features")  # (N, d)
    fake = _as_features(fake_features, "fake_features")  # (M, d)
    if real.shape[1] != fake.shape[1]:
        raise WganError(
            f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}"
        )
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise WganError(
            f"precision_recall with k={k} needs more than {k} samples per set, got "
            f"{real.shape[0]} real and {fake.shape[0]} fake"
        )
    r_real = _knn_radii(real, k)  # (N,)
    r_fake = _knn_radii(fake, k)  # (M,)
    precision = float(_inside(fake, real, r_real).double().mean())
    recall = float(_inside(real, fake, r_fake).double().mean())
    return {"precision": precision, "recall": recall}
