"""``wgan eval`` of a run conditioned on attribute vectors: does asking for c give c?

The run's ``n`` evaluation samples are drawn with conditions c from the training data's law
(:func:`wgan.training.attribute_sampling.attribute_conditions`, the vectors
``run.samples(n)`` uses), read back by the data's attribute classifier
(:mod:`wgan.metrics.attributes`) and compared group by group with c. On the embedded shapes
they are also read off the pixels exactly (:func:`wgan.data.shapes.read_shape_attributes`), a
second check of the classifier. With ``data.holdout_combos``, samples are also asked for each
combination held out of training (the unnamed groups drawn as
:meth:`wgan.data.attribute_law.AttributeLaw.draw` does) and measured beside the seen ones:
compositional generalisation, the question of conditional models asked for combinations they
never saw (Reed et al. 2016 composed text conditions; here the attributes).

Metrics (fractions in [0, 1]):

* ``attr_accuracy`` and ``attr_accuracy_{group}``: per-attribute accuracy of the samples (by the
  classifier), their mean over groups; ``attr_exact``: every group right;
* ``attr_classifier_accuracy``: the classifier's mean accuracy on held-out real images;
* shapes: ``attr_pixel_accuracy``, ``attr_pixel_accuracy_{group}``, ``attr_pixel_exact`` (by
  the pixel reader), ``attr_pixel_agreement`` (classifier and pixel reader agree, per group);
* held-out combinations: ``attr_heldout_accuracy`` and ``attr_heldout_exact`` on the samples
  asked for them; ``attr_heldout_combo``: the fraction with every named attribute of their
  combination right, beside ``attr_seen_combo``: the same named groups right on the seen
  samples; with ``_pixel`` versions on shapes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from wgan.data.attribute_law import set_request
from wgan.errors import WganError
from wgan.training.attribute_sampling import attribute_conditions, attribute_law, attribute_schema

__all__ = ["HELDOUT_SAMPLES", "HELDOUT_SEED", "attribute_metrics", "reference_dataset"]

HELDOUT_SAMPLES = 1000
"""Samples asked for each held-out combination (at most the evaluation's ``n``)."""
HELDOUT_SEED = 54321
"""The noise seed of the held-out combinations' samples (combination i: seed + i)."""


def reference_dataset(run: Any) -> Any:
    """The run's attribute data with no combination held out (the classifier's training data,
    so it has seen what it judges); the run's own dataset when nothing is held out or the full
    set cannot be built."""
    if not getattr(run.cfg.data, "holdout_combos", None):
        return run.dataset
    full = run.__dict__.get("_reference_dataset")  # built once per run handle (CelebA: slow)
    if full is None:
        from wgan.data.build import build_dataset

        try:
            full = build_dataset(dataclasses.replace(run.cfg.data, holdout_combos=None))
        except WganError:
            full = run.dataset
        if getattr(full, "attributes", None) is None:
            full = run.dataset
        run.__dict__["_reference_dataset"] = full
    return full


def _read_pixels(run: Any, x: Tensor) -> Tensor | None:
    """The shapes' exact pixel reading of ``x``, or None for other data."""
    if run.cfg.data.name != "shapes" or tuple(x.shape[1:]) != (3, 16, 16):
        return None
    from wgan.data.shapes import read_shape_attributes

    return read_shape_attributes(x)


def attribute_metrics(run: Any, fake: Tensor, n: int) -> dict[str, Any]:
    """The metrics above for ``run`` and its ``n`` evaluation samples ``fake`` (those of
    ``run.samples(n)``); empty for a run that is not conditioned on attributes."""
    from wgan.metrics.attributes import (
        accuracy_report,
        attribute_classifier_path,
        classifier_accuracy,
        data_fingerprint,
        get_attribute_classifier,
        group_correct,
        predict_attributes,
    )

    schema = attribute_schema(run)
    if schema is None or not run.conditional or not run.is_image:
        return {}
    asked, _ = attribute_conditions(run, n, run.sample_seed)  # (n, k): those fake was asked
    ref = reference_dataset(run)
    fp = data_fingerprint(ref.name, schema, ref.pixels, ref.attributes)
    if run.notify is not None and not attribute_classifier_path(ref.name, fp).exists():
        run.notify("training the attribute classifier (once, cached)…")
    clf = get_attribute_classifier(ref)
    read = predict_attributes(clf, fake)
    out: dict[str, Any] = accuracy_report(schema, read, asked, "attr")
    out["attr_classifier_accuracy"] = classifier_accuracy(clf)
    pixels = _read_pixels(run, fake)
    if pixels is not None:
        out.update(accuracy_report(schema, pixels, asked, "attr_pixel"))
        out["attr_pixel_agreement"] = float(group_correct(schema, read, pixels).double().mean())
    combos = tuple(getattr(run.cfg.data, "holdout_combos", None) or ())
    if combos:
        out.update(_heldout(run, schema, clf, combos, n, asked, read, pixels))
    return out


def _heldout(
    run: Any,
    schema: Any,
    clf: Any,
    combos: tuple[str, ...],
    n: int,
    seen_asked: Tensor,
    seen_read: Tensor,
    seen_pixels: Tensor | None,
) -> dict[str, float]:
    """Samples asked for each held-out combination, measured beside the seen samples."""
    from wgan.metrics.attributes import accuracy_report, predict_attributes

    law = attribute_law(run)
    m = min(HELDOUT_SAMPLES, n)
    asked, read, pixels, named, seen_named, seen_named_px = [], [], [], [], [], []
    for i, combo in enumerate(combos):
        request = schema.parse(combo)
        g = torch.Generator().manual_seed(HELDOUT_SEED + i)
        c, _ = law.draw(m, request, generator=g)  # (m, k): the combination, the rest drawn
        c = set_request(schema, c, request)
        x = run.samples(m, seed=HELDOUT_SEED + i, labels=c)
        r = predict_attributes(clf, x)
        asked.append(c)
        read.append(r)
        named.append(_all_named(schema, r, c, request))
        seen_named.append(_all_named(schema, seen_read, seen_asked, request).double().mean())
        px = _read_pixels(run, x)
        if px is not None and seen_pixels is not None:
            pixels.append(px)
            seen_named_px.append(
                _all_named(schema, seen_pixels, seen_asked, request).double().mean()
            )
    asked_all, read_all = torch.cat(asked), torch.cat(read)
    rep = accuracy_report(schema, read_all, asked_all, "attr_heldout")
    out = {k: rep[k] for k in ("attr_heldout_accuracy", "attr_heldout_exact")}
    out["attr_heldout_combo"] = float(torch.cat(named).double().mean())
    out["attr_seen_combo"] = float(torch.stack(seen_named).mean())
    if pixels:
        px_all = torch.cat(pixels)
        rep = accuracy_report(schema, px_all, asked_all, "attr_pixel_heldout")
        out.update({k: rep[k] for k in ("attr_pixel_heldout_accuracy", "attr_pixel_heldout_exact")})
        named_px = [
            _all_named(schema, p, c, schema.parse(combo))
            for p, c, combo in zip(pixels, asked, combos, strict=True)
        ]
        out["attr_pixel_heldout_combo"] = float(torch.cat(named_px).double().mean())
        out["attr_pixel_seen_combo"] = float(torch.stack(seen_named_px).mean())
    return out


def _all_named(schema: Any, read: Tensor, asked: Tensor, request: dict) -> Tensor:
    """(N,) bool: in every row, each group ``request`` names reads as ``asked`` has it."""
    from wgan.metrics.attributes import group_correct

    correct = group_correct(schema, read, asked)  # (N, G)
    cols = [j for j, g in enumerate(schema.groups) if g in request]
    return correct[:, cols].all(1)
