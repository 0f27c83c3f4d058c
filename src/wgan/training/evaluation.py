"""Measuring an image GAN: which metrics apply to which data, and sample grids.

Metrics are plain functions in :mod:`wgan.metrics`; this module only chooses them for a run:

* ``digits`` (the embedded sklearn digits): a small digit classifier trained once and cached
  (:func:`wgan.metrics.classifier.get_digit_classifier`) labels the samples: classes covered,
  KL of the class histogram to uniform, a Fréchet distance on the classifier's features against
  the real held-out digits, kNN precision/recall on the same features; for a conditional run,
  the conditional accuracy (does asking for class k give a k?).
* ``stacked_digits``: each channel is classified; modes covered out of 1,000 and their KL
  (the Stacked-MNIST protocol of VEEGAN / PacGAN on the digits).
* any image data, when the user gives Inception weights (the ``inception_weights`` argument,
  e.g. ``wgan eval --inception-weights``, or ``WGAN_INCEPTION_WEIGHTS``): Inception Score, FID
  and KID against the training images.

Trust: the Inception file is TorchScript, and loading it runs code. Its path therefore comes
only from the caller (the user's command line or config) or the user's environment, never from
a run's checkpoint or ``config.yaml``: this module reads no path from the run's config, and
:func:`wgan.training.run.read_run` clears ``train.inception_weights`` from a checkpoint's config.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wgan.figures.images import auto_scale, image_grid, save_image_grid

if TYPE_CHECKING:
    from wgan.store.tracking import Tracker

Trainer = Any  # a wgan.training.run.Run (not imported: the run handle imports this module)


def _digits_resolution(trainer: Trainer) -> int:
    return int(trainer.dataset.resolution)


def inception_weights_path(inception_weights: str | os.PathLike | None = None) -> str | None:
    """The Inception file to load: ``inception_weights`` if given, else the user's
    ``$WGAN_INCEPTION_WEIGHTS``, else None (no Inception metrics)."""
    if inception_weights is not None and str(inception_weights) != "":
        return str(inception_weights)
    return os.environ.get("WGAN_INCEPTION_WEIGHTS") or None


def evaluate_images(
    trainer: Trainer, n: int, inception_weights: str | os.PathLike | None = None
) -> dict[str, Any]:
    """The metrics that apply to ``trainer``'s data, on ``n`` samples from fixed seeds.

    ``inception_weights``: the user's TorchScript Inception file for IS/FID/KID (else
    ``$WGAN_INCEPTION_WEIGHTS``); the run's own config is never consulted for it.
    """
    from wgan.metrics.classifier import digits_split, get_digit_classifier
    from wgan.metrics.images import conditional_accuracy, digits_metrics, stacked_digits_metrics

    name = trainer.cfg.data.name
    out: dict[str, Any] = {}
    fake = trainer.samples(n)  # (n, C, H, W) on the CPU
    if name == "digits":
        clf = get_digit_classifier(_digits_resolution(trainer))
        _, _, x_test, _ = digits_split(_digits_resolution(trainer))
        out.update(digits_metrics(fake, clf, real=x_test))
        n_classes = getattr(trainer.sampler, "n_classes", 0)
        if n_classes:
            per_class = max(1, n // n_classes)
            labels = torch.arange(n_classes).repeat_interleave(per_class)
            images = trainer.samples(labels.numel(), seed=54321, labels=labels)
            out["conditional_accuracy"] = conditional_accuracy(clf, images, labels)
    elif name == "stacked_digits":
        clf = get_digit_classifier(_digits_resolution(trainer))
        out.update(stacked_digits_metrics(fake, clf))
    weights = inception_weights_path(inception_weights)
    if weights:
        from wgan.metrics.images import inception_metrics
        from wgan.metrics.inception import load_inception

        extractor = load_inception(weights, device=trainer.device)  # --device: FID on the GPU
        g = torch.Generator().manual_seed(1)
        real = trainer.dataset.sample(min(n, 50_000), generator=g)
        out.update(inception_metrics(fake, real, extractor))
    return out


def sample_grid(trainer: Trainer, tracker: Tracker | None = None) -> Path:
    """A PNG grid of samples (one row per class for a conditional G), also sent to TensorBoard."""
    n_classes = getattr(trainer.sampler, "n_classes", 0)
    if n_classes and n_classes <= 20:
        labels = torch.arange(n_classes).repeat_interleave(10)  # row k: ten samples of class k
        images = trainer.samples(labels.numel(), seed=2, labels=labels)
        nrow = 10
    else:
        images = trainer.samples(64, seed=2)
        nrow = 8
    path = trainer.run_dir / "figures" / f"step_{trainer.step:06d}.png"
    title = f"{trainer.display_name}: step {trainer.step}" + (", row = class" if nrow == 10 else "")
    save_image_grid(images, path, nrow=nrow, scale=auto_scale(images.shape[-1]), title=title)
    shutil.copyfile(path, path.with_name("latest.png"))
    if tracker is not None:
        tracker.image("samples", image_grid(images, nrow=nrow), trainer.step)
    return path


# ------------------------------------------------------------------------------------ text

TEXT_FIGURE_SAMPLES = 16  # sample lines written to figures/step_NNNNNN.txt and TensorBoard


def evaluate_text(trainer: Trainer, n: int) -> dict[str, Any]:
    """JS-1..4 of ``n`` argmax-decoded samples against held-out text (:mod:`wgan.metrics.ngram`).

    The held-out reference and the real-vs-real baseline set hold ``min(n, held-out / 2)``
    sequences each, and that many samples are generated (the same size for all three). On the
    embedded Markov corpus the exact JS to the true n-gram law is added (``js{n}_exact``).
    """
    from wgan.metrics.ngram import MAX_N, ngram_metrics

    dataset = trainer.dataset
    real, real_other = dataset.heldout_pair(n)  # (m, L) each, disjoint
    m = int(real.shape[0])
    fake = trainer.samples(m).argmax(1)  # (m, V, L) softmax -> (m, L) indices
    laws = [dataset.ngram_probs(k) for k in range(1, MAX_N + 1)]
    out: dict[str, Any] = {"ngram_sequences": m}
    out.update(ngram_metrics(fake, real, real_other, dataset.vocab.size, laws))
    return out


def printable_line(text: str) -> str:
    """One sample as one line: a newline shows as ``↵`` (U+21B5), a tab as ``→`` (U+2192)."""
    return text.replace("\n", "\u21b5").replace("\t", "\u2192")


def sample_text(trainer: Trainer, tracker: Tracker | None = None) -> Path:
    """``figures/step_NNNNNN.txt`` (and ``latest.txt``): sample lines; also TensorBoard text."""
    lines = [printable_line(t) for t in trainer.text(TEXT_FIGURE_SAMPLES, seed=2)]
    path = trainer.run_dir / "figures" / f"step_{trainer.step:06d}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copyfile(path, path.with_name("latest.txt"))
    tb = getattr(tracker, "tb", None)
    if tb is not None:  # markdown: a code block keeps spaces and one sample per line
        tb.add_text("samples", "    " + "\n    ".join(lines), trainer.step)
    return path
