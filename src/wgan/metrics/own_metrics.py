"""Quality numbers for generated images of any data, in the feature space of a network trained
on that data (:mod:`wgan.metrics.own_features`), each beside its real-vs-real floor.

For ``m`` generated images and a dataset split into training and held-out images
(:func:`wgan.metrics.own_features.heldout_split`):

* the reference is up to :data:`REFERENCE_SIZE` training images (a uniform sample, fixed);
* ``fd_features``: the Fréchet distance (Heusel et al. 2017) between the features of the
  generated images and of the reference;
* ``precision`` / ``recall``: improved precision and recall (Kynkäänniemi et al. 2019, k = 3)
  of the generated images against the reference, in the same features;
* ``colour_distance``: the Wasserstein-1 distance, exact, between the images' mean colours
  (one point per image, its mean over pixels of each channel, in 0..255 units): the mean distance
  from a generated image's mean colour to a real one's under the best one-to-one matching;
* each has a ``*_baseline``: the same number for ``m`` held-out real images in place of the
  generated ones. The feature network never saw them, as it never saw the generated images, and
  every set has the same size, so the baseline is what a generator that draws fresh images of
  the data would reach: Fréchet distances of finite samples are biased upwards, and no sample
  of the data does better than its floor (up to noise).

``m`` is the smaller of the generated images given and the held-out images (from half of a small
dataset to a fifth of a large one, at most 2,000); ``feature_samples`` reports it. Fréchet
distances of a few hundred images are noisy: compare a value with its floor by the factor
between them, not by a small difference. ``feature_space`` names the network, so that the
output says which space the numbers live in: not Inception's, so not comparable with any FID.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from wgan.errors import WganError
from wgan.metrics.frechet import frechet_distance_features
from wgan.metrics.own_features import (
    MIN_IMAGES,
    OwnFeatureNet,
    data_digest,
    feature_cache_path,
    features,
    get_feature_net,
    heldout_split,
)
from wgan.metrics.precision_recall import precision_recall

__all__ = [
    "REFERENCE_SIZE",
    "OwnReference",
    "colour_distance",
    "mean_colours",
    "own_conditional_accuracy",
    "own_feature_metrics",
    "needs_training",
    "own_reference",
]

REFERENCE_SIZE = 2000
"""The most training images in the reference set."""

COLOUR_POINTS = 1000
"""The most points on either side of the exact colour W1 (its cost grows as their product)."""


def mean_colours(images: Tensor) -> Tensor:
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, C)`` mean of each channel, in 0..255 units (float64)."""
    return (images.double().mean(dim=(2, 3)) + 1.0) * 127.5


def colour_distance(a: Tensor, b: Tensor) -> float:
    """Exact W1 between two sets of mean colours ``(n, C)`` and ``(m, C)`` (Euclidean cost):
    :func:`wgan.metrics.wasserstein.exact_w1`, on the first :data:`COLOUR_POINTS` of each."""
    from wgan.metrics.wasserstein import exact_w1

    return float(exact_w1(a[:COLOUR_POINTS], b[:COLOUR_POINTS])["w1"])


@dataclass
class OwnReference:
    """A dataset's feature network and its real sets, computed once per dataset and process."""

    net: OwnFeatureNet
    reference: Tensor  # (r, F) features of the reference training images
    reference_colours: Tensor  # (r, C)
    heldout: Tensor  # (h, F) features of the held-out images, in a random order
    heldout_colours: Tensor  # (h, C)
    space: str
    baselines: dict[int, dict[str, float]] = field(default_factory=dict)


_REFERENCES: weakref.WeakKeyDictionary[Any, OwnReference] = weakref.WeakKeyDictionary()
_DIGESTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _digest(dataset: Any) -> str:
    """:func:`~wgan.metrics.own_features.data_digest`, hashed once per dataset object."""
    if dataset not in _DIGESTS:
        _DIGESTS[dataset] = data_digest(dataset)
    return _DIGESTS[dataset]


def needs_training(dataset: Any, cache_dir: Any = None) -> bool:
    """Whether :func:`own_reference` of ``dataset`` will train its feature network (none is
    cached for these images; a dataset too small for one never does)."""
    if len(dataset) < MIN_IMAGES or dataset in _REFERENCES:
        return False
    return not feature_cache_path(dataset, cache_dir, _digest(dataset)).exists()


def _describe(net: OwnFeatureNet, n_images: int) -> str:
    if net.n_classes:
        what = f"a classifier of its {net.n_classes} classes (held-out accuracy {net.quality:.3f})"
    else:
        what = f"an autoencoder (held-out reconstruction RMSE {net.quality:.3f})"
    return (
        f"{net.feature_dim}-d features of {what}, trained on this data's {n_images} images; "
        "not comparable with Inception FID"
    )


def _real(net: OwnFeatureNet, dataset: Any, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Features and mean colours of the images at ``idx``, a chunk at a time."""
    feats, colours = [], []
    for part in idx.split(1024):
        x = dataset.as_float(dataset.pixels[part.to(dataset.pixels.device)]).float().cpu()
        feats.append(features(net, x))
        colours.append(mean_colours(x))
    return torch.cat(feats), torch.cat(colours)


def own_reference(dataset: Any, cache_dir: Any = None) -> OwnReference:
    """The feature network of ``dataset`` (:func:`wgan.metrics.own_features.get_feature_net`)
    and the features of its reference and held-out images, kept for the dataset's lifetime."""
    found = _REFERENCES.get(dataset)
    if found is not None:
        return found
    if len(dataset) < MIN_IMAGES:
        raise WganError(
            f"own-feature metrics need at least {MIN_IMAGES} images, got {len(dataset)}"
        )
    net = get_feature_net(dataset, cache_dir, _digest(dataset))
    train_idx, hold_idx = heldout_split(len(dataset))
    ref, ref_colours = _real(net, dataset, train_idx[:REFERENCE_SIZE])
    held, held_colours = _real(net, dataset, hold_idx)
    found = OwnReference(net, ref, ref_colours, held, held_colours, _describe(net, len(dataset)))
    _REFERENCES[dataset] = found
    return found


def _compare(ref: OwnReference, feats: Tensor, colours: Tensor) -> dict[str, float]:
    out = {"fd_features": frechet_distance_features(feats, ref.reference)}
    out.update(precision_recall(ref.reference, feats, k=3))
    out["colour_distance"] = colour_distance(colours, ref.reference_colours)
    return out


def own_feature_metrics(fake: Tensor, dataset: Any, cache_dir: Any = None) -> dict[str, Any]:
    """FD, precision, recall and colour distance of ``fake`` ``(n, C, R, R)`` images in [-1, 1],
    with their held-out baselines (module docstring). A dataset of fewer than
    :data:`wgan.metrics.own_features.MIN_IMAGES` images gets only a ``feature_space`` saying so.

    Returns:
        ``{"feature_space": str, "feature_samples": m, "fd_features", "fd_features_baseline",
        "precision", "precision_baseline", "recall", "recall_baseline", "colour_distance",
        "colour_distance_baseline"}``.
    """
    if len(dataset) < MIN_IMAGES:
        return {
            "feature_space": f"none: {len(dataset)} images, fewer than the {MIN_IMAGES} a "
            "feature network and a held-out floor need"
        }
    ref = own_reference(dataset, cache_dir)
    m = min(len(fake), len(ref.heldout))
    if m <= 3:
        raise WganError(f"own-feature metrics need more than 3 generated images, got {len(fake)}")
    x = fake[:m].float().cpu()
    if tuple(x.shape[1:]) != (ref.net.channels, ref.net.resolution, ref.net.resolution):
        raise WganError(f"generated images of shape {tuple(x.shape[1:])} do not fit the data")
    out: dict[str, Any] = {"feature_space": ref.space, "feature_samples": m}
    got = _compare(ref, features(ref.net, x), mean_colours(x))
    if m not in ref.baselines:
        ref.baselines[m] = _compare(ref, ref.heldout[:m], ref.heldout_colours[:m])
    for key, value in got.items():
        out[key] = value
        out[f"{key}_baseline"] = ref.baselines[m][key]
    return out


def own_conditional_accuracy(net: OwnFeatureNet, images: Tensor, labels: Tensor) -> float:
    """The fraction of ``images`` that the feature network (a classifier) labels as ``labels``,
    the classes they were generated for."""
    if not net.n_classes:
        raise WganError("conditional accuracy needs a feature network that classifies")
    was = net.training
    net.eval()
    try:
        with torch.inference_mode():
            pred = torch.cat(
                [net(images[i : i + 1024].float()).argmax(1) for i in range(0, len(images), 1024)]
            )
    finally:
        net.train(was)
    return float((pred == labels.reshape(-1).cpu()).double().mean())
