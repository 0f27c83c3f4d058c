"""Measuring a run: a registry of evaluators per kind of data, and sample grids and texts.

Metrics are plain functions in :mod:`wgan.metrics`; this module chooses them for a run through
:data:`EVALUATORS` (toy data: modes, high-quality fraction, KL, exact W1 with its real-vs-real
baseline; text: n-gram JS):

* ``digits`` (the embedded sklearn digits): a small digit classifier trained once and cached
  (:func:`wgan.metrics.classifier.get_digit_classifier`) labels the samples: classes covered,
  KL of the class histogram to uniform, a Fréchet distance on the classifier's features against
  the real held-out digits, kNN precision/recall on the same features; for a conditional run,
  the conditional accuracy (does asking for class k give a k?).
* ``stacked_digits``: each channel is classified; modes covered out of 1,000 and their KL
  (the Stacked-MNIST protocol of VEEGAN / PacGAN on the digits).
* data with attribute vectors (``shapes``, ``celeba``, a folder with a CSV), for a run
  conditioned on them: per-attribute accuracy of the samples by an attribute classifier trained
  once on the data and cached, and on shapes by the pixels (:mod:`.attribute_eval`).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wgan.figures.images import auto_scale, image_grid, save_image_grid
from wgan.figures.text import printable_line
from wgan.training.own_images import OWN_FEATURE_KINDS, class_rows, write_real_vs_generated

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


# ---------------------------------------------------------------------------- the registry


@dataclass
class EvalContext:
    """What an evaluator gets: the run, the sample count, the user's Inception file, and the
    run's ``n`` samples (drawn once, on first use, and shared by every evaluator)."""

    run: Any
    n: int
    inception_weights: str | None = None
    _fake: torch.Tensor | None = field(default=None, repr=False)

    @property
    def fake(self) -> torch.Tensor:
        if self._fake is None:
            self._fake = self.run.samples(self.n)  # (n, ...) on the CPU
        return self._fake


Evaluator = Callable[[EvalContext], dict[str, Any]]

#: data kind -> [(name, evaluator)], in registration order. A run of 2-D toy data is of kind
#: ``toy``, a text run ``text``; an image run is of its dataset's name (``digits``, ...) and
#: of ``image``. A new metric is one function registered with :func:`register_evaluator`.
EVALUATORS: dict[str, list[tuple[str, Evaluator]]] = {}


def register_evaluator(name: str, *kinds: str) -> Callable[[Evaluator], Evaluator]:
    """Register ``fn(ctx) -> dict`` under ``name`` for the data ``kinds`` (a decorator)."""

    def register(fn: Evaluator) -> Evaluator:
        for kind in kinds:
            EVALUATORS.setdefault(kind, []).append((name, fn))
        return fn

    return register


def data_kinds(run: Any) -> list[str]:
    """The kinds whose evaluators apply to ``run`` (see :data:`EVALUATORS`)."""
    if run.is_text:
        return ["text"]
    if run.is_image:
        return [run.cfg.data.name, "image"]
    return ["toy"]


def evaluate(run: Any, n: int, inception_weights: str | os.PathLike | None = None) -> dict:
    """Every registered evaluator of ``run``'s data kinds, on ``n`` samples, merged in order.

    ``inception_weights``: the user's TorchScript Inception file for IS/FID/KID (else
    ``$WGAN_INCEPTION_WEIGHTS``); the run's own config is never consulted for it.
    """
    ctx = EvalContext(run, n, inception_weights_path(inception_weights))
    out: dict[str, Any] = {}
    for kind in data_kinds(run):
        for _name, fn in EVALUATORS.get(kind, []):
            out.update(fn(ctx))
    return out


@register_evaluator("toy_metrics", "toy")
def _toy(ctx: EvalContext) -> dict[str, Any]:
    """Modes captured, high-quality fraction, KL to uniform, exact W1 (:func:`toy_metrics`),
    and W1's real-vs-real baseline (:func:`w1_baseline`)."""
    from wgan.metrics import toy_metrics

    g = torch.Generator().manual_seed(1)
    out = toy_metrics(ctx.fake, ctx.run.dataset, n_real=ctx.n, generator=g)
    out["w1_baseline"] = w1_baseline(ctx.run, out["n_samples"], ctx.n)
    return out


REAL_BASELINE_SEED = 2
"""Seed of the second set of real points of the W1 baseline (the reference set has seed 1)."""

_W1_BASELINES: dict[tuple[str, int, int], float] = {}


def w1_baseline(run: Any, n: int, n_real: int) -> float:
    """The W1 between two independent sets of real points, as the toy evaluation measures W1:
    ``n`` fresh points of the data (seed :data:`REAL_BASELINE_SEED`) against the same
    ``n_real`` reference points the generated ones are compared with (seed 1).

    This is the best a perfect generator can reach at these sizes (the finite-sample floor of
    the empirical W1: about 0.03-0.07 for 2,500 points of eight_gaussians), the reference point
    the text evaluation gives its n-gram JS as ``js{n}_baseline``. It depends only on the data
    and the sizes, so it is computed once per process for each of them.
    """
    import warnings

    from wgan.metrics.wasserstein import exact_w1

    key = (repr(run.cfg.data), int(n), int(n_real))
    if key not in _W1_BASELINES:
        reference = run.dataset.sample(n_real, generator=torch.Generator().manual_seed(1))
        other = run.dataset.sample(n, generator=torch.Generator().manual_seed(REAL_BASELINE_SEED))
        with warnings.catch_warnings():  # a fallback to sliced W1 is reported for the samples
            warnings.simplefilter("ignore")
            value = exact_w1(other, reference)["w1"]
        if len(_W1_BASELINES) >= 64:
            _W1_BASELINES.clear()
        _W1_BASELINES[key] = float(value)
    return _W1_BASELINES[key]


@register_evaluator("digits_metrics", "digits")
def _digits(ctx: EvalContext) -> dict[str, Any]:
    """Classifier metrics against the held-out digits; a conditional run's accuracy."""
    from wgan.metrics.classifier import digits_split, get_digit_classifier
    from wgan.metrics.images import conditional_accuracy, digits_metrics

    run, n = ctx.run, ctx.n
    clf = get_digit_classifier(_digits_resolution(run))
    _, _, x_test, _ = digits_split(_digits_resolution(run))
    out = digits_metrics(ctx.fake, clf, real=x_test)
    n_classes = getattr(run.sampler, "n_classes", 0)
    if n_classes:
        per_class = max(1, n // n_classes)
        labels = torch.arange(n_classes).repeat_interleave(per_class)
        images = run.samples(labels.numel(), seed=54321, labels=labels)
        out["conditional_accuracy"] = conditional_accuracy(clf, images, labels)
    return out


@register_evaluator("attribute_metrics", "shapes", "celeba", "folder")
def _attributes(ctx: EvalContext) -> dict[str, Any]:
    """A run conditioned on attribute vectors: per-attribute accuracy of its samples by the
    data's attribute classifier (and on shapes by the pixels), held-out combinations beside
    seen ones (:mod:`wgan.training.attribute_eval`); nothing for other runs."""
    from wgan.training.attribute_eval import attribute_metrics
    from wgan.training.attribute_sampling import attribute_schema

    run = ctx.run
    if not run.conditional or attribute_schema(run) is None:
        return {}
    return attribute_metrics(run, ctx.fake, ctx.n)


@register_evaluator("own_feature_metrics", *OWN_FEATURE_KINDS)
def _own_features(ctx: EvalContext) -> dict[str, Any]:
    """FD, precision / recall and colour distance in the features of a network trained on the
    run's own images, each with its held-out real-vs-real baseline (:mod:`.own_images`)."""
    from wgan.training.own_images import own_metrics

    return own_metrics(ctx.run, ctx.fake, ctx.n)


@register_evaluator("stacked_digits_metrics", "stacked_digits")
def _stacked_digits(ctx: EvalContext) -> dict[str, Any]:
    """Modes out of 1,000 and their KL (each channel classified)."""
    from wgan.metrics.classifier import get_digit_classifier
    from wgan.metrics.images import stacked_digits_metrics

    return stacked_digits_metrics(ctx.fake, get_digit_classifier(_digits_resolution(ctx.run)))


@register_evaluator("inception_metrics", "image")
def _inception(ctx: EvalContext) -> dict[str, Any]:
    """IS, FID and KID against the training images, with the user's Inception file only."""
    if not ctx.inception_weights:
        return {}
    from wgan.metrics.images import inception_metrics
    from wgan.metrics.inception import load_inception

    run = ctx.run
    extractor = load_inception(ctx.inception_weights, device=run.device)  # --device: on the GPU
    g = torch.Generator().manual_seed(1)
    real = run.dataset.sample(min(ctx.n, 50_000), generator=g)
    return inception_metrics(ctx.fake, real, extractor)


@register_evaluator("ngram_metrics", "text")
def _text(ctx: EvalContext) -> dict[str, Any]:
    """JS-1..4 of argmax-decoded samples against held-out text (:mod:`wgan.metrics.ngram`).

    The held-out reference and the real-vs-real baseline set hold ``min(n, held-out / 2)``
    sequences each, and that many samples are generated (the same size for all three). On the
    embedded Markov corpus the exact JS to the true n-gram law is added (``js{n}_exact``).
    """
    from wgan.metrics.ngram import MAX_N, ngram_metrics

    dataset = ctx.run.dataset
    real, real_other = dataset.heldout_pair(ctx.n)  # (m, L) each, disjoint
    m = int(real.shape[0])
    fake = ctx.run.samples(m).argmax(1)  # (m, V, L) softmax -> (m, L) indices
    laws = [dataset.ngram_probs(k) for k in range(1, MAX_N + 1)]
    out: dict[str, Any] = {"ngram_sequences": m}
    out.update(ngram_metrics(fake, real, real_other, dataset.vocab.size, laws))
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
    if nrow == 10 and trainer.cfg.data.classes:  # rows named after the classes (sub-folders)
        from wgan.figures.labelled import labelled_grid, save_panels

        rows = class_rows(trainer)
        save_panels([labelled_grid(images, nrow, rows)], path, title.replace(", row = class", ""))
    else:
        save_image_grid(images, path, nrow=nrow, scale=auto_scale(images.shape[-1]), title=title)
    shutil.copyfile(path, path.with_name("latest.png"))
    write_real_vs_generated(trainer)
    if tracker is not None:
        tracker.image("samples", image_grid(images, nrow=nrow), trainer.step)
    return path


# ------------------------------------------------------------------------------------ text

TEXT_FIGURE_SAMPLES = 16  # sample lines written to figures/step_NNNNNN.txt and TensorBoard


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
