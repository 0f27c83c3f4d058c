"""The attributes experiment: its verdicts hold, fail or are not tested from the numbers, and a
tiny run measures accuracy by the classifier and the pixels, seen and held out."""

from __future__ import annotations

import json

import pytest
import torch

from wgan.data.attribute_law import AttributeLaw
from wgan.data.shapes import make_shapes
from wgan.errors import ConfigError
from wgan.experiments import get_experiment
from wgan.experiments.attributes import (
    ACCURACY,
    HELDOUT_RATIO,
    MIN_SEEN,
    MIN_STEPS,
    AttributesSettings,
    generalises,
)
from wgan.experiments.common import apply_overrides


def metrics(acc: float, pixel: float, held: float, seen: float) -> dict:
    return {
        "attr_accuracy": acc,
        "attr_pixel_accuracy": pixel,
        "attr_heldout_combo": held,
        "attr_seen_combo": seen,
        "attr_pixel_heldout_combo": held,
        "attr_pixel_seen_combo": seen,
    }


def numbers(*per_method: tuple[str, dict | None], steps: int = MIN_STEPS) -> dict:
    runs = [{"method": m, "seed": 0, "metrics": x, "seconds": 1.0} for m, x in per_method]
    return {"runs": runs, "steps": steps}


def statuses(s: AttributesSettings, n: dict) -> list[str]:
    return [v.status for v in get_experiment("attributes").verdicts(n, s)]


def test_accuracy_verdict_needs_both_readers_at_the_threshold():
    s = AttributesSettings(methods="concat,acgan", holdout="")
    good, low_px = metrics(0.97, 0.95, 0, 0), metrics(0.97, ACCURACY - 0.01, 0, 0)
    got = statuses(s, numbers(("concat", good), ("acgan", low_px)))
    assert got == ["holds", "does not hold"]


def test_heldout_verdict_compares_with_the_seen_combinations():
    s = AttributesSettings(methods="concat")
    seen = 0.8
    kept = metrics(0.95, 0.95, HELDOUT_RATIO * seen + 0.01, seen)
    lost = metrics(0.95, 0.95, HELDOUT_RATIO * seen - 0.05, seen)
    assert statuses(s, numbers(("concat", kept))) == ["holds", "holds"]
    assert statuses(s, numbers(("concat", lost))) == ["holds", "does not hold"]


def test_not_tested_when_short_failed_or_the_seen_combinations_are_not_learnt():
    s = AttributesSettings(methods="concat")
    fine = metrics(0.95, 0.95, 0.9, 0.9)
    assert (
        statuses(s, numbers(("concat", fine), steps=MIN_STEPS - 1))
        == ["not tested at these settings"] * 2
    )
    assert statuses(s, numbers(("concat", None))) == ["not tested at these settings"] * 2
    unlearnt = metrics(0.95, 0.95, 0.1, MIN_SEEN - 0.01)
    assert statuses(s, numbers(("concat", unlearnt))) == [
        "holds",
        "not tested at these settings",
    ]
    assert generalises(unlearnt, pixel=False) is None


@pytest.mark.parametrize("bad", ["methods=magic", "eval_samples=10", "n_seeds=0"])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        apply_overrides(AttributesSettings(), [bad])


def test_asking_for_every_group_of_an_unseen_combination_needs_no_note():
    """With every group named nothing is drawn, so there is nothing to say about the draw."""
    ds = make_shapes(480, seed=0)
    schema = ds.attribute_schema
    keep = ~schema.matches(ds.attributes, schema.parse("green,triangle"))
    law = AttributeLaw.from_vectors(schema, ds.attributes[keep])
    g = torch.Generator().manual_seed(0)
    c, note = law.draw(8, schema.parse("green,triangle,large,filled"), generator=g)
    assert note is None and bool(schema.matches(c, schema.parse("green,triangle")).all())
    _, note = law.draw(8, schema.parse("green,triangle"), generator=g)
    assert note is not None and "green" in note


def test_a_tiny_run_reports_every_number_and_a_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_NO_PROGRESS", "1")
    experiment = get_experiment("attributes")
    s = AttributesSettings(methods="concat", steps=20, eval_samples=100)
    result = experiment.run(s, tmp_path)
    record = json.loads((tmp_path / "results.json").read_text())
    m = record["results"]["runs"][0]["metrics"]
    keys = ("attr_accuracy", "attr_pixel_accuracy", "attr_heldout_combo", "attr_seen_combo")
    assert all(isinstance(m[k], float) for k in keys)  # measured, by both readers, both ways
    assert [v["status"] for v in record["verdicts"]] == ["not tested at these settings"] * 2
    assert [p.name for p in result.figures] == ["attributes-concat.png"]
    assert "held out" in result.table and "concat" in result.table
