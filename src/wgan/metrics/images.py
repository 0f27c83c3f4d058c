"""Sample-quality metrics for generated images: class coverage, classifier FD, FID / KID / IS.

* :func:`class_metrics` / :func:`digits_metrics`: a pretrained digit classifier
  (:mod:`wgan.metrics.classifier`) labels the samples; mode collapse shows as few classes
  covered and a large KL divergence of the label histogram to uniform (the mode-counting
  protocol of VEEGAN, Srivastava et al. 2017, arXiv 1705.07761, and PacGAN, Lin et al. 2018,
  arXiv 1712.04086). With real reference digits, the Fréchet distance of the classifier's
  penultimate features (as FID, Heusel et al. 2017, but in a feature space that fits digits)
  and improved precision / recall (Kynkäänniemi et al. 2019) are added.
* :func:`stacked_digits_metrics`: the stacked-MNIST protocol (Metz et al. 2017, "Unrolled
  GANs", arXiv 1611.02163, §3.3.2; VEEGAN §5.2; PacGAN §5): three digits stacked as the
  channels of one image give 1,000 modes; each channel is classified separately, mode =
  100·c₀ + 10·c₁ + c₂; with 26,000 samples, count the modes hit at least once and the KL of
  the mode histogram to uniform over 1,000.
* :func:`inception_metrics`: FID, KID and IS with the user's Inception-v3
  (:mod:`wgan.metrics.inception`).

All return plain (JSON-serialisable) dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wgan.errors import WganError
from wgan.metrics.frechet import (
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)
from wgan.metrics.precision_recall import precision_recall
from wgan.metrics.wasserstein import check_int

__all__ = [
    "STACKED_N_MODES",
    "STACKED_PROTOCOL_SAMPLES",
    "class_metrics",
    "classify",
    "conditional_accuracy",
    "digits_metrics",
    "inception_metrics",
    "stacked_digits_metrics",
]

STACKED_N_MODES = 1000
"""Number of modes of stacked digits (10³)."""

STACKED_PROTOCOL_SAMPLES = 26_000
"""Samples drawn in the stacked-MNIST protocol of VEEGAN / PacGAN."""


def _as_images(images: Any, name: str) -> torch.Tensor:
    try:
        x = torch.as_tensor(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
        x = x.to(torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WganError(f"{name} must be an array of images (N, C, H, W): {exc}") from exc
    if x.ndim != 4:
        raise WganError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise WganError(f"{name} is empty (0 images)")
    if not bool(torch.isfinite(x).all()):
        raise WganError(f"{name} contains non-finite values (nan or inf)")
    return x


def _check_digit_shape(x: torch.Tensor, classifier: Any, channels: int, name: str) -> None:
    r = int(classifier.resolution)
    if tuple(x.shape[1:]) != (channels, r, r):
        raise WganError(
            f"{name} must have shape (N, {channels}, {r}, {r}) for the resolution-{r} digit "
            f"classifier, got {tuple(x.shape)}"
        )


def _rows(probs: torch.Tensor) -> np.ndarray:
    """Softmax rows (N, K) in float64, renormalised (float32 rows sum to 1 only to ~1e-7)."""
    p = probs.double()
    return (p / p.sum(dim=1, keepdim=True)).numpy()


def classify(
    classifier: torch.nn.Module, images: Any, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the digit classifier in batches: ``(N, 1, R, R) -> (features (N, F), probs (N, 10))``.

    Both are float32 CPU tensors, computed in one pass without autograd.
    """
    x = _as_images(images, "images")  # (N, 1, R, R)
    batch_size = check_int("batch_size", batch_size, 1)
    was_training = classifier.training
    classifier.eval()
    feats, probs = [], []
    try:
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                f = classifier.features(x[i : i + batch_size])  # (B, F)
                feats.append(f)
                probs.append(torch.softmax(classifier.head(f), dim=1))  # (B, 10)
    finally:
        classifier.train(was_training)
    return torch.cat(feats), torch.cat(probs)


def class_metrics(pred_labels: Any, n_classes: int) -> dict:
    """Classes covered and KL(label histogram ‖ uniform) of predicted labels.

    With counts ``c_k`` of label k among N predictions and ``p_k = c_k / N``:
    ``classes_covered = #{k : c_k ≥ 1}`` and
    ``kl_to_uniform = Σ_k p_k log(p_k · K)`` (natural log, 0 log 0 = 0): 0 for a perfectly
    balanced histogram, log K when every sample has the same label (VEEGAN / PacGAN).

    Returns:
        ``{"classes_covered": int, "kl_to_uniform": float}``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise WganError(f"n_classes must be a positive int, got {n_classes!r}")
    y = pred_labels
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y).reshape(-1)
    if y.size == 0:
        raise WganError("class_metrics needs at least one label, got 0")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise WganError(f"labels must be integers in [0, {n_classes}), got {y.dtype} values")
    counts = np.bincount(y.astype(np.int64), minlength=int(n_classes))  # (K,)
    p = counts[counts > 0] / y.size
    kl = max(float(np.sum(p * np.log(p * n_classes))), 0.0)  # clip rounding error below 0
    return {"classes_covered": int((counts > 0).sum()), "kl_to_uniform": kl}


def digits_metrics(
    fake: Any,
    classifier: torch.nn.Module,
    real: Any | None = None,
    k: int = 3,
    batch_size: int = 1024,
) -> dict:
    """Class coverage, confidence, and (with real digits) classifier FD and precision / recall.

    ``classes_covered`` / ``class_kl`` are :func:`class_metrics` of the classifier's argmax
    labels; ``confidence`` is the mean over samples of the max class probability (low for
    blurry or ambiguous digits); ``digit_is`` the Inception score exp(E_x KL(p(y|x) ‖ p(y)))
    of the classifier's probabilities (Salimans et al. 2016; 1 to 10, see
    :func:`wgan.metrics.digit_inception.digit_inception_score`). With ``real`` (the reference
    used by the experiments is the 297 held-out digits, ``digits_split(R)[2]``):
    ``fd_classifier`` is the Fréchet distance
    (:func:`~wgan.metrics.frechet.frechet_distance_features`) between the classifier's 64-d
    penultimate features of ``fake`` and ``real``, and ``precision`` / ``recall`` the improved
    precision and recall (k-NN radii, ``k``) in the same feature space. Two finite samples of
    the same distribution are not at FD 0: compare with the real-vs-real value (held-out vs
    training digits, see the tests).

    Args:
        fake: ``(N, 1, R, R)`` generated images in [-1, 1].
        classifier: a :class:`~wgan.metrics.classifier.DigitClassifier` of resolution R.
        real: optional ``(M, 1, R, R)`` real images in [-1, 1].
        k: neighbour rank for precision / recall.
        batch_size: classifier batch size.

    Returns:
        ``{"classes_covered", "class_kl", "confidence", "digit_is"}`` plus
        ``{"fd_classifier", "precision", "recall"}`` when ``real`` is given.
    """
    x = _as_images(fake, "fake")
    _check_digit_shape(x, classifier, 1, "fake")
    f_fake, p_fake = classify(classifier, x, batch_size)
    cm = class_metrics(p_fake.argmax(1), 10)
    out: dict = {
        "classes_covered": cm["classes_covered"],
        "class_kl": cm["kl_to_uniform"],
        "confidence": float(p_fake.max(1).values.double().mean()),
        "digit_is": inception_score(_rows(p_fake), splits=1)["is_mean"],
    }
    if real is not None:
        xr = _as_images(real, "real")
        _check_digit_shape(xr, classifier, 1, "real")
        f_real, _ = classify(classifier, xr, batch_size)
        if x.shape[0] < 2 or xr.shape[0] < 2:
            raise WganError("classifier FD needs at least 2 fake and 2 real images")
        out["fd_classifier"] = frechet_distance_features(f_fake, f_real)
        out.update(precision_recall(f_real, f_fake, k=k))
    return out


def conditional_accuracy(
    classifier: torch.nn.Module, images: Any, labels: Any, batch_size: int = 1024
) -> float:
    """Fraction of ``(N, 1, R, R)`` images that the classifier labels as the requested label.

    For class-conditional generators: ``labels`` ``(N,)`` are the labels the images were
    generated for.
    """
    x = _as_images(images, "images")
    _check_digit_shape(x, classifier, 1, "images")
    y = torch.as_tensor(labels).reshape(-1).to(torch.int64)
    if y.shape[0] != x.shape[0]:
        raise WganError(f"got {x.shape[0]} images but {y.shape[0]} labels")
    _, p = classify(classifier, x, batch_size)
    return float((p.argmax(1) == y).double().mean())


def stacked_digits_metrics(fake: Any, classifier: torch.nn.Module, batch_size: int = 2048) -> dict:
    """Modes covered (of 1,000) and KL to uniform of stacked digits (stacked-MNIST protocol).

    Each channel c of a ``(N, 3, R, R)`` sample is classified as a digit d_c; its mode is
    ``100·d₀ + 10·d₁ + d₂``. ``modes_covered`` counts modes hit by at least one sample and
    ``mode_kl = Σ_m p_m log(1000 p_m)`` (0 log 0 = 0) with p the mode histogram. The protocol
    (Metz et al. 2017; VEEGAN; PacGAN) uses N = 26,000 samples: a perfect generator then covers
    1000·(1 − (1 − 1/1000)^26000) ≈ 1000 modes.

    Returns:
        ``{"modes_covered": int, "mode_kl": float}``.
    """
    x = _as_images(fake, "fake")
    _check_digit_shape(x, classifier, 3, "fake")
    n, _, r, _ = x.shape
    # (N, 3, R, R) -> (3N, 1, R, R), sample-major: rows 3i, 3i+1, 3i+2 are sample i's channels.
    _, p = classify(classifier, x.reshape(n * 3, 1, r, r), batch_size)
    digits = p.argmax(1).reshape(n, 3)  # (N, 3)
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]  # (N,)
    cm = class_metrics(modes, STACKED_N_MODES)
    return {"modes_covered": cm["classes_covered"], "mode_kl": cm["kl_to_uniform"]}


def inception_metrics(
    fake: Any,
    real: Any,
    extractor: Any,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    seed: int = 0,
) -> dict:
    """FID, KID and Inception Score of generated images with the user's Inception-v3.

    * ``fid``: :func:`~wgan.metrics.frechet.frechet_distance_features` of the 2048-d pool
      features of ``fake`` and ``real`` (Heusel et al. 2017).
    * ``kid_mean`` / ``kid_std``: :func:`~wgan.metrics.frechet.kernel_inception_distance`
      (Bińkowski et al. 2018) with ``kid_subsets`` subsets of ``kid_subset_size``.
    * ``is_mean`` / ``is_std``: :func:`~wgan.metrics.frechet.inception_score` of the fake
      images' class probabilities over ``is_splits`` splits (Salimans et al. 2016).

    Published FIDs use 50,000 generated images; FID is biased upward at small N, so compare
    values only at equal N.

    Args:
        fake: ``(N, 1 or 3, H, W)`` generated images in [-1, 1].
        real: ``(M, 1 or 3, H, W)`` real images in [-1, 1], or precomputed real features
            ``(M, 2048)`` (a 2-D array) to avoid recomputing them at every evaluation.
        extractor: an :class:`~wgan.metrics.inception.InceptionExtractor`
            (from :func:`~wgan.metrics.inception.load_inception`).

    Returns:
        ``{"fid", "kid_mean", "kid_std", "is_mean", "is_std"}``.
    """
    f_fake = extractor.features(fake)  # (N, 2048)
    real_t = torch.as_tensor(real.detach().cpu() if isinstance(real, torch.Tensor) else real)
    f_real = real_t if real_t.ndim == 2 else extractor.features(real_t)  # (M, 2048)
    probs = extractor.probabilities(fake)  # (N, 1008)
    out = {"fid": frechet_distance_features(f_fake, f_real)}
    out.update(
        kernel_inception_distance(
            f_fake, f_real, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
    )
    out.update(inception_score(probs, splits=is_splits))
    return out
