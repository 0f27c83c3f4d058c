"""The shapes-cgan preset asked for attribute vectors: accuracy by the attribute classifier and
by the exact pixel reader (issue: "asking for red, triangle, large gives them").

The default suite runs a short version; the full preset (about 3 minutes on 2 cores) is slow:
``python -m pytest -q -m slow tests/metrics/test_shapes_quality.py``. Bounds are the measured
values with their error rates doubled, so a 2x regression fails.
"""

from __future__ import annotations

import time

import pytest

from wgan.config import resolve
from wgan.training.train import train

QUIET = ["train.progress=false", "train.figure_every=0", "train.checkpoint_every=0"]


def _run(tmp_path, *overrides):
    cfg = resolve("shapes-cgan", [*QUIET, "train.eval_every=0", *overrides])
    cfg.out_dir = str(tmp_path)
    start = time.time()
    result = train(cfg, tensorboard=False)
    return result.metrics, time.time() - start


def test_a_short_shapes_run_already_follows_the_asked_attributes(tmp_path):
    m, seconds = _run(tmp_path, "train.steps=600", "train.eval_samples=1000")
    print(f"\n600 steps in {seconds:.0f} s: {m}")
    # measured at 600 steps (seed 0): 0.872 by the classifier, 0.812 by the pixels, colour
    # 0.974 (a G that ignores c reads at chance: about 0.41 mean accuracy, colour 0.26)
    assert m["attr_accuracy"] >= 0.74  # twice the measured error rate (0.128) fails
    assert m["attr_pixel_accuracy"] >= 0.62  # twice 0.188
    assert m["attr_accuracy_colour"] >= 0.94  # twice 0.026


@pytest.mark.slow
def test_the_shapes_preset_gives_the_asked_attributes(tmp_path):
    m, seconds = _run(tmp_path, "data.holdout_combos=green,triangle")
    print(f"\nshapes-cgan (green triangles held out) in {seconds:.0f} s: {m}")
    # measured without a hold-out (seeds 0 / 1): 0.985 / 0.980 by the classifier, 0.966 / 0.958
    # by the pixels; the target is 0.95 by both
    assert m["attr_accuracy"] >= 0.95
    assert m["attr_pixel_accuracy"] >= 0.95
    assert 0.0 <= m["attr_heldout_combo"] <= 1.0 and "attr_seen_combo" in m  # reported
