"""The refinement experiment: a method helps only where it measurably improves the samples, its
verdict can say it does not help, and a run too short is not judged."""

import json

import pytest

from wgan.errors import ConfigError
from wgan.experiments import get_experiment
from wgan.experiments.common import apply_overrides
from wgan.experiments.refinement import HQ_GAIN, RefinementSettings, helps

RAW = {"high_quality_fraction": 0.80, "w1": 0.10, "modes_captured": 8}


def toy(hq: float, w1: float) -> dict:
    return {"high_quality_fraction": hq, "w1": w1, "modes_captured": 8}


def test_helps_needs_more_quality_and_no_worse_distance():
    assert helps("8gaussians", RAW, toy(0.80 + HQ_GAIN + 0.01, 0.10))
    assert not helps("8gaussians", RAW, toy(0.80 + HQ_GAIN / 2, 0.09))  # within the noise
    assert not helps("8gaussians", RAW, toy(0.95, 0.12))  # tighter but further from the data
    assert not helps("8gaussians", RAW, toy(float("nan"), 0.10))
    assert helps("digits", {"fd_classifier": 10.0}, {"fd_classifier": 9.0})
    assert not helps("digits", {"fd_classifier": 10.0}, {"fd_classifier": 9.8})


def numbers(flow: dict, dot: dict) -> dict:
    run = {
        "dataset": "8gaussians",
        "seed": 0,
        "raw": RAW,
        "refined": {"flow": flow, "dot": dot},
    }
    run["helps"] = {m: helps("8gaussians", RAW, got) for m, got in run["refined"].items()}
    return {"runs": [run]}


def test_verdicts_say_holds_does_not_hold_and_not_tested():
    experiment = get_experiment("refinement")
    s = RefinementSettings(datasets="8gaussians", methods="flow,dot")
    got = experiment.verdicts(numbers(toy(0.99, 0.07), toy(0.81, 0.10)), s)
    assert [v.status for v in got] == ["holds", "does not hold"]
    assert "HQ 80%" in got[0].measured and "HQ 99%" in got[0].measured
    short_run = RefinementSettings(datasets="8gaussians", methods="flow,dot", steps=100)
    short = experiment.verdicts(numbers(toy(0.99, 0.07), toy(0.81, 0.10)), short_run)
    assert [v.status for v in short] == ["not tested at these settings"] * 2


@pytest.mark.parametrize("bad", ["datasets=swissroll", "methods=magic", "refine_steps=-1"])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        apply_overrides(RefinementSettings(), [bad])


def test_tiny_run_measures_raw_and_refined_on_the_same_draws(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_NO_PROGRESS", "1")
    s = RefinementSettings(
        datasets="8gaussians", methods="flow", steps=30, eval_samples=200, refine_steps=3
    )
    result = get_experiment("refinement").run(s, tmp_path)
    record = json.loads((tmp_path / "results.json").read_text())
    run = record["results"]["runs"][0]
    assert run["raw"]["n_samples"] == run["refined"]["flow"]["n_samples"] == 200
    assert run["raw"]["w1"] != run["refined"]["flow"]["w1"]  # the samples moved
    assert record["verdicts"][0]["status"] == "not tested at these settings"  # 30 steps
    assert [p.name for p in result.figures] == ["refinement.png"]
    assert "flow" in result.table and "raw" in result.table
