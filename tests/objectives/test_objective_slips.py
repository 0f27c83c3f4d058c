"""Issue 23, item 4: one-sided label smoothing and the objectives' divergence estimates.

1. Label smoothing (Salimans et al. 2016, sec. 3.4) changes what the critic is trained towards,
   not what its estimate measures: every ``estimate`` is computed from the *unsmoothed* objective
   at the critic's outputs, so it stays a lower bound on its divergence. The least-squares
   estimate (Mao et al. 2017; triangular discrimination Δ) used to come from the smoothed loss
   and read 2 - 2 (1 - alpha)^2 = 0.38 at p = q (alpha = 0.1), where Δ = 0.
2. ``tricks.label_smoothing`` is refused, at config validation, for every objective without
   real/fake targets (wasserstein, hinge, fgan with any divergence) instead of being dropped.
"""

import typing

import pytest
import torch

from wgan.cli.app import main
from wgan.config import resolve
from wgan.config.sections import ObjectiveConfig
from wgan.errors import ConfigError
from wgan.gan.loss import build_objective
from wgan.objectives import DIVERGENCES, OBJECTIVES, make_objective

SMOOTHED = ("minimax", "nonsaturating", "least_squares")
OBJECTIVE_NAMES = typing.get_args(typing.get_type_hints(ObjectiveConfig)["name"])


def _tabular_optimum(objective, p, q):
    """A tabular critic (one output per support point) minimising ``objective``'s critic loss
    for p and q given as counts per point (expectations = means over repeated points)."""
    real_idx = torch.repeat_interleave(torch.arange(len(p)), p)
    fake_idx = torch.repeat_interleave(torch.arange(len(q)), q)
    out = torch.zeros(len(p), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([out], lr=1.0, max_iter=200, tolerance_grad=1e-12)

    def closure():
        opt.zero_grad()
        loss = objective.critic_loss(out[real_idx], out[fake_idx])["loss"]
        loss.backward()
        return loss

    opt.step(closure)
    out = out.detach()
    return objective.critic_loss(out[real_idx], out[fake_idx]), out


@pytest.mark.parametrize("name", SMOOTHED)
@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.5])
def test_every_estimate_is_the_unsmoothed_one_at_the_same_outputs(name, alpha):
    """Audit of every objective that takes smoothing: the estimate does not depend on alpha,
    the loss does (minimax and non-saturating already did this; least squares did not)."""
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(64, generator=gen), torch.randn(48, generator=gen) - 1.0
    plain = make_objective(name).critic_loss(real, fake)
    smoothed = make_objective(name, label_smoothing=alpha).critic_loss(real, fake)
    assert torch.equal(smoothed["estimate"], plain["estimate"])
    assert (smoothed["loss"] - plain["loss"]).abs().item() > 1e-3


def test_least_squares_estimate_at_p_equals_q_is_not_positive_under_smoothing():
    """p = q: Δ = 0. The smoothed critic's optimum is D* = (1 - alpha)/2 everywhere, where the
    unsmoothed loss 1/2 [(D - 1)^2 + D^2] gives the estimate 2 - 8 L = -2 alpha^2 <= 0; the old
    estimate, 2 - 8 (smoothed loss) = 2 - 2 (1 - alpha)^2, read 0.38 for alpha = 0.1."""
    alpha = 0.1
    objective = make_objective("least_squares", label_smoothing=alpha)
    terms, d = _tabular_optimum(objective, torch.tensor([5, 5]), torch.tensor([5, 5]))
    torch.testing.assert_close(d, torch.full((2,), (1 - alpha) / 2, dtype=d.dtype))
    assert terms["estimate"].item() == pytest.approx(-2 * alpha**2, abs=1e-9)
    # the unsmoothed optimum D = 1/2 reads exactly Δ = 0, smoothing on or off
    half = torch.full((4,), 0.5, dtype=torch.float64)
    assert objective.critic_loss(half, half)["estimate"].item() == 0.0


def test_least_squares_estimate_stays_a_lower_bound_on_triangular_under_smoothing():
    """p = (.1,.2,.3,.4), q reversed: Δ = sum (p - q)^2 / (p + q) = 0.4. At the smoothed optimum
    D = (1 - alpha) p/(p+q) the estimate is 2 - 8 x (unsmoothed loss there) <= Δ; the old one,
    2 - (1 - alpha)^2 (2 - Δ) = 0.704 for alpha = 0.1, exceeded Δ."""
    alpha = 0.1
    counts_p, counts_q = torch.tensor([1, 2, 3, 4]), torch.tensor([4, 3, 2, 1])
    p, q = counts_p.double() / 10, counts_q.double() / 10
    delta = ((p - q).square() / (p + q)).sum().item()
    assert delta == pytest.approx(0.4, rel=1e-12)
    objective = make_objective("least_squares", label_smoothing=alpha)
    terms, d = _tabular_optimum(objective, counts_p, counts_q)
    d_star = (1 - alpha) * p / (p + q)
    torch.testing.assert_close(d, d_star, rtol=0, atol=1e-8)
    unsmoothed = 0.5 * (p * (d_star - 1).square() + q * d_star.square()).sum().item()
    assert terms["estimate"].item() == pytest.approx(2 - 8 * unsmoothed, abs=1e-7)
    assert terms["estimate"].item() < delta


def test_the_config_refuses_smoothing_for_exactly_the_objectives_without_targets():
    """Every objective name of the config, and every f-GAN divergence: resolving with
    tricks.label_smoothing=0.2 succeeds exactly where make_objective takes the smoothing."""
    assert set(OBJECTIVE_NAMES) == set(OBJECTIVES)
    cases = [(name, None) for name in OBJECTIVE_NAMES if name != "fgan"]
    cases += [("fgan", div) for div in DIVERGENCES]
    accepted = set()
    for name, div in cases:
        extra = [f"objective.divergence={div}"] if div else []
        overrides = [f"objective.name={name}", *extra, "tricks.label_smoothing=0.2"]
        params = {"divergence": div} if div else {}
        try:
            make_objective(name, label_smoothing=0.2, **params)
            takes_it = True
        except ConfigError:
            takes_it = False
        if takes_it:
            assert resolve("toy-gan", overrides).tricks.label_smoothing == 0.2
            accepted.add(name)
            continue
        with pytest.raises(ConfigError) as err:
            resolve("toy-gan", overrides)
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith("tricks.label_smoothing=0.2 needs objective.name in ")
        assert f"not {name}:" in message
    assert accepted == set(SMOOTHED)
    assert resolve("toy-fgan-kl", ["tricks.label_smoothing=0"]).objective.name == "fgan"


def test_fgan_with_smoothing_is_one_line_exit_2_from_the_cli(capsys):
    code = main(["train", "toy-fgan-kl", "tricks.label_smoothing=0.2", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("wgan: error: tricks.label_smoothing=0.2 needs objective.name")
    assert "not fgan:" in lines[0] and "objective.name=minimax" in lines[0]


def test_build_objective_passes_smoothing_on_or_refuses_it():
    """The config reaches the objective: the smoothing objectives get alpha; an unvalidated
    config (edited after resolve) with fgan + smoothing is refused, not trained without it."""
    for preset in ("toy-gan", "toy-gan-ns", "toy-lsgan"):
        cfg = resolve(preset, ["tricks.label_smoothing=0.2"])
        assert build_objective(cfg).label_smoothing == 0.2
    cfg = resolve("toy-fgan-kl")
    cfg.tricks.label_smoothing = 0.2
    with pytest.raises(ConfigError, match="label smoothing needs an objective"):
        build_objective(cfg)


def test_a_saved_fgan_run_with_smoothing_loads_with_the_zero_it_trained_with():
    """Older versions saved ``objective.name=fgan`` with ``tricks.label_smoothing > 0`` and
    trained without the smoothing: such a run's config loads (for eval and resume) with 0."""
    from wgan.config.resolve import from_dict

    saved = resolve("toy-fgan-kl").to_dict()
    saved["tricks"]["label_smoothing"] = 0.2
    assert from_dict(saved).tricks.label_smoothing == 0.0
    kept = resolve("toy-gan", ["tricks.label_smoothing=0.2"]).to_dict()
    assert from_dict(kept).tricks.label_smoothing == 0.2  # where it is used, it stays
