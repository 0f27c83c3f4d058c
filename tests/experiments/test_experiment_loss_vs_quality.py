"""The loss-vs-quality experiment: structure at tiny size, and the acceptance claim."""

import json
import math

import pytest

from wgan.errors import ConfigError
from wgan.experiments import get_experiment
from wgan.experiments import loss_vs_quality as lvq
from wgan.experiments.common import apply_overrides
from wgan.experiments.loss_vs_quality import LossVsQualitySettings


def run(settings, run_dir):
    return get_experiment("loss-vs-quality").run(settings, run_dir)


def tiny(**changes):
    s = LossVsQualitySettings(
        steps=6, hidden=16, n_records=4, eval_samples=64, warmup_critic_steps=3, batch_size=32
    )
    for key, value in changes.items():
        setattr(s, key, value)
    return s


def test_smoke_writes_table_json_and_figures(tmp_path):
    result = run(tiny(), tmp_path)
    assert result.name == "loss-vs-quality"
    for method in ("wgan-gp", "gan"):
        assert method in result.table
        numbers = result.numbers["methods"][method]
        assert numbers["history"]["step"] == lvq.record_steps(6, 4)
        assert len(numbers["history"]["w1"]) == len(numbers["history"]["step"])
    assert "Spearman(est, W1)" in result.table
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["experiment"] == "loss-vs-quality"
    assert record["settings"]["steps"] == 6
    assert set(record["results"]["spearman"]) == {"wgan-gp", "gan"}
    assert (tmp_path / "loss_vs_quality.png").is_file()
    assert all(p.is_file() for p in result.figures)
    assert (tmp_path / "wgan-gp" / "checkpoint.pt").is_file()


def test_record_steps_dense_early_and_ends_at_last_step():
    steps = lvq.record_steps(1000, 20)
    assert steps[0] == 0 and steps[-1] == 1000
    assert steps == sorted(set(steps))
    assert sum(s <= 100 for s in steps) > sum(s > 100 for s in steps)  # geometric: dense early


def test_seed_makes_records_reproducible(tmp_path):
    a = run(tiny(methods="wgan-gp"), tmp_path / "a").numbers["methods"]["wgan-gp"]
    b = run(tiny(methods="wgan-gp"), tmp_path / "b").numbers["methods"]["wgan-gp"]
    assert a["history"]["estimate"] == b["history"]["estimate"]
    assert a["history"]["w1"] == b["history"]["w1"]


@pytest.mark.parametrize(
    "override", ["methods=foo", "n_records=2", "steps=0", "eval_samples=9000", "dataset=nope"]
)
def test_out_of_range_settings_raise(override):
    with pytest.raises(ConfigError):
        apply_overrides(LossVsQualitySettings(), [override])


def test_spearman_handles_constant_and_nan():
    assert lvq.spearman([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0]) == pytest.approx(1.0)
    assert math.isnan(lvq.spearman([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0]))  # < 3 pairs
    assert math.isnan(lvq.spearman([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]))  # constant


def test_acceptance_wgan_gp_estimate_tracks_exact_w1(tmp_path):
    """The WGAN-GP critic's estimate ranks checkpoints as the exact W1 does (Arjovsky et al.
    2017, Sec. 4.2; Gulrajani et al. 2017).

    250 generator iterations of 3x128 MLPs take W1 from ~1.4 to ~0.65; with lambda = 10, a
    200-step critic warm-up and the generator slower than the critic, the held-set estimate
    follows W1 (rho 0.89-0.94 over seeds 0-3 with the one-step trainer of wgan.gan.step; 0.91-0.97
    with the trainer before it, whose warm-up drew a different random stream).
    """
    s = LossVsQualitySettings(steps=250, n_records=20, eval_samples=500, methods="wgan-gp,gan")
    result = run(s, tmp_path)
    rho = result.numbers["spearman"]["wgan-gp"]
    assert rho >= 0.8, result.table
    w1 = result.numbers["methods"]["wgan-gp"]["history"]["w1"]
    assert w1[-1] < w1[0] - 0.3  # training did move the samples towards the data


@pytest.mark.slow
def test_acceptance_at_default_settings(tmp_path):
    """The default run (2000 iterations, ~2-3 CPU minutes): rho >= 0.8 for WGAN-GP."""
    result = run(LossVsQualitySettings(), tmp_path)
    assert result.numbers["spearman"]["wgan-gp"] >= 0.8, result.table
