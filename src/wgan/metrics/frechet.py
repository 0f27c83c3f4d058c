"""Feature-space sample-quality statistics: Fréchet distance (FID), KID and Inception Score.

* Fréchet distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
  to a Local Nash Equilibrium", arXiv 1706.08500, eq. 6; Dowson & Landau 1982): the
  Wasserstein-2 distance squared between the Gaussians fitted to two feature sets,

      FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}).

  With Inception-v3 pool features it is the FID; with the digit classifier's features it is
  the "classifier FD" of :mod:`wgan.metrics.images`.
* Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", arXiv 1801.01401,
  §4): the unbiased estimator of MMD² with the cubic polynomial kernel
  k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.
* Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs",
  arXiv 1606.03498, §4): IS = exp(E_x KL(p(y|x) ‖ p(y))), computed per split.

All computations are in float64 numpy; inputs may be torch tensors or numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wgan.errors import WganError
from wgan.metrics.wasserstein import as_float_array, check_int

__all__ = [
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_features",
    "inception_score",
    "kernel_inception_distance",
]


#: Most random subsets :func:`kernel_inception_distance` averages (the default is 100).
MAX_KID_SUBSETS = 100_000


def _as_2d(a: Any, name: str) -> np.ndarray:
    arr = as_float_array(a, name)
    if arr.ndim != 2:
        raise WganError(f"{name} must have shape (n, d), got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise WganError(f"{name} has no feature dimensions: shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise WganError(f"{name} contains non-finite values (nan or inf)")
    return arr


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``(N, d)`` features (float64, N ≥ 2).

    Returns:
        ``(mu (d,), sigma (d, d))`` with ``sigma = Σ_i (f_i − μ)(f_i − μ)ᵀ / (N − 1)``.
    """
    f = _as_2d(features, "features")
    if f.shape[0] < 2:
        raise WganError(f"feature statistics need at least 2 samples, got {f.shape[0]}")
    mu = f.mean(axis=0)  # (d,)
    sigma = np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])  # (d, d)
    return mu, sigma


def _sym_psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root via eigh, negative rounding-error eigenvalues clipped to 0."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Heusel et al. 2017, eq. 6).

        FD = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}.

    The last trace is computed without a non-symmetric matrix square root (the usual
    ``scipy.linalg.sqrtm(Σ₁ Σ₂)`` can return complex values or fail on near-singular
    covariances): Σ₁ Σ₂ is similar to the symmetric PSD matrix M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}
    (Σ₁ Σ₂ = Σ₁^{1/2} M Σ₁^{-1/2}, and by continuity when Σ₁ is singular), so they share their
    non-negative eigenvalues λ_i and tr (Σ₁ Σ₂)^{1/2} = Σ_i √λ_i, obtained from ``eigvalsh`` in
    float64 with tiny negative rounding errors clipped to 0. The result is clipped at 0.

    Args:
        mu1, mu2: ``(d,)`` means.
        sigma1, sigma2: ``(d, d)`` covariances (symmetrised before use).

    Returns:
        FD as a float.
    """
    m1 = np.atleast_1d(as_float_array(mu1, "mu1"))
    m2 = np.atleast_1d(as_float_array(mu2, "mu2"))
    s1 = np.atleast_2d(as_float_array(sigma1, "sigma1"))
    s2 = np.atleast_2d(as_float_array(sigma2, "sigma2"))
    d = m1.shape[0]
    if d == 0:
        raise WganError("frechet_distance needs at least one dimension, got mu1 of shape (0,)")
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise WganError(
            "frechet_distance needs mu (d,) and sigma (d, d) of the same d, got "
            f"mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    for name, a in (("mu1", m1), ("sigma1", s1), ("mu2", m2), ("sigma2", s2)):
        if not np.all(np.isfinite(a)):
            raise WganError(f"frechet_distance: {name} contains non-finite values")
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    r1 = _sym_psd_sqrt(s1)  # (d, d) Σ₁^{1/2}
    m = r1 @ s2 @ r1  # (d, d) symmetric PSD, similar to Σ₁ Σ₂
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))  # (d,)
    tr_covmean = float(np.sqrt(np.clip(lam, 0.0, None)).sum())
    diff = m1 - m2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance_features(features1: Any, features2: Any) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``(N₁, d)``, ``(N₂, d)``.

    Equal to ``frechet_distance(*feature_statistics(features1), *feature_statistics(features2))``.
    When the sets are small relative to d (N₁ N₂ min(N₁, N₂) < d³, e.g. a few hundred
    2048-d Inception features) it avoids the d×d eigen-decompositions: with centred features
    A_i (N_i × d), Σ_i = A_iᵀ A_i / (N_i − 1) and the non-zero eigenvalues of Σ₁ Σ₂ are the
    squared singular values s_j of A₁ A₂ᵀ / √((N₁−1)(N₂−1)) (N₁ × N₂), so
    tr (Σ₁ Σ₂)^{1/2} = Σ_j s_j and tr Σ_i = ‖A_i‖²_F / (N_i − 1).
    """
    f1 = _as_2d(features1, "features1")
    f2 = _as_2d(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise WganError(f"feature sets differ in dimension: {f1.shape[1]} vs {f2.shape[1]}")
    (n1, d), n2 = f1.shape, f2.shape[0]
    if n1 * n2 * min(n1, n2) >= d**3:
        mu1, s1 = feature_statistics(f1)
        mu2, s2 = feature_statistics(f2)
        return frechet_distance(mu1, s1, mu2, s2)
    if min(n1, n2) < 2:
        raise WganError(f"feature statistics need at least 2 samples, got {n1} and {n2}")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)  # (d,)
    a1, a2 = f1 - mu1, f2 - mu2  # (N₁, d), (N₂, d)
    c1, c2 = n1 - 1.0, n2 - 1.0
    sv = np.linalg.svd(a1 @ a2.T, compute_uv=False)  # (min(N₁, N₂),)
    tr_covmean = float(sv.sum()) / np.sqrt(c1 * c2)
    diff = mu1 - mu2
    fd = float(diff @ diff + (a1 * a1).sum() / c1 + (a2 * a2).sum() / c2 - 2.0 * tr_covmean)
    return max(fd, 0.0)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # k(x, y) = (xᵀy / d + 1)³   (Bińkowski et al. 2018, §4)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(
    features1: Any,
    features2: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict:
    """Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel.

    Bińkowski et al. 2018 ("Demystifying MMD GANs", arXiv 1801.01401, §4). For each of
    ``subsets`` random subsets X ⊂ features1, Y ⊂ features2 of size
    m = min(subset_size, n₁, n₂) (drawn without replacement with
    ``numpy.random.default_rng(seed)``) and k(x, y) = (xᵀy / d + 1)³:

        MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1))
                 − 2 Σ_{i,j} k(x_i, y_j) / m².

    The estimator is unbiased, so it can be slightly negative when the distributions agree.

    Returns:
        ``{"kid_mean": mean over subsets, "kid_std": std over subsets}``.
    """
    x = _as_2d(features1, "features1")
    y = _as_2d(features2, "features2")
    if x.shape[1] != y.shape[1]:
        raise WganError(f"feature sets differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    subsets = check_int("KID subsets", subsets, 1)
    if subsets > MAX_KID_SUBSETS:
        raise WganError(f"KID subsets must be <= {MAX_KID_SUBSETS}, got {subsets}")
    subset_size = check_int("KID subset_size", subset_size, 2)
    seed = check_int("KID seed", seed, 0)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise WganError(f"KID needs at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")
    rng = np.random.default_rng(seed)
    vals = np.empty(int(subsets), dtype=np.float64)
    for s in range(int(subsets)):
        xs = x[rng.choice(x.shape[0], m, replace=False)]  # (m, d)
        ys = y[rng.choice(y.shape[0], m, replace=False)]  # (m, d)
        kxx = _poly_kernel(xs, xs)  # (m, m)
        kyy = _poly_kernel(ys, ys)  # (m, m)
        kxy = _poly_kernel(xs, ys)  # (m, m)
        vals[s] = (
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2.0 * kxy.mean()
        )
    return {"kid_mean": float(vals.mean()), "kid_std": float(vals.std())}


def inception_score(probs: Any, splits: int = 10) -> dict:
    """Inception Score of class probabilities ``(N, K)`` (Salimans et al. 2016, §4).

    The samples are cut into ``splits`` consecutive chunks (``numpy.array_split``); for each
    chunk with marginal p(y) = mean_x p(y|x),

        IS = exp( mean_x KL(p(y|x) ‖ p(y)) ),  KL(p ‖ q) = Σ_k p_k log(p_k / q_k), 0 log 0 = 0.

    IS lies in [1, K]: 1 when every row is the same distribution, K when the rows are one-hot
    and the classes are used uniformly.

    Returns:
        ``{"is_mean": mean over splits, "is_std": std over splits}``.
    """
    p = _as_2d(probs, "probs")
    n = p.shape[0]
    splits = check_int("inception_score splits", splits, 1)
    if n < splits:
        raise WganError(f"inception_score needs 1 <= splits <= N, got splits={splits}, N={n}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise WganError("inception_score needs probabilities: non-negative rows summing to 1")
    scores = []
    for part in np.array_split(p, int(splits)):
        py = part.mean(axis=0, keepdims=True)  # (1, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0)  # (n_s, K)
        scores.append(float(np.exp(terms.sum(axis=1).mean())))
    s = np.asarray(scores)
    return {"is_mean": float(s.mean()), "is_std": float(s.std())}
