"""The f-divergences experiment: every divergence in the table/JSON; divergence handling."""

import json

import pytest

from wgan.errors import ConfigError
from wgan.experiments import f_divergences as fd
from wgan.experiments import get_experiment
from wgan.experiments.common import apply_overrides
from wgan.experiments.f_divergences import FDivergencesSettings
from wgan.objectives import DIVERGENCES


def tiny(**changes):
    s = FDivergencesSettings(steps=4, hidden=16, eval_samples=200, batch_size=32, log_every=2)
    for key, value in changes.items():
        setattr(s, key, value)
    return s


def run(settings, run_dir):
    return get_experiment("f-divergences").run(settings, run_dir)


def test_smoke_every_divergence_in_table_and_json(tmp_path):
    result = run(tiny(), tmp_path)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["experiment"] == "f-divergences"
    assert set(record["results"]["divergences"]) == set(DIVERGENCES)
    lines = result.table.splitlines()
    for name in DIVERGENCES:
        assert any(line.split()[0] == name for line in lines[2:]), name
        entry = record["results"]["divergences"][name]
        assert entry["history"]["step"] == [2, 4] or entry["diverged_at"] is not None
        if entry["diverged_at"] is None:
            assert entry["metrics"]["n_modes"] == 8
    for figure in result.figures:
        assert figure.is_file()
    assert (tmp_path / "kl" / "checkpoint.pt").is_file()


def test_diverged_run_is_recorded_not_raised(tmp_path):
    """A learning rate of 1e30 drives the statistics to inf/NaN: the table says so."""
    s = tiny(divergences="kl,pearson", steps=20)
    original = fd.PINNED
    fd.PINNED = (*original, "g_optim.lr=1e30", "d_optim.lr=1e30")
    try:
        result = run(s, tmp_path)
    finally:
        fd.PINNED = original
    for name in ("kl", "pearson"):
        entry = result.numbers["divergences"][name]
        assert entry["diverged_at"] is not None, result.table
        assert entry["metrics"] is None
    assert "diverged at step" in result.table


@pytest.mark.parametrize(
    "override", ["divergences=foo", "pi=1.0", "steps=0", "dataset=swissroll", "log_every=0"]
)
def test_out_of_range_settings_raise(override):
    with pytest.raises(ConfigError):
        apply_overrides(FDivergencesSettings(), [override])


def test_divergence_list():
    assert FDivergencesSettings().divergence_list() == list(DIVERGENCES)
    assert FDivergencesSettings(divergences="kl, gan").divergence_list() == ["kl", "gan"]


def test_jensen_shannon_and_gan_train_identically(tmp_path):
    """T_JS = T_GAN + log 2 and F_JS = F_GAN + log 4: same samples, estimates log 4 apart."""
    import math

    result = run(tiny(divergences="jensen_shannon,gan", steps=10), tmp_path)
    js = result.numbers["divergences"]["jensen_shannon"]
    gan = result.numbers["divergences"]["gan"]
    assert js["metrics"]["w1"] == pytest.approx(gan["metrics"]["w1"], rel=1e-4)
    assert js["held_out_estimate"] - gan["held_out_estimate"] == pytest.approx(
        math.log(4), abs=1e-3
    )
