"""The mode-collapse experiment: table and JSON structure at tiny size, published data."""

import json

import pytest

from wgan.errors import ConfigError
from wgan.experiments import get_experiment
from wgan.experiments import mode_collapse as mc
from wgan.experiments.common import apply_overrides, mean_std


def tiny(**changes):
    s = mc.ModeCollapseSettings(steps=3, hidden=16, n_seeds=2, eval_samples=200, batch_size=32)
    for key, value in changes.items():
        setattr(s, key, value)
    return s


def test_smoke_table_and_json_structure(tmp_path):
    result = get_experiment("mode-collapse").run(tiny(), tmp_path)
    for label in ("GAN (minimax)", "GAN (non-saturating)", "WGAN (clipping)", "WGAN-GP"):
        assert label in result.table
    assert "8gaussians" in result.table and "25gaussians" in result.table
    assert "As published" in result.table and "VEEGAN" in result.table
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["experiment"] == "mode-collapse"
    summary = record["results"]["summary"]
    assert len(summary) == 2 * 4  # datasets x methods
    for row in summary:
        assert row["n_seeds"] == 2
        assert row["n_modes"] in (8, 25)
        for key in ("modes_captured", "high_quality_pct", "kl_to_uniform", "w1"):
            assert set(row[key]) >= {"mean", "std", "n", "per_seed"}
        assert 0 <= row["modes_captured"]["mean"] <= row["n_modes"]
    assert len(record["results"]["runs"]) == 2 * 4 * 2
    assert (tmp_path / "mode_collapse_samples.png").is_file()
    assert (tmp_path / "8gaussians" / "wgan-gp" / "seed1" / "checkpoint.pt").is_file()


def test_seeds_are_reproducible(tmp_path):
    s = tiny(methods="gan", datasets="8gaussians", n_seeds=1)
    a = get_experiment("mode-collapse").run(s, tmp_path / "a").numbers["summary"][0]
    b = get_experiment("mode-collapse").run(s, tmp_path / "b").numbers["summary"][0]
    assert a["w1"]["per_seed"] == b["w1"]["per_seed"]


def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5), 2)
    assert mean_std([4.0, None]) == (4.0, 0.0, 1)
    mean, std, n = mean_std([None])
    assert n == 0 and mean != mean


def test_published_numbers_are_well_formed():
    for p in mc.PUBLISHED:
        assert 0 < p["modes"] <= p["n_modes"]
        assert 0 <= p["high_quality_pct"] <= 100
        assert p["confidence"] in ("high", "medium")
    assert {p["source"] for p in mc.PUBLISHED} == {"VEEGAN Tab. 1", "PacGAN Tab. 1"}


@pytest.mark.parametrize(
    "override", ["methods=foo", "n_seeds=0", "steps=0", "datasets=swissroll", "datasets=nope"]
)
def test_out_of_range_settings_raise(override):
    with pytest.raises(ConfigError):
        apply_overrides(mc.ModeCollapseSettings(), [override])


@pytest.mark.slow
def test_wgan_gp_covers_the_ring_at_default_budget(tmp_path):
    """WGAN-GP on 8 Gaussians (default size and budget, 2 seeds): all 8 modes, balanced."""
    result = get_experiment("mode-collapse").run(
        mc.ModeCollapseSettings(methods="wgan-gp", datasets="8gaussians"), tmp_path
    )
    row = result.numbers["summary"][0]
    assert row["modes_captured"]["per_seed"] == [8, 8], result.table
    assert row["kl_to_uniform"]["mean"] < 0.1, result.table
