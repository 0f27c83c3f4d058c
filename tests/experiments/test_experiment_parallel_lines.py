"""The parallel-lines experiment (Arjovsky et al. 2017, Example 1)."""

import json
import math

import pytest

from wgan.errors import ConfigError
from wgan.experiments import get_experiment
from wgan.experiments import parallel_lines as pl
from wgan.experiments.common import apply_overrides

LOG2 = math.log(2.0)


def test_closed_forms_and_grid():
    assert pl.closed_forms(0.0) == {"w1": 0.0, "js": 0.0, "kl": 0.0}
    cf = pl.closed_forms(-0.3)
    assert cf["w1"] == pytest.approx(0.3) and cf["js"] == pytest.approx(LOG2)
    assert math.isinf(cf["kl"])
    grid = pl.theta_grid(pl.ParallelLinesSettings())
    assert len(grid) == 11 and 0.2 in grid and -0.2 in grid and 0.0 in grid


def test_settings_validate_rejects_out_of_range():
    with pytest.raises(ConfigError):
        apply_overrides(pl.ParallelLinesSettings(), ["n_theta=1"])
    with pytest.raises(ConfigError):
        apply_overrides(pl.ParallelLinesSettings(), ["clip=0"])
    with pytest.raises(ConfigError):
        apply_overrides(pl.ParallelLinesSettings(), ["no_such_key=3"])


def test_smoke_tiny(tmp_path):
    settings = pl.ParallelLinesSettings(n_theta=3, steps=10, hidden=16, eval_samples=200)
    result = get_experiment("parallel-lines").run(settings, tmp_path)
    assert result.name == "parallel-lines"
    assert all(p.exists() for p in result.figures)
    record = json.loads((tmp_path / "results.json").read_text())
    rows = record["results"]["per_theta"]
    assert [r["theta"] for r in rows] == [-1.0, 0.0, 1.0]
    assert rows[0]["closed_kl"] == "inf"  # written as a string: JSON has no infinity
    assert "JS est" in result.table and "GP est" in result.table


def test_acceptance_gp_tracks_w1_and_js_saturates(tmp_path):
    """|theta| >= 0.2: WGAN-GP estimate within 10% of |theta|, JS estimate within 10% of log 2,
    the saturating minimax gradient ~0 and the WGAN-GP gradient ~sign(theta)."""
    # theta in {-1, -0.6, -0.2, 0.2, 0.6, 1}: the grid without 0, including +-0.2.
    settings = pl.ParallelLinesSettings(n_theta=6, steps=400)
    result = get_experiment("parallel-lines").run(settings, tmp_path)
    summary = result.numbers["summary"]
    assert summary["gp_w1_max_rel_error"] < 0.10, result.table
    assert summary["minimax_js_max_rel_error"] < 0.10, result.table
    assert summary["minimax_max_abs_grad_saturating"] < 0.05, result.table
    assert summary["gp_grad_max_abs_error_vs_sign"] < 0.25, result.table
    for row in result.numbers["per_theta"]:
        assert abs(row["theta"]) >= 0.2 - 1e-9
        # The clipped critic's gap has the sign and the ordering of |theta|, at a tiny scale K.
        assert 0 < row["clip_estimate_raw"] < 0.1
