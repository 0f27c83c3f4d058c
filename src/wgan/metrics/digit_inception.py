"""The Inception score of generated digits, with the embedded digit classifier as the judge.

Salimans et al. (2016, "Improved Techniques for Training GANs", sec. 4) score a generator by

    IS = exp( E_x KL( p(y|x) ‖ p(y) ) ),   p(y) = E_x p(y|x),

with p(y|x) the class probabilities a pretrained classifier gives a sample x. It is high when
each sample is classified confidently (p(y|x) far from p(y)) and the classes are used evenly
(p(y) spread out). With K classes it lies in [1, K]: 1 when every sample gets the same
distribution, K when the samples are classified with certainty and the classes are used
uniformly. On the digits (K = 10) the classifier is :class:`wgan.metrics.classifier.
DigitClassifier` instead of Inception-v3; this is the score of the WGAN-GP paper's random-
architecture study (Gulrajani et al. 2017, sec. 5.1, where Inception-v3 on CIFAR-10 and a
threshold of 5.0 decide "success") transposed to the digits.
"""

from __future__ import annotations

from typing import Any

import torch

from wgan.errors import WganError
from wgan.metrics.classifier import DigitClassifier, get_digit_classifier
from wgan.metrics.frechet import inception_score
from wgan.metrics.images import _as_images, _check_digit_shape, _rows, classify

__all__ = ["digit_inception_score"]


def digit_inception_score(
    images: Any,
    classifier: DigitClassifier | torch.nn.Module | None = None,
    splits: int = 1,
    batch_size: int = 1024,
) -> dict:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) of ``(N, 1, R, R)`` digit images in [-1, 1].

    p(y|x) is the softmax of the digit classifier (the cached
    :func:`~wgan.metrics.classifier.get_digit_classifier` at resolution R when ``classifier`` is
    None); the expectation is over the N images (in ``splits`` consecutive chunks, as
    :func:`wgan.metrics.frechet.inception_score`; the default 1 scores all images at once).
    Ranges from 1 to 10. Real held-out digits score about 9 (9.04 at 16x16).

    Returns:
        ``{"digit_is": mean over splits, "digit_is_std": std over splits, "n_samples": N}``.

    Raises:
        WganError: images of the wrong shape, empty, or not finite; bad ``splits``.
    """
    x = _as_images(images, "images")  # (N, 1, R, R)
    if classifier is None:
        if x.shape[1] != 1 or x.shape[2] != x.shape[3]:
            raise WganError(f"images must have shape (N, 1, R, R), got {tuple(x.shape)}")
        classifier = get_digit_classifier(int(x.shape[-1]))  # WganError for an unknown R
    _check_digit_shape(x, classifier, 1, "images")
    _, probs = classify(classifier, x, batch_size)  # (N, 10)
    score = inception_score(_rows(probs), splits)
    return {
        "digit_is": score["is_mean"],
        "digit_is_std": score["is_std"],
        "n_samples": int(x.shape[0]),
    }
